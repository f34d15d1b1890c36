import CDNNL

/// How running statistics follow batch statistics during training. The two frameworks state
/// the same exponential average with opposite momentum conventions, and they differ in which
/// batch variance they average.
public enum BatchNormMomentum: Sendable, Equatable {
    /// Keras: `moving = momentum * moving + (1 - momentum) * batch` (default momentum 0.99).
    /// Keras 3 averages the biased batch variance; Keras 2's fused kernel averaged the unbiased
    /// one (`unbiasedVariance: true` reproduces that).
    case keras(momentum: Float, unbiasedVariance: Bool = false)
    /// PyTorch: `running = (1 - momentum) * running + momentum * batch` (default momentum 0.1),
    /// averaging the unbiased batch variance (`n / (n - 1)` times the biased one).
    case pytorch(momentum: Float)

    /// Weight on the batch statistic in the update.
    var batchWeight: Float {
        switch self {
        case let .keras(momentum, _): return 1 - momentum
        case let .pytorch(momentum): return momentum
        }
    }

    var unbiasedVariance: Bool {
        switch self {
        case let .keras(_, unbiased): return unbiased
        case .pytorch: return true
        }
    }

    /// The running statistics after one batch of `count` values per channel.
    public func updated(runningMean: Tensor, runningVariance: Tensor, batchMean: Tensor, batchVariance: Tensor,
                        count: Int) throws -> (mean: Tensor, variance: Tensor) {
        let weight = batchWeight
        let correction: Float = unbiasedVariance && count > 1 ? Float(count) / Float(count - 1) : 1
        func blend(_ running: Tensor, _ batch: Tensor, _ factor: Float) throws -> Tensor {
            let old = try running.array(), new = try batch.array()
            guard old.count == new.count else {
                throw TensorError.shapeMismatch(operation: "batchNorm running statistics", expected: "one value per channel",
                                                lhs: running.shape, rhs: batch.shape)
            }
            return try Tensor(shape: running.shape, values: zip(old, new).map { (1 - weight) * $0 + weight * factor * $1 })
        }
        return (try blend(runningMean, batchMean, 1), try blend(runningVariance, batchVariance, correction))
    }
}

/// Batch normalization with batch statistics (training): `(x - mean) / sqrt(var + epsilon) *
/// scale + shift` per channel of `[N, C, H, W]` (or `[N, C]`), with `mean` and `var` over the
/// batch and spatial positions. Returns the batch mean and (biased) variance for updating
/// running statistics.
///
/// `relu: true` applies a ReLU in the same pass, forward and backward (backward keeps a mask of
/// one byte per element instead of a separate activation's output).
public func batchNormTraining(_ x: Tensor, scale: Tensor, shift: Tensor, epsilon: Float, relu fusedReLU: Bool = false) throws
    -> (output: Tensor, mean: Tensor, variance: Tensor) {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "batchNorm"
    let input = try validatedBatchNormInput(x, scale: scale, shift: shift, operation: operation)
    let channels = [x.shape[1]]
    var flags = dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
    if fusedReLU { flags |= dnnl_fuse_norm_relu.rawValue }
    let forward = try batchNormForward(input.layout, epsilon: epsilon, flags: flags, training: true, operation: operation)
    let source = try input.reordered(to: forward.layout(dnnl_query_src_md), operation: operation)
    let output = Buffer(source.layout)
    let mean = Buffer(.rowMajor(channels)), variance = Buffer(.rowMajor(channels))
    let workspace = forward.workspaceLayout.map { Buffer($0) }
    let scaleBuffer = try scale.rowMajor().buffer, shiftBuffer = try shift.rowMajor().buffer
    try forward.execute(operation, [
        (DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DST, output), (DNNL_ARG_SCALE, scaleBuffer),
        (DNNL_ARG_SHIFT, shiftBuffer), (DNNL_ARG_MEAN, mean), (DNNL_ARG_VARIANCE, variance),
    ] + (workspace.map { [(DNNL_ARG_WORKSPACE, $0)] } ?? []))
    let result = try Tensor(shape: x.shape, buffer: output).reordered(to: input.layout, operation: operation)
    let y = try GradientTape.record(operation, inputs: [x, scale, shift], output: result) { dy, needed in
        try batchNormBackward(dy, source: source.detached(), scale: scaleBuffer, shift: shiftBuffer, mean: mean, variance: variance,
                              epsilon: epsilon, flags: flags, workspace: workspace, forward: forward, needed: needed,
                              operation: operation)
    }
    return (y, Tensor(shape: channels, buffer: mean), Tensor(shape: channels, buffer: variance))
}

/// Batch normalization with fixed statistics (inference, or a frozen layer during training):
/// `(x - mean) / sqrt(variance + epsilon) * scale + shift`. Differentiable with respect to
/// `x`, `scale` and `shift`; the statistics are constants.
///
/// `relu: true` applies a ReLU to the result: in the same pass when nothing is traced, as a
/// separate recorded operation otherwise.
public func batchNormInference(_ x: Tensor, scale: Tensor, shift: Tensor, mean: Tensor, variance: Tensor,
                               epsilon: Float, relu fusedReLU: Bool = false) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "batchNorm"
    let input = try validatedBatchNormInput(x, scale: scale, shift: shift, operation: operation)
    for statistic in [mean, variance] where statistic.shape != [x.shape[1]] {
        throw TensorError.shapeMismatch(operation: operation, expected: "one running statistic per channel",
                                        lhs: x.shape, rhs: statistic.shape)
    }
    var flags = dnnl_use_global_stats.rawValue | dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
    let training = try GradientTape.tape(of: [x, scale, shift], operation) != nil
    if fusedReLU {
        if training {
            return try relu(batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: epsilon))
        }
        flags |= dnnl_fuse_norm_relu.rawValue
    }
    let forward = try batchNormForward(input.layout, epsilon: epsilon, flags: flags, training: training, operation: operation)
    let source = try input.reordered(to: forward.layout(dnnl_query_src_md), operation: operation)
    let output = Buffer(source.layout)
    let scaleBuffer = try scale.rowMajor().buffer, shiftBuffer = try shift.rowMajor().buffer
    let meanBuffer = try mean.rowMajor().buffer, varianceBuffer = try variance.rowMajor().buffer
    try forward.execute(operation, [
        (DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DST, output), (DNNL_ARG_SCALE, scaleBuffer),
        (DNNL_ARG_SHIFT, shiftBuffer), (DNNL_ARG_MEAN, meanBuffer), (DNNL_ARG_VARIANCE, varianceBuffer),
    ])
    let result = try Tensor(shape: x.shape, buffer: output).reordered(to: input.layout, operation: operation)
    return try GradientTape.record(operation, inputs: [x, scale, shift], output: result) { dy, needed in
        try batchNormBackward(dy, source: source.detached(), scale: scaleBuffer, shift: shiftBuffer, mean: meanBuffer,
                              variance: varianceBuffer, epsilon: epsilon, flags: flags, workspace: nil, forward: forward,
                              needed: needed, operation: operation)
    }
}

private func validatedBatchNormInput(_ x: Tensor, scale: Tensor, shift: Tensor, operation: String) throws -> Tensor {
    guard x.shape.count == 4 || x.shape.count == 2 else {
        throw TensorError.invalidShape(operation: operation, shape: x.shape, expected: "[N, C, H, W] or [N, C]")
    }
    for parameter in [scale, shift] where parameter.shape != [x.shape[1]] {
        throw TensorError.shapeMismatch(operation: operation, expected: "scale and shift have one value per channel",
                                        lhs: x.shape, rhs: parameter.shape)
    }
    return try x.asActivation(operation)
}

/// The forward primitive for an input in `layout`: on `layout` itself, or on bf16 `nChw16c`
/// where oneDNN has only a plain C++ kernel for a bf16 channels-last `layout`.
///
/// oneDNN 2.6.3's JIT batch norm takes bf16 channels-last only for channel counts that are a
/// multiple of 16; others get `nspc_bnorm:any` (measured in MobileNetV2 at 96x96, batch 32, 24
/// channels at 24x24: 13-17 ms a pass, against about 1 ms for `bnorm_jit:avx512_core_bf16` on
/// 32 channels at 48x48). A reorder on each side costs a fraction of a millisecond there.
private func batchNormForward(_ layout: Layout, epsilon: Float, flags: UInt32, training: Bool, operation: String) throws -> Primitive {
    let key = PrimitiveKey("bnorm_forward", layouts: [layout], [Int64(epsilon.bitPattern), Int64(flags), training ? 1 : 0])
    return try PrimitiveCache.primitive(key) {
        func make(_ layout: Layout) throws -> Primitive {
            var desc = dnnl_batch_normalization_desc_t()
            var data = layout.desc
            try check(dnnl_batch_normalization_forward_desc_init(
                &desc, training ? dnnl_forward_training : dnnl_forward_inference, &data, epsilon, flags), operation)
            return try makePrimitive(operation, desc)
        }
        let own = try make(layout)
        guard own.isSlowFallback, layout.elementType == .bfloat16, layout.dims.count == 4, !layout.isBlocked else { return own }
        return try make(.tagged(layout.dims, dnnl_aBcd16b, .bfloat16))
    }
}

/// Gradients of batch normalization with respect to its input, scale and shift; `flags` and
/// `workspace` are the forward pass's.
private func batchNormBackward(_ dy: Tensor, source: Tensor, scale: Buffer, shift: Buffer, mean: Buffer, variance: Buffer,
                               epsilon: Float, flags: UInt32, workspace: Buffer?, forward: Primitive, needed: [Bool],
                               operation: String) throws -> [Tensor?] {
    let op = operation + " backward"
    // Always the full backward, the parameters' gradients computed and dropped when nobody
    // wants them: oneDNN 2.6.3 has no `backward_data` kernel with the scale and shift flags
    // set ("unimplemented" for every shape tried), which a frozen norm after a trainable layer
    // would need. The parameters' gradients are two per-channel reductions, cheap beside dx.
    let key = PrimitiveKey("bnorm_backward", layouts: [source.layout], [Int64(epsilon.bitPattern), Int64(flags)])
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_batch_normalization_desc_t()
        var data = source.layout.desc
        try check(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &data, &data, epsilon, flags), op)
        return try makePrimitive(op, desc, hint: forward)
    }
    let gradient = try dy.reordered(to: source.layout, operation: op)
    let channels = [source.shape[1]]
    let dx = Buffer(source.layout)
    let dScale = Buffer(.rowMajor(channels)), dShift = Buffer(.rowMajor(channels))
    var arguments = [
        (DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DIFF_DST, gradient.buffer), (DNNL_ARG_MEAN, mean),
        (DNNL_ARG_VARIANCE, variance), (DNNL_ARG_SCALE, scale), (DNNL_ARG_SHIFT, shift), (DNNL_ARG_DIFF_SRC, dx),
    ]
    arguments += [(DNNL_ARG_DIFF_SCALE, dScale), (DNNL_ARG_DIFF_SHIFT, dShift)]
    if let workspace { arguments.append((DNNL_ARG_WORKSPACE, workspace)) }
    try primitive.execute(op, arguments)
    return [
        needed[0] ? Tensor(shape: source.shape, buffer: dx) : nil,
        needed[1] ? Tensor(shape: channels, buffer: dScale) : nil,
        needed[2] ? Tensor(shape: channels, buffer: dShift) : nil,
    ]
}

/// The weight and bias of one convolution that computes a convolution followed by batch
/// normalization with fixed statistics: output channel `o`'s filter scaled by
/// `scale[o] / sqrt(variance[o] + epsilon)`, and the bias
/// `shift[o] + (bias[o] - mean[o]) * scale[o] / sqrt(variance[o] + epsilon)`.
///
/// `weight` is `[O, ...]` (any convolution weight); the statistics and `scale`, `shift` and
/// `bias` have `O` values. The results are untraced constants.
public func foldBatchNorm(weight: Tensor, bias: Tensor?, scale: Tensor, shift: Tensor, mean: Tensor, variance: Tensor,
                          epsilon: Float) throws -> (weight: Tensor, bias: Tensor) {
    let operation = "foldBatchNorm"
    let channels = weight.shape.first ?? 0
    for vector in [scale, shift, mean, variance] + (bias.map { [$0] } ?? []) where vector.shape != [channels] {
        throw TensorError.shapeMismatch(operation: operation, expected: "one value per output channel of the weight",
                                        lhs: weight.shape, rhs: vector.shape)
    }
    let gamma = try scale.array(), beta = try shift.array(), mu = try mean.array(), sigma2 = try variance.array()
    let originalBias = try bias?.array() ?? [Float](repeating: 0, count: channels)
    let factors = (0..<channels).map { gamma[$0] / (sigma2[$0] + epsilon).squareRoot() }
    var filters = try weight.array()
    let perChannel = filters.count / channels
    for channel in 0..<channels {
        for index in channel * perChannel..<(channel + 1) * perChannel { filters[index] *= factors[channel] }
    }
    let folded = (0..<channels).map { beta[$0] + (originalBias[$0] - mu[$0]) * factors[$0] }
    return (try Tensor(shape: weight.shape, values: filters), try Tensor(shape: [channels], values: folded))
}
