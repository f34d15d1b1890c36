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

    let conv1: Conv2D
    let bn1: BatchNorm
    let layer1: [Bottleneck], layer2: [Bottleneck], layer3: [Bottleneck], layer4: [Bottleneck]

    public init(_ depth: Depth, flavor: Flavor, top: Top = .imagenet) {
        let keras = flavor == .keras
        let epsilon: Float = keras ? 1.001e-5 : 1e-5
        // Keras pads with a separate ZeroPadding2D layer; the convolution absorbs it here.
        conv1 = Conv2D(inChannels: 3, outChannels: 64, kernel: [7, 7], options: Conv2DOptions(stride: 2, padding: .symmetric(3)), bias: keras)
        bn1 = BatchNorm(64, epsilon: epsilon, momentum: flavor.batchNormMomentum)
        var stages: [[Bottleneck]] = []
        var channels = 64
        for (stage, count) in depth.blocks.enumerated() {
            let width = 64 << stage
            stages.append((0..<count).map { index in
                defer { channels = width * 4 }
                return Bottleneck(inChannels: channels, width: width, stride: index == 0 && stage > 0 ? 2 : 1,
                                  projection: index == 0, flavor: flavor, epsilon: epsilon)
            })
        }
        (layer1, layer2, layer3, layer4) = (stages[0], stages[1], stages[2], stages[3])
        super.init(name: depth.rawValue, flavor: flavor, featureChannels: 2048, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayer("conv1_pad", .zeroPadding2D)
        appendLayer("conv1_conv", .conv2D, conv1)
        appendLayer("conv1_bn", .batchNormalization, bn1)
        appendLayer("conv1_relu", .activation)
        appendLayer("pool1_pad", .zeroPadding2D)
        appendLayer("pool1_pool", .maxPooling2D)
        for (stage, blocks) in stages.enumerated() {
            for (index, block) in blocks.enumerated() {
                block.name = "conv\(stage + 2)_block\(index + 1)"
                block.layerList.forEach { appendLayer($0.name, $0.kind, $0.module) }
            }
        }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    /// The stem, then every bottleneck block.
    public override var stages: [Stage] {
        [Stage("stem", modules: [conv1, bn1]) { [conv1, bn1] x, context in
            var y = context.tap("input_layer", x)
            try context.tapPadding("conv1_pad", y, top: 3, bottom: 3, left: 3, right: 3)
            y = try context.run(("conv1_conv", "conv1_bn", "conv1_relu"), conv1, bn1, activation: .relu, y)
            // Zero padding before a max pool of non-negative values acts as the pool's own padding.
            try context.tapPadding("pool1_pad", y, top: 1, bottom: 1, left: 1, right: 1)
            return context.tap("pool1_pool", try maxPool2d(y, Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1))))
        }] + (layer1 + layer2 + layer3 + layer4).map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
    }
}

extension ResNet {
    /// A bottleneck block: 1x1 reduce, 3x3, 1x1 expand, plus the shortcut (a 1x1 projection
    /// with batch norm in each stage's first block).
    final class Bottleneck: Module, Layer {
        let conv1: Conv2D, bn1: BatchNorm
        let conv2: Conv2D, bn2: BatchNorm
        let conv3: Conv2D, bn3: BatchNorm
        /// The projection shortcut: `downsample.0` (convolution) and `downsample.1` (batch norm).
        let downsample: [Module]
        /// The Keras name prefix (`conv2_block1`), set by the model.
        var name = ""

        init(inChannels: Int, width: Int, stride: Int, projection: Bool, flavor: Flavor, epsilon: Float) {
            let keras = flavor == .keras
            // v1 (Keras) strides the first 1x1; v1.5 (torchvision) strides the 3x3.
            let (firstStride, middleStride) = keras ? (stride, 1) : (1, stride)
            let momentum = flavor.batchNormMomentum
            conv1 = Conv2D(inChannels, width, kernel: 1, stride: firstStride, bias: keras)
            bn1 = BatchNorm(width, epsilon: epsilon, momentum: momentum)
            conv2 = Conv2D(width, width, kernel: 3, stride: middleStride, padding: .symmetric(1), bias: keras)
            bn2 = BatchNorm(width, epsilon: epsilon, momentum: momentum)
            conv3 = Conv2D(width, width * 4, kernel: 1, bias: keras)
            bn3 = BatchNorm(width * 4, epsilon: epsilon, momentum: momentum)
            downsample = projection
                ? [Conv2D(inChannels, width * 4, kernel: 1, stride: stride, bias: keras),
                   BatchNorm(width * 4, epsilon: epsilon, momentum: momentum)]
                : []
        }

        /// The block's entries in Keras's `model.layers` order (depth-sorted: the shortcut's
        /// layers come after the second 3x3 activation).
        var layerList: [NamedLayer] {
            var list = [
                NamedLayer("\(name)_1_conv", .conv2D, conv1), NamedLayer("\(name)_1_bn", .batchNormalization, bn1),
                NamedLayer("\(name)_1_relu", .activation),
                NamedLayer("\(name)_2_conv", .conv2D, conv2), NamedLayer("\(name)_2_bn", .batchNormalization, bn2),
                NamedLayer("\(name)_2_relu", .activation),
            ]
            if downsample.isEmpty {
                list += [NamedLayer("\(name)_3_conv", .conv2D, conv3), NamedLayer("\(name)_3_bn", .batchNormalization, bn3)]
            } else {
                list += [NamedLayer("\(name)_0_conv", .conv2D, downsample[0]), NamedLayer("\(name)_3_conv", .conv2D, conv3),
                         NamedLayer("\(name)_0_bn", .batchNormalization, downsample[1]),
                         NamedLayer("\(name)_3_bn", .batchNormalization, bn3)]
            }
            return list + [NamedLayer("\(name)_add", .add), NamedLayer("\(name)_out", .activation)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var shortcut = x
            if let conv = downsample.first as? Conv2D, let norm = downsample.last as? BatchNorm {
                shortcut = try context.run(("\(name)_0_conv", "\(name)_0_bn", ""), conv, norm, activation: nil, x)
            }
            var y = try context.run(("\(name)_1_conv", "\(name)_1_bn", "\(name)_1_relu"), conv1, bn1, activation: .relu, x)
            y = try context.run(("\(name)_2_conv", "\(name)_2_bn", "\(name)_2_relu"), conv2, bn2, activation: .relu, y)
            return try context.run(("\(name)_3_conv", "\(name)_3_bn", "\(name)_add", "\(name)_out"), conv3, bn3, residual: shortcut,
                                   activation: .relu, y)
        }
    }
}
