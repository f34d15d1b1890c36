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

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Padding = .valid,
                            groups: Int = 1, bias: Bool = true, initializer: Initializer = .heNormal) {
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: [kernel, kernel],
                  options: Conv2DOptions(stride: stride, padding: padding, groups: groups), bias: bias, initializer: initializer)
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try conv2d(x, weight: context.value(weight), bias: bias.map { context.value($0) }, options: options)
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

    /// Number of channels normalized.
    public var channels: Int { bias.shape[0] }

    public override var localParameters: [(name: String, parameter: Parameter)] {
        (weight.map { [("weight", $0)] } ?? []) + [("bias", bias), ("running_mean", runningMean), ("running_var", runningVariance)]
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        let scale = weight.map { context.value($0) } ?? unitScale!
        let shift = context.value(bias)
        guard context.isTraining, !isFrozen else {
            return try batchNormInference(x, scale: scale, shift: shift, mean: runningMean.value, variance: runningVariance.value,
                                          epsilon: epsilon)
        }
        let (y, mean, variance) = try batchNormTraining(x, scale: scale, shift: shift, epsilon: epsilon)
        let count = x.elementCount / x.shape[1]
        (runningMean.value, runningVariance.value) = try momentum.updated(
            runningMean: runningMean.value, runningVariance: runningVariance.value, batchMean: mean, batchVariance: variance, count: count)
        return y
    }
}

/// A fully connected layer with weight `[out, in]` and bias `[out]`.
public final class Dense: Module, Layer {
    public let weight: Parameter
    public let bias: Parameter?

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, initializer: Initializer = .glorotUniform) {
        weight = Parameter(initializer.tensor([outFeatures, inFeatures], fanIn: inFeatures, fanOut: outFeatures))
        self.bias = bias ? Parameter(Tensor.zeros([outFeatures])) : nil
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try dense(x, weight: context.value(weight), bias: bias.map { context.value($0) })
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
