import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure zoo's speed.",
            subcommands: [Operations.self, Models.self, DataPipeline.self, FineTuning.self])
    }
}

/// Runs the body of `zoo bench NAME`: applies the engine options, reports a failure as
/// `zoo bench NAME: error` (argument errors keep their usage message), and says on standard
/// error when other processes used the CPU meanwhile.
private func benchmarking(_ name: String, _ engine: EngineOptions, _ body: () throws -> Void) throws {
    engine.apply()
    let monitor = CPUMonitor()
    do {
        try body()
    } catch let error as ValidationError {
        throw error
    } catch {
        throw fail("bench \(name)", error)
    }
    if let warning = monitor.contentionWarning() { FileHandle.standardError.write(Data((warning + "\n").utf8)) }
}

extension ZooCommand.Bench {
    struct Operations: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ops",
            abstract: "GFLOP/s of convolution forward, backward-data and backward-weights: zoo's operations vs bare oneDNN primitives.")

        @OptionGroup var engine: EngineOptions
        @Option(help: "Timed rounds per case and pass (the median is reported).") var rounds = 7
        @Flag(help: "Print a JSON array instead of a table.") var json = false

        func run() throws {
            try benchmarking("ops", engine) {
                let results = try OperationBenchmark.run(rounds: rounds)
                if json {
                    try printJSON(results)
                } else {
                    print("zoo bench ops: batch 32, \(Threads.count) threads, oneDNN \(Engine.oneDNNVersion), median of \(rounds) rounds")
                    print("case                 pass              zoo GFLOP/s  oneDNN GFLOP/s  ratio")
                    for r in results {
                        let label = r.caseName.padding(toLength: 20, withPad: " ", startingAt: 0) + " "
                            + r.pass.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)
                        print(label + String(format: " %11.1f  %14.1f  %5.2f", r.zooGFlops, r.oneDNNGFlops, r.ratio))
                    }
                }
            }
        }

    }
}

extension ZooCommand.Bench {
    struct DataPipeline: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Images per second: decoding, resizing to 96 and 299 with augmentation, the loader at 96, and DenseNet201 training at 96 for comparison.")

        @Argument(help: "Data to read (a folder, cifar10:PATH, ...).") var sources: [String]
        @Option(help: "Images to measure over.") var images = 512
        @Option(help: "Loader threads.") var workers = 2
        @Option(help: "Augmentation, as zoo finetune's --augment.") var augment = "flip,rotation=0.05,zoom=0.1"
        @Flag(help: "Skip the DenseNet201 training measurement.") var noTraining = false
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var engine: EngineOptions

        func run() throws {
            try benchmarking("data", engine) {
                let dataset = try DataSource(sources).training
                let results = try DataBenchmark.run(dataset, images: images, workers: workers, augmentation: augment, includeTraining: !noTraining)
                if json {
                    try printJSON(results)
                } else {
                    for r in results {
                        print(r.name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(format: "%10.1f images/s  (%d threads)", r.imagesPerSecond, r.threads))
                    }
                    let loader = results.first { $0.name == "loader96" }?.imagesPerSecond ?? 0
                    if let fastest = results.filter({ $0.name.hasPrefix("train") }).map(\.imagesPerSecond).max() {
                        print(String(format: "loader at 96 / fastest DenseNet201 training at 96: %.1fx", loader / fastest))
                    }
                }
            }
        }
    }
}

extension ZooCommand.Bench {
    struct FineTuning: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "finetune",
            abstract: "Seconds per fine-tuning epoch without and with the frozen-trunk cache (first cached epoch, later ones).",
            discussion: "Example: zoo bench finetune densenet201 --data cifar10:~/cifar-10-batches-bin --size 96 --unfreeze 20% --images 512")

        @Argument(help: "The architecture.") var model: String
        @Option(parsing: .singleValue, help: "Data to train on (as zoo finetune's --data).") var data: [String]
        @Option(help: "Training images per epoch (an equal share of each class).") var images = 512
        @Option(help: "Starting weights (default: random; the timing does not depend on them).") var weights: String?
        @Option(help: "keras or torchvision (default: the architecture's first).") var flavor: Flavor?
        @Option(help: "Input size.") var size = 96
        @Option(help: "Base layers that train, as zoo finetune's --unfreeze.") var unfreeze = "20%"
        @Option(help: "The head, as zoo finetune's --head.") var head = "gap,dropout=0.5,dense"
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Loader threads.") var workers = 2
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var engine: EngineOptions

        func run() throws {
            try benchmarking("finetune", engine) {
                let architecture = try Architecture(named: model)
                var settings = FineTuneSettings(architecture: architecture.name, flavor: flavor ?? architecture.defaultFlavor, imageSize: size)
                settings.weights = weights
                settings.unfreeze = try FreezePlan(parsing: unfreeze)
                settings.head = try HeadSpecification.Template(parsing: head)
                settings.batchSize = batch
                settings.optimizer.name = "adam"
                settings.optimizer.learningRate = 1e-4
                settings.data.sources = data
                settings.data.workers = workers
                let result = try FineTuneBenchmark.run(settings, images: images)
                if json {
                    try printJSON(result)
                } else {
                    print("zoo bench finetune: \(result.architecture) at \(result.imageSize), unfreeze \(result.unfreeze), \(result.images) images, batch \(result.batchSize), \(result.threads) threads")
                    print(String(format: "epoch, uncached:             %8.1f s  (%.1f images/s)", result.epochSecondsUncached, Double(result.images) / result.epochSecondsUncached))
                    print(String(format: "epoch, cached, first:        %8.1f s  (runs the trunk and stores it)", result.epochSecondsCachedFirst))
                    print(String(format: "epoch, cached, later:        %8.1f s  (%.1fx faster; %@ stages cached)", result.epochSecondsCachedLater,
                                 result.epochSecondsUncached / result.epochSecondsCachedLater, result.cachedStages))
                }
            }
        }
    }
}

extension ZooCommand.Bench {
    struct Models: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "models",
            abstract: "Images per second of whole models: inference, a training step, and a training step with the bottom 80% frozen, with each case's peak memory.",
            discussion: """
                Each model has a pooled 100-class head; images are random, batch norms train in the training cases. \
                converters/bench_peers.py runs the same cases in PyTorch and Keras and puts them side by side.
                """)

        @Option(help: "Models, comma-separated (default: every ImageNet architecture).") var models: String?
        @Option(help: "Input size.") var size = 96
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "keras or torchvision (default: each architecture's first).") var flavor: Flavor?
        @Option(help: "Cases, comma-separated: infer, train, train_frozen80 (default: all).") var cases: String?
        @Option(help: "Timed steps per case (the median is reported), after two warm-up steps.") var steps = 5
        @Flag(help: "Print a JSON array: model, size, batch, case, precision, images_per_s, peak_rss_mb (and gflop_per_s for infer).")
        var json = false
        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions

        func run() throws {
            try benchmarking("models", engine) {
                let architectures = try models.map { try $0.split(separator: ",").map { try Architecture(named: String($0)) } }
                    ?? Architecture.imagenet
                let chosen = try cases.map { try $0.split(separator: ",").map { name in
                    guard let value = ModelBenchmark.Case(rawValue: String(name)) else {
                        throw ValidationError("unknown case '\(name)': infer, train or train_frozen80")
                    }
                    return value
                } } ?? ModelBenchmark.Case.allCases
                let resolved = precision.resolved()
                if !json {
                    print("zoo bench models: \(size)x\(size), batch \(batch), \(flavor?.rawValue ?? "each model's first") flavour, \(resolved.effective), \(Threads.count) threads, median of \(steps) steps")
                    print("model         case              images/s   peak RSS (MB)   tensors (MB)   GFLOP/s")
                }
                let results = try ModelBenchmark.run(models: architectures, flavor: flavor, size: size, batch: batch, cases: chosen,
                                                     precision: resolved.requested, steps: steps) { r in
                    guard !json else { return }
                    print(r.model.padding(toLength: 14, withPad: " ", startingAt: 0) + r.case.rawValue.padding(toLength: 16, withPad: " ", startingAt: 0)
                        + String(format: " %10.1f %15.0f %14.0f", r.imagesPerSecond, r.peakRSSMB, r.peakTensorMB)
                        + (r.gflopPerSecond.map { String(format: " %9.1f", $0) } ?? ""))
                    fflush(nil)
                }
                if json {
                    try printJSON(results)
                }
            }
        }
    }
}
