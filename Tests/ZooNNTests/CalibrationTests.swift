import Foundation
import Testing
import ZooTensor
import ZooNN

/// Calibration statistics and a convolution layer's int8 path.
@Suite("Calibration and int8 layers")
struct CalibrationTests {
    @Test("value statistics keep the extremes, and percentiles come from a histogram that widens without losing counts")
    func statistics() {
        var statistics = ValueStatistics()
        let first: [Float] = (0..<10_000).map { Float($0) / 10_000 }  // 0 ..< 1, uniform
        first.withUnsafeBufferPointer { statistics.add($0) }
        #expect(statistics.minimum == 0 && statistics.maximum == 0.9999 && statistics.count == 10_000)
        let (_, ninety) = statistics.range(.percentile(90))
        #expect(abs(ninety - 0.9) < 0.002, "\(ninety)")
        // A later batch with one large outlier doubles the histogram's bound several times.
        let second: [Float] = [-40] + [Float](repeating: 0.5, count: 9_999)
        second.withUnsafeBufferPointer { statistics.add($0) }
        #expect(statistics.minimum == -40 && statistics.count == 20_000)
        #expect(statistics.range(.minMax) == (-40, 0.9999))
        // 99.9% of magnitudes are below 1: the clipped range leaves the outlier out.
        let clipped = statistics.range(.percentile(99.9))
        #expect(clipped.minimum > -1.1 && clipped.minimum < -0.9 && clipped.maximum == 0.9999, "\(clipped)")
        #expect(ValueStatistics().range(.minMax) == (0, 0))
    }

    @Test("entropy clips a long tail, keeps a bounded distribution whole, and is not pulled down by a ReLU's zeros")
    func entropy() {
        var generator = SeededGenerator(seed: 11)
        // Normal values with a few far outliers: the clip lies past the bulk, well short of them.
        var normal = ValueStatistics()
        let values: [Float] = (0..<50_000).map { _ in
            let u = max(generator.nextUnitFloat(), 1e-7), v = generator.nextUnitFloat()
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        } + [40, -35, 38]
        values.withUnsafeBufferPointer { normal.add($0) }
        let clip = normal.range(.entropy).maximum
        #expect(clip > 3 && clip < 15, "\(clip)")
        // Uniform values: nothing to clip.
        var uniform = ValueStatistics()
        let flat: [Float] = (0..<20_000).map { _ in generator.nextUnitFloat() * 4 - 2 }
        flat.withUnsafeBufferPointer { uniform.add($0) }
        #expect(uniform.range(.entropy).maximum > 1.9, "\(uniform.range(.entropy))")
        // The same normal values after a ReLU: half zeros, and about the same upper clip.
        var rectified = ValueStatistics()
        let relu = values.map { max($0, 0) }
        relu.withUnsafeBufferPointer { rectified.add($0) }
        let relued = rectified.range(.entropy)
        #expect(relued.minimum == 0 && relued.maximum > 3 && relued.maximum < 15, "\(relued)")
    }

    @Test("a convolution with a batch norm records its ranges during calibration, then runs in int8 close to f32")
    func convolutionLayer() throws {
        var generator = SeededGenerator(seed: 3)
        let conv = Conv2D(16, 32, kernel: 3, padding: .same, bias: false)
        let norm = BatchNorm(32)
        norm.runningMean.value = try Tensor(shape: [32], values: (0..<32).map { _ in generator.nextUnitFloat() - 0.5 })
        norm.runningVariance.value = try Tensor(shape: [32], values: (0..<32).map { _ in 0.5 + generator.nextUnitFloat() })
        let x = try Tensor(nhwc: (0..<(4 * 8 * 8 * 16)).map { _ in generator.nextUnitFloat() * 2 - 1 }, shape: [4, 8, 8, 16])
        let expected = try conv(x, .inference(), norm: norm, activation: .relu).array()

        let calibration = ActivationCalibration()
        let context = ForwardContext.inference()
        context.calibration = calibration
        #expect(try conv(x, context, norm: norm, activation: .relu).array() == expected, "calibration runs in floating point")
        let observation = try #require(calibration.observation(of: conv))
        #expect(observation.inputChannels == 16 && observation.output.minimum == 0 && observation.output.maximum == expected.max())
        let quantization = try #require(calibration.quantization(of: conv, method: .minMax))
        #expect(quantization.input.type == .int8 && quantization.output?.type == .uint8)

        conv.quantization = quantization
        let (output, runs) = try Kernels.recording { try conv(x, .inference(), norm: norm, activation: .relu) }
        #expect(output.elementType == .uint8 && runs.contains { $0.operation == "conv2d int8" })
        // Without VNNI (AVX2 alone: a Zen 3 EPYC) oneDNN sums pairs of u8 x s8 products in 16 bits,
        // which saturate with full-range values; zoo then never runs int8 (`Precision.int8`
        // resolves to f32), and only the kernel's use is checked here.
        if CPUCapabilities.hasNativeInt8 {
            #expect(MixedPrecisionError.relative(try output.array(), expected) < 0.015)
        }
        // Training passes ignore the quantization.
        #expect(try conv(x, ForwardContext(training: false, tape: GradientTape()), norm: norm, activation: .relu).elementType == .float32)
    }
}

enum MixedPrecisionError {
    /// The largest difference over the largest magnitude of `expected`.
    static func relative(_ actual: [Float], _ expected: [Float]) -> Float {
        let scale = max(expected.map(abs).max() ?? 0, .leastNormalMagnitude)
        return zip(actual, expected).map { abs($0 - $1) }.max().map { $0 / scale } ?? .infinity
    }
}
