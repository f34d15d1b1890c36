import ZooTensor
import ZooNN

/// MobileNetV2 (Sandler et al. 2018): inverted residual blocks of 1x1 expansion, 3x3 depthwise
/// convolution and linear 1x1 projection, with ReLU6.
///
/// - keras flavour: `keras.applications.MobileNetV2`: stride-2 layers pad TensorFlow's way
///   (the odd extra pixel at the bottom and right, computed from the actual input size, as Keras
///   does when the input shape is known), batch-norm epsilon 1e-3.
/// - torchvision flavour: `torchvision.models.mobilenet_v2`: symmetric padding, epsilon 1e-5,
///   dropout 0.2 before the classifier.
///
/// The width multiplier scales every layer; channel counts round to multiples of 8 as both
/// frameworks do (their two rounding rules agree for every published multiplier).
public final class MobileNetV2: ImageModel {
    /// Expansion t, output channels c, repeats n, first stride s of each stage.
    static let stages: [(expansion: Int, channels: Int, repeats: Int, stride: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]

    let stem: ConvolutionUnit
    let blocks: [InvertedResidual]
    let last: ConvolutionUnit

    /// - Parameter widthMultiplier: alpha; 1.0 is the standard model.
    public init(flavor: Flavor, top: Top = .imagenet, widthMultiplier alpha: Double = 1.0) {
        let epsilon: Float = flavor == .keras ? 1e-3 : 1e-5
        let momentum: BatchNormMomentum = flavor == .keras ? .keras(momentum: 0.999) : .pytorch(momentum: 0.1)
        let firstChannels = Self.divisible(32 * alpha)
        stem = ConvolutionUnit(3, firstChannels, kernel: 3, stride: 2, groups: 1, epsilon: epsilon, momentum: momentum,
                               names: .init(conv: "Conv1", norm: "bn_Conv1", activation: "Conv1_relu"))
        var channels = firstChannels
        var blocks: [InvertedResidual] = []
        for stage in Self.stages {
            // Keras truncates before rounding: int(c * alpha).
            let output = Self.divisible(Double(Int(Double(stage.channels) * alpha)))
            for repeatIndex in 0..<stage.repeats {
                blocks.append(InvertedResidual(index: blocks.count, inChannels: channels, outChannels: output, expansion: stage.expansion,
                                               stride: repeatIndex == 0 ? stage.stride : 1, flavor: flavor, epsilon: epsilon,
                                               momentum: momentum))
                channels = output
            }
        }
        self.blocks = blocks
        let lastChannels = alpha > 1 ? Self.divisible(1280 * alpha) : 1280
        last = ConvolutionUnit(channels, lastChannels, kernel: 1, stride: 1, groups: 1, epsilon: epsilon, momentum: momentum,
                               names: .init(conv: "Conv_1", norm: "Conv_1_bn", activation: "out_relu"))
        super.init(name: MobileNet.registryName(alpha, base: "mobilenetv2"), flavor: flavor, featureChannels: lastChannels,
                   minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayers(stem.unit.layers)
        blocks.forEach { appendLayers($0.layers) }
        appendLayers(last.unit.layers)
        let dropout: [ClassificationHead.NamedStep] = flavor == .torchvision ? [.init(.dropout(0.2), name: "dropout")] : []
        head = standardHead(top, classifier: [.init(.globalPool(.average), name: "global_average_pooling2d")] + dropout
            + [.init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier.1")])
    }

    /// Rounds to the nearest multiple of 8, not below 8 and not more than 10% down.
    static func divisible(_ value: Double) -> Int {
        var result = max(8, Int(value + 4) / 8 * 8)
        if Double(result) < 0.9 * value { result += 8 }
        return result
    }

    /// torchvision's names: `features.0` (stem), `features.1` ... `features.17` (blocks),
    /// `features.18` (last 1x1), `classifier.1`.
    public override var children: [(name: String, module: Module)] {
        [("features.0", stem)] + blocks.enumerated().map { ("features.\($0.offset + 1)", $0.element as Module) }
            + [("features.\(blocks.count + 1)", last)] + (head?.children ?? [])
    }

    /// The stem, every inverted residual block, and the last 1x1 convolution.
    public override var stages: [Stage] {
        let flavor = self.flavor
        return [Stage("stem", modules: [stem]) { [stem] x, context in
            let y = context.tap("input_layer", x)
            return try stem.unit(y, context, padding: stridedPadding(y, flavor: flavor))
        }] + blocks.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("last", modules: [last]) { [last] x, context in try last.unit(x, context) }]
    }
}

/// The padding of a 3x3 stride-2 layer: Keras's `same` rule from the actual size (bottom and
/// right get the extra pixel on even sizes), torchvision's symmetric 1.
private func stridedPadding(_ x: Tensor, flavor: Flavor) -> Padding {
    flavor == .keras ? sameStridedPadding(x, kernel: 3) : .symmetric(1)
}

extension MobileNetV2 {
    /// A convolution, its batch norm and ReLU6 (torchvision's `Conv2dNormActivation`: children
    /// `0`, `1`).
    final class ConvolutionUnit: Module {
        let unit: ConvNorm

        init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int, groups: Int, epsilon: Float, momentum: BatchNormMomentum,
             names: ConvNorm.Names) {
            unit = ConvNorm(Conv2D(inChannels, outChannels, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups,
                                   bias: false),
                            BatchNorm(outChannels, epsilon: epsilon, momentum: momentum), activation: .relu6, names: names, keys: ("0", "1"),
                            convKind: groups > 1 ? .depthwiseConv2D : .conv2D, activationKind: .reLU)
        }

        override var children: [(name: String, module: Module)] { unit.children }
    }

    /// Expand (1x1, ReLU6; absent when the expansion is 1), depthwise 3x3 (ReLU6), project
    /// (1x1, linear), with a residual connection when the shape is unchanged.
    final class InvertedResidual: Module, Layer {
        /// The Keras name prefix: `expanded_conv` for the first block, `block_<index>` after.
        let name: String
        let expand: ConvolutionUnit?
        let depthwise: ConvolutionUnit
        /// torchvision's last two entries of `conv`: the projection and its norm.
        let project: ConvNorm
        let residual: Bool
        let stride: Int
        let flavor: Flavor

        init(index: Int, inChannels: Int, outChannels: Int, expansion: Int, stride: Int, flavor: Flavor, epsilon: Float,
             momentum: BatchNormMomentum) {
            let name = index == 0 ? "expanded_conv" : "block_\(index)"
            let hidden = inChannels * expansion
            self.name = name
            expand = expansion == 1 ? nil
                : ConvolutionUnit(inChannels, hidden, kernel: 1, stride: 1, groups: 1, epsilon: epsilon, momentum: momentum,
                                  names: .init(conv: "\(name)_expand", norm: "\(name)_expand_BN", activation: "\(name)_expand_relu"))
            depthwise = ConvolutionUnit(hidden, hidden, kernel: 3, stride: stride, groups: hidden, epsilon: epsilon, momentum: momentum,
                                        names: .init(conv: "\(name)_depthwise", norm: "\(name)_depthwise_BN",
                                                     activation: "\(name)_depthwise_relu"))
            // torchvision's `conv` sequence: `conv.0` (expand), `conv.1` (depthwise), `conv.2`,
            // `conv.3` (projection and its norm); without expansion `conv.0` is the depthwise unit.
            let projection = expansion == 1 ? 1 : 2
            project = ConvNorm(Conv2D(hidden, outChannels, kernel: 1, bias: false), BatchNorm(outChannels, epsilon: epsilon, momentum: momentum),
                               activation: nil, names: .init(conv: "\(name)_project", norm: "\(name)_project_BN", activation: nil),
                               keys: ("conv.\(projection)", "conv.\(projection + 1)"))
            residual = stride == 1 && inChannels == outChannels
            self.stride = stride
            self.flavor = flavor
        }

        private var padName: String { "\(name)_pad" }
        private var addName: String { "\(name)_add" }

        override var children: [(name: String, module: Module)] {
            let units = (expand.map { [$0] } ?? []) + [depthwise]
            return units.enumerated().map { ("conv.\($0.offset)", $0.element as Module) } + project.children
        }

        var layers: [NamedLayer] {
            (expand?.unit.layers ?? []) + (stride == 2 ? [NamedLayer(padName, .zeroPadding2D)] : []) + depthwise.unit.layers
                + project.layers + (residual ? [NamedLayer(addName, .add)] : [])
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = try expand.map { try $0.unit(x, context) } ?? x
            var padding: Padding?
            if stride == 2 {
                padding = stridedPadding(y, flavor: flavor)
                if case let .explicit(top, bottom, left, right) = padding {
                    try context.tapPadding(padName, y, top: top, bottom: bottom, left: left, right: right)
                }
            }
            y = try depthwise.unit(y, context, padding: padding)
            guard residual else { return try project(y, context) }
            return try project(y, context, residual: x, addName: addName)
        }
    }
}

extension MobileNetV2: ModelFamily {
    /// Width 1.0 in both flavours, then the other widths Keras publishes weights for (torchvision
    /// publishes 1.0 only).
    public static let architectures: [Architecture] = [.mobilenetv2] + [0.35, 0.5, 0.75, 1.3, 1.4].map { alpha in
        Architecture(name: MobileNet.registryName(alpha, base: "mobilenetv2"), summary: "MobileNetV2 \(alpha) (Sandler et al. 2018)",
                     defaultInputSize: 224, flavors: [.keras], preprocessing: [.keras: .tf]) {
            MobileNetV2(flavor: .keras, top: $0.top, widthMultiplier: alpha)
        }
    }
}

extension Architecture {
    /// MobileNetV2 at width 1.0.
    public static let mobilenetv2 = Architecture(
        name: "mobilenetv2", summary: "MobileNetV2 (Sandler et al. 2018)", defaultInputSize: 224,
        preprocessing: [.keras: .tf, .torchvision: .torch]
    ) { MobileNetV2(flavor: $0.flavor, top: $0.top) }
}
