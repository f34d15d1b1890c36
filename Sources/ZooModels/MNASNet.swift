import ZooTensor
import ZooNN

/// MNASNet B1 (Tan et al. 2019) as torchvision builds it (`torchvision.models.mnasnet0_5` ...
/// `mnasnet1_3`): a stem convolution and a depthwise-separable convolution, six stacks of
/// inverted residual blocks (1x1 expansion, 3x3 or 5x5 depthwise, linear 1x1 projection, a
/// residual sum where the shape allows), a last 1x1 convolution to 1280 channels, global
/// average pooling, dropout 0.2 and `classifier.1`. Batch norms use torchvision's momentum
/// 0.0003 (TensorFlow's 0.9997) and epsilon 1e-5; ReLU throughout.
///
/// The width multiplier scales every channel count but the last 1280, rounded to multiples of 8
/// as torchvision rounds them; this is torchvision's version 2 graph, whose stem scales too.
/// torchvision still reads version-1 state dicts (a fixed 32/16-channel stem for widths other
/// than 1.0); zoo does not, and such a file's stem tensors are reported as shape mismatches.
///
/// Keras applications has no MNASNet; the layer list names the layers as a Keras model would
/// (`conv1`, `conv1_bn`, `conv1_relu`, `conv2_depthwise`, ..., `stack1_block1_expand_conv`, ...,
/// `stack1_block2_add`, `conv_last`, ...).
public final class MNASNet: ImageModel {
    /// Output channels, kernel, first stride, expansion and repeats of each stack.
    static let stacks: [(channels: Int, kernel: Int, stride: Int, expansion: Int, repeats: Int)] = [
        (24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2), (192, 5, 2, 6, 4), (320, 3, 1, 6, 1),
    ]
    static let momentum = BatchNormMomentum.pytorch(momentum: 1 - 0.9997)

    let stem: ConvNorm, depthwise: ConvNorm, projection: ConvNorm
    let blocks: [[InvertedResidual]]
    let last: ConvNorm

    /// - Parameter alpha: the width multiplier (0.5, 0.75, 1.0 and 1.3 are published).
    public init(alpha: Double, top: Top = .imagenet) {
        func width(_ channels: Int) -> Int { MobileNetV2.divisible(Double(channels) * alpha) }
        func unit(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, groups: Int = 1, relu: Bool, prefix: String,
                  keys: (String, String)) -> ConvNorm {
            ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(kernel / 2), groups: groups, bias: false),
                     BatchNorm(output, momentum: Self.momentum), activation: relu ? .relu : nil,
                     names: ConvNorm.names(prefix, activationLayer: relu), keys: keys,
                     convKind: groups > 1 ? .depthwiseConv2D : .conv2D)
        }
        let (first, second) = (width(32), width(16))
        stem = unit(3, first, kernel: 3, stride: 2, relu: true, prefix: "conv1", keys: ("layers.0", "layers.1"))
        depthwise = unit(first, first, kernel: 3, groups: first, relu: true, prefix: "conv2_depthwise", keys: ("layers.3", "layers.4"))
        projection = unit(first, second, kernel: 1, relu: false, prefix: "conv2_project", keys: ("layers.6", "layers.7"))
        var channels = second
        var blocks: [[InvertedResidual]] = []
        for (index, stack) in Self.stacks.enumerated() {
            let output = width(stack.channels)
            blocks.append((0..<stack.repeats).map { block in
                defer { channels = output }
                return InvertedResidual("stack\(index + 1)_block\(block + 1)", inChannels: channels, outChannels: output, kernel: stack.kernel,
                                        stride: block == 0 ? stack.stride : 1, expansion: stack.expansion, unit: unit)
            })
        }
        self.blocks = blocks
        last = unit(channels, 1280, kernel: 1, relu: true, prefix: "conv_last", keys: ("layers.14", "layers.15"))
        super.init(name: "mnasnet" + Self.widthName(alpha), flavor: .torchvision, featureChannels: 1280, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayers(stem.layers + depthwise.layers + projection.layers)
        blocks.joined().forEach { appendLayers($0.layers) }
        appendLayers(last.layers)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"), .init(.dropout(0.2), name: "dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "classifier.1"),
        ])
    }

    /// torchvision's spelling of a width: `0_5`, `0_75`, `1_0`, `1_3`.
    static func widthName(_ alpha: Double) -> String {
        let hundredths = Int((alpha * 100).rounded())
        let fraction = hundredths % 100
        return "\(hundredths / 100)_" + (fraction % 10 == 0 ? "\(fraction / 10)" : "\(fraction)")
    }

    /// torchvision's names: `layers.0` ... `layers.7`, the stacks `layers.8` ... `layers.13`
    /// (each block `layers.8.0`, ...), `layers.14`, `layers.15`, `classifier.1`.
    public override var children: [(name: String, module: Module)] {
        var result = stem.children + depthwise.children + projection.children
        for (index, stack) in blocks.enumerated() {
            result += stack.enumerated().map { ("layers.\(8 + index).\($0.offset)", $0.element as Module) }
        }
        return result + last.children + (head?.children ?? [])
    }

    public override var stages: [Stage] {
        [Stage("stem", modules: [stem.conv, stem.norm, depthwise.conv, depthwise.norm, projection.conv, projection.norm]) {
            [stem, depthwise, projection] x, context in
            try projection(try depthwise(try stem(context.tap("input_layer", x), context), context), context)
        }] + blocks.joined().map { block in Stage(block.name, modules: [block]) { try block($0, $1) } }
            + [Stage("last", modules: [last.conv, last.norm]) { [last] x, context in try last(x, context) }]
    }
}

extension MNASNet {
    /// 1x1 expansion with ReLU, depthwise with ReLU, linear 1x1 projection, plus the input when
    /// the shape is unchanged (torchvision's `_InvertedResidual`, children `layers.0` ... `layers.7`).
    final class InvertedResidual: Module, Layer {
        /// The Keras name prefix (`stack1_block1`).
        let name: String
        let expand: ConvNorm, depthwise: ConvNorm, project: ConvNorm
        let residual: Bool

        init(_ name: String, inChannels: Int, outChannels: Int, kernel: Int, stride: Int, expansion: Int,
             unit: (Int, Int, Int, Int, Int, Bool, String, (String, String)) -> ConvNorm) {
            self.name = name
            let hidden = inChannels * expansion
            expand = unit(inChannels, hidden, 1, 1, 1, true, "\(name)_expand", ("layers.0", "layers.1"))
            depthwise = unit(hidden, hidden, kernel, stride, hidden, true, "\(name)_depthwise", ("layers.3", "layers.4"))
            project = unit(hidden, outChannels, 1, 1, 1, false, "\(name)_project", ("layers.6", "layers.7"))
            residual = stride == 1 && inChannels == outChannels
        }

        private var addName: String { "\(name)_add" }

        override var children: [(name: String, module: Module)] { expand.children + depthwise.children + project.children }

        var layers: [NamedLayer] { expand.layers + depthwise.layers + project.layers + (residual ? [NamedLayer(addName, .add)] : []) }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let y = try depthwise(try expand(x, context), context)
            return residual ? try project(y, context, residual: x, addName: addName) : try project(y, context)
        }
    }
}

extension MNASNet: ModelFamily {
    public static let architectures: [Architecture] = [0.5, 0.75, 1.0, 1.3].map(architecture)

    static func architecture(_ alpha: Double) -> Architecture {
        Architecture(name: "mnasnet" + widthName(alpha), summary: "MNASNet \(alpha) (Tan et al. 2019)", defaultInputSize: 224,
                     flavors: [.torchvision], preprocessing: [.torchvision: .torch]) { MNASNet(alpha: alpha, top: $0.top) }
    }
}
