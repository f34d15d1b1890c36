import CDNNL
import Foundation

/// An n-dimensional array of `Float` (or, for activations in mixed precision, bfloat16: see
/// ``ElementType``) held in the layout oneDNN computes on fastest.
///
/// A tensor is a value: operations return new tensors and never change their inputs. Its
/// dimensions are logical and in oneDNN's order (N, C, H, W for images; O, I, H, W for
/// convolution weights) whatever the physical layout. Four-dimensional activations live in the
/// blocked layout `nChw8c` inside a network; arrays come in and go out row-major (NCHW) or
/// channels-last (NHWC), reordered at the edges.
///
/// A tensor recorded on a ``GradientTape`` carries a trace, and operations on it are recorded
/// so that ``GradientTape/gradients(of:)`` can run them backward.
public struct Tensor: @unchecked Sendable {
    /// The logical dimensions (N, C, H, W for 4-D activations).
    public let shape: [Int]
    let buffer: Buffer
    var trace: Trace?
    /// How the integers of a quantized (int8 or uint8) tensor map to values; nil for f32 and bf16.
    public let quantization: Quantization?

    init(shape: [Int], buffer: Buffer, trace: Trace? = nil, quantization: Quantization? = nil) {
        precondition(buffer.layout.elementType.isQuantized == (quantization != nil),
                     "zoo: a \(buffer.layout.elementType) tensor \(quantization == nil ? "without" : "with") a quantization step")
        self.shape = shape
        self.buffer = buffer
        self.trace = trace
        self.quantization = quantization
    }

    /// A tensor with `values` in row-major (C) order: NCHW for images, OIHW for convolution
    /// weights, `[out, in]` for dense weights.
    public init(shape: [Int], values: [Float]) throws {
        let count = shape.reduce(1, *)
        guard values.count == count, shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "Tensor(shape:values:)", shape: shape,
                                           expected: "positive dimensions whose product is the \(values.count) values given")
        }
        let buffer = Buffer(.rowMajor(shape))
        values.withUnsafeBytes { buffer.storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.init(shape: shape, buffer: buffer)
    }

    /// A row-major tensor whose values `initialize` writes; it receives uninitialized memory
    /// for every element. Saves the copy through an array when values are computed.
    public init(shape: [Int], initializingWith initialize: (UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        guard shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "Tensor(shape:initializingWith:)", shape: shape, expected: "positive dimensions")
        }
        let buffer = Buffer(.rowMajor(shape))
        let count = shape.reduce(1, *)
        try initialize(UnsafeMutableBufferPointer(start: buffer.storage.pointer.bindMemory(to: Float.self, capacity: count), count: count))
        self.init(shape: shape, buffer: buffer)
    }

    /// A 4-D tensor from channels-last values, `[N, H, W, C]` as Keras and image files hold
    /// them. The result has logical shape `[N, C, H, W]` in the blocked layout.
    public init(nhwc values: [Float], shape nhwcShape: [Int]) throws {
        guard nhwcShape.count == 4 else {
            throw TensorError.invalidShape(operation: "Tensor(nhwc:shape:)", shape: nhwcShape, expected: "[N, H, W, C]")
        }
        let shape = [nhwcShape[0], nhwcShape[3], nhwcShape[1], nhwcShape[2]]
        guard values.count == nhwcShape.reduce(1, *), shape.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidShape(operation: "Tensor(nhwc:shape:)", shape: nhwcShape,
                                           expected: "positive dimensions whose product is the \(values.count) values given")
        }
        let host = Buffer(.nhwc(shape))
        values.withUnsafeBytes { host.storage.pointer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        self.init(shape: shape, buffer: try reorder(host, to: .blocked(shape)))
    }

    /// A tensor of zeros in row-major layout.
    public static func zeros(_ shape: [Int]) -> Tensor { filled(shape, 0) }

    /// A tensor with every element `value`, in row-major layout.
    public static func filled(_ shape: [Int], _ value: Float) -> Tensor {
        let buffer = Buffer(.rowMajor(shape))
        let count = buffer.layout.byteCount / 4
        buffer.storage.pointer.bindMemory(to: Float.self, capacity: count).initialize(repeating: value, count: count)
        return Tensor(shape: shape, buffer: buffer)
    }

    /// A scalar tensor (shape `[]`).
    public init(scalar: Float) {
        self = Tensor.filled([], scalar)
    }

    /// Number of elements (the product of ``shape``).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The physical layout.
    public var layout: Layout { buffer.layout }

    /// The type of the elements: f32, or bf16 for activations in mixed precision.
    public var elementType: ElementType { buffer.layout.elementType }

    /// The same values with elements of `type` (rounded to nearest even going to bf16), in the
    /// same format; `self` when already of that type. Traced: the gradient comes back in this
    /// tensor's type.
    public func converted(to type: ElementType) throws -> Tensor {
        try converted(to: type, layout: layout.with(type))
    }

    /// The same values with elements of `type`, a 4-D tensor in the activation layout of that
    /// type, in one reorder: a model's input, which would otherwise be converted in its own
    /// format and then reordered (bf16's channels-last from f32's `nChw16c`, whose 3 image
    /// channels are padded to 16: measured 5.2 ms against 2.7 on MobileNetV2's batch of 32 at
    /// 96x96, a tenth of its bf16 pass). Traced, like ``converted(to:)``.
    public func activationConverted(to type: ElementType) throws -> Tensor {
        guard shape.count == 4, elementType != type else { return try converted(to: type) }
        return try converted(to: type, layout: .blocked(shape, type))
    }

    private func converted(to type: ElementType, layout target: Layout) throws -> Tensor {
        if elementType == type { return self }
        precondition(!type.isQuantized, "zoo: converting to \(type) needs a step: use quantized(step:as:)")
        if quantization != nil { return try reordered(to: target, operation: "convert to \(type)") }
        let y = Tensor(shape: shape, buffer: try reorder(buffer, to: target, operation: "convert to \(type)"))
        let source = layout
        return try GradientTape.record("convert to \(type)", inputs: [self], output: y) { dy, _ in
            [try dy.reordered(to: source, operation: "convert to \(type) backward")]
        }
    }

    /// Whether gradients flow back through this tensor on a tape.
    public var isTraced: Bool { trace?.tape != nil }

    /// The same values, no longer recorded on any tape.
    public func detached() -> Tensor { Tensor(shape: shape, buffer: buffer, quantization: quantization) }

    /// Whether `other` is this very value (the same buffer, not merely equal elements): a cheap
    /// test that something derived from a tensor is still current.
    public func isSameValue(as other: Tensor) -> Bool {
        buffer.storage === other.buffer.storage && buffer.layout == other.buffer.layout && shape == other.shape
    }

    /// The values in row-major (C) order: NCHW for 4-D activations.
    public func array() throws -> [Float] {
        try reordered(to: .rowMajor(shape), operation: "Tensor.array").buffer.floats(count: elementCount)
    }

    /// The values of a 4-D tensor in channels-last order, `[N, H, W, C]`.
    public func nhwcArray() throws -> [Float] {
        guard shape.count == 4 else {
            throw TensorError.invalidShape(operation: "Tensor.nhwcArray", shape: shape, expected: "4 dimensions [N, C, H, W]")
        }
        return try reordered(to: .nhwc(shape), operation: "Tensor.nhwcArray").buffer.floats(count: elementCount)
    }

    /// The value of a one-element tensor.
    public func scalar() throws -> Float {
        guard elementCount == 1 else {
            throw TensorError.invalidShape(operation: "Tensor.scalar", shape: shape, expected: "a single element")
        }
        return try array()[0]
    }

    /// The same values in `layout` (a copy unless already there), keeping the trace. A
    /// quantized tensor goes to a floating-point layout dequantized, or to one of its own type
    /// with its step.
    func reordered(to layout: Layout, operation: String = "reorder") throws -> Tensor {
        if buffer.layout == layout { return self }
        guard let quantization else {
            precondition(!layout.elementType.isQuantized, "zoo: \(operation): quantizing needs a step: use quantized(step:as:)")
            return Tensor(shape: shape, buffer: try reorder(buffer, to: layout, operation: operation), trace: trace)
        }
        if layout.elementType.isQuantized {
            precondition(layout.elementType == elementType, "zoo: \(operation): \(elementType) to \(layout.elementType) needs requantized(step:)")
            return Tensor(shape: shape, buffer: try reorder(buffer, to: layout, operation: operation), quantization: quantization)
        }
        return Tensor(shape: shape, buffer: try reorder(buffer, to: layout, scale: quantization.step, operation: operation))
    }

    /// This tensor quantized: each value divided by `step`, rounded to the nearest integer and
    /// saturated into `type` (int8 or uint8), in the activation layout for 4-D tensors. A
    /// quantized tensor is requantized to the new step and type.
    public func quantized(step: Float, as type: ElementType) throws -> Tensor {
        precondition(type.isQuantized, "zoo: quantized(step:as:) to \(type)")
        guard step.isFinite, step > 0 else {
            throw TensorError.invalidArgument(operation: "quantize", message: "the step must be positive and finite, got \(step)")
        }
        if let quantization, quantization.step == step, elementType == type { return self }
        let target = shape.count == 4 ? Layout.blocked(shape, type) : Layout.rowMajor(shape, type)
        let floatType = quantization?.floatType ?? elementType
        let scale = (quantization?.step ?? 1) / step
        return Tensor(shape: shape, buffer: try reorder(buffer, to: target, scale: scale, operation: "quantize"),
                      quantization: Quantization(step: step, floatType: floatType))
    }

    /// This tensor with floating-point elements: a quantized one dequantized to the type it was
    /// quantized from (in the activation layout of that type for 4-D), others unchanged.
    /// Operations without int8 kernels call it on their inputs.
    public func dequantized() throws -> Tensor {
        guard let quantization else { return self }
        let target = shape.count == 4 ? Layout.blocked(shape, quantization.floatType) : Layout.rowMajor(shape, quantization.floatType)
        return try reordered(to: target, operation: "dequantize")
    }

    /// The same values in row-major layout, of the same element type.
    public func rowMajor() throws -> Tensor { try reordered(to: .rowMajor(shape, elementType)) }

    /// A 4-D tensor in the layout activations of its element type use (f32: `nChw8c` or
    /// `nChw16c`; bf16: what oneDNN's bf16 convolutions choose, NHWC with AMX); others unchanged.
    public func blocked() throws -> Tensor {
        guard shape.count == 4, !buffer.layout.isBlocked else { return self }
        return try reordered(to: .blocked(shape, elementType))
    }

    /// Reads the values, row-major and as f32 (converted when the tensor holds bf16).
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        // reordered(to:) dequantizes int8 tensors on the way.
        let plain = try reordered(to: .rowMajor(shape))
        let pointer = plain.buffer.storage.pointer.bindMemory(to: Float.self, capacity: elementCount)
        return try withExtendedLifetime(plain) { try body(UnsafeBufferPointer(start: pointer, count: elementCount)) }
    }

    /// The physical elements, padding included, in this tensor's own layout (which must be
    /// f32). Element-wise work on two tensors of the same layout can run over these directly.
    func physicalFloats() -> UnsafeMutableBufferPointer<Float> {
        precondition(elementType == .float32, "zoo: physicalFloats of a \(elementType) tensor")
        let count = buffer.layout.byteCount / 4
        return UnsafeMutableBufferPointer(start: buffer.storage.pointer.bindMemory(to: Float.self, capacity: count), count: count)
    }
}

extension Buffer {
    /// Copies the first `count` floats out (the buffer must be plain).
    func floats(count: Int) -> [Float] {
        let pointer = storage.pointer.bindMemory(to: Float.self, capacity: count)
        return Array(UnsafeBufferPointer(start: pointer, count: count))
    }
}

/// How the integers of a quantized tensor stand for values: symmetric, `value = integer * step`
/// (no zero point, so zero padding and ReLU need no correction).
public struct Quantization: Sendable, Hashable {
    /// The value of one integer unit.
    public var step: Float
    /// The floating-point type the values came from and return to when dequantized (f32, or
    /// bf16 in a mixed-precision pass).
    public var floatType: ElementType

    public init(step: Float, floatType: ElementType) {
        self.step = step
        self.floatType = floatType
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(layout)\(isTraced ? ", traced" : ""))" }
}
