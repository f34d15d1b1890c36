import Foundation
import ZooNN
import ZooWeights
import ZooData

/// Runs arrays of images through a model in inference mode and returns a layer's output.
public enum FeatureExtraction {
    /// The output of `layer` (the model's output when nil: logits, before any softmax) for
    /// images given channels-last, `[N, H, W, 3]`, after `preprocessing`.
    ///
    /// Images go through in batches of `batchSize`, so memory stays bounded. The result is
    /// channels-last `[N, H, W, C]` for feature maps and `[N, C]` for vectors.
    public static func run(_ model: ImageModel, nhwc values: [Float], shape: [Int], layer: String? = nil,
                           preprocessing: Preprocessing = .none, batchSize: Int = 32) throws -> (values: [Float], shape: [Int]) {
        guard shape.count == 4, shape[3] == 3, values.count == shape.reduce(1, *) else {
            throw ModelError("expected images as a float32 array [N, H, W, 3], got shape \(shape)")
        }
        if let layer, !model.layers.contains(where: { $0.name == layer }) {
            let close = model.layers.map(\.name).filter { $0.hasPrefix(String(layer.prefix(4))) }.prefix(8)
            throw ModelError("\(model.name) has no layer '\(layer)'" + (close.isEmpty ? "; `zoo summary \(model.name)` lists them" : "; similar: \(close.joined(separator: ", "))"))
        }
        let imageSize = shape[1] * shape[2] * 3
        var output: [Float] = []
        var outputShape: [Int] = []
        for start in stride(from: 0, to: shape[0], by: max(batchSize, 1)) {
            let count = min(batchSize, shape[0] - start)
            var batch = Array(values[start * imageSize..<(start + count) * imageSize])
            preprocessing.apply(nhwc: &batch)
            let context = ForwardContext.inference()
            if let layer { context.capturing = [layer] }
            let result = try model(try Tensor(nhwc: batch, shape: [count, shape[1], shape[2], 3]), context)
            let tensor = try layer.map { name in
                guard let captured = context.captured[name] else { throw ModelError("\(model.name): layer '\(name)' produced no output") }
                return captured
            } ?? result
            output += tensor.shape.count == 4 ? try tensor.nhwcArray() : try tensor.array()
            outputShape = tensor.shape.count == 4 ? [0, tensor.shape[2], tensor.shape[3], tensor.shape[1]] : [0] + tensor.shape.dropFirst()
        }
        outputShape[0] = shape[0]
        return (output, outputShape)
    }
}
