/// `conv2d(relu(batchNorm(input)))` where `input` is the channel concatenation of `pieces`: the
/// first half of a DenseNet layer, recorded so that backward keeps only the pieces and rebuilds
/// `input`, the batch norm and the ReLU when it needs them. The gradient goes to `input`.
///
/// Recorded as separate operations, every layer of a dense block would keep its own copy of all
/// earlier feature maps three times over (concatenated, normalized, activated): memory
/// quadratic in the block's depth. The pieces are the block's input and each layer's new
/// feature maps, which the network keeps anyway, so a block holds each feature map once
/// (the memory-efficient DenseNet of Pleiss et al., 2017). The convolution is not repeated:
/// backward derives its gradients from the output gradient and the rebuilt activation.
///
/// - Parameters:
///   - input: the concatenation of `pieces` along the channels, as the forward pass has it.
///   - statistics: the running mean and variance when the batch norm uses fixed statistics;
///     nil normalizes with the batch's own and returns them (variance biased) for the running
///     averages.
/// - Returns: the convolution's output, and the batch statistics when they were computed.
public func concatNormReLUConv(_ input: Tensor, pieces: [Tensor], scale: Tensor, shift: Tensor,
                               statistics: (mean: Tensor, variance: Tensor)?, epsilon: Float,
                               weight: Tensor, options: Conv2DOptions) throws
    -> (output: Tensor, batchMean: Tensor?, batchVariance: Tensor?) {
    // No int8 kernel here: quantized inputs are dequantized.
    let input = try input.dequantized()
    let operation = "concatNormReLUConv"
    guard !pieces.isEmpty, pieces.allSatisfy({ $0.shape.count == 4 }), input.shape.count == 4,
          pieces.map({ [$0.shape[0], $0.shape[2], $0.shape[3]] }).allSatisfy({ $0 == [input.shape[0], input.shape[2], input.shape[3]] }),
          pieces.reduce(0, { $0 + $1.shape[1] }) == input.shape[1] else {
        throw TensorError.shapeMismatch(operation: operation, expected: "the input is the channel concatenation of the pieces",
                                        lhs: input.shape, rhs: pieces.map { $0.shape[1] })
    }
    let geometry = try ConvolutionGeometry(input: input.shape, weight: weight.shape, bias: nil, options: options)
    let (fixedScale, fixedShift, fixedWeight) = (scale.detached(), shift.detached(), weight.detached())

    func normalizedAndActivated(_ x: Tensor, scale: Tensor, shift: Tensor) throws -> (Tensor, Tensor?, Tensor?) {
        if let statistics {
            return (try batchNormInference(x, scale: scale, shift: shift, mean: statistics.mean, variance: statistics.variance,
                                           epsilon: epsilon, relu: true), nil, nil)
        }
        return try batchNormTraining(x, scale: scale, shift: shift, epsilon: epsilon, relu: true)
    }

    let (activated, mean, variance) = try normalizedAndActivated(input.detached(), scale: fixedScale, shift: fixedShift)
    let output = try conv2d(activated, weight: fixedWeight, options: options)
    // The tape entry holds the pieces, never `input` itself.
    let savedPieces = pieces.map { $0.detached() }
    let y = try GradientTape.record(operation, inputs: [input, scale, shift, weight], output: output) { dy, needed in
        var gradients: [Tensor?] = [nil, nil, nil, nil]
        let tape = GradientTape()
        let rebuiltInput = try concat(savedPieces)
        let tracedInput = needed[0] ? tape.watch(rebuiltInput) : rebuiltInput
        let tracedScale = needed[1] ? tape.watch(fixedScale) : fixedScale
        let tracedShift = needed[2] ? tape.watch(fixedShift) : fixedShift
        let (activated, _, _) = try normalizedAndActivated(tracedInput, scale: tracedScale, shift: tracedShift)
        let forward = try geometry.forwardPrimitive(source: activated.layout, training: true)
        if needed[3] {
            gradients[3] = try conv2dBackwardWeights(dy, input: activated.detached(), geometry: geometry, forward: forward).weight
        }
        guard needed[0] || needed[1] || needed[2] else { return gradients }
        try tape.backward(activated, seed: try conv2dBackwardData(dy, weight: fixedWeight, geometry: geometry, forward: forward))
        gradients[0] = needed[0] ? tape.gradient(for: tracedInput) : nil
        gradients[1] = needed[1] ? tape.gradient(for: tracedScale) : nil
        gradients[2] = needed[2] ? tape.gradient(for: tracedShift) : nil
        return gradients
    }
    return (y, mean, variance)
}
