import ArgumentParser
import Foundation
import ZooCatalog
import ZooKit

extension ZooCommand {
    struct Evaluate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evaluate a checkpoint (or a model with a weight file) on data: accuracy, top-5, per-class accuracy, precision, recall, F1, confusion.",
            discussion: """
                zoo evaluate runs/d201/checkpoints/best.safetensors --data cifar10:~/cifar-10-batches-bin
                zoo evaluate resnet50 --weights model.pth --flavor torchvision --data images/ --size 224
                The test split of the data is used when it has one.
                """)

        @Argument(help: "A zoo checkpoint (a file, or a weight set zoo ships, such as cifar-resnet20.zoo_cifar10), or an architecture used with --weights.")
        var target: String
        @Option(help: "A weight file for the architecture (its classifier must have one output per class).") var weights: String?
        @Option(help: "keras or torchvision (with --weights; default keras, torchvision for the CIFAR ResNets).") var flavor: Flavor?
        @Option(help: "Input size (with --weights; default: the architecture's).") var size: Int?
        @Option(help: "Preprocessing (with --weights; default: the architecture's usual one for the flavour).") var preprocess: Preprocessing?
        @OptionGroup var data: DataArguments
        @Flag(help: "Average each image's prediction with its mirror image's.") var mirrored = false
        @Option(help: "Batch size.") var batch = 32
        @Flag(help: "Print JSON: accuracy, top5, per_class, precision, recall, f1, confusion, ...") var json = false
        @OptionGroup var engine: EngineOptions

        func run() throws {
            engine.apply()
            do {
                let source = try DataSource(data.sources)
                var dataset: any Dataset = source.test ?? source.training
                if let classes = data.classes { dataset = try dataset.classes(classes.split(separator: ",").map(String.init)) }
                if let limit = data.limitPerClass { dataset = dataset.limitPerClass(limit) }
                let classifier: Classifier
                if let weights {
                    let architecture = try Architecture(named: target)
                    let (file, set) = try Catalog.localFile(weights)
                    let flavor = flavor ?? (architecture.isCIFAR ? .torchvision : .keras)
                    let mode = try preprocess ?? set.map { try Preprocessing(manifest: $0.preprocessing.rawValue) } ?? architecture.defaultPreprocessing(flavor)
                    classifier = try Classifier(architecture: architecture, flavor: flavor, weights: file, classNames: dataset.classNames,
                                                imageSize: size ?? architecture.defaultInputSize, preprocessing: mode)
                } else {
                    classifier = try Classifier(checkpoint: try Catalog.localFile(target).0)
                }
                let summary = try classifier.evaluate(dataset, batchSize: batch, skipDamaged: data.skipDamaged, mirrored: mirrored)
                if json {
                    print(summary.json)
                } else {
                    print(String(format: "%d images: accuracy %.2f%%, top-5 %.2f%%, loss %.4f, macro precision %.3f, recall %.3f, F1 %.3f",
                                 summary.samples, 100 * summary.accuracy, 100 * summary.top5, summary.loss, summary.precision,
                                 summary.recall, summary.f1))
                    for name in summary.classNames {
                        print("  " + name.padding(toLength: 16, withPad: " ", startingAt: 0) + String(format: "%6.2f%%", 100 * (summary.perClass[name] ?? 0)))
                    }
                }
            } catch {
                throw fail("evaluate", error)
            }
        }
    }

    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Classify images with a checkpoint: the most probable classes and their probabilities.")

        @Argument(help: "A zoo checkpoint (a file, or a weight set zoo ships).") var checkpoint: String
        @Argument(help: "JPEG or PNG images.") var images: [String]
        @Option(help: "Classes to show per image.") var top = 5
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var engine: EngineOptions

        func run() throws {
            engine.apply()
            do {
                let classifier = try Classifier(checkpoint: try Catalog.localFile(checkpoint).0)
                let decoded = try images.map { try ImageCodec.decode(contentsOf: URL(fileURLWithPath: $0)) }
                let predictions = try classifier.predict(decoded, top: top)
                if json {
                    let rows = zip(images, predictions).map { path, ranked in
                        ["image": path, "top": ranked.map { ["class": $0.className, "probability": $0.probability] as [String: Any] }] as [String: Any]
                    }
                    print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
                } else {
                    for (path, ranked) in zip(images, predictions) {
                        print(path)
                        for (name, probability) in ranked { print(String(format: "  %6.2f%%  %@", 100 * probability, name)) }
                    }
                }
            } catch {
                throw fail("predict", error)
            }
        }
    }
}
