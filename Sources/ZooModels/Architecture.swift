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

/// The Keras class of a layer in a model's layer list.
public enum LayerKind: String, Sendable, CaseIterable {
    case inputLayer = "InputLayer"
    case conv2D = "Conv2D"
    case depthwiseConv2D = "DepthwiseConv2D"
    case batchNormalization = "BatchNormalization"
    case dense = "Dense"
    case activation = "Activation"
    case reLU = "ReLU"
    case zeroPadding2D = "ZeroPadding2D"
    case maxPooling2D = "MaxPooling2D"
    case averagePooling2D = "AveragePooling2D"
    case globalAveragePooling2D = "GlobalAveragePooling2D"
    case globalMaxPooling2D = "GlobalMaxPooling2D"
    case concatenate = "Concatenate"
    case add = "Add"
    case flatten = "Flatten"
    case dropout = "Dropout"

    /// The key Keras 3 gives layers of this class in `.weights.h5` files (the class name in
    /// snake case, before the per-class counter).
    public var kerasFileKey: String {
        switch self {
        case .inputLayer: return "input_layer"
        case .conv2D: return "conv2d"
        case .depthwiseConv2D: return "depthwise_conv2d"
        case .batchNormalization: return "batch_normalization"
        case .dense: return "dense"
        case .activation: return "activation"
        case .reLU: return "re_lu"
        case .zeroPadding2D: return "zero_padding2d"
        case .maxPooling2D: return "max_pooling2d"
        case .averagePooling2D: return "average_pooling2d"
        case .globalAveragePooling2D: return "global_average_pooling2d"
        case .globalMaxPooling2D: return "global_max_pooling2d"
        case .concatenate: return "concatenate"
        case .add: return "add"
        case .flatten: return "flatten"
        case .dropout: return "dropout"
        }
    }
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
    public var kerasWeightNames: [String] {
        switch module {
        case let conv as Conv2D:
            return [kind == .depthwiseConv2D ? "depthwise_kernel" : "kernel"] + (conv.bias == nil ? [] : ["bias"])
        case let norm as BatchNorm:
            return (norm.weight == nil ? [] : ["gamma"]) + ["beta", "moving_mean", "moving_variance"]
        case let dense as Dense:
            return ["kernel"] + (dense.bias == nil ? [] : ["bias"])
        default:
            return []
        }
    }
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
    var classes: Int {
        if case let .classifier(classes) = self { return classes }
        return 0
    }
}

/// Global pooling of a feature map to one vector per image.
public enum GlobalPooling: String, Sendable, CaseIterable {
    case average = "avg"
    case max
}

/// An error building or using a model.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
