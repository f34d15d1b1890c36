/// Inverted dropout for training: each element is zeroed with probability `rate` and the
/// survivors are scaled by `1 / (1 - rate)`, so inference needs no rescaling. The mask comes
/// from `generator`, so a seeded run repeats exactly.
public func dropout(_ x: Tensor, rate: Float, generator: inout SeededGenerator) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "dropout"
    guard rate >= 0, rate < 1 else {
        throw TensorError.invalidArgument(operation: operation, message: "rate must be in [0, 1), got \(rate)")
    }
    if rate == 0 { return x }
    let source = try x.asActivation(operation)
    let keep = 1 - rate
    let scale = 1 / keep
    // Drawn in f32 in the source's format, then converted to its type (the same draws either way).
    let drawn = Tensor(shape: source.shape, buffer: Buffer(source.layout.with(.float32)))
    let maskValues = drawn.physicalFloats()
    for index in maskValues.indices {
        maskValues[index] = generator.nextUnitFloat() < keep ? scale : 0
    }
    let mask = try drawn.converted(to: source.elementType)
    let y = try binary(.multiply, source.detached(), mask, name: operation)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        [try binary(.multiply, dy.reordered(to: mask.layout, operation: operation).detached(), mask, name: operation + " backward")]
    }
}

/// Stochastic depth for training (drop path, per sample): each sample of the batch is zeroed
/// with probability `rate` and the survivors are scaled by `1 / (1 - rate)`, as torchvision's
/// `StochasticDepth(mode="row")` and Keras's `Dropout(rate, noise_shape=(None, 1, 1, 1))` in
/// EfficientNet. The residual branch it is applied to is then dropped for those samples. One
/// draw per sample from `generator`, so a seeded run repeats exactly; the gradient is the
/// upstream one scaled by the same mask (``scaleSamples(_:by:)``).
public func dropPath(_ x: Tensor, rate: Float, generator: inout SeededGenerator) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "dropPath"
    guard rate >= 0, rate < 1 else {
        throw TensorError.invalidArgument(operation: operation, message: "rate must be in [0, 1), got \(rate)")
    }
    guard let count = x.shape.first else {
        throw TensorError.invalidShape(operation: operation, shape: x.shape, expected: "a batch [N, ...]")
    }
    if rate == 0 { return x }
    let keep = 1 - rate
    let mask = (0..<count).map { _ in generator.nextUnitFloat() < keep ? 1 / keep : 0 }
    return try scaleSamples(x, by: Tensor(shape: [count], values: mask))
}
