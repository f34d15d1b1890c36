import ZooTensor
import ZooNN

/// Xception (Chollet 2017): depthwise separable convolutions throughout, in an entry flow (two
/// plain convolutions, then three strided blocks), a middle flow of eight residual blocks and an
/// exit flow (a strided block, then two separable convolutions), as
/// `keras.applications.Xception` builds it.
///
/// Keras only (torchvision has no Xception), so parameters carry Keras's layer names
/// (`block2_sepconv1.depthwise.weight`, `block1_conv1_bn.running_mean`). Batch norms use Keras's
/// defaults (epsilon 1e-3, momentum 0.99). The strided blocks' max pools pad TensorFlow's `same`
/// way from the actual input size; their 1x1 shortcut convolutions and batch norms, and every
/// residual add, are named by Keras's per-class counters (`conv2d`, `batch_normalization_1`,
/// `add_11`), as a fresh Keras session names them (weight import renumbers other sessions' names).
public final class Xception: ImageModel {
    let stem: [ConvNorm]
    /// Blocks 2, 3 and 4.
    let entry: [StridedBlock]
    /// Blocks 5 to 12.
    let middle: [MiddleBlock]
    /// Block 13, the exit flow's strided block.
    let exitBlock: StridedBlock
    /// Block 14's two separable convolutions.
    let exit: [SeparableConvNorm]

    public init(top: Top = .imagenet) {
        func norm(_ channels: Int) -> BatchNorm { BatchNorm(channels, epsilon: 1e-3, momentum: Flavor.keras.batchNormMomentum) }
        func plain(_ name: String, _ input: Int, _ output: Int, stride: Int) -> ConvNorm {
            ConvNorm(Conv2D(input, output, kernel: 3, stride: stride, bias: false), norm(output), activation: .relu,
                     kerasNames: .init(conv: name, norm: "\(name)_bn", activation: "\(name)_act"))
        }
        func separable(_ name: String, _ input: Int, _ output: Int, activation: String?) -> SeparableConvNorm {
            SeparableConvNorm(SeparableConv2D(input, output, kernel: 3, padding: .same, bias: false), norm(output),
                              activation: activation == nil ? nil : .relu,
                              kerasNames: .init(conv: name, norm: "\(name)_bn", activation: activation))
        }
        // Keras's counters name the shortcuts and adds in creation order, block by block.
        var autoNames = KerasGraph()
        // Keras applies a block's first ReLU to the block's input (the previous sum, which the
        // shortcut takes as it is), so it is a layer of its own (`blockN_sepconv1_act`); the ReLU
        // after a block's first separable convolution belongs to that unit, though Keras names it
        // after the next one (`block2_sepconv2_act`). Block 2's input is already activated.
        func strided(_ block: Int, _ input: Int, _ width: Int, _ output: Int) -> StridedBlock {
            let name = "block\(block)"
            let shortcut = ConvNorm(Conv2D(input, output, kernel: 1, stride: 2, padding: .same, bias: false), norm(output), activation: nil,
                                    kerasNames: .init(conv: autoNames.autoName(.conv2D), norm: autoNames.autoName(.batchNormalization)))
            return StridedBlock(name: name, leadingActivation: block == 2 ? nil : "\(name)_sepconv1_act",
                                first: separable("\(name)_sepconv1", input, width, activation: "\(name)_sepconv2_act"),
                                second: separable("\(name)_sepconv2", width, output, activation: nil),
                                shortcut: shortcut, addName: autoNames.autoName(.add))
        }
        stem = [plain("block1_conv1", 3, 32, stride: 2), plain("block1_conv2", 32, 64, stride: 1)]
        entry = [strided(2, 64, 128, 128), strided(3, 128, 256, 256), strided(4, 256, 728, 728)]
        middle = (5...12).map { block in
            let name = "block\(block)"
            return MiddleBlock(leadingActivation: "\(name)_sepconv1_act",
                               units: [separable("\(name)_sepconv1", 728, 728, activation: "\(name)_sepconv2_act"),
                                       separable("\(name)_sepconv2", 728, 728, activation: "\(name)_sepconv3_act"),
                                       separable("\(name)_sepconv3", 728, 728, activation: nil)],
                               addName: autoNames.autoName(.add))
        }
        exitBlock = strided(13, 728, 728, 1024)
        exit = [separable("block14_sepconv1", 1024, 1536, activation: "block14_sepconv1_act"),
                separable("block14_sepconv2", 1536, 2048, activation: "block14_sepconv2_act")]
        super.init(name: "xception", flavor: .keras, featureChannels: 2048, minimumInputSize: 71)

        appendLayer("input_layer", .inputLayer)
        stem.forEach { appendLayers($0.layers) }
        entry.forEach { appendLayers($0.layers) }
        middle.forEach { appendLayers($0.layers) }
        appendLayers(exitBlock.layers)
        exit.forEach { appendLayers($0.layers) }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions"),
        ])
    }

    /// Every unit's modules under their Keras names, in Keras's order.
    public override var children: [(name: String, module: Module)] {
        stem.flatMap(\.children) + entry.flatMap(\.children) + middle.flatMap(\.children) + exitBlock.children
            + exit.flatMap(\.children) + (head?.children ?? [])
    }

    /// The two plain convolutions, each block of the entry, middle and exit flows, and the last
    /// two separable convolutions.
    public override var stages: [Stage] {
        let blocks: [any Layer] = entry + middle + [exitBlock]
        return [Stage("block1", modules: stem.flatMap { [$0.conv, $0.norm] }) { [stem] x, context in
            try stem.reduce(context.tap("input_layer", x)) { try $1($0, context) }
        }] + blocks.enumerated().map { index, block in Stage("block\(index + 2)", modules: [block]) { try block($0, $1) } }
            + [Stage("block14", modules: exit.flatMap { [$0.separable, $0.unit.norm] }) { [exit] x, context in
                try exit.reduce(x) { try $1($0, context) }
            }]
    }
}

extension Xception {
    /// A strided block of the entry flow (and block 13): an optional ReLU, two separable
    /// convolutions with batch norms, a 3x3 stride-2 `same` max pool, plus the shortcut's 1x1
    /// stride-2 convolution and batch norm.
    final class StridedBlock: Module, Layer {
        let name: String
        let leadingActivation: String?
        let first: SeparableConvNorm, second: SeparableConvNorm
        let shortcut: ConvNorm
        let addName: String

        init(name: String, leadingActivation: String?, first: SeparableConvNorm, second: SeparableConvNorm, shortcut: ConvNorm,
             addName: String) {
            self.name = name
            self.leadingActivation = leadingActivation
            self.first = first
            self.second = second
            self.shortcut = shortcut
            self.addName = addName
        }

        private var poolName: String { "\(name)_pool" }

        override var children: [(name: String, module: Module)] { first.children + second.children + shortcut.children }

        /// Keras's order (depth-sorted): the shortcut's convolution and batch norm come between the
        /// second norm, the pool and the add.
        var layers: [NamedLayer] {
            (leadingActivation.map { [NamedLayer($0, .activation)] } ?? []) + first.layers + second.layers
                + [shortcut.layers[0], NamedLayer(poolName, .maxPooling2D), shortcut.layers[1], NamedLayer(addName, .add)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let residual = try shortcut(x, context)
            var y = try leadingActivation.map { context.tap($0, try relu(x)) } ?? x
            y = try second(try first(y, context), context)
            // TensorFlow's `same` for a 3x3 stride-2 pool: the extra row and column of an even size go
            // at the bottom and right; padded cells never win the max.
            y = context.tap(poolName, try maxPool2d(y, Pool2DOptions(kernel: 3, stride: 2, padding: .same)))
            return context.tap(addName, try add(y, residual))
        }
    }

    /// A block of the middle flow: ReLU and separable convolution with batch norm, three times,
    /// added to the block's input (the last norm and the add run fused).
    final class MiddleBlock: Module, Layer {
        let leadingActivation: String
        let units: [SeparableConvNorm]
        let addName: String

        init(leadingActivation: String, units: [SeparableConvNorm], addName: String) {
            self.leadingActivation = leadingActivation
            self.units = units
            self.addName = addName
        }

        override var children: [(name: String, module: Module)] { units.flatMap(\.children) }

        var layers: [NamedLayer] { [NamedLayer(leadingActivation, .activation)] + units.flatMap(\.layers) + [NamedLayer(addName, .add)] }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let y = try units.dropLast().reduce(context.tap(leadingActivation, try relu(x))) { try $1($0, context) }
            return try units[units.count - 1](y, context, residual: x, addName: addName)
        }
    }
}

extension Xception: ModelFamily {
    public static let architectures: [Architecture] = [.xception]
}

extension Architecture {
    /// Xception at 299x299 (Keras).
    public static let xception = Architecture(
        name: "xception", summary: "Xception (Chollet 2017)", defaultInputSize: 299, flavors: [.keras], preprocessing: [.keras: .tf]
    ) { Xception(top: $0.top) }
}
