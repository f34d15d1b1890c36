import ZooTensor
import ZooNN

/// SqueezeNet (Iandola et al. 2016) as torchvision builds it (`torchvision.models.squeezenet1_0`
/// and `squeezenet1_1`): a convolution, fire modules (a 1x1 squeeze, then 1x1 and 3x3 expansions
/// concatenated, every convolution with a bias and a ReLU) between ceil-mode max pools, and a
/// classifier of dropout, a 1x1 convolution to the classes with ReLU, and global average pooling.
/// Version 1.1 has a 3x3 stem of 64 channels and pools earlier: 2.4 times less computation for
/// the same accuracy.
///
/// The classifier's 1x1 convolution is the head's pointwise dense step, so a `features` top or a
/// new head replaces it as for any other family. Keras applications has no SqueezeNet; the layer
/// list names the layers as the Keras ports did (`conv1`, `pool1`, `fire2_squeeze1x1`,
/// `fire2_expand1x1`, `fire2_expand3x3`, `fire2_concat`, ..., `conv10`, `avg_pool`).
public final class SqueezeNet: ImageModel {
    public enum Version: String, Sendable, CaseIterable {
        case v1_0 = "1_0", v1_1 = "1_1"
    }

    /// One entry of `features`: the stem convolution with its ReLU, a fire module, or a 3x3
    /// stride-2 max pool in ceil mode.
    enum Step {
        case convolution(NamedConv)
        case fire(Fire)
        case pool(name: String)
    }

    let steps: [Step]

    public init(_ version: Version, top: Top = .imagenet) {
        var steps: [Step] = []
        var channels = 0, fireNumber = 2
        func fire(_ squeeze: Int, _ expand: Int) {
            steps.append(.fire(Fire("fire\(fireNumber)", key: "features.\(steps.count + 1)", inChannels: channels, squeeze: squeeze,
                                    expand: expand)))
            channels = 2 * expand
            fireNumber += 1
        }
        func pool() { steps.append(.pool(name: "pool\(fireNumber - 1)")) }
        // torchvision's `features.0` is the convolution and `features.1` its ReLU; the steps
        // after take one index each.
        switch version {
        case .v1_0:
            steps.append(.convolution(NamedConv(conv: Conv2D(3, 96, kernel: 7, stride: 2), name: "conv1", key: "features.0")))
            channels = 96
            pool()
            fire(16, 64); fire(16, 64); fire(32, 128); pool()
            fire(32, 128); fire(48, 192); fire(48, 192); fire(64, 256); pool()
            fire(64, 256)
        case .v1_1:
            steps.append(.convolution(NamedConv(conv: Conv2D(3, 64, kernel: 3, stride: 2), name: "conv1", key: "features.0")))
            channels = 64
            pool()
            fire(16, 64); fire(16, 64); pool()
            fire(32, 128); fire(32, 128); pool()
            fire(48, 192); fire(48, 192); fire(64, 256); fire(64, 256)
        }
        self.steps = steps
        super.init(name: "squeezenet\(version.rawValue)", flavor: .torchvision, featureChannels: 512, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        for step in steps {
            switch step {
            case let .convolution(unit): appendLayers(unit.layers)
            case let .fire(module): appendLayers(module.layers)
            case let .pool(name): appendLayer(name, .maxPooling2D)
            }
        }
        head = standardHead(top, classifier: [
            .init(.dropout(0.5), name: "dropout"),
            .init(.pointwiseDense(units: top.classes, activation: .relu), name: "conv10", key: "classifier.1"),
            .init(.globalPool(.average), name: "avg_pool"),
        ])
    }

    public override var children: [(name: String, module: Module)] {
        steps.flatMap { step -> [(name: String, module: Module)] in
            switch step {
            case let .convolution(unit): return unit.children
            case let .fire(module): return [(module.key, module)]
            case .pool: return []
            }
        } + (head?.children ?? [])
    }

    public override var stages: [Stage] {
        [.input] + steps.map { step in
            switch step {
            case let .convolution(unit): return unit.reluStage
            case let .fire(module): return Stage(module.name, modules: [module]) { try module($0, $1) }
            case let .pool(name): return .maxPool(name, Pool2DOptions(kernel: 3, stride: 2, ceilMode: true))
            }
        }
    }
}

extension SqueezeNet {
    /// A fire module: 1x1 squeeze with ReLU, then 1x1 and 3x3 expansions with ReLU, concatenated.
    final class Fire: Module, Layer {
        /// The Keras name prefix (`fire2`).
        let name: String
        /// The torchvision key (`features.3`).
        let key: String
        let squeeze, expand1x1, expand3x3: NamedConv

        init(_ name: String, key: String, inChannels: Int, squeeze squeezeChannels: Int, expand: Int) {
            self.name = name
            self.key = key
            squeeze = NamedConv(conv: Conv2D(inChannels, squeezeChannels, kernel: 1), name: "\(name)_squeeze1x1", key: "squeeze")
            expand1x1 = NamedConv(conv: Conv2D(squeezeChannels, expand, kernel: 1), name: "\(name)_expand1x1", key: "expand1x1")
            expand3x3 = NamedConv(conv: Conv2D(squeezeChannels, expand, kernel: 3, padding: .symmetric(1)), name: "\(name)_expand3x3",
                                  key: "expand3x3")
        }

        private var concatName: String { "\(name)_concat" }

        override var children: [(name: String, module: Module)] { squeeze.children + expand1x1.children + expand3x3.children }

        var layers: [NamedLayer] { squeeze.layers + expand1x1.layers + expand3x3.layers + [NamedLayer(concatName, .concatenate)] }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            // The ReLUs sit inside the convolutions, as in a Keras `Conv2D(activation="relu")`.
            func run(_ unit: NamedConv, _ input: Tensor) throws -> Tensor {
                context.tap(unit.name, try unit.conv(input, context, activation: .relu))
            }
            let squeezed = try run(squeeze, x)
            return context.tap(concatName, try concat([try run(expand1x1, squeezed), try run(expand3x3, squeezed)]))
        }
    }
}

extension SqueezeNet: ModelFamily {
    public static let architectures: [Architecture] = [.squeezenet1_0, .squeezenet1_1]

    static func architecture(_ version: Version) -> Architecture {
        Architecture(name: "squeezenet\(version.rawValue)", summary: "SqueezeNet \(version.rawValue.replacingOccurrences(of: "_", with: ".")) (Iandola et al. 2016)",
                     defaultInputSize: 224, flavors: [.torchvision], preprocessing: [.torchvision: .torch]) { SqueezeNet(version, top: $0.top) }
    }
}

extension Architecture {
    /// SqueezeNet 1.0 (torchvision).
    public static let squeezenet1_0 = SqueezeNet.architecture(.v1_0)
    /// SqueezeNet 1.1 (torchvision).
    public static let squeezenet1_1 = SqueezeNet.architecture(.v1_1)
}
