import ZooTensor
import ZooNN

/// ResNet with bottleneck blocks (He et al. 2016): ResNet50 and ResNet152.
///
/// - keras flavour: `keras.applications.ResNet50/152` (v1): the stride-2 sits on each stage's
///   first 1x1 convolution, every convolution has a bias, batch-norm epsilon 1.001e-5.
/// - torchvision flavour: `torchvision.models.resnet50/152` (v1.5): the stride-2 sits on the
///   3x3 convolution, no convolution biases, epsilon 1e-5.
///
/// Parameters carry torchvision's names (`layer1.0.conv1.weight`, `fc.weight`) in both flavours;
/// the layer list carries Keras's (`conv2_block1_1_conv`).
public final class ResNet: ImageModel {
    /// Blocks per stage.
    public enum Depth: String, Sendable, CaseIterable {
        case resnet50, resnet152

        public var blocks: [Int] {
            switch self {
            case .resnet50: return [3, 4, 6, 3]
            case .resnet152: return [3, 8, 36, 3]
            }
        }
    }

    let stem: ConvNorm
    let layer1: [Bottleneck], layer2: [Bottleneck], layer3: [Bottleneck], layer4: [Bottleneck]

    public init(_ depth: Depth, flavor: Flavor, top: Top = .imagenet) {
        let keras = flavor == .keras
        let epsilon: Float = keras ? 1.001e-5 : 1e-5
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        stem = ConvNorm(Conv2D(inChannels: 3, outChannels: 64, kernel: [7, 7], options: Conv2DOptions(stride: 2, padding: .symmetric(3)), bias: keras),
                        BatchNorm(64, epsilon: epsilon, momentum: flavor.batchNormMomentum), activation: .relu,
                        names: ConvNorm.names("conv1"), keys: ("conv1", "bn1"))
        var stages: [[Bottleneck]] = []
        var channels = 64
        for (stage, count) in depth.blocks.enumerated() {
            let width = 64 << stage
            stages.append((0..<count).map { index in
                defer { channels = width * 4 }
                return Bottleneck("conv\(stage + 2)_block\(index + 1)", inChannels: channels, width: width,
                                  stride: index == 0 && stage > 0 ? 2 : 1, projection: index == 0, flavor: flavor, epsilon: epsilon)
            })
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        super.init(name: depth.rawValue, flavor: flavor, featureChannels: 2048, minimumInputSize: 32)

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

    /// The stem, then every bottleneck block.
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
    /// A bottleneck block: 1x1 reduce, 3x3, 1x1 expand, plus the shortcut (a 1x1 projection
    /// with batch norm in each stage's first block).
    final class Bottleneck: Module, Layer {
        /// The Keras name prefix (`conv2_block1`).
        let name: String
        let reduce: ConvNorm, middle: ConvNorm, expand: ConvNorm
        /// The projection shortcut: `downsample.0` (convolution) and `downsample.1` (batch norm).
        let projection: ConvNorm?

        init(_ name: String, inChannels: Int, width: Int, stride: Int, projection: Bool, flavor: Flavor, epsilon: Float) {
            let keras = flavor == .keras
            // v1 (Keras) strides the first 1x1; v1.5 (torchvision) strides the 3x3.
            let (firstStride, middleStride) = keras ? (stride, 1) : (1, stride)
            let momentum = flavor.batchNormMomentum
            func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: epsilon, momentum: momentum) }
            self.name = name
            reduce = ConvNorm(Conv2D(inChannels, width, kernel: 1, stride: firstStride, bias: keras), norm(width), activation: .relu,
                              names: ConvNorm.names("\(name)_1"), keys: ("conv1", "bn1"))
            middle = ConvNorm(Conv2D(width, width, kernel: 3, stride: middleStride, padding: .symmetric(1), bias: keras), norm(width),
                              activation: .relu, names: ConvNorm.names("\(name)_2"), keys: ("conv2", "bn2"))
            // The block's ReLU follows the residual add: it is the `_out` layer, not the unit's.
            expand = ConvNorm(Conv2D(width, width * 4, kernel: 1, bias: keras), norm(width * 4), activation: .relu,
                              names: ConvNorm.names("\(name)_3", activationLayer: false), keys: ("conv3", "bn3"))
            self.projection = projection
                ? ConvNorm(Conv2D(inChannels, width * 4, kernel: 1, stride: stride, bias: keras), norm(width * 4), activation: nil,
                           names: ConvNorm.names("\(name)_0", activationLayer: false), keys: ("downsample.0", "downsample.1"))
                : nil
        }

        private var addName: String { "\(name)_add" }
        private var outputName: String { "\(name)_out" }

        override var children: [(name: String, module: Module)] {
            reduce.children + middle.children + expand.children + (projection?.children ?? [])
        }

        /// The block's entries in Keras's `model.layers` order (depth-sorted: the shortcut's
        /// layers come after the second 3x3 activation, interleaved with the expansion's).
        var layers: [NamedLayer] {
            let shortcutAndExpansion = projection.map { projection in
                [projection.layers[0], expand.layers[0], projection.layers[1], expand.layers[1]]
            } ?? expand.layers
            return reduce.layers + middle.layers + shortcutAndExpansion
                + [NamedLayer(addName, .add), NamedLayer(outputName, .activation)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let shortcut = try projection.map { try $0(x, context) } ?? x
            let y = try middle(try reduce(x, context), context)
            return try expand(y, context, residual: shortcut, addName: addName, outputName: outputName)
        }
    }
}

extension ResNet: ModelFamily {
    public static let architectures: [Architecture] = [.resnet50, .resnet152]

    static func architecture(_ depth: Depth, summary: String) -> Architecture {
        Architecture(name: depth.rawValue, summary: summary, defaultInputSize: 224, preprocessing: [.keras: .caffe, .torchvision: .torch]) {
            ResNet(depth, flavor: $0.flavor, top: $0.top)
        }
    }
}

extension Architecture {
    /// ResNet50: Keras's v1 and torchvision's v1.5.
    public static let resnet50 = ResNet.architecture(.resnet50, summary: "ResNet50 (He et al. 2016)")
    /// ResNet152: Keras's v1 and torchvision's v1.5.
    public static let resnet152 = ResNet.architecture(.resnet152, summary: "ResNet152 (He et al. 2016)")
}
