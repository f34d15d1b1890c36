import CDNNL
import Dispatch
import Synchronization

/// How a window-based operation (convolution, pooling) pads its input.
public enum Padding: Sendable, Hashable {
    /// No padding.
    case valid
    /// TensorFlow's "same": the output has `ceil(input / stride)` positions, and any odd extra
    /// pixel of padding goes at the bottom and right (so stride-2 layers pad asymmetrically).
    case same
    /// Explicit amounts, which may differ per side.
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    /// The same amount on every side, as PyTorch's `padding=p`.
    public static func symmetric(_ amount: Int) -> Padding { .explicit(top: amount, bottom: amount, left: amount, right: amount) }

    /// The same amount on top and bottom, and on left and right, as PyTorch's `padding=(h, w)`.
    public static func symmetric(height: Int, width: Int) -> Padding {
        .explicit(top: height, bottom: height, left: width, right: width)
    }

    /// Resolves to `(before, after)` per spatial axis for an input of `size` with an effective
    /// (dilated) kernel `kernel` and `stride`.
    func amounts(size: [Int], kernel: [Int], stride: [Int]) -> (before: [Int], after: [Int]) {
        switch self {
        case .valid:
            return ([0, 0], [0, 0])
        case let .explicit(top, bottom, left, right):
            return ([top, left], [bottom, right])
        case .same:
            var before = [0, 0], after = [0, 0]
            for axis in 0..<2 {
                let output = (size[axis] + stride[axis] - 1) / stride[axis]
                let total = max((output - 1) * stride[axis] + kernel[axis] - size[axis], 0)
                before[axis] = total / 2
                after[axis] = total - before[axis]
            }
            return (before, after)
        }
    }
}

/// The settings of a 2-D convolution besides its tensors.
public struct Conv2DOptions: Sendable, Hashable {
    /// Step between windows, `[height, width]`.
    public var stride: [Int]
    public var padding: Padding
    /// Spacing between kernel taps, `[height, width]`; 1 is an ordinary convolution.
    public var dilation: [Int]
    /// Number of channel groups; equal to the input channels for a depthwise convolution.
    public var groups: Int

    public init(stride: [Int] = [1, 1], padding: Padding = .valid, dilation: [Int] = [1, 1], groups: Int = 1) {
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
    }

    public init(stride: Int, padding: Padding = .valid, dilation: Int = 1, groups: Int = 1) {
        self.init(stride: [stride, stride], padding: padding, dilation: [dilation, dilation], groups: groups)
    }
}

/// A convolution's shapes and settings resolved for one input size.
struct ConvolutionGeometry {
    let inputShape: [Int]
    let weightShape: [Int]
    let outputShape: [Int]
    let stride: [Int]
    let dilation: [Int]
    let padBefore: [Int]
    let padAfter: [Int]
    let groups: Int
    let hasBias: Bool

    static let operation = "conv2d"

    init(input: [Int], weight: [Int], bias: [Int]?, options: Conv2DOptions) throws {
        let op = Self.operation
        guard input.count == 4 else { throw TensorError.invalidShape(operation: op, shape: input, expected: "input [N, C, H, W]") }
        guard weight.count == 4 else {
            throw TensorError.invalidShape(operation: op, shape: weight, expected: "weight [out channels, in channels / groups, kernel height, kernel width]")
        }
        guard options.stride.count == 2, options.dilation.count == 2 else {
            throw TensorError.invalidArgument(operation: op, message: "stride and dilation need 2 values, got \(options.stride) and \(options.dilation)")
        }
        try requirePositive(options.stride, "stride", op)
        try requirePositive(options.dilation, "dilation", op)
        try requirePositive([options.groups], "groups", op)
        if case let .explicit(top, bottom, left, right) = options.padding, [top, bottom, left, right].contains(where: { $0 < 0 }) {
            throw TensorError.invalidArgument(operation: op, message: "padding must not be negative, got \(options.padding)")
        }
        let groups = options.groups
        guard input[1] == weight[1] * groups, weight[0] % groups == 0 else {
            throw TensorError.shapeMismatch(
                operation: op,
                expected: "input channels (\(input[1])) = weight's in channels (\(weight[1])) x groups (\(groups)), and out channels divisible by groups",
                lhs: input, rhs: weight)
        }
        if let bias, bias != [weight[0]] {
            throw TensorError.shapeMismatch(operation: op, expected: "bias has one value per output channel", lhs: weight, rhs: bias)
        }
        let kernel = [weight[2], weight[3]]
        let effective = (0..<2).map { (kernel[$0] - 1) * options.dilation[$0] + 1 }
        let size = [input[2], input[3]]
        let (before, after) = options.padding.amounts(size: size, kernel: effective, stride: options.stride)
        let output = (0..<2).map { axis in
            windowPositions(size: size[axis], before: before[axis], after: after[axis], kernel: effective[axis], stride: options.stride[axis])
        }
        guard output.allSatisfy({ $0 > 0 }) else {
            throw TensorError.shapeMismatch(operation: op, expected: "the padded input is at least as large as the (dilated) kernel",
                                            lhs: input, rhs: weight)
        }
        inputShape = input
        weightShape = weight
        outputShape = [input[0], weight[0], output[0], output[1]]
        stride = options.stride
        dilation = options.dilation
        padBefore = before
        padAfter = after
        self.groups = groups
        hasBias = bias != nil
    }

    /// The weight as oneDNN sees it: 5-D `[groups, out/groups, in/groups, kh, kw]` when grouped.
    var dnnlWeightShape: [Int] {
        groups == 1 ? weightShape : [groups, weightShape[0] / groups] + weightShape[1...]
    }

    var settings: [Int64] {
        var values: [Int] = inputShape + weightShape
        values += stride + dilation
        values += padBefore + padAfter
        values += [groups, hasBias ? 1 : 0]
        return values.map { Int64($0) }
    }

    /// oneDNN's dilation counts the gaps between taps (0 = none).
    var dnnlDilation: [Int64] { dilation.map { Int64($0 - 1) } }
    var dnnlStride: [Int64] { stride.map { Int64($0) } }
    var dnnlPadBefore: [Int64] { padBefore.map { Int64($0) } }
    var dnnlPadAfter: [Int64] { padAfter.map { Int64($0) } }
    var biasLayout: Layout? { hasBias ? .rowMajor([weightShape[0]]) : nil }

    /// The forward primitive for an input in `source`.
    ///
    /// Activations stay in the blocked layout from layer to layer, so the primitive is asked
    /// for blocked input and output first; oneDNN's own choice (every layout open) is the
    /// fallback when that has only a slow kernel (channels-last before it for grouped
    /// convolutions, see `preferFast`). Left open, oneDNN would sometimes move a layer
    /// to channels-last (depthwise on AVX-512) or plain layouts (a first layer on 3 channels),
    /// which costs a reorder on each side of it.
    ///
    /// `activation`, when given, runs as a post-op on the output while it is still in cache
    /// (inference only: backward would need the pre-activation values).
    /// `residual: true` adds a tensor of the output's shape (blocked) before the activation.
    ///
    /// The output has the input's element type; so do the weights the primitive reads (bf16
    /// weights are rounded copies of the f32 ones, see ``weight(_:for:query:)``).
    func forwardPrimitive(source: Layout, training: Bool, activation: Activation? = nil, residual: Bool = false) throws -> Primitive {
        let type = source.elementType
        let epilogue = Epilogue(residual: residual ? .blocked(outputShape, type) : nil, activation: activation)
        let key = PrimitiveKey("conv_forward", layouts: [source],
                               settings + [training ? 1 : 0, activation?.code ?? -1, residual ? 1 : 0])
        return try PrimitiveCache.primitive(key) {
            let input = source.isBlocked || source == .blocked(inputShape, type) ? source : .any(inputShape, type)
            if suitsWinograd, type == .float32,
               let winograd = try? forwardPrimitive(training: training, source: input, output: .blocked(outputShape),
                                                    epilogue: epilogue, algorithm: dnnl_convolution_winograd),
               winograd.isWinograd {
                return winograd
            }
            return try preferFast(
                [{ try forwardPrimitive(training: training, source: input, output: .blocked(outputShape, type), epilogue: epilogue) }]
                    + (groups > 1 ? [{ try forwardPrimitive(training: training, source: .nhwc(inputShape, type),
                                                            output: .nhwc(outputShape, type), epilogue: epilogue) }] : []),
                fallback: { try forwardPrimitive(training: training, source: .any(inputShape, type), output: .any(outputShape, type),
                                                 epilogue: epilogue) })
        }
    }

    /// Whether this convolution runs with oneDNN's Winograd kernels (F(4x4, 3x3), forward and
    /// both backward passes, where the CPU has them): a 3x3, stride-1, undilated, ungrouped
    /// convolution with enough channels on both sides, and an output of at least 6x6, for the
    /// transforms to pay for themselves (measured on VGG16, ResNet50/152 and InceptionV3 at
    /// 96x96: about 2x faster at 12x12 and larger, 10-15% at 6x6, 2x slower in training at 3x3,
    /// 10-20x slower at 1x1 where a 4x4 tile holds one output). It does about half the
    /// multiplications of the direct method, with rounding differences of order 1e-6. oneDNN
    /// 2.6.3 has Winograd kernels for f32 only.
    var suitsWinograd: Bool {
        weightShape[2] == 3 && weightShape[3] == 3 && stride == [1, 1] && dilation == [1, 1] && groups == 1
            && weightShape[0] >= 64 && weightShape[1] >= 64 && outputShape[2] >= 6 && outputShape[3] >= 6
    }

    private func forwardPrimitive(training: Bool, source: Layout, output: Layout, epilogue: Epilogue,
                                  algorithm: dnnl_alg_kind_t = dnnl_convolution_direct) throws -> Primitive {
        let op = Self.operation
        var desc = dnnl_convolution_desc_t()
        var src = source.desc, wei = Layout.any(dnnlWeightShape, source.elementType).desc, dst = output.desc
        try withOptionalPointer(biasLayout?.desc) { bia in
            try check(dnnl_dilated_convolution_forward_desc_init(
                &desc, training ? dnnl_forward_training : dnnl_forward_inference, algorithm,
                &src, &wei, bia, &dst, dnnlStride, dnnlDilation, dnnlPadBefore, dnnlPadAfter), op)
        }
        return try epilogue.withAttributes(op) { try makePrimitive(op, desc, attributes: $0) }
    }

    /// The backward-data primitive, producing the input gradient in the blocked layout when a
    /// fast kernel does, of the forward input's element type.
    func backwardDataPrimitive(forward: Primitive) throws -> Primitive {
        let op = Self.operation + " backward data"
        let source = forward.layout(dnnl_query_src_md)
        let key = PrimitiveKey("conv_backward_data", layouts: [source], settings)
        func make(_ algorithm: dnnl_alg_kind_t, _ data: (Int) -> Layout) throws -> Primitive {
            var desc = dnnl_convolution_desc_t()
            var src = data(0).desc, wei = Layout.any(dnnlWeightShape, source.elementType).desc, dst = data(1).desc
            try check(dnnl_dilated_convolution_backward_data_desc_init(
                &desc, algorithm, &src, &wei, &dst, dnnlStride, dnnlDilation, dnnlPadBefore, dnnlPadAfter), op)
            return try makePrimitive(op, desc, hint: forward)
        }
        return try PrimitiveCache.primitive(key) { try backwardPrimitive(forward: forward, make) }
    }

    /// The backward-weights primitive, reading blocked activations when a fast kernel does. The
    /// weight and bias gradients are f32 whatever the activations' type (oneDNN accumulates bf16
    /// products in f32), for the f32 master weights.
    func backwardWeightsPrimitive(forward: Primitive) throws -> Primitive {
        let op = Self.operation + " backward weights"
        let key = PrimitiveKey("conv_backward_weights", layouts: [forward.layout(dnnl_query_src_md)], settings)
        func make(_ algorithm: dnnl_alg_kind_t, _ data: (Int) -> Layout) throws -> Primitive {
            var desc = dnnl_convolution_desc_t()
            var src = data(0).desc, wei = Layout.any(dnnlWeightShape).desc, dst = data(1).desc
            try withOptionalPointer(biasLayout?.desc) { bia in
                try check(dnnl_dilated_convolution_backward_weights_desc_init(
                    &desc, algorithm, &src, &wei, bia, &dst, dnnlStride, dnnlDilation, dnnlPadBefore, dnnlPadAfter), op)
            }
            return try makePrimitive(op, desc, hint: forward)
        }
        return try PrimitiveCache.primitive(key) { try backwardPrimitive(forward: forward, make) }
    }

    /// A backward primitive from `make(algorithm, layout of data argument 0 or 1)`: Winograd
    /// when the forward pass is, otherwise the direct kernel on blocked data, or (grouped) on
    /// channels-last data, or on oneDNN's choice of layouts when those have only slow kernels.
    private func backwardPrimitive(forward: Primitive, _ make: @escaping (dnnl_alg_kind_t, (Int) -> Layout) throws -> Primitive) throws -> Primitive {
        let type = forward.layout(dnnl_query_src_md).elementType
        let blocked: (Int) -> Layout = { $0 == 0 ? .blocked(inputShape, type) : .blocked(outputShape, type) }
        if forward.isWinograd, let winograd = try? make(dnnl_convolution_winograd, blocked), winograd.isWinograd {
            return winograd
        }
        let channelsLast: (Int) -> Layout = { $0 == 0 ? .nhwc(inputShape, type) : .nhwc(outputShape, type) }
        return try preferFast([{ try make(dnnl_convolution_direct, blocked) }]
                                  + (groups > 1 ? [{ try make(dnnl_convolution_direct, channelsLast) }] : []),
                              fallback: { try make(dnnl_convolution_direct) { $0 == 0 ? .any(inputShape, type) : .any(outputShape, type) } })
    }

    /// The first of `candidates` that oneDNN builds from a fast kernel, else `fallback`.
    ///
    /// Grouped convolutions try channels-last between the blocked layout and oneDNN's choice
    /// (measured with oneDNN 2.6.3, AVX-512, N=32). With few channels per group (ResNeXt's
    /// groups 32, 128 -> 128, 3x3, 28x28) there is no blocked kernel (`ref:any` in all three
    /// passes, seconds each). Left to choose, oneDNN ran `jit:avx512_core` forward and backward
    /// data on `nChw4c`, which made the batch norm after the layer run `bnorm_ref:any` both
    /// ways, and `x64:gemm:jit` for the weight gradient (0.15 to 1.2 s on this shared 2-core
    /// machine); channels-last runs `jit:avx512_core` in all three passes (weight gradient
    /// 19-25 ms, forward 19-23 ms against 15 ms on `nChw4c`) and the batch norm gets its JIT
    /// kernel after one reorder. A depthwise 5x5 (groups 96, 24x24) has blocked kernels
    /// forward and backward data, but oneDNN's depthwise weight gradient takes kernels up to 3
    /// wide: blocked `ref:any` 730 ms, oneDNN's choice `x64:gemm:jit` 24 ms, channels-last
    /// `jit:avx512_core` 13 ms (stride 2).
    private func preferFast(_ candidates: [() throws -> Primitive], fallback: () throws -> Primitive) throws -> Primitive {
        for candidate in candidates {
            if let primitive = try? candidate(), !primitive.isSlowFallback { return primitive }
        }
        return try fallback()
    }

    /// The weight (row-major OIHW) in the layout `primitive` wants, reordered (and for bf16
    /// primitives rounded) once per value.
    func weight(_ weight: Tensor, for primitive: Primitive, query: dnnl_query_t) throws -> Buffer {
        let plain = weight.layout.isRowMajor ? weight : try weight.rowMajor()
        return try plain.viewed(as: .rowMajor(dnnlWeightShape, plain.elementType), shape: dnnlWeightShape)
            .cachedReorder(to: primitive.layout(query), operation: Self.operation).buffer
    }
}

/// A 2-D convolution (cross-correlation, as in every framework) of `x` `[N, C, H, W]` with
/// `weight` `[O, C / groups, KH, KW]` (row-major OIHW) and an optional `bias` `[O]`.
///
/// Grouped and depthwise convolutions set `options.groups`. The output is in the layout oneDNN's
/// fastest kernel produces: blocked on this CPU, channels-last for grouped convolutions with
/// too few channels per group for a blocked kernel (ResNeXt's 4 per group).
///
/// `residual` (a tensor of the output's shape, a residual connection) is added and then
/// `activation` applied to the output: fused into the convolution (one pass over memory instead
/// of two or three) when nothing is traced, as separate recorded operations otherwise.
public func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, options: Conv2DOptions = Conv2DOptions(),
                   residual: Tensor? = nil, activation: Activation? = nil) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized(), residual = try residual?.dequantized()
    let geometry = try ConvolutionGeometry(input: x.shape, weight: weight.shape, bias: bias?.shape, options: options)
    let op = ConvolutionGeometry.operation
    if let residual, residual.shape != geometry.outputShape {
        throw TensorError.shapeMismatch(operation: op, expected: "the residual has the output's shape", lhs: geometry.outputShape,
                                        rhs: residual.shape)
    }
    let training = try GradientTape.tape(of: [x, weight] + (bias.map { [$0] } ?? []) + (residual.map { [$0] } ?? []), op) != nil
    // Fused only where oneDNN has a fast kernel for these post-ops; otherwise one operation each.
    let fused = training || (activation == nil && residual == nil) ? nil
        : try? geometry.forwardPrimitive(source: x.layout, training: false, activation: activation, residual: residual != nil)
    if activation != nil || residual != nil, fused == nil || fused!.isSlowFallback || (residual != nil && fused!.corruptsWithBinaryPostOp) {
        var y = try conv2d(x, weight: weight, bias: bias, options: options)
        if let residual { y = try add(y, residual) }
        return try activation.map { try ZooTensor.activation($0, y) } ?? y
    }
    let forward = try fused ?? geometry.forwardPrimitive(source: x.layout, training: training)
    let source = try x.reordered(to: forward.layout(dnnl_query_src_md), operation: op)
    let output = Buffer(forward.layout(dnnl_query_dst_md))
    var arguments: [(Int32, Buffer)] = [
        (DNNL_ARG_SRC, source.buffer),
        (DNNL_ARG_WEIGHTS, try geometry.weight(weight, for: forward, query: dnnl_query_weights_md)),
        (DNNL_ARG_DST, output),
    ]
    if let bias { arguments.append((DNNL_ARG_BIAS, try bias.rowMajor().buffer)) }
    if let residual {
        let added = try residual.reordered(to: .blocked(geometry.outputShape, output.layout.elementType), operation: op)
        arguments.append((Epilogue.residualArgument, added.buffer))
    }
    try forward.execute(op, arguments)
    let y = Tensor(shape: geometry.outputShape, buffer: output)
    let inputs = [x, weight] + (bias.map { [$0] } ?? [])
    return try GradientTape.record(op, inputs: inputs, output: y) { dy, needed in
        var gradients: [Tensor?] = [nil, nil, nil]
        if needed[0] {
            gradients[0] = try conv2dBackwardData(dy, weight: weight.detached(), geometry: geometry, forward: forward)
        }
        if needed[1] || (needed.count > 2 && needed[2]) {
            let (dw, db) = try conv2dBackwardWeights(dy, input: source.detached(), geometry: geometry, forward: forward)
            gradients[1] = dw
            gradients[2] = db
        }
        return Array(gradients.prefix(inputs.count))
    }
}

/// The gradient of a convolution's input (of the forward input's type, or f32 when the
/// bf16 pass is slower, see ``BackwardPrecision``).
func conv2dBackwardData(_ dy: Tensor, weight: Tensor, geometry: ConvolutionGeometry, forward: Primitive) throws -> Tensor {
    try BackwardPrecision.faster(.data, geometry: geometry, forward: forward) {
        try backwardData(dy, weight: weight, geometry: geometry, forward: $0)
    }
}

private func backwardData(_ dy: Tensor, weight: Tensor, geometry: ConvolutionGeometry, forward: Primitive) throws -> Tensor {
    let op = ConvolutionGeometry.operation + " backward data"
    let primitive = try geometry.backwardDataPrimitive(forward: forward)
    let outputGradient = try dy.reordered(to: primitive.layout(dnnl_query_diff_dst_md), operation: op)
    let dx = Buffer(primitive.layout(dnnl_query_diff_src_md))
    try primitive.execute(op, [
        (DNNL_ARG_DIFF_DST, outputGradient.buffer),
        (DNNL_ARG_WEIGHTS, try geometry.weight(weight, for: primitive, query: dnnl_query_weights_md)),
        (DNNL_ARG_DIFF_SRC, dx),
    ])
    return Tensor(shape: geometry.inputShape, buffer: dx)
}

/// The gradients of a convolution's weight (row-major OIHW) and bias, always f32.
func conv2dBackwardWeights(_ dy: Tensor, input: Tensor, geometry: ConvolutionGeometry,
                           forward: Primitive) throws -> (weight: Tensor, bias: Tensor?) {
    try BackwardPrecision.faster(.weights, geometry: geometry, forward: forward) {
        try backwardWeights(dy, input: input, geometry: geometry, forward: $0)
    }
}

private func backwardWeights(_ dy: Tensor, input: Tensor, geometry: ConvolutionGeometry,
                             forward: Primitive) throws -> (weight: Tensor, bias: Tensor?) {
    let op = ConvolutionGeometry.operation + " backward weights"
    let primitive = try geometry.backwardWeightsPrimitive(forward: forward)
    let outputGradient = try dy.reordered(to: primitive.layout(dnnl_query_diff_dst_md), operation: op)
    let source = try input.reordered(to: primitive.layout(dnnl_query_src_md), operation: op)
    let dw = Buffer(primitive.layout(dnnl_query_diff_weights_md))
    let db = geometry.hasBias ? Buffer(.rowMajor([geometry.weightShape[0]])) : nil
    var arguments: [(Int32, Buffer)] = [
        (DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DIFF_DST, outputGradient.buffer), (DNNL_ARG_DIFF_WEIGHTS, dw),
    ]
    if let db { arguments.append((DNNL_ARG_DIFF_BIAS, db)) }
    try primitive.execute(op, arguments)
    let weightGradient = try reorder(dw, to: .rowMajor(geometry.dnnlWeightShape), operation: op)
    return (Tensor(shape: geometry.weightShape, buffer: Buffer(storage: weightGradient.storage, layout: .rowMajor(geometry.weightShape))),
            db.map { Tensor(shape: [geometry.weightShape[0]], buffer: $0) })
}

/// Which arithmetic a bf16 convolution's backward passes run in: bf16, or f32 on copies of the
/// bf16 tensors (converted by the reorders into the f32 kernel's layouts), whichever this configuration runs faster, measured on its
/// first use and remembered.
///
/// oneDNN 2.6.3's AMX backward kernels (`jit:avx512_core_amx_bf16`, not the brgemm ones of later
/// versions) are slow on small feature maps: measured in ResNet50 at 96x96, batch 32, 2
/// threads, AMX, the weight gradient of the 512 -> 512 3x3 at 3x3 took 26 ms in bf16 and 14 ms
/// in f32, that of the 512 -> 2048 1x1 at 3x3 23 ms and 7 ms, while on 24x24 maps bf16 won
/// (64 -> 256 1x1: 4.1 ms against 6.6 ms). Over a step, the faster of the two for each layer
/// took 0.55x the bf16 time for weight gradients and 0.70x for input gradients. The
/// forward pass has brgemm kernels and is always faster in bf16.
enum BackwardPrecision {
    enum Pass: Int64 { case data, weights }

    /// Whether f32 was faster, by configuration.
    private static let choices = Mutex<[PrimitiveKey: Bool]>([:])

    /// `pass(forward)` (the bf16 pass) or `pass(an f32 forward primitive)` (which makes the
    /// backward primitives f32), whichever is faster for this configuration; `pass(forward)` for
    /// f32 convolutions. The first call of a configuration runs both twice, untimed then timed,
    /// and returns the last bf16 result.
    static func faster<R>(_ pass: Pass, geometry: ConvolutionGeometry, forward: Primitive,
                          _ run: (Primitive) throws -> R) throws -> R {
        let source = forward.layout(dnnl_query_src_md)
        guard source.elementType == .bfloat16 else { return try run(forward) }
        let key = PrimitiveKey("conv_backward_precision", layouts: [source], geometry.settings + [pass.rawValue])
        let f32Forward = { try geometry.forwardPrimitive(source: .blocked(geometry.inputShape), training: true) }
        if let useFloat32 = choices.withLock({ $0[key] }) { return try run(useFloat32 ? f32Forward() : forward) }
        let hint = try f32Forward()
        func seconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
            let start = DispatchTime.now().uptimeNanoseconds
            let result = try body()
            return (result, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        _ = try run(forward)
        _ = try run(hint)
        let (_, float32Time) = try seconds { try run(hint) }
        let (result, nativeTime) = try seconds { try run(forward) }
        choices.withLock { $0[key] = float32Time < nativeTime }
        return result
    }
}

extension Primitive {
    /// Whether oneDNN runs this convolution with a Winograd kernel.
    var isWinograd: Bool { implementation.contains("wino") }

    /// Whether this is oneDNN 2.6.3's AMX 1x1 kernel `jit_1x1:avx512_core_amx_bf16`, which
    /// corrupts the heap when it adds a residual as a binary post-op (seen in MobileNetV2 in
    /// bf16 at 96x96, batch 32, on the 576 -> 96 projection at 6x6: a crash a few layers later;
    /// see MixedPrecisionTests). The residual is then added separately. oneDNN picks it for
    /// every bf16 1x1 convolution with a residual in ResNet50/152 and MobileNetV2 at 96x96 (its
    /// `brgconv_1x1` kernel takes no full-tensor binary post-op), so on AMX bf16 residuals are in
    /// effect never fused.
    var corruptsWithBinaryPostOp: Bool { implementation.hasPrefix("jit_1x1:avx512_core_amx") }
}
