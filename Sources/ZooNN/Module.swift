import Foundation
import ZooTensor

/// How a forward pass runs: in training or inference mode, recording on a tape or not, in
/// which precision, and where dropout draws its randomness.
public final class ForwardContext {
    /// Training mode: batch norm uses batch statistics (unless its layer is frozen) and
    /// dropout drops. Inference mode uses running statistics and no dropout.
    public let isTraining: Bool
    /// The tape that records for backward; nil when no gradients are wanted.
    public let tape: GradientTape?
    /// Randomness for dropout and other stochastic layers.
    public var generator: SeededGenerator

    /// The element type of activations: a model converts its input to it, and every layer
    /// computes in its input's type. bf16 is mixed precision: weights, their gradients and
    /// optimizer state stay f32, and so do batch-norm statistics, logits and losses.
    public let activationType: ElementType

    public init(training: Bool, tape: GradientTape? = nil, seed: UInt64 = 0, activationType: ElementType = .float32) {
        isTraining = training
        self.tape = tape
        generator = SeededGenerator(seed: seed)
        self.activationType = activationType
    }

    /// When set, convolutions record the ranges of what they read and write, for int8
    /// quantization, and run in floating point.
    public var calibration: ActivationCalibration?

    /// Inference mode, no tape, activations of `activationType`.
    public static func inference(_ activationType: ElementType = .float32) -> ForwardContext {
        ForwardContext(training: false, activationType: activationType)
    }

    /// Names of layers whose outputs ``tap(_:_:)`` keeps in ``captured``.
    public var capturing: Set<String> = []
    /// Outputs of the layers named in ``capturing``, by layer name.
    public private(set) var captured: [String: Tensor] = [:]
    /// Called with every named layer output (summaries use it to learn output shapes).
    public var observer: ((String, Tensor) -> Void)?

    /// Whether anyone looks at the output of the layer `name`: layers that are folded into
    /// another operation (a zero padding absorbed by the following convolution, a batch norm
    /// folded into the convolution before it) compute their own output only then.
    public func isWatching(_ name: String) -> Bool {
        observer != nil || capturing.contains(name)
    }

    /// Marks `output` as the output of the layer `name`: keeps it when that layer is being
    /// captured and shows it to the observer. Returns `output` unchanged.
    @discardableResult
    public func tap(_ name: String, _ output: Tensor) -> Tensor {
        if capturing.contains(name) { captured[name] = output }
        observer?(name, output)
        return output
    }

    /// A parameter's value as this pass sees it: traced on the tape when trainable.
    public func value(_ parameter: Parameter) -> Tensor {
        tape?.watch(parameter) ?? parameter.value
    }
}

/// A node of a model: it owns parameters and child modules, which it finds by reflection
/// over its stored properties (`Parameter`, `Module`, and arrays of modules), named by the
/// property name. A parameter's full name joins the names on its path with dots
/// (`features.3.weight`), as PyTorch state dictionaries do.
open class Module {
    public init() {}

    /// This module's own parameters, in declaration order.
    open var localParameters: [(name: String, parameter: Parameter)] {
        reflected().compactMap { name, value in (value as? Parameter).map { (name, $0) } }
    }

    /// This module's direct children, in declaration order. An array property `blocks`
    /// contributes `blocks.0`, `blocks.1`, ...
    open var children: [(name: String, module: Module)] {
        reflected().flatMap { name, value -> [(name: String, module: Module)] in
            if let module = value as? Module { return [(name, module)] }
            if let modules = value as? [Module] { return modules.enumerated().map { ("\(name).\($0.offset)", $0.element) } }
            return []
        }
    }

    private func reflected() -> [(String, Any)] {
        var mirrors: [Mirror] = []
        var mirror: Mirror? = Mirror(reflecting: self)
        while let current = mirror {
            mirrors.insert(current, at: 0)
            mirror = current.superclassMirror
        }
        return mirrors.flatMap { mirror in
            mirror.children.compactMap { child in child.label.map { (Self.propertyName($0), child.value) } }
        }
    }

    /// Strips the storage prefixes Swift gives wrapped and lazy properties.
    private static func propertyName(_ label: String) -> String {
        label.hasPrefix("$__lazy_storage_$_") ? String(label.dropFirst(18)) : (label.hasPrefix("_") ? String(label.dropFirst()) : label)
    }

    /// Every parameter in the tree with its full dotted name, depth first in declaration order.
    public func namedParameters(prefix: String = "") -> [(name: String, parameter: Parameter)] {
        let own = localParameters.map { (prefix + $0.name, $0.parameter) }
        return own + children.flatMap { $0.module.namedParameters(prefix: prefix + $0.name + ".") }
    }

    /// Every module in the tree with its dotted path ("" for this one), depth first.
    public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
        [(prefix.isEmpty ? "" : String(prefix.dropLast()), self)]
            + children.flatMap { $0.module.namedModules(prefix: prefix + $0.name + ".") }
    }

    /// Every parameter, learned weights and running statistics alike.
    public var parameters: [Parameter] { namedParameters().map(\.parameter) }

    /// The parameters an optimizer updates.
    public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }

    /// Stops gradient work for every parameter in this subtree (batch norm in it then runs in
    /// inference mode, as a frozen Keras layer does).
    public func freeze() { parameters.forEach { $0.isTrainable = false } }

    /// Makes every learned parameter in this subtree trainable again.
    public func unfreeze() { parameters.forEach { $0.isTrainable = true } }

    /// Whether no parameter of this subtree is trainable.
    public var isFrozen: Bool { !parameters.contains { $0.isTrainable } }

    /// Number of values in this subtree's parameters.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.elementCount } }
}

/// A module that maps one tensor to another.
public protocol Layer: Module {
    /// Runs the layer on `x`.
    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor
}

/// Layers applied one after another; children are named `0`, `1`, ... as in PyTorch.
public final class Sequential: Module, Layer {
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) {
        self.layers = layers
    }

    public convenience init(@LayerBuilder _ build: () -> [any Layer]) {
        self.init(build())
    }

    public override var children: [(name: String, module: Module)] {
        layers.enumerated().map { ("\($0.offset)", $0.element) }
    }

    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try layers.reduce(x) { try $1($0, context) }
    }
}

/// Builds a list of layers from a block of layer expressions.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first: [any Layer]) -> [any Layer] { first }
    public static func buildEither(second: [any Layer]) -> [any Layer] { second }
}
