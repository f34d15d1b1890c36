import CDNNL

/// The settings of a 2-D pooling window.
public struct Pool2DOptions: Sendable, Hashable {
    /// Window size, `[height, width]`.
    public var kernel: [Int]
    /// Step between windows, `[height, width]`.
    public var stride: [Int]
    public var padding: Padding
    /// Round the output size up (PyTorch `ceil_mode=True`) instead of down; the last window
    /// must still start inside the input or its left/top padding, as in PyTorch.
    public var ceilMode: Bool
    /// For average pooling: divide by the whole window, padding included (PyTorch's default
    /// `count_include_pad=True`), or only by the input elements it covers (Keras).
    public var countIncludesPadding: Bool

    public init(kernel: [Int], stride: [Int]? = nil, padding: Padding = .valid, ceilMode: Bool = false,
                countIncludesPadding: Bool = true) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
        self.ceilMode = ceilMode
        self.countIncludesPadding = countIncludesPadding
    }

    public init(kernel: Int, stride: Int? = nil, padding: Padding = .valid, ceilMode: Bool = false,
                countIncludesPadding: Bool = true) {
        self.init(kernel: [kernel, kernel], stride: stride.map { [$0, $0] }, padding: padding, ceilMode: ceilMode,
                  countIncludesPadding: countIncludesPadding)
    }
}

enum PoolingKind: Int64 {
    case max, average
}

/// A pooling window's shapes resolved for one input size.
struct PoolingGeometry {
    let kind: PoolingKind
    let inputShape: [Int]
    let outputShape: [Int]
    let kernel: [Int]
    let stride: [Int]
    let padBefore: [Int]
    /// Padding after, including the extra rows/columns ceil mode adds.
    let padAfter: [Int]
    /// Padding after as the user asked for it; average pooling in PyTorch's ceil mode counts
    /// only this much of the window's overhang.
    let requestedPadAfter: [Int]
    let countIncludesPadding: Bool

    init(_ kind: PoolingKind, input: [Int], options: Pool2DOptions, operation: String) throws {
        guard input.count == 4 else { throw TensorError.invalidShape(operation: operation, shape: input, expected: "input [N, C, H, W]") }
        guard options.kernel.count == 2, options.stride.count == 2 else {
            throw TensorError.invalidArgument(operation: operation, message: "kernel and stride need 2 values, got \(options.kernel) and \(options.stride)")
        }
        try requirePositive(options.kernel, "kernel", operation)
        try requirePositive(options.stride, "stride", operation)
        let size = [input[2], input[3]]
        let (before, after) = options.padding.amounts(size: size, kernel: options.kernel, stride: options.stride)
        guard (before + after).allSatisfy({ $0 >= 0 }), (0..<2).allSatisfy({ max(before[$0], after[$0]) < options.kernel[$0] || options.padding == .same }) else {
            throw TensorError.invalidArgument(operation: operation, message: "padding \(options.padding) must be non-negative and smaller than the kernel \(options.kernel)")
        }
        var output = [0, 0]
        var padAfter = after
        for axis in 0..<2 {
            let floor = windowPositions(size: size[axis], before: before[axis], after: after[axis], kernel: options.kernel[axis], stride: options.stride[axis])
            guard floor > 0 else {
                throw TensorError.invalidShape(operation: operation, shape: input,
                                               expected: "spatial size at least the kernel \(options.kernel) after padding")
            }
            var positions = floor
            if options.ceilMode {
                let span = size[axis] + before[axis] + after[axis] - options.kernel[axis]
                positions = (span + options.stride[axis] - 1) / options.stride[axis] + 1
                // PyTorch: the last window must start inside the input or the leading padding.
                if (positions - 1) * options.stride[axis] >= size[axis] + before[axis] { positions -= 1 }
            }
            output[axis] = positions
            padAfter[axis] = max(after[axis], (positions - 1) * options.stride[axis] + options.kernel[axis] - size[axis] - before[axis])
        }
        self.kind = kind
        inputShape = input
        outputShape = [input[0], input[1], output[0], output[1]]
        kernel = options.kernel
        stride = options.stride
        padBefore = before
        self.padAfter = padAfter
        requestedPadAfter = after
        countIncludesPadding = options.countIncludesPadding
    }

    var algorithm: dnnl_alg_kind_t {
        switch kind {
        case .max: return dnnl_pooling_max
        case .average: return countIncludesPadding ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding
        }
    }

    var settings: [Int64] {
        var values = inputShape + kernel
        values += stride + padBefore
        values += padAfter
        return values.map { Int64($0) } + [kind.rawValue, Int64(algorithm.rawValue)]
    }

    /// PyTorch divides a ceil-mode window that overhangs the requested padding by the part
    /// inside input + padding, while oneDNN divides by the whole kernel. This is the per-position
    /// factor from oneDNN's result to PyTorch's, or nil where the two agree everywhere.
    var divisorCorrection: [Float]? {
        guard kind == .average, countIncludesPadding, padAfter != requestedPadAfter else { return nil }
        func covered(_ axis: Int, _ position: Int) -> Int {
            let start = position * stride[axis] - padBefore[axis]
            let end = min(start + kernel[axis], inputShape[axis + 2] + requestedPadAfter[axis])
            return end - start
        }
        var factors: [Float] = []
        for row in 0..<outputShape[2] {
            for column in 0..<outputShape[3] {
                factors.append(Float(kernel[0] * kernel[1]) / Float(covered(0, row) * covered(1, column)))
            }
        }
        return factors
    }

    func forwardPrimitive(source: Layout, training: Bool, operation: String) throws -> Primitive {
        let key = PrimitiveKey("pool_forward", layouts: [source], settings + [training ? 1 : 0])
        return try PrimitiveCache.primitive(key) {
            var desc = dnnl_pooling_desc_t()
            var src = source.desc, dst = Layout.any(outputShape, source.elementType).desc
            try check(dnnl_pooling_forward_desc_init(&desc, training ? dnnl_forward_training : dnnl_forward_inference, algorithm,
                                                     &src, &dst, stride.dnnl, kernel.dnnl, padBefore.dnnl, padAfter.dnnl), operation)
            return try makePrimitive(operation, desc)
        }
    }

    func backwardPrimitive(source: Layout, forward: Primitive, operation: String) throws -> Primitive {
        let key = PrimitiveKey("pool_backward", layouts: [source, forward.layout(dnnl_query_dst_md)], settings)
        return try PrimitiveCache.primitive(key) {
            var desc = dnnl_pooling_desc_t()
            var diffSrc = source.desc, diffDst = forward.layout(dnnl_query_dst_md).desc
            try check(dnnl_pooling_backward_desc_init(&desc, algorithm, &diffSrc, &diffDst,
                                                      stride.dnnl, kernel.dnnl, padBefore.dnnl, padAfter.dnnl), operation)
            return try makePrimitive(operation, desc, hint: forward)
        }
    }
}

/// Max pooling over `[N, C, H, W]`. Padding never wins the max (it counts as minus infinity).
public func maxPool2d(_ x: Tensor, _ options: Pool2DOptions) throws -> Tensor {
    try pool2d(.max, x, options, operation: "maxPool2d")
}

/// Average pooling over `[N, C, H, W]`; `options.countIncludesPadding` chooses the divisor at
/// the borders (PyTorch counts padding, Keras does not).
public func avgPool2d(_ x: Tensor, _ options: Pool2DOptions) throws -> Tensor {
    try pool2d(.average, x, options, operation: "avgPool2d")
}

private func pool2d(_ kind: PoolingKind, _ x: Tensor, _ options: Pool2DOptions, operation: String) throws -> Tensor {
    let geometry = try PoolingGeometry(kind, input: x.shape, options: options, operation: operation)
    // Quantized inputs pool in int8 (the maximum and the mean, rounded, of integers of one step)
    // unless a divisor correction follows.
    let x = geometry.divisorCorrection == nil ? x : try x.dequantized()
    let source = try x.asActivation(operation)
    let training = source.isTraced
    let forward = try geometry.forwardPrimitive(source: source.layout, training: training, operation: operation)
    let output = Buffer(forward.layout(dnnl_query_dst_md))
    var arguments = [(DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DST, output)]
    let workspace = training ? forward.workspaceLayout.map { Buffer($0) } : nil
    if let workspace { arguments.append((DNNL_ARG_WORKSPACE, workspace)) }
    try forward.execute(operation, arguments)
    var y = Tensor(shape: geometry.outputShape, buffer: output, quantization: x.quantization)
    let correction = try geometry.divisorCorrection.map { try Tensor(shape: [1, 1] + geometry.outputShape[2...], values: $0) }
    if let correction { y = try broadcastMultiply(y, correction, operation: operation) }
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        var gradient = try dy.reordered(to: output.layout, operation: operation + " backward")
        if let correction { gradient = try broadcastMultiply(gradient, correction, operation: operation + " backward") }
        let backward = try geometry.backwardPrimitive(source: source.layout, forward: forward, operation: operation + " backward")
        let dx = Buffer(source.layout)
        var arguments = [(DNNL_ARG_DIFF_DST, gradient.buffer), (DNNL_ARG_DIFF_SRC, dx)]
        if let workspace { arguments.append((DNNL_ARG_WORKSPACE, workspace)) }
        try backward.execute(operation + " backward", arguments)
        return [Tensor(shape: geometry.inputShape, buffer: dx)]
    }
}

/// `x * factors`, with `factors` broadcast over the dimensions where it has size 1 (untraced;
/// pooling's `[1, 1, H, W]` divisor corrections, channel and sample scales). The result has
/// `x`'s layout; the factors are converted to its element type.
func broadcastMultiply(_ x: Tensor, _ factors: Tensor, operation: String) throws -> Tensor {
    let factors = try factors.reordered(to: factors.layout.with(x.elementType), operation: operation)
    let key = PrimitiveKey("binary_broadcast", layouts: [x.layout, factors.layout], [Int64(dnnl_binary_mul.rawValue)])
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_binary_desc_t()
        var src0 = x.layout.desc, src1 = factors.layout.desc
        try check(dnnl_binary_desc_init(&desc, dnnl_binary_mul, &src0, &src1, &src0), operation)
        return try makePrimitive(operation, desc)
    }
    let output = Buffer(x.layout)
    try primitive.execute(operation, [(DNNL_ARG_SRC_0, x.buffer), (DNNL_ARG_SRC_1, factors.buffer), (DNNL_ARG_DST, output)])
    return Tensor(shape: x.shape, buffer: output)
}

/// The mean over each channel's whole feature map: `[N, C, H, W]` to `[N, C]`.
public func globalAvgPool2d(_ x: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "globalAvgPool2d"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    let pooled = try avgPool2d(x, Pool2DOptions(kernel: [x.shape[2], x.shape[3]], stride: [1, 1]))
    return try reshape(pooled, [x.shape[0], x.shape[1]])
}

/// The maximum over each channel's whole feature map: `[N, C, H, W]` to `[N, C]`.
public func globalMaxPool2d(_ x: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "globalMaxPool2d"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    let pooled = try maxPool2d(x, Pool2DOptions(kernel: [x.shape[2], x.shape[3]], stride: [1, 1]))
    return try reshape(pooled, [x.shape[0], x.shape[1]])
}

/// PyTorch's adaptive average pooling of `[N, C, H, W]` to `[N, C, outputSize[0], outputSize[1]]`:
/// output cell `i` averages input rows `floor(i * H / out)` up to `ceil((i + 1) * H / out)`
/// (and likewise for columns), so any input size maps onto the grid, smaller ones by repetition.
public func adaptiveAvgPool2d(_ x: Tensor, outputSize: [Int]) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "adaptiveAvgPool2d"
    try requireRank(x, 4, operation, "input [N, C, H, W]")
    guard outputSize.count == 2 else {
        throw TensorError.invalidArgument(operation: operation, message: "output size needs 2 values, got \(outputSize)")
    }
    try requirePositive(outputSize, "output size", operation)
    let (height, width) = (x.shape[2], x.shape[3])
    if height % outputSize[0] == 0, width % outputSize[1] == 0 {
        let kernel = [height / outputSize[0], width / outputSize[1]]
        return try avgPool2d(x, Pool2DOptions(kernel: kernel, stride: kernel))
    }
    // Windows of varying size: a direct loop over the (small) row-major tensor.
    func window(_ index: Int, _ input: Int, _ output: Int) -> Range<Int> {
        (index * input / output)..<(((index + 1) * input + output - 1) / output)
    }
    let planes = x.shape[0] * x.shape[1]
    let (outHeight, outWidth) = (outputSize[0], outputSize[1])
    let values = try x.array()
    var result = [Float](repeating: 0, count: planes * outHeight * outWidth)
    for plane in 0..<planes {
        for i in 0..<outHeight {
            for j in 0..<outWidth {
                let rows = window(i, height, outHeight), columns = window(j, width, outWidth)
                var sum: Float = 0
                for r in rows { for c in columns { sum += values[(plane * height + r) * width + c] } }
                result[(plane * outHeight + i) * outWidth + j] = sum / Float(rows.count * columns.count)
            }
        }
    }
    let shape = [x.shape[0], x.shape[1], outHeight, outWidth]
    return try GradientTape.record(operation, inputs: [x], output: try Tensor(shape: shape, values: result)) { dy, _ in
        let upstream = try dy.array()
        var gradient = [Float](repeating: 0, count: values.count)
        for plane in 0..<planes {
            for i in 0..<outHeight {
                for j in 0..<outWidth {
                    let rows = window(i, height, outHeight), columns = window(j, width, outWidth)
                    let share = upstream[(plane * outHeight + i) * outWidth + j] / Float(rows.count * columns.count)
                    for r in rows { for c in columns { gradient[(plane * height + r) * width + c] += share } }
                }
            }
        }
        return [try Tensor(shape: x.shape, values: gradient)]
    }
}
