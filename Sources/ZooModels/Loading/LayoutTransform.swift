/// How a tensor's values move from a weight file's layout into zoo's (PyTorch's) layout.
public enum LayoutTransform: Sendable, Equatable, CustomStringConvertible {
    /// Same layout.
    case identity
    /// Keras convolution kernel `[kh, kw, in, out]` to `[out, in, kh, kw]`.
    case kerasConvolution
    /// Keras depthwise kernel `[kh, kw, channels, multiplier]` to `[channels * multiplier, 1, kh, kw]`.
    case kerasDepthwise
    /// Keras dense kernel `[in, out]` to `[out, in]`.
    case kerasDense
    /// Keras 1x1 convolution kernel `[1, 1, in, out]` to a dense `[out, in]` (a classifier that
    /// Keras holds as a convolution on a pooled map and zoo as a dense layer).
    case kerasPointwiseAsDense
    /// A Keras dense kernel after a channels-last flatten of a `[height, width, channels]` map,
    /// to zoo's `[out, channels * height * width]` (channel-major flatten).
    case kerasDenseAfterFlatten(height: Int, width: Int, channels: Int)
    /// A Keras scalar (shape `[]`, the sample count of a `Normalization` layer) to a
    /// one-element vector `[1]`.
    case scalar

    public var description: String {
        switch self {
        case .identity: return "identity"
        case .kerasConvolution: return "HWIO -> OIHW"
        case .kerasDepthwise: return "HWC1 -> C1HW"
        case .kerasDense: return "[in, out] -> [out, in]"
        case .kerasPointwiseAsDense: return "[1, 1, in, out] -> [out, in]"
        case let .kerasDenseAfterFlatten(height, width, channels): return "[\(height)*\(width)*\(channels), out] (HWC rows) -> [out, CHW]"
        case .scalar: return "[] -> [1]"
        }
    }

    /// The shape `source` has after the transform, or nil when it does not apply to that shape.
    public func shape(from source: [Int]) -> [Int]? {
        switch self {
        case .identity: return source
        case .kerasConvolution:
            return source.count == 4 ? [source[3], source[2], source[0], source[1]] : nil
        case .kerasDepthwise:
            return source.count == 4 ? [source[2] * source[3], 1, source[0], source[1]] : nil
        case .kerasDense:
            return source.count == 2 ? [source[1], source[0]] : nil
        case .kerasPointwiseAsDense:
            return source.count == 4 && source[0] == 1 && source[1] == 1 ? [source[3], source[2]] : nil
        case let .kerasDenseAfterFlatten(height, width, channels):
            return source.count == 2 && source[0] == height * width * channels ? [source[1], source[0]] : nil
        case .scalar:
            return source.isEmpty || source == [1] ? [1] : nil
        }
    }

    /// Moves `values` (row-major in the source shape) into the target layout.
    public func apply(_ values: [Float], from source: [Int]) -> [Float] {
        switch self {
        case .identity, .scalar:
            return values
        case .kerasConvolution:
            let (kh, kw, input, output) = (source[0], source[1], source[2], source[3])
            var result = [Float](repeating: 0, count: values.count)
            for h in 0..<kh { for w in 0..<kw { for i in 0..<input { for o in 0..<output {
                result[((o * input + i) * kh + h) * kw + w] = values[((h * kw + w) * input + i) * output + o]
            } } } }
            return result
        case .kerasDepthwise:
            let (kh, kw, channels, multiplier) = (source[0], source[1], source[2], source[3])
            var result = [Float](repeating: 0, count: values.count)
            for h in 0..<kh { for w in 0..<kw { for c in 0..<channels { for m in 0..<multiplier {
                result[((c * multiplier + m) * kh + h) * kw + w] = values[((h * kw + w) * channels + c) * multiplier + m]
            } } } }
            return result
        case .kerasDense:
            return transposed(values, rows: source[0], columns: source[1])
        case .kerasPointwiseAsDense:
            return transposed(values, rows: source[2], columns: source[3])
        case let .kerasDenseAfterFlatten(height, width, channels):
            // Keras row (h, w, c) becomes zoo column (c, h, w).
            let output = source[1]
            var result = [Float](repeating: 0, count: values.count)
            for h in 0..<height { for w in 0..<width { for c in 0..<channels {
                let kerasRow = (h * width + w) * channels + c
                let zooColumn = (c * height + h) * width + w
                for o in 0..<output { result[o * source[0] + zooColumn] = values[kerasRow * output + o] }
            } } }
            return result
        }
    }

    private func transposed(_ values: [Float], rows: Int, columns: Int) -> [Float] {
        var result = [Float](repeating: 0, count: values.count)
        for r in 0..<rows { for c in 0..<columns { result[c * rows + r] = values[r * columns + c] } }
        return result
    }
}
