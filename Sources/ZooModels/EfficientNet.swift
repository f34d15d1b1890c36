import ZooTensor
import ZooNN

/// EfficientNet B0-B7 (Tan and Le 2019): a stem, seven stages of inverted residual blocks with
/// squeeze-and-excitation (MBConv: 1x1 expansion, depthwise 3x3 or 5x5, SE, linear 1x1
/// projection, a residual sum with stochastic depth in training), a last 1x1 convolution,
/// global average pooling, dropout and the classifier; SiLU throughout. Each variant scales
/// width and depth of B0 by its coefficients (channels rounded to multiples of 8, repeats
/// rounded up), and the stochastic-depth rate grows linearly from 0 to 0.2 over the blocks.
///
/// - keras flavour: `keras.applications.EfficientNetB0` ... `B7`. The model takes raw 0-255
///   pixels and normalizes them itself: `Rescaling(1/255)`, then `Normalization` with the
///   weights' `mean` and `variance` (so the preprocessing is `none`), and for the published
///   ImageNet weights Keras adds a `Rescaling` by `1/sqrt(std)` per channel, which
///   ``adoptPublishedWeightSettings()`` turns on (it has no weights and is not in the layer list
///   of a model built without them). Stride-2 layers pad TensorFlow's way from the actual input
///   size; batch norm epsilon 1e-3.
/// - torchvision flavour: `torchvision.models.efficientnet_b0` ... `b7`: symmetric padding,
///   ImageNet mean/std preprocessing outside the model; batch norm epsilon 1e-5 and momentum 0.1
///   for B0-B4, 1e-3 and 0.01 for B5-B7, as torchvision builds them.
///
/// The default input size is Keras's; torchvision's B2 weights were trained at 288, not 260.
public final class EfficientNet: ImageModel {
    /// B0 ... B7: width and depth coefficients, Keras's input size, and the dropout before the
    /// classifier.
    public enum Variant: Int, Sendable, CaseIterable {
        case b0, b1, b2, b3, b4, b5, b6, b7

        var coefficients: (width: Double, depth: Double, size: Int, dropout: Float) {
            switch self {
            case .b0: return (1.0, 1.0, 224, 0.2)
            case .b1: return (1.0, 1.1, 240, 0.2)
            case .b2: return (1.1, 1.2, 260, 0.3)
            case .b3: return (1.2, 1.4, 300, 0.3)
            case .b4: return (1.4, 1.8, 380, 0.4)
            case .b5: return (1.6, 2.2, 456, 0.4)
            case .b6: return (1.8, 2.6, 528, 0.5)
            case .b7: return (2.0, 3.1, 600, 0.5)
            }
        }

        public var name: String { "efficientnet\(String(describing: self))" }
    }

    /// B0's stages: expansion, kernel, first stride, input and output channels, repeats.
    static let stages: [(expansion: Int, kernel: Int, stride: Int, input: Int, output: Int, repeats: Int)] = [
        (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
        (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
    ]
    /// The stochastic-depth rate of the last block in both frameworks (Keras's
    /// `drop_connect_rate`, torchvision's `stochastic_depth_prob`).
    public static let defaultStochasticDepthRate = 0.2

    let inputNormalization: InputNormalization?
    let stem: ConvNorm
    let blocks: [[MBConv]]
    let last: ConvNorm

    /// - Parameter stochasticDepthRate: the rate at which training drops the last block's residual
    ///   branch; earlier blocks' rates grow linearly from 0 to it. 0 turns stochastic depth off.
    public init(_ variant: Variant, flavor: Flavor, top: Top = .imagenet, stochasticDepthRate: Double = defaultStochasticDepthRate) {
        let (widthCoefficient, depthCoefficient, _, dropout) = variant.coefficients
        let keras = flavor == .keras
        let late = variant.rawValue >= Variant.b5.rawValue
        let epsilon: Float = keras || late ? 1e-3 : 1e-5
        let momentum: BatchNormMomentum = keras ? .keras(momentum: 0.99) : .pytorch(momentum: late ? 0.01 : 0.1)
        func width(_ channels: Int) -> Int { MobileNetV2.divisible(Double(channels) * widthCoefficient) }
        func unit(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, groups: Int = 1, activation: Bool, names: ConvNorm.Names,
                  keys: (String, String)) -> ConvNorm {
            ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups, bias: false),
                     BatchNorm(output, epsilon: epsilon, momentum: momentum), activation: activation ? .silu : nil, names: names, keys: keys,
                     convKind: groups > 1 ? .depthwiseConv2D : .conv2D)
        }
        inputNormalization = keras ? InputNormalization() : nil
        let stemChannels = width(32)
        stem = unit(3, stemChannels, kernel: 3, stride: 2, activation: true,
                    names: .init(conv: "stem_conv", norm: "stem_bn", activation: "stem_activation"), keys: ("features.0.0", "features.0.1"))
        let repeats = Self.stages.map { Int((Double($0.repeats) * depthCoefficient).rounded(.up)) }
        let total = Double(repeats.reduce(0, +))
        var index = 0
        var blocks: [[MBConv]] = []
        for (stageIndex, stage) in Self.stages.enumerated() {
            blocks.append((0..<repeats[stageIndex]).map { repeatIndex in
                defer { index += 1 }
                // Keras: `block1a_`, `block1b_`, ...
                let letter = String(UnicodeScalar(UInt8(97 + repeatIndex)))
                return MBConv("block\(stageIndex + 1)\(letter)_", inChannels: width(repeatIndex == 0 ? stage.input : stage.output),
                              outChannels: width(stage.output), kernel: stage.kernel, stride: repeatIndex == 0 ? stage.stride : 1,
                              expansion: stage.expansion, dropRate: Float(stochasticDepthRate * Double(index) / total),
                              flavor: flavor, unit: unit)
            })
        }
        self.blocks = blocks
        let lastChannels = width(1280)
        last = unit(width(320), lastChannels, kernel: 1, activation: true,
                    names: .init(conv: "top_conv", norm: "top_bn", activation: "top_activation"), keys: ("features.8.0", "features.8.1"))
        super.init(name: variant.name, flavor: flavor, featureChannels: lastChannels, minimumInputSize: 32)

        // Both flavours list Keras's layers (so `--unfreeze` counts alike); in torchvision's the
        // input normalization and the paddings are no-ops, the normalization done outside.
        appendLayer("input_layer", .inputLayer)
        appendLayer("rescaling", .rescaling)
        appendLayer("normalization", .normalization, inputNormalization)
        appendLayer("stem_conv_pad", .zeroPadding2D)
        appendLayers(stem.layers)
        blocks.joined().forEach { appendLayers($0.layers) }
        appendLayers(last.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"), .init(.dropout(dropout), name: "top_dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier.1"),
        ])
    }

    /// Keras adds a rescaling by `1/sqrt(std)` when it builds the model for its published
    /// ImageNet weights.
    public override func adoptPublishedWeightSettings() {
        inputNormalization?.publishedWeightRescaling = true
    }

    /// torchvision's names: `features.0` (stem), `features.1` ... `features.7` (stages, each
    /// block `features.1.0`, ...), `features.8` (last 1x1), `classifier.1`.
    public override var children: [(name: String, module: Module)] {
        var result = (inputNormalization.map { [("normalization", $0 as Module)] } ?? []) + stem.children
        for (index, stage) in blocks.enumerated() {
            result += stage.enumerated().map { ("features.\(index + 1).\($0.offset)", $0.element as Module) }
        }
        return result + last.children + (head?.children ?? [])
    }

    public override var stages: [Stage] {
        let keras = flavor == .keras
        return [Stage("stem", modules: [stem.conv, stem.norm] + (inputNormalization.map { [$0] } ?? [])) {
            [stem, inputNormalization] x, context in
            var y = context.tap("input_layer", x)
            if let inputNormalization {
                y = try inputNormalization(y, context)
            } else {
                y = context.tap("normalization", context.tap("rescaling", y))
            }
            let padding = keras ? sameStridedPadding(y, kernel: 3) : .symmetric(1)
            if case let .explicit(top, bottom, left, right) = padding {
                try context.tapPadding("stem_conv_pad", y, top: top, bottom: bottom, left: left, right: right)
            }
            return try stem(y, context, padding: padding)
        }] + blocks.joined().map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("top", modules: [last.conv, last.norm]) { [last] x, context in try last(x, context) }]
    }
}

extension EfficientNet {
    /// Keras's in-model input normalization: `Rescaling(1/255)` then `Normalization` (weights
    /// `mean`, `variance`, `count`), and for the published weights a per-channel rescaling by
    /// `1/sqrt(std)` (Keras's `IMAGENET_STDDEV_RGB`). EfficientNetV2 B0-B3 build their
    /// `Normalization` with ImageNet's mean and variance as constants instead (``imagenetConstants()``):
    /// no weights.
    final class InputNormalization: Module, Layer {
        let mean = Parameter(Tensor.zeros([3]), role: .runningStatistic)
        let variance = Parameter(Tensor.filled([3], 1), role: .runningStatistic)
        /// The number of samples `mean` and `variance` were adapted on; unused here, kept so that
        /// a Keras file's `count` has a place and counts as Keras counts it.
        let count = Parameter(Tensor.zeros([1]), role: .runningStatistic)
        var publishedWeightRescaling = false
        /// Whether `mean` and `variance` are constants of the graph rather than weights.
        private(set) var constant = false

        /// Keras's `Normalization(mean=[0.485, 0.456, 0.406], variance=[0.229², 0.224², 0.225²])`.
        static func imagenetConstants() -> InputNormalization {
            let normalization = InputNormalization()
            normalization.mean.value = try! Tensor(shape: [3], values: [0.485, 0.456, 0.406])
            normalization.variance.value = try! Tensor(shape: [3], values: [0.229, 0.224, 0.225].map { Float($0 * $0) })
            normalization.constant = true
            return normalization
        }

        override var localParameters: [(name: String, parameter: Parameter)] {
            constant ? [] : [("mean", mean), ("variance", variance), ("count", count)]
        }
        override var children: [(name: String, module: Module)] { [] }

        var layers: [NamedLayer] { [NamedLayer("rescaling", .rescaling), NamedLayer("normalization", .normalization, self)] }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let rescaled = context.tap("rescaling", try scale(x, by: 1 / 255))
            // (x - mean) / sqrt(variance), times 1/sqrt(std) for the published weights, as a
            // batch norm with fixed statistics and no epsilon. Keras divides by
            // max(sqrt(variance), 1e-7), which differs only for variances below 1e-14.
            let factors: [Float] = publishedWeightRescaling ? [0.229, 0.224, 0.225].map { 1 / Float($0).squareRoot() } : [1, 1, 1]
            return context.tap("normalization", try batchNormInference(
                rescaled, scale: try Tensor(shape: [3], values: factors), shift: Tensor.zeros([3]), mean: mean.value,
                variance: variance.value, epsilon: 0))
        }
    }

    /// Expansion (1x1, SiLU; absent when the expansion is 1), depthwise (SiLU), squeeze and
    /// excitation, linear 1x1 projection, and the residual sum with stochastic depth when the
    /// shape is unchanged (Keras's `block`, torchvision's `MBConv`: `block.0` ...).
    final class MBConv: Module, Layer {
        /// The Keras name prefix (`block2a_`).
        let name: String
        let expand: ConvNorm?
        let depthwise: ConvNorm
        let excitation: SqueezeExcitation
        let project: ConvNorm
        let residual: Bool
        let stride: Int
        let dropRate: Float
        let flavor: Flavor

        /// - Parameters:
        ///   - depthwiseName: the Keras name of the depthwise convolution after the prefix
        ///     (`dwconv`; EfficientNetV2's `dwconv2`).
        ///   - paddingLayer: whether Keras pads a stride-2 depthwise convolution with a
        ///     `ZeroPadding2D` of its own (V1) or inside the convolution (`same`, V2).
        init(_ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, expansion: Int, dropRate: Float, flavor: Flavor,
             depthwiseName: String = "dwconv", paddingLayer: Bool = true,
             unit: (Int, Int, Int, Int, Int, Bool, ConvNorm.Names, (String, String)) -> ConvNorm) {
            self.name = name
            self.paddingLayer = paddingLayer
            let hidden = inChannels * expansion
            // torchvision's `block` sequence: the expansion (when there is one), the depthwise
            // unit, the SE, the projection.
            var position = 0
            func keys() -> (String, String) {
                defer { position += 1 }
                return ("block.\(position).0", "block.\(position).1")
            }
            expand = expansion == 1 ? nil
                : unit(inChannels, hidden, 1, 1, 1, true, .init(conv: "\(name)expand_conv", norm: "\(name)expand_bn",
                                                                 activation: "\(name)expand_activation"), keys())
            depthwise = unit(hidden, hidden, kernel, stride, hidden, true,
                             .init(conv: "\(name)\(depthwiseName)", norm: "\(name)bn", activation: "\(name)activation"), keys())
            excitation = SqueezeExcitation(channels: hidden, squeezed: max(1, inChannels / 4), activation: .silu, gate: .sigmoid,
                                           names: .init(pool: "\(name)se_squeeze", reshape: "\(name)se_reshape", reduce: "\(name)se_reduce",
                                                        reduceActivation: nil, expand: "\(name)se_expand", gate: nil,
                                                        multiply: "\(name)se_excite"))
            excitationKey = "block.\(position)"
            position += 1
            project = unit(hidden, outChannels, 1, 1, 1, false, .init(conv: "\(name)project_conv", norm: "\(name)project_bn", activation: nil),
                           keys())
            residual = stride == 1 && inChannels == outChannels
            self.stride = stride
            self.dropRate = dropRate
            self.flavor = flavor
        }

        private let excitationKey: String
        private let paddingLayer: Bool
        private var padName: String { "\(name)dwconv_pad" }
        private var dropName: String { "\(name)drop" }
        private var addName: String { "\(name)add" }
        /// Keras lists a `Dropout` before the sum only where the rate is not 0 (not the first block).
        private var hasDropLayer: Bool { residual && dropRate > 0 }

        override var children: [(name: String, module: Module)] {
            (expand?.children ?? []) + depthwise.children + [(excitationKey, excitation)] + project.children
        }

        var layers: [NamedLayer] {
            (expand?.layers ?? []) + (stride == 2 && paddingLayer ? [NamedLayer(padName, .zeroPadding2D)] : []) + depthwise.layers
                + excitation.layers + project.layers + (hasDropLayer ? [NamedLayer(dropName, .dropout)] : [])
                + (residual ? [NamedLayer(addName, .add)] : [])
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = try expand.map { try $0(x, context) } ?? x
            var padding: Padding?
            if stride == 2 {
                let kernel = depthwise.conv.weight.shape[2]
                padding = flavor == .keras ? sameStridedPadding(y, kernel: kernel) : .symmetric(kernel / 2)
                if paddingLayer, case let .explicit(top, bottom, left, right) = padding {
                    try context.tapPadding(padName, y, top: top, bottom: bottom, left: left, right: right)
                }
            }
            y = try excitation(try depthwise(y, context, padding: padding), context)
            guard residual else { return try project(y, context) }
            let dropping = context.isTraining && dropRate > 0
            guard dropping || (hasDropLayer && context.isWatching(dropName)) else {
                return try project(y, context, residual: x, addName: addName)
            }
            // Stochastic depth: each sample's branch dropped with the block's rate in training.
            y = try project(y, context)
            if dropping { y = try dropPath(y, rate: dropRate, generator: &context.generator) }
            if hasDropLayer { y = context.tap(dropName, y) }
            return context.tap(addName, try add(x, y))
        }
    }
}

extension EfficientNet: ModelFamily {
    public static let architectures: [Architecture] = Variant.allCases.map { variant in
        Architecture(name: variant.name, summary: "EfficientNet-\(String(describing: variant).uppercased()) (Tan & Le 2019)",
                     defaultInputSize: variant.coefficients.size, preprocessing: [.keras: .none, .torchvision: .torch]) {
            EfficientNet(variant, flavor: $0.flavor, top: $0.top)
        }
    }
}
