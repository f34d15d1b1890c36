import ArgumentParser
import Foundation
import ZooKit

extension TransferDemo.Classifier: ExpressibleByArgument {}

extension ZooCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The main job: extend a CIFAR-10 model zoo ships to the five CIFAR-100 reptiles, train, and evaluate it on the old and the new classes.",
            discussion: """
                Without --data it trains on the small real sample built into zoo (zoo/samples/cifar15 of its repository: \
                30 training and 20 test images per class, written out once into the cache) in a few seconds, the trunk frozen. With the full data it runs \
                the best recipe of EXPERIMENTS.md's CIFAR-10 + reptiles experiment:
                  zoo demo --data ~/data/cifar10 --data ~/data/reptiles [--json]
                (folders with train/ and test/ class folders). With the official files:
                  zoo demo --data cifar10:~/cifar-10-batches-bin --data cifar100:~/cifar-100-binary \\
                    --classes airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck,crocodile,dinosaur,lizard,snake,turtle
                """)

        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions
        @Option(help: "Data sources, as zoo finetune --data takes them (default: the embedded sample).") var data: [String] = []
        @Option(help: "Only these classes of the data, comma-separated (for the official files: CIFAR-10's ten and the five reptiles).")
        var classes: String?
        @Option(help: "The shipped CIFAR-10 model to start from (default: \(TransferDemo.Recipe.sample.base) on the sample, \(TransferDemo.Recipe.fullData.base) with --data).")
        var base: String?
        @Option(help: "How the 15-class classifier starts: extend (keep the CIFAR-10 rows), extend-frozen (keep them fixed) or new.")
        var classifier: TransferDemo.Classifier?
        @Option(help: "What of the trunk trains, as zoo finetune --unfreeze takes it (default: none on the sample, \(TransferDemo.Recipe.fullData.unfreeze) with --data).")
        var unfreeze: String?
        @Option(help: "balanced, or a JSON file of class names to weights, as zoo finetune --class-weight takes it.") var classWeight: String?
        @Option(help: "Epochs to train (default \(TransferDemo.Recipe.sample.epochs) on the sample, \(TransferDemo.Recipe.fullData.epochs) with --data; 8 with --synthetic).")
        var epochs: Int?
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "The run folder to create (default: runs/demo-DATE-TIME).") var out: String?
        @Flag(help: "Print only a JSON object on standard output: accuracy, old_accuracy, new_accuracy, f1 (macro), precision, recall (fractions), and the run's facts; the epoch lines go to standard error.")
        var json = false
        @Flag(help: "Instead: train a small CNN on generated images, a quick check of the engine that needs no files.") var synthetic = false

        /// The recipe for the data at hand, with the options given applied to it.
        func recipe() throws -> TransferDemo.Recipe {
            var recipe = data.isEmpty ? TransferDemo.Recipe.sample : TransferDemo.Recipe.fullData
            if let base { recipe.base = base }
            if let classifier { recipe.classifier = classifier }
            if let unfreeze { recipe.unfreeze = try FreezePlan(parsing: unfreeze) }
            if let classWeight { recipe.classWeighting = try ClassWeighting(parsing: classWeight) }
            if let epochs { recipe.epochs = epochs }
            return recipe
        }

        func run() throws {
            engine.apply()
            if synthetic { return try runSynthetic() }
            do {
                let recipe = try recipe()
                var settings = try TransferDemo.settings(recipe, sources: data, classes: classes.map { $0.split(separator: ",").map(String.init) },
                                                         seed: seed)
                settings.precision = precision.requested
                let folder = URL(fileURLWithPath: out ?? "runs/demo-" + Self.timestamp())
                let trunk = recipe.unfreeze == .headOnly ? "trunk frozen" : "unfreeze \(recipe.unfreeze)"
                // Written straight through, like the run's own lines, so it comes first in a log.
                FileHandle(fileDescriptor: json ? STDERR_FILENO : STDOUT_FILENO).write(Data(("zoo demo: \(recipe.base) (trained by zoo on CIFAR-10) extended to the CIFAR-100 reptiles "
                    + "(classifier: \(recipe.classifier.rawValue)), \(trunk)\(recipe.classWeighting.map { ", class weights \($0)" } ?? ""), on \(data.isEmpty ? "zoo's built-in sample cifar15 (\(settings.data.sources.joined()))" : settings.data.sources.joined(separator: " + ")), \(Threads.count) threads\n").utf8))
                let observer = ConsoleObserver(output: json ? STDERR_FILENO : STDOUT_FILENO)
                let started = Date()
                let result = try FineTuneJob.start(settings, folder: folder, observer: observer)
                guard let test = result.test else {
                    let message = "no test split in the data: see \(folder.path)/report.md for the training metrics"
                    if json { throw ValidationError(message) }
                    print(message)
                    return
                }
                let old = try Checkpoint.info(of: try Catalog.localFile(recipe.base).0).classNames
                let oldIndices = result.classNames.indices.filter { old.contains(result.classNames[$0]) }
                let newIndices = result.classNames.indices.filter { !old.contains(result.classNames[$0]) }
                let oldAccuracy = TransferDemo.accuracy(test, classes: oldIndices), newAccuracy = TransferDemo.accuracy(test, classes: newIndices)
                if json {
                    // Six decimals: a Float's digits, without the binary noise of its Double.
                    func fraction(_ value: Float) -> Double { (Double(value) * 1e6).rounded() / 1e6 }
                    let object: [String: Any] = [
                        "accuracy": fraction(test.accuracy), "old_accuracy": fraction(oldAccuracy), "new_accuracy": fraction(newAccuracy),
                        "f1": fraction(test.macroF1), "precision": fraction(test.macroPrecision), "recall": fraction(test.macroRecall),
                        "test_images": test.count, "old_classes": oldIndices.map { result.classNames[$0] }, "new_classes": newIndices.map { result.classNames[$0] },
                        "base": recipe.base, "classifier": recipe.classifier.rawValue, "unfreeze": recipe.unfreeze.description,
                        "class_weight": recipe.classWeighting?.text ?? NSNull(), "epochs": recipe.epochs, "seconds": Date().timeIntervalSince(started).rounded(),
                        "run_folder": folder.path,
                    ]
                    let bytes = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: bytes, as: UTF8.self))
                    return
                }
                let chance = 100 / Float(result.classNames.count)
                print(String(format: "test: %d images, accuracy %.1f%% (chance %.1f%%): the %d CIFAR-10 classes %.1f%%, the %d new classes (%@) %.1f%%; macro F1 %.3f",
                             test.count, 100 * test.accuracy, chance, oldIndices.count, 100 * oldAccuracy,
                             newIndices.count, newIndices.map { result.classNames[$0] }.joined(separator: ", "),
                             100 * newAccuracy, test.macroF1))
                print("run folder: \(folder.path) (report.md, metrics.json, plots/, checkpoints/)")
                print("next: zoo predict \(folder.path)/checkpoints/best.safetensors IMAGE...")
            } catch let error as ValidationError {
                throw error
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
