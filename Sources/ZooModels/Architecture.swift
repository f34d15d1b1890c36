import ZooTensor
import ZooNN

/// Which framework's graph a model reproduces. Keras applications and torchvision differ in
/// padding, strides, biases, batch-norm epsilon and preprocessing; a weight set only gives the
/// framework's numbers in its own flavour.
public enum Flavor: String, CaseIterable, Sendable, Codable {
    case keras
    case torchvision

    /// Batch-norm momentum in the framework's convention and default.
    var batchNormMomentum: BatchNormMomentum {
        self == .keras ? .keras(momentum: 0.99) : .pytorch(momentum: 0.1)
    }
}

/// A Keras layer class as zoo's layer lists use it: its class name, the key Keras 3 files give
/// its layers, its weights in Keras's order with the layout change each needs on import, and
/// its multiply-adds. A new Keras layer class is one such declaration; weight import, the Keras
/// 3 key names, summaries and multiply-add counts all read it from here.
public struct LayerKind: Sendable, Hashable, CustomStringConvertible {
    /// The Keras class name (`Conv2D`), as summaries print it.
    public let className: String
    /// The key Keras 3 gives layers of this class in `.weights.h5` files (the class name in
    /// snake case, before the per-class counter): `conv2d`, `re_lu`.
    public let kerasFileKey: String
    private let weights: @Sendable (Module) -> [KerasWeight]
    private let countMultiplyAdds: @Sendable (Module, [Int]) -> Int

    /// Declares a layer class.
    ///
    /// - Parameters:
    ///   - weights: the weights of a layer's module in Keras's stored order (nothing for a
    ///     weightless class).
    ///   - multiplyAdds: multiply-adds for one image, from the layer's module and its output
    ///     shape without the batch (`[C, H, W]` or `[C]`); 0 for a weightless class.
    public init(className: String, kerasFileKey: String,
                weights: @escaping @Sendable (Module) -> [KerasWeight] = { _ in [] },
                multiplyAdds: @escaping @Sendable (Module, [Int]) -> Int = { _, _ in 0 }) {
        self.className = className
        self.kerasFileKey = kerasFileKey
        self.weights = weights
        countMultiplyAdds = multiplyAdds
    }

    /// A weightless class whose file key is the class name in snake case.
    init(weightless className: String, _ kerasFileKey: String) {
        self.init(className: className, kerasFileKey: kerasFileKey)
    }

    /// The class name.
    public var rawValue: String { className }
    public var description: String { className }

    /// The Keras weights of a layer of this class held by `module`, in stored order.
    public func kerasWeights(of module: Module?) -> [KerasWeight] { module.map(weights) ?? [] }

    /// Multiply-adds for one image of a layer of this class (0 without a module).
    public func multiplyAdds(of module: Module?, outputShape: [Int]) -> Int {
        module.map { countMultiplyAdds($0, outputShape) } ?? 0
    }

    public static func == (lhs: LayerKind, rhs: LayerKind) -> Bool { lhs.className == rhs.className }
    public func hash(into hasher: inout Hasher) { hasher.combine(className) }
}

/// One weight of a Keras layer: its name within the layer and how its values move into zoo's
/// (PyTorch's) layout.
public struct KerasWeight: Sendable, Equatable {
    public var name: String
    public var transform: LayoutTransform

    public init(_ name: String, _ transform: LayoutTransform = .identity) {
        self.name = name
        self.transform = transform
    }
}

extension LayerKind {
    /// A convolution's output positions times its weight's size.
    private static let convolutionMultiplyAdds: @Sendable (Module, [Int]) -> Int = { module, shape in
        guard let conv = module as? Conv2D, shape.count == 3 else { return 0 }
        return shape[1] * shape[2] * conv.weight.value.elementCount
    }

    /// A convolution; also a 1x1 convolution on a pooled `[N, C, 1, 1]` map that zoo holds as a
    /// ``Dense`` layer (Keras MobileNet's classifier `conv_preds`), whose kernel then loads as a
    /// dense one.
    public static let conv2D = LayerKind(className: "Conv2D", kerasFileKey: "conv2d", weights: { module in
        switch module {
        case let conv as Conv2D: return [KerasWeight("kernel", .kerasConvolution)] + (conv.bias == nil ? [] : [KerasWeight("bias")])
        case let dense as Dense: return [KerasWeight("kernel", .kerasPointwiseAsDense)] + (dense.bias == nil ? [] : [KerasWeight("bias")])
        default: return []
        }
    }, multiplyAdds: { module, shape in
        (module as? Dense)?.weight.value.elementCount ?? convolutionMultiplyAdds(module, shape)
    })

    public static let depthwiseConv2D = LayerKind(className: "DepthwiseConv2D", kerasFileKey: "depthwise_conv2d", weights: { module in
        guard let conv = module as? Conv2D else { return [] }
        return [KerasWeight("depthwise_kernel", .kerasDepthwise)] + (conv.bias == nil ? [] : [KerasWeight("bias")])
    }, multiplyAdds: convolutionMultiplyAdds)

    /// A depthwise separable convolution held by a ``SeparableConv2D`` module: its depthwise and
    /// pointwise kernels (and the bias, on the pointwise output) are one Keras layer's weights.
    public static let separableConv2D = LayerKind(className: "SeparableConv2D", kerasFileKey: "separable_conv2d", weights: { module in
        guard let conv = module as? SeparableConv2D else { return [] }
        return [KerasWeight("depthwise_kernel", .kerasDepthwise), KerasWeight("pointwise_kernel", .kerasConvolution)]
            + (conv.pointwise.bias == nil ? [] : [KerasWeight("bias")])
    }, multiplyAdds: { module, shape in
        // The pointwise convolution keeps the depthwise one's output positions.
        guard let conv = module as? SeparableConv2D, shape.count == 3 else { return 0 }
        return shape[1] * shape[2] * (conv.depthwise.weight.value.elementCount + conv.pointwise.weight.value.elementCount)
    })

    public static let batchNormalization = LayerKind(className: "BatchNormalization", kerasFileKey: "batch_normalization", weights: { module in
        guard let norm = module as? BatchNorm else { return [] }
        return (norm.weight == nil ? [] : [KerasWeight("gamma")]) + ["beta", "moving_mean", "moving_variance"].map { KerasWeight($0) }
    })

    public static let dense = LayerKind(className: "Dense", kerasFileKey: "dense", weights: { module in
        guard let dense = module as? Dense else { return [] }
        return [KerasWeight("kernel", .kerasDense)] + (dense.bias == nil ? [] : [KerasWeight("bias")])
    }, multiplyAdds: { module, shape in
        guard let dense = module as? Dense else { return 0 }
        // A pointwise layer runs at every position of its `[C, H, W]` output.
        return dense.weight.value.elementCount * (dense.isPointwise && shape.count == 3 ? shape[1] * shape[2] : 1)
    })

    /// Keras's in-model `Normalization` (EfficientNet's input): `mean`, `variance`, and the
    /// sample `count` they were adapted on; none where the statistics are constants of the graph
    /// (EfficientNetV2 B0-B3).
    public static let normalization = LayerKind(className: "Normalization", kerasFileKey: "normalization", weights: { module in
        module.localParameters.isEmpty ? [] : [KerasWeight("mean"), KerasWeight("variance"), KerasWeight("count", .scalar)]
    })

    public static let inputLayer = LayerKind(weightless: "InputLayer", "input_layer")
    public static let rescaling = LayerKind(weightless: "Rescaling", "rescaling")
    public static let reshape = LayerKind(weightless: "Reshape", "reshape")
    public static let multiply = LayerKind(weightless: "Multiply", "multiply")
    public static let activation = LayerKind(weightless: "Activation", "activation")
    public static let reLU = LayerKind(weightless: "ReLU", "re_lu")
    public static let zeroPadding2D = LayerKind(weightless: "ZeroPadding2D", "zero_padding2d")
    public static let maxPooling2D = LayerKind(weightless: "MaxPooling2D", "max_pooling2d")
    public static let averagePooling2D = LayerKind(weightless: "AveragePooling2D", "average_pooling2d")
    public static let globalAveragePooling2D = LayerKind(weightless: "GlobalAveragePooling2D", "global_average_pooling2d")
    public static let globalMaxPooling2D = LayerKind(weightless: "GlobalMaxPooling2D", "global_max_pooling2d")
    public static let concatenate = LayerKind(weightless: "Concatenate", "concatenate")
    public static let add = LayerKind(weightless: "Add", "add")
    public static let flatten = LayerKind(weightless: "Flatten", "flatten")
    public static let dropout = LayerKind(weightless: "Dropout", "dropout")
    /// A Keras `Lambda` layer: what a Keras port writes for an operation Keras has no layer
    /// for (ShuffleNetV2's channel split and shuffle).
    public static let lambda = LayerKind(weightless: "Lambda", "lambda")
    /// Keras 3 InceptionResNetV2's residual sum `x + scale * r` (`CustomScaleLayer`, weightless:
    /// the scale is configuration).
    public static let customScaleLayer = LayerKind(weightless: "CustomScaleLayer", "custom_scale_layer")
}

/// One entry of a model's layer list: a layer as Keras lists it in `model.layers`, weightless
/// layers included, with the module holding its parameters (nil for weightless layers).
///
/// The keras flavour's list is Keras's own, in Keras's order; the torchvision flavour uses the
/// same list over its equivalent modules, so rules that count layers (`--unfreeze 20%`) pick
/// the same layers in both.
public struct NamedLayer: @unchecked Sendable {
    public let name: String
    public let kind: LayerKind
    public let module: Module?

    public init(_ name: String, _ kind: LayerKind, _ module: Module? = nil) {
        self.name = name
        self.kind = kind
        self.module = module
    }

    /// The Keras weight names of this layer, in the order Keras stores them.
    public var kerasWeightNames: [String] { kind.kerasWeights(of: module).map(\.name) }
}

/// What sits on top of a model's base.
public enum Top: Sendable, Equatable {
    /// The framework's own classifier for `classes` classes (Keras `include_top=True`).
    case classifier(classes: Int)
    /// No classifier: the base's last feature map, pooled globally when `pooling` is given
    /// (Keras `include_top=False, pooling=...`).
    case features(pooling: GlobalPooling?)

    /// The ImageNet classifier.
    public static let imagenet = Top.classifier(classes: 1000)
}

extension Top {
    /// Classes of a classifier top (0 for feature tops).
    public var classes: Int {
        if case let .classifier(classes) = self { return classes }
        return 0
    }
}

/// Global pooling of a feature map to one vector per image.
public enum GlobalPooling: String, Sendable, CaseIterable {
    case average = "avg"
    case max
}

/// An error building, loading or using a model. Each case carries the architecture, model,
/// file or layer concerned; ``description`` is the message users read.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// No registered architecture is called `name`; `known` lists the registered ones.
    case unknownArchitecture(String, known: [String])
    /// Registering `name` failed: the registered architecture `by` has that name.
    case nameTaken(String, by: String)
    /// The architecture is not built in that flavour.
    case unsupportedFlavor(architecture: String, flavor: Flavor, supported: [Flavor])
    /// An architecture's configuration that cannot be built.
    case invalidConfiguration(architecture: String, reason: String)
    /// The input is not an image batch `[N, 3, H, W]`.
    case notAnImageBatch(model: String, shape: [Int])
    /// The input is smaller than the architecture accepts.
    case inputTooSmall(model: String, height: Int, width: Int, minimum: Int)
    /// A head specification (`gap,dropout=0.5,dense`) that does not parse.
    case invalidHead(specification: String, reason: String)
    /// A renaming-rules file or pattern that cannot be used.
    case invalidRenameRules(source: String, reason: String)
    /// The weight file does not fit the model; `report` lists what did not fit.
    case weightsDoNotFit(file: String, model: String, flavor: Flavor, report: String)
    /// The file is not a weight file zoo can load into a model.
    case notWeights(file: String, reason: String)
    /// Two tensors of a file map to one parameter.
    case duplicateTarget(file: String, tensors: [String], target: String)
    /// The model has no layer of that name.
    case noSuchLayer(model: String, layer: String, similar: [String])
    /// A layer that should have produced an output did not.
    case noLayerOutput(model: String, layer: String)
    /// A call's argument out of range.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .unknownArchitecture(name, known):
            return "unknown model '\(name)'; known: \(known.joined(separator: ", "))"
        case let .nameTaken(name, taken):
            return "cannot register '\(name)': '\(taken)' is already registered"
        case let .unsupportedFlavor(architecture, flavor, supported):
            return "\(architecture) is built in the \(supported.map(\.rawValue).joined(separator: " and ")) flavours, not \(flavor.rawValue)"
        case let .invalidConfiguration(_, reason):
            return reason
        case let .notAnImageBatch(model, shape):
            return "\(model): expected images [N, 3, H, W], got \(shape)"
        case let .inputTooSmall(model, height, width, minimum):
            return "\(model): input \(height)x\(width) is below the architecture's minimum of \(minimum)x\(minimum)"
        case let .invalidHead(_, reason):
            return reason
        case let .invalidRenameRules(_, reason):
            return reason
        case let .weightsDoNotFit(file, model, flavor, report):
            return "\(file) does not fit \(model) (\(flavor.rawValue) flavour):\n\(report)"
        case let .notWeights(file, reason):
            return "\(file) \(reason)"
        case let .duplicateTarget(file, tensors, target):
            return "\(file): tensors \(tensors.map { "'\($0)'" }.joined(separator: " and ")) both map to \(target)"
        case let .noSuchLayer(model, layer, similar):
            return "\(model) has no layer '\(layer)'"
                + (similar.isEmpty ? "; the model's summary lists them (`zoo summary \(model)`)" : "; similar: \(similar.joined(separator: ", "))")
        case let .noLayerOutput(model, layer):
            return "\(model): layer '\(layer)' produced no output"
        case let .invalidArgument(message):
            return message
        }
    }
}
