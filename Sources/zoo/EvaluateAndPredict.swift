import ArgumentParser
import Foundation
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
        @OptionGroup var weightFile: WeightFileOptions
        @OptionGroup var data: DataArguments
        @Flag(help: "Average each image's prediction with its mirror image's (--tta mirror).") var mirrored = false
        @Option(help: "Test-time augmentation: none, mirror (the image and its mirror), or mirror-translate (also both moved by a pixel up-left and down-right, as airbench evaluates).")
        var tta: TestTimeAugmentation?
        @Option(help: "Batch size.") var batch = 32
        @Flag(help: "Print JSON: accuracy, top5, per_class, precision, recall, f1, confusion, ...") var json = false
        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions

        /// `--tta`, or `--mirrored`'s mirror; both only when they agree.
        func testTimeAugmentation() throws -> TestTimeAugmentation {
            guard let tta else { return mirrored ? .mirror : .none }
            guard !mirrored || tta == .mirror else { throw ValidationError("--mirrored is --tta mirror: give one of them, not --tta \(tta.rawValue) too") }
            return tta
        }

        func run() throws {
            engine.apply()
            let augmentation = try testTimeAugmentation()
            do {
                let source = try DataSource(data.sources)
                var dataset: any Dataset = source.test ?? source.training
                if let classes = data.classes { dataset = try dataset.classes(classes.split(separator: ",").map(String.init)) }
                if let limit = data.limitPerClass { dataset = dataset.limitPerClass(limit) }
                let loaded = try weightFile.load(target)
                var classifier = try Classifier(loaded, classNames: weightFile.weights == nil ? nil : dataset.classNames)
                try precision.prepare(&classifier, from: loaded)
                let summary = try classifier.evaluate(dataset, batchSize: batch, skipDamaged: data.skipDamaged, testTimeAugmentation: augmentation)
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
        static let configuration = CommandConfiguration(
            abstract: "Classify images: per image the most probable classes and their probabilities, as Keras's decode_predictions gives them.",
            discussion: """
                zoo predict runs/d201/checkpoints/best.safetensors cat.jpg
                zoo predict resnet50.tv_in1k cat.jpg dog.png --top 3 --json     (a weight set pulled with zoo pull, or one zoo ships)
                zoo predict resnet50 --weights resnet50-0676ba61.pth --flavor torchvision cat.jpg
                The catalog's ImageNet weight sets name their outputs from the ImageNet-1k class list zoo ships; so does any \
                other weight file whose classifier has 1000 outputs.
                """)

        @Argument(help: "A zoo checkpoint (a file, or a weight set zoo ships), a weight set of the catalog pulled into the cache, or an architecture used with --weights.")
        var target: String
        @Argument(help: "JPEG or PNG images.") var images: [String]
        @OptionGroup var weightFile: WeightFileOptions
        @Option(help: "Classes to show per image.") var top = 5
        @Flag(help: "Print JSON: per image {image, top: [{rank, index, class, probability}]}.") var json = false
        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            if top < 1 { throw ValidationError("--top must be at least 1") }
            if images.isEmpty { throw ValidationError("give at least one image") }
        }

        func run() throws {
            engine.apply()
            do {
                let loaded = try weightFile.load(target)
                var classifier = try Classifier(loaded)
                try precision.prepare(&classifier, from: loaded)
                let decoded = try images.map { try ImageCodec.decode(contentsOf: URL(fileURLWithPath: $0)) }
                let predictions = try classifier.predict(decoded, top: top)
                if json {
                    struct Ranked: Encodable { var rank: Int, index: Int, `class`: String, probability: Float }
                    struct Row: Encodable { var image: String, top: [Ranked] }
                    try printJSON(zip(images, predictions).map { path, ranked in
                        Row(image: path, top: ranked.enumerated().map { Ranked(rank: $0 + 1, index: $1.index, class: $1.className, probability: $1.probability) })
                    })
                } else {
                    for (path, ranked) in zip(images, predictions) {
                        print(path)
                        for (rank, prediction) in ranked.enumerated() {
                            print(String(format: "  %2d  %6.2f%%  ", rank + 1, 100 * prediction.probability) + "\(prediction.className)  (\(prediction.index))")
                        }
                    }
                }
            } catch {
                throw fail("predict", error)
            }
        }
    }
}
