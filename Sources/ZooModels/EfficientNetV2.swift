import ZooTensor
import ZooNN

/// EfficientNetV2 (Tan and Le 2021): a stem, stages of Fused-MBConv blocks (a 3x3 expansion
/// convolution and a linear 1x1 projection; without expansion one 3x3 convolution with its
/// activation; no squeeze-and-excitation) followed by stages of MBConv blocks (EfficientNet's:
/// 1x1 expansion, depthwise 3x3, SE of a quarter of the block input's channels, linear 1x1
/// projection), a 1x1 convolution to 1280 channels, global average pooling, dropout and the
/// classifier; SiLU throughout, residual sums with stochastic depth where the shape is unchanged.
///
/// - keras flavour: `keras.applications.EfficientNetV2B0` ... `B3`, `S`, `M`, `L`. The model takes
///   raw 0-255 pixels (preprocessing `none`): B0-B3 start with `Rescaling(1/255)` and a
///   `Normalization` by ImageNet's mean and variance given as constants (no weights), S, M and L
///   with `Rescaling(1/128, offset -1)`. Every convolution pads `same` (TensorFlow's way for
///   stride 2, no padding layers); batch norm epsilon 1e-3, momentum 0.9. B1-B3 scale B0's width
///   (Keras's `round_filters`, without the 10% rule of V1) and depth (repeats rounded up); the
///   stochastic-depth rate of block `b` is `0.2 * b / 21`, 21 being B0's unscaled block count, so
///   the scaled variants' last blocks exceed 0.2. Dropout 0.2 before the classifier in every
///   variant.
/// - torchvision flavour (S, M, L): `torchvision.models.efficientnet_v2_s`, `_m`, `_l`: symmetric
///   padding, ImageNet mean/std preprocessing outside the model, batch norm epsilon 1e-3 and
///   momentum 0.1, stochastic depth up to 0.2 over the blocks, dropout 0.2, 0.3, 0.4.
public final class EfficientNetV2: ImageModel {
    /// One stage of the block table: Fused-MBConv or MBConv (with SE), expansion, kernel, first
    /// stride, input and output channels, repeats (before depth scaling).
    struct StageConfiguration {
        var fused: Bool
        var expansion: Int
        var kernel: Int
        var stride: Int
        var input: Int
        var output: Int
        var repeats: Int
    }

    /// B0 ... B3 (Keras only), S, M, L: the block table, width and depth coefficients, the
    /// default input size and torchvision's dropout.
    public enum Variant: String, Sendable, CaseIterable {
        case b0, b1, b2, b3, s, m, l

        var coefficients: (width: Double, depth: Double, size: Int) {
            switch self {
            case .b0: return (1.0, 1.0, 224)
            case .b1: return (1.0, 1.1, 240)
            case .b2: return (1.1, 1.2, 260)
            case .b3: return (1.2, 1.4, 300)
            case .s: return (1.0, 1.0, 384)
            case .m, .l: return (1.0, 1.0, 480)
            }
        }

        /// torchvision's dropout before the classifier (Keras uses 0.2 for every variant).
        var torchvisionDropout: Float {
            switch self {
            case .m: return 0.3
            case .l: return 0.4
            default: return 0.2
            }
        }

        /// The B variants normalize by ImageNet's mean and variance in the model; S, M and L
        /// rescale to [-1, 1].
        var isB: Bool { [.b0, .b1, .b2, .b3].contains(self) }

        var stages: [StageConfiguration] {
            func fused(_ e: Int, _ s: Int, _ i: Int, _ o: Int, _ r: Int) -> StageConfiguration {
                StageConfiguration(fused: true, expansion: e, kernel: 3, stride: s, input: i, output: o, repeats: r)
            }
            func mb(_ e: Int, _ s: Int, _ i: Int, _ o: Int, _ r: Int) -> StageConfiguration {
                StageConfiguration(fused: false, expansion: e, kernel: 3, stride: s, input: i, output: o, repeats: r)
            }
            switch self {
            case .b0, .b1, .b2, .b3:
                return [fused(1, 1, 32, 16, 1), fused(4, 2, 16, 32, 2), fused(4, 2, 32, 48, 2), mb(4, 2, 48, 96, 3),
                        mb(6, 1, 96, 112, 5), mb(6, 2, 112, 192, 8)]
            case .s:
                return [fused(1, 1, 24, 24, 2), fused(4, 2, 24, 48, 4), fused(4, 2, 48, 64, 4), mb(4, 2, 64, 128, 6),
                        mb(6, 1, 128, 160, 9), mb(6, 2, 160, 256, 15)]
            case .m:
                return [fused(1, 1, 24, 24, 3), fused(4, 2, 24, 48, 5), fused(4, 2, 48, 80, 5), mb(4, 2, 80, 160, 7),
                        mb(6, 1, 160, 176, 14), mb(6, 2, 176, 304, 18), mb(6, 1, 304, 512, 5)]
            case .l:
                return [fused(1, 1, 32, 32, 4), fused(4, 2, 32, 64, 7), fused(4, 2, 64, 96, 7), mb(4, 2, 96, 192, 10),
                        mb(6, 1, 192, 224, 19), mb(6, 2, 224, 384, 25), mb(6, 1, 384, 640, 7)]
            }
        }

        public var name: String { "efficientnetv2\(rawValue)" }
        var flavors: [Flavor] { isB ? [.keras] : [.keras, .torchvision] }
    }

    /// The stochastic-depth rate of the last block (Keras's `drop_connect_rate`, torchvision's
    /// `stochastic_depth_prob`).
    public static let defaultStochasticDepthRate = 0.2

    /// Keras's `round_filters`: the nearest multiple of 8 at or above 8 (no 10% rule).
    static func roundFilters(_ channels: Int, _ widthCoefficient: Double) -> Int {
        max(8, Int(Double(channels) * widthCoefficient + 4) / 8 * 8)
    }

    let variant: Variant
    /// B0-B3's `Rescaling(1/255)` and constant `Normalization`; nil for S, M, L and torchvision.
    let inputNormalization: EfficientNet.InputNormalization?
    let stem: ConvNorm
    let blocks: [[Block]]
    let last: ConvNorm

    /// - Parameter stochasticDepthRate: the rate of Keras's and torchvision's schedule (see the
    ///   type's description); 0 turns stochastic depth off.
    public init(_ variant: Variant, flavor: Flavor, top: Top = .imagenet, stochasticDepthRate: Double = defaultStochasticDepthRate) {
        let (widthCoefficient, depthCoefficient, _) = variant.coefficients
        let keras = flavor == .keras
        let momentum: BatchNormMomentum = keras ? .keras(momentum: 0.9) : .pytorch(momentum: 0.1)
        func width(_ channels: Int) -> Int { Self.roundFilters(channels, widthCoefficient) }
        func unit(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, groups: Int = 1, activation: Bool, names: ConvNorm.Names,
                  keys: (String, String)) -> ConvNorm {
            ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups, bias: false),
                     BatchNorm(output, epsilon: 1e-3, momentum: momentum), activation: activation ? .silu : nil, names: names, keys: keys,
                     convKind: groups > 1 ? .depthwiseConv2D : .conv2D)
        }
        self.variant = variant
        inputNormalization = keras && variant.isB ? EfficientNet.InputNormalization.imagenetConstants() : nil
        let table = variant.stages
        let stemChannels = width(table[0].input)
        stem = unit(3, stemChannels, kernel: 3, stride: 2, activation: true,
                    names: .init(conv: "stem_conv", norm: "stem_bn", activation: "stem_activation"), keys: ("features.0.0", "features.0.1"))
        let repeats = table.map { Int((Double($0.repeats) * depthCoefficient).rounded(.up)) }
        // Keras divides by the unscaled block count, torchvision by the actual one (the same for
        // S, M, L, whose depth coefficient is 1).
        let divisor = Double(keras ? table.map(\.repeats).reduce(0, +) : repeats.reduce(0, +))
        var index = 0
        var blocks: [[Block]] = []
        for (stageIndex, stage) in table.enumerated() {
            blocks.append((0..<repeats[stageIndex]).map { repeatIndex -> Block in
                defer { index += 1 }
                let name = "block\(stageIndex + 1)\(String(UnicodeScalar(UInt8(97 + repeatIndex))))_"
                let input = width(repeatIndex == 0 ? stage.input : stage.output)
                let stride = repeatIndex == 0 ? stage.stride : 1
                let dropRate = Float(stochasticDepthRate * Double(index) / divisor)
                if stage.fused {
                    return FusedMBConv(name, inChannels: input, outChannels: width(stage.output), kernel: stage.kernel, stride: stride,
                                       expansion: stage.expansion, dropRate: dropRate, flavor: flavor, unit: unit)
                }
                return EfficientNet.MBConv(name, inChannels: input, outChannels: width(stage.output), kernel: stage.kernel, stride: stride,
                                           expansion: stage.expansion, dropRate: dropRate, flavor: flavor, depthwiseName: "dwconv2",
                                           paddingLayer: false, unit: unit)
            })
        }
        self.blocks = blocks
        let lastChannels = width(1280)
        last = unit(width(table[table.count - 1].output), lastChannels, kernel: 1, activation: true,
                    names: .init(conv: "top_conv", norm: "top_bn", activation: "top_activation"),
                    keys: ("features.\(table.count + 1).0", "features.\(table.count + 1).1"))
        super.init(name: variant.name, flavor: flavor, featureChannels: lastChannels, minimumInputSize: 32)

        // Both flavours list Keras's layers; in torchvision's the rescaling and normalization
        // are no-ops, the normalization done outside.
        appendLayer("input_layer", .inputLayer)
        appendLayer("rescaling", .rescaling)
        if variant.isB { appendLayer("normalization", .normalization, inputNormalization) }
        appendLayers(stem.layers)
        blocks.joined().forEach { appendLayers($0.layers) }
        appendLayers(last.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"), .init(.dropout(keras ? 0.2 : variant.torchvisionDropout), name: "top_dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier.1"),
        ])
    }

    /// torchvision's names: `features.0` (stem), `features.1` ... (stages, each block
    /// `features.1.0`, ...), the last 1x1 after them, `classifier.1`.
    public override var children: [(name: String, module: Module)] {
        var result = stem.children
        for (index, stage) in blocks.enumerated() {
            result += stage.enumerated().map { ("features.\(index + 1).\($0.offset)", $0.element as Module) }
        }
        return result + last.children + (head?.children ?? [])
    }

    public override var stages: [Stage] {
        let keras = flavor == .keras
        let isB = variant.isB
        return [Stage("stem", modules: [stem.conv, stem.norm]) { [stem, inputNormalization] x, context in
            var y = context.tap("input_layer", x)
            if let inputNormalization {
                y = try inputNormalization(y, context)
            } else if keras {
                // `Rescaling(scale=1/128, offset=-1)`.
                y = context.tap("rescaling", try batchNormInference(
                    y, scale: Tensor.filled([3], 1 / 128), shift: Tensor.filled([3], -1), mean: Tensor.zeros([3]),
                    variance: Tensor.filled([3], 1), epsilon: 0))
            } else {
                y = context.tap("rescaling", y)
                if isB { y = context.tap("normalization", y) }
            }
            return try stem(y, context, padding: keras ? sameStridedPadding(y, kernel: 3) : nil)
        }] + blocks.joined().map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("top", modules: [last.conv, last.norm]) { [last] x, context in try last(x, context) }]
    }
}

extension EfficientNetV2 {
    /// A block of either kind: its Keras name prefix and layers.
    protocol Block: Layer {
        var name: String { get }
        var layers: [NamedLayer] { get }
    }

    /// Fused-MBConv: a `kernel` expansion convolution (with the stride, SiLU) and a linear 1x1
    /// projection, or, without expansion, one `kernel` convolution with its SiLU (Keras's
    /// `project_conv` ... `project_activation`); then the residual sum with stochastic depth when
    /// the shape is unchanged (Keras's `FusedMBConvBlock`, torchvision's `FusedMBConv`: `block.0`,
    /// `block.1`).
    final class FusedMBConv: Module, Block {
        /// The Keras name prefix (`block2a_`).
        let name: String
        let expand: ConvNorm?
        let project: ConvNorm
        let residual: Bool
        let stride: Int
        let dropRate: Float
        let flavor: Flavor

        init(_ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, expansion: Int, dropRate: Float, flavor: Flavor,
             unit: (Int, Int, Int, Int, Int, Bool, ConvNorm.Names, (String, String)) -> ConvNorm) {
            self.name = name
            if expansion == 1 {
                expand = nil
                project = unit(inChannels, outChannels, kernel, stride, 1, true,
                               .init(conv: "\(name)project_conv", norm: "\(name)project_bn", activation: "\(name)project_activation"),
                               ("block.0.0", "block.0.1"))
            } else {
                let hidden = inChannels * expansion
                expand = unit(inChannels, hidden, kernel, stride, 1, true,
                              .init(conv: "\(name)expand_conv", norm: "\(name)expand_bn", activation: "\(name)expand_activation"),
                              ("block.0.0", "block.0.1"))
                project = unit(hidden, outChannels, 1, 1, 1, false, .init(conv: "\(name)project_conv", norm: "\(name)project_bn", activation: nil),
                               ("block.1.0", "block.1.1"))
            }
            residual = stride == 1 && inChannels == outChannels
            self.stride = stride
            self.dropRate = dropRate
            self.flavor = flavor
        }

        private var dropName: String { "\(name)drop" }
        private var addName: String { "\(name)add" }
        /// Keras lists a `Dropout` before the sum only where the rate is not 0 (not the first block).
        private var hasDropLayer: Bool { residual && dropRate > 0 }

        override var children: [(name: String, module: Module)] { (expand?.children ?? []) + project.children }

        var layers: [NamedLayer] {
            (expand?.layers ?? []) + project.layers + (hasDropLayer ? [NamedLayer(dropName, .dropout)] : [])
                + (residual ? [NamedLayer(addName, .add)] : [])
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            // The stride sits in the first convolution: Keras pads it TensorFlow's way.
            let padding = stride == 2 && flavor == .keras ? sameStridedPadding(x, kernel: (expand ?? project).conv.weight.shape[2]) : nil
            var y: Tensor
            if let expand {
                y = try expand(x, context, padding: padding)
                guard residual else { return try project(y, context) }
                let dropping = context.isTraining && dropRate > 0
                // The projection is linear: the sum fuses into it unless the drop is seen.
                if !dropping && !(hasDropLayer && context.isWatching(dropName)) {
                    return try project(y, context, residual: x, addName: addName)
                }
                y = try project(y, context)
            } else {
                // Without expansion the activation precedes the sum.
                y = try project(x, context, padding: padding)
                guard residual else { return y }
            }
            // Stochastic depth: each sample's branch dropped with the block's rate in training.
            if context.isTraining && dropRate > 0 { y = try dropPath(y, rate: dropRate, generator: &context.generator) }
            if hasDropLayer { y = context.tap(dropName, y) }
            return context.tap(addName, try add(x, y))
        }
    }
}

extension EfficientNet.MBConv: EfficientNetV2.Block {}

extension EfficientNetV2: ModelFamily {
    public static let architectures: [Architecture] = Variant.allCases.map { variant in
        Architecture(name: variant.name, summary: "EfficientNetV2-\(variant.rawValue.uppercased()) (Tan & Le 2021)",
                     defaultInputSize: variant.coefficients.size, flavors: variant.flavors,
                     // torchvision's L weights were trained on mean 0.5, std 0.5 (`tf`), S and M on ImageNet's.
                     preprocessing: [.keras: .none, .torchvision: variant == .l ? .tf : .torch]) {
            EfficientNetV2(variant, flavor: $0.flavor, top: $0.top)
        }
    }
}
