import ZooTensor
import ZooNN

/// ShuffleNetV2 (Ma et al. 2018) as torchvision builds it (`torchvision.models.shufflenet_v2_x0_5`
/// ... `shufflenet_v2_x2_0`): a 3x3 stride-2 convolution, a 3x3 stride-2 max pool, three stages
/// of 4, 8 and 4 units, a 1x1 convolution, the mean over the map and `fc`. Every convolution is
/// bias-free with a batch norm (epsilon 1e-5) and, except the depthwise ones, a ReLU.
///
/// A stage's first unit halves the map with two branches (a 3x3 stride-2 depthwise convolution
/// and a 1x1 convolution; a 1x1, a 3x3 stride-2 depthwise and a 1x1 convolution), each giving
/// half of the output channels. The other units split the channels in half, keep one half and
/// run the second branch on the other. Both kinds concatenate the halves and shuffle the
/// channels with 2 groups, so the next unit's split mixes both.
///
/// The width is configuration: it sets the stages' and the last convolution's channels.
/// Keras applications has no ShuffleNetV2; the layer list names the layers as a Keras port of
/// the graph would, in creation order (`conv1_conv`, `pool1_pool`, `stage2_block1_branch1_dw_conv`,
/// ..., `stage2_block1_concat`, `stage2_block1_shuffle`, `stage2_block2_split`, ..., `conv5_conv`),
/// with the split and the shuffle as `Lambda` layers.
public final class ShuffleNetV2: ImageModel {
    /// The published widths: torchvision's `x0_5` ... `x2_0`.
    public enum Width: String, Sendable, CaseIterable {
        case x0_5 = "0_5", x1_0 = "1_0", x1_5 = "1_5", x2_0 = "2_0"

        /// The stem's, the three stages' and the last convolution's output channels
        /// (torchvision's `stages_out_channels`).
        var channels: [Int] {
            switch self {
            case .x0_5: return [24, 48, 96, 192, 1024]
            case .x1_0: return [24, 116, 232, 464, 1024]
            case .x1_5: return [24, 176, 352, 704, 1024]
            case .x2_0: return [24, 244, 488, 976, 2048]
            }
        }

        /// The multiplier as written in papers and listings: `0.5`.
        var multiplier: String { rawValue.replacingOccurrences(of: "_", with: ".") }
    }

    /// Units per stage (torchvision's `stages_repeats`).
    static let repeats = [4, 8, 4]

    let stem: ConvNorm
    let units: [[Unit]]
    let last: ConvNorm

    public init(_ width: Width, top: Top = .imagenet) {
        let channels = width.channels
        stem = Self.unit(3, channels[0], kernel: 3, stride: 2, prefix: "conv1", keys: ("conv1.0", "conv1.1"))
        var input = channels[0]
        units = zip(Self.repeats, channels[1...3]).enumerated().map { stage, pair in
            let (count, output) = pair
            defer { input = output }
            return (0..<count).map { index in
                Unit("stage\(stage + 2)_block\(index + 1)", inChannels: index == 0 ? input : output, outChannels: output,
                     stride: index == 0 ? 2 : 1)
            }
        }
        last = Self.unit(channels[3], channels[4], kernel: 1, prefix: "conv5", keys: ("conv5.0", "conv5.1"))
        super.init(name: "shufflenet_v2_x" + width.rawValue, flavor: .torchvision, featureChannels: channels[4], minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayers(stem.layers)
        appendLayer("pool1_pool", .maxPooling2D)
        units.joined().forEach { appendLayers($0.layers) }
        appendLayers(last.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    /// A bias-free convolution with its batch norm, and a ReLU unless it is depthwise
    /// (`groups` > 1), under Keras's usual names for `prefix`.
    static func unit(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, groups: Int = 1, prefix: String,
                     keys: (String, String)) -> ConvNorm {
        let relu = groups == 1
        return ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups, bias: false),
                        BatchNorm(output), activation: relu ? .relu : nil, names: ConvNorm.names(prefix, activationLayer: relu), keys: keys,
                        convKind: relu ? .conv2D : .depthwiseConv2D)
    }

    /// torchvision's names: `conv1.0`, `conv1.1`, `stage2.0` ... `stage4.3`, `conv5.0`,
    /// `conv5.1`, `fc`.
    public override var children: [(name: String, module: Module)] {
        var result = stem.children
        for (stage, stack) in units.enumerated() {
            result += stack.enumerated().map { ("stage\(stage + 2).\($0.offset)", $0.element as Module) }
        }
        return result + last.children + (head?.children ?? [])
    }

    /// The stem with its pool, every unit, and the last convolution.
    public override var stages: [Stage] {
        [Stage("stem", modules: [stem.conv, stem.norm]) { [stem] x, context in
            let y = try stem(context.tap("input_layer", x), context)
            return context.tap("pool1_pool", try maxPool2d(y, Pool2DOptions(kernel: 3, stride: 2, padding: .symmetric(1))))
        }] + units.joined().map { unit in Stage(unit.name, modules: [unit]) { try unit($0, $1) } }
            + [Stage("conv5", modules: [last.conv, last.norm]) { [last] x, context in try last(x, context) }]
    }
}

extension ShuffleNetV2 {
    /// torchvision's `InvertedResidual`: with stride 2, `branch1` (3x3 depthwise, 1x1) and
    /// `branch2` (1x1, 3x3 depthwise, 1x1) on the whole input; with stride 1, `branch2` alone
    /// on the second half of the channels, the first half kept. Then the concatenation and a
    /// channel shuffle with 2 groups.
    final class Unit: Module, Layer {
        /// The Keras name prefix (`stage2_block1`).
        let name: String
        /// The stride-2 unit's first branch (empty in a stride-1 unit).
        let branch1: [ConvNorm]
        let branch2: [ConvNorm]

        init(_ name: String, inChannels: Int, outChannels: Int, stride: Int) {
            self.name = name
            let half = outChannels / 2
            func unit(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, depthwise: Bool = false, _ suffix: String,
                      _ keys: (String, String)) -> ConvNorm {
                ShuffleNetV2.unit(input, output, kernel: kernel, stride: stride, groups: depthwise ? input : 1, prefix: "\(name)_\(suffix)",
                                  keys: keys)
            }
            branch1 = stride == 1 ? [] : [
                unit(inChannels, inChannels, kernel: 3, stride: stride, depthwise: true, "branch1_dw", ("branch1.0", "branch1.1")),
                unit(inChannels, half, kernel: 1, "branch1_pw", ("branch1.2", "branch1.3")),
            ]
            branch2 = [
                unit(stride == 1 ? half : inChannels, half, kernel: 1, "branch2_pw1", ("branch2.0", "branch2.1")),
                unit(half, half, kernel: 3, stride: stride, depthwise: true, "branch2_dw", ("branch2.3", "branch2.4")),
                unit(half, half, kernel: 1, "branch2_pw2", ("branch2.5", "branch2.6")),
            ]
        }

        /// The stride-1 unit's split, tapped with the half the branch takes (the other half
        /// goes to the concatenation as it is).
        private var splitName: String { "\(name)_split" }
        private var concatName: String { "\(name)_concat" }
        private var shuffleName: String { "\(name)_shuffle" }

        override var children: [(name: String, module: Module)] { (branch1 + branch2).flatMap(\.children) }

        var layers: [NamedLayer] {
            (branch1.isEmpty ? [NamedLayer(splitName, .lambda)] : []) + (branch1 + branch2).flatMap(\.layers)
                + [NamedLayer(concatName, .concatenate), NamedLayer(shuffleName, .lambda)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            func run(_ branch: [ConvNorm], _ input: Tensor) throws -> Tensor { try branch.reduce(input) { try $1($0, context) } }
            let halves: [Tensor]
            if branch1.isEmpty {
                let (kept, taken) = try splitChannels(x, at: x.shape[1] / 2)
                halves = [kept, try run(branch2, context.tap(splitName, taken))]
            } else {
                halves = [try run(branch1, x), try run(branch2, x)]
            }
            return context.tap(shuffleName, try channelShuffle(context.tap(concatName, try concat(halves)), groups: 2))
        }
    }
}

extension ShuffleNetV2: ModelFamily {
    public static let architectures: [Architecture] = Width.allCases.map(architecture)

    static func architecture(_ width: Width) -> Architecture {
        Architecture(name: "shufflenet_v2_x" + width.rawValue, summary: "ShuffleNetV2 \(width.multiplier)x (Ma et al. 2018)",
                     defaultInputSize: 224, flavors: [.torchvision], preprocessing: [.torchvision: .torch]) { ShuffleNetV2(width, top: $0.top) }
    }
}
