import ZooTensor

/// A 2-D convolution with weight `[out, in / groups, kh, kw]` (PyTorch's layout) and an
/// optional bias. Parameters: `weight`, `bias`.
public final class Conv2D: Module, Layer {
    public let weight: Parameter
    public let bias: Parameter?
    public var options: Conv2DOptions

    public init(inChannels: Int, outChannels: Int, kernel: [Int], options: Conv2DOptions = Conv2DOptions(), bias: Bool = true,
                initializer: Initializer = .heNormal) {
        let shape = [outChannels, inChannels / max(options.groups, 1)] + kernel
        let receptive = kernel.reduce(1, *)
        weight = Parameter(initializer.tensor(shape, fanIn: shape[1] * receptive, fanOut: outChannels * receptive))
        self.bias = bias ? Parameter(Tensor.zeros([outChannels])) : nil
        self.options = options
    }

    // Leaf layers list their parameters directly: reflection is slow for the per-call freeze checks.
    public override var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    public override var children: [(name: String, module: Module)] { [] }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Padding = .valid,
                            groups: Int = 1, bias: Bool = true, initializer: Initializer = .heNormal) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: [kernel, kernel],
                  options: Conv2DOptions(stride: stride, padding: padding, groups: groups), bias: bias, initializer: initializer)
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try callAsFunction(x, context, activation: nil)
    }

    /// The convolution followed by `activation` (fused into it when nothing is traced).
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext, activation: Activation?) throws -> Tensor {
        try callAsFunction(x, context, residual: nil, activation: activation)
    }

    /// The convolution, then `residual` added, then `activation`, fused into one operation when
    /// nothing is traced; in int8 when the layer has a ``quantization`` and the pass is an
    /// inference pass. `padding` replaces the layer's own.
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext, residual: Tensor?, activation: Activation?,
                               padding: Padding? = nil) throws -> Tensor {
        var options = self.options
        if let padding { options.padding = padding }
        if let quantization = runsQuantized(context) {
            return try conv2d(x, weight: quantizedWeight(weight.value), bias: bias?.value, options: options, residual: residual,
                              activation: activation, quantization: quantization)
        }
        let y = try conv2d(x, weight: context.value(weight), bias: bias.map { context.value($0) }, options: options, residual: residual,
                           activation: activation)
        try record(context, input: x, output: y, residual: residual, weight: weight.value, bias: bias?.value, options: options,
                   activation: activation)
        return y
    }

    /// Hands a floating-point pass to the context's calibration: its ranges, or, when the
    /// calibration measures error, how far this layer's int8 form computed from the same input
    /// lands from `output`.
    private func record(_ context: ForwardContext, input x: Tensor, output y: Tensor, residual: Tensor?, weight: Tensor, bias: Tensor?,
                        options: Conv2DOptions, activation: Activation?) throws {
        guard let calibration = context.calibration else { return }
        guard calibration.measuresError else { return try calibration.observe(self, input: x, output: y, residual: residual) }
        guard let quantization else { return }
        let quantized = try conv2d(x, weight: quantizedWeight(weight), bias: bias, options: options, residual: residual,
                                   activation: activation, quantization: quantization)
        try calibration.observeError(self, reference: y, quantized: quantized)
    }

    /// How this convolution runs in int8 in inference passes (from ``ActivationCalibration``);
    /// nil runs it in floating point. Training passes and calibration always run floating point.
    public var quantization: ConvolutionQuantization?

    /// The weight quantized per channel, and the value it was made from.
    private var quantized: (source: Tensor, weight: QuantizedWeight)?

    /// The quantization to run with in `context`, nil for floating point.
    private func runsQuantized(_ context: ForwardContext) -> ConvolutionQuantization? {
        guard let quantization, !context.isTraining, context.tape == nil, context.calibration == nil else { return nil }
        return quantization
    }

    /// `weight` quantized, remade only when its value changed.
    private func quantizedWeight(_ weight: Tensor) throws -> QuantizedWeight {
        if let quantized, quantized.source.isSameValue(as: weight) { return quantized.weight }
        let made = try QuantizedWeight(weight)
        quantized = (weight, made)
        return made
    }

    /// The weight and bias with a batch norm folded in, and the values they were made from.
    private struct Folded {
        let sources: [Tensor]
        let epsilon: Float
        let weight: Tensor
        let bias: Tensor
    }
    private var folded: Folded?

    /// This convolution, then `norm`, then `residual` added (a residual connection), then
    /// `activation`: one oneDNN convolution (the batch norm folded into weight and bias, the rest
    /// fused as post-ops) whenever `norm` runs with fixed statistics and no gradient reaches the
    /// convolution's or the norm's parameters: inference, or both frozen during training.
    /// Otherwise the operations run one after another. `padding` replaces the layer's own.
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext, norm: BatchNorm, residual: Tensor? = nil,
                               activation: Activation?, padding: Padding? = nil) throws -> Tensor {
        var options = self.options
        if let padding { options.padding = padding }
        guard norm.usesFixedStatistics(context), context.tape == nil || (isFrozen && norm.isFrozen) else {
            var y = try conv2d(x, weight: context.value(weight), bias: bias.map { context.value($0) }, options: options)
            if residual == nil, activation == .relu { return try norm(y, context, relu: true) }
            y = try norm(y, context)
            if let residual { y = try add(residual, y) }
            return try activation.map { try ZooTensor.activation($0, y) } ?? y
        }
        let (weight, bias) = try foldedWeights(norm)
        if let quantization = runsQuantized(context) {
            return try conv2d(x, weight: quantizedWeight(weight), bias: bias, options: options, residual: residual, activation: activation,
                              quantization: quantization)
        }
        let y = try conv2d(x, weight: weight, bias: bias, options: options, residual: residual, activation: activation)
        try record(context, input: x, output: y, residual: residual, weight: weight, bias: bias, options: options, activation: activation)
        return y
    }

    /// The folded weight and bias, remade only when a value they come from changed.
    private func foldedWeights(_ norm: BatchNorm) throws -> (weight: Tensor, bias: Tensor) {
        let sources = [weight.value, norm.scaleValue, norm.bias.value, norm.runningMean.value, norm.runningVariance.value]
            + (bias.map { [$0.value] } ?? [])
        if let folded, folded.epsilon == norm.epsilon, folded.sources.count == sources.count,
           zip(folded.sources, sources).allSatisfy({ $0.isSameValue(as: $1) }) {
            return (folded.weight, folded.bias)
        }
        let (weight, bias) = try foldBatchNorm(weight: weight.value, bias: bias?.value, scale: sources[1], shift: norm.bias.value,
                                               mean: norm.runningMean.value, variance: norm.runningVariance.value,
                                               epsilon: norm.epsilon)
        folded = Folded(sources: sources, epsilon: norm.epsilon, weight: weight, bias: bias)
        return (weight, bias)
    }
}

/// A depthwise separable convolution (Keras `SeparableConv2D`): a depthwise convolution (one
/// group per input channel, `depthMultiplier` filters each) with the layer's stride and padding,
/// then a 1x1 pointwise convolution, which holds the optional bias. Children `depthwise` and
/// `pointwise`, so the module's parameters are, in order, the Keras layer's `depthwise_kernel`,
/// `pointwise_kernel` and `bias`.
///
/// The two are separate ``Conv2D`` modules so that a batch norm after the layer can fold into
/// the pointwise one (see ``Conv2D/callAsFunction(_:_:norm:residual:activation:padding:)``).
public final class SeparableConv2D: Module, Layer {
    public let depthwise: Conv2D
    public let pointwise: Conv2D

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Padding = .valid, depthMultiplier: Int = 1,
                bias: Bool = true, initializer: Initializer = .heNormal) {
        depthwise = Conv2D(inChannels, inChannels * depthMultiplier, kernel: kernel, stride: stride, padding: padding, groups: inChannels,
                           bias: false, initializer: initializer)
        pointwise = Conv2D(inChannels * depthMultiplier, outChannels, kernel: 1, bias: bias, initializer: initializer)
    }

    public override var localParameters: [(name: String, parameter: Parameter)] { [] }
    public override var children: [(name: String, module: Module)] { [("depthwise", depthwise), ("pointwise", pointwise)] }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try pointwise(try depthwise(x, context), context)
    }
}

/// Batch normalization over the channels of `[N, C, H, W]` or `[N, C]`.
///
/// Parameters follow PyTorch's names: `weight` (scale, gamma), `bias` (shift, beta),
/// `running_mean`, `running_var`. A layer built with `scale: false` has no `weight` and scales
/// by one (Keras InceptionV3's `scale=False`). In training mode it normalizes with batch
/// statistics and updates the running ones, unless the layer is frozen: a frozen batch norm runs
/// in inference mode with its running statistics, as in Keras.
public final class BatchNorm: Module, Layer {
    public let weight: Parameter?
    public let bias: Parameter
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public var epsilon: Float
    public var momentum: BatchNormMomentum
    private let unitScale: Tensor?

    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: BatchNormMomentum = .pytorch(momentum: 0.1), scale: Bool = true) {
        weight = scale ? Parameter(Tensor.filled([channels], 1)) : nil
        unitScale = scale ? nil : Tensor.filled([channels], 1)
        bias = Parameter(Tensor.zeros([channels]))
        runningMean = Parameter(Tensor.zeros([channels]), role: .runningStatistic)
        runningVariance = Parameter(Tensor.filled([channels], 1), role: .runningStatistic)
        self.epsilon = epsilon
        self.momentum = momentum
    }

    public override var children: [(name: String, module: Module)] { [] }

    /// Number of channels normalized.
    public var channels: Int { bias.shape[0] }

    public override var localParameters: [(name: String, parameter: Parameter)] {
        (weight.map { [("weight", $0)] } ?? []) + [("bias", bias), ("running_mean", runningMean), ("running_var", runningVariance)]
    }

    /// The scale's current value (ones when the layer has none).
    var scaleValue: Tensor { weight?.value ?? unitScale! }

    /// The scale as a pass in `context` sees it (traced when trainable).
    public func scale(_ context: ForwardContext) -> Tensor { weight.map { context.value($0) } ?? unitScale! }

    /// Blends a training batch's statistics (`count` values per channel, variance biased) into
    /// the running ones, by the layer's momentum convention.
    public func updateRunningStatistics(batchMean: Tensor, batchVariance: Tensor, count: Int) throws {
        (runningMean.value, runningVariance.value) = try momentum.updated(
            runningMean: runningMean.value, runningVariance: runningVariance.value, batchMean: batchMean, batchVariance: batchVariance,
            count: count)
    }

    /// The quantization of this layer's output in inference passes whose input arrives
    /// quantized (from ``ActivationCalibration``): the norm then reads and writes int8. Nil
    /// dequantizes such an input and normalizes in floating point.
    public var quantization: ActivationQuantization?

    /// Whether a pass in `context` normalizes with the running statistics: in inference, and
    /// for a frozen layer in training.
    public func usesFixedStatistics(_ context: ForwardContext) -> Bool { !context.isTraining || isFrozen }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try callAsFunction(x, context, relu: false)
    }

    /// Batch norm followed by a ReLU, in one pass when it runs with fixed statistics and nothing
    /// is traced.
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext, relu: Bool) throws -> Tensor {
        let gamma = scale(context), shift = context.value(bias)
        if let quantization, x.quantization != nil, !context.isTraining, context.tape == nil, context.calibration == nil {
            return try batchNormInference(x, scale: gamma, shift: shift, mean: runningMean.value, variance: runningVariance.value,
                                          epsilon: epsilon, relu: relu, output: quantization)
        }
        guard !usesFixedStatistics(context) else {
            let y = try batchNormInference(x, scale: gamma, shift: shift, mean: runningMean.value, variance: runningVariance.value,
                                           epsilon: epsilon, relu: relu)
            try context.calibration?.observe(self, output: y)
            return y
        }
        let (y, mean, variance) = try batchNormTraining(x, scale: gamma, shift: shift, epsilon: epsilon, relu: relu)
        try updateRunningStatistics(batchMean: mean, batchVariance: variance, count: x.elementCount / x.shape[1])
        return y
    }
}

/// A fully connected layer with weight `[out, in]` and bias `[out]`; or, built `pointwise`, the
/// same layer applied at every position of a feature map (a 1x1 convolution, torchvision
/// SqueezeNet's `final_conv`), whose weight then has the convolution's layout `[out, in, 1, 1]`
/// so that the framework's files load and export unchanged.
public final class Dense: Module, Layer {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, pointwise: Bool = false,
                initializer: Initializer = .glorotUniform) {
        let shape = pointwise ? [outFeatures, inFeatures, 1, 1] : [outFeatures, inFeatures]
        weight = Parameter(initializer.tensor(shape, fanIn: inFeatures, fanOut: outFeatures))
        self.bias = bias ? Parameter(Tensor.zeros([outFeatures])) : nil
    }

    /// Whether the layer runs at every position of a feature map (weight `[out, in, 1, 1]`).
    public var isPointwise: Bool { weight.shape.count == 4 }

    public override var localParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    public override var children: [(name: String, module: Module)] { [] }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        guard isPointwise else { return try dense(x, weight: context.value(weight), bias: bias.map { context.value($0) }) }
        return try conv2d(x, weight: context.value(weight), bias: bias.map { context.value($0) }, options: Conv2DOptions())
    }
}

/// An element-wise activation as a layer.
public final class ActivationLayer: Module, Layer {
    public let kind: Activation

    public init(_ kind: Activation) { self.kind = kind }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try activation(kind, x)
    }
}

/// Max or average pooling as a layer.
public final class Pool2D: Module, Layer {
    public enum Kind: Sendable { case max, average }
    public let kind: Kind
    public let options: Pool2DOptions

    public init(_ kind: Kind, _ options: Pool2DOptions) {
        self.kind = kind
        self.options = options
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        kind == .max ? try maxPool2d(x, options) : try avgPool2d(x, options)
    }
}

/// Global average or max pooling: `[N, C, H, W]` to `[N, C]`.
public final class GlobalPool2D: Module, Layer {
    public let kind: Pool2D.Kind

    public init(_ kind: Pool2D.Kind = .average) { self.kind = kind }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        kind == .max ? try globalMaxPool2d(x) : try globalAvgPool2d(x)
    }
}

/// Inverted dropout in training mode; the identity in inference mode.
public final class Dropout: Module, Layer {
    public let rate: Float

    public init(_ rate: Float) { self.rate = rate }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        guard context.isTraining, rate > 0 else { return x }
        return try dropout(x, rate: rate, generator: &context.generator)
    }
}

/// `[N, C, H, W]` to `[N, C*H*W]` in channel-major order.
public final class Flatten: Module, Layer {
    public override init() {}

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor { try flatten(x) }
}
