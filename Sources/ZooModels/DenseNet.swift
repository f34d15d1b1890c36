import ZooNN

/// DenseNet-BC (Huang et al. 2017): DenseNet121, DenseNet169 and DenseNet201, growth rate 32,
/// bottleneck width 128, compression 0.5.
///
/// The two flavours share the graph (pre-activation layers, each concatenating 32 new channels
/// after all earlier ones) and differ only in batch-norm epsilon: 1.001e-5 in Keras, 1e-5 in
/// torchvision. Parameters carry torchvision's names (`features.denseblock1.denselayer1.conv1.weight`);
/// the layer list carries Keras's (`conv2_block1_1_conv`).
public final class DenseNet: ImageModel {
    /// Layers per dense block.
    public enum Depth: String, Sendable, CaseIterable {
        case densenet121, densenet169, densenet201

        public var blocks: [Int] {
            switch self {
            case .densenet121: return [6, 12, 24, 16]
            case .densenet169: return [6, 12, 32, 32]
            case .densenet201: return [6, 12, 48, 32]
            }
        }
    }

    static let growthRate = 32
    static let bottleneckWidth = 128

    let conv0: Conv2D
    let norm0: BatchNorm
    let denseblocks: [[DenseLayer]]
    let transitions: [Transition]
    let norm5: BatchNorm

    public init(_ depth: Depth, flavor: Flavor, top: Top = .imagenet) {
        let epsilon: Float = flavor == .keras ? 1.001e-5 : 1e-5
        let momentum = flavor.batchNormMomentum
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        conv0 = Conv2D(inChannels: 3, outChannels: 64, kernel: [7, 7], options: Conv2DOptions(stride: 2, padding: .symmetric(3)), bias: false)
        norm0 = BatchNorm(64, epsilon: epsilon, momentum: momentum)
        var channels = 64
        var blocks: [[DenseLayer]] = [], transitions: [Transition] = []
        for (index, count) in depth.blocks.enumerated() {
            let chain = DenseChain()
            blocks.append((0..<count).map { layer in
                DenseLayer(inChannels: channels + layer * Self.growthRate, epsilon: epsilon, momentum: momentum, chain: chain,
                           isLast: layer == count - 1)
            })
            channels += count * Self.growthRate
            if index < depth.blocks.count - 1 {
                transitions.append(Transition(inChannels: channels, epsilon: epsilon, momentum: momentum))
                channels /= 2
            }
        }
        denseblocks = blocks
        self.transitions = transitions
        norm5 = BatchNorm(channels, epsilon: epsilon, momentum: momentum)
        super.init(name: depth.rawValue, flavor: flavor, featureChannels: channels, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("zero_padding2d", .zeroPadding2D)
        appendLayer("conv1_conv", .conv2D, conv0)
        appendLayer("conv1_bn", .batchNormalization, norm0)
        appendLayer("conv1_relu", .activation)
        appendLayer("zero_padding2d_1", .zeroPadding2D)
        appendLayer("pool1", .maxPooling2D)
        for (index, block) in blocks.enumerated() {
            for (position, layer) in block.enumerated() {
                layer.name = "conv\(index + 2)_block\(position + 1)"
                appendLayer("\(layer.name)_0_bn", .batchNormalization, layer.norm1)
                appendLayer("\(layer.name)_0_relu", .activation)
                appendLayer("\(layer.name)_1_conv", .conv2D, layer.conv1)
                appendLayer("\(layer.name)_1_bn", .batchNormalization, layer.norm2)
                appendLayer("\(layer.name)_1_relu", .activation)
                appendLayer("\(layer.name)_2_conv", .conv2D, layer.conv2)
                appendLayer("\(layer.name)_concat", .concatenate)
            }
            if index < transitions.count {
                let transition = transitions[index]
                transition.name = "pool\(index + 2)"
                appendLayer("\(transition.name)_bn", .batchNormalization, transition.norm)
                appendLayer("\(transition.name)_relu", .activation)
                appendLayer("\(transition.name)_conv", .conv2D, transition.conv)
                appendLayer("\(transition.name)_pool", .averagePooling2D)
            }
        }
        appendLayer("bn", .batchNormalization, norm5)
        appendLayer("relu", .activation)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier"),
        ])
    }

    /// torchvision's names: everything but the classifier sits under `features`.
    public override var children: [(name: String, module: Module)] {
        var features: [(name: String, module: Module)] = [("features.conv0", conv0), ("features.norm0", norm0)]
        for (index, block) in denseblocks.enumerated() {
            for (position, layer) in block.enumerated() {
                features.append(("features.denseblock\(index + 1).denselayer\(position + 1)", layer))
            }
            if index < transitions.count { features.append(("features.transition\(index + 1)", transitions[index])) }
        }
        features.append(("features.norm5", norm5))
        return features + (head?.children ?? [])
    }

    /// The stem, every dense layer (with its concatenation), every transition, and the final
    /// batch norm and ReLU. The tensor between two dense layers is the whole concatenation, so a
    /// cut anywhere carries every feature map the later layers use.
    public override var stages: [Stage] {
        var result = [Stage("stem", modules: [conv0, norm0]) { [conv0, norm0] x, context in
            var y = context.tap("input_layer", x)
            try context.tapPadding("zero_padding2d", y, top: 3, bottom: 3, left: 3, right: 3)
            y = try context.run(("conv1_conv", "conv1_bn", "conv1_relu"), conv0, norm0, activation: .relu, y)
            // Zero padding before a max pool of non-negative values acts as the pool's own padding.
            try context.tapPadding("zero_padding2d_1", y, top: 1, bottom: 1, left: 1, right: 1)
            return context.tap("pool1", try maxPool2d(y, Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1))))
        }]
        for (index, block) in denseblocks.enumerated() {
            result += block.map { layer in Stage(layer.name, modules: [layer]) { try layer($0, $1) } }
            if index < transitions.count {
                let transition = transitions[index]
                result.append(Stage(transition.name, modules: [transition]) { try transition($0, $1) })
            }
        }
        result.append(Stage("final", modules: [norm5]) { [norm5] x, context in
            try context.runNormReLU(("bn", "relu"), norm5, x)
        })
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

    /// BN-ReLU-1x1 conv (128 channels), BN-ReLU-3x3 conv (32 channels), concatenated after
    /// the input.
    final class DenseLayer: Module, Layer {
        let norm1: BatchNorm, conv1: Conv2D
        let norm2: BatchNorm, conv2: Conv2D
        /// The Keras name prefix (`conv2_block1`), set by the model.
        var name = "" {
            didSet { layerNames = ["0_bn", "0_relu", "1_conv", "1_bn", "1_relu", "2_conv", "concat"].map { "\(name)_\($0)" } }
        }
        private var layerNames: [String] = []
        private let chain: DenseChain
        private let isLast: Bool

        override var children: [(name: String, module: Module)] {
            [("norm1", norm1), ("conv1", conv1), ("norm2", norm2), ("conv2", conv2)]
        }

        init(inChannels: Int, epsilon: Float, momentum: BatchNormMomentum, chain: DenseChain, isLast: Bool) {
            norm1 = BatchNorm(inChannels, epsilon: epsilon, momentum: momentum)
            conv1 = Conv2D(inChannels, DenseNet.bottleneckWidth, kernel: 1, bias: false)
            norm2 = BatchNorm(DenseNet.bottleneckWidth, epsilon: epsilon, momentum: momentum)
            conv2 = Conv2D(DenseNet.bottleneckWidth, DenseNet.growthRate, kernel: 3, padding: .symmetric(1), bias: false)
            self.chain = chain
            self.isLast = isLast
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            if context.tape != nil, !isFrozen, !layerNames.contains(where: context.isWatching) {
                return try memoryEfficientTraining(x, context)
            }
            var y = try context.runNormReLU(("\(name)_0_bn", "\(name)_0_relu"), norm1, x)
            y = try context.run(("\(name)_1_conv", "\(name)_1_bn", "\(name)_1_relu"), conv1, norm2, activation: .relu, y)
            y = try context.run("\(name)_2_conv", conv2, y)
            return context.tap("\(name)_concat", try concat([x, y]))
        }

        /// The same layer for a training pass: the first batch norm, ReLU and convolution keep
        /// only the block's separate feature maps for backward (see ``concatNormReLUConv``),
        /// which this layer hands on to the next with its output.
        private func memoryEfficientTraining(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let pieces = chain.pieces(of: x)
            let fixed = norm1.usesFixedStatistics(context)
            let (bottleneck, mean, variance) = try concatNormReLUConv(
                x, pieces: pieces, scale: norm1.scale(context), shift: context.value(norm1.bias),
                statistics: fixed ? (norm1.runningMean.value, norm1.runningVariance.value) : nil, epsilon: norm1.epsilon,
                weight: context.value(conv1.weight), options: conv1.options)
            if let mean, let variance {
                try norm1.updateRunningStatistics(batchMean: mean, batchVariance: variance, count: x.elementCount / x.shape[1])
            }
            let y = try conv2(try norm2(bottleneck, context, relu: true), context)
            let output = try concat([x, y])
            chain.hand(output, pieces: isLast ? nil : pieces + [y])
            return output
        }
    }

    /// BN-ReLU-1x1 conv halving the channels, then 2x2 average pooling.
    final class Transition: Module, Layer {
        let norm: BatchNorm
        let conv: Conv2D
        /// The Keras name prefix (`pool2`), set by the model.
        var name = ""

        init(inChannels: Int, epsilon: Float, momentum: BatchNormMomentum) {
            norm = BatchNorm(inChannels, epsilon: epsilon, momentum: momentum)
            conv = Conv2D(inChannels, inChannels / 2, kernel: 1, bias: false)
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = try context.runNormReLU(("\(name)_bn", "\(name)_relu"), norm, x)
            y = try context.run("\(name)_conv", conv, y)
            return context.tap("\(name)_pool", try avgPool2d(y, Pool2DOptions(kernel: 2)))
        }
    }
}
