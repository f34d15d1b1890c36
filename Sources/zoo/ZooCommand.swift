import ArgumentParser
import Foundation
import ZooKit

/// The `zoo` command: a thin layer that parses arguments and calls ZooKit.
@main
struct ZooCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "ImageNet-class CNNs in Swift: weight import, fine-tuning and feature extraction.",
        version: ZooVersion.description,
        subcommands: [Demo.self, Finetune.self, Evaluate.self, Predict.self, DataCommand.self, Models.self, Summary.self, Pull.self, Extract.self,
                      Quantize.self, Inspect.self, Bench.self, SweepCommand.self]
    )
}

/// `--precision`, for the commands that run models.
struct PrecisionOptions: ParsableArguments {
    @Option(help: "f32 (the default), bf16 (mixed precision: bf16 activations, f32 weights and losses), auto (bf16 where the CPU has AVX512_BF16 or AMX, else f32), or for inference int8 (the int8 convolutions of a file zoo quantize wrote; where the CPU lacks AVX512_VNNI, AVX_VNNI and AMX, f32).")
    var precision: Precision?

    /// What was asked for: f32 unless given.
    var requested: Precision { precision ?? .f32 }

    /// The precision resolved for this CPU; says on standard error what auto chose, or that
    /// bf16 fell back to f32.
    func resolved() -> ResolvedPrecision {
        let resolved = requested.resolved()
        if let note = resolved.note { FileHandle.standardError.write(Data("zoo: precision: \(note)\n".utf8)) }
        return resolved
    }

    /// Sets `classifier`, made from `loaded`, up for the resolved precision (int8 applies the
    /// file's calibration).
    func prepare(_ classifier: inout Classifier, from loaded: LoadedWeights) throws {
        let resolved = resolved()
        try loaded.prepare(for: resolved)
        classifier.precision = resolved.activationType
    }
}

extension Precision: ExpressibleByArgument {}

/// `--weights` and what goes with it, for the commands that run a checkpoint or an architecture
/// with a framework's weight file.
struct WeightFileOptions: ParsableArguments {
    @Option(help: "A weight file (or weight set) for the architecture; a classifier with 1000 outputs is taken to be ImageNet-1k's.")
    var weights: String?
    @Option(help: "keras or torchvision (with --weights; default: the weight set's, else keras, torchvision for the CIFAR ResNets).")
    var flavor: Flavor?
    @Option(help: "Input size (with --weights; default: the weight set's, else the architecture's).")
    var size: Int?
    @Option(help: "Preprocessing (with --weights; default: the weight set's, else the architecture's usual one for the flavour).")
    var preprocess: Preprocessing?

    /// `target` as a checkpoint or weight set, or with ``weights`` as the architecture they are for.
    func load(_ target: String) throws -> LoadedWeights {
        guard let weights else { return try LoadedWeights.load(target) }
        return try LoadedWeights.load(weights, architecture: try Architecture(named: target), flavor: flavor, preprocessing: preprocess,
                                      inputSize: size)
    }
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
