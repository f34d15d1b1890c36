import Testing
import ZooTensor

/// int8 inference: quantizing and dequantizing round to the nearest step and saturate; int8
/// convolutions agree with f32 within what their quantization allows, with every fused post-op;
/// pooling, padding and concatenation stay in int8; every other operation dequantizes first.
///
/// Tolerances are relative to the largest magnitude of the f32 result: an int8 convolution
/// quantizes its input (step = range / 127 or / 255) and each weight channel (range / 127), so
/// each product is within about 1% of its value, and their sum, over many terms of either sign,
/// within 1.5% of the output's scale, a quantized output's half step included (measured 0.4 to
/// 1.0%; a bias added unscaled, the mistake this would catch, gives 4 to 10%).
@Suite("Quantization (int8)")
struct QuantizationTests {
    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        MixedPrecisionTests.relativeError(actual, expected)
    }

    @Test("quantizing rounds to the nearest step and saturates; dequantizing gives integer multiples of the step")
    func roundTrip() throws {
        let values: [Float] = [0, 0.04, 0.06, -0.26, 1.27, 5, -5, 0.5]
        let x = try Tensor(shape: [values.count], values: values)
        let signed = try x.quantized(step: 0.1, as: .int8)
        #expect(signed.elementType == .int8 && signed.quantization == Quantization(step: 0.1, floatType: .float32))
        let back = try signed.array()
        let expected: [Float] = [0, 0, 0.1, -0.3, 1.3, 5, -5, 0.5]
        #expect(zip(back, expected).allSatisfy { abs($0 - $1) < 1e-6 }, "\(back)")
        // 5 / 0.01 = 500 saturates at 127 (int8) and 255 (uint8); uint8 has no negative values.
        #expect(try x.quantized(step: 0.01, as: .int8).array()[5] == 1.27)
        let unsigned = try x.quantized(step: 0.01, as: .uint8).array()
        #expect(abs(unsigned[5] - 2.55) < 1e-6 && unsigned[6] == 0 && unsigned[3] == 0)
        // Requantizing goes through the values, and dequantized() returns the source type.
        let requantized = try signed.quantized(step: 0.2, as: .int8)
        let requantizedValue = try requantized.array()[4]
        #expect(abs(requantizedValue - 1.2) < 1e-6 || abs(requantizedValue - 1.4) < 1e-6)
        #expect(try signed.dequantized().elementType == .float32)
        #expect(throws: TensorError.self) { try x.quantized(step: 0, as: .int8) }
    }

    @Test("calibrated ranges choose uint8 for values that are never negative and int8 otherwise")
    func rangeToQuantization() {
        #expect(ActivationQuantization(minimum: 0, maximum: 2.55) == ActivationQuantization(step: 0.01, type: .uint8))
        #expect(ActivationQuantization(minimum: -2.54, maximum: 1) == ActivationQuantization(step: 0.02, type: .int8))
        #expect(ActivationQuantization(minimum: 0, maximum: 0).step == 1)
    }

    /// The f32 convolution and the int8 one on the same input, weight and bias.
    func compare(_ what: String, input: [Int], weight: [Int], options: Conv2DOptions = Conv2DOptions(), activation: Activation? = nil,
                 residual: Bool = false, quantizedOutput: Bool, tolerance: Float = 0.015,
                 sourceLocation: SourceLocation = #_sourceLocation) throws {
        var check = Check()
        let x = try check.tensor(input, in: -1...1, blocked: true)
        let w = try check.tensor(weight, in: -0.5...0.5)
        let b = try check.tensor([weight[0]], in: -0.5...0.5)
        let reference = try conv2d(x, weight: w, bias: b, options: options)
        let r = residual ? try check.tensor(reference.shape, in: -2...2, blocked: true) : nil
        let expected = try conv2d(x, weight: w, bias: b, options: options, residual: r, activation: activation)
        let values = try expected.array()
        let output = ActivationQuantization(minimum: values.min()!, maximum: values.max()!)
        let residualQuantization = ActivationQuantization(minimum: -2, maximum: 2)
        let quantization = ConvolutionQuantization(input: ActivationQuantization(minimum: -1, maximum: 1),
                                                   output: quantizedOutput ? output : nil, residual: residualQuantization)
        let actual = try conv2d(x, weight: QuantizedWeight(w), bias: b, options: options, residual: r, activation: activation,
                                quantization: quantization)
        #expect(actual.elementType == (quantizedOutput ? output.type : .float32), "\(what): output is \(actual.elementType)",
                sourceLocation: sourceLocation)
        let error = Self.relativeError(try actual.array(), values)
        #expect(error <= tolerance, "\(what): int8 differs from f32 by \(error) of its scale", sourceLocation: sourceLocation)
    }

    @Test("int8 convolutions agree with f32: bias, ReLU, ReLU6, residual sums, strides, groups, float and quantized outputs")
    func convolutions() throws {
        try compare("3x3 float out", input: [2, 32, 10, 10], weight: [48, 32, 3, 3], quantizedOutput: false)
        try compare("3x3 ReLU u8 out", input: [2, 32, 10, 10], weight: [48, 32, 3, 3], activation: .relu, quantizedOutput: true)
        try compare("1x1 s8 out", input: [2, 64, 7, 7], weight: [32, 64, 1, 1], quantizedOutput: true)
        try compare("ReLU6", input: [2, 16, 9, 9], weight: [32, 16, 3, 3], options: Conv2DOptions(stride: 2, padding: .same),
                    activation: .relu6, quantizedOutput: true)
        try compare("residual then ReLU", input: [2, 64, 8, 8], weight: [64, 64, 1, 1], activation: .relu, residual: true,
                    quantizedOutput: true)
        try compare("residual, float out", input: [2, 64, 8, 8], weight: [64, 64, 1, 1], residual: true, quantizedOutput: false)
        try compare("depthwise", input: [2, 32, 12, 12], weight: [32, 1, 3, 3], options: Conv2DOptions(stride: 1, padding: .same, groups: 32),
                    activation: .relu6, quantizedOutput: true)
        // Hard swish is not scale-invariant: it runs on real values before the output step.
        try compare("hard swish", input: [2, 16, 8, 8], weight: [24, 16, 3, 3], activation: .hardSwish, quantizedOutput: true)
    }

    @Test("a quantized residual of the other signedness sums with its own step")
    func residualOfOtherType() throws {
        var check = Check()
        let x = try check.tensor([2, 32, 6, 6], in: -1...1, blocked: true)
        let w = try check.tensor([32, 32, 1, 1], in: -0.5...0.5)
        let r = try check.tensor([2, 32, 6, 6], in: -2...2, blocked: true)
        let expected = try conv2d(x, weight: w, residual: r, activation: .relu).array()
        let quantization = ConvolutionQuantization(input: ActivationQuantization(minimum: -1, maximum: 1),
                                                   output: ActivationQuantization(minimum: 0, maximum: expected.max()!))
        let actual = try conv2d(x, weight: QuantizedWeight(w), residual: try r.quantized(step: 2.0 / 127, as: .int8), activation: .relu,
                                quantization: quantization)
        #expect(actual.elementType == .uint8)
        #expect(Self.relativeError(try actual.array(), expected) <= 0.015)
    }

    @Test("a batch norm with a ReLU reads and writes int8 within a step of f32's result")
    func batchNorm() throws {
        var check = Check()
        let real = try check.tensor([2, 24, 6, 6], in: -2...2, blocked: true)
        let x = try real.quantized(step: 2.0 / 127, as: .int8)
        let (scale, shift) = (try check.tensor([24], in: 0.5...1.5), try check.tensor([24], in: -0.5...0.5))
        let (mean, variance) = (try check.tensor([24], in: -0.3...0.3), try check.tensor([24], in: 0.5...2))
        let expected = try batchNormInference(try x.dequantized(), scale: scale, shift: shift, mean: mean, variance: variance,
                                              epsilon: 1e-3, relu: true).array()
        let output = ActivationQuantization(minimum: 0, maximum: expected.max()!)
        let y = try batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3, relu: true,
                                       output: output)
        #expect(y.elementType == .uint8 && y.quantization?.step == output.step)
        let values = try y.array()
        #expect(zip(values, expected).allSatisfy { abs($0 - $1) <= output.step / 2 + 1e-5 }, "\(Self.relativeError(values, expected))")
        #expect(throws: TensorError.self) {
            try batchNormInference(real, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3, relu: true, output: output)
        }
    }

    @Test("pooling, zero padding and concatenation of one type stay int8; other operations dequantize")
    func int8Passthrough() throws {
        var check = Check()
        let x = try check.tensor([2, 16, 8, 8], in: 0...3, blocked: true).quantized(step: 3.0 / 255, as: .uint8)
        let plain = try x.dequantized()
        let pooled = try maxPool2d(x, Pool2DOptions(kernel: [3, 3], stride: [2, 2], padding: .same))
        #expect(pooled.elementType == .uint8)
        let pooledPlain = try maxPool2d(plain, Pool2DOptions(kernel: [3, 3], stride: [2, 2], padding: .same)).array()
        #expect(try pooled.array() == pooledPlain)
        let averaged = try avgPool2d(x, Pool2DOptions(kernel: [2, 2], stride: [2, 2]))
        #expect(averaged.elementType == .uint8)
        #expect(Self.relativeError(try averaged.array(), try avgPool2d(plain, Pool2DOptions(kernel: [2, 2], stride: [2, 2])).array()) <= 0.01)
        let padded = try zeroPad2d(x, top: 1, bottom: 0, left: 0, right: 1)
        #expect(padded.elementType == .uint8)
        let paddedPlain = try zeroPad2d(plain, top: 1, bottom: 0, left: 0, right: 1).array()
        #expect(try padded.array() == paddedPlain)
        // Concatenating pieces of different steps requantizes to the largest.
        let y = try check.tensor([2, 8, 8, 8], in: 0...6, blocked: true).quantized(step: 6.0 / 255, as: .uint8)
        let joined = try concat([x, y])
        #expect(joined.elementType == .uint8 && joined.quantization?.step == 6.0 / 255)
        let expected = try concat([plain, y.dequantized()]).array()
        let joinedValues = try joined.array()
        #expect(zip(joinedValues, expected).allSatisfy { abs($0 - $1) <= 3.0 / 255 + 1e-6 })
        // A mixed concatenation, and an operation without an int8 kernel, are floating point.
        #expect(try concat([x, try y.dequantized()]).elementType == .float32)
        let sum = try add(x, plain)
        let doubled = try add(plain, plain).array()
        let sumError = Self.relativeError(try sum.array(), doubled)
        #expect(sum.elementType == .float32 && sumError < 1e-6)
        #expect(try globalAvgPool2d(x).elementType == .float32)
    }

    @Test("with AVX512_VNNI or AMX, int8 convolutions run oneDNN's integer kernels, never a reference one")
    func kernels() throws {
        guard CPUCapabilities.hasNativeInt8 else { return }
        var check = Check()
        let x = try check.tensor([32, 64, 14, 14], in: 0...1, blocked: true).quantized(step: 1.0 / 255, as: .uint8)
        let w = try QuantizedWeight(try check.tensor([64, 64, 3, 3], in: -0.5...0.5))
        let (_, runs) = try Kernels.recording {
            try conv2d(x, weight: w, options: Conv2DOptions(stride: 1, padding: .same), activation: .relu,
                       quantization: ConvolutionQuantization(input: ActivationQuantization(step: 1.0 / 255, type: .uint8),
                                                             output: ActivationQuantization(step: 0.1, type: .uint8)))
        }
        let convolutions = runs.filter { $0.operation.hasPrefix("conv2d int8") }
        #expect(!convolutions.isEmpty && convolutions.allSatisfy { !$0.isReference && !$0.implementation.contains("gemm") }, "\(runs)")
    }
}
