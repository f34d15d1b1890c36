import ZooTensor
import ZooNN

/// A model's int8 quantization: for each convolution by its parameter path (`layer1.0.conv1`),
/// how it runs in int8, or why it stays floating point; the output steps of the batch norms that
/// run on their own (DenseNet's pre-activations), for when their input arrives in int8; and how
/// the ranges were calibrated.
///
/// Weights are quantized per output channel when the model runs (from the batch-norm-folded
/// weight, its largest magnitude at 127), so a plan holds only activation steps and one model
/// file runs in f32, bf16 or int8.
public struct QuantizationPlan: Sendable, Codable, Equatable {
    /// The calibration method (`minmax`, `percentile 99.99`).
    public var method: String
    /// Images the ranges were calibrated on.
    public var calibrationImages: Int
    /// The quantized convolutions.
    public var layers: [String: ConvolutionQuantization]
    /// The convolutions that stay floating point, with the reason.
    public var keptFloat: [String: String]
    /// The output quantization of batch norms that run on their own, by path.
    public var norms: [String: ActivationQuantization]

    enum CodingKeys: String, CodingKey {
        case method, layers, norms
        case calibrationImages = "calibration_images"
        case keptFloat = "kept_float"
    }

    public init(method: String, calibrationImages: Int, layers: [String: ConvolutionQuantization], keptFloat: [String: String],
                norms: [String: ActivationQuantization] = [:]) {
        self.method = method
        self.calibrationImages = calibrationImages
        self.layers = layers
        self.keptFloat = keptFloat
        self.norms = norms
    }

    /// Runs the convolution at `path` in floating point, for `reason`.
    public mutating func keepFloat(_ path: String, because reason: String) {
        layers[path] = nil
        keptFloat[path] = reason
    }
}

extension ImageModel {
    /// Every convolution of the model with its parameter path, in parameter order.
    public var convolutions: [(path: String, convolution: Conv2D)] {
        namedModules().compactMap { name, module in (module as? Conv2D).map { (name, $0) } }
    }

    /// The plan `calibration` (recorded over `images` images) gives this model: every
    /// convolution that ran quantized, except one reading at most 4 channels (the image: its
    /// 3 input channels hold too little work for int8 to pay, and its input the most error) and
    /// one that never ran.
    public func quantizationPlan(_ calibration: ActivationCalibration, method: CalibrationMethod, images: Int) -> QuantizationPlan {
        var layers: [String: ConvolutionQuantization] = [:], keptFloat: [String: String] = [:]
        for (path, convolution) in convolutions {
            guard let observation = calibration.observation(of: convolution),
                  let quantization = calibration.quantization(of: convolution, method: method) else {
                keptFloat[path] = "did not run during calibration"
                continue
            }
            if observation.inputChannels <= 4 {
                keptFloat[path] = "reads the image (\(observation.inputChannels) channels)"
                continue
            }
            layers[path] = quantization
        }
        var norms: [String: ActivationQuantization] = [:]
        for (path, module) in namedModules() {
            if let norm = module as? BatchNorm, let quantization = calibration.quantization(of: norm, method: method) { norms[path] = quantization }
        }
        return QuantizationPlan(method: method.description, calibrationImages: images, layers: layers, keptFloat: keptFloat, norms: norms)
    }

    /// Runs the convolutions `plan` quantizes in int8 in inference passes (others in the pass's
    /// floating-point type). Throws when the plan names a convolution the model lacks.
    public func quantize(_ plan: QuantizationPlan) throws {
        let byPath = Dictionary(convolutions.map { ($0.path, $0.convolution) }, uniquingKeysWith: { first, _ in first })
        if let missing = plan.layers.keys.sorted().first(where: { byPath[$0] == nil }) {
            throw ModelError.invalidArgument("the quantization names the convolution '\(missing)', which \(name) does not have")
        }
        let norms = Dictionary(namedModules().compactMap { path, module in (module as? BatchNorm).map { (path, $0) } },
                               uniquingKeysWith: { first, _ in first })
        if let missing = plan.norms.keys.sorted().first(where: { norms[$0] == nil }) {
            throw ModelError.invalidArgument("the quantization names the batch norm '\(missing)', which \(name) does not have")
        }
        for (path, convolution) in byPath { convolution.quantization = plan.layers[path] }
        for (path, norm) in norms { norm.quantization = plan.norms[path] }
    }

    /// Runs every convolution and batch norm in floating point again.
    public func removeQuantization() {
        for (_, convolution) in convolutions { convolution.quantization = nil }
        for case let (_, norm as BatchNorm) in namedModules() { norm.quantization = nil }
    }

    /// Whether some convolution runs in int8.
    public var isQuantized: Bool { convolutions.contains { $0.convolution.quantization != nil } }
}
