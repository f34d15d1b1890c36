import ZooTensor
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

    /// One entry of the base: a convolution with its ReLU (Keras puts the activation inside its
    /// `Conv2D`), or a block's closing 2x2 max pool.
    enum Step {
        case convolution(NamedConv)
        case pool(name: String)
    }

    /// The base in order, names and torchvision keys (`features.0`, `features.2`, ...) stated once.
    let steps: [Step]

    /// - Parameter inputSize: the input height and width the Keras top is built for: Keras
    ///   flattens the whole last feature map, so `fc1`'s width depends on it (224 for the
    ///   ImageNet weights). Unused otherwise.
    public init(flavor: Flavor, top: Top = .imagenet, inputSize: Int = 224) {
        var steps: [Step] = []
        var channels = 3, index = 0
        for (block, widths) in Self.blocks.enumerated() {
            for (layer, width) in widths.enumerated() {
                steps.append(.convolution(NamedConv(conv: Conv2D(channels, width, kernel: 3, padding: .symmetric(1)),
                                                    name: "block\(block + 1)_conv\(layer + 1)", key: "features.\(index)")))
                // torchvision's `features` holds each convolution's ReLU after it.
                index += 2
                channels = width
            }
            steps.append(.pool(name: "block\(block + 1)_pool"))
            index += 1
        }
        self.steps = steps
        super.init(name: "vgg16", flavor: flavor, featureChannels: 512, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        for step in steps {
            switch step {
            case let .convolution(unit): appendLayers(unit.layers)
            case let .pool(name): appendLayer(name, .maxPooling2D)
            }
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
        steps.flatMap { step -> [(name: String, module: Module)] in
            if case let .convolution(unit) = step { return unit.children }
            return []
        } + (head?.children ?? [])
    }

    /// Every convolution (with its ReLU) and every pool.
    public override var stages: [Stage] {
        [Stage("input", modules: []) { x, context in context.tap("input_layer", x) }] + steps.map { step in
            switch step {
            case let .convolution(unit):
                return Stage(unit.name, modules: [unit.conv]) { x, context in
                    context.tap(unit.name, try unit.conv(x, context, activation: .relu))
                }
            case let .pool(name):
                return Stage(name, modules: []) { x, context in context.tap(name, try maxPool2d(x, Pool2DOptions(kernel: 2))) }
            }
        }
    }
}

extension VGG: ModelFamily {
    public static let architectures: [Architecture] = [.vgg16]
}

extension Architecture {
    /// VGG16 in the Keras applications and torchvision graphs.
    public static let vgg16 = Architecture(
        name: "vgg16", summary: "VGG16 (Simonyan & Zisserman 2014)", defaultInputSize: 224,
        preprocessing: [.keras: .caffe, .torchvision: .torch]
    ) { request in VGG(flavor: request.flavor, top: request.top, inputSize: request.inputSize) }
}
