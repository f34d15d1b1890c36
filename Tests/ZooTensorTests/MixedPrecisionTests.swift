import Testing
import ZooTensor

/// bf16 activations: every operation computes in its input's element type and agrees with its
/// f32 self within what 8 bits of mantissa allow, values and gradients, and gradients of f32
/// weights stay f32.
///
/// Tolerances are relative to the largest magnitude of the f32 result (bf16 rounds each value
/// to about 3 significant digits, so an absolute bound would depend on the scale): an operation
/// that rounds once (element-wise functions, pooling, concatenation) is within 2^-8 of it, one
/// that sums many rounded products (convolution, dense, batch norm's normalization) within 2%.
@Suite("Mixed precision (bf16)")
struct MixedPrecisionTests {
    /// The largest difference over the largest magnitude of `expected`.
    static func relativeError(_ actual: [Float], _ expected: [Float]) -> Float {
        let scale = max(expected.map(abs).max() ?? 0, .leastNormalMagnitude)
        return zip(actual, expected).map { abs($0 - $1) }.max().map { $0 / scale } ?? .infinity
    }

    /// `f` on f32 inputs and on the same inputs in bf16 (rounded first, so that both see equal
    /// values): outputs and the gradients of every input compared relatively; each bf16
    /// gradient comes back in its input's type.
    func expectAgrees(_ what: String, _ inputs: [Tensor], tolerance: Float, gradientTolerance: Float? = nil,
                      outputType: ElementType = .bfloat16, bf16Inputs: Set<Int> = [0],
                      sourceLocation: SourceLocation = #_sourceLocation, _ f: ([Tensor]) throws -> Tensor) throws {
        var check = Check()
        let rounded = try inputs.enumerated().map { index, x in
            bf16Inputs.contains(index) ? try x.converted(to: .bfloat16).converted(to: .float32) : x
        }
        var seed: Tensor?
        func run(_ values: [Tensor]) throws -> (output: Tensor, gradients: [Tensor]) {
            let tape = GradientTape()
            let watched = values.map { tape.watch($0) }
            let output = try f(watched)
            if seed == nil { seed = try check.tensor(output.shape) }
            try tape.backward(output, seed: seed)
            return (output, try watched.map { try #require(tape.gradient(for: $0), "\(what): a gradient") })
        }
        let reference = try run(rounded)
        let mixedInputs = try rounded.enumerated().map { bf16Inputs.contains($0.offset) ? try $0.element.converted(to: .bfloat16) : $0.element }
        let mixed = try run(mixedInputs)
        #expect(mixed.output.elementType == outputType, "\(what): output is \(mixed.output.elementType)", sourceLocation: sourceLocation)
        let error = Self.relativeError(try mixed.output.array(), try reference.output.array())
        #expect(error <= tolerance, "\(what): output differs by \(error) of its scale", sourceLocation: sourceLocation)
        for (index, (gradient, expected)) in zip(mixed.gradients, reference.gradients).enumerated() {
            #expect(gradient.elementType == mixedInputs[index].elementType,
                    "\(what): gradient of input \(index) is \(gradient.elementType)", sourceLocation: sourceLocation)
            let error = Self.relativeError(try gradient.array(), try expected.array())
            #expect(error <= gradientTolerance ?? tolerance, "\(what): gradient of input \(index) differs by \(error) of its scale",
                    sourceLocation: sourceLocation)
        }
    }

    @Test("conversion rounds to the nearest bf16 and back exactly; representable values survive, the tensor says its type")
    func conversion() throws {
        let values: [Float] = [1, -2.5, 0.15625, 3.0e38, 1 + 1.0 / 256, 1 + 3.0 / 256, 1e-30, 0]
        let x = try Tensor(shape: [values.count], values: values)
        let half = try x.converted(to: .bfloat16)
        #expect(half.elementType == .bfloat16 && x.elementType == .float32)
        let back = try half.array()
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to even (1); 1 + 3 * 2^-8 to 1 + 2^-6.
        #expect(Array(back[0..<3]) == [1, -2.5, 0.15625])
        #expect(back[4] == 1 && back[5] == 1 + 1.0 / 64 && back[7] == 0)
        for (a, b) in zip(back, values) { #expect(abs(a - b) <= abs(b) / 256, "\(b) became \(a)") }
        #expect(try half.converted(to: .float32).converted(to: .bfloat16).array() == back)
        #expect(try half.blocked().elementType == .bfloat16 && half.layout.description.hasSuffix("bf16"))
    }

    @Test("convolutions (plain, strided, grouped, depthwise, with bias, fused ReLU and residual) agree with f32; weight gradients are f32",
          .enabled(if: CPUCapabilities.hasAVX512, "skipped: oneDNN has no bf16 kernels below AVX-512; this CPU runs \(CPUCapabilities.instructionSet)"))
    func convolutions() throws {
        var check = Check()
        let x = try check.tensor([4, 32, 12, 12], blocked: true)
        let weight = try check.tensor([48, 32, 3, 3], in: -0.2...0.2), bias = try check.tensor([48])
        try expectAgrees("3x3 convolution with bias", [x, weight, bias], tolerance: 0.02) {
            try conv2d($0[0], weight: $0[1], bias: $0[2], options: Conv2DOptions(padding: .symmetric(1)))
        }
        try expectAgrees("strided 1x1", [x, try check.tensor([64, 32, 1, 1])], tolerance: 0.02) {
            try conv2d($0[0], weight: $0[1], options: Conv2DOptions(stride: 2))
        }
        try expectAgrees("grouped 3x3, 8 groups", [x, try check.tensor([32, 4, 3, 3])], tolerance: 0.02) {
            try conv2d($0[0], weight: $0[1], options: Conv2DOptions(padding: .symmetric(1), groups: 8))
        }
        try expectAgrees("depthwise 5x5, stride 2", [x, try check.tensor([32, 1, 5, 5])], tolerance: 0.02) {
            try conv2d($0[0], weight: $0[1], options: Conv2DOptions(stride: 2, padding: .same, groups: 32))
        }
        // Untraced, so that the residual and the ReLU run as post-ops of the bf16 convolution.
        let residual = try check.tensor([4, 48, 12, 12], blocked: true)
        let fused = try conv2d(x.converted(to: .bfloat16), weight: weight, bias: bias, options: Conv2DOptions(padding: .symmetric(1)),
                               residual: residual.converted(to: .bfloat16), activation: .relu)
        let separate = try relu(add(conv2d(x, weight: weight, bias: bias, options: Conv2DOptions(padding: .symmetric(1))), residual))
        #expect(fused.elementType == .bfloat16)
        #expect(Self.relativeError(try fused.array(), try separate.array()) <= 0.02)
    }

    @Test("batch norm in training and inference, activations, pooling, dense and the shape operations agree with f32",
          .enabled(if: CPUCapabilities.hasAVX512, "skipped: oneDNN has no bf16 kernels below AVX-512; this CPU runs \(CPUCapabilities.instructionSet)"))
    func otherOperations() throws {
        var check = Check()
        let x = try check.tensor([4, 40, 10, 10], in: -3...3, blocked: true)
        let scale = try check.tensor([40], in: 0.5...1.5), shift = try check.tensor([40])
        let mean = try check.tensor([40], in: -0.5...0.5), variance = try check.tensor([40], in: 0.5...2)
        try expectAgrees("batch norm, batch statistics, fused ReLU", [x, scale, shift], tolerance: 0.02, gradientTolerance: 0.05) {
            try batchNormTraining($0[0], scale: $0[1], shift: $0[2], epsilon: 1e-3, relu: true).output
        }
        try expectAgrees("batch norm, running statistics", [x, scale, shift], tolerance: 0.02) {
            try batchNormInference($0[0], scale: $0[1], shift: $0[2], mean: mean, variance: variance, epsilon: 1e-3)
        }
        // The sigmoid's gradient `dy * y * (1 - y)` comes from its bf16 output, in which `1 - y`
        // keeps few digits for `y` near 1 (measured: 2.5% of the gradient's scale).
        for kind in Activation.allCases {
            try expectAgrees("\(kind)", [x], tolerance: 1.0 / 128, gradientTolerance: kind == .sigmoid ? 1.0 / 32 : 1.0 / 128) {
                try activation(kind, $0[0])
            }
        }
        try expectAgrees("max pooling 3x3 stride 2", [x], tolerance: 1.0 / 128) {
            try maxPool2d($0[0], Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1)))
        }
        try expectAgrees("average pooling, ceil mode (divisor correction)", [x], tolerance: 1.0 / 128) {
            try avgPool2d($0[0], Pool2DOptions(kernel: 3, stride: 2, ceilMode: true))
        }
        try expectAgrees("global average pooling then dense (f32 logits)", [x, try check.tensor([10, 40]), try check.tensor([10])],
                         tolerance: 0.02, outputType: .float32) {
            try dense(globalAvgPool2d($0[0]), weight: $0[1], bias: $0[2])
        }
        let other = try check.tensor([4, 24, 10, 10], blocked: true)
        try expectAgrees("concat with an f32 tensor, add, zero padding", [x, other], tolerance: 1.0 / 128) {
            let joined = try concat([$0[0], $0[1]])
            return try zeroPad2d(add(joined, joined), top: 1, bottom: 0, left: 2, right: 1)
        }
        try expectAgrees("split, shuffle, scaleChannels", [x, try sigmoid(check.tensor([4, 40, 1, 1]))], tolerance: 1.0 / 64,
                         bf16Inputs: [0, 1]) {
            let (a, b) = try splitChannels($0[0], at: 12)
            return try scaleChannels(channelShuffle(concat([b, a]), groups: 2), by: $0[1])
        }
        try expectAgrees("scale, dropout, dropPath", [x], tolerance: 1.0 / 128) {
            var generator = SeededGenerator(seed: 3)
            let dropped = try dropout(ZooTensor.scale($0[0], by: 0.5, offset: 1), rate: 0.25, generator: &generator)
            return try dropPath(dropped, rate: 0.5, generator: &generator)
        }
    }

    /// What the kernels are (measured on this project's CPUs): with AMX, `brg:avx512_core_amx`
    /// convolutions; with AVX512_BF16 alone, `brgconv:avx512_core_bf16` or
    /// `jit:avx512_core_bf16`; batch norm `bnorm_jit:avx512_core`, element-wise and pooling
    /// `jit:avx512_core`. Without native bf16 the engine runs f32 instead (see `Precision`).
    @Test("at batch 32, bf16 layers run no reference kernel where the CPU has native bf16, and bf16 falls back to f32 where it has not")
    func fastKernels() throws {
        let resolved = Precision.bf16.resolved()
        guard CPUCapabilities.hasNativeBFloat16 else {
            #expect(resolved.activationType == .float32 && resolved.note?.contains(CPUCapabilities.instructionSet) == true)
            return
        }
        #expect(resolved.activationType == .bfloat16 && resolved.note == nil)
        #expect(Precision.auto.resolved().effective == .bf16 && Precision.f32.resolved().activationType == .float32)
        var check = Check()
        let x = try check.tensor([32, 64, 28, 28], blocked: true).converted(to: .bfloat16)
        let weight = try check.tensor([64, 64, 3, 3]), pointwise = try check.tensor([128, 64, 1, 1])
        let depthwise = try check.tensor([64, 1, 3, 3]), scale = try check.tensor([64], in: 0.5...1.5), shift = try check.tensor([64])
        let narrow = try check.tensor([24, 128, 1, 1]), narrowScale = try check.tensor([24], in: 0.5...1.5), narrowShift = try check.tensor([24])
        let head = try check.tensor([10, 24])
        let (_, runs) = try Kernels.recording {
            let tape = GradientTape()
            var y = try conv2d(tape.watch(x), weight: tape.watch(weight), options: Conv2DOptions(padding: .symmetric(1)))
            y = try batchNormTraining(y, scale: tape.watch(scale), shift: tape.watch(shift), epsilon: 1e-3, relu: true).output
            y = try relu6(conv2d(y, weight: tape.watch(depthwise), options: Conv2DOptions(padding: .symmetric(1), groups: 64)))
            y = try maxPool2d(add(y, x), Pool2DOptions(kernel: 2))
            y = try conv2d(conv2d(y, weight: tape.watch(pointwise)), weight: tape.watch(narrow))
            // 24 channels: oneDNN's channels-last bf16 batch norm has only a plain C++ kernel for them.
            y = try batchNormTraining(y, scale: tape.watch(narrowScale), shift: tape.watch(narrowShift), epsilon: 1e-3).output
            y = try globalAvgPool2d(y)
            let loss = try softmaxCrossEntropy(logits: dense(y, weight: tape.watch(head)), labels: (0..<32).map { $0 % 10 })
            try tape.backward(loss)
        }
        let slow = runs.filter {
            $0.isReference || $0.implementation.hasSuffix(":any") || ($0.operation.hasPrefix("conv2d") && $0.implementation.contains("gemm"))
        }
        #expect(slow.isEmpty, "\(slow)")
        #expect(runs.contains { $0.operation == "conv2d" && $0.implementation.contains("bf16") })
    }
}

extension MixedPrecisionTests {
    /// The bottleneck and inverted-residual projections of ResNet50, MobileNetV2 and
    /// EfficientNet at 96x96 and 224x224, batch 32: in bf16, a residual asked for as a post-op
    /// gives the convolution then a separate add; oneDNN 2.6.3's AMX kernel that corrupted memory
    /// doing this (see `Primitive.corruptsWithBinaryPostOp`) must not run it, or this test
    /// crashes (it did before the workaround).
    @Test("bf16 1x1 convolutions with a fused residual, at the shapes of real networks, equal the separate add",
          .enabled(if: CPUCapabilities.hasAVX512, "skipped: oneDNN has no bf16 kernels below AVX-512; this CPU runs \(CPUCapabilities.instructionSet)"))
    func fusedResidualShapes() throws {
        var check = Check()
        let shapes: [(input: Int, output: Int, size: Int)] = [
            (64, 256, 24), (128, 512, 12), (256, 1024, 6), (512, 2048, 3), (64, 256, 56), (256, 1024, 14), (512, 2048, 7),
            (144, 24, 24), (192, 32, 12), (384, 64, 6), (576, 96, 6), (960, 160, 3), (576, 96, 14), (960, 160, 7), (480, 80, 6),
        ]
        for (inputs, outputs, size) in shapes {
            let x = try check.tensor([32, inputs, size, size], blocked: true).converted(to: .bfloat16)
            let weight = try check.tensor([outputs, inputs, 1, 1], in: -0.1...0.1), bias = try check.tensor([outputs])
            let residual = try check.tensor([32, outputs, size, size], blocked: true).converted(to: .bfloat16)
            for activation in [nil, Activation.relu] {
                let fused = try conv2d(x, weight: weight, bias: bias, residual: residual, activation: activation)
                var separate = try add(conv2d(x, weight: weight, bias: bias), residual)
                if let activation { separate = try ZooTensor.activation(activation, separate) }
                let error = Self.relativeError(try fused.array(), try separate.array())
                #expect(error <= 1.0 / 128, "\(inputs) -> \(outputs) at \(size)x\(size), \(activation?.name ?? "no activation"): \(error)")
            }
        }
    }
}
