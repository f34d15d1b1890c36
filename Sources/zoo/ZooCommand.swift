import ArgumentParser
import ZooKit

/// The `zoo` command: a thin layer that parses arguments and calls ZooKit.
@main
struct ZooCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "ImageNet-class CNNs in Swift: weight import, fine-tuning and feature extraction.",
        version: ZooVersion.description,
        subcommands: [Demo.self, Finetune.self, Evaluate.self, Predict.self, DataCommand.self, Models.self, Summary.self, Pull.self, Extract.self,
                      Inspect.self, Bench.self]
    )
}

/// Options every computing command takes.
struct EngineOptions: ParsableArguments {
    @Option(help: "Threads for computation (default: ZOO_THREADS, OMP_NUM_THREADS, or every core).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
    }

    /// Applies the options to the engine.
    func apply() {
        if let threads { Threads.count = threads }
    }
}
