import ZooTensor
import ZooNN

/// The network of Keller Jordan's airbench (2024, "94% on CIFAR-10 in 3.29 seconds on a single
/// GPU"), from the hlb-CIFAR10 line of fast-training CIFAR networks: a 2x2 convolution without
/// padding (32x32 becomes 31x31), then three groups of convolution, 2x2 max pool, batch norm,
/// GELU, convolution, batch norm, GELU, with 64, 256 and 256 channels at 15x15, 7x7 and 3x3;
/// a global max pool and a linear classifier. 1.97 million parameters and 118 million
/// multiply-adds per 32x32 image (a CIFAR ResNet-18 has 556 million, ResNet-20 41 million):
/// airbench trains it to 94% in 10 to 35 epochs. It is the architecture of airbench's
/// `main_baseline.py` (standard initialization, the first convolution followed by a batch norm
/// rather than whitened), with two differences that make it one of zoo's models:
///
/// - The classifier is zoo's: a global max pool (airbench's `MaxPool2d(3)` on the 3x3 map, which
///   is the same there and works at any input size) and a dense layer with a bias. airbench's
///   fixed 1/9 scale on the logits becomes the base's last layer (`output_scale`, a Keras
///   `Rescaling(1/9)`), before the pool: a positive scale commutes with a max, so the logits are
///   airbench's plus the bias, and any head put on the base learns as slowly as airbench's
///   classifier, 81 times slower in logit terms than the body's scale-invariant convolutions at
///   the same rate (measured: without it, 3 epochs on 10,000 CIFAR-10 images reached 27%).
/// - Batch norms have no scale (airbench keeps theirs fixed at 1, only the shift trains), epsilon
///   1e-12 and PyTorch momentum 0.1 (airbench's 0.9 written the other way), as airbench's.
///
/// Keys are named for what they are (`stem.conv`, `block1.conv1`, `block1.norm1`, ..., the
/// classifier `linear`); the layer list is `stem_conv`, `stem_bn`, `stem_gelu`, then per block
/// `block1_conv1`, `block1_pool`, `block1_bn1`, `block1_gelu1`, `block1_conv2`, `block1_bn2`,
/// `block1_gelu2`, and last `output_scale`.
public final class CIFARAirbench: ImageModel {
    /// Output channels of the three groups (airbench94's widths).
    static let widths = [64, 256, 256]
    /// The 2x2 stem's output channels: `2 * 3 * 2^2`, the number airbench's whitening of 2x2
    /// patches needs (here a plain convolution).
    static let stemWidth = 24

    let stem: ConvNorm
    let blocks: [Block]

    public init(top: Top = .classifier(classes: 10)) {
        stem = ConvNorm(Conv2D(3, Self.stemWidth, kernel: 2, bias: false, initializer: .pytorchDefault), Self.norm(Self.stemWidth),
                        activation: .gelu, names: .init(conv: "stem_conv", norm: "stem_bn", activation: "stem_gelu"), keys: ("stem.conv", "stem.norm"))
        var channels = Self.stemWidth
        blocks = Self.widths.enumerated().map { index, width in
            defer { channels = width }
            return Block("block\(index + 1)", inChannels: channels, width: width)
        }
        super.init(name: "cifar-airbench", flavor: .torchvision, featureChannels: Self.widths.last!, minimumInputSize: 16)
        appendLayer("input_layer", .inputLayer)
        appendLayers(stem.layers)
        blocks.forEach { appendLayers($0.layers) }
        appendLayer("output_scale", .rescaling)
        head = standardHead(top, classifier: [
            .init(.globalPool(.max), name: "max_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "linear", key: "linear"),
        ])
    }

    /// airbench's scale on the logits, applied to the base's output.
    static let outputScale: Float = 1 / 9

    /// A batch norm as airbench's: no scale, epsilon 1e-12, PyTorch momentum 0.1.
    static func norm(_ channels: Int) -> BatchNorm {
        BatchNorm(channels, epsilon: 1e-12, momentum: .pytorch(momentum: 0.1), scale: false)
    }

    public override var children: [(name: String, module: Module)] {
        stem.children + blocks.map { ($0.name, $0 as Module) } + (head?.children ?? [])
    }

    /// The stem, each group, and the output scale.
    public override var stages: [Stage] {
        let stem = self.stem
        return [Stage("stem", modules: [stem.conv, stem.norm]) { x, context in try stem(context.tap("input_layer", x), context) }]
            + blocks.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("output_scale", modules: []) { x, context in context.tap("output_scale", try scale(x, by: Self.outputScale)) }]
    }
}

extension CIFARAirbench {
    /// Convolution, 2x2 max pool, batch norm, GELU, convolution, batch norm, GELU.
    final class Block: Module, Layer {
        let name: String
        let conv1: NamedConv
        let norm1: BatchNorm
        let second: ConvNorm

        init(_ name: String, inChannels: Int, width: Int) {
            self.name = name
            conv1 = NamedConv(conv: Conv2D(inChannels, width, kernel: 3, padding: .symmetric(1), bias: false, initializer: .pytorchDefault),
                              name: "\(name)_conv1", key: "conv1")
            norm1 = CIFARAirbench.norm(width)
            second = ConvNorm(Conv2D(width, width, kernel: 3, padding: .symmetric(1), bias: false, initializer: .pytorchDefault),
                              CIFARAirbench.norm(width), activation: .gelu,
                              names: .init(conv: "\(name)_conv2", norm: "\(name)_bn2", activation: "\(name)_gelu2"), keys: ("conv2", "norm2"))
        }

        private var poolName: String { "\(name)_pool" }
        private var firstNames: (norm: String, activation: String) { ("\(name)_bn1", "\(name)_gelu1") }

        override var children: [(name: String, module: Module)] { conv1.children + [("norm1", norm1)] + second.children }

        var layers: [NamedLayer] {
            conv1.layers + [NamedLayer(poolName, .maxPooling2D), NamedLayer(firstNames.norm, .batchNormalization, norm1),
                            NamedLayer(firstNames.activation, .activation)] + second.layers
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let pooled = context.tap(poolName, try maxPool2d(try conv1(x, context), Pool2DOptions(kernel: 2)))
            let normalized = context.tap(firstNames.norm, try norm1(pooled, context))
            return try second(context.tap(firstNames.activation, try gelu(normalized)), context)
        }
    }
}

extension CIFARAirbench: ModelFamily {
    public static let architectures: [Architecture] = [.cifarAirbench]
}

extension Architecture {
    /// airbench's CIFAR-10 network with zoo's classifier (``CIFARAirbench``).
    public static let cifarAirbench = Architecture(
        name: "cifar-airbench", summary: "airbench CIFAR network (Jordan 2024): 2x2 stem, 64/256/256 channels, GELU",
        defaultInputSize: 32, domain: .cifar, flavors: [.torchvision], preprocessing: [.torchvision: .torch]
    ) { request in CIFARAirbench(top: request.top) }
}
