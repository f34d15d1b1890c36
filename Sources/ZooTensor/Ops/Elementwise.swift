import CDNNL

/// An element-wise activation that oneDNN runs in any layout.
public enum Activation: Sendable, Equatable {
    /// `max(x, 0)`.
    case relu
    /// `min(max(x, 0), 6)`, MobileNetV2's activation.
    case relu6

    /// oneDNN's algorithm, its two parameters, and whether backward reads the output (true)
    /// or the input. ReLU computes its gradient from the output, which lets the input go; ReLU6
    /// uses `clip` from the input because oneDNN 2.6 has no fast kernel for the output-based
    /// clip on channel-padded blocked layouts.
    var algorithm: (kind: dnnl_alg_kind_t, alpha: Float, beta: Float, backwardUsesOutput: Bool) {
        switch self {
        case .relu: return (dnnl_eltwise_relu_use_dst_for_bwd, 0, 0, true)
        case .relu6: return (dnnl_eltwise_clip, 0, 6, false)
        }
    }

    var name: String { self == .relu ? "relu" : "relu6" }

    /// oneDNN's forward-only algorithm and parameters, for a post-op fused into another primitive.
    var postOp: (kind: dnnl_alg_kind_t, alpha: Float, beta: Float) {
        switch self {
        case .relu: return (dnnl_eltwise_relu, 0, 0)
        case .relu6: return (dnnl_eltwise_clip, 0, 6)
        }
    }
}

/// What a primitive does to its output before writing it: add a tensor of the output's shape
/// (a residual connection), then apply an activation; oneDNN post-ops.
struct Epilogue {
    /// The layout of the added tensor, nil when nothing is added.
    var residual: Layout?
    var activation: Activation?

    /// The execution argument that passes the added tensor (oneDNN's
    /// `DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1`: the first post-op's second input).
    static let residualArgument = Int32(DNNL_ARG_ATTR_MULTIPLE_POST_OP_BASE) | DNNL_ARG_SRC_1

    /// Calls `body` with primitive attributes carrying these post-ops, or nil when there are none.
    func withAttributes<R>(_ operation: String, _ body: (dnnl_primitive_attr_t?) throws -> R) throws -> R {
        guard residual != nil || activation != nil else { return try body(nil) }
        var attributes: dnnl_primitive_attr_t?
        var postOps: dnnl_post_ops_t?
        try check(dnnl_primitive_attr_create(&attributes), operation, "creating attributes")
        defer { dnnl_primitive_attr_destroy(attributes) }
        try check(dnnl_post_ops_create(&postOps), operation, "creating post-ops")
        defer { dnnl_post_ops_destroy(postOps) }
        if let residual {
            var desc = residual.desc
            try check(dnnl_post_ops_append_binary(postOps, dnnl_binary_add, &desc), operation, "appending the residual add")
        }
        if let activation {
            let (kind, alpha, beta) = activation.postOp
            try check(dnnl_post_ops_append_eltwise(postOps, 1, kind, alpha, beta), operation, "appending \(activation.name)")
        }
        try check(dnnl_primitive_attr_set_post_ops(attributes, postOps), operation, "setting post-ops")
        return try body(attributes)
    }
}

/// `max(x, 0)` element-wise.
public func relu(_ x: Tensor) throws -> Tensor { try activation(.relu, x) }

/// `min(max(x, 0), 6)` element-wise.
public func relu6(_ x: Tensor) throws -> Tensor { try activation(.relu6, x) }

/// Applies `kind` element-wise.
public func activation(_ kind: Activation, _ x: Tensor) throws -> Tensor {
    let operation = kind.name
    let input = try x.asActivation(operation)
    let forward = try eltwiseForward(kind, layout: input.layout)
    let output = Buffer(input.layout)
    try forward.execute(operation, [(DNNL_ARG_SRC, input.buffer), (DNNL_ARG_DST, output)])
    let y = Tensor(shape: x.shape, buffer: output)
    let saved = kind.algorithm.backwardUsesOutput ? y : input.detached()
    return try GradientTape.record(operation, inputs: [x], output: y) { dy, _ in
        [try activationBackward(kind, saved: saved, outputGradient: dy, forward: forward)]
    }
}

private func eltwiseForward(_ kind: Activation, layout: Layout) throws -> Primitive {
    let (algorithm, alpha, beta, _) = kind.algorithm
    let key = PrimitiveKey("eltwise_forward", layouts: [layout], [Int64(algorithm.rawValue)])
    return try PrimitiveCache.primitive(key) {
        var desc = dnnl_eltwise_desc_t()
        var data = layout.desc
        try check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_training, algorithm, &data, alpha, beta), kind.name)
        return try makePrimitive(kind.name, desc)
    }
}

/// The input gradient of an activation, from the tensor its backward reads (the output for
/// ReLU, the input for ReLU6) and the output's gradient.
func activationBackward(_ kind: Activation, saved: Tensor, outputGradient dy: Tensor, forward: Primitive) throws -> Tensor {
    let operation = kind.name + " backward"
    let (algorithm, alpha, beta, usesOutput) = kind.algorithm
    let gradient = try dy.reordered(to: saved.layout, operation: operation)
    let key = PrimitiveKey("eltwise_backward", layouts: [saved.layout], [Int64(algorithm.rawValue)])
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_eltwise_desc_t()
        var data = saved.layout.desc
        try check(dnnl_eltwise_backward_desc_init(&desc, algorithm, &data, &data, alpha, beta), operation)
        return try makePrimitive(operation, desc, hint: forward)
    }
    let dx = Buffer(saved.layout)
    try primitive.execute(operation, [(usesOutput ? DNNL_ARG_DST : DNNL_ARG_SRC, saved.buffer),
                                      (DNNL_ARG_DIFF_DST, gradient.buffer), (DNNL_ARG_DIFF_SRC, dx)])
    return Tensor(shape: saved.shape, buffer: dx)
}

/// A two-input element-wise operation.
enum BinaryOperation {
    case add, multiply

    var algorithm: dnnl_alg_kind_t { self == .add ? dnnl_binary_add : dnnl_binary_mul }
}

/// `a + b` (or `a * b`) for tensors of one shape, untraced; the result has `a`'s layout.
func binary(_ operation: BinaryOperation, _ a: Tensor, _ b: Tensor, name: String = "add") throws -> Tensor {
    guard a.shape == b.shape else {
        throw TensorError.shapeMismatch(operation: name, expected: "both operands have the same shape", lhs: a.shape, rhs: b.shape)
    }
    let rhs = try b.reordered(to: a.layout, operation: name)
    let key = PrimitiveKey("binary", layouts: [a.layout], [Int64(operation.algorithm.rawValue)])
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_binary_desc_t()
        var layout = a.layout.desc
        try check(dnnl_binary_desc_init(&desc, operation.algorithm, &layout, &layout, &layout), name)
        return try makePrimitive(name, desc)
    }
    let output = Buffer(a.layout)
    try primitive.execute(name, [(DNNL_ARG_SRC_0, a.buffer), (DNNL_ARG_SRC_1, rhs.buffer), (DNNL_ARG_DST, output)])
    return Tensor(shape: a.shape, buffer: output)
}

/// `a + b` element-wise for tensors of the same shape (a residual connection). The result has
/// `a`'s layout.
public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    let lhs = try a.asActivation("add")
    let y = try binary(.add, lhs.detached(), b.detached())
    return try GradientTape.record("add", inputs: [a, b], output: y) { dy, needed in
        [needed[0] ? dy : nil, needed[1] ? dy : nil]
    }
}

/// `x * factor` element-wise.
public func scale(_ x: Tensor, by factor: Float) throws -> Tensor {
    let input = try x.asActivation("scale")
    let y = try linear(input.detached(), scale: factor, name: "scale")
    return try GradientTape.record("scale", inputs: [x], output: y) { dy, _ in
        [try linear(dy.detached(), scale: factor, name: "scale backward")]
    }
}

/// `alpha * x` via oneDNN's linear eltwise, untraced.
func linear(_ x: Tensor, scale alpha: Float, name: String) throws -> Tensor {
    let key = PrimitiveKey("linear", layouts: [x.layout], [Int64(alpha.bitPattern)])
    let primitive = try PrimitiveCache.primitive(key) {
        var desc = dnnl_eltwise_desc_t()
        var data = x.layout.desc
        try check(dnnl_eltwise_forward_desc_init(&desc, dnnl_forward_inference, dnnl_eltwise_linear, &data, alpha, 0), name)
        return try makePrimitive(name, desc)
    }
    let output = Buffer(x.layout)
    try primitive.execute(name, [(DNNL_ARG_SRC, x.buffer), (DNNL_ARG_DST, output)])
    return Tensor(shape: x.shape, buffer: output)
}
