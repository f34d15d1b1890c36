import ZooTensor
import ZooNN

/// The layers on top of a model's base: pooling, dropout and dense layers in a given order.
///
/// Frameworks' own tops are heads (ResNet: average pooling then `fc`; torchvision VGG:
/// adaptive pooling to 7x7, flatten, then `classifier.0`, ReLU, dropout, `classifier.3`, ...),
/// and so are the new heads of fine-tuning. Every step has a Keras layer name (its entry in the
/// layer list) and every dense step the key its parameters carry at the model's root
/// (`fc.weight`, `classifier.1.weight`), so framework files load into framework heads.
public final class ClassificationHead: Module, Layer {
    /// One step of a head.
    public enum Step: Sendable, Equatable {
        /// Global pooling to `[N, C]`.
        case globalPool(GlobalPooling)
        /// Adaptive average pooling to a fixed grid, then flatten (torchvision VGG).
        case adaptiveAveragePool(height: Int, width: Int)
        /// Flatten `[N, C, H, W]` to `[N, C*H*W]` (channel-major).
        case flatten
        case dropout(Float)
        /// A dense layer; `activation` follows it.
        case dense(units: Int, activation: Activation?)
        /// A dense layer applied at every position of the feature map, a 1x1 convolution
        /// (torchvision SqueezeNet's `final_conv`, weight `[out, in, 1, 1]`); `activation`
        /// follows it.
        case pointwiseDense(units: Int, activation: Activation?)
        /// A layer Keras lists that leaves zoo's tensor as it is (Keras MobileNet's `Reshape` of its
        /// kept-dims pooled map to `[N, C]`, which zoo's pooling gives already, and its `predictions`
        /// activation, where zoo's heads give logits); its ``NamedStep/kind`` names the Keras class.
        case identity
        /// An activation that Keras lists as a layer of its own after a dense step (Keras
        /// MobileNetV3's hard-swish after `conv_2`, torchvision's `classifier.1` Hardswish), so
        /// that the dense step's tap is its linear output; its ``NamedStep/kind`` names the Keras
        /// class (`Activation`, the default, or `ReLU`).
        case activation(Activation)
    }

    /// A step with its names.
    public struct NamedStep: Sendable, Equatable {
        public var step: Step
        /// The layer's Keras name (`avg_pool`, `predictions`).
        public var name: String
        /// For dense steps, the module key at the model root (`fc`, `classifier.1`).
        public var key: String?
        /// The Keras class the layer list gives the step, when not the step's own: Keras MobileNet's
        /// classifier is a 1x1 `Conv2D` on the pooled map that zoo runs as a dense step; an
        /// ``Step/identity`` step is a `Reshape` or an `Activation` (the default).
        public var kind: LayerKind?

        public init(_ step: Step, name: String, key: String? = nil, kind: LayerKind? = nil) {
            self.step = step
            self.name = name
            self.key = key
            self.kind = kind
        }
    }

    public let steps: [NamedStep]
    /// The dense layers, in order, one per dense step.
    public let denseLayers: [Dense]

    /// Builds the head for inputs with `inputFeatures` channels (after pooling; for a flatten
    /// step, the flattened width).
    public init(_ steps: [NamedStep], inputFeatures: Int, initializer: Initializer = .glorotUniform) {
        self.steps = steps
        var width = inputFeatures
        var layers: [Dense] = []
        for named in steps {
            switch named.step {
            case let .dense(units, _):
                layers.append(Dense(width, units, initializer: initializer))
                width = units
            case let .pointwiseDense(units, _):
                layers.append(Dense(width, units, pointwise: true, initializer: initializer))
                width = units
            case let .adaptiveAveragePool(height, width: gridWidth):
                width *= height * gridWidth
            default:
                break
            }
        }
        denseLayers = layers
    }

    /// Dense layers under their root keys.
    public override var children: [(name: String, module: Module)] {
        zip(steps.filter(\.step.holdsDense), denseLayers)
            .map { ($0.0.key ?? $0.0.name, $0.1) }
    }

    /// The head's layer-list entries.
    public var namedLayers: [NamedLayer] {
        var denseIndex = 0
        return steps.map { named in
            switch named.step {
            case let .globalPool(kind):
                return NamedLayer(named.name, named.kind ?? (kind == .average ? .globalAveragePooling2D : .globalMaxPooling2D))
            case .adaptiveAveragePool: return NamedLayer(named.name, named.kind ?? .averagePooling2D)
            case .flatten: return NamedLayer(named.name, named.kind ?? .flatten)
            case .dropout: return NamedLayer(named.name, named.kind ?? .dropout)
            case .identity, .activation: return NamedLayer(named.name, named.kind ?? .activation)
            case .dense, .pointwiseDense:
                defer { denseIndex += 1 }
                return NamedLayer(named.name, named.kind ?? .dense, denseLayers[denseIndex])
            }
        }
    }

    /// Number of outputs.
    public var outputFeatures: Int? { denseLayers.last?.weight.shape[0] }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        var y = x
        var denseIndex = 0
        for named in steps {
            switch named.step {
            case let .globalPool(kind):
                y = kind == .average ? try globalAvgPool2d(y) : try globalMaxPool2d(y)
            case let .adaptiveAveragePool(height, width):
                y = try flatten(adaptiveAvgPool2d(y, outputSize: [height, width]))
            case .flatten:
                y = try flatten(y)
            case let .dropout(rate):
                if context.isTraining, rate > 0 { y = try dropout(y, rate: rate, generator: &context.generator) }
            case let .dense(_, activation), let .pointwiseDense(_, activation):
                y = try denseLayers[denseIndex](y, context)
                denseIndex += 1
                if let activation { y = try ZooTensor.activation(activation, y) }
            case .identity:
                break
            case let .activation(activation):
                y = try ZooTensor.activation(activation, y)
            }
            context.tap(named.name, y)
        }
        return y
    }
}

extension ClassificationHead.Step {
    /// Whether the step holds a dense layer (one of the head's ``ClassificationHead/denseLayers``).
    var holdsDense: Bool {
        switch self {
        case .dense, .pointwiseDense: return true
        default: return false
        }
    }
}
