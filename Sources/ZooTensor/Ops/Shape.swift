import CDNNL

/// The same elements, in row-major order, with other dimensions (as `torch.reshape` on a
/// contiguous tensor). A 4-D blocked tensor is reordered to NCHW first.
public func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    let operation = "reshape"
    guard shape.reduce(1, *) == x.elementCount, shape.allSatisfy({ $0 > 0 }) else {
        throw TensorError.shapeMismatch(operation: operation, expected: "the same number of elements", lhs: x.shape, rhs: shape)
    }
    let plain = try x.detached().rowMajor()
    let y = plain.viewed(as: .rowMajor(shape), shape: shape)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        [try dy.rowMajor().viewed(as: .rowMajor(x.shape), shape: x.shape)]
    }
}

/// `[N, C, H, W]` to `[N, C * H * W]` in PyTorch's order (channel-major). Keras flattens
/// channels-last; a Keras dense layer after a flatten needs its rows permuted when imported.
public func flatten(_ x: Tensor) throws -> Tensor {
    guard x.shape.count >= 2 else {
        throw TensorError.invalidShape(operation: "flatten", shape: x.shape, expected: "at least 2 dimensions [N, ...]")
    }
    return try reshape(x, [x.shape[0], x.shape.dropFirst().reduce(1, *)])
}

/// Concatenates tensors along `axis` (1, the channel axis, by default). All other dimensions
/// must agree. The first input's gradient is the first slice, and so on.
public func concat(_ tensors: [Tensor], axis: Int = 1) throws -> Tensor {
    let operation = "concat"
    guard let first = tensors.first else {
        throw TensorError.invalidArgument(operation: operation, message: "needs at least one tensor")
    }
    guard axis >= 0, axis < first.shape.count else {
        throw TensorError.invalidArgument(operation: operation, message: "axis \(axis) is out of range for shape \(first.shape)")
    }
    for tensor in tensors.dropFirst() {
        var lhs = first.shape, rhs = tensor.shape
        if lhs.count == rhs.count { lhs[axis] = 0; rhs[axis] = 0 }
        guard lhs == rhs else {
            throw TensorError.shapeMismatch(operation: operation, expected: "all dimensions but axis \(axis) agree",
                                            lhs: first.shape, rhs: tensor.shape)
        }
    }
    if tensors.count == 1 { return first }
    let inputs = try tensors.map { try $0.asActivation(operation).detached() }
    var shape = first.shape
    shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
    let key = PrimitiveKey("concat", layouts: inputs.map(\.layout), [Int64(axis)])
    let primitive = try PrimitiveCache.primitive(key) {
        var pd: dnnl_primitive_desc_t?
        var destination = Layout.any(shape).desc
        let sources = inputs.map(\.layout.desc)
        try withScratchpadAttributes(nil, operation) { attributes in
            try check(dnnl_concat_primitive_desc_create(&pd, &destination, Int32(sources.count), Int32(axis), sources, attributes,
                                                        DNNL.engine), operation)
        }
        return try Primitive(descriptor: pd!, operation: operation)
    }
    let output = Buffer(primitive.layout(dnnl_query_dst_md))
    var arguments = [(DNNL_ARG_DST, output)]
    for (index, input) in inputs.enumerated() { arguments.append((DNNL_ARG_MULTIPLE_SRC + Int32(index), input.buffer)) }
    try primitive.execute(operation, arguments)
    let y = Tensor(shape: shape, buffer: output)
    let sizes = tensors.map { $0.shape[axis] }
    return try GradientTape.record(operation, inputs: tensors, output: y) { dy, needed in
        var offset = 0
        var gradients: [Tensor?] = []
        for (index, size) in sizes.enumerated() {
            gradients.append(needed[index] ? try slice(dy, axis: axis, offset: offset, size: size, operation: operation + " backward") : nil)
            offset += size
        }
        return gradients
    }
}

/// A copy of `size` positions of `x` along `axis` starting at `offset`.
func slice(_ x: Tensor, axis: Int, offset: Int, size: Int, operation: String) throws -> Tensor {
    var shape = x.shape
    shape[axis] = size
    var offsets = [Int](repeating: 0, count: shape.count)
    offsets[axis] = offset
    // A sub-block of a blocked layout must start and end on block boundaries; otherwise slice
    // a plain copy.
    let block = Layout.activationBlockSize
    let source = (x.layout.isBlocked && (offset % block != 0 || size % block != 0)) ? try x.rowMajor() : x
    var sub = dnnl_memory_desc_t()
    var parent = source.layout.desc
    try check(dnnl_memory_desc_init_submemory(&sub, &parent, shape.dnnl, offsets.dnnl), operation, "slice \(shape) at \(offsets) of \(x.shape)")
    let view = Buffer(storage: source.buffer.storage, layout: Layout(sub))
    let target = source.layout.isBlocked ? Layout.blocked(shape) : Layout.rowMajor(shape)
    return Tensor(shape: shape, buffer: try reorder(view, to: target, operation: operation))
}

/// Pads the spatial dimensions of `[N, C, H, W]` with zeros: Keras's `ZeroPadding2D`.
public func zeroPad2d(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) throws -> Tensor {
    let operation = "zeroPad2d"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    guard [top, bottom, left, right].allSatisfy({ $0 >= 0 }) else {
        throw TensorError.invalidArgument(operation: operation, message: "padding must not be negative, got \([top, bottom, left, right])")
    }
    let source = try x.asActivation(operation).detached()
    let shape = [x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right]
    let output = Buffer(.blocked(shape))
    output.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: output.layout.byteCount)
    var sub = dnnl_memory_desc_t()
    var parent = output.layout.desc
    try check(dnnl_memory_desc_init_submemory(&sub, &parent, x.shape.dnnl, [0, 0, top, left].dnnl), operation)
    try reorder(source.buffer, into: Buffer(storage: output.storage, layout: Layout(sub)), operation: operation)
    let y = Tensor(shape: shape, buffer: output)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        let gradient = try dy.asActivation(operation)
        var sub = dnnl_memory_desc_t()
        var parent = gradient.layout.desc
        try check(dnnl_memory_desc_init_submemory(&sub, &parent, x.shape.dnnl, [0, 0, top, left].dnnl), operation + " backward")
        let view = Buffer(storage: gradient.buffer.storage, layout: Layout(sub))
        return [Tensor(shape: x.shape, buffer: try reorder(view, to: source.layout, operation: operation + " backward"))]
    }
}
