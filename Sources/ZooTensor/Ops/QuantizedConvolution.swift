import CDNNL

/// How one activation tensor is quantized: symmetric, `value = integer * step`, in `int8`, or
/// in `uint8` when the values are never negative (after a ReLU: twice the resolution).
public struct ActivationQuantization: Sendable, Hashable, Codable {
    /// The value of one integer unit.
    public var step: Float
    /// `int8` or `uint8`.
    public var type: ElementType

    public init(step: Float, type: ElementType) {
        precondition(type.isQuantized, "zoo: ActivationQuantization of \(type)")
        self.step = step
        self.type = type
    }

    /// The quantization that covers values from `minimum` to `maximum` (a calibrated range):
    /// `uint8` with a step of `maximum / 255` when nothing is negative, else `int8` with
    /// `max(|minimum|, |maximum|) / 127`.
    public init(minimum: Float, maximum: Float) {
        let largest = max(abs(minimum), abs(maximum))
        let unsigned = minimum >= 0
        let step = largest / (unsigned ? 255 : 127)
        self.init(step: step > 0 && step.isFinite ? step : 1, type: unsigned ? .uint8 : .int8)
    }
}

/// The quantization of an int8 convolution: of its input when it arrives in floating point, of
/// its output (nil: the output stays floating point, of the input's floating-point type), and
/// of a residual that arrives in floating point.
public struct ConvolutionQuantization: Sendable, Hashable, Codable {
    public var input: ActivationQuantization
    public var output: ActivationQuantization?
    public var residual: ActivationQuantization?

    public init(input: ActivationQuantization, output: ActivationQuantization?, residual: ActivationQuantization? = nil) {
        self.input = input
        self.output = output
        self.residual = residual
    }
}

/// A convolution weight quantized per output channel for int8 convolutions: symmetric, the
/// largest magnitude of each output channel at 127.
public struct QuantizedWeight: @unchecked Sendable {
    /// The integers, row-major OIHW `int8` (step 1: the integers themselves).
    let values: Tensor
    /// The value of one integer unit, per output channel.
    public let steps: [Float]
    /// The weight's shape, `[O, I / groups, KH, KW]`.
    public var shape: [Int] { values.shape }

    /// Quantizes `weight` (`[O, I / groups, KH, KW]`).
    public init(_ weight: Tensor) throws {
        let shape = weight.shape
        let real = try weight.array()
        let outputs = shape[0], perOutput = real.count / max(outputs, 1)
        let buffer = Buffer(.rowMajor(shape, .int8))
        let integers = buffer.storage.pointer.bindMemory(to: Int8.self, capacity: real.count)
        var steps = [Float](repeating: 1, count: outputs)
        for output in 0..<outputs {
            let range = output * perOutput..<(output + 1) * perOutput
            let largest = real[range].reduce(0) { max($0, abs($1)) }
            let step = largest > 0 ? largest / 127 : 1
            steps[output] = step
            for index in range { integers[index] = Int8(clamping: Int((real[index] / step).rounded())) }
        }
        values = Tensor(shape: shape, buffer: buffer, quantization: Quantization(step: 1, floatType: .float32))
        self.steps = steps
    }
}

/// An int8 convolution: `x` (quantized, or floating point and quantized here to
/// `quantization.input`) with a per-channel quantized `weight`, a floating-point `bias`, then
/// `residual` added and `activation` applied, all in one oneDNN primitive (`brgconv` or
/// `jit_int8` on AVX512_VNNI and AMX), the integers accumulated exactly in 32 bits. The output
/// is quantized to `quantization.output`, or of `x`'s floating-point type when that is nil.
///
/// oneDNN computes `output scale * (sum of integer products + bias)` and then its post-ops, so
/// the output scale per channel is `input step * weight step` (back to real values), the bias
/// is divided by it, the residual (written into the output first) is summed with its own step,
/// the activation runs on real values, and a last linear post-op divides by the output step.
/// Inference only: nothing is traced.
public func conv2d(_ x: Tensor, weight: QuantizedWeight, bias: Tensor? = nil, options: Conv2DOptions = Conv2DOptions(),
                   residual: Tensor? = nil, activation: Activation? = nil, quantization: ConvolutionQuantization) throws -> Tensor {
    let op = "conv2d int8"
    let geometry = try ConvolutionGeometry(input: x.shape, weight: weight.shape, bias: bias?.shape, options: options)
    if let residual, residual.shape != geometry.outputShape {
        throw TensorError.shapeMismatch(operation: op, expected: "the residual has the output's shape", lhs: geometry.outputShape,
                                        rhs: residual.shape)
    }
    let floatType = x.quantization?.floatType ?? x.elementType
    let input = try (x.quantization != nil ? x : x.quantized(step: quantization.input.step, as: quantization.input.type))
        .asActivation(op + " input")
    let residualInput = try residual.map { residual -> Tensor in
        // The sum reads integers of the residual's own size from the output: a floating-point
        // output sums a floating-point residual of its type.
        if quantization.output == nil { return try residual.dequantized().converted(to: floatType) }
        if residual.quantization != nil { return residual }
        guard let step = quantization.residual else {
            throw TensorError.invalidArgument(operation: op, message: "a floating-point residual needs a calibrated residual step")
        }
        return try residual.quantized(step: step.step, as: step.type)
    }
    let outputType = quantization.output?.type ?? floatType
    let inputStep = input.quantization!.step
    let outputScales = weight.steps.map { inputStep * $0 }
    let postOps = QuantizedEpilogue(residual: residualInput.map { ($0.quantization?.step ?? 1, $0.elementType) }, activation: activation,
                                    outputStep: quantization.output?.step)
    let forward = try geometry.int8ForwardPrimitive(source: input.layout, outputType: outputType, outputScales: outputScales,
                                                    epilogue: postOps)
    let output = Buffer(forward.layout(dnnl_query_dst_md))
    if let residualInput {
        // The sum post-op reads the residual from the output buffer, as integers of its own type.
        try reorder(residualInput.buffer, into: Buffer(storage: output.storage, layout: output.layout.with(residualInput.elementType)),
                    operation: op + " residual")
    }
    var arguments: [(Int32, Buffer)] = [
        (DNNL_ARG_SRC, try input.reordered(to: forward.layout(dnnl_query_src_md), operation: op + " input").buffer),
        (DNNL_ARG_WEIGHTS, try geometry.weight(weight.values, for: forward, query: dnnl_query_weights_md)),
        (DNNL_ARG_DST, output),
    ]
    if let bias {
        let values = try bias.array()
        let scaled = try Tensor(shape: [values.count], values: zip(values, outputScales).map { $0 / $1 })
        arguments.append((DNNL_ARG_BIAS, scaled.buffer))
    }
    try forward.execute(op, arguments)
    return Tensor(shape: geometry.outputShape, buffer: output,
                  quantization: quantization.output.map { Quantization(step: $0.step, floatType: floatType) })
}

/// The post-ops of an int8 convolution, on real values after the output scale: the residual's
/// sum, the activation, and the division by the output step for a quantized output.
struct QuantizedEpilogue {
    var residual: (step: Float, type: ElementType)?
    var activation: Activation?
    var outputStep: Float?

    /// What identifies these post-ops in a primitive's cache key.
    var settings: [Int64] {
        [Int64(residual?.step.bitPattern ?? 0), Int64(residual.map { Int($0.type.dnnl.rawValue) } ?? -1), activation?.code ?? -1,
         Int64(outputStep?.bitPattern ?? 0)]
    }

    func append(to postOps: dnnl_post_ops_t?, _ operation: String) throws {
        if let residual {
            try check(dnnl_post_ops_append_sum_v2(postOps, residual.step, residual.type.dnnl), operation, "appending the residual sum")
        }
        try activation?.appendPostOps(to: postOps, operation)
        if let outputStep {
            try check(dnnl_post_ops_append_eltwise(postOps, 1, dnnl_eltwise_linear, 1 / outputStep, 0), operation, "appending the output step")
        }
    }
}

extension ConvolutionGeometry {
    /// The int8 forward primitive: integer input in `source`, int8 weights in the kernel's
    /// layout, an output of `outputType` (channels-last when quantized, else the activation
    /// layout of that type), per-output-channel `outputScales`.
    func int8ForwardPrimitive(source: Layout, outputType: ElementType, outputScales: [Float],
                              epilogue: QuantizedEpilogue) throws -> Primitive {
        let op = Self.operation + " int8"
        // Scales differ per layer; a hash of their bits keys the cache with them.
        var hasher = Hasher()
        outputScales.forEach { hasher.combine($0.bitPattern) }
        let key = PrimitiveKey("conv_forward_int8", layouts: [source],
                               settings + epilogue.settings + [Int64(outputType.dnnl.rawValue), Int64(outputScales.count),
                                                               Int64(hasher.finalize())])
        return try PrimitiveCache.primitive(key) {
            func make(source: Layout, output: Layout) throws -> Primitive {
                var desc = dnnl_convolution_desc_t()
                var src = source.desc, wei = Layout.any(dnnlWeightShape, .int8).desc, dst = output.desc
                try withOptionalPointer(biasLayout?.desc) { bia in
                    try check(dnnl_dilated_convolution_forward_desc_init(
                        &desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, bia, &dst, dnnlStride, dnnlDilation,
                        dnnlPadBefore, dnnlPadAfter), op)
                }
                return try withPostOps(op, { try epilogue.append(to: $0, op) }, configure: { attributes in
                    try check(dnnl_primitive_attr_set_output_scales(attributes, Int64(outputScales.count), 1 << 1, outputScales), op,
                              "setting output scales")
                }) { try makePrimitive(op, desc, attributes: $0) }
            }
            let output = Layout.blocked(outputShape, outputType)
            if let primitive = try? make(source: .blocked(inputShape, source.elementType), output: output), !primitive.isSlowFallback {
                return primitive
            }
            return try make(source: .any(inputShape, source.elementType), output: .any(outputShape, outputType))
        }
    }
}

/// Batch norm with running statistics on a quantized `x` (4-D), then a ReLU when `relu`, written
/// quantized to `output`: one oneDNN binary primitive reading and writing one byte per value
/// (the per-channel multiplier, which includes `x`'s step, as its second input; the shift,
/// the ReLU and the division by the output step as post-ops). It replaces three passes over
/// twice the bytes: dequantizing, a bf16 batch norm and quantizing again (DenseNet's
/// pre-activation on each concatenation: measured with DenseNet201 at 96x96, batch 32, AMX,
/// 130 ms of a 258 ms pass).
public func batchNormInference(_ x: Tensor, scale: Tensor, shift: Tensor, mean: Tensor, variance: Tensor, epsilon: Float,
                               relu: Bool, output: ActivationQuantization) throws -> Tensor {
    let operation = "batchNorm int8"
    guard let quantization = x.quantization else {
        throw TensorError.invalidArgument(operation: operation, message: "the input must be quantized, got \(x.elementType)")
    }
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    let channels = x.shape[1]
    for parameter in [scale, shift, mean, variance] where parameter.shape != [channels] {
        throw TensorError.shapeMismatch(operation: operation, expected: "one scale, shift and statistic per channel", lhs: x.shape,
                                        rhs: parameter.shape)
    }
    let (gamma, beta, mu, sigma2) = (try scale.array(), try shift.array(), try mean.array(), try variance.array())
    let multiplier = (0..<channels).map { gamma[$0] / (sigma2[$0] + epsilon).squareRoot() }
    let source = try x.asActivation(operation)
    let factors = try Tensor(shape: [1, channels, 1, 1], values: multiplier.map { $0 * quantization.step })
    let offsets = try Tensor(shape: [1, channels, 1, 1], values: (0..<channels).map { beta[$0] - mu[$0] * multiplier[$0] })
    let destination = Layout.blocked(x.shape, output.type)
    let epilogue = QuantizedEpilogue(residual: nil, activation: relu ? .relu : nil, outputStep: output.step)
    let key = PrimitiveKey("batch_norm_int8", layouts: [source.layout, destination], epilogue.settings)
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_binary_desc_t()
        var src0 = source.layout.desc, src1 = factors.layout.desc, dst = destination.desc
        try check(dnnl_binary_desc_init(&desc, dnnl_binary_mul, &src0, &src1, &dst), operation)
        return try withPostOps(operation, { postOps in
            var shiftDesc = offsets.layout.desc
            try check(dnnl_post_ops_append_binary(postOps, dnnl_binary_add, &shiftDesc), operation, "appending the shift")
            try epilogue.append(to: postOps, operation)
        }) { try makePrimitive(operation, desc, attributes: $0) }
    }
    let result = Buffer(destination)
    try primitive.execute(operation, [(DNNL_ARG_SRC_0, source.buffer), (DNNL_ARG_SRC_1, factors.buffer), (DNNL_ARG_DST, result),
                                      (Epilogue.residualArgument, offsets.buffer)])
    return Tensor(shape: x.shape, buffer: result, quantization: Quantization(step: output.step, floatType: quantization.floatType))
}
