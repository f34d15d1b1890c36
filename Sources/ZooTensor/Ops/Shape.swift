import CDNNL

/// The same elements, in row-major order, with other dimensions (as `torch.reshape` on a
/// contiguous tensor). A 4-D blocked tensor is reordered to NCHW first.
public func reshape(_ x: Tensor, _ shape: [Int]) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "reshape"
    guard shape.reduce(1, *) == x.elementCount, shape.allSatisfy({ $0 > 0 }) else {
        throw TensorError.shapeMismatch(operation: operation, expected: "the same number of elements", lhs: x.shape, rhs: shape)
    }
    let plain = try x.detached().rowMajor()
    let y = plain.viewed(as: .rowMajor(shape, plain.elementType), shape: shape)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        [try dy.rowMajor().viewed(as: .rowMajor(x.shape, dy.elementType), shape: x.shape)]
    }
}

/// `[N, C, H, W]` to `[N, C * H * W]` in PyTorch's order (channel-major). Keras flattens
/// channels-last; a Keras dense layer after a flatten needs its rows permuted when imported.
public func flatten(_ x: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    guard x.shape.count >= 2 else {
        throw TensorError.invalidShape(operation: "flatten", shape: x.shape, expected: "at least 2 dimensions [N, ...]")
    }
    return try reshape(x, [x.shape[0], x.shape.dropFirst().reduce(1, *)])
}

/// Concatenates tensors along `axis` (1, the channel axis, by default). All other dimensions
/// must agree. The result has the first tensor's element type (the others are converted). The
/// first input's gradient is the first slice, and so on.
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
    // Quantized pieces of one type concatenate in int8, requantized to the largest step among
    // them (a reorder each, which the copy into the output needs anyway); others in floating point.
    let quantization = tensors.allSatisfy({ $0.elementType == first.elementType }) ? tensors.compactMap(\.quantization).max { $0.step < $1.step } : nil
    let inputs = try tensors.map { tensor in
        if let quantization, tensor.quantization != nil {
            return try tensor.quantized(step: quantization.step, as: first.elementType).asActivation(operation).detached()
        }
        return try tensor.dequantized().converted(to: (first.quantization?.floatType ?? first.elementType)).asActivation(operation).detached()
    }
    var shape = first.shape
    shape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
    let key = PrimitiveKey("concat", layouts: inputs.map(\.layout), [Int64(axis)])
    let primitive = try PrimitiveCache.primitive(key) {
        var pd: dnnl_primitive_desc_t?
        var destination = Layout.any(shape, inputs[0].elementType).desc
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
    let y = Tensor(shape: shape, buffer: output, quantization: quantization)
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
    let target = source.layout.isBlocked ? Layout.blocked(shape, x.elementType) : Layout.rowMajor(shape, x.elementType)
    return Tensor(shape: shape, buffer: try reorder(view, to: target, operation: operation))
}

/// Pads the spatial dimensions of `[N, C, H, W]` with zeros: Keras's `ZeroPadding2D`.
public func zeroPad2d(_ x: Tensor, top: Int, bottom: Int, left: Int, right: Int) throws -> Tensor {
    let operation = "zeroPad2d"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    guard [top, bottom, left, right].allSatisfy({ $0 >= 0 }) else {
        throw TensorError.invalidArgument(operation: operation, message: "padding must not be negative, got \([top, bottom, left, right])")
    }
    // Zero is integer zero in a quantized tensor, so int8 pads as it is.
    let source = try x.asActivation(operation).detached()
    let shape = [x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right]
    let output = Buffer(.blocked(shape, source.elementType))
    output.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: output.layout.byteCount)
    var sub = dnnl_memory_desc_t()
    var parent = output.layout.desc
    try check(dnnl_memory_desc_init_submemory(&sub, &parent, x.shape.dnnl, [0, 0, top, left].dnnl), operation)
    try reorder(source.buffer, into: Buffer(storage: output.storage, layout: Layout(sub)), operation: operation)
    let y = Tensor(shape: shape, buffer: output, quantization: x.quantization)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        let gradient = try dy.asActivation(operation)
        var sub = dnnl_memory_desc_t()
        var parent = gradient.layout.desc
        try check(dnnl_memory_desc_init_submemory(&sub, &parent, x.shape.dnnl, [0, 0, top, left].dnnl), operation + " backward")
        let view = Buffer(storage: gradient.buffer.storage, layout: Layout(sub))
        return [Tensor(shape: x.shape, buffer: try reorder(view, to: source.layout, operation: operation + " backward"))]
    }
}

/// ShuffleNet's channel shuffle of `[N, C, H, W]`: the channels, seen as `groups` rows of
/// `C / groups`, are transposed, so that output channel `k * groups + i` is input channel
/// `i * (C / groups) + k` (torch: view as `[N, groups, C / groups, H, W]`, transpose dimensions
/// 1 and 2, view back). The gradient is the inverse permutation. The result is blocked.
///
/// oneDNN's shuffle primitive does it in one pass on the blocked layout, channel-padded ones
/// included (measured at N=32, 24x24, 2 groups of 58, 48 or 116 channels: `jit:avx512_core`
/// forward and backward; on NCHW or NHWC it has only `ref:any`).
public func channelShuffle(_ x: Tensor, groups: Int) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "channelShuffle"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    let channels = x.shape[1]
    guard groups > 0, channels % groups == 0 else {
        throw TensorError.invalidArgument(operation: operation, message: "\(channels) channels do not split into \(groups) groups")
    }
    if groups == 1 || groups == channels { return x }
    let input = try x.asActivation(operation).detached()
    // oneDNN's "group size" G transposes the channels seen as C / G rows of G: torch's groups
    // are oneDNN's C / G.
    let groupSize = Int64(channels / groups)
    let key = PrimitiveKey("shuffle_forward", layouts: [input.layout], [groupSize])
    let forward = try PrimitiveCache.primitive(key) {
        var desc = dnnl_shuffle_desc_t()
        var data = input.layout.desc
        try check(dnnl_shuffle_forward_desc_init(&desc, dnnl_forward_training, &data, 1, groupSize), operation)
        return try makePrimitive(operation, desc)
    }
    let output = Buffer(input.layout)
    try forward.execute(operation, [(DNNL_ARG_SRC, input.buffer), (DNNL_ARG_DST, output)])
    let y = Tensor(shape: x.shape, buffer: output)
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        let backward = operation + " backward"
        let gradient = try dy.reordered(to: input.layout, operation: backward)
        let key = PrimitiveKey("shuffle_backward", layouts: [input.layout], [groupSize])
        let primitive = try PrimitiveCache.primitive(key) {
            var desc = dnnl_shuffle_desc_t()
            var data = input.layout.desc
            try check(dnnl_shuffle_backward_desc_init(&desc, &data, 1, groupSize), backward)
            return try makePrimitive(backward, desc, hint: forward)
        }
        let dx = Buffer(input.layout)
        try primitive.execute(backward, [(DNNL_ARG_DIFF_DST, gradient.buffer), (DNNL_ARG_DIFF_SRC, dx)])
        return [Tensor(shape: x.shape, buffer: dx)]
    }
}

/// The channels of `x` `[N, C, ...]` before `index` and from it on, as two tensors (torch's
/// `x.chunk(2, dim=1)` with `index = C / 2`; ShuffleNetV2's split). Each part's gradient goes to
/// its channels of `x`, zeros to the others. 4-D parts are blocked.
///
/// Copies by oneDNN reorders. A part of a blocked tensor is read in place when `index` is a
/// multiple of the channel block; otherwise (ShuffleNetV2's 58 of 116 channels) from one
/// row-major copy of `x` that both parts share, since oneDNN's sub-memories of a blocked layout
/// must start on a block.
public func splitChannels(_ x: Tensor, at index: Int) throws -> (Tensor, Tensor) {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "splitChannels"
    guard x.shape.count >= 2 else {
        throw TensorError.invalidShape(operation: operation, shape: x.shape, expected: "at least 2 dimensions [N, C, ...]")
    }
    let channels = x.shape[1]
    guard index > 0, index < channels else {
        throw TensorError.invalidArgument(operation: operation, message: "split index \(index) is not inside the \(channels) channels")
    }
    let input = try x.asActivation(operation).detached()
    let source = input.layout.isBlocked && !blockAligned(offset: index, size: channels - index, channels: channels)
        ? try input.rowMajor() : input
    func part(_ offset: Int, _ size: Int) throws -> Tensor {
        var shape = x.shape
        shape[1] = size
        let y = try channelSlice(source, offset: offset, size: size,
                                 into: x.shape.count == 4 ? .blocked(shape, x.elementType) : .rowMajor(shape, x.elementType),
                                 operation: operation)
        return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
            [try embedChannels(dy, into: x.shape, offset: offset, operation: operation + " backward")]
        }
    }
    return (try part(0, index), try part(index, channels - index))
}

/// Whether `size` channels from `offset` of `channels` form a sub-memory of the blocked layout:
/// oneDNN wants it to start on a block, and end on one or at the last channel.
private func blockAligned(offset: Int, size: Int, channels: Int) -> Bool {
    let block = Layout.activationBlockSize
    return offset % block == 0 && (size % block == 0 || offset + size == channels)
}

/// `size` channels of `source` from `offset`, copied into a new buffer in `layout`.
private func channelSlice(_ source: Tensor, offset: Int, size: Int, into layout: Layout, operation: String) throws -> Tensor {
    var shape = source.shape
    shape[1] = size
    var offsets = [Int](repeating: 0, count: shape.count)
    offsets[1] = offset
    var sub = dnnl_memory_desc_t()
    var parent = source.layout.desc
    try check(dnnl_memory_desc_init_submemory(&sub, &parent, shape.dnnl, offsets.dnnl), operation,
              "channels \(offset)..<\(offset + size) of \(source.shape)")
    return Tensor(shape: shape, buffer: try reorder(Buffer(storage: source.buffer.storage, layout: Layout(sub)), to: layout,
                                                    operation: operation))
}

/// A tensor of `shape`, zero but for channels `offset..<offset + C` of `part`'s `C`: the
/// gradient of a channel slice. Blocked when the part lies on block boundaries, else row-major.
private func embedChannels(_ part: Tensor, into shape: [Int], offset: Int, operation: String) throws -> Tensor {
    let blocked = shape.count == 4 && blockAligned(offset: offset, size: part.shape[1], channels: shape[1])
    let output = Buffer(blocked ? .blocked(shape, part.elementType) : .rowMajor(shape, part.elementType))
    output.storage.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: output.layout.byteCount)
    var offsets = [Int](repeating: 0, count: shape.count)
    offsets[1] = offset
    var sub = dnnl_memory_desc_t()
    var parent = output.layout.desc
    try check(dnnl_memory_desc_init_submemory(&sub, &parent, part.shape.dnnl, offsets.dnnl), operation)
    try reorder(part.buffer, into: Buffer(storage: output.storage, layout: Layout(sub)), operation: operation)
    return Tensor(shape: shape, buffer: output)
}
