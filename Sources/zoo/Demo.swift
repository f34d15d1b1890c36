import ArgumentParser
import Foundation
import ZooKit

extension TransferDemo.Classifier: ExpressibleByArgument {}

extension ZooCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The main job: extend zoo's CIFAR-10 ResNet-20 to the five CIFAR-100 reptiles, trunk frozen, and evaluate it.",
            discussion: """
                Without --data it trains on the small real sample built into zoo (zoo/samples/cifar15 of its repository: \
                30 training and 20 test images per class, written out once into the cache) in a few seconds. With the full data it runs the full experiment:
                  zoo demo --data ~/data/cifar10 --data ~/data/reptiles
                (folders with train/ and test/ class folders). With the official files:
                  zoo demo --data cifar10:~/cifar-10-batches-bin --data cifar100:~/cifar-100-binary \\
                    --classes airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck,crocodile,dinosaur,lizard,snake,turtle
                """)

        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions
        @Option(help: "Data sources, as zoo finetune --data takes them (default: the embedded sample).") var data: [String] = []
        @Option(help: "Only these classes of the data, comma-separated (for the official files: CIFAR-10's ten and the five reptiles).")
        var classes: String?
        @Option(help: "How the 15-class classifier starts: extend (keep the CIFAR-10 rows), extend-frozen (keep them fixed) or new.")
        var classifier: TransferDemo.Classifier = .extend
        @Option(help: "Epochs to train (default 60; 8 with --synthetic).") var epochs: Int?
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "The run folder to create (default: runs/demo-DATE-TIME).") var out: String?
        @Flag(help: "Instead: train a small CNN on generated images, a quick check of the engine that needs no files.") var synthetic = false

        func run() throws {
            engine.apply()
            if synthetic { return try runSynthetic() }
            do {
                var settings = try TransferDemo.settings(sources: data, classes: classes.map { $0.split(separator: ",").map(String.init) },
                                                         classifier: classifier, epochs: epochs ?? 60, seed: seed)
                settings.precision = precision.requested
                let folder = URL(fileURLWithPath: out ?? "runs/demo-" + Self.timestamp())
                // Written straight through, like the run's own lines, so it comes first in a log.
                FileHandle.standardOutput.write(Data(("zoo demo: \(TransferDemo.weightSet) (trained by zoo on CIFAR-10) extended to the CIFAR-100 reptiles "
                    + "(classifier: \(classifier.rawValue)), trunk frozen, on \(data.isEmpty ? "zoo's built-in sample cifar15 (\(settings.data.sources.joined()))" : settings.data.sources.joined(separator: " + ")), \(Threads.count) threads\n").utf8))
                let observer = ConsoleObserver()
                let result = try FineTuneJob.start(settings, folder: folder, observer: observer)
                guard let test = result.test else {
                    print("no test split in the data: see \(folder.path)/report.md for the training metrics")
                    return
                }
                let old = try Checkpoint.load(try Catalog.localFile(TransferDemo.weightSet).0).info.classNames
                let oldIndices = result.classNames.indices.filter { old.contains(result.classNames[$0]) }
                let newIndices = result.classNames.indices.filter { !old.contains(result.classNames[$0]) }
                let chance = 100 / Float(result.classNames.count)
                print(String(format: "test: %d images, accuracy %.1f%% (chance %.1f%%): the %d CIFAR-10 classes %.1f%%, the %d new classes (%@) %.1f%%; macro F1 %.3f",
                             test.count, 100 * test.accuracy, chance, oldIndices.count, 100 * TransferDemo.accuracy(test, classes: oldIndices),
                             newIndices.count, newIndices.map { result.classNames[$0] }.joined(separator: ", "),
                             100 * TransferDemo.accuracy(test, classes: newIndices), test.macroF1))
                print("run folder: \(folder.path) (report.md, metrics.json, plots/, checkpoints/)")
                print("next: zoo predict \(folder.path)/checkpoints/best.safetensors IMAGE...")
            } catch {
                throw fail("demo", error)
            }
        }

        private static func timestamp() -> String {
            let formatter = DateFormatter()
            formatter.dateFormat = "yyyyMMdd-HHmmss"
            formatter.timeZone = TimeZone(identifier: "UTC")
            return formatter.string(from: Date())
        }

        private func runSynthetic() throws {
            var options = SyntheticDemo.Options()
            options.epochs = epochs ?? 8
            options.seed = seed
            print("zoo demo --synthetic: a 2-block CNN on \(options.trainingImages) generated \(options.imageSize)x\(options.imageSize) images, "
                + "\(SyntheticDemo.classNames.count) classes (\(SyntheticDemo.classNames.joined(separator: ", "))), \(Threads.count) threads")
            let reports = try SyntheticDemo.run(options) { r in
                print(String(format: "epoch %2d/%d  %5.2fs  train loss %.4f acc %5.1f%%  val loss %.4f acc %5.1f%%", r.epoch, options.epochs,
                             r.seconds, r.trainingLoss, 100 * r.trainingAccuracy, r.validationLoss, 100 * r.validationAccuracy))
            }
            if let last = reports.last {
                print(String(format: "done: validation accuracy %.1f%% (chance %.1f%%)", 100 * last.validationAccuracy,
                             100.0 / Double(SyntheticDemo.classNames.count)))
            }
        }
    }
}
