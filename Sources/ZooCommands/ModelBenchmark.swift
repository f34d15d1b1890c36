import Foundation
import ZooTensor
import ZooNN
import ZooModels
import ZooTraining

/// Images per second of whole models, for inference and for training steps, with each case's
/// peak memory: the figures issue 8 compares with PyTorch and Keras
/// (`converters/bench_peers.py` measures the frameworks on the same cases).
public enum ModelBenchmark {
    public enum Case: String, Codable, Sendable, CaseIterable {
        /// A forward pass in inference mode.
        case infer
        /// A training step: forward, softmax cross-entropy, backward, SGD momentum update.
        case train
        /// The same with the bottom 80% of the base frozen (`--unfreeze 20%`).
        case trainFrozen80 = "train_frozen80"
    }

    public struct Result: Codable, Sendable {
        public var model: String
        public var size: Int
        public var batch: Int
        public var `case`: Case
        /// The precision that ran: f32, bf16 (mixed precision) or int8.
        public var precision: Precision
        public var imagesPerSecond: Double
        /// The process's peak resident memory during the case (model, data and work).
        public var peakRSSMB: Double
        /// The peak of the case's live tensors (weights, activations, gradients, optimizer state,
        /// work space) alone: what the precision changes, without the process's code and
        /// libraries or the memory the buffer pool keeps free for reuse.
        public var peakTensorMB: Double
        /// For inference: the model's multiply-adds per image times two, times images per
        /// second, in billions (the figure to hold against a matrix multiplication's GFLOP/s).
        public var gflopPerSecond: Double?

        enum CodingKeys: String, CodingKey {
            case model, size, batch, `case`, precision
            case imagesPerSecond = "images_per_s"
            case peakRSSMB = "peak_rss_mb"
            case peakTensorMB = "peak_tensor_mb"
            case gflopPerSecond = "gflop_per_s"
        }
    }

    /// Measures every case of every model on random images: `warmup` untimed steps, then the
    /// median of `steps` timed ones. Each model carries a pooled 100-class head (`gap,dense`) and
    /// follows `flavor`, or without one its architecture's first flavour. It runs in
    /// `precision` as resolved on this CPU; int8 (inference only) first calibrates the model on
    /// the benchmark's own random batch (the ranges matter for accuracy, not for speed).
    public static func run(models: [Architecture], flavor: Flavor? = nil, size: Int = 96, batch: Int = 32,
                           cases: [Case] = Case.allCases, precision: Precision = .f32, warmup: Int = 2, steps: Int = 5,
                           progress: ((Result) -> Void)? = nil) throws -> [Result] {
        let precision = precision.resolved()
        if precision.quantized, cases.contains(where: { $0 != .infer }) { throw TrainingError.inferenceOnlyPrecision(.int8) }
        var results: [Result] = []
        for architecture in models {
            for benchmarkCase in cases {
                // Each case starts from what the previous one left behind, not from its peak.
                Memory.releaseCache()
                Memory.resetPeakResidentBytes()
                Memory.resetPeak()
                let network = try model(architecture, flavor: flavor ?? architecture.defaultFlavor, size: size)
                let rate = try imagesPerSecond(network, size: size, batch: batch, benchmarkCase: benchmarkCase, precision: precision,
                                               warmup: warmup, steps: steps)
                var result = Result(model: architecture.name, size: size, batch: batch, case: benchmarkCase, precision: precision.effective,
                                    imagesPerSecond: rate, peakRSSMB: Double(Memory.peakResidentBytes) / Double(1 << 20),
                                    peakTensorMB: Double(Memory.stats.peakLiveBytes) / Double(1 << 20))
                if benchmarkCase == .infer {
                    let summary = try ModelSummary(network, inputSize: size)
                    result.gflopPerSecond = rate * Double(2 * summary.multiplyAdds) / 1e9
                }
                results.append(result)
                progress?(result)
            }
        }
        return results
    }

    /// The benchmarked network: the base with a pooled dense head of `classes` units.
    static func model(_ architecture: Architecture, flavor: Flavor, size: Int, classes: Int = 100) throws -> ImageModel {
        let model = try architecture.make(flavor: flavor, top: .features(pooling: nil), inputSize: size)
        model.head = try HeadSpecification(parsing: "gap,dense", classes: classes).head(inputFeatures: model.featureChannels)
        return model
    }

    /// Images per second of one case (the median step of `steps`, after `warmup` steps).
    public static func imagesPerSecond(_ architecture: Architecture, flavor: Flavor, size: Int, batch: Int, benchmarkCase: Case,
                                       precision: Precision = .f32, classes: Int = 100, warmup: Int = 2,
                                       steps: Int = 5) throws -> Double {
        let precision = precision.resolved()
        if precision.quantized, benchmarkCase != .infer { throw TrainingError.inferenceOnlyPrecision(.int8) }
        return try imagesPerSecond(model(architecture, flavor: flavor, size: size, classes: classes), size: size, batch: batch,
                                   benchmarkCase: benchmarkCase, precision: precision, classes: classes, warmup: warmup, steps: steps)
    }

    /// Images per second of `model` (whose head has `classes` units) in one case.
    static func imagesPerSecond(_ model: ImageModel, size: Int, batch: Int, benchmarkCase: Case, precision resolved: ResolvedPrecision,
                                classes: Int = 100, warmup: Int, steps: Int) throws -> Double {
        if benchmarkCase == .trainFrozen80 { try FreezePlan.fraction(0.2).apply(to: model) }
        let optimizer = GradientDescent(.sgd(momentum: 0.9), learningRate: 0.01)
        var generator = SeededGenerator(seed: 1)
        // Laid out as a data loader hands a batch over.
        let pixels = (0..<(batch * size * size * 3)).map { _ in generator.nextUnitFloat() }
        let images = try Tensor.imageBatch(count: batch, height: size, width: size) { writer in
            pixels.withUnsafeBufferPointer { values in
                for index in 0..<batch { writer.write(image: index, nhwc: UnsafeBufferPointer(rebasing: values[index * size * size * 3..<(index + 1) * size * size * 3])) }
            }
        }
        let labels = (0..<batch).map { $0 % classes }
        let precision = resolved.activationType
        if resolved.quantized {
            let calibration = ActivationCalibration()
            let context = ForwardContext.inference()
            context.calibration = calibration
            _ = try model(images, context)
            try model.quantize(model.quantizationPlan(calibration, method: .minMax, images: batch))
        }
        var times: [Double] = []
        for step in 0..<(warmup + steps) {
            let start = Date()
            if benchmarkCase == .infer {
                _ = try model(images, .inference(precision)).array()
            } else {
                let tape = GradientTape()
                let context = ForwardContext(training: true, tape: tape, activationType: precision)
                let loss = try softmaxCrossEntropy(logits: model(images, context), labels: labels)
                try tape.backward(loss)
                try optimizer.step(model.namedParameters())
            }
            if step >= warmup { times.append(Date().timeIntervalSince(start)) }
        }
        return Double(batch) / times.sorted()[times.count / 2]
    }
}
