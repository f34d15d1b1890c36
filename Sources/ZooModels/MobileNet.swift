import ZooTensor
import ZooNN

/// MobileNet (v1, Howard et al. 2017): a 3x3 stride-2 convolution, then 13 depthwise separable
/// blocks (a 3x3 depthwise convolution and a 1x1 pointwise one, each with batch norm and ReLU6),
/// as `keras.applications.MobileNet` builds it with depth multiplier 1.
///
/// The stem pads TensorFlow's `same` way from the actual input size; a strided block's depthwise
/// convolution follows a `ZeroPadding2D` of one row and column at the bottom and right
/// (`conv_pad_N`), whatever the size, and is itself unpadded. Batch norms use Keras's defaults
/// (epsilon 1e-3, momentum 0.99). Keras's top pools with `keepdims=True`, drops out at 1e-3 and
/// classifies with a 1x1 convolution with bias (`conv_preds`), then lists a `Reshape` and an
/// `Activation` (`predictions`); zoo's head runs `conv_preds` as a dense layer on the pooled
/// vector (its Keras kernel `[1, 1, in, out]` loads as one) and lists the same five layers.
///
/// The width multiplier (alpha) scales every layer (`int(channels * alpha)`, as Keras). The
/// registry has `mobilenet` (alpha 1.0, the standard model) and `mobilenet_a025`,
/// `mobilenet_a050`, `mobilenet_a075`; there is no `mobilenet_a100`, since the registry has no
/// aliases and one model should not be listed under two names.
///
/// Keras only (torchvision has no MobileNet v1), so parameters carry Keras's layer names
/// (`conv_dw_1.weight`, `conv_pw_13_bn.running_var`, `conv_preds.weight`).
public final class MobileNet: ImageModel {
    /// Output channels (at width 1.0) and stride of the 13 blocks.
    static let blockShapes: [(channels: Int, stride: Int)] = [
        (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
    ]

    let stem: ConvNorm
    let blocks: [Block]

    /// - Parameter alpha: the width multiplier; Keras publishes 0.25, 0.5, 0.75 and 1.0.
    public init(widthMultiplier alpha: Double = 1.0, top: Top = .imagenet) {
        func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: 1e-3, momentum: Flavor.keras.batchNormMomentum) }
        func width(_ channels: Int) -> Int { Int(Double(channels) * alpha) }
        stem = ConvNorm(Conv2D(3, width(32), kernel: 3, stride: 2, padding: .same, bias: false), norm(width(32)), activation: .relu6,
                        kerasNames: .init(conv: "conv1", norm: "conv1_bn", activation: "conv1_relu"), activationKind: .reLU)
        var channels = width(32)
        blocks = Self.blockShapes.enumerated().map { index, shape in
            defer { channels = width(shape.channels) }
            return Block(index: index + 1, inChannels: channels, outChannels: width(shape.channels), stride: shape.stride, norm: norm)
        }
        super.init(name: Self.registryName(alpha), flavor: .keras, featureChannels: channels, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayers(stem.layers)
        blocks.forEach { appendLayers($0.layers) }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "global_average_pooling2d"),
            .init(.dropout(1e-3), name: "dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "conv_preds", kind: .conv2D),
            .init(.identity, name: "reshape_2", kind: .reshape),
            .init(.identity, name: "predictions", kind: .activation),
        ])
    }

    /// `base` at width 1.0, `<base>_a025` (`_a050`, `_a130`, ...) otherwise, as the catalog names
    /// the widths (MobileNet and MobileNetV2).
    static func registryName(_ alpha: Double, base: String = "mobilenet") -> String {
        let hundredths = Int((alpha * 100).rounded())
        return alpha == 1 ? base : "\(base)_a" + (hundredths < 100 ? "0" : "") + "\(hundredths)"
    }

    /// Every layer's module under its Keras name, in Keras's order.
    public override var children: [(name: String, module: Module)] {
        stem.children + blocks.flatMap(\.children) + (head?.children ?? [])
    }

    /// The stem, then every block.
    public override var stages: [Stage] {
        [Stage("stem", modules: [stem.conv, stem.norm]) { [stem] x, context in try stem(context.tap("input_layer", x), context) }]
            + blocks.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
    }
}

extension MobileNet {
    /// A depthwise separable block: `conv_dw_N` (3x3 depthwise), `conv_pw_N` (1x1), each with
    /// batch norm and ReLU6; a strided block pads first (`conv_pad_N`).
    final class Block: Module, Layer {
        let name: String
        let depthwise: ConvNorm, pointwise: ConvNorm
        let stride: Int

        init(index: Int, inChannels: Int, outChannels: Int, stride: Int, norm: (Int) -> BatchNorm) {
            let name = "conv_dw_\(index)"
            self.name = name
            // Keras pads a strided block by one row and column at the bottom and right, then
            // convolves without padding; the convolution absorbs that padding.
            let padding: Padding = stride == 1 ? .same : .explicit(top: 0, bottom: 1, left: 0, right: 1)
            depthwise = ConvNorm(Conv2D(inChannels, inChannels, kernel: 3, stride: stride, padding: padding, groups: inChannels, bias: false),
                                 norm(inChannels), activation: .relu6,
                                 kerasNames: .init(conv: name, norm: "\(name)_bn", activation: "\(name)_relu"), convKind: .depthwiseConv2D,
                                 activationKind: .reLU)
            pointwise = ConvNorm(Conv2D(inChannels, outChannels, kernel: 1, bias: false), norm(outChannels), activation: .relu6,
                                 kerasNames: .init(conv: "conv_pw_\(index)", norm: "conv_pw_\(index)_bn", activation: "conv_pw_\(index)_relu"),
                                 activationKind: .reLU)
            self.stride = stride
            padName = "conv_pad_\(index)"
        }

        private let padName: String

        override var children: [(name: String, module: Module)] { depthwise.children + pointwise.children }

        var layers: [NamedLayer] {
            (stride == 2 ? [NamedLayer(padName, .zeroPadding2D)] : []) + depthwise.layers + pointwise.layers
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            if stride == 2 { try context.tapPadding(padName, x, top: 0, bottom: 1, left: 0, right: 1) }
            return try pointwise(try depthwise(x, context), context)
        }
    }
}

extension MobileNet: ModelFamily {
    public static let architectures: [Architecture] = [.mobilenet, .mobilenet_a025, .mobilenet_a050, .mobilenet_a075]

    static func architecture(_ alpha: Double) -> Architecture {
        Architecture(name: registryName(alpha), summary: "MobileNet\(alpha == 1 ? "" : " \(alpha)") (Howard et al. 2017)",
                     defaultInputSize: 224, flavors: [.keras], preprocessing: [.keras: .tf]) {
            MobileNet(widthMultiplier: alpha, top: $0.top)
        }
    }
}

extension Architecture {
    /// MobileNet (v1) at width 1.0 (Keras).
    public static let mobilenet = MobileNet.architecture(1.0)
    /// MobileNet (v1) at width 0.25 (Keras).
    public static let mobilenet_a025 = MobileNet.architecture(0.25)
    /// MobileNet (v1) at width 0.5 (Keras).
    public static let mobilenet_a050 = MobileNet.architecture(0.5)
    /// MobileNet (v1) at width 0.75 (Keras).
    public static let mobilenet_a075 = MobileNet.architecture(0.75)
}
