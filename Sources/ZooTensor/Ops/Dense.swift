import CDNNL

/// A fully connected layer: `x · weightᵀ + bias` for `x` `[N, in]`, `weight` `[out, in]`
/// (PyTorch's layout; Keras kernels `[in, out]` are transposed on import) and `bias` `[out]`.
///
/// A bf16 `x` multiplies bf16 copies of the weight; the output is f32 either way, so logits and
/// the losses and probabilities computed from them keep f32's precision.
public func dense(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let x = try x.dequantized()
    let operation = "dense"
    try requireRank(x, 2, operation, "input [N, features] (flatten or pool first)")
    try requireRank(weight, 2, operation, "weight [out features, in features]")
    guard x.shape[1] == weight.shape[1] else {
        throw TensorError.shapeMismatch(operation: operation, expected: "input features (\(x.shape[1])) = weight's in features (\(weight.shape[1]))",
                                        lhs: x.shape, rhs: weight.shape)
    }
    if let bias, bias.shape != [weight.shape[0]] {
        throw TensorError.shapeMismatch(operation: operation, expected: "bias has one value per output feature", lhs: weight.shape, rhs: bias.shape)
    }
    let (batch, inputs, outputs) = (x.shape[0], x.shape[1], weight.shape[0])
    let hasBias = bias != nil
    let training = try GradientTape.tape(of: [x, weight] + (bias.map { [$0] } ?? []), operation) != nil
    let type = x.elementType
    let settings = [batch, inputs, outputs, hasBias ? 1 : 0, Int(type.dnnl.rawValue)].map { Int64($0) }
    let biasLayout: Layout? = hasBias ? .rowMajor([outputs]) : nil
    let sourceLayout = Layout.rowMajor([batch, inputs], type)
    let forward = try PrimitiveCache.primitive(PrimitiveKey("dense_forward", layouts: [], settings + [training ? 1 : 0])) {
        var desc = dnnl_inner_product_desc_t()
        var src = sourceLayout.desc, wei = Layout.any([outputs, inputs], type).desc, dst = Layout.rowMajor([batch, outputs]).desc
        try withOptionalPointer(biasLayout?.desc) { bia in
            try check(dnnl_inner_product_forward_desc_init(&desc, training ? dnnl_forward_training : dnnl_forward_inference,
                                                           &src, &wei, bia, &dst), operation)
        }
        return try makePrimitive(operation, desc)
    }
    let source = try x.rowMajor()
    let plainWeight = try weight.rowMajor()
    let output = Buffer(.rowMajor([batch, outputs]))
    var arguments = [
        (DNNL_ARG_SRC, source.buffer),
        (DNNL_ARG_WEIGHTS, try plainWeight.cachedReorder(to: forward.layout(dnnl_query_weights_md), operation: operation).buffer),
        (DNNL_ARG_DST, output),
    ]
    if let bias { arguments.append((DNNL_ARG_BIAS, try bias.rowMajor().buffer)) }
    try forward.execute(operation, arguments)
    let operands = [x, weight] + (bias.map { [$0] } ?? [])
    return try GradientTape.record(operation, inputs: operands, output: Tensor(shape: [batch, outputs], buffer: output)) { dy, needed in
        // oneDNN's bf16 backward passes read a bf16 output gradient.
        let gradient = try dy.reordered(to: .rowMajor([batch, outputs], type), operation: operation + " backward")
        var result: [Tensor?] = [nil, nil, nil]
        if needed[0] {
            let op = operation + " backward data"
            let primitive = try PrimitiveCache.primitive(PrimitiveKey("dense_backward_data", layouts: [], settings)) {
                var desc = dnnl_inner_product_desc_t()
                var src = sourceLayout.desc, wei = Layout.any([outputs, inputs], type).desc, dst = gradient.layout.desc
                try check(dnnl_inner_product_backward_data_desc_init(&desc, &src, &wei, &dst), op)
                return try makePrimitive(op, desc, hint: forward)
            }
            let dx = Buffer(sourceLayout)
            try primitive.execute(op, [
                (DNNL_ARG_DIFF_DST, gradient.buffer),
                (DNNL_ARG_WEIGHTS, try plainWeight.detached().cachedReorder(to: primitive.layout(dnnl_query_weights_md), operation: op).buffer),
                (DNNL_ARG_DIFF_SRC, dx),
            ])
            result[0] = Tensor(shape: [batch, inputs], buffer: dx)
        }
        if needed[1] || (needed.count > 2 && needed[2]) {
            let op = operation + " backward weights"
            let primitive = try PrimitiveCache.primitive(PrimitiveKey("dense_backward_weights", layouts: [], settings)) {
                var desc = dnnl_inner_product_desc_t()
                var src = sourceLayout.desc, wei = Layout.any([outputs, inputs]).desc, dst = gradient.layout.desc
                try withOptionalPointer(biasLayout?.desc) { bia in
                    try check(dnnl_inner_product_backward_weights_desc_init(&desc, &src, &wei, bia, &dst), op)
                }
                return try makePrimitive(op, desc, hint: forward)
            }
            let dw = Buffer(primitive.layout(dnnl_query_diff_weights_md))
            let db = biasLayout.map { Buffer($0) }
            var arguments = [(DNNL_ARG_SRC, source.buffer), (DNNL_ARG_DIFF_DST, gradient.buffer), (DNNL_ARG_DIFF_WEIGHTS, dw)]
            if let db { arguments.append((DNNL_ARG_DIFF_BIAS, db)) }
            try primitive.execute(op, arguments)
            result[1] = Tensor(shape: [outputs, inputs], buffer: try reorder(dw, to: .rowMajor([outputs, inputs]), operation: op))
            result[2] = db.map { Tensor(shape: [outputs], buffer: $0) }
        }
        return Array(result.prefix(operands.count))
    }
}
