import ZooTensor
import ZooNN

/// Inception-ResNet-v2 (Szegedy et al. 2017, "Inception-v4, Inception-ResNet and the Impact of
/// Residual Connections on Learning"), as `keras.applications.InceptionResNetV2` builds it: a
/// stem, `mixed_5b`, 10 Inception-ResNet-A blocks (`block35`, residual scale 0.17), the reduction
/// `mixed_6a`, 20 B blocks (`block17`, 0.1), the reduction `mixed_7a`, 10 C blocks (`block8`,
/// 0.2; the last one scale 1 and no activation) and `conv_7b`.
///
/// Keras only (torchvision has no Inception-ResNet), so parameters carry Keras's layer names.
/// Every convolution unit is Keras's `conv2d_bn`: a convolution without bias, a batch norm
/// without scale (`scale=False`, so no `weight`; epsilon 1e-3, momentum 0.99) and a ReLU,
/// auto-named by Keras's per-class counters (`conv2d_7`, `batch_normalization_7`,
/// `activation_7`) except `conv_7b`. A residual block concatenates its branches (`_mixed`),
/// projects them back to the block's width with a 1x1 convolution with bias (`_conv`), adds
/// `scale` times that to the block's input (Keras 3's `CustomScaleLayer`, auto-named
/// `custom_scale_layer_N`) and applies a ReLU (`_ac`).
public final class InceptionResNetV2: ImageModel {
    /// The stem: three units and a max pool, two units and a max pool.
    let stem: [(units: [ConvNorm], pool: String)]
    /// `mixed_5b`, then the residual blocks and reductions in order, as one list.
    let blocks: [any Block]
    let conv7b: ConvNorm

    public init(top: Top = .imagenet) {
        // Keras's counters name the unnamed layers in creation order, which is the order below.
        var autoNames = KerasGraph()
        func unit(_ input: Int, _ output: Int, _ kernel: [Int], stride: Int = 1, valid: Bool = false, name: String? = nil) -> ConvNorm {
            let names = name.map { ConvNorm.Names(conv: $0, norm: "\($0)_bn", activation: "\($0)_ac") }
                ?? .init(conv: autoNames.autoName(.conv2D), norm: autoNames.autoName(.batchNormalization),
                         activation: autoNames.autoName(.activation))
            let (height, width) = (kernel[0], kernel.count > 1 ? kernel[1] : kernel[0])
            // Keras's `same` at stride 1 (every `same` layer here) pads odd kernels evenly.
            let padding = valid || height * width == 1 ? Padding.valid : .symmetric(height: height / 2, width: width / 2)
            return ConvNorm(Conv2D(inChannels: input, outChannels: output, kernel: [height, width],
                                   options: Conv2DOptions(stride: [stride, stride], padding: padding), bias: false),
                            BatchNorm(output, epsilon: 1e-3, momentum: Flavor.keras.batchNormMomentum, scale: false),
                            activation: .relu, kerasNames: names)
        }
        func maxPool() -> Branch.Pool {
            Branch.Pool(name: autoNames.autoName(.maxPooling2D), kind: .maxPooling2D, options: Pool2DOptions(kernel: 3, stride: 2))
        }
        func residual(_ type: String, _ index: Int, channels: Int, scale: Float, activation: Bool = true,
                      _ branches: () -> [[ConvNorm]]) -> ResidualBlock {
            let branches = branches().map { Branch(units: $0) }
            return ResidualBlock("\(type)_\(index)", branches, channels: channels, scaleName: autoNames.autoName(.customScaleLayer),
                                 scale: scale, activation: activation)
        }

        stem = [([unit(3, 32, [3], stride: 2, valid: true), unit(32, 32, [3], valid: true), unit(32, 64, [3])],
                 autoNames.autoName(.maxPooling2D)),
                ([unit(64, 80, [1], valid: true), unit(80, 192, [3], valid: true)], autoNames.autoName(.maxPooling2D))]
        var blocks: [any Block] = []
        blocks.append(MixedBlock("mixed_5b", [
            Branch(units: [unit(192, 96, [1])]),
            Branch(units: [unit(192, 48, [1]), unit(48, 64, [5])]),
            Branch(units: [unit(192, 64, [1]), unit(64, 96, [3]), unit(96, 96, [3])]),
            // TensorFlow's `same` average pool divides by the cells inside the map.
            Branch(pool: .init(name: autoNames.autoName(.averagePooling2D), kind: .averagePooling2D,
                               options: Pool2DOptions(kernel: 3, stride: 1, padding: .symmetric(1), countIncludesPadding: false)),
                   units: [unit(192, 64, [1])]),
        ]))
        for index in 1...10 {
            blocks.append(residual("block35", index, channels: 320, scale: 0.17) {
                [[unit(320, 32, [1])], [unit(320, 32, [1]), unit(32, 32, [3])],
                 [unit(320, 32, [1]), unit(32, 48, [3]), unit(48, 64, [3])]]
            })
        }
        blocks.append(MixedBlock("mixed_6a", [
            Branch(units: [unit(320, 384, [3], stride: 2, valid: true)]),
            Branch(units: [unit(320, 256, [1]), unit(256, 256, [3]), unit(256, 384, [3], stride: 2, valid: true)]),
            Branch(pool: maxPool(), units: []),
        ]))
        for index in 1...20 {
            blocks.append(residual("block17", index, channels: 1088, scale: 0.1) {
                [[unit(1088, 192, [1])], [unit(1088, 128, [1]), unit(128, 160, [1, 7]), unit(160, 192, [7, 1])]]
            })
        }
        blocks.append(MixedBlock("mixed_7a", [
            Branch(units: [unit(1088, 256, [1]), unit(256, 384, [3], stride: 2, valid: true)]),
            Branch(units: [unit(1088, 256, [1]), unit(256, 288, [3], stride: 2, valid: true)]),
            Branch(units: [unit(1088, 256, [1]), unit(256, 288, [3]), unit(288, 320, [3], stride: 2, valid: true)]),
            Branch(pool: maxPool(), units: []),
        ]))
        for index in 1...10 {
            // Keras ends the last block with scale 1 and no activation: `conv_7b` follows.
            let last = index == 10
            blocks.append(residual("block8", index, channels: 2080, scale: last ? 1 : 0.2, activation: !last) {
                [[unit(2080, 192, [1])], [unit(2080, 192, [1]), unit(192, 224, [1, 3]), unit(224, 256, [3, 1])]]
            })
        }
        self.blocks = blocks
        conv7b = unit(2080, 1536, [1], name: "conv_7b")
        super.init(name: "inceptionresnetv2", flavor: .keras, featureChannels: 1536, minimumInputSize: 75)

        for layer in layerGraph().kerasOrder(output: conv7b.names.activation!) { appendLayer(layer.name, layer.kind, layer.module) }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions"),
        ])
    }

    /// Every unit's modules under their Keras names, in creation order.
    public override var children: [(name: String, module: Module)] {
        stem.flatMap(\.units).flatMap(\.children) + blocks.flatMap(\.children) + conv7b.children + (head?.children ?? [])
    }

    /// The Keras graph of the base, from which Keras's depth-sorted layer order follows (the
    /// branches of a block interleave in it).
    private func layerGraph() -> KerasGraph {
        var graph = KerasGraph()
        func chain(_ layers: [NamedLayer], after input: String) -> String {
            layers.reduce(input) { last, layer in graph.add(layer, inputs: [last]) }
        }
        var x = graph.add(NamedLayer("input_layer", .inputLayer), inputs: [])
        for part in stem { x = chain(part.units.flatMap(\.layers) + [NamedLayer(part.pool, .maxPooling2D)], after: x) }
        for block in blocks {
            let outputs = block.branches.map { branch in
                chain(branch.units.flatMap(\.layers), after: branch.pool.map { chain([NamedLayer($0.name, $0.kind)], after: x) } ?? x)
            }
            x = block.addJoin(to: &graph, input: x, branches: outputs)
        }
        _ = chain(conv7b.layers, after: x)
        return graph
    }

    /// The stem (through the second max pool), `mixed_5b`, every residual block and reduction,
    /// and `conv_7b`.
    public override var stages: [Stage] {
        let pool = Pool2DOptions(kernel: 3, stride: 2)
        return [Stage("stem", modules: stem.flatMap(\.units).flatMap { [$0.conv, $0.norm] }) { [stem] x, context in
            try stem.reduce(context.tap("input_layer", x)) { y, part in
                context.tap(part.pool, try maxPool2d(try part.units.reduce(y) { try $1($0, context) }, pool))
            }
        }] + blocks.map { block in
            Stage(block.name, modules: [block]) { try block($0, $1) }
        } + [Stage(conv7b.names.conv, modules: [conv7b.conv, conv7b.norm]) { [conv7b] x, context in try conv7b(x, context) }]
    }
}

extension InceptionResNetV2 {
    /// A mixed or residual block: its Keras name prefix and its parallel branches.
    protocol Block: Module, Layer {
        var name: String { get }
        var branches: [Branch] { get }
        /// Adds the layers that join the branches' outputs (and, in a residual block, `input`);
        /// returns the block's output layer.
        func addJoin(to graph: inout KerasGraph, input: String, branches: [String]) -> String
    }

    /// One branch of a block: an optional pool, then convolution units (none for a reduction's
    /// max-pool branch).
    struct Branch {
        struct Pool {
            let name: String
            let kind: LayerKind
            let options: Pool2DOptions
        }

        var pool: Pool? = nil
        let units: [ConvNorm]

        var children: [(name: String, module: Module)] { units.flatMap(\.children) }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = x
            if let pool {
                y = context.tap(pool.name, try pool.kind == .maxPooling2D ? maxPool2d(x, pool.options) : avgPool2d(x, pool.options))
            }
            return try units.reduce(y) { try $1($0, context) }
        }
    }

    /// `mixed_5b`, `mixed_6a`, `mixed_7a`: the branches concatenated.
    final class MixedBlock: Module, Block {
        let name: String
        let branches: [Branch]

        init(_ name: String, _ branches: [Branch]) {
            self.name = name
            self.branches = branches
        }

        override var children: [(name: String, module: Module)] { branches.flatMap(\.children) }

        func addJoin(to graph: inout KerasGraph, input: String, branches: [String]) -> String {
            graph.add(NamedLayer(name, .concatenate), inputs: branches)
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            context.tap(name, try concat(try branches.map { try $0(x, context) }))
        }
    }

    /// An Inception-ResNet block: the branches concatenated, a 1x1 convolution with bias back to
    /// the input's width, `x + scale * r` (Keras's `CustomScaleLayer`), and a ReLU unless it is
    /// the last block.
    ///
    /// In inference (and with the convolution frozen) the three run as one convolution: its
    /// weight and bias multiplied by `scale` once, the input added and the ReLU applied as its
    /// post-ops, unless someone watches the convolution's or the sum's own output.
    final class ResidualBlock: Module, Block {
        /// The Keras name prefix, `block35_1`.
        let name: String
        let branches: [Branch]
        let up: NamedConv
        let scaleName: String
        let scale: Float
        let activationName: String?
        /// The convolution's weight and bias times `scale`, and the values they were made from.
        private var scaled: (sources: [Tensor], weight: Tensor, bias: Tensor)?

        /// A block `name` whose 1x1 convolution brings its branches back to `channels`.
        init(_ name: String, _ branches: [Branch], channels: Int, scaleName: String, scale: Float, activation: Bool) {
            self.name = name
            self.branches = branches
            let mixed = branches.reduce(0) { $0 + $1.units.last!.norm.channels }
            up = NamedConv(Conv2D(mixed, channels, kernel: 1), kerasName: "\(name)_conv")
            self.scaleName = scaleName
            self.scale = scale
            activationName = activation ? "\(name)_ac" : nil
        }

        var mixedName: String { "\(name)_mixed" }

        override var children: [(name: String, module: Module)] { branches.flatMap(\.children) + up.children }

        func addJoin(to graph: inout KerasGraph, input: String, branches: [String]) -> String {
            let up = graph.add(self.up.layers[0], inputs: [graph.add(NamedLayer(mixedName, .concatenate), inputs: branches)])
            let sum = graph.add(NamedLayer(scaleName, .customScaleLayer), inputs: [input, up])
            return activationName.map { graph.add(NamedLayer($0, .activation), inputs: [sum]) } ?? sum
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let mixed = context.tap(mixedName, try concat(try branches.map { try $0(x, context) }))
            let unfused = context.isWatching(up.name) || context.isWatching(scaleName) || (context.tape != nil && !up.conv.isFrozen)
            guard unfused else {
                let (weight, bias) = try scaledWeights()
                let y = try conv2d(mixed, weight: weight, bias: bias, options: up.conv.options, residual: x,
                                   activation: activationName == nil ? nil : .relu)
                return context.tap(activationName ?? scaleName, y)
            }
            let sum = context.tap(scaleName, try add(x, try ZooTensor.scale(try up(mixed, context), by: scale)))
            return try activationName.map { context.tap($0, try relu(sum)) } ?? sum
        }

        /// The scaled weight and bias, remade only when the convolution's values changed.
        private func scaledWeights() throws -> (weight: Tensor, bias: Tensor) {
            let sources = [up.conv.weight.value, up.conv.bias!.value]
            if let scaled, zip(scaled.sources, sources).allSatisfy({ $0.isSameValue(as: $1) }) { return (scaled.weight, scaled.bias) }
            let factor = scale
            let weight = try Tensor(shape: sources[0].shape, values: try sources[0].array().map { $0 * factor })
            let bias = try Tensor(shape: sources[1].shape, values: try sources[1].array().map { $0 * factor })
            scaled = (sources, weight, bias)
            return (weight, bias)
        }
    }
}

extension InceptionResNetV2: ModelFamily {
    public static let architectures: [Architecture] = [.inceptionresnetv2]
}

extension Architecture {
    /// InceptionResNetV2 at 299x299 (Keras).
    public static let inceptionresnetv2 = Architecture(
        name: "inceptionresnetv2", summary: "InceptionResNetV2 (Szegedy et al. 2017)", defaultInputSize: 299, flavors: [.keras],
        preprocessing: [.keras: .tf]
    ) { InceptionResNetV2(top: $0.top) }
}
