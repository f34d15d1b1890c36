import CDNNL

/// Builds a primitive from a oneDNN operation descriptor (any of the `dnnl_*_desc_t` structs).
func makePrimitive<Descriptor>(_ operation: String, _ descriptor: Descriptor, hint: Primitive? = nil,
                               attributes: dnnl_primitive_attr_t? = nil) throws -> Primitive {
    var descriptor = descriptor
    return try withUnsafeBytes(of: &descriptor) { raw in
        try Primitive(operation: operation, descriptor: raw.baseAddress!, attributes: attributes, hint: hint)
    }
}

/// Calls `body` with a pointer to `value`, or with nil when there is no value (optional
/// arguments of oneDNN's C API, such as a convolution's bias descriptor).
func withOptionalPointer<T, R>(_ value: T?, _ body: (UnsafePointer<T>?) throws -> R) rethrows -> R {
    guard var value else { return try body(nil) }
    return try withUnsafePointer(to: &value) { try body($0) }
}

extension Array where Element == Int {
    /// The values as oneDNN dimensions (`dnnl_dim_t`), for its C array parameters.
    var dnnl: [Int64] { map { Int64($0) } }
}

extension Tensor {
    /// This tensor in the layout activations of its element type use (``Layout/blocked(_:_:)``)
    /// for 4-D, row-major otherwise (unless already blocked). Keeps the trace.
    func asActivation(_ operation: String) throws -> Tensor {
        if quantization != nil, shape.count == 4 {
            return layout == .blocked(shape, elementType) ? self : try reordered(to: .blocked(shape, elementType), operation: operation)
        }
        if shape.count == 4 {
            return layout.isBlocked ? self : try reordered(to: .blocked(shape, elementType), operation: operation)
        }
        return layout.isRowMajor ? self : try reordered(to: .rowMajor(shape, elementType), operation: operation)
    }

    /// A tensor with this one's buffer seen as `layout` (same bytes, different description).
    func viewed(as layout: Layout, shape: [Int]) -> Tensor {
        precondition(layout.elementType == elementType, "zoo: viewing \(elementType) elements as \(layout.elementType)")
        return Tensor(shape: shape, buffer: Buffer(storage: buffer.storage, layout: layout), trace: trace, quantization: quantization)
    }

    /// This tensor reordered into `layout`, remembering the copy on the storage so the next
    /// request for the same layout is free until the values change (used for weights).
    func cachedReorder(to layout: Layout, operation: String) throws -> Tensor {
        if buffer.layout == layout { return self }
        let key = layout.key
        if let copy = buffer.storage.derivedCopy(key) { return Tensor(shape: shape, buffer: copy.buffer, trace: trace, quantization: quantization) }
        let copy = try reordered(to: layout, operation: operation)
        buffer.storage.rememberDerivedCopy(copy.detached(), for: key)
        return copy
    }
}

/// Throws unless `tensor` has `rank` dimensions.
func requireRank(_ tensor: Tensor, _ rank: Int, _ operation: String, _ what: String) throws {
    guard tensor.shape.count == rank else {
        throw TensorError.invalidShape(operation: operation, shape: tensor.shape, expected: what)
    }
}

/// Throws unless every value is positive.
func requirePositive(_ values: [Int], _ name: String, _ operation: String) throws {
    guard values.allSatisfy({ $0 > 0 }) else {
        throw TensorError.invalidArgument(operation: operation, message: "\(name) must be positive, got \(values)")
    }
}

/// How many positions a window of `kernel` taps takes, stepping by `stride` over `size`
/// elements padded by `before` and `after` (rounding down; 0 when the window does not fit).
func windowPositions(size: Int, before: Int, after: Int, kernel: Int, stride: Int) -> Int {
    let padded: Int = size + before + after
    return padded < kernel ? 0 : (padded - kernel) / stride + 1
}
