import ZooTensor
import ZooNN

/// ResNetV2 (He et al. 2016, "Identity Mappings in Deep Residual Networks"): pre-activation
/// bottleneck blocks, as `keras.applications.ResNet50V2/101V2/152V2` build them.
///
/// Every block starts with a batch norm and ReLU (`_preact_bn`, `_preact_relu`) that its 1x1
/// reduction takes, then the 3x3 (`_2_pad` absorbed as its padding) and the 1x1 expansion
/// (`_3_conv`, with a bias and no norm), added to the shortcut (`_out`). A stage's first block
/// projects its shortcut with a 1x1 convolution with bias (`_0_conv`) of the pre-activation;
/// Keras strides the 3x3 of each stage's *last* block (stages 2 to 4), whose shortcut is then a
/// 1x1 stride-2 max pool of the block's input (auto-named `max_pooling2d`, `max_pooling2d_1`, ...).
/// The stem's 7x7 convolution has a bias and no norm; `post_bn`, `post_relu` end the base.
/// Batch-norm epsilon 1.001e-5, momentum 0.99.
///
/// Keras only (torchvision has no ResNetV2), so parameters carry Keras's layer names
/// (`conv2_block1_1_conv.weight`, `post_bn.running_var`).
public final class ResNetV2: ImageModel {
    /// Blocks per stage.
    public enum Depth: String, Sendable, CaseIterable {
        case resnet50v2, resnet101v2, resnet152v2

        public var blocks: [Int] {
            switch self {
            case .resnet50v2: return [3, 4, 6, 3]
            case .resnet101v2: return [3, 4, 23, 3]
            case .resnet152v2: return [3, 8, 36, 3]
            }
        }
    }

    let stem: NamedConv
    let blocks: [Block]
    let post: NormReLU

    public init(_ depth: Depth, top: Top = .imagenet) {
        func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: 1.001e-5, momentum: Flavor.keras.batchNormMomentum) }
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        stem = NamedConv(Conv2D(3, 64, kernel: 7, stride: 2, padding: .symmetric(3)), kerasName: "conv1_conv")
        var autoNames = KerasGraph()
        var blocks: [Block] = []
        var channels = 64
        for (stage, count) in depth.blocks.enumerated() {
            let width = 64 << stage
            for index in 0..<count {
                let last = index == count - 1
                let stride = last && stage < 3 ? 2 : 1
                blocks.append(Block("conv\(stage + 2)_block\(index + 1)", inChannels: channels, width: width, stride: stride,
                                    projection: index == 0, poolName: stride > 1 ? autoNames.autoName(.maxPooling2D) : nil, norm: norm))
                channels = width * 4
            }
        }
        self.blocks = blocks
        post = NormReLU(norm(channels), kerasNames: ("post_bn", "post_relu"))
        super.init(name: depth.rawValue, flavor: .keras, featureChannels: channels, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("conv1_pad", .zeroPadding2D)
        appendLayers(stem.layers)
        appendLayer("pool1_pad", .zeroPadding2D)
        appendLayer("pool1_pool", .maxPooling2D)
        blocks.forEach { appendLayers($0.layers) }
        appendLayers(post.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions"),
        ])
    }

    /// Every layer's module under its Keras name, in Keras's order.
    public override var children: [(name: String, module: Module)] {
        stem.children + blocks.flatMap(\.children) + post.children + (head?.children ?? [])
    }

    /// The stem, every block, and the final norm and ReLU.
    public override var stages: [Stage] {
        [Stage("stem", modules: [stem.conv]) { [stem] x, context in
            let y = context.tap("input_layer", x)
            try context.tapPadding("conv1_pad", y, top: 3, bottom: 3, left: 3, right: 3)
            // The stem has no norm or ReLU, so the pool's input may be negative: the zero padding is
            // a real layer here, not the pool's own padding.
            let padded = context.tap("pool1_pad", try zeroPad2d(try stem(y, context), top: 1, bottom: 1, left: 1, right: 1))
            return context.tap("pool1_pool", try maxPool2d(padded, Pool2DOptions(kernel: 3, stride: 2)))
        }] + blocks.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("post", modules: [post.norm]) { [post] x, context in try post(x, context) }]
    }
}

extension ResNetV2 {
    /// A pre-activation bottleneck block.
    final class Block: Module, Layer {
        /// The Keras name prefix, `conv2_block1`.
        let name: String
        let preactivation: NormReLU
        let reduce: ConvNorm, middle: ConvNorm
        let expand: NamedConv
        /// The 1x1 projection of a stage's first block.
        let projection: NamedConv?
        /// The max pool that strides the shortcut of a strided block.
        let poolName: String?
        let stride: Int

        init(_ name: String, inChannels: Int, width: Int, stride: Int, projection: Bool, poolName: String?, norm: (Int) -> BatchNorm) {
            self.name = name
            preactivation = NormReLU(norm(inChannels), kerasNames: ("\(name)_preact_bn", "\(name)_preact_relu"))
            reduce = ConvNorm(Conv2D(inChannels, width, kernel: 1, bias: false), norm(width), activation: .relu,
                              kerasNames: ConvNorm.names("\(name)_1"))
            middle = ConvNorm(Conv2D(width, width, kernel: 3, stride: stride, padding: .symmetric(1), bias: false), norm(width),
                              activation: .relu, kerasNames: ConvNorm.names("\(name)_2"))
            expand = NamedConv(Conv2D(width, width * 4, kernel: 1), kerasName: "\(name)_3_conv")
            self.projection = projection
                ? NamedConv(Conv2D(inChannels, width * 4, kernel: 1), kerasName: "\(name)_0_conv") : nil
            self.poolName = poolName
            self.stride = stride
        }

        private var padName: String { "\(name)_2_pad" }
        private var outputName: String { "\(name)_out" }

        override var children: [(name: String, module: Module)] {
            preactivation.children + reduce.children + middle.children + (projection?.children ?? []) + expand.children
        }

        /// Keras's order (depth-sorted): the shortcut's projection or pool comes after the 3x3's ReLU.
        var layers: [NamedLayer] {
            preactivation.layers + reduce.layers + [NamedLayer(padName, .zeroPadding2D)] + middle.layers
                + (projection?.layers ?? []) + (poolName.map { [NamedLayer($0, .maxPooling2D)] } ?? []) + expand.layers
                + [NamedLayer(outputName, .add)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let activated = try preactivation(x, context)
            var shortcut = x
            if let projection {
                shortcut = try projection(activated, context)
            } else if let poolName {
                shortcut = context.tap(poolName, try maxPool2d(x, Pool2DOptions(kernel: 1, stride: stride)))
            }
            let reduced = try reduce(activated, context)
            try context.tapPadding(padName, reduced, top: 1, bottom: 1, left: 1, right: 1)
            return try expand(try middle(reduced, context), context, residual: shortcut, addName: outputName)
        }
    }
}

extension ResNetV2: ModelFamily {
    public static let architectures: [Architecture] = [.resnet50v2, .resnet101v2, .resnet152v2]

    static func architecture(_ depth: Depth, summary: String) -> Architecture {
        Architecture(name: depth.rawValue, summary: summary, defaultInputSize: 224, flavors: [.keras], preprocessing: [.keras: .tf]) {
            ResNetV2(depth, top: $0.top)
        }
    }
}

extension Architecture {
    /// ResNet50V2 (Keras).
    public static let resnet50v2 = ResNetV2.architecture(.resnet50v2, summary: "ResNet50V2 (He et al. 2016, pre-activation)")
    /// ResNet101V2 (Keras).
    public static let resnet101v2 = ResNetV2.architecture(.resnet101v2, summary: "ResNet101V2 (He et al. 2016, pre-activation)")
    /// ResNet152V2 (Keras).
    public static let resnet152v2 = ResNetV2.architecture(.resnet152v2, summary: "ResNet152V2 (He et al. 2016, pre-activation)")
}
