import Foundation
import Testing
import ZooTensor

/// The operations EfficientNet, MobileNetV3, ShuffleNetV2, InceptionResNetV2 and MNASNet add:
/// the smooth and hard activations, squeeze-and-excitation's channel scale, stochastic depth,
/// channel shuffle and split, grouped and depthwise convolutions. Each is checked against its
/// definition written out here, and its gradient against finite differences.
@Suite("Activations, channel and sample scales, shuffles")
struct ActivationAndScaleTests {
    static let smoothAndHard: [Activation] = [.silu, .sigmoid, .hardSwish, .hardSigmoid, .gelu, .selu]

    /// The definition, in double precision (torch's and Keras 3's).
    static func reference(_ kind: Activation, _ x: Float) -> Float {
        let v = Double(x)
        let relu6 = { (t: Double) in min(max(t, 0), 6) }
        switch kind {
        case .relu: return Float(max(v, 0))
        case .relu6: return Float(relu6(v))
        case .silu: return Float(v / (1 + exp(-v)))
        case .sigmoid: return Float(1 / (1 + exp(-v)))
        case .hardSwish: return Float(v * relu6(v + 3) / 6)
        case .hardSigmoid: return Float(relu6(v + 3) / 6)
        case .gelu: return Float(v * (1 + erf(v / 2.squareRoot())) / 2)
        case .selu: return Float(1.0507009873554804934193349852946 * (v > 0 ? v : 1.6732632423543772848170429916717 * (exp(v) - 1)))
        }
    }

    @Test("the activation matches its definition, forward and backward, in padded and whole channel blocks and row-major",
          arguments: smoothAndHard)
    func activations(kind: Activation) throws {
        var check = Check()
        for shape in [[2, 5, 4, 4], [2, 16, 3, 3], [4, 7]] {
            // 0.1 apart, every value 0.025 from the kinks at -3, 0 and 3.
            let values = check.distinctValues(shape.reduce(1, *), gap: 0.1, offset: 0.025)
            let x = try Tensor(shape: shape, values: values).blocked()
            let y = try activation(kind, x)
            expectClose(try y.array(), values.map { Self.reference(kind, $0) }, tolerance: 1e-5, "\(kind) \(shape)")
            try check.gradients([x], step: 0.01, tolerance: 2e-3) { try activation(kind, $0[0]) }
            if shape.count == 4 { try expectZeroPadding(y) }
        }
        // The named functions are the same activations.
        let x = try check.tensor([2, 3, 2, 2], in: -5...5, blocked: true)
        let named: (Tensor) throws -> Tensor = switch kind {
        case .silu: silu
        case .sigmoid: sigmoid
        case .hardSwish: hardSwish
        case .gelu: gelu
        case .selu: selu
        default: hardSigmoid
        }
        #expect(try named(x).array() == activation(kind, x).array())
    }

    @Test("scaling with an offset is Keras's Rescaling(scale, offset), and its gradient the scale alone")
    func scaleWithOffset() throws {
        let values: [Float] = [0, 127.5, 255, 51]
        let tape = GradientTape()
        let x = tape.watch(try Tensor(shape: [1, 4], values: values))
        let y = try scale(x, by: 1 / 127.5, offset: -1)
        expectClose(try y.array(), values.map { $0 * (1 / 127.5) - 1 }, tolerance: 1e-6, "rescaled")
        try tape.backward(y)
        expectClose(try #require(tape.gradient(for: x)).array(), [Float](repeating: 1 / 127.5, count: 4), tolerance: 1e-7, "gradient")
    }

    /// Runs over the physical elements of the channel-padded layout (see `linear`).
    @Test("rescaling an RGB batch in the blocked layout (channels padded to the block) gives the definition")
    func scaleWithOffsetOnPaddedChannels() throws {
        var check = Check()
        let x = try check.tensor([2, 3, 7, 5], in: 0...255, blocked: true)
        let y = try scale(x, by: 1 / 127.5, offset: -1)
        expectClose(try y.array(), try x.array().map { $0 * (1 / 127.5) - 1 }, tolerance: 1e-6, "rescaled")
    }

    @Test("the hard sigmoid's gradient is 1/6 strictly inside (-3, 3) and 0 elsewhere, the hard swish's as torch's")
    func hardGradients() throws {
        let values: [Float] = [-4, -3, -2.9, 0, 2.9, 3, 4, 100]
        let tape = GradientTape()
        let x = tape.watch(try Tensor(shape: [1, 8], values: values))
        let y = try add(hardSigmoid(x), hardSwish(x))
        try tape.backward(y)
        let gradient = try #require(tape.gradient(for: x)).array()
        // torch.nn.functional.hardsigmoid's and hardswish's gradients at these points, summed.
        let hardSigmoidGradient: [Float] = [0, 0, 1.0 / 6, 1.0 / 6, 1.0 / 6, 0, 0, 0]
        let hardSwishGradient: [Float] = [0, 0, -2.9 / 3 + 0.5, 0.5, 2.9 / 3 + 0.5, 1, 1, 1]
        expectClose(gradient, zip(hardSigmoidGradient, hardSwishGradient).map(+), tolerance: 1e-6, "at the ends and beyond")
    }

    @Test("a convolution's fused activation equals the convolution then the activation, untraced and traced", arguments: smoothAndHard)
    func fusedPostOp(kind: Activation) throws {
        var check = Check()
        for outputs in [16, 12] {
            let x = try check.tensor([2, 8, 6, 6], in: -2...2, blocked: true)
            let weight = try check.tensor([outputs, 8, 3, 3], in: -0.5...0.5), bias = try check.tensor([outputs])
            let options = Conv2DOptions(stride: 1, padding: .symmetric(1))
            let (fused, runs) = try Kernels.recording { try conv2d(x, weight: weight, bias: bias, options: options, activation: kind) }
            #expect(runs.allSatisfy { $0.operation == "conv2d" }, "fused as a post-op: \(runs)")
            let separate = try activation(kind, conv2d(x, weight: weight, bias: bias, options: options))
            expectClose(try fused.array(), try separate.array(), tolerance: 1e-5, "\(outputs) outputs, untraced")
            try expectZeroPadding(fused)
            let seed = try check.tensor(separate.shape)
            let traced = try valueAndGradients([x, weight, bias], seed: seed) { t in
                try conv2d(t[0], weight: t[1], bias: t[2], options: options, activation: kind)
            }
            let reference = try valueAndGradients([x, weight, bias], seed: seed) { t in
                try activation(kind, conv2d(t[0], weight: t[1], bias: t[2], options: options))
            }
            expectClose(traced.output, reference.output, tolerance: 1e-5, "traced output")
            for (a, b) in zip(traced.gradients, reference.gradients) { expectClose(a, b, tolerance: 1e-5, "traced gradient") }
        }
    }

    @Test("scaleChannels multiplies each feature map by its sample's and channel's factor; gradients of both inputs")
    func channelScale() throws {
        var check = Check()
        for (shape, blocked) in [([2, 12, 3, 4], true), ([2, 16, 3, 3], false), ([3, 5, 1, 1], true)] {
            let x = try check.tensor(shape, blocked: blocked), scale = try check.tensor([shape[0], shape[1], 1, 1])
            let (xv, sv) = (try x.array(), try scale.array())
            let plane = shape[2] * shape[3]
            expectClose(try scaleChannels(x, by: scale).array(), xv.indices.map { xv[$0] * sv[$0 / plane] }, tolerance: 1e-7, "\(shape)")
            // Linear in each input: a large step is exact up to rounding.
            try check.gradients([x, scale], step: 0.25, tolerance: 1e-3) { try scaleChannels($0[0], by: $0[1]) }
        }
        #expect(throws: TensorError.self) { try scaleChannels(try check.tensor([2, 4, 3, 3]), by: try check.tensor([2, 4])) }
    }

    @Test("scaleSamples multiplies each sample by its factor, the factor being a constant")
    func sampleScale() throws {
        var check = Check()
        for (shape, blocked) in [([3, 5, 2, 2], true), ([3, 16, 2, 1], true), ([3, 7], false), ([1, 4, 3, 3], true)] {
            let x = try check.tensor(shape, blocked: blocked), scale = try check.tensor([shape[0]])
            let (xv, sv) = (try x.array(), try scale.array())
            let size = xv.count / shape[0]
            let y = try scaleSamples(x, by: scale)
            expectClose(try y.array(), xv.indices.map { xv[$0] * sv[$0 / size] }, tolerance: 1e-7, "\(shape)")
            if shape.count == 4 { try expectZeroPadding(y) }
            try check.gradients([x], step: 0.25, tolerance: 1e-3) { try scaleSamples($0[0], by: scale) }
        }
        #expect(throws: TensorError.self) { try scaleSamples(try check.tensor([2, 3]), by: try check.tensor([3])) }
    }

    @Test("dropPath keeps whole samples with probability 1 - rate, scaled by 1 / (1 - rate), and repeats with a seed")
    func stochasticDepth() throws {
        let x = Tensor.filled([1000, 3, 2, 2], 1)
        var generator = SeededGenerator(seed: 3)
        let values = try dropPath(x, rate: 0.25, generator: &generator).array()
        let samples = stride(from: 0, to: values.count, by: 12).map { Array(values[$0..<$0 + 12]) }
        #expect(samples.allSatisfy { sample in sample.allSatisfy { $0 == sample[0] } }, "one draw per sample")
        #expect(samples.allSatisfy { $0[0] == 0 || abs($0[0] - 4.0 / 3.0) < 1e-6 })
        let dropped = Double(samples.filter { $0[0] == 0 }.count) / Double(samples.count)
        #expect(abs(dropped - 0.25) < 0.05, "dropped \(dropped) of the samples")
        var again = SeededGenerator(seed: 3)
        #expect(try dropPath(x, rate: 0.25, generator: &again).array() == values)
        #expect(try dropPath(x, rate: 0, generator: &again).isSameValue(as: x))
        #expect(throws: TensorError.self) { try dropPath(x, rate: 1, generator: &again) }

        var check = Check()
        let input = try check.tensor([6, 5, 3, 3], blocked: true)
        try check.gradients([input], step: 0.25, tolerance: 1e-3) { t in
            var fixed = SeededGenerator(seed: 11)
            return try dropPath(t[0], rate: 0.5, generator: &fixed)
        }
    }

    @Test("channelShuffle transposes the channel groups as torch does; its gradient is the inverse")
    func shuffle() throws {
        var check = Check()
        for (shape, groups) in [([2, 12, 3, 3], 2), ([2, 12, 3, 3], 3), ([2, 12, 3, 3], 4), ([2, 32, 2, 2], 2), ([1, 116, 2, 2], 2)] {
            for blocked in [true, false] {
                let x = try check.tensor(shape, blocked: blocked)
                let (c, plane) = (shape[1], shape[2] * shape[3])
                let xv = try x.array()
                var expected = xv
                for n in 0..<shape[0] {
                    for k in 0..<(c / groups) {
                        for i in 0..<groups {
                            let (to, from) = ((n * c + k * groups + i) * plane, (n * c + i * (c / groups) + k) * plane)
                            expected[to..<(to + plane)] = xv[from..<(from + plane)]
                        }
                    }
                }
                let y = try channelShuffle(x, groups: groups)
                #expect(try y.array() == expected, "\(shape), \(groups) groups")
                try expectZeroPadding(y)
                try check.gradients([x], step: 0.25, tolerance: 1e-3) { try channelShuffle($0[0], groups: groups) }
            }
        }
        let x = try check.tensor([1, 6, 2, 2])
        #expect(try channelShuffle(x, groups: 1).array() == x.array())
        #expect(try channelShuffle(x, groups: 6).array() == x.array())
        #expect(throws: TensorError.self) { try channelShuffle(x, groups: 4) }
    }

    @Test("splitChannels cuts the channels in two, on and off block boundaries; each part's gradient reaches its channels")
    func split() throws {
        var check = Check()
        for (shape, index) in [([2, 12, 3, 3], 5), ([2, 32, 2, 3], 16), ([2, 40, 2, 2], 16), ([2, 116, 2, 2], 58), ([3, 7], 3)] {
            let x = try check.tensor(shape, blocked: true)
            let (first, second) = try splitChannels(x, at: index)
            #expect(first.shape[1] == index && second.shape[1] == shape[1] - index)
            #expect(try concat([first, second]).array() == x.array(), "\(shape) at \(index)")
            if shape.count == 4 {
                #expect(first.layout.isBlocked && second.layout.isBlocked)
                try expectZeroPadding(first)
                try expectZeroPadding(second)
            }
            // Both parts used, in the other order, and only one of them.
            try check.gradients([x], step: 0.25, tolerance: 1e-3) { t in
                let (a, b) = try splitChannels(t[0], at: index)
                return try concat([scale(b, by: 2), a])
            }
            try check.gradients([x], step: 0.25, tolerance: 1e-3) { t in try splitChannels(t[0], at: index).1 }
        }
        #expect(throws: TensorError.self) { try splitChannels(try check.tensor([2, 4, 3, 3]), at: 4) }
    }

    @Test("a grouped convolution with 4 groups matches the direct loop; its gradients match finite differences")
    func groupedConvolution() throws {
        var check = Check()
        let options = Conv2DOptions(stride: 1, padding: .symmetric(1), groups: 4)
        for blocked in [true, false] {
            let x = try check.tensor([2, 16, 5, 5], blocked: blocked), w = try check.tensor([8, 4, 3, 3]), b = try check.tensor([8])
            let expected = Reference.conv2d(try x.array(), x.shape, try w.array(), w.shape, bias: try b.array(), stride: [1, 1],
                                            padBefore: [1, 1], padAfter: [1, 1], groups: 4)
            expectClose(try conv2d(x, weight: w, bias: b, options: options).array(), expected.values, tolerance: 1e-5, "forward")
            try check.gradients([x, w, b], step: 0.25, tolerance: 2e-3) { try conv2d($0[0], weight: $0[1], bias: $0[2], options: options) }
        }
    }

    /// Realistic sizes (batch 32): every operation above, forward and backward, runs oneDNN's
    /// JIT kernels, never a reference kernel, nor a GEMM for a convolution.
    ///
    /// Seen with AVX-512 (oneDNN 2.6.3, `ONEDNN_VERBOSE=1`): the activations `jit:avx512_core`
    /// both ways, on 96 channels and, as a dense vector, on 40; `scaleChannels` and
    /// `scaleSamples` `jit:uni` (binary), `scale` with an offset on a 3-channel input
    /// `jit:avx512_core` as a dense vector, the channel-scale gradient `jit:avx512_core`
    /// (pooling); the shuffle `jit:avx512_core`; the grouped convolution `jit:avx512_core` in all
    /// three passes (channels-last); the depthwise 3x3 `jit_dw:avx512_core` in all three, the
    /// 5x5 `jit_dw:avx512_core` forward and backward data and `jit:avx512_core` backward
    /// weights (channels-last).
    @Test("at batch 32, the new operations and grouped and depthwise convolutions run no reference kernel")
    func fastKernels() throws {
        var check = Check()
        func expectFast(_ what: String, allowingGEMM: Bool = false, sourceLocation: SourceLocation = #_sourceLocation,
                        _ body: (GradientTape) throws -> Tensor) throws {
            let (_, runs) = try Kernels.recording {
                let tape = GradientTape()
                try tape.backward(try body(tape))
            }
            let slow = runs.filter { $0.isReference || (!allowingGEMM && $0.operation.hasPrefix("conv2d") && $0.implementation.contains("gemm")) }
            #expect(slow.isEmpty, "\(what): \(slow)", sourceLocation: sourceLocation)
            #expect(!runs.isEmpty, sourceLocation: sourceLocation)
        }
        for channels in [96, 40] {
            let x = try check.tensor([32, channels, 24, 24], in: -4...4, blocked: true)
            for kind in Self.smoothAndHard + [.relu, .relu6] {
                try expectFast("\(kind), \(channels) channels") { try activation(kind, $0.watch(x)) }
            }
            let gate = try sigmoid(try check.tensor([32, channels, 1, 1], blocked: true))
            try expectFast("scaleChannels, \(channels) channels") { tape in try scaleChannels(tape.watch(x), by: tape.watch(gate)) }
            try expectFast("scale, \(channels) channels") { try scale($0.watch(x), by: 0.17) }
            try expectFast("dropPath, \(channels) channels") { tape in
                var generator = SeededGenerator(seed: 1)
                return try dropPath(tape.watch(x), rate: 0.2, generator: &generator)
            }
        }
        let pixels = try check.tensor([32, 3, 96, 96], in: 0...255, blocked: true)
        try expectFast("scale with an offset, an RGB batch (MobileNetV3's Rescaling)") { try scale($0.watch(pixels), by: 1 / 127.5, offset: -1) }
        let shuffled = try check.tensor([32, 116, 24, 24], blocked: true)
        try expectFast("channelShuffle") { try channelShuffle($0.watch(shuffled), groups: 2) }
        // Not through concat: its 58 + 58 channels on the blocked layout run `ref:any` (oneDNN's
        // reference concat, which copies by JIT reorders: about twice as long as an aligned one).
        try expectFast("splitChannels") { tape in
            let (a, b) = try splitChannels(tape.watch(shuffled), at: 58)
            return try add(b, a)
        }

        let grouped = try check.tensor([32, 128, 28, 28], blocked: true), groupedWeight = try check.tensor([128, 4, 3, 3])
        let normScale = try check.tensor([128], in: 0.5...1.5), normShift = try check.tensor([128])
        // Seen with AVX2 alone (a Zen 3 EPYC): one of the grouped convolution's passes runs
        // `gemm:jit`, oneDNN 2.6's AVX2 grouped kernels wanting 8 channels per group (these have
        // 4, as ResNeXt's 32x4d); a JIT GEMM, not a reference kernel.
        try expectFast("grouped 3x3, 32 groups, and the batch norm after it", allowingGEMM: !CPUCapabilities.hasAVX512) { tape in
            let y = try conv2d(tape.watch(grouped), weight: tape.watch(groupedWeight), options: Conv2DOptions(padding: .symmetric(1), groups: 32))
            return try batchNormTraining(y, scale: tape.watch(normScale), shift: tape.watch(normShift), epsilon: 1e-5).output
        }
        let depthwise = try check.tensor([32, 96, 24, 24], blocked: true)
        for (kernel, stride) in [(3, 1), (3, 2), (5, 2), (5, 1)] {
            let weight = try check.tensor([96, 1, kernel, kernel])
            try expectFast("depthwise \(kernel)x\(kernel) stride \(stride)") { tape in
                try conv2d(tape.watch(depthwise), weight: tape.watch(weight), options: Conv2DOptions(stride: stride, padding: .same, groups: 96))
            }
        }
    }

    /// The output and the tape's gradients of `sum(f(inputs) * seed)` for every input.
    func valueAndGradients(_ inputs: [Tensor], seed: Tensor, _ f: ([Tensor]) throws -> Tensor) throws -> (output: [Float], gradients: [[Float]]) {
        let tape = GradientTape()
        let watched = inputs.map { tape.watch($0) }
        let output = try f(watched)
        try tape.backward(output, seed: seed)
        return (try output.array(), try watched.map { try #require(tape.gradient(for: $0)).array() })
    }

    /// Expects the padding of a blocked tensor's last channel block to hold zeros, as oneDNN's
    /// primitives need: each sample has exactly as many nonzero physical values as logical ones.
    func expectZeroPadding(_ y: Tensor, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let logical = try y.array()
        let size = logical.count / y.shape[0]
        for (index, sample) in try y.samples().enumerated() {
            let nonzero = logical[(index * size)..<((index + 1) * size)].filter { $0 != 0 }.count
            #expect(sample.values.filter { $0 != 0 }.count == nonzero, "sample \(index) has nonzero padding", sourceLocation: sourceLocation)
        }
    }
}
