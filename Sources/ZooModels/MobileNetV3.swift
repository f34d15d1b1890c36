import ZooTensor
import ZooNN

/// MobileNetV3 (Howard et al. 2019), Small and Large: a 3x3 stride-2 stem, inverted residual
/// blocks (1x1 expansion, 3x3 or 5x5 depthwise convolution, optional squeeze-and-excitation with
/// a hard-sigmoid gate, linear 1x1 projection, a residual sum when the shape is unchanged), a last
/// 1x1 convolution to six times the channels, then global pooling, a 1x1 convolution with bias
/// and an activation, dropout 0.2 and the classifier. The early blocks use ReLU, the later ones
/// hard-swish; batch norms use epsilon 1e-3 in both frameworks.
///
/// - keras flavour: `keras.applications.MobileNetV3Small` / `MobileNetV3Large` with their default
///   `include_preprocessing=True`: the model takes raw 0-255 pixels and rescales them itself
///   (`Rescaling(scale=1/127.5, offset=-1)`), so the preprocessing is `none`. The stem's
///   convolution pads TensorFlow's `same` way, strided depthwise convolutions follow a
///   `ZeroPadding2D` from Keras's `correct_pad`, both from the actual input size; batch-norm
///   momentum 0.999. The top pools with `keepdims=True` and applies two 1x1 `Conv2D` layers
///   (`conv_2` with bias, `logits`), which zoo runs as dense steps on the pooled vector, then
///   lists `Flatten` and the `predictions` activation. Keras also builds the minimalistic
///   variants (ReLU everywhere, 3x3 kernels, no squeeze-and-excitation) and other widths; its
///   stem keeps 16 channels at every width.
/// - torchvision flavour: `torchvision.models.mobilenet_v3_small` / `mobilenet_v3_large`:
///   symmetric padding, batch-norm momentum 0.01, ImageNet mean/std preprocessing outside the
///   model, the classifier `classifier.0` (Linear), Hardswish, Dropout, `classifier.3`. Built at
///   width 1.0 and not minimalistic only, the one graph torchvision publishes weights for.
///
/// Both flavours list Keras's layers (so `--unfreeze` counts alike); in torchvision's the
/// rescaling is a no-op. Keras's activations are layers with automatic names (`re_lu_3` for a
/// ReLU, `activation_2` for a hard-swish), numbered in creation order as a fresh Keras session
/// numbers them; the squeeze-and-excitation gate is a `ReLU(6)` layer on `x + 3` followed by a
/// multiplication by 1/6 that Keras does not list, so zoo taps the whole hard sigmoid under the
/// `ReLU` layer's name.
public final class MobileNetV3: ImageModel {
    /// One variant: size, width multiplier (alpha) and whether it is minimalistic.
    public struct Configuration: Sendable, Hashable {
        public enum Size: String, Sendable, CaseIterable {
            case small, large
        }

        public var size: Size
        /// Keras's `alpha`: 1.0 is the standard model; Keras publishes 0.75 as well.
        public var widthMultiplier: Double
        /// Keras's `minimalistic`: ReLU instead of hard-swish, 3x3 kernels, no squeeze-and-excitation.
        public var minimalistic: Bool

        public init(_ size: Size, widthMultiplier: Double = 1.0, minimalistic: Bool = false) {
            self.size = size
            self.widthMultiplier = widthMultiplier
            self.minimalistic = minimalistic
        }

        /// The registry name: `mobilenetv3small`, `mobilenetv3large_minimalistic`,
        /// `mobilenetv3small_a075`.
        public var name: String {
            MobileNet.registryName(widthMultiplier, base: "mobilenetv3\(size.rawValue)") + (minimalistic ? "_minimalistic" : "")
        }

        /// The blocks at width 1.0 as Keras's `stack_fn` lists them.
        var blocks: [BlockShape] {
            switch size {
            case .small: return BlockShape.small
            case .large: return BlockShape.large
            }
        }

        /// The channels of the penultimate layer (`conv_2`, torchvision's `classifier.0`), before
        /// widening.
        var lastPointChannels: Int { size == .small ? 1024 : 1280 }
    }

    /// One block of Keras's `stack_fn`: the expansion ratio of its input channels, output channels
    /// at width 1.0, kernel (nil: the variant's, 5 or 3 when minimalistic), stride, whether it has
    /// squeeze-and-excitation (unless minimalistic), and whether it uses the variant's activation
    /// (hard-swish unless minimalistic) rather than ReLU.
    struct BlockShape {
        var expansion: Double, channels: Int, kernel: Int?, stride: Int, excitation: Bool, variantActivation: Bool

        init(_ expansion: Double, _ channels: Int, _ kernel: Int?, _ stride: Int, excitation: Bool, _ variantActivation: Bool) {
            (self.expansion, self.channels, self.kernel, self.stride, self.excitation, self.variantActivation) =
                (expansion, channels, kernel, stride, excitation, variantActivation)
        }

        // The ratios are Keras's (`72.0 / 16`); times the input channels they give torchvision's
        // expanded channels at width 1.0.
        static let small: [BlockShape] = [
            .init(1, 16, 3, 2, excitation: true, false), .init(72.0 / 16, 24, 3, 2, excitation: false, false),
            .init(88.0 / 24, 24, 3, 1, excitation: false, false), .init(4, 40, nil, 2, excitation: true, true),
            .init(6, 40, nil, 1, excitation: true, true), .init(6, 40, nil, 1, excitation: true, true),
            .init(3, 48, nil, 1, excitation: true, true), .init(3, 48, nil, 1, excitation: true, true),
            .init(6, 96, nil, 2, excitation: true, true), .init(6, 96, nil, 1, excitation: true, true),
            .init(6, 96, nil, 1, excitation: true, true),
        ]
        static let large: [BlockShape] = [
            .init(1, 16, 3, 1, excitation: false, false), .init(4, 24, 3, 2, excitation: false, false),
            .init(3, 24, 3, 1, excitation: false, false), .init(3, 40, nil, 2, excitation: true, false),
            .init(3, 40, nil, 1, excitation: true, false), .init(3, 40, nil, 1, excitation: true, false),
            .init(6, 80, 3, 2, excitation: false, true), .init(2.5, 80, 3, 1, excitation: false, true),
            .init(2.3, 80, 3, 1, excitation: false, true), .init(2.3, 80, 3, 1, excitation: false, true),
            .init(6, 112, 3, 1, excitation: true, true), .init(6, 112, 3, 1, excitation: true, true),
            .init(6, 160, nil, 2, excitation: true, true), .init(6, 160, nil, 1, excitation: true, true),
            .init(6, 160, nil, 1, excitation: true, true),
        ]
    }

    public let configuration: Configuration
    let stem: ConvNorm
    let blocks: [Block]
    let last: ConvNorm

    public init(_ configuration: Configuration, flavor: Flavor, top: Top = .imagenet) throws {
        let alpha = configuration.widthMultiplier
        guard flavor == .keras || (alpha == 1 && !configuration.minimalistic) else {
            throw ModelError.invalidConfiguration(architecture: configuration.name,
                                                  reason: "\(configuration.name): torchvision builds MobileNetV3 at width 1.0, not minimalistic, only")
        }
        self.configuration = configuration
        let keras = flavor == .keras
        let momentum: BatchNormMomentum = keras ? .keras(momentum: 0.999) : .pytorch(momentum: 0.01)
        var autoNames = KerasGraph()
        // The variant's activation: a Keras `Activation("hard_swish")` or, minimalistic, a `ReLU`.
        let variantActivation: (Activation, LayerKind) = configuration.minimalistic ? (.relu, .reLU) : (.hardSwish, .activation)
        func unit(_ input: Int, _ output: Int, kernel: Int = 1, stride: Int = 1, groups: Int = 1, activation: (Activation, LayerKind)?,
                  conv: String, norm: String, keys: (String, String)) -> ConvNorm {
            ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups, bias: false),
                     BatchNorm(output, epsilon: 1e-3, momentum: momentum), activation: activation?.0,
                     names: .init(conv: conv, norm: norm, activation: activation.map { autoNames.autoName($0.1) }), keys: keys,
                     convKind: groups > 1 ? .depthwiseConv2D : .conv2D, activationKind: activation?.1 ?? .activation)
        }
        stem = unit(3, 16, kernel: 3, stride: 2, activation: variantActivation, conv: "conv", norm: "conv_bn",
                    keys: ("features.0.0", "features.0.1"))
        var channels = 16
        var blocks: [Block] = []
        for (index, shape) in configuration.blocks.enumerated() {
            let prefix = index == 0 ? "expanded_conv_" : "expanded_conv_\(index)_"
            let output = MobileNetV2.divisible(Double(shape.channels) * alpha)
            let expanded = MobileNetV2.divisible(Double(channels) * shape.expansion)
            let kernel = shape.kernel ?? (configuration.minimalistic ? 3 : 5)
            let activation = shape.variantActivation ? variantActivation : (.relu, .reLU)
            // torchvision's `block` sequence: the expansion (every block but the first, whose
            // expanded channels equal its input's), the depthwise unit, the SE, the projection.
            var position = 0
            func keys() -> (String, String) {
                defer { position += 1 }
                return ("block.\(position).0", "block.\(position).1")
            }
            let expand = index == 0 ? nil
                : unit(channels, expanded, activation: activation, conv: "\(prefix)expand", norm: "\(prefix)expand_bn", keys: keys())
            let depthwise = unit(expanded, expanded, kernel: kernel, stride: shape.stride, groups: expanded, activation: activation,
                                 conv: "\(prefix)depthwise", norm: "\(prefix)depthwise_bn", keys: keys())
            var excitation: (SqueezeExcitation, String)?
            if shape.excitation && !configuration.minimalistic {
                // Keras rounds a quarter of the channels with `_depth`; torchvision rounds
                // `expanded // 4` with `_make_divisible`, the same rule.
                let squeezed = MobileNetV2.divisible(keras ? Double(expanded) * 0.25 : Double(expanded / 4))
                let block = SqueezeExcitation(
                    channels: expanded, squeezed: squeezed, activation: .relu, gate: .hardSigmoid,
                    names: .init(pool: "\(prefix)squeeze_excite_avg_pool", reshape: nil, reduce: "\(prefix)squeeze_excite_conv",
                                 reduceActivation: "\(prefix)squeeze_excite_relu", expand: "\(prefix)squeeze_excite_conv_1",
                                 gate: autoNames.autoName(.reLU), multiply: "\(prefix)squeeze_excite_mul"),
                    activationKind: .reLU)
                excitation = (block, "block.\(position)")
                position += 1
            }
            let project = unit(expanded, output, activation: nil, conv: "\(prefix)project", norm: "\(prefix)project_bn", keys: keys())
            blocks.append(Block(prefix: prefix, expand: expand, depthwise: depthwise, excitation: excitation,
                                project: project, residual: shape.stride == 1 && channels == output, stride: shape.stride, flavor: flavor))
            channels = output
        }
        self.blocks = blocks
        let lastChannels = MobileNetV2.divisible(Double(channels * 6))
        last = unit(channels, lastChannels, activation: variantActivation, conv: "conv_1", norm: "conv_1_bn",
                    keys: ("features.\(blocks.count + 1).0", "features.\(blocks.count + 1).1"))
        super.init(name: configuration.name, flavor: flavor, featureChannels: lastChannels, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("rescaling", .rescaling)
        appendLayers(stem.layers)
        blocks.forEach { appendLayers($0.layers) }
        appendLayers(last.layers)
        let pointChannels = alpha > 1 ? MobileNetV2.divisible(Double(configuration.lastPointChannels) * alpha) : configuration.lastPointChannels
        let topActivation = autoNames.autoName(variantActivation.1)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "global_average_pooling2d"),
            .init(.dense(units: pointChannels, activation: nil), name: "conv_2", key: "classifier.0", kind: .conv2D),
            .init(.activation(variantActivation.0), name: topActivation, kind: variantActivation.1),
            .init(.dropout(0.2), name: "dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "logits", key: "classifier.3", kind: .conv2D),
            .init(.identity, name: "flatten", kind: .flatten),
            .init(.identity, name: "predictions", kind: .activation),
        ])
    }

    /// Keras 2 (`tf_keras`, and the published `.h5` files) names the layers `Conv`,
    /// `Conv/BatchNorm`, `expanded_conv_3/squeeze_excite/Conv_1`, `Logits`, where Keras 3 has
    /// `conv`, `conv_bn`, `expanded_conv_3_squeeze_excite_conv_1`, `logits`; the layers are the same.
    public override var legacyKerasLayerAliases: [(pattern: String, replacement: String)] {
        [(#"_BatchNorm$"#, "_bn"), (#"^Conv(?=_|$)"#, "conv"), (#"_Conv(_1)?$"#, "_conv$1"), (#"^Logits$"#, "logits")]
    }

    /// torchvision's names: `features.0` (stem), `features.1` ... (blocks), then the last 1x1
    /// (`features.12` Small, `features.16` Large), `classifier.0`, `classifier.3`.
    public override var children: [(name: String, module: Module)] {
        stem.children + blocks.enumerated().map { ("features.\($0.offset + 1)", $0.element as Module) } + last.children
            + (head?.children ?? [])
    }

    public override var stages: [Stage] {
        let keras = flavor == .keras
        return [Stage("stem", modules: [stem.conv, stem.norm]) { [stem] x, context in
            var y = context.tap("input_layer", x)
            // Keras's in-model preprocessing; torchvision's happens outside the model.
            if keras { y = try scale(y, by: 1 / 127.5, offset: -1) }
            y = context.tap("rescaling", y)
            return try stem(y, context, padding: keras ? sameStridedPadding(y, kernel: 3) : .symmetric(1))
        }] + blocks.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("last", modules: [last.conv, last.norm]) { [last] x, context in try last(x, context) }]
    }
}

extension MobileNetV3 {
    /// Expansion (1x1; absent in the first block), depthwise convolution, optional
    /// squeeze-and-excitation, linear 1x1 projection, and the residual sum when the shape is
    /// unchanged (Keras's `_inverted_res_block`, torchvision's `InvertedResidual`: `block.0` ...).
    final class Block: Module, Layer {
        /// The Keras name prefix (`expanded_conv_3_`).
        let prefix: String
        let expand: ConvNorm?
        let depthwise: ConvNorm
        /// The squeeze-and-excitation and its torchvision key.
        let excitation: (unit: SqueezeExcitation, key: String)?
        let project: ConvNorm
        let residual: Bool
        let stride: Int
        let flavor: Flavor

        init(prefix: String, expand: ConvNorm?, depthwise: ConvNorm, excitation: (SqueezeExcitation, String)?, project: ConvNorm,
             residual: Bool, stride: Int, flavor: Flavor) {
            self.prefix = prefix
            self.expand = expand
            self.depthwise = depthwise
            self.excitation = excitation.map { (unit: $0.0, key: $0.1) }
            self.project = project
            self.residual = residual
            self.stride = stride
            self.flavor = flavor
        }

        /// The stage name: the prefix without its trailing underscore.
        var name: String { String(prefix.dropLast()) }
        private var padName: String { "\(prefix)depthwise_pad" }
        private var addName: String { "\(prefix)add" }

        override var children: [(name: String, module: Module)] {
            (expand?.children ?? []) + depthwise.children + (excitation.map { [($0.key, $0.unit as Module)] } ?? []) + project.children
        }

        var layers: [NamedLayer] {
            (expand?.layers ?? []) + (stride == 2 ? [NamedLayer(padName, .zeroPadding2D)] : []) + depthwise.layers
                + (excitation?.unit.layers ?? []) + project.layers + (residual ? [NamedLayer(addName, .add)] : [])
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = try expand.map { try $0(x, context) } ?? x
            var padding: Padding?
            if stride == 2 {
                let kernel = depthwise.conv.weight.shape[2]
                padding = flavor == .keras ? sameStridedPadding(y, kernel: kernel) : .symmetric(kernel / 2)
                if case let .explicit(top, bottom, left, right) = padding {
                    try context.tapPadding(padName, y, top: top, bottom: bottom, left: left, right: right)
                }
            }
            y = try depthwise(y, context, padding: padding)
            if let excitation { y = try excitation.unit(y, context) }
            guard residual else { return try project(y, context) }
            return try project(y, context, residual: x, addName: addName)
        }
    }
}

extension MobileNetV3: ModelFamily {
    /// Small and Large in both flavours, then the variants only Keras publishes: minimalistic,
    /// and width 0.75.
    public static let architectures: [Architecture] = [.mobilenetv3small, .mobilenetv3large] + [
        Configuration(.small, minimalistic: true), Configuration(.large, minimalistic: true),
        Configuration(.small, widthMultiplier: 0.75), Configuration(.large, widthMultiplier: 0.75),
    ].map { configuration in
        MobileNetV3.architecture(configuration, flavors: [.keras])
    }

    static func architecture(_ configuration: Configuration, flavors: [Flavor]) -> Architecture {
        let size = configuration.size == .small ? "Small" : "Large"
        let variant = (configuration.minimalistic ? " minimalistic" : "")
            + (configuration.widthMultiplier == 1 ? "" : " \(configuration.widthMultiplier)")
        return Architecture(name: configuration.name, summary: "MobileNetV3-\(size)\(variant) (Howard et al. 2019)", defaultInputSize: 224,
                            flavors: flavors, preprocessing: [.keras: .none, .torchvision: .torch]) {
            try MobileNetV3(configuration, flavor: $0.flavor, top: $0.top)
        }
    }
}

extension Architecture {
    /// MobileNetV3-Small at width 1.0 (Keras `MobileNetV3Small`, torchvision `mobilenet_v3_small`).
    public static let mobilenetv3small = MobileNetV3.architecture(.init(.small), flavors: [.keras, .torchvision])
    /// MobileNetV3-Large at width 1.0 (Keras `MobileNetV3Large`, torchvision `mobilenet_v3_large`).
    public static let mobilenetv3large = MobileNetV3.architecture(.init(.large), flavors: [.keras, .torchvision])
}
