import ZooTensor
import ZooNN

/// ResNet (He et al. 2016) and its torchvision relatives: basic blocks (ResNet18, 34), bottleneck
/// blocks (ResNet50, 101, 152), grouped bottlenecks (ResNeXt, Xie et al. 2017) and wider ones
/// (Wide ResNet, Zagoruyko and Komodakis 2016).
///
/// - keras flavour (ResNet50, 101, 152): `keras.applications.ResNet50/101/152` (v1): the stride-2
///   sits on each stage's first 1x1 convolution, every convolution has a bias, batch-norm
///   epsilon 1.001e-5.
/// - torchvision flavour (all): `torchvision.models.resnet50` and relatives (v1.5): the stride-2
///   sits on the 3x3 convolution, no convolution biases, epsilon 1e-5.
///
/// Parameters carry torchvision's names (`layer1.0.conv1.weight`, `fc.weight`) in both flavours;
/// the layer list carries Keras's (`conv2_block1_1_conv`). Models Keras does not publish list
/// their layers as Keras would name them (a basic block: `_1_conv`, `_1_bn`, `_1_relu`, the
/// shortcut's `_0_conv`, `_0_bn`, then `_2_conv`, `_2_bn`, `_add`, `_out`).
public final class ResNet: ImageModel {
    /// Blocks per stage, and which block.
    public enum Depth: String, Sendable, CaseIterable {
        case resnet18, resnet34, resnet50, resnet101, resnet152

        public var blocks: [Int] {
            switch self {
            case .resnet18: return [2, 2, 2, 2]
            case .resnet34: return [3, 4, 6, 3]
            case .resnet50: return [3, 4, 6, 3]
            case .resnet101: return [3, 4, 23, 3]
            case .resnet152: return [3, 8, 36, 3]
            }
        }

        /// Whether the stages are made of bottleneck blocks (four times wider out than in the
        /// middle) rather than basic blocks of two 3x3 convolutions.
        public var bottleneck: Bool { self != .resnet18 && self != .resnet34 }
    }

    /// A ResNet variant: depth, and the bottleneck's groups and width (torchvision's `groups`
    /// and `width_per_group`; 1 and 64 for the plain ResNets).
    public struct Configuration: Sendable, Hashable {
        public var depth: Depth
        public var groups: Int
        public var widthPerGroup: Int

        public init(_ depth: Depth, groups: Int = 1, widthPerGroup: Int = 64) {
            self.depth = depth
            self.groups = groups
            self.widthPerGroup = widthPerGroup
        }

        /// The registry name: `resnet50`, `resnext50_32x4d`, `wide_resnet50_2`.
        public var name: String {
            let layers = depth.rawValue.dropFirst("resnet".count)
            if groups > 1 { return "resnext\(layers)_\(groups)x\(widthPerGroup)d" }
            if widthPerGroup != 64 { return "wide_resnet\(layers)_\(widthPerGroup / 64)" }
            return depth.rawValue
        }

        /// The width of a bottleneck's 3x3 convolution in the stage whose plain width is
        /// `planes` (torchvision: `int(planes * width_per_group / 64) * groups`).
        func bottleneckWidth(_ planes: Int) -> Int { planes * widthPerGroup / 64 * groups }
    }

    let stem: ConvNorm
    let layer1: [Block], layer2: [Block], layer3: [Block], layer4: [Block]

    public convenience init(_ depth: Depth, flavor: Flavor, top: Top = .imagenet) {
        self.init(Configuration(depth), flavor: flavor, top: top)
    }

    public init(_ configuration: Configuration, flavor: Flavor, top: Top = .imagenet) {
        let keras = flavor == .keras
        let epsilon: Float = keras ? 1.001e-5 : 1e-5
        let depth = configuration.depth
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        stem = ConvNorm(Conv2D(inChannels: 3, outChannels: 64, kernel: [7, 7], options: Conv2DOptions(stride: 2, padding: .symmetric(3)), bias: keras),
                        BatchNorm(64, epsilon: epsilon, momentum: flavor.batchNormMomentum), activation: .relu,
                        names: ConvNorm.names("conv1"), keys: ("conv1", "bn1"))
        let expansion = depth.bottleneck ? 4 : 1
        var stages: [[Block]] = []
        var channels = 64
        for (stage, count) in depth.blocks.enumerated() {
            let planes = 64 << stage
            stages.append((0..<count).map { index in
                defer { channels = planes * expansion }
                let name = "conv\(stage + 2)_block\(index + 1)"
                let stride = index == 0 && stage > 0 ? 2 : 1
                let projection = index == 0 && (stride != 1 || channels != planes * expansion)
                return depth.bottleneck
                    ? Bottleneck(name, inChannels: channels, width: configuration.bottleneckWidth(planes), groups: configuration.groups,
                                 outChannels: planes * 4, stride: stride, projection: projection, flavor: flavor, epsilon: epsilon)
                    : BasicBlock(name, inChannels: channels, width: planes, stride: stride, projection: projection, flavor: flavor,
                                 epsilon: epsilon)
            })
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        super.init(name: configuration.name, flavor: flavor, featureChannels: 512 * expansion, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("conv1_pad", .zeroPadding2D)
        appendLayers(stem.layers)
        appendLayer("pool1_pad", .zeroPadding2D)
        appendLayer("pool1_pool", .maxPooling2D)
        stages.joined().forEach { appendLayers($0.layers) }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    /// torchvision's names: `conv1`, `bn1`, `layer1.0.conv1`, ..., `fc`.
    public override var children: [(name: String, module: Module)] {
        var result = stem.children
        for (index, layer) in [layer1, layer2, layer3, layer4].enumerated() {
            result += layer.enumerated().map { ("layer\(index + 1).\($0.offset)", $0.element as Module) }
        }
        return result + (head?.children ?? [])
    }

    /// The stem, then every block.
    public override var stages: [Stage] {
        [Stage("stem", modules: [stem.conv, stem.norm]) { [stem] x, context in
            let y = context.tap("input_layer", x)
            try context.tapPadding("conv1_pad", y, top: 3, bottom: 3, left: 3, right: 3)
            let activated = try stem(y, context)
            // Zero padding before a max pool of non-negative values acts as the pool's own padding.
            try context.tapPadding("pool1_pad", activated, top: 1, bottom: 1, left: 1, right: 1)
            return context.tap("pool1_pool", try maxPool2d(activated, Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1))))
        }] + (layer1 + layer2 + layer3 + layer4).map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
    }
}

extension ResNet {
    /// A residual block: its Keras name prefix (`conv2_block1`) and layer-list entries.
    class Block: Module, Layer {
        let name: String
        init(name: String) { self.name = name }
        var layers: [NamedLayer] { [] }
        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor { x }
        var addName: String { "\(name)_add" }
        var outputName: String { "\(name)_out" }
    }

    /// The shortcut of a stage's first block: a strided 1x1 projection with batch norm
    /// (`downsample.0`, `downsample.1`).
    static func projection(_ name: String, inChannels: Int, outChannels: Int, stride: Int, flavor: Flavor, epsilon: Float) -> ConvNorm {
        ConvNorm(Conv2D(inChannels, outChannels, kernel: 1, stride: stride, bias: flavor == .keras),
                 BatchNorm(outChannels, epsilon: epsilon, momentum: flavor.batchNormMomentum), activation: nil,
                 names: ConvNorm.names("\(name)_0", activationLayer: false), keys: ("downsample.0", "downsample.1"))
    }

    /// A bottleneck block: 1x1 reduce, 3x3 (grouped in ResNeXt), 1x1 expand, plus the shortcut.
    final class Bottleneck: Block {
        let reduce: ConvNorm, middle: ConvNorm, expand: ConvNorm
        let projection: ConvNorm?

        init(_ name: String, inChannels: Int, width: Int, groups: Int, outChannels: Int, stride: Int, projection: Bool, flavor: Flavor,
             epsilon: Float) {
            let keras = flavor == .keras
            // v1 (Keras) strides the first 1x1; v1.5 (torchvision) strides the 3x3.
            let (firstStride, middleStride) = keras ? (stride, 1) : (1, stride)
            func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: epsilon, momentum: flavor.batchNormMomentum) }
            reduce = ConvNorm(Conv2D(inChannels, width, kernel: 1, stride: firstStride, bias: keras), norm(width), activation: .relu,
                              names: ConvNorm.names("\(name)_1"), keys: ("conv1", "bn1"))
            middle = ConvNorm(Conv2D(width, width, kernel: 3, stride: middleStride, padding: .symmetric(1), groups: groups, bias: keras),
                              norm(width), activation: .relu, names: ConvNorm.names("\(name)_2"), keys: ("conv2", "bn2"))
            // The block's ReLU follows the residual add: it is the `_out` layer, not the unit's.
            expand = ConvNorm(Conv2D(width, outChannels, kernel: 1, bias: keras), norm(outChannels), activation: .relu,
                              names: ConvNorm.names("\(name)_3", activationLayer: false), keys: ("conv3", "bn3"))
            self.projection = projection
                ? ResNet.projection(name, inChannels: inChannels, outChannels: outChannels, stride: stride, flavor: flavor, epsilon: epsilon)
                : nil
            super.init(name: name)
        }

        override var children: [(name: String, module: Module)] {
            reduce.children + middle.children + expand.children + (projection?.children ?? [])
        }

        /// The block's entries in Keras's `model.layers` order (depth-sorted: the shortcut's
        /// layers come after the second 3x3 activation, interleaved with the expansion's).
        override var layers: [NamedLayer] {
            let shortcutAndExpansion = projection.map { projection in
                [projection.layers[0], expand.layers[0], projection.layers[1], expand.layers[1]]
            } ?? expand.layers
            return reduce.layers + middle.layers + shortcutAndExpansion
                + [NamedLayer(addName, .add), NamedLayer(outputName, .activation)]
        }

        override func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let shortcut = try projection.map { try $0(x, context) } ?? x
            let y = try middle(try reduce(x, context), context)
            return try expand(y, context, residual: shortcut, addName: addName, outputName: outputName)
        }
    }

    /// A basic block: two 3x3 convolutions (the first strided), plus the shortcut.
    final class BasicBlock: Block {
        let first: ConvNorm, second: ConvNorm
        let projection: ConvNorm?

        init(_ name: String, inChannels: Int, width: Int, stride: Int, projection: Bool, flavor: Flavor, epsilon: Float) {
            func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: epsilon, momentum: flavor.batchNormMomentum) }
            first = ConvNorm(Conv2D(inChannels, width, kernel: 3, stride: stride, padding: .symmetric(1), bias: false), norm(width),
                             activation: .relu, names: ConvNorm.names("\(name)_1"), keys: ("conv1", "bn1"))
            second = ConvNorm(Conv2D(width, width, kernel: 3, padding: .symmetric(1), bias: false), norm(width), activation: .relu,
                              names: ConvNorm.names("\(name)_2", activationLayer: false), keys: ("conv2", "bn2"))
            self.projection = projection
                ? ResNet.projection(name, inChannels: inChannels, outChannels: width, stride: stride, flavor: flavor, epsilon: epsilon)
                : nil
            super.init(name: name)
        }

        override var children: [(name: String, module: Module)] {
            first.children + second.children + (projection?.children ?? [])
        }

        override var layers: [NamedLayer] {
            first.layers + (projection?.layers ?? []) + second.layers + [NamedLayer(addName, .add), NamedLayer(outputName, .activation)]
        }

        override func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let shortcut = try projection.map { try $0(x, context) } ?? x
            return try second(try first(x, context), context, residual: shortcut, addName: addName, outputName: outputName)
        }
    }
}

extension ResNet: ModelFamily {
    public static let architectures: [Architecture] = [
        .resnet18, .resnet34, .resnet50, .resnet101, .resnet152,
        .resnext50_32x4d, .resnext101_32x8d, .resnext101_64x4d, .wideResNet50_2, .wideResNet101_2,
    ]

    static func architecture(_ configuration: Configuration, summary: String) -> Architecture {
        // Keras applications publishes the plain bottleneck ResNets; torchvision all of them.
        let keras = configuration.depth.bottleneck && configuration.groups == 1 && configuration.widthPerGroup == 64
        return Architecture(name: configuration.name, summary: summary, defaultInputSize: 224,
                            flavors: keras ? [.keras, .torchvision] : [.torchvision],
                            preprocessing: keras ? [.keras: .caffe, .torchvision: .torch] : [.torchvision: .torch]) {
            ResNet(configuration, flavor: $0.flavor, top: $0.top)
        }
    }
}

extension Architecture {
    /// ResNet18 (torchvision).
    public static let resnet18 = ResNet.architecture(.init(.resnet18), summary: "ResNet18 (He et al. 2016)")
    /// ResNet34 (torchvision).
    public static let resnet34 = ResNet.architecture(.init(.resnet34), summary: "ResNet34 (He et al. 2016)")
    /// ResNet50: Keras's v1 and torchvision's v1.5.
    public static let resnet50 = ResNet.architecture(.init(.resnet50), summary: "ResNet50 (He et al. 2016)")
    /// ResNet101: Keras's v1 and torchvision's v1.5.
    public static let resnet101 = ResNet.architecture(.init(.resnet101), summary: "ResNet101 (He et al. 2016)")
    /// ResNet152: Keras's v1 and torchvision's v1.5.
    public static let resnet152 = ResNet.architecture(.init(.resnet152), summary: "ResNet152 (He et al. 2016)")
    /// ResNeXt50 32x4d (torchvision).
    public static let resnext50_32x4d = ResNet.architecture(.init(.resnet50, groups: 32, widthPerGroup: 4),
                                                            summary: "ResNeXt50 32x4d (Xie et al. 2017)")
    /// ResNeXt101 32x8d (torchvision).
    public static let resnext101_32x8d = ResNet.architecture(.init(.resnet101, groups: 32, widthPerGroup: 8),
                                                             summary: "ResNeXt101 32x8d (Xie et al. 2017)")
    /// ResNeXt101 64x4d (torchvision).
    public static let resnext101_64x4d = ResNet.architecture(.init(.resnet101, groups: 64, widthPerGroup: 4),
                                                             summary: "ResNeXt101 64x4d (Xie et al. 2017)")
    /// Wide ResNet50-2 (torchvision).
    public static let wideResNet50_2 = ResNet.architecture(.init(.resnet50, widthPerGroup: 128),
                                                           summary: "Wide ResNet50-2 (Zagoruyko & Komodakis 2016)")
    /// Wide ResNet101-2 (torchvision).
    public static let wideResNet101_2 = ResNet.architecture(.init(.resnet101, widthPerGroup: 128),
                                                            summary: "Wide ResNet101-2 (Zagoruyko & Komodakis 2016)")
}
