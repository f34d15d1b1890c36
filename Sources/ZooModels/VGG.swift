import ZooNN

/// VGG16 (Simonyan and Zisserman 2014): thirteen 3x3 convolutions with biases in five blocks,
/// each block ending in a 2x2 max pool.
///
/// The two flavours share the base. Their tops differ: Keras flattens the last feature map
/// (so its top needs a fixed input size) into `fc1`, `fc2`, `predictions` without dropout;
/// torchvision pools adaptively to 7x7 first and puts dropout after each hidden layer
/// (`classifier.0`, `.3`, `.6`). Keras flattens channels-last: importing Keras's `fc1`
/// permutes its rows into zoo's channel-major flatten order.
public final class VGG: ImageModel {
    /// Output channels of each block's convolutions.
    static let blocks = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]

    /// The convolutions by torchvision index in `features` (0, 2, 5, 7, 10, ...).
    let features: [Conv2D]
    /// torchvision's index in `features` of each convolution.
    private let featureIndices: [Int]

    /// - Parameter inputSize: the input height and width the Keras top is built for: Keras
    ///   flattens the whole last feature map, so `fc1`'s width depends on it (224 for the
    ///   ImageNet weights). Unused otherwise.
    public init(flavor: Flavor, top: Top = .imagenet, inputSize: Int = 224) {
        var convolutions: [Conv2D] = [], indices: [Int] = []
        var channels = 3, index = 0
        for block in Self.blocks {
            for width in block {
                convolutions.append(Conv2D(channels, width, kernel: 3, padding: .symmetric(1)))
                indices.append(index)
                index += 2
                channels = width
            }
            index += 1
        }
        features = convolutions
        featureIndices = indices
        super.init(name: "vgg16", flavor: flavor, featureChannels: 512, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        var position = 0
        for (block, widths) in Self.blocks.enumerated() {
            for layer in widths.indices {
                appendLayer("block\(block + 1)_conv\(layer + 1)", .conv2D, features[position])
                position += 1
            }
            appendLayer("block\(block + 1)_pool", .maxPooling2D)
        }
        let classes = top.classes
        let classifier: [ClassificationHead.NamedStep] = flavor == .keras
            ? [.init(.flatten, name: "flatten"),
               .init(.dense(units: 4096, activation: .relu), name: "fc1", key: "classifier.0"),
               .init(.dense(units: 4096, activation: .relu), name: "fc2", key: "classifier.3"),
               .init(.dense(units: classes, activation: nil), name: "predictions", key: "classifier.6")]
            : [.init(.adaptiveAveragePool(height: 7, width: 7), name: "flatten"),
               .init(.dense(units: 4096, activation: .relu), name: "fc1", key: "classifier.0"),
               .init(.dropout(0.5), name: "dropout"),
               .init(.dense(units: 4096, activation: .relu), name: "fc2", key: "classifier.3"),
               .init(.dropout(0.5), name: "dropout_1"),
               .init(.dense(units: classes, activation: nil), name: "predictions", key: "classifier.6")]
        if case .classifier = top {
            let cells = flavor == .keras ? (inputSize / 32) * (inputSize / 32) : 1
            head = ClassificationHead(classifier, inputFeatures: 512 * cells)
        } else {
            head = standardHead(top, classifier: [])
        }
    }

    /// torchvision's `features.N` names for the convolutions.
    public override var children: [(name: String, module: Module)] {
        zip(featureIndices, features).map { ("features.\($0.0)", $0.1 as Module) } + (head?.children ?? [])
    }

    /// Every convolution (with its ReLU) and every pool.
    public override var stages: [Stage] {
        var result = [Stage("input", modules: []) { x, context in context.tap("input_layer", x) }]
        var position = 0
        for (block, widths) in Self.blocks.enumerated() {
            for layer in widths.indices {
                let conv = features[position], name = "block\(block + 1)_conv\(layer + 1)"
                result.append(Stage(name, modules: [conv]) { x, context in context.tap(name, try conv(x, context, activation: .relu)) })
                position += 1
            }
            let name = "block\(block + 1)_pool"
            result.append(Stage(name, modules: []) { x, context in context.tap(name, try maxPool2d(x, Pool2DOptions(kernel: 2))) })
        }
        return result
    }
}
