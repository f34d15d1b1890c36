import ZooTensor
import ZooNN

/// VGG (Simonyan and Zisserman 2014): 3x3 convolutions with biases in five blocks, each block
/// ending in a 2x2 max pool; VGG11, 13, 16 and 19 differ in how many convolutions each block has,
/// and torchvision's `_bn` variants put a batch norm between each convolution and its ReLU.
///
/// Keras applications has VGG16 and VGG19; torchvision has all eight. The two flavours share the
/// base. Their tops differ: Keras flattens the last feature map (so its top needs a fixed input
/// size) into `fc1`, `fc2`, `predictions` without dropout; torchvision pools adaptively to 7x7
/// first and puts dropout after each hidden layer (`classifier.0`, `.3`, `.6`). Keras flattens
/// channels-last: importing Keras's `fc1` permutes its rows into zoo's channel-major flatten
/// order.
///
/// The `_bn` variants exist only in torchvision; their layer list names each convolution's
/// norm and ReLU after the convolution (`block1_conv1`, `block1_conv1_bn`, `block1_conv1_relu`),
/// as a Keras model with those layers would.
public final class VGG: ImageModel {
    /// A VGG variant: its depth and whether it has batch norms.
    public struct Configuration: Sendable, Hashable {
        /// Weight layers (convolutions and dense layers).
        public enum Depth: Int, Sendable, CaseIterable {
            case vgg11 = 11, vgg13 = 13, vgg16 = 16, vgg19 = 19

            /// Convolutions in each of the five blocks.
            var convolutionsPerBlock: [Int] {
                switch self {
                case .vgg11: return [1, 1, 2, 2, 2]
                case .vgg13: return [2, 2, 2, 2, 2]
                case .vgg16: return [2, 2, 3, 3, 3]
                case .vgg19: return [2, 2, 4, 4, 4]
                }
            }
        }

        public var depth: Depth
        public var batchNorm: Bool

        public init(_ depth: Depth, batchNorm: Bool = false) {
            self.depth = depth
            self.batchNorm = batchNorm
        }

        /// The registry name: `vgg16`, `vgg16_bn`.
        public var name: String { "vgg\(depth.rawValue)" + (batchNorm ? "_bn" : "") }
    }

    /// Output channels of each block's convolutions.
    static let blockWidths = [64, 128, 256, 512, 512]

    /// One entry of the base: a convolution with its ReLU (Keras puts the activation inside its
    /// `Conv2D`), the same with a batch norm between them, or a block's closing 2x2 max pool.
    enum Step {
        case convolution(NamedConv)
        case normalizedConvolution(ConvNorm)
        case pool(name: String)
    }

    /// The base in order, names and torchvision keys (`features.0`, `features.2`, ...) stated once.
    let steps: [Step]

    /// - Parameter inputSize: the input height and width the Keras top is built for: Keras
    ///   flattens the whole last feature map, so `fc1`'s width depends on it (224 for the
    ///   ImageNet weights). Unused otherwise.
    public init(_ configuration: Configuration = Configuration(.vgg16), flavor: Flavor, top: Top = .imagenet, inputSize: Int = 224) {
        var steps: [Step] = []
        var channels = 3, index = 0
        for (block, count) in configuration.depth.convolutionsPerBlock.enumerated() {
            let width = Self.blockWidths[block]
            for layer in 0..<count {
                let name = "block\(block + 1)_conv\(layer + 1)"
                // torchvision's `features` holds each convolution's ReLU (and norm) after it.
                if configuration.batchNorm {
                    steps.append(.normalizedConvolution(ConvNorm(
                        Conv2D(channels, width, kernel: 3, padding: .symmetric(1)), BatchNorm(width, momentum: flavor.batchNormMomentum),
                        activation: .relu, names: .init(conv: name, norm: "\(name)_bn", activation: "\(name)_relu"),
                        keys: ("features.\(index)", "features.\(index + 1)"))))
                    index += 3
                } else {
                    steps.append(.convolution(NamedConv(conv: Conv2D(channels, width, kernel: 3, padding: .symmetric(1)), name: name,
                                                        key: "features.\(index)")))
                    index += 2
                }
                channels = width
            }
            steps.append(.pool(name: "block\(block + 1)_pool"))
            index += 1
        }
        self.steps = steps
        super.init(name: configuration.name, flavor: flavor, featureChannels: 512, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        for step in steps {
            switch step {
            case let .convolution(unit): appendLayers(unit.layers)
            case let .normalizedConvolution(unit): appendLayers(unit.layers)
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

    /// torchvision's `features.N` names for the convolutions (and norms).
    public override var children: [(name: String, module: Module)] {
        steps.flatMap { step -> [(name: String, module: Module)] in
            switch step {
            case let .convolution(unit): return unit.children
            case let .normalizedConvolution(unit): return unit.children
            case .pool: return []
            }
        } + (head?.children ?? [])
    }

    /// Every convolution (with its norm and ReLU) and every pool.
    public override var stages: [Stage] {
        [.input] + steps.map { step in
            switch step {
            case let .convolution(unit): return unit.reluStage
            case let .normalizedConvolution(unit):
                return Stage(unit.names.conv, modules: [unit.conv, unit.norm]) { x, context in try unit(x, context) }
            case let .pool(name): return .maxPool(name, Pool2DOptions(kernel: 2))
            }
        }
    }
}

extension VGG: ModelFamily {
    public static let architectures: [Architecture] = [
        .vgg11, .vgg13, .vgg16, .vgg19, .vgg11BatchNorm, .vgg13BatchNorm, .vgg16BatchNorm, .vgg19BatchNorm,
    ]

    static func architecture(_ configuration: Configuration) -> Architecture {
        // Keras applications publishes VGG16 and VGG19 without batch norms; torchvision all eight.
        let keras = !configuration.batchNorm && [.vgg16, .vgg19].contains(configuration.depth)
        return Architecture(
            name: configuration.name,
            summary: "VGG\(configuration.depth.rawValue)\(configuration.batchNorm ? " with batch norm" : "") (Simonyan & Zisserman 2014)",
            defaultInputSize: 224, flavors: keras ? [.keras, .torchvision] : [.torchvision],
            preprocessing: keras ? [.keras: .caffe, .torchvision: .torch] : [.torchvision: .torch]
        ) { request in VGG(configuration, flavor: request.flavor, top: request.top, inputSize: request.inputSize) }
    }
}

extension Architecture {
    /// VGG11 (torchvision).
    public static let vgg11 = VGG.architecture(.init(.vgg11))
    /// VGG13 (torchvision).
    public static let vgg13 = VGG.architecture(.init(.vgg13))
    /// VGG16 in the Keras applications and torchvision graphs.
    public static let vgg16 = VGG.architecture(.init(.vgg16))
    /// VGG19 in the Keras applications and torchvision graphs.
    public static let vgg19 = VGG.architecture(.init(.vgg19))
    /// VGG11 with batch norm (torchvision `vgg11_bn`).
    public static let vgg11BatchNorm = VGG.architecture(.init(.vgg11, batchNorm: true))
    /// VGG13 with batch norm (torchvision `vgg13_bn`).
    public static let vgg13BatchNorm = VGG.architecture(.init(.vgg13, batchNorm: true))
    /// VGG16 with batch norm (torchvision `vgg16_bn`).
    public static let vgg16BatchNorm = VGG.architecture(.init(.vgg16, batchNorm: true))
    /// VGG19 with batch norm (torchvision `vgg19_bn`).
    public static let vgg19BatchNorm = VGG.architecture(.init(.vgg19, batchNorm: true))
}
