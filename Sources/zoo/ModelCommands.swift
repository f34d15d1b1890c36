import ArgumentParser
import Foundation
import ZooKit

extension Flavor: ExpressibleByArgument {}
extension TestTimeAugmentation: ExpressibleByArgument {}
extension Preprocessing: ExpressibleByArgument {}

/// Prints `value` as pretty JSON with sorted keys: the `--json` output of every command.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes `message` to standard error and fails the command, so errors read as
/// `zoo <command>: <message>` without a stack of Swift types.
func fail(_ command: String, _ error: Error) -> ExitCode {
    // What print left buffered belongs before the error in a log of both streams.
    fflush(nil)
    let message = (error as? TrainingError)?.commandLineDescription ?? "\(error)"
    FileHandle.standardError.write(Data("zoo \(command): \(message)\n".utf8))
    return ExitCode.failure
}

extension ZooCommand {
    struct Models: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the architectures and the known weight sets.")

        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            if json {
                struct Listing: Encodable {
                    var architectures: [[String: String]]
                    var weightSets: [WeightSet]
                    enum CodingKeys: String, CodingKey { case architectures, weightSets = "weight_sets" }
                }
                let architectures = Architecture.allCases.map {
                    ["name": $0.name, "description": $0.summary, "default_input_size": String($0.defaultInputSize),
                     "flavors": $0.flavors.map(\.rawValue).joined(separator: ",")]
                }
                try printJSON(Listing(architectures: architectures, weightSets: Catalog.weightSets))
                return
            }
            print("Architectures (names are accepted with or without `_`: `inception_v3`, `mobilenet_v2`):")
            for architecture in Architecture.allCases {
                print("  " + architecture.name.padding(toLength: 20, withPad: " ", startingAt: 0) + architecture.summary
                    + ", default input \(architecture.defaultInputSize), " + architecture.flavors.map(\.rawValue).joined(separator: " and "))
            }
            print("\nWeight sets (`zoo pull NAME` downloads one; cache: \(WeightCache().root.path)):")
            for set in Catalog.weightSets {
                let accuracy = set.metrics?.top1.map { String(format: "top-1 %.1f%%", $0) } ?? ""
                print("  " + set.name.padding(toLength: 44, withPad: " ", startingAt: 0)
                    + "\(set.flavor.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0))"
                    + "\(set.preprocessing.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0))\(set.inputSize)  \(accuracy)")
            }
        }
    }

    struct Pull: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download a weight set into the cache and verify its checksum.",
            discussion: "The cache is $ZOO_HOME, else $XDG_CACHE_HOME/zoo, else ~/.cache/zoo. An interrupted download resumes.")

        @Argument(help: "A weight set, as `zoo models` lists it (resnet50.keras_imagenet).") var name: String

        func run() throws {
            do {
                let set = try Catalog.weightSet(named: name)
                let isTerminal = isatty(STDERR_FILENO) != 0
                let file = try WeightDownload.pull(set) { received, total in
                    guard isTerminal else { return }
                    let percent = total.map { String(format: " %3.0f%%", 100 * Double(received) / Double(max($0, 1))) } ?? ""
                    FileHandle.standardError.write(Data(String(format: "\r%@: %.1f MB%@", set.file, Double(received) / 1e6, percent).utf8))
                }
                if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
                print(file.path)
            } catch {
                throw fail("pull", error)
            }
        }
    }

    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a model's layers with output shapes and parameter counts, as Keras's model.summary() does.",
            discussion: """
                With several architectures, one row each: total, trainable and non-trainable parameters and \
                multiply-adds (a Markdown table; --json gives the summaries as an array):
                zoo summary alexnet vgg16 googlenet resnet152 densenet121 --flavor torchvision --size 96 \\
                  --head gap,dropout=0.5,dense --classes 100
                """)

        @Argument(help: "The architectures (zoo models lists them).") var models: [String]
        @Option(help: "Which framework's graph: keras or torchvision (default: the architecture's first, keras where it has one).")
        var flavor: Flavor?
        @Option(help: "Input height and width (default: the architecture's).") var size: Int?
        @Option(help: "Classes of the classifier (--top, or a head's final dense).") var classes = 1000
        @Flag(help: "Include the framework's classifier (Keras include_top=True).") var top = false
        @Option(help: "A head instead: comma-separated gap|gmp|flatten, dropout=RATE, dense=UNITS[:ACTIVATION], dense.") var head: String?
        @Option(help: "Layers of the base that train, counted from the top of its Keras layer list: 20%, 12, all or none (the head always trains).")
        var unfreeze: String?
        @Flag(help: "Print JSON: {\"total\", \"trainable\", \"non_trainable\", \"layers\": [...]}.") var json = false

        func validate() throws {
            if top, head != nil { throw ValidationError("--top and --head exclude each other") }
            if classes < 1 { throw ValidationError("--classes must be at least 1") }
        }

        func run() throws {
            do {
                let summaries = try models.map(summary)
                if summaries.count == 1 {
                    print(json ? summaries[0].json : summaries[0].table)
                } else {
                    print(json ? "[\n" + summaries.map(\.json).joined(separator: ",\n") + "\n]" : ModelSummary.comparison(summaries))
                }
            } catch {
                throw fail("summary", error)
            }
        }

        private func summary(_ model: String) throws -> ModelSummary {
            let architecture = try Architecture(named: model)
            let inputSize = size ?? architecture.defaultInputSize
            // Only the counts matter: no random weights.
            let built = try Initialization.skippingRandomness {
                try architecture.make(flavor: flavor ?? architecture.defaultFlavor, top: top ? .classifier(classes: classes) : .features(pooling: nil), inputSize: inputSize)
            }
            if let head {
                built.head = try HeadSpecification(parsing: head, classes: classes).head(for: built, inputSize: inputSize)
            }
            if let unfreeze { try FreezePlan(parsing: unfreeze).apply(to: built) }
            return try ModelSummary(built, inputSize: inputSize)
        }
    }

    struct Extract: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run images through a model and write layers' outputs, with labels, class names and sample ids (.h5, .npy or .safetensors).",
            discussion: """
                zoo extract densenet201 --weights densenet201_notop.h5 --data cifar10:~/cifar-10-batches-bin --size 96 \\
                  --layer relu --out train-features.h5
                zoo extract mobilenetv2 --weights model.pth --input images.npy --out logits.npy

                --data reads a dataset (its training split, or --split test), resizing each image to --size; \
                --input takes a float32 .npy array [N, H, W, 3] of RGB pixels (0-255) as it is. Both run the \
                same batches through the same code. Outputs are channels-last: [N, H, W, C] for feature \
                maps, [N, C] for vectors; without --layer the model's output (logits when the weights \
                have a classifier, else the last feature map) is written, named "output".

                The file is written as FILE.partial with progress in FILE.progress; after a kill, the \
                same command continues where it stopped and the finished file equals an uninterrupted \
                one. FILE appears only when complete, and readers refuse an unfinished one. .npy holds \
                one layer: its labels go to STEM.labels.npy and the rest to STEM.json.
                """)

        @Argument(help: "The architecture (zoo models lists them).") var model: String
        @Option(help: "A weight file (.h5, .weights.h5, .keras, .pt/.pth, .safetensors, .npz), a weight set pulled with zoo pull, or a zoo checkpoint.")
        var weights: String
        @Option(help: "keras or torchvision (default: the weight set's or checkpoint's, or keras for Keras files and torchvision for others).")
        var flavor: Flavor?
        @Option(help: "The input array (.npy, float32 [N, H, W, 3]).") var input: String?
        @OptionGroup var data: DataArguments
        @Option(help: "With --data: which split, train or test.") var split = "train"
        @Option(help: "With --data: the height and width images are resized to (default: the architecture's).") var size: Int?
        @Option(help: "With --data: tensorflow or torchvision resizing (bilinear).") var resizeConvention: ResizeConvention = .tensorflow
        @Option(help: "Where to write the features: FILE.h5, FILE.npy or FILE.safetensors.") var out: String
        @Option(help: "Layers of the layer list (zoo summary lists them), comma-separated; default: the model's output.") var layer: String?
        @Option(help: "none, caffe, tf or torch (default: the weight set's or checkpoint's mode; for --data otherwise the architecture's usual one, for --input none).")
        var preprocess: Preprocessing?
        @Option(help: "Images per batch.") var batch = 32
        @Option(help: "With --data: threads reading images.") var workers = 2
        @Flag(help: "Load even if the file does not fit the model exactly (mismatched tensors are skipped and reported).")
        var nonStrict = false
        @Option(help: "A JSON list of renaming rules for foreign checkpoints: [{\"pattern\": \"^backbone\\\\.\", \"replacement\": \"\"}].")
        var renameRules: String?
        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            guard (input == nil) != data.sources.isEmpty else { throw ValidationError("give the images with either --input or --data") }
            guard ["train", "test"].contains(split) else { throw ValidationError("--split is train or test") }
        }

        func run() throws {
            engine.apply()
            do {
                var options = DataOptions()
                options.sources = data.sources
                options.classes = data.classes.map { $0.split(separator: ",").map(String.init) }
                options.firstClasses = data.firstClasses
                options.limitPerClass = data.limitPerClass
                let images: ExtractionJob.Images = input.map { .array(URL(fileURLWithPath: $0)) }
                    ?? .dataset(options, testSplit: split == "test", size: size, resize: resizeConvention)
                var job = ExtractionJob(architecture: try Architecture(named: model), weights: weights, images: images)
                job.layers = layer?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
                job.flavor = flavor
                job.preprocessing = preprocess
                job.batchSize = batch
                job.workers = workers
                job.strict = !nonStrict
                job.renameRules = try renameRules.map { try RenameRule.load(URL(fileURLWithPath: $0)) } ?? []
                job.precision = precision.resolved().requested
                let isTerminal = isatty(STDERR_FILENO) != 0
                var announced = false
                let result = try job.run(to: URL(fileURLWithPath: out)) { done, total in
                    if !announced {
                        announced = true
                        if done > 0 { FileHandle.standardError.write(Data("continuing an unfinished extraction after \(done) of \(total) samples\n".utf8)) }
                    }
                    if isTerminal { FileHandle.standardError.write(Data("\r\(done)/\(total)".utf8)) }
                }
                if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
                if let report = result.weights.report, !report.isComplete { FileHandle.standardError.write(Data("\(report)\n".utf8)) }
                let written = result.header
                let shapes = written.layers.map { "\($0.name) \([written.count] + $0.shape)" }.joined(separator: ", ")
                print("\(out): \(shapes) of \(result.weights.model.name) (\(result.weights.flavor.rawValue)), preprocessing \(result.weights.preprocessing.rawValue), \(written.classNames.count) classes")
            } catch {
                throw fail("extract", error)
            }
        }
    }
}
