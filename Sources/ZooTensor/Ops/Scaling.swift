import CDNNL

/// `x` scaled per sample and channel, `y[n, c, h, w] = x[n, c, h, w] * scale[n, c, 0, 0]`: the
/// excitation of a squeeze-and-excitation block (EfficientNet, MobileNetV3, MNASNet).
///
/// `x` is `[N, C, H, W]` in any layout; `scale` is `[N, C, 1, 1]`, the shape the block's last 1x1
/// convolution and its gate produce (torchvision's and, channels-last, Keras's). Both get
/// gradients: `dx = dy * scale` and `dscale[n, c] = sum over h, w of dy * x`. The result is in
/// the blocked layout.
public func scaleChannels(_ x: Tensor, by scale: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "scaleChannels"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    guard scale.shape == [x.shape[0], x.shape[1], 1, 1] else {
        throw TensorError.shapeMismatch(operation: operation, expected: "the scale is [N, C, 1, 1] for an input [N, C, H, W]",
                                        lhs: x.shape, rhs: scale.shape)
    }
    let input = try x.asActivation(operation).detached()
    // Blocked like the input: oneDNN's binary primitive broadcasts a blocked [N, C, 1, 1] with
    // its JIT kernel, a row-major one only with `ref:any` (measured at N=32, C=96 and 40, 24x24:
    // `jit:uni` against `ref:any`).
    let factors = try scale.detached().reordered(to: .blocked(scale.shape, input.elementType), operation: operation)
    let y = try broadcastMultiply(input, factors, operation: operation)
    return try GradientTape.record(operation, inputs: [x, scale], output: y) { dy, needed in
        let backward = operation + " backward"
        let gradient = try dy.reordered(to: input.layout, operation: backward).detached()
        let dx = needed[0] ? try broadcastMultiply(gradient, factors, operation: backward) : nil
        guard needed[1] else { return [dx, nil] }
        // The sum over each feature map as its mean (pooling) times its size: oneDNN 2.6.3's
        // reduction primitive has only `ref:any` for blocked layouts, average pooling a JIT kernel.
        let (height, width) = (x.shape[2], x.shape[3])
        let products = try binary(.multiply, gradient, input, name: backward)
        let means = try avgPool2d(products, Pool2DOptions(kernel: [height, width], stride: [1, 1]))
        return [dx, try linear(means, scale: Float(height * width), name: backward)]
    }
}

/// `x` scaled per sample, `y[n, ...] = x[n, ...] * scale[n]`: stochastic depth's per-sample
/// mask (see ``dropPath(_:rate:generator:)``).
///
/// `x` has any shape `[N, ...]`, `scale` is `[N]`. `scale` is a constant here: the gradient is
/// `dx = dy * scale[n]`, and none flows to `scale`, even when it is traced. The result has
/// `x`'s layout (4-D tensors blocked).
public func scaleSamples(_ x: Tensor, by scale: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "scaleSamples"
    guard let count = x.shape.first, scale.shape == [count] else {
        throw TensorError.shapeMismatch(operation: operation, expected: "the scale has one value per sample, [N] for an input [N, ...]",
                                        lhs: x.shape, rhs: scale.shape)
    }
    let input = try x.asActivation(operation).detached()
    let factors = try scale.detached().rowMajor()
    let y = try multiplySamples(input, factors, operation: operation)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        let backward = operation + " backward"
        return [try multiplySamples(dy.reordered(to: input.layout, operation: backward).detached(), factors, operation: backward)]
    }
}

/// `x[n, ...] * factors[n]` (untraced) for `x` in the blocked or row-major layout, whose samples
/// each fill one contiguous stretch of memory.
///
/// The buffer is seen as `[N, elements per sample]` (padding included, which stays 0) and
/// multiplied by `[N, 1]`: oneDNN broadcasts that with its JIT kernel, where `[N, C, H, W]`
/// times `[N, 1, 1, 1]` runs `ref:any` on the blocked layout (measured at N=32, C=96, 24x24).
private func multiplySamples(_ x: Tensor, _ factors: Tensor, operation: String) throws -> Tensor {
    let count = x.shape[0]
    let physical = x.layout.byteCount / x.elementType.byteSize
    let blocking = x.layout.desc.format_desc.blocking
    guard x.layout.desc.format_kind == dnnl_blocked, x.layout.desc.offset0 == 0, physical % count == 0,
          count == 1 || Int(blocking.strides.0) == physical / count else {
        throw TensorError.invalidArgument(operation: operation, message: "samples of a \(x.layout) tensor are not contiguous")
    }
    let rows = [count, physical / count]
    let view = Tensor(shape: rows, buffer: Buffer(storage: x.buffer.storage, layout: .rowMajor(rows, x.elementType)))
    let product = try broadcastMultiply(view, factors.viewed(as: .rowMajor([count, 1], factors.elementType), shape: [count, 1]), operation: operation)
    return Tensor(shape: x.shape, buffer: Buffer(storage: product.buffer.storage, layout: x.layout))
}
