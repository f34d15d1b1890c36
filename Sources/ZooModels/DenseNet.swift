import ZooTensor
import ZooNN

/// DenseNet-BC (Huang et al. 2017): DenseNet121, DenseNet169 and DenseNet201 (growth rate 32, a
/// 64-channel stem), and torchvision's DenseNet161 (growth rate 48, a 96-channel stem); the
/// bottleneck is four times the growth rate wide, each transition halves the channels.
///
/// The two flavours share the graph (pre-activation layers, each concatenating 32 new channels
/// after all earlier ones) and differ only in batch-norm epsilon: 1.001e-5 in Keras, 1e-5 in
/// torchvision. Parameters carry torchvision's names (`features.denseblock1.denselayer1.conv1.weight`);
/// the layer list carries Keras's (`conv2_block1_1_conv`).
public final class DenseNet: ImageModel {
    /// Layers per dense block.
    public enum Depth: String, Sendable, CaseIterable {
        case densenet121, densenet161, densenet169, densenet201

        public var blocks: [Int] {
            switch self {
            case .densenet121: return [6, 12, 24, 16]
            case .densenet161: return [6, 12, 36, 24]
            case .densenet169: return [6, 12, 32, 32]
            case .densenet201: return [6, 12, 48, 32]
            }
        }

        /// Channels each dense layer adds.
        public var growthRate: Int { self == .densenet161 ? 48 : 32 }
        /// Channels of the stem's convolution.
        var stemChannels: Int { 2 * growthRate }
        /// Channels of each dense layer's 1x1 bottleneck (torchvision's `bn_size` 4).
        var bottleneckWidth: Int { 4 * growthRate }
    }

    let stem: ConvNorm
    let denseblocks: [[DenseLayer]]
    let transitions: [Transition]
    let final: NormReLU

    public init(_ depth: Depth, flavor: Flavor, top: Top = .imagenet) {
        let epsilon: Float = flavor == .keras ? 1.001e-5 : 1e-5
        let momentum = flavor.batchNormMomentum
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        let stemChannels = depth.stemChannels
        stem = ConvNorm(Conv2D(inChannels: 3, outChannels: stemChannels, kernel: [7, 7], options: Conv2DOptions(stride: 2, padding: .symmetric(3)),
                               bias: false),
                        BatchNorm(stemChannels, epsilon: epsilon, momentum: momentum), activation: .relu,
                        names: ConvNorm.names("conv1"), keys: ("features.conv0", "features.norm0"))
        var channels = stemChannels
        var blocks: [[DenseLayer]] = [], transitions: [Transition] = []
        for (index, count) in depth.blocks.enumerated() {
            let chain = DenseChain()
            blocks.append((0..<count).map { layer in
                DenseLayer("conv\(index + 2)_block\(layer + 1)", inChannels: channels + layer * depth.growthRate,
                           bottleneckWidth: depth.bottleneckWidth, growthRate: depth.growthRate, epsilon: epsilon, momentum: momentum,
                           chain: chain, isLast: layer == count - 1)
            })
            channels += count * depth.growthRate
            if index < depth.blocks.count - 1 {
                transitions.append(Transition("pool\(index + 2)", inChannels: channels, epsilon: epsilon, momentum: momentum))
                channels /= 2
            }
        }
        denseblocks = blocks
        self.transitions = transitions
        final = NormReLU(BatchNorm(channels, epsilon: epsilon, momentum: momentum), names: ("bn", "relu"), key: "features.norm5")
        super.init(name: depth.rawValue, flavor: flavor, featureChannels: channels, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("zero_padding2d", .zeroPadding2D)
        appendLayers(stem.layers)
        appendLayer("zero_padding2d_1", .zeroPadding2D)
        appendLayer("pool1", .maxPooling2D)
        for (index, block) in blocks.enumerated() {
            block.forEach { appendLayers($0.layers) }
            if index < transitions.count { appendLayers(transitions[index].layers) }
        }
        appendLayers(final.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier"),
        ])
    }

    /// torchvision's names: everything but the classifier sits under `features`.
    public override var children: [(name: String, module: Module)] {
        var features = stem.children
        for (index, block) in denseblocks.enumerated() {
            for (position, layer) in block.enumerated() {
                features.append(("features.denseblock\(index + 1).denselayer\(position + 1)", layer))
            }
            if index < transitions.count { features.append(("features.transition\(index + 1)", transitions[index])) }
        }
        return features + final.children + (head?.children ?? [])
    }

    /// The stem, every dense layer (with its concatenation), every transition, and the final
    /// batch norm and ReLU. The tensor between two dense layers is the whole concatenation, so a
    /// cut anywhere carries every feature map the later layers use.
    public override var stages: [Stage] {
        var result = [Stage("stem", modules: [stem.conv, stem.norm]) { [stem] x, context in
            let y = context.tap("input_layer", x)
            try context.tapPadding("zero_padding2d", y, top: 3, bottom: 3, left: 3, right: 3)
            let activated = try stem(y, context)
            // Zero padding before a max pool of non-negative values acts as the pool's own padding.
            try context.tapPadding("zero_padding2d_1", activated, top: 1, bottom: 1, left: 1, right: 1)
            return context.tap("pool1", try maxPool2d(activated, Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1))))
        }]
        for (index, block) in denseblocks.enumerated() {
            result += block.map { layer in Stage(layer.name, modules: [layer]) { try layer($0, $1) } }
            if index < transitions.count {
                let transition = transitions[index]
                result.append(Stage(transition.name, modules: [transition]) { try transition($0, $1) })
            }
        }
        result.append(Stage("final", modules: [final.norm]) { [final] x, context in try final(x, context) })
        return result
    }
}

extension DenseNet {
    /// What a training pass hands from one dense layer to the next in a block: the layer's
    /// output (the concatenation so far) and the feature maps it is made of.
    final class DenseChain {
        private var latest: (output: Tensor, pieces: [Tensor])?

        /// The feature maps `x` concatenates: the ones handed over with it, or `x` itself when
        /// it did not come from the previous layer (the block's first layer, a cached trunk).
        func pieces(of x: Tensor) -> [Tensor] {
            guard let latest, latest.output.isSameValue(as: x) else { return [x] }
            return latest.pieces
        }

        func hand(_ output: Tensor, pieces: [Tensor]?) { latest = pieces.map { (output, $0) } }
    }

    /// BN-ReLU-1x1 conv (the bottleneck), BN-ReLU-3x3 conv (the growth), concatenated after the
    /// input.
    final class DenseLayer: Module, Layer {
        /// The Keras name prefix (`conv2_block1`).
        let name: String
        /// torchvision's `norm1`, then `conv1` with `norm2`, then `conv2`.
        let preactivation: NormReLU
        let bottleneck: ConvNorm
        let growth: NamedConv
        private let chain: DenseChain
        private let isLast: Bool
        /// The names of ``layers``, looked up on every training pass.
        private var layerNames: [String] = []

        override var children: [(name: String, module: Module)] {
            preactivation.children + bottleneck.children + growth.children
        }

        init(_ name: String, inChannels: Int, bottleneckWidth: Int, growthRate: Int, epsilon: Float, momentum: BatchNormMomentum,
             chain: DenseChain, isLast: Bool) {
            self.name = name
            preactivation = NormReLU(BatchNorm(inChannels, epsilon: epsilon, momentum: momentum), prefix: "\(name)_0", key: "norm1")
            bottleneck = ConvNorm(Conv2D(inChannels, bottleneckWidth, kernel: 1, bias: false),
                                  BatchNorm(bottleneckWidth, epsilon: epsilon, momentum: momentum), activation: .relu,
                                  names: ConvNorm.names("\(name)_1"), keys: ("conv1", "norm2"))
            growth = NamedConv(conv: Conv2D(bottleneckWidth, growthRate, kernel: 3, padding: .symmetric(1), bias: false),
                               name: "\(name)_2_conv", key: "conv2")
            self.chain = chain
            self.isLast = isLast
            super.init()
            layerNames = layers.map(\.name)
        }

        private var concatName: String { "\(name)_concat" }

        /// The layer's entries of the layer list.
        var layers: [NamedLayer] {
            preactivation.layers + bottleneck.layers + growth.layers + [NamedLayer(concatName, .concatenate)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            if context.tape != nil, !isFrozen, !layerNames.contains(where: context.isWatching) {
                return try memoryEfficientTraining(x, context)
            }
            let y = try growth(try bottleneck(try preactivation(x, context), context), context)
            return context.tap(concatName, try concat([x, y]))
        }

        /// The same layer for a training pass: the first batch norm, ReLU and convolution keep
        /// only the block's separate feature maps for backward (see ``concatNormReLUConv``),
        /// which this layer hands on to the next with its output.
        private func memoryEfficientTraining(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let (norm1, conv1, norm2) = (preactivation.norm, bottleneck.conv, bottleneck.norm)
            let pieces = chain.pieces(of: x)
            let fixed = norm1.usesFixedStatistics(context)
            let (reduced, mean, variance) = try concatNormReLUConv(
                x, pieces: pieces, scale: norm1.scale(context), shift: context.value(norm1.bias),
                statistics: fixed ? (norm1.runningMean.value, norm1.runningVariance.value) : nil, epsilon: norm1.epsilon,
                weight: context.value(conv1.weight), options: conv1.options)
            if let mean, let variance {
                try norm1.updateRunningStatistics(batchMean: mean, batchVariance: variance, count: x.elementCount / x.shape[1])
            }
            let y = try growth.conv(try norm2(reduced, context, relu: true), context)
            let output = try concat([x, y])
            chain.hand(output, pieces: isLast ? nil : pieces + [y])
            return output
        }
    }

    /// BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling.
    final class Transition: Module, Layer {
        /// The Keras name prefix (`pool2`).
        let name: String
        let preactivation: NormReLU
        let reduction: NamedConv

        init(_ name: String, inChannels: Int, epsilon: Float, momentum: BatchNormMomentum) {
            self.name = name
            preactivation = NormReLU(BatchNorm(inChannels, epsilon: epsilon, momentum: momentum), prefix: name, key: "norm")
            reduction = NamedConv(conv: Conv2D(inChannels, inChannels / 2, kernel: 1, bias: false), name: "\(name)_conv", key: "conv")
        }

        private var poolName: String { "\(name)_pool" }

        override var children: [(name: String, module: Module)] { preactivation.children + reduction.children }

        var layers: [NamedLayer] { preactivation.layers + reduction.layers + [NamedLayer(poolName, .averagePooling2D)] }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let y = try reduction(try preactivation(x, context), context)
            return context.tap(poolName, try avgPool2d(y, Pool2DOptions(kernel: 2)))
        }
    }
}

extension DenseNet: ModelFamily {
    public static let architectures: [Architecture] = [.densenet121, .densenet161, .densenet169, .densenet201]

    static func architecture(_ depth: Depth, summary: String) -> Architecture {
        // Keras applications has no DenseNet161.
        let keras = depth != .densenet161
        return Architecture(name: depth.rawValue, summary: summary, defaultInputSize: 224, flavors: keras ? [.keras, .torchvision] : [.torchvision],
                            preprocessing: keras ? [.keras: .torch, .torchvision: .torch] : [.torchvision: .torch]) {
            DenseNet(depth, flavor: $0.flavor, top: $0.top)
        }
    }
}

extension Architecture {
    public static let densenet121 = DenseNet.architecture(.densenet121, summary: "DenseNet121 (Huang et al. 2017)")
    /// DenseNet161 (torchvision).
    public static let densenet161 = DenseNet.architecture(.densenet161, summary: "DenseNet161 (Huang et al. 2017)")
    public static let densenet169 = DenseNet.architecture(.densenet169, summary: "DenseNet169 (Huang et al. 2017)")
    public static let densenet201 = DenseNet.architecture(.densenet201, summary: "DenseNet201 (Huang et al. 2017)")
}
