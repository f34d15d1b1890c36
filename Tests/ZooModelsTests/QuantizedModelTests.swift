import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooModels

/// Whole models in int8: calibrated on images, every convolution but the image-facing one runs
/// oneDNN's int8 kernel, and the logits stay close to f32's.
@Suite("Quantized models")
struct QuantizedModelTests {
    func images(_ count: Int, size: Int, seed: UInt64) throws -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return try Tensor(nhwc: (0..<(count * size * size * 3)).map { _ in generator.nextUnitFloat() * 2 - 1 }, shape: [count, size, size, 3])
    }

    /// Largest logit difference over the largest f32 logit magnitude.
    func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        let scale = max(expected.map(abs).max() ?? 0, .leastNormalMagnitude)
        return (zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity) / scale
    }

    // Random weights compound rounding over depth more than trained ones (which CIFAR-10's test
    // in RealDataTests holds to 0.5 points), so the bound is loose: measured 2-6%.
    @Test("ResNet50, MobileNetV2, DenseNet121 and InceptionV3 run their convolutions in int8 with logits within 15% of f32",
          arguments: ["resnet50", "mobilenetv2", "densenet121", "inceptionv3"])
    func model(_ name: String) throws {
        let architecture = try Architecture(named: name)
        Initialization.seed(11)
        let model = try architecture.make(flavor: architecture.defaultFlavor, inputSize: 75)
        let batch = try images(4, size: 75, seed: 2)
        let expected = try model(batch, .inference()).array()
        let calibration = ActivationCalibration()
        let context = ForwardContext.inference()
        context.calibration = calibration
        _ = try model(batch, context)
        let plan = model.quantizationPlan(calibration, method: .minMax, images: 4)
        #expect(plan.layers.count + plan.keptFloat.count == model.convolutions.count)
        #expect(plan.keptFloat.count == 1 && plan.keptFloat.values.first?.hasPrefix("reads the image") == true, "\(plan.keptFloat)")
        try model.quantize(plan)
        #expect(model.isQuantized)
        let (logits, runs) = try Kernels.recording { try model(batch, .inference()) }
        #expect(runs.filter { $0.operation == "conv2d int8" }.count == plan.layers.count)
        // DenseNet's pre-activation norms read the int8 concatenations and write int8.
        #expect(runs.contains { $0.operation == "batchNorm int8" } == (name == "densenet121"))
        let error = relativeError(try logits.array(), expected)
        #expect(error < 0.15, "\(name): int8 logits differ by \(error) of the largest")
        model.removeQuantization()
        #expect(try model(batch, .inference()).array() == expected)
    }

    @Test("a plan encodes and decodes unchanged, and one naming a convolution the model lacks is refused")
    func plans() throws {
        let model = try Initialization.skippingRandomness { try Architecture(named: "cifar-resnet20").make(flavor: .torchvision) }
        let calibration = ActivationCalibration()
        let context = ForwardContext.inference()
        context.calibration = calibration
        _ = try model(try images(2, size: 32, seed: 1), context)
        let plan = model.quantizationPlan(calibration, method: .percentile(99.99), images: 2)
        #expect(plan.method == "percentile 99.99" && plan.calibrationImages == 2)
        let decoded = try JSONDecoder().decode(QuantizationPlan.self, from: try JSONEncoder().encode(plan))
        #expect(decoded == plan)
        var wrong = plan
        wrong.layers["layer9.conv"] = plan.layers.values.first
        #expect(throws: ModelError.self) { try model.quantize(wrong) }
    }
}
