import ZooTensor
import ZooNN

/// AlexNet (Krizhevsky et al. 2012) as torchvision builds it (`torchvision.models.alexnet`, the
/// one-GPU variant of "One weird trick", Krizhevsky 2014): five convolutions with biases and
/// ReLUs, three 3x3 stride-2 max pools, adaptive average pooling to 6x6, and a classifier of
/// dropout, two 4096-wide ReLU layers and the output layer.
///
/// Keras applications has no AlexNet; the layer list names the layers as a Keras model of the
/// same graph would (`conv1` with its ReLU inside, `pool1`, ..., `fc1`, `fc2`, `predictions`).
public final class AlexNet: ImageModel {
    /// One entry of the base: a convolution with its ReLU, or a 3x3 stride-2 max pool.
    enum Step {
        case convolution(NamedConv)
        case pool(name: String)
    }

    /// The base in order: torchvision's `features.0` ... `features.12`.
    let steps: [Step]

    public init(top: Top = .imagenet) {
        func convolution(_ index: Int, _ name: String, _ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1,
                         padding: Int) -> Step {
            .convolution(NamedConv(conv: Conv2D(inChannels, outChannels, kernel: kernel, stride: stride, padding: .symmetric(padding)),
                                   name: name, key: "features.\(index)"))
        }
        steps = [
            convolution(0, "conv1", 3, 64, kernel: 11, stride: 4, padding: 2), .pool(name: "pool1"),
            convolution(3, "conv2", 64, 192, kernel: 5, padding: 2), .pool(name: "pool2"),
            convolution(6, "conv3", 192, 384, kernel: 3, padding: 1),
            convolution(8, "conv4", 384, 256, kernel: 3, padding: 1),
            convolution(10, "conv5", 256, 256, kernel: 3, padding: 1), .pool(name: "pool5"),
        ]
        // The last pool needs a 3x3 map: 63 is the smallest input that gives one.
        super.init(name: "alexnet", flavor: .torchvision, featureChannels: 256, minimumInputSize: 63)

        appendLayer("input_layer", .inputLayer)
        for step in steps {
            switch step {
            case let .convolution(unit): appendLayers(unit.layers)
            case let .pool(name): appendLayer(name, .maxPooling2D)
            }
        }
        head = standardHead(top, classifier: [
            .init(.adaptiveAveragePool(height: 6, width: 6), name: "flatten"),
            .init(.dropout(0.5), name: "dropout"),
            .init(.dense(units: 4096, activation: .relu), name: "fc1", key: "classifier.1"),
            .init(.dropout(0.5), name: "dropout_1"),
            .init(.dense(units: 4096, activation: .relu), name: "fc2", key: "classifier.4"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier.6"),
        ])
    }

    public override var children: [(name: String, module: Module)] {
        steps.flatMap { step -> [(name: String, module: Module)] in
            if case let .convolution(unit) = step { return unit.children }
            return []
        } + (head?.children ?? [])
    }

    /// Every convolution (with its ReLU) and every pool.
    public override var stages: [Stage] {
        [.input] + steps.map { step in
            switch step {
            case let .convolution(unit): return unit.reluStage
            case let .pool(name): return .maxPool(name, Pool2DOptions(kernel: 3, stride: 2))
            }
        }
    }
}

extension AlexNet: ModelFamily {
    public static let architectures: [Architecture] = [.alexnet]
}

extension Architecture {
    /// AlexNet (torchvision).
    public static let alexnet = Architecture(
        name: "alexnet", summary: "AlexNet (Krizhevsky et al. 2012)", defaultInputSize: 224, flavors: [.torchvision],
        preprocessing: [.torchvision: .torch]
    ) { AlexNet(top: $0.top) }
}
