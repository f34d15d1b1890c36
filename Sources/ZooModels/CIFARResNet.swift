import ZooTensor
import ZooNN

/// The CIFAR ResNets of He et al. (2016): `6n + 2` layers (20, 32, 44, 56, 110), three stages of
/// `n` basic blocks with 16, 32 and 64 channels at 32x32, 16x16 and 8x8, global average pooling
/// and a linear classifier.
///
/// - Shortcut option A: identity; where a stage halves the size and doubles the channels, the
///   input is subsampled (every second row and column) and zero channels are added on both sides
///   (as the widely used PyTorch CIFAR ResNets do). Option B: a 1x1 convolution with batch norm.
/// - Post-activation (the original: conv, BN, ReLU, conv, BN, add, ReLU) or pre-activation (He et
///   al., "Identity Mappings": BN, ReLU, conv, BN, ReLU, conv, add; a final BN and ReLU before
///   pooling), as in the Keras CIFAR-10 ResNet example's version 2.
///
/// Parameters carry the names of the common PyTorch implementations (`conv1`, `bn1`,
/// `layer1.0.conv1`, `layer2.0.shortcut.0`, `linear`); checkpoints that call the classifier `fc`
/// or carry DataParallel's `module.` prefix load too.
public final class CIFARResNet: ImageModel {
    public struct Configuration: Sendable, Hashable {
        public enum Shortcut: String, Sendable, Hashable { case a, b }
        public var depth: Int
        public var shortcut: Shortcut
        public var preactivation: Bool

        public init(depth: Int, shortcut: Shortcut = .a, preactivation: Bool = false) {
            self.depth = depth
            self.shortcut = shortcut
            self.preactivation = preactivation
        }

        /// `cifar-resnet20` (A, post-activation), `cifar-resnet20b` (B), `cifar-preresnet20`
        /// (pre-activation, B).
        public var name: String {
            preactivation ? "cifar-preresnet\(depth)" : "cifar-resnet\(depth)" + (shortcut == .b ? "b" : "")
        }

        /// The published depths in all three variants.
        public static let all: [Configuration] = [20, 32, 44, 56, 110].flatMap { depth in
            [Configuration(depth: depth), Configuration(depth: depth, shortcut: .b), Configuration(depth: depth, shortcut: .b, preactivation: true)]
        }
    }

    public let configuration: Configuration
    /// The 3x3 stem: with its batch norm and ReLU, or (pre-activation) alone, its first block
    /// normalizing its output.
    let stem: Stem
    let layer1: [Block], layer2: [Block], layer3: [Block]
    /// The final batch norm and ReLU of the pre-activation form.
    let final: NormReLU?

    enum Stem {
        case postactivation(ConvNorm)
        case preactivation(NamedConv)
    }

    public init(_ configuration: Configuration, top: Top = .classifier(classes: 10)) throws {
        guard configuration.depth >= 8, (configuration.depth - 2) % 6 == 0 else {
            throw ModelError.invalidConfiguration(architecture: configuration.name,
                                                  reason: "a CIFAR ResNet has 6n + 2 layers (20, 32, 44, 56, 110), not \(configuration.depth)")
        }
        self.configuration = configuration
        let blocks = (configuration.depth - 2) / 6
        let conv1 = Conv2D(3, 16, kernel: 3, padding: .symmetric(1), bias: false, initializer: .heNormal)
        stem = configuration.preactivation
            ? .preactivation(NamedConv(conv: conv1, name: "conv1", key: "conv1"))
            : .postactivation(ConvNorm(conv1, BatchNorm(16), activation: .relu, names: .init(conv: "conv1", norm: "bn1", activation: "relu1"),
                                       keys: ("conv1", "bn1")))
        var stages: [[Block]] = []
        var channels = 16
        for (stage, width) in [16, 32, 64].enumerated() {
            stages.append((0..<blocks).map { index in
                defer { channels = width }
                return Block("layer\(stage + 1).\(index)", inChannels: channels, width: width, stride: index == 0 && stage > 0 ? 2 : 1,
                             configuration: configuration)
            })
        }
        (layer1, layer2, layer3) = (stages[0], stages[1], stages[2])
        final = configuration.preactivation ? NormReLU(BatchNorm(64), names: ("bn_final", "relu_final"), key: "bn_final") : nil
        super.init(name: configuration.name, flavor: .torchvision, featureChannels: 64, minimumInputSize: 8)
        appendLayer("input_layer", .inputLayer)
        appendLayers(stemUnits.layers)
        stages.joined().forEach { appendLayers($0.layers) }
        appendLayers(final?.layers ?? [])
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "linear", key: "linear"),
        ])
    }

    /// The stem's layers and modules.
    private var stemUnits: (layers: [NamedLayer], children: [(name: String, module: Module)]) {
        switch stem {
        case let .postactivation(unit): return (unit.layers, unit.children)
        case let .preactivation(conv): return (conv.layers, conv.children)
        }
    }

    /// The pre-activation form has no `bn1` (its first block normalizes the stem's output).
    public override var children: [(name: String, module: Module)] {
        var result = stemUnits.children
        result += layer1.enumerated().map { ("layer1.\($0.offset)", $0.element as Module) }
        result += layer2.enumerated().map { ("layer2.\($0.offset)", $0.element as Module) }
        result += layer3.enumerated().map { ("layer3.\($0.offset)", $0.element as Module) }
        return result + (final?.children ?? []) + (head?.children ?? [])
    }

    /// Checkpoints from other projects name the classifier `fc`.
    public override var stateDictionaryAliases: [(pattern: String, replacement: String)] { [(#"^fc\."#, "linear.")] }

    /// The stem, every block, and (pre-activation) the final batch norm and ReLU.
    public override var stages: [Stage] {
        let stem = self.stem
        var result = [Stage("stem", modules: stemUnits.children.map(\.module)) { x, context in
            let input = context.tap("input_layer", x)
            switch stem {
            case let .postactivation(unit): return try unit(input, context)
            case let .preactivation(conv): return try conv(input, context)
            }
        }]
        result += (layer1 + layer2 + layer3).map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
        if let final {
            result.append(Stage("final", modules: [final.norm]) { x, context in try final(x, context) })
        }
        return result
    }
}

extension CIFARResNet {
    final class Block: Module, Layer {
        /// The block's path (`layer1.0`), which prefixes its layers' names.
        let name: String
        /// Post-activation: conv-BN-ReLU, conv-BN. Pre-activation: BN-ReLU-conv twice.
        let body: Body
        /// Option B's projection: `shortcut.0` (1x1 convolution) and, after activation, `shortcut.1` (batch norm).
        let shortcut: Shortcut?
        let stride: Int
        let padChannels: Int

        enum Body {
            case postactivation(ConvNorm, ConvNorm)
            case preactivation(NormReLU, NamedConv, NormReLU, NamedConv)
        }

        enum Shortcut {
            case convolution(NamedConv)
            case convolutionAndNorm(ConvNorm)
        }

        init(_ name: String, inChannels: Int, width: Int, stride: Int, configuration: Configuration) {
            self.name = name
            let conv1 = Conv2D(inChannels, width, kernel: 3, stride: stride, padding: .symmetric(1), bias: false)
            let conv2 = Conv2D(width, width, kernel: 3, padding: .symmetric(1), bias: false)
            if configuration.preactivation {
                // Pre-activation normalizes the block's input; post-activation its first convolution's output.
                body = .preactivation(NormReLU(BatchNorm(inChannels), names: ("\(name).bn1", "\(name).relu1"), key: "bn1"),
                                      NamedConv(conv: conv1, name: "\(name).conv1", key: "conv1"),
                                      NormReLU(BatchNorm(width), names: ("\(name).bn2", "\(name).relu2"), key: "bn2"),
                                      NamedConv(conv: conv2, name: "\(name).conv2", key: "conv2"))
            } else {
                body = .postactivation(
                    ConvNorm(conv1, BatchNorm(width), activation: .relu,
                             names: .init(conv: "\(name).conv1", norm: "\(name).bn1", activation: "\(name).relu1"), keys: ("conv1", "bn1")),
                    ConvNorm(conv2, BatchNorm(width), activation: nil,
                             names: .init(conv: "\(name).conv2", norm: "\(name).bn2", activation: nil), keys: ("conv2", "bn2")))
            }
            self.stride = stride
            let projects = stride != 1 || inChannels != width
            if projects, configuration.shortcut == .b {
                let projection = Conv2D(inChannels, width, kernel: 1, stride: stride, bias: false)
                shortcut = configuration.preactivation
                    ? .convolution(NamedConv(conv: projection, name: "\(name).shortcut.0", key: "shortcut.0"))
                    : .convolutionAndNorm(ConvNorm(projection, BatchNorm(width), activation: nil,
                                                   names: .init(conv: "\(name).shortcut.0", norm: "\(name).shortcut.1", activation: nil),
                                                   keys: ("shortcut.0", "shortcut.1")))
            } else {
                shortcut = nil
            }
            padChannels = projects && configuration.shortcut == .a ? (width - inChannels) / 2 : 0
        }

        private var addName: String { "\(name).add" }
        /// The post-activation block's ReLU after the add.
        private var outputName: String { "\(name).relu2" }

        override var children: [(name: String, module: Module)] {
            let own: [(name: String, module: Module)]
            switch body {
            case let .postactivation(first, second): own = first.children + second.children
            case let .preactivation(norm1, conv1, norm2, conv2): own = norm1.children + conv1.children + norm2.children + conv2.children
            }
            switch shortcut {
            case let .convolution(conv): return own + conv.children
            case let .convolutionAndNorm(unit): return own + unit.children
            case nil: return own
            }
        }

        var layers: [NamedLayer] {
            var list: [NamedLayer]
            switch body {
            case let .postactivation(first, second): list = first.layers + second.layers
            case let .preactivation(norm1, conv1, norm2, conv2): list = norm1.layers + conv1.layers + norm2.layers + conv2.layers
            }
            switch shortcut {
            case let .convolution(conv): list += conv.layers
            case let .convolutionAndNorm(unit): list += unit.layers
            case nil: break
            }
            list.append(NamedLayer(addName, .add))
            if case .postactivation = body { list.append(NamedLayer(outputName, .activation)) }
            return list
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y: Tensor
            let shortcutInput: Tensor
            switch body {
            case let .preactivation(norm1, conv1, norm2, conv2):
                let activated = try norm1(x, context)
                shortcutInput = shortcut == nil ? x : activated
                y = try conv2(try norm2(try conv1(activated, context), context), context)
            case let .postactivation(first, second):
                shortcutInput = x
                y = try second(try first(x, context), context)
            }
            var identity = shortcutInput
            switch shortcut {
            case let .convolution(conv):
                identity = try conv(shortcutInput, context)
            case let .convolutionAndNorm(unit):
                identity = try unit(shortcutInput, context)
            case nil:
                if padChannels > 0 || stride > 1 {
                    // Option A: every second pixel, zero channels on both sides.
                    identity = try maxPool2d(identity, Pool2DOptions(kernel: [1, 1], stride: [stride, stride]))
                    let zeros = Tensor.zeros([identity.shape[0], padChannels, identity.shape[2], identity.shape[3]])
                    identity = try concat([zeros, identity, zeros])
                }
            }
            y = context.tap(addName, try add(y, identity))
            guard case .postactivation = body else { return y }
            return context.tap(outputName, try relu(y))
        }
    }
}

extension CIFARResNet: ModelFamily {
    public static let architectures: [Architecture] = Configuration.all.map(Architecture.cifarResNet)
}

extension Architecture {
    /// A CIFAR ResNet (`cifar-resnet20`, `cifar-resnet56b`, `cifar-preresnet110`, ...): one
    /// graph with PyTorch's names, so only the torchvision flavour.
    public static func cifarResNet(_ configuration: CIFARResNet.Configuration) -> Architecture {
        Architecture(name: configuration.name,
                     summary: "CIFAR ResNet-\(configuration.depth) (He et al. 2016), shortcut \(configuration.shortcut.rawValue.uppercased())"
                         + (configuration.preactivation ? ", pre-activation" : ""),
                     defaultInputSize: 32, domain: .cifar, flavors: [.torchvision], preprocessing: [.torchvision: .torch]) {
            try CIFARResNet(configuration, top: $0.top)
        }
    }
}
