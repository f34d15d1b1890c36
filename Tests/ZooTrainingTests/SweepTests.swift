import Foundation
import Testing
import ZooModels
import ZooTraining
import ZooCommands

@Suite("Hyperparameter sweeps", .serialized)
struct SweepTests {
    func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("zoo-sweep-\(UUID().uuidString)")
    }

    let space = SweepSpace(parameters: [
        "lr": .logUniform(low: 1e-4, high: 1e-1),
        "dropout": .uniform(low: 0, high: 0.5),
        "optimizer": .choice([.text("sgd"), .text("adam"), .text("adamax"), .text("rmsprop")]),
        "blocks": .integer(low: 1, high: 3),
    ])

    @Test("draws follow their distributions, depend only on the seed and the trial number, and keep four significant digits")
    func draws() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sweep = try Sweep(space: space, trials: 400, seed: 5, folder: folder)
        let trials = (1...400).map { sweep.trial($0).values }
        var optimizers: [String: Int] = [:]
        var blocks: [Double: Int] = [:]
        var belowGeometricMean = 0
        for values in trials {
            optimizers[values["optimizer"]!.description, default: 0] += 1
            blocks[values["blocks"]!.number!, default: 0] += 1
            let lr = try #require(values["lr"]?.number), dropout = try #require(values["dropout"]?.number)
            #expect(lr >= 1e-4 && lr <= 1e-1 && dropout >= 0 && dropout <= 0.5)
            if lr < pow(10, -2.5) { belowGeometricMean += 1 }
            let scale = pow(10, 3 - floor(log10(lr)))
            #expect(abs(lr * scale - (lr * scale).rounded()) < 1e-6, "\(lr) has more than four significant digits")
        }
        // 100 expected per optimizer (standard deviation about 9), 133 per block count, 200 below the geometric mean.
        #expect(optimizers.count == 4 && optimizers.values.allSatisfy { abs($0 - 100) < 40 }, "\(optimizers)")
        #expect(blocks.keys.sorted() == [1, 2, 3] && blocks.values.allSatisfy { abs($0 - 133) < 45 }, "\(blocks)")
        #expect(abs(belowGeometricMean - 200) < 45, "\(belowGeometricMean) of 400 below 10^-2.5: not log-uniform")
        let again = try Sweep(space: space, trials: 3, seed: 5, folder: temporaryFolder())
        defer { try? FileManager.default.removeItem(at: again.folder) }
        #expect(again.trial(7).values == sweep.trial(7).values)
        let reseeded = try Sweep(space: space, trials: 3, seed: 6, folder: temporaryFolder())
        defer { try? FileManager.default.removeItem(at: reseeded.folder) }
        #expect(reseeded.trial(7).values != sweep.trial(7).values)
        #expect(throws: TrainingError.sweepExists(folder: folder)) { try Sweep(space: space, trials: 1, folder: folder) }
    }

    @Test("SPACE.json reads its distributions; a bad one is refused naming the file and the parameter")
    func spaceFiles() throws {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func read(_ text: String) throws -> SweepSpace {
            let file = folder.appendingPathComponent("space.json")
            try Data(text.utf8).write(to: file)
            return try SweepSpace.read(file)
        }
        let good = try read(#"{"arguments": ["cifar-resnet20"], "objective": "test_f1", "parameters": {"lr": {"log_uniform": [1e-4, 0.1]}, "batch": {"choice": [32, 64]}, "mirror": {"choice": [true, false]}, "depth": {"int": [1, 4]}}}"#)
        #expect(good.objective == .testF1 && good.arguments == ["cifar-resnet20"])
        #expect(good.parameters["lr"] == .logUniform(low: 1e-4, high: 0.1) && good.parameters["depth"] == .integer(low: 1, high: 4))
        #expect(good.parameters["batch"] == .choice([.number(32), .number(64)]) && good.parameters["mirror"] == .choice([.flag(true), .flag(false)]))
        for (text, says) in [(#"{"parameters": {"lr": {"log_uniform": [0, 0.1]}}}"#, "lr"),
                             (#"{"parameters": {"lr": {"normal": [0, 1]}}}"#, "lr"),
                             (#"{"parameters": {"lr": {"uniform": [0.5, 0.1]}}}"#, "low <= high"),
                             (#"{"parameters": {}}"#, "no parameters"),
                             (#"{"parameters": {"lr": {"uniform": [0, 1]}}, "objective": "accuracy"}"#, "objective")] {
            do {
                _ = try read(text)
                Issue.record("\(text) was accepted")
            } catch {
                #expect("\(error)".contains("space.json") && "\(error)".contains(says), "\(error)")
            }
        }
    }

    /// A sweep's trials as short runs on the embedded sample.
    func settings(_ trial: SweepTrial, epochs: Int = 2) throws -> FineTuneSettings {
        var settings = FineTuneSettings(architecture: "cifar-resnet20", flavor: .torchvision, imageSize: 32)
        settings.data.sources = [try TransferDemo.embeddedSample().path]
        settings.data.limitPerClass = 4
        settings.data.validationFraction = 0.25
        settings.unfreeze = .all
        settings.epochs = epochs
        settings.batchSize = 8
        settings.seed = 11
        settings.optimizer.name = trial.values["optimizer"]!.description
        settings.optimizer.learningRate = Float(trial.values["lr"]!.number!)
        settings.head = try .init(parsing: "gap,dropout=\(trial.values["dropout"]!),dense")
        return settings
    }

    @Test("a sweep killed in a trial resumes it to the weights of an uninterrupted sweep, reads the finished ones back, and runs more when asked")
    func resume() throws {
        let straight = temporaryFolder(), interrupted = temporaryFolder()
        defer { [straight, interrupted].forEach { try? FileManager.default.removeItem(at: $0) } }
        let whole = try Sweep(space: space, trials: 3, seed: 2, folder: straight)
        let results = try whole.run { try settings($0) }
        #expect(results.map(\.trial) == [1, 2, 3] && results.allSatisfy { $0.epochs == 2 && $0.objective != nil && $0.peakTensorMB != nil })
        for file in ["sweep.json", "results.csv", "results.md", "results.json", "plots/objective.png", "plots/parameter-lr.png",
                     "plots/parameter-optimizer.png", "trial-001/trial.json", "trial-003/report.md"] {
            #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent(file).path), "\(file)")
        }
        let best = try #require(Sweep.best(results, objective: .validationAccuracy))
        #expect(results.allSatisfy { $0.objective! <= best.objective! })
        let csv = try String(contentsOf: straight.appendingPathComponent("results.csv"), encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 4 && csv[0].hasPrefix("trial,blocks,dropout,lr,optimizer,objective,"))
        #expect(try String(contentsOf: straight.appendingPathComponent("results.md"), encoding: .utf8).contains("**Best: trial \(best.trial)**"))

        // The same sweep, killed after trial 3's first epoch: trial 3 holds a run folder with one epoch and no results.
        let first = try Sweep(space: space, trials: 3, seed: 2, folder: interrupted)
        try first.run { try settings($0, epochs: $0.number == 3 ? 1 : 2) }
        let third = interrupted.appendingPathComponent("trial-003")
        for file in ["trial.json", "metrics.json"] { try FileManager.default.removeItem(at: third.appendingPathComponent(file)) }
        try setEpochs(2, ofRunIn: third)
        let earlier = try Data(contentsOf: interrupted.appendingPathComponent("trial-001/trial.json"))

        let resumed = try Sweep(resuming: interrupted)
        let notes = NoteCollector()
        let again = try resumed.run(observer: notes) { _ in
            Issue.record("a finished or interrupted trial was started anew")
            throw TrainingError.noFeatureFile
        }
        #expect(notes.notes.contains { $0.hasPrefix("resuming") && $0.hasSuffix("after epoch 1 of 2") }, "\(notes.notes)")
        #expect(try Data(contentsOf: interrupted.appendingPathComponent("trial-001/trial.json")) == earlier, "finished trials are read, not rerun")
        #expect(again.map(\.objective) == results.map(\.objective))
        let a = try Checkpoint.load(straight.appendingPathComponent("trial-003/checkpoints/last.safetensors")).model
        let b = try Checkpoint.load(third.appendingPathComponent("checkpoints/last.safetensors")).model
        for ((name, x), (_, y)) in zip(a.namedParameters(), b.namedParameters()) {
            #expect(try x.value.array() == y.value.array(), "\(name)")
        }

        let extended = try Sweep(resuming: interrupted, trials: 4)
        let four = try extended.run { try settings($0) }
        #expect(four.count == 4 && four[3].values == whole.trial(4).values)
        #expect(try Sweep(resuming: interrupted).trials == 4)
    }

    @Test("a validation objective with no validation data is refused before the trial trains")
    func validationNeeded() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sweep = try Sweep(space: space, trials: 1, folder: folder)
        #expect(throws: TrainingError.self) {
            try sweep.run { trial in
                var made = try self.settings(trial)
                made.data.validationFraction = 0
                return made
            }
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("trial-001/config.json").path))
    }
}
