import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooData
import ZooModels
import ZooTraining
import ZooCommands

/// Striped and square patterns as 8-bit images (the demo's task), in memory.
func patternDataset(count: Int, size: Int = 32, seed: UInt64) throws -> ArrayDataset {
    var generator = SeededGenerator(seed: seed)
    let (values, labels) = SyntheticDemo.images(count: count, size: size, generator: &generator)
    let plane = size * size
    let images = (0..<count).map { index -> Image in
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for channel in 0..<3 {
            for pixel in 0..<plane {
                let value = values[(index * 3 + channel) * plane + pixel]
                pixels[pixel * 3 + channel] = UInt8(min(max(value * 60 + 128, 0), 255))
            }
        }
        return Image(width: size, height: size, pixels: pixels)
    }
    return try ArrayDataset(images: images, labels: labels, classNames: SyntheticDemo.classNames)
}

/// Asks the run in `folder` for `epochs` in all by editing its `config.json`, as a user extending
/// a run would (the tests' stand-in for a run killed after its first epochs).
func setEpochs(_ epochs: Int, ofRunIn folder: URL) throws {
    let configuration = folder.appendingPathComponent("config.json")
    var saved = try JSONDecoder().decode(FineTuneSettings.self, from: Data(contentsOf: configuration))
    saved.epochs = epochs
    try JSONEncoder().encode(saved).write(to: configuration)
}

@Suite("Fine-tuning", .serialized)
struct FineTunerTests {
    func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("zoo-run-\(UUID().uuidString)")
    }

    func settings() -> FineTuneSettings {
        var settings = FineTuneSettings(architecture: "mobilenetv2", flavor: .torchvision, imageSize: 32)
        settings.classNames = SyntheticDemo.classNames
        settings.epochs = 3
        settings.batchSize = 16
        settings.unfreeze = .fraction(0.3)
        settings.optimizer.learningRate = 0.05
        settings.preprocessing = .torch
        settings.seed = 3
        return settings
    }

    @Test("a config.json without the settings later versions added still reads, with their defaults")
    func olderConfiguration() throws {
        var original = settings()
        original.trunkCache = .off
        original.testTimeAugmentation = false
        original.features = "train.h5"
        var json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(original)) as? [String: Any])
        for key in ["trunkCache", "testTimeAugmentation", "features", "testFeatures", "freezeOldRows", "data"] { json.removeValue(forKey: key) }
        let read = try JSONDecoder().decode(FineTuneSettings.self, from: JSONSerialization.data(withJSONObject: json))
        var expected = original
        expected.trunkCache = .automatic
        expected.testTimeAugmentation = true
        expected.features = nil
        expected.data = DataOptions()
        #expect(read == expected)
        json.removeValue(forKey: "architecture")
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(FineTuneSettings.self, from: JSONSerialization.data(withJSONObject: json)) }
    }

    func model(_ settings: FineTuneSettings) throws -> ImageModel {
        Initialization.seed(21)
        let model = try Architecture.mobilenetv2.make(flavor: .torchvision, top: .features(pooling: nil))
        model.head = try settings.head.specification(classes: settings.classNames.count).head(inputFeatures: model.featureChannels)
        return model
    }

    @Test("--norm-bias-lr-scale moves exactly the batch norms' shifts that many times as far in a step")
    func batchNormShiftRate() throws {
        let data = TrainingData(training: try patternDataset(count: 8, size: 32, seed: 4))
        var settings = settings()
        (settings.epochs, settings.batchSize, settings.unfreeze, settings.optimizer.momentum) = (1, 8, .all, 0)
        settings.data.augmentation = "none"
        settings.testTimeAugmentation = false
        func stepped(_ scale: Float?) throws -> (before: [(String, [Float])], after: [[Float]], shifts: Set<String>) {
            settings.optimizer.batchNormShiftRateScale = scale
            let model = try model(settings)
            let before = try model.namedParameters().map { ($0.name, try $0.parameter.value.array()) }
            let shifts = Set(model.namedModules().compactMap { name, module in module is BatchNorm ? name + ".bias" : nil })
            try FineTuner(settings: settings, model: model, data: data).run()
            return (before, try model.parameters.map { try $0.value.array() }, shifts)
        }
        let plain = try stepped(nil), scaled = try stepped(8)
        #expect(!plain.shifts.isEmpty)
        // Running statistics too: the one step's forward pass is the same in both runs.
        for (index, (name, start)) in plain.before.enumerated() {
            let factor: Float = plain.shifts.contains(name) ? 8 : 1
            let moved = zip(plain.after[index], start).map { $0 - $1 }, scaledMoved = zip(scaled.after[index], start).map { $0 - $1 }
            let size = moved.reduce(0) { max($0, abs($1)) }
            #expect(zip(moved, scaledMoved).allSatisfy { abs(factor * $0 - $1) <= 1e-3 * factor * size + 1e-7 }, "\(name)")
        }
    }

    @Test("a run writes its folder, and a run stopped after an epoch and resumed ends with the same weights")
    func resume() throws {
        let data = TrainingData(training: try patternDataset(count: 64, seed: 1), validation: try patternDataset(count: 32, seed: 2),
                                test: try patternDataset(count: 32, seed: 3))
        let straight = temporaryFolder(), interrupted = temporaryFolder()
        defer { [straight, interrupted].forEach { try? FileManager.default.removeItem(at: $0) } }
        let whole = try FineTuner(settings: settings(), model: model(settings()), data: data, folder: straight)
        let result = try whole.run()
        #expect(result.history.epochs.count == 3)
        for file in ["config.json", "history.csv", "history.json", "checkpoints/last.safetensors", "checkpoints/last.json",
                     "checkpoints/best.safetensors", "metrics.json", "report.md", "plots/loss.png", "plots/accuracy.png",
                     "plots/confusion.png", "plots/per_class_accuracy.png"] {
            #expect(FileManager.default.fileExists(atPath: straight.appendingPathComponent(file).path), "\(file)")
        }

        var first = settings()
        first.epochs = 1
        try FineTuner(settings: first, model: model(first), data: data, folder: interrupted).run()
        // The run's configuration said 1 epoch; the resumed run is asked for 3 by editing it, as a user extending a run would.
        try setEpochs(3, ofRunIn: interrupted)
        let resumed = try FineTuner(resuming: interrupted, data: data)
        #expect(resumed.completedEpochs == 1)
        try resumed.run()
        for ((name, a), (_, b)) in zip(whole.model.namedParameters(), resumed.model.namedParameters()) {
            #expect(try a.value.array() == b.value.array(), "\(name)")
        }
        #expect(throws: TrainingError.runExists(folder: straight)) { try FineTuner(settings: settings(), model: model(settings()), data: data, folder: straight) }
    }

    @Test("class weights: balanced ones from the class counts (as scikit-learn's), a file's by class name, bad files named")
    func classWeights() throws {
        // CIFAR-10 beside the five reptiles: 5,000 and 500 samples a class.
        let counts = [Int](repeating: 5000, count: 10) + [Int](repeating: 500, count: 5)
        let balanced = ClassWeighting.balancedWeights(classCounts: counts)
        #expect(balanced.prefix(10).allSatisfy { abs($0 - 0.7) < 1e-6 } && balanced.suffix(5).allSatisfy { abs($0 - 7) < 1e-5 })
        #expect(ClassWeighting.balancedWeights(classCounts: [3, 0, 1]) == [Float(4) / 6, 1, 2])

        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let data = try patternDataset(count: 24, seed: 1)
        func write(_ text: String) throws -> String {
            let file = folder.appendingPathComponent("weights-\(UUID().uuidString).json")
            try Data(text.utf8).write(to: file)
            return file.path
        }
        let names = data.classNames
        let good = try write("{\"\(names[1])\": 2.5, \"\(names[0])\": 0}")
        var expected = [Float](repeating: 1, count: names.count)
        (expected[0], expected[1]) = (0, 2.5)
        #expect(try ClassWeighting(parsing: good).weights(for: data) == expected)
        #expect(try ClassWeighting(parsing: "balanced") == .balanced)
        for (text, says) in [("{\"zebra\": 2}", "zebra"), ("{\"\(names[0])\": -1}", "-1"), ("[1, 2]", "JSON object"), ("{\"\(names[0])\": \"x\"}", "JSON object")] {
            let file = try write(text)
            #expect(throws: TrainingError.self) { try ClassWeighting.file(file).weights(for: data) }
            do { _ = try ClassWeighting.file(file).weights(for: data) } catch {
                #expect("\(error)".contains(file) && "\(error)".contains(says), "\(error)")
            }
        }
        #expect(throws: TrainingError.self) { try ClassWeighting.file("/nonexistent/weights.json").weights(for: data) }
    }

    @Test("class weights and balanced sampling: stored in config.json, they change training, and a resumed run ends with the same weights")
    func weightedAndBalancedResume() throws {
        let data = TrainingData(training: try patternDataset(count: 48, seed: 1), test: try patternDataset(count: 16, seed: 3))
        var weighted = settings()
        weighted.epochs = 2
        weighted.classWeighting = .balanced
        weighted.data.sampler = .balanced
        let straight = temporaryFolder(), interrupted = temporaryFolder(), plain = temporaryFolder()
        defer { [straight, interrupted, plain].forEach { try? FileManager.default.removeItem(at: $0) } }
        let whole = try FineTuner(settings: weighted, model: model(weighted), data: data, folder: straight)
        try whole.run()
        let stored = try JSONDecoder().decode(FineTuneSettings.self, from: Data(contentsOf: straight.appendingPathComponent("config.json")))
        #expect(stored.classWeights == ClassWeighting.balancedWeights(classCounts: data.training.classCounts))
        #expect(stored.data.sampler == .balanced && stored.classWeighting == .balanced)
        #expect(try String(contentsOf: straight.appendingPathComponent("report.md"), encoding: .utf8).contains("class-balanced sampling; class weights (`balanced`)"))

        var unweighted = weighted
        unweighted.classWeighting = nil
        unweighted.data.sampler = .uniform
        let other = try FineTuner(settings: unweighted, model: model(unweighted), data: data, folder: plain)
        try other.run()
        #expect(try whole.model.parameters.last!.value.array() != other.model.parameters.last!.value.array())

        var first = weighted
        first.epochs = 1
        try FineTuner(settings: first, model: model(first), data: data, folder: interrupted).run()
        try setEpochs(2, ofRunIn: interrupted)
        let resumed = try FineTuner(resuming: interrupted, data: data)
        try resumed.run()
        for ((name, a), (_, b)) in zip(whole.model.namedParameters(), resumed.model.namedParameters()) {
            #expect(try a.value.array() == b.value.array(), "\(name)")
        }
        var wrong = weighted
        wrong.classWeights = [1, 2]
        #expect(throws: TrainingError.classWeightsDoNotFit(count: 2, classes: wrong.classNames.count)) {
            try FineTuner(settings: wrong, model: model(wrong), data: data)
        }
    }

    @Test("a run without a folder writes nothing and ends with the weights and history of a run with one, best epoch restored")
    func inMemory() throws {
        let data = TrainingData(training: try patternDataset(count: 64, seed: 1), validation: try patternDataset(count: 32, seed: 2),
                                test: try patternDataset(count: 32, seed: 3))
        var patient = settings()
        patient.earlyStoppingPatience = 1
        patient.optimizer.learningRate = 0.5
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let onDisk = try FineTuner(settings: patient, model: model(patient), data: data, folder: folder)
        let written = try onDisk.run()
        func scratchFolders() -> Set<String> {
            Set(((try? FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)) ?? [])
                .filter { $0.hasPrefix("zoo-fit-") })
        }
        let before = scratchFolders()
        do {
            let inMemory = try FineTuner(settings: patient, model: model(patient), data: data)
            let result = try inMemory.run()
            #expect(result.folder == nil && inMemory.folder == nil)
            #expect(result.history.epochs.map { var epoch = $0; epoch.seconds = 0; return epoch }
                == written.history.epochs.map { var epoch = $0; epoch.seconds = 0; return epoch })
            #expect(result.test?.accuracy == written.test?.accuracy)
            for ((name, a), (_, b)) in zip(onDisk.model.namedParameters(), inMemory.model.namedParameters()) {
                #expect(try a.value.array() == b.value.array(), "\(name)")
            }
        }
        // The tuner's scratch folder (trunk-cache spill files) goes with it.
        #expect(scratchFolders() == before)
    }

    @Test("training with the frozen trunk cached gives the weights of training without it")
    func trunkCache() throws {
        var data = TrainingData(training: try patternDataset(count: 48, seed: 1), validation: try patternDataset(count: 16, seed: 2))
        data.trainingIsAugmented = false
        var results: [[Float]] = []
        for mode in [TrunkCacheMode.off, .automatic] {
            var settings = settings()
            settings.trunkCache = mode
            settings.epochs = 3
            let folder = temporaryFolder()
            defer { try? FileManager.default.removeItem(at: folder) }
            let tuner = try FineTuner(settings: settings, model: model(settings), data: data, folder: folder)
            let notes = NoteCollector()
            try tuner.run(observer: notes)
            #expect(notes.notes.contains { $0.hasPrefix(mode == .off ? "frozen-trunk cache: off (asked)" : "frozen-trunk cache: on") }, "\(notes.notes)")
            results.append(try tuner.model.namedParameters().flatMap { try $0.parameter.value.array() })
        }
        #expect(results[0] == results[1])
    }

    @Test("checkpoints rebuild their model and reject files that are not checkpoints")
    func checkpoints() throws {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try model(settings())
        let info = CheckpointInfo(architecture: "mobilenetv2", flavor: .torchvision, head: settings().head.text, classNames: SyntheticDemo.classNames,
                                  imageSize: 32, preprocessing: .torch, epoch: 0, unfreeze: "none")
        let url = folder.appendingPathComponent("model.safetensors")
        try Checkpoint.save(original, info: info, optimizerState: ["step": [4]], to: url)
        let loaded = try Checkpoint.load(url)
        #expect(loaded.info == info)
        #expect(loaded.optimizerState["step"] == [4])
        let x = try Tensor(shape: [2, 3, 32, 32], values: (0..<(2 * 3 * 32 * 32)).map { Float($0 % 17) / 17 })
        #expect(try loaded.model(x, .inference()).array() == original(x, .inference()).array())
        let plain = folder.appendingPathComponent("plain.safetensors")
        try WeightExport.safetensors(original, to: plain)
        #expect(throws: TrainingError.notACheckpoint(file: plain)) { try Checkpoint.load(plain) }
    }
}

/// Keeps a run's notes.
final class NoteCollector: TrainingObserver {
    var notes: [String] = []
    func epochStarted(_ epoch: Int, of total: Int, batches: Int) {}
    func batchFinished(_ batch: Int, of total: Int, loss: Float) {}
    func epochFinished(_ record: EpochRecord, of total: Int) {}
    func note(_ message: String) { notes.append(message) }
}
