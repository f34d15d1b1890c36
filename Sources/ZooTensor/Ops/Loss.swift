import Foundation

/// The mean softmax cross-entropy of `logits` `[N, classes]` against integer `labels`, with
/// optional label smoothing (the target puts `1 - smoothing + smoothing / classes` on the true
/// class and `smoothing / classes` on every other, as Keras and PyTorch do). Returns a scalar.
///
/// With `classWeights` (one per class), each sample's loss is multiplied by its class's weight
/// and the sum divided by the batch size, not by the sum of the weights: Keras's `class_weight`
/// (PyTorch's weighted mean would divide by the weights' sum, so a batch without the rare
/// classes would weigh as much as one full of them).
public func softmaxCrossEntropy(logits: Tensor, labels: [Int], labelSmoothing: Float = 0, classWeights: [Float]? = nil) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let logits = try logits.dequantized()
    let operation = "softmaxCrossEntropy"
    try requireRank(logits, 2, operation, "logits [N, classes]")
    let (batch, classes) = (logits.shape[0], logits.shape[1])
    guard labels.count == batch else {
        throw TensorError.shapeMismatch(operation: operation, expected: "one label per row of logits", lhs: logits.shape, rhs: [labels.count])
    }
    if let bad = labels.first(where: { $0 < 0 || $0 >= classes }) {
        throw TensorError.invalidArgument(operation: operation, message: "label \(bad) is outside 0..<\(classes)")
    }
    guard labelSmoothing >= 0, labelSmoothing < 1 else {
        throw TensorError.invalidArgument(operation: operation, message: "label smoothing must be in [0, 1), got \(labelSmoothing)")
    }
    if let classWeights {
        guard classWeights.count == classes else {
            throw TensorError.invalidArgument(operation: operation, message: "\(classWeights.count) class weights for \(classes) classes")
        }
        if let bad = classWeights.first(where: { !($0.isFinite && $0 >= 0) }) {
            throw TensorError.invalidArgument(operation: operation, message: "class weights must be finite and not negative, got \(bad)")
        }
    }
    let sampleWeights = labels.map { classWeights?[$0] ?? 1 }
    let values = try logits.array()
    let offValue = labelSmoothing / Float(classes)
    let onValue = 1 - labelSmoothing + offValue
    var probabilities = [Float](repeating: 0, count: values.count)
    var total: Double = 0
    for row in 0..<batch {
        let base = row * classes
        let slice = values[base..<base + classes]
        let top = slice.max()!
        var sum: Double = 0
        for (k, v) in slice.enumerated() {
            let e = exp(Double(v - top))
            probabilities[base + k] = Float(e)
            sum += e
        }
        let logSum = log(sum)
        let weight = Double(sampleWeights[row])
        for k in 0..<classes {
            probabilities[base + k] = Float(Double(probabilities[base + k]) / sum)
            let target = k == labels[row] ? onValue : offValue
            if target > 0 { total -= weight * Double(target) * (Double(values[base + k] - top) - logSum) }
        }
    }
    let loss = Tensor(scalar: Float(total / Double(batch)))
    return try GradientTape.record(operation, inputs: [logits], output: loss) { dy, _ in
        let seed = try dy.scalar() / Float(batch)
        var gradient = probabilities
        for row in 0..<batch {
            let rowSeed = seed * sampleWeights[row]
            for k in 0..<classes {
                let target = k == labels[row] ? onValue : offValue
                gradient[row * classes + k] = (gradient[row * classes + k] - target) * rowSeed
            }
        }
        return [try Tensor(shape: logits.shape, values: gradient)]
    }
}

/// Row-wise softmax of `[N, classes]` logits.
public func softmax(_ logits: Tensor) throws -> Tensor {
    // No int8 kernel here: quantized inputs are dequantized.
    let logits = try logits.dequantized()
    let operation = "softmax"
    try requireRank(logits, 2, operation, "logits [N, classes]")
    let classes = logits.shape[1]
    var values = try logits.array()
    for base in stride(from: 0, to: values.count, by: classes) {
        let top = values[base..<base + classes].max()!
        var sum: Float = 0
        for k in base..<base + classes {
            values[k] = exp(values[k] - top)
            sum += values[k]
        }
        for k in base..<base + classes { values[k] /= sum }
    }
    let probabilities = values
    let y = try Tensor(shape: logits.shape, values: probabilities)
    return try GradientTape.record(operation, inputs: [logits], output: y) { dy, _ in
        let upstream = try dy.array()
        var gradient = [Float](repeating: 0, count: upstream.count)
        for base in stride(from: 0, to: upstream.count, by: classes) {
            var dot: Float = 0
            for k in base..<base + classes { dot += upstream[k] * probabilities[k] }
            for k in base..<base + classes { gradient[k] = probabilities[k] * (upstream[k] - dot) }
        }
        return [try Tensor(shape: logits.shape, values: gradient)]
    }
}
