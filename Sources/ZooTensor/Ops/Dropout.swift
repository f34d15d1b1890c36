/// Inverted dropout for training: each element is zeroed with probability `rate` and the
/// survivors are scaled by `1 / (1 - rate)`, so inference needs no rescaling. The mask comes
/// from `generator`, so a seeded run repeats exactly.
public func dropout(_ x: Tensor, rate: Float, generator: inout SeededGenerator) throws -> Tensor {
    let operation = "dropout"
    guard rate >= 0, rate < 1 else {
        throw TensorError.invalidArgument(operation: operation, message: "rate must be in [0, 1), got \(rate)")
    }
    if rate == 0 { return x }
    let source = try x.asActivation(operation)
    let keep = 1 - rate
    let scale = 1 / keep
    let mask = Tensor(shape: source.shape, buffer: Buffer(source.layout))
    let maskValues = mask.physicalFloats()
    for index in maskValues.indices {
        maskValues[index] = generator.nextUnitFloat() < keep ? scale : 0
    }
    let y = try binary(.multiply, source.detached(), mask, name: operation)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        [try binary(.multiply, dy.reordered(to: mask.layout, operation: operation).detached(), mask, name: operation + " backward")]
    }
}
