import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct DataCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Show a dataset's classes and counts, and optionally write a preview of augmented samples.",
            discussion: """
                zoo data ~/images                      a folder of class folders (or with train/ and test/)
                zoo data cifar10:~/cifar-10-batches-bin --json
                zoo data cifar100:~/cifar-100-python --first-classes 20 --preview grid.png --size 96 --augment flip,rotation=0.1
                """)

        @Argument(help: "Data: a folder, cifar10:PATH, cifar100:PATH or cifar100-coarse:PATH (several are joined).") var sources: [String]
        @Option(help: "Only these classes, comma-separated.") var classes: String?
        @Option(help: "Only the first N classes.") var firstClasses: Int?
        @Option(help: "At most N samples per class.") var limitPerClass: Int?
        @Option(help: "train or test.") var split = "train"
        @Flag(help: "Print JSON: {\"classes\": [{\"name\", \"count\"}], \"total\"}.") var json = false
        @Option(help: "Write a PNG grid of augmented samples (a row per class) here.") var preview: String?
        @Option(help: "Preview image size.") var size = 96
        @Option(help: "Preview augmentation (as zoo finetune's --augment).") var augment = "flip"
        @Option(help: "Samples per class in the preview.") var columns = 8
        @Option(help: "Random seed of the preview.") var seed: UInt64 = 0

        func run() throws {
            do {
                let source = try DataSource(sources)
                guard split == "train" || split == "test" else { throw DataError("--split \(split)", "expected train or test") }
                var dataset: any Dataset = split == "test" ? try source.test ?? { throw DataError(sources.joined(separator: " "), "has no test split") }() : source.training
                if let classes { dataset = try dataset.classes(classes.split(separator: ",").map(String.init)) }
                if let firstClasses { dataset = try dataset.firstClasses(firstClasses) }
                if let limitPerClass { dataset = dataset.limitPerClass(limitPerClass) }
                let counts = dataset.classCounts
                if json {
                    let listing: [String: Any] = ["classes": zip(dataset.classNames, counts).map { ["name": $0, "count": $1] as [String: Any] },
                                                  "total": dataset.count, "warnings": dataset.warnings]
                    print(String(decoding: try JSONSerialization.data(withJSONObject: listing, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self))
                } else {
                    print("\(dataset.count) images in \(dataset.classNames.count) classes (\(split))")
                    for (name, count) in zip(dataset.classNames, counts) {
                        print("  " + name.padding(toLength: 20, withPad: " ", startingAt: 0) + "\(count)")
                    }
                    for warning in dataset.warnings { print("warning: \(warning)") }
                }
                if let preview {
                    try DataPreview.write(dataset, to: URL(fileURLWithPath: preview), size: size,
                                          augmentation: try AugmentationSpecification(parsing: augment), columns: columns, seed: seed)
                    if !json { print("preview: \(preview)") }
                }
            } catch {
                throw fail("data", error)
            }
        }
    }
}
