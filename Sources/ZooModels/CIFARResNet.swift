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
    let conv1: Conv2D
    let bn1: BatchNorm
    let layer1: [Block], layer2: [Block], layer3: [Block]
    /// The final batch norm of the pre-activation form.
    let bnFinal: BatchNorm?

    public init(_ configuration: Configuration, top: Top = .classifier(classes: 10)) throws {
        guard configuration.depth >= 8, (configuration.depth - 2) % 6 == 0 else {
            throw ModelError("a CIFAR ResNet has 6n + 2 layers (20, 32, 44, 56, 110), not \(configuration.depth)")
        }
        self.configuration = configuration
        let blocks = (configuration.depth - 2) / 6
        conv1 = Conv2D(3, 16, kernel: 3, padding: .symmetric(1), bias: false, initializer: .heNormal)
        bn1 = BatchNorm(16)
        var stages: [[Block]] = []
        var channels = 16
        for (stage, width) in [16, 32, 64].enumerated() {
            stages.append((0..<blocks).map { index in
                defer { channels = width }
                return Block(inChannels: channels, width: width, stride: index == 0 && stage > 0 ? 2 : 1, configuration: configuration)
            })
        }
        (layer1, layer2, layer3) = (stages[0], stages[1], stages[2])
        bnFinal = configuration.preactivation ? BatchNorm(64) : nil
        super.init(name: configuration.name, flavor: .torchvision, featureChannels: 64, minimumInputSize: 8)
        appendLayer("input_layer", .inputLayer)
        appendLayer("conv1", .conv2D, conv1)
        if !configuration.preactivation {
            appendLayer("bn1", .batchNormalization, bn1)
            appendLayer("relu1", .activation)
        }
        for (stage, blocks) in stages.enumerated() {
            for (index, block) in blocks.enumerated() {
                block.name = "layer\(stage + 1).\(index)"
                block.layerList.forEach { appendLayer($0.name, $0.kind, $0.module) }
            }
        }
        if let bnFinal {
            appendLayer("bn_final", .batchNormalization, bnFinal)
            appendLayer("relu_final", .activation)
        }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "linear", key: "linear"),
        ])
    }

    /// The pre-activation form has no `bn1` (its first block normalizes the stem's output).
    public override var children: [(name: String, module: Module)] {
        var result: [(name: String, module: Module)] = [("conv1", conv1)]
        if !configuration.preactivation { result.append(("bn1", bn1)) }
        result += layer1.enumerated().map { ("layer1.\($0.offset)", $0.element as Module) }
        result += layer2.enumerated().map { ("layer2.\($0.offset)", $0.element as Module) }
        result += layer3.enumerated().map { ("layer3.\($0.offset)", $0.element as Module) }
        if let bnFinal { result.append(("bn_final", bnFinal)) }
        return result + (head?.children ?? [])
    }

    /// Checkpoints from other projects name the classifier `fc`.
    public override var stateDictionaryAliases: [(pattern: String, replacement: String)] { [(#"^fc\."#, "linear.")] }

    /// The stem, every block, and (pre-activation) the final batch norm and ReLU.
    public override var stages: [Stage] {
        let preactivation = configuration.preactivation
        var result = [Stage("stem", modules: preactivation ? [conv1] : [conv1, bn1]) { [conv1, bn1] x, context in
            let input = context.tap("input_layer", x)
            return preactivation ? try context.run("conv1", conv1, input)
                : try context.run(("conv1", "bn1", "relu1"), conv1, bn1, activation: .relu, input)
        }]
        result += (layer1 + layer2 + layer3).map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
        if let bnFinal {
            result.append(Stage("final", modules: [bnFinal]) { x, context in
                try context.runNormReLU(("bn_final", "relu_final"), bnFinal, x)
            })
        }
        return result
    }
}

extension CIFARResNet {
    final class Block: Module, Layer {
        let conv1: Conv2D, bn1: BatchNorm
        let conv2: Conv2D, bn2: BatchNorm
        /// Option B's projection: `shortcut.0` (1x1 convolution) and, after activation, `shortcut.1` (batch norm).
        let shortcut: [Module]
        let stride: Int
        let padChannels: Int
        let preactivation: Bool
        var name = ""

        init(inChannels: Int, width: Int, stride: Int, configuration: Configuration) {
            preactivation = configuration.preactivation
            // Pre-activation normalizes the block's input; post-activation its first convolution's output.
            bn1 = BatchNorm(configuration.preactivation ? inChannels : width)
            conv1 = Conv2D(inChannels, width, kernel: 3, stride: stride, padding: .symmetric(1), bias: false)
            bn2 = BatchNorm(width)
            conv2 = Conv2D(width, width, kernel: 3, padding: .symmetric(1), bias: false)
            self.stride = stride
            let projects = stride != 1 || inChannels != width
            if projects, configuration.shortcut == .b {
                let projection = Conv2D(inChannels, width, kernel: 1, stride: stride, bias: false)
                shortcut = configuration.preactivation ? [projection] : [projection, BatchNorm(width)]
            } else {
                shortcut = []
            }
            padChannels = projects && configuration.shortcut == .a ? (width - inChannels) / 2 : 0
        }

        override var children: [(name: String, module: Module)] {
            let own: [(name: String, module: Module)] = preactivation
                ? [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)]
                : [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)]
            return own + shortcut.enumerated().map { ("shortcut.\($0.offset)", $0.element) }
        }

        var layerList: [NamedLayer] {
            var list: [NamedLayer]
            if preactivation {
                list = [NamedLayer("\(name).bn1", .batchNormalization, bn1), NamedLayer("\(name).relu1", .activation),
                        NamedLayer("\(name).conv1", .conv2D, conv1), NamedLayer("\(name).bn2", .batchNormalization, bn2),
                        NamedLayer("\(name).relu2", .activation), NamedLayer("\(name).conv2", .conv2D, conv2)]
            } else {
                list = [NamedLayer("\(name).conv1", .conv2D, conv1), NamedLayer("\(name).bn1", .batchNormalization, bn1),
                        NamedLayer("\(name).relu1", .activation), NamedLayer("\(name).conv2", .conv2D, conv2),
                        NamedLayer("\(name).bn2", .batchNormalization, bn2)]
            }
            if let projection = shortcut.first { list.append(NamedLayer("\(name).shortcut.0", .conv2D, projection)) }
            if shortcut.count > 1 { list.append(NamedLayer("\(name).shortcut.1", .batchNormalization, shortcut[1])) }
            list.append(NamedLayer("\(name).add", .add))
            if !preactivation { list.append(NamedLayer("\(name).relu2", .activation)) }
            return list
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y: Tensor
            let shortcutInput: Tensor
            if preactivation {
                let activated = try context.runNormReLU(("\(name).bn1", "\(name).relu1"), bn1, x)
                shortcutInput = shortcut.isEmpty ? x : activated
                y = try context.run("\(name).conv1", conv1, activated)
                y = try context.runNormReLU(("\(name).bn2", "\(name).relu2"), bn2, y)
                y = try context.run("\(name).conv2", conv2, y)
            } else {
                shortcutInput = x
                y = try context.run(("\(name).conv1", "\(name).bn1", "\(name).relu1"), conv1, bn1, activation: .relu, x)
                y = try context.run(("\(name).conv2", "\(name).bn2", ""), conv2, bn2, activation: nil, y)
            }
            var identity = shortcutInput
            if let projection = shortcut.first as? Conv2D {
                if let norm = shortcut.last as? BatchNorm, shortcut.count > 1 {
                    identity = try context.run(("\(name).shortcut.0", "\(name).shortcut.1", ""), projection, norm, activation: nil,
                                               shortcutInput)
                } else {
                    identity = try context.run("\(name).shortcut.0", projection, shortcutInput)
                }
            } else if padChannels > 0 || stride > 1 {
                // Option A: every second pixel, zero channels on both sides.
                identity = try maxPool2d(identity, Pool2DOptions(kernel: [1, 1], stride: [stride, stride]))
                let zeros = Tensor.zeros([identity.shape[0], padChannels, identity.shape[2], identity.shape[3]])
                identity = try concat([zeros, identity, zeros])
            }
            y = context.tap("\(name).add", try add(y, identity))
            return preactivation ? y : context.tap("\(name).relu2", try relu(y))
        }
    }
}
