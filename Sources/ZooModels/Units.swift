import ZooTensor
import ZooNN

// The units families are built from. A unit holds its modules with their names stated once: the
// Keras layer names (its entries in the layer list and the names its outputs are tapped under)
// and the torchvision keys (its modules' names in the state dict, relative to the module that
// owns the unit). The layer list, the forward pass and the parameter names all read them from
// the unit, so a family never writes a name twice.

/// A convolution, its batch norm and an optional activation (Keras `Conv2D` or
/// `DepthwiseConv2D`, `BatchNormalization`, `Activation` or `ReLU`).
///
/// In inference, and when both modules are frozen, the three run as one convolution with the
/// norm folded in (see ``Conv2D/callAsFunction(_:_:norm:activation:padding:)``), unless someone
/// watches the convolution's or the norm's own output.
final class ConvNorm {
    /// Keras layer names; `activation` is nil when the activation is not a layer of its own
    /// (no activation, or one that follows a residual add).
    struct Names {
        var conv: String
        var norm: String
        var activation: String?
    }

    let conv: Conv2D
    let norm: BatchNorm
    let activation: Activation?
    var names: Names
    /// torchvision keys of the convolution and the norm.
    let keys: (conv: String, norm: String)
    let convKind: LayerKind
    let activationKind: LayerKind

    init(_ conv: Conv2D, _ norm: BatchNorm, activation: Activation?, names: Names, keys: (conv: String, norm: String),
         convKind: LayerKind = .conv2D, activationKind: LayerKind = .activation) {
        self.conv = conv
        self.norm = norm
        self.activation = activation
        self.names = names
        self.keys = keys
        self.convKind = convKind
        self.activationKind = activationKind
    }

    /// A unit of a family only Keras publishes: its modules' keys are their Keras layer names
    /// (parameters `conv2_block1_1_conv.weight`).
    convenience init(_ conv: Conv2D, _ norm: BatchNorm, activation: Activation?, kerasNames names: Names, convKind: LayerKind = .conv2D,
                     activationKind: LayerKind = .activation) {
        self.init(conv, norm, activation: activation, names: names, keys: (names.conv, names.norm), convKind: convKind,
                  activationKind: activationKind)
    }

    /// Keras's usual names for a unit: `<prefix>_conv`, `<prefix>_bn`, `<prefix>_relu`
    /// (without the last when the activation is not a layer of its own).
    static func names(_ prefix: String, activationLayer: Bool = true) -> Names {
        Names(conv: "\(prefix)_conv", norm: "\(prefix)_bn", activation: activationLayer ? "\(prefix)_relu" : nil)
    }

    /// The unit's entries of the layer list, in Keras's order.
    var layers: [NamedLayer] {
        [NamedLayer(names.conv, convKind, conv), NamedLayer(names.norm, .batchNormalization, norm)]
            + (names.activation.map { [NamedLayer($0, activationKind)] } ?? [])
    }

    /// The unit's modules under their torchvision keys.
    var children: [(name: String, module: Module)] { [(keys.conv, conv), (keys.norm, norm)] }

    /// The name of the unit's last tapped output.
    private var outputName: String { activation == nil ? names.norm : names.activation ?? names.norm }

    /// Convolution, norm and the activation, with `padding` instead of the convolution's own
    /// when given.
    func callAsFunction(_ x: Tensor, _ context: ForwardContext, padding: Padding? = nil) throws -> Tensor {
        guard context.isWatching(names.conv) || context.isWatching(names.norm) else {
            return context.tap(outputName, try conv(x, context, norm: norm, activation: activation, padding: padding))
        }
        let y = try convolutionAndNorm(x, context, padding: padding)
        return try activation.map { context.tap(outputName, try ZooTensor.activation($0, y)) } ?? y
    }

    /// Convolution and norm without the activation: one fused convolution unless someone
    /// watches either output.
    private func convolutionAndNorm(_ x: Tensor, _ context: ForwardContext, padding: Padding? = nil) throws -> Tensor {
        guard context.isWatching(names.conv) || context.isWatching(names.norm) else {
            return context.tap(names.norm, try conv(x, context, norm: norm, activation: nil, padding: padding))
        }
        let y = try context.run(names.conv, conv, x, padding: padding)
        return context.tap(names.norm, try norm(y, context))
    }

    /// The end of a residual block: convolution and norm, `residual` added under `addName`,
    /// then the unit's activation tapped under `outputName` (one fused convolution unless
    /// someone watches the convolution, the norm or the sum).
    func callAsFunction(_ x: Tensor, _ context: ForwardContext, residual: Tensor, addName: String,
                        outputName: String? = nil) throws -> Tensor {
        let last = activation == nil ? addName : outputName ?? addName
        guard context.isWatching(names.conv) || context.isWatching(names.norm) || context.isWatching(addName) else {
            return context.tap(last, try conv(x, context, norm: norm, residual: residual, activation: activation))
        }
        let sum = context.tap(addName, try add(residual, try convolutionAndNorm(x, context)))
        return try activation.map { context.tap(last, try ZooTensor.activation($0, sum)) } ?? sum
    }
}

/// A batch norm and a ReLU (Keras `BatchNormalization` and `Activation`): one pass when the norm
/// uses fixed statistics.
struct NormReLU {
    let norm: BatchNorm
    /// Keras layer names.
    let names: (norm: String, relu: String)
    /// The norm's torchvision key.
    let key: String

    /// Keras's usual names: `<prefix>_bn`, `<prefix>_relu`.
    init(_ norm: BatchNorm, prefix: String, key: String) {
        self.init(norm, names: ("\(prefix)_bn", "\(prefix)_relu"), key: key)
    }

    init(_ norm: BatchNorm, names: (norm: String, relu: String), key: String) {
        self.norm = norm
        self.names = names
        self.key = key
    }

    /// A family only Keras publishes: the norm's key is its Keras name.
    init(_ norm: BatchNorm, kerasNames names: (norm: String, relu: String)) {
        self.init(norm, names: names, key: names.norm)
    }

    var layers: [NamedLayer] { [NamedLayer(names.norm, .batchNormalization, norm), NamedLayer(names.relu, .activation)] }
    var children: [(name: String, module: Module)] { [(key, norm)] }

    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        guard context.isWatching(names.norm) else { return context.tap(names.relu, try norm(x, context, relu: true)) }
        return context.tap(names.relu, try relu(context.tap(names.norm, try norm(x, context))))
    }
}

/// A convolution on its own (Keras `Conv2D`), with its Keras name and torchvision key.
struct NamedConv {
    let conv: Conv2D
    let name: String
    let key: String

    var layers: [NamedLayer] { [NamedLayer(name, .conv2D, conv)] }
    var children: [(name: String, module: Module)] { [(key, conv)] }

    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try context.run(name, conv, x)
    }

    /// The end of a residual branch: the convolution, then `residual` added under `addName` (one
    /// convolution with the sum fused in unless someone watches the convolution's output).
    func callAsFunction(_ x: Tensor, _ context: ForwardContext, residual: Tensor, addName: String) throws -> Tensor {
        guard context.isWatching(name) else {
            return context.tap(addName, try conv(x, context, residual: residual, activation: nil))
        }
        return context.tap(addName, try add(residual, try context.run(name, conv, x)))
    }
}

/// A separable convolution, its batch norm and an optional activation (Keras `SeparableConv2D`,
/// `BatchNormalization`, `Activation`). The depthwise convolution runs on its own; the pointwise
/// one, the norm and the activation are a ``ConvNorm`` under the separable layer's names, so they
/// run as one convolution unless someone watches the layer's or the norm's output.
final class SeparableConvNorm {
    let separable: SeparableConv2D
    /// The pointwise convolution with the norm and the activation; `names.conv` is the separable
    /// layer's name (the pointwise output is the layer's output).
    let unit: ConvNorm

    /// A unit of a family only Keras publishes (its modules' keys are their Keras names).
    init(_ separable: SeparableConv2D, _ norm: BatchNorm, activation: Activation?, kerasNames names: ConvNorm.Names) {
        self.separable = separable
        unit = ConvNorm(separable.pointwise, norm, activation: activation, kerasNames: names)
    }

    /// The layer list holds the separable module, which owns both kernels of the one Keras layer.
    var layers: [NamedLayer] { [NamedLayer(unit.names.conv, .separableConv2D, separable)] + unit.layers.dropFirst() }
    var children: [(name: String, module: Module)] { [(unit.keys.conv, separable), (unit.keys.norm, unit.norm)] }

    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try unit(try separable.depthwise(x, context), context)
    }

    /// The end of a residual branch (see ``ConvNorm``'s residual form).
    func callAsFunction(_ x: Tensor, _ context: ForwardContext, residual: Tensor, addName: String) throws -> Tensor {
        try unit(try separable.depthwise(x, context), context, residual: residual, addName: addName)
    }
}

extension NamedConv {
    /// A convolution of a family only Keras publishes: its key is its Keras name.
    init(_ conv: Conv2D, kerasName name: String) {
        self.init(conv: conv, name: name, key: name)
    }
}

extension ForwardContext {
    /// Runs `layer` on `x` and taps the result under `name`.
    func run(_ name: String, _ layer: any Layer, _ x: Tensor) throws -> Tensor {
        tap(name, try layer(x, self))
    }

    /// Runs the convolution `layer`, with `padding` instead of its own when given, and taps the
    /// result.
    func run(_ name: String, _ layer: Conv2D, _ x: Tensor, padding: Padding?) throws -> Tensor {
        tap(name, try layer(x, self, residual: nil, activation: nil, padding: padding))
    }

    /// A Keras `ZeroPadding2D` layer that the next convolution or pooling absorbs as its own
    /// padding: its output is computed only when someone watches it, and otherwise costs nothing.
    func tapPadding(_ name: String, _ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) throws {
        if isWatching(name) { tap(name, try zeroPad2d(x, top: top, bottom: bottom, left: left, right: right)) }
    }
}

/// Squeeze-and-excitation (Hu et al. 2018): global average pooling, a 1x1 convolution to fewer
/// channels with `activation`, a 1x1 convolution back with the `gate`, and the input scaled by
/// the result per channel (torchvision's `SqueezeExcitation`: `fc1`, `fc2`; Keras: pooling,
/// an optional reshape, two `Conv2D` with their activations inside or as layers of their own,
/// `Multiply`).
final class SqueezeExcitation: Module, Layer {
    /// Keras layer names; a nil activation name means the activation sits inside its `Conv2D`.
    struct Names {
        var pool: String
        var reshape: String?
        var reduce: String
        var reduceActivation: String?
        var expand: String
        var gate: String?
        var multiply: String
    }

    let reduce: Conv2D, expand: Conv2D
    let activation: Activation, gate: Activation
    let names: Names
    /// The layer class of activations listed as layers of their own.
    let activationKind: LayerKind

    init(channels: Int, squeezed: Int, activation: Activation, gate: Activation, names: Names, activationKind: LayerKind = .activation) {
        reduce = Conv2D(channels, squeezed, kernel: 1)
        expand = Conv2D(squeezed, channels, kernel: 1)
        self.activation = activation
        self.gate = gate
        self.names = names
        self.activationKind = activationKind
    }

    /// torchvision's keys.
    override var children: [(name: String, module: Module)] { [("fc1", reduce), ("fc2", expand)] }

    var layers: [NamedLayer] {
        [NamedLayer(names.pool, .globalAveragePooling2D)] + (names.reshape.map { [NamedLayer($0, .reshape)] } ?? [])
            + [NamedLayer(names.reduce, .conv2D, reduce)] + (names.reduceActivation.map { [NamedLayer($0, activationKind)] } ?? [])
            + [NamedLayer(names.expand, .conv2D, expand)] + (names.gate.map { [NamedLayer($0, activationKind)] } ?? [])
            + [NamedLayer(names.multiply, .multiply)]
    }

    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        // The pool as a whole-map average pool keeps [N, C, 1, 1] for the 1x1 convolutions.
        var y = context.tap(names.pool, try avgPool2d(x, Pool2DOptions(kernel: [x.shape[2], x.shape[3]], stride: [1, 1])))
        if let reshape = names.reshape { y = context.tap(reshape, y) }
        y = try convolution(reduce, y, activation: activation, name: names.reduce, activationName: names.reduceActivation, context)
        y = try convolution(expand, y, activation: gate, name: names.expand, activationName: names.gate, context)
        return context.tap(names.multiply, try scaleChannels(x, by: y))
    }

    private func convolution(_ conv: Conv2D, _ x: Tensor, activation: Activation, name: String, activationName: String?,
                             _ context: ForwardContext) throws -> Tensor {
        guard let activationName else { return context.tap(name, try conv(x, context, activation: activation)) }
        return context.tap(activationName, try ZooTensor.activation(activation, context.run(name, conv, x)))
    }
}

extension NamedConv {
    /// The convolution with its ReLU inside (Keras's `Conv2D(activation="relu")`) as a stage,
    /// tapped under the convolution's name.
    var reluStage: Stage {
        Stage(name, modules: [conv]) { [conv, name] x, context in context.tap(name, try conv(x, context, activation: .relu)) }
    }
}

extension Stage {
    /// The input layer: the images, tapped as `input_layer`.
    static var input: Stage { Stage("input", modules: []) { x, context in context.tap("input_layer", x) } }

    /// A max pool as a stage, tapped under `name`.
    static func maxPool(_ name: String, _ options: Pool2DOptions) -> Stage {
        Stage(name, modules: []) { x, context in context.tap(name, try maxPool2d(x, options)) }
    }
}

/// TensorFlow's `same` padding of a stride-2 layer as Keras's `correct_pad` computes it from the
/// actual input size: `kernel / 2` on each side, one less at the top (left) for an even height
/// (width).
func sameStridedPadding(_ x: Tensor, kernel: Int) -> Padding {
    let (height, width) = (x.shape[2], x.shape[3])
    return .explicit(top: kernel / 2 - (1 - height % 2), bottom: kernel / 2, left: kernel / 2 - (1 - width % 2), right: kernel / 2)
}
