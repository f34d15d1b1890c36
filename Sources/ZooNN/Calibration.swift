import ZooTensor

/// How a calibrated range is chosen from the values a tensor took.
public enum CalibrationMethod: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The smallest and largest values seen: nothing saturates, and one outlier coarsens the step
    /// for every other value.
    case minMax
    /// The magnitude below which `percent` of the values fell, clipping the rest: a finer step for
    /// the bulk (99.99 is the usual choice, as in TensorRT's and NNCF's percentile calibrators).
    case percentile(Double)

    public var description: String {
        switch self {
        case .minMax: return "minmax"
        case let .percentile(percent): return "percentile \(percent)"
        }
    }
}

/// The values one tensor took over the calibration batches: their extremes, and a histogram of
/// magnitudes for percentiles.
public struct ValueStatistics: Sendable {
    public private(set) var minimum: Float = .infinity
    public private(set) var maximum: Float = -.infinity
    public private(set) var count = 0
    /// Counts of magnitudes in `bins` equal bins over `[0, bound)`; the bound doubles (merging
    /// bins in pairs) when a larger magnitude arrives, so the histogram never needs the values
    /// again.
    private var histogram: [Int] = []
    private var bound: Float = 0
    private static let bins = 2048

    public init() {}

    /// Adds `values`.
    public mutating func add(_ values: UnsafeBufferPointer<Float>) {
        guard !values.isEmpty else { return }
        var low = minimum, high = maximum
        for value in values {
            low = min(low, value)
            high = max(high, value)
        }
        minimum = low
        maximum = high
        count += values.count
        let largest = max(abs(low), abs(high))
        guard largest.isFinite else { return }
        if histogram.isEmpty {
            histogram = [Int](repeating: 0, count: Self.bins)
            bound = largest > 0 ? largest * 1.0001 : 1
        }
        while largest >= bound {
            for bin in 0..<Self.bins / 2 { histogram[bin] = histogram[2 * bin] + histogram[2 * bin + 1] }
            for bin in Self.bins / 2..<Self.bins { histogram[bin] = 0 }
            bound *= 2
        }
        let perUnit = Float(Self.bins) / bound
        histogram.withUnsafeMutableBufferPointer { counts in
            for value in values { counts[min(Int(abs(value) * perUnit), Self.bins - 1)] += 1 }
        }
    }

    /// The range to quantize to: the extremes, or for a percentile both clipped to the magnitude
    /// below which that share of the values fell (the upper edge of its bin).
    public func range(_ method: CalibrationMethod) -> (minimum: Float, maximum: Float) {
        guard count > 0 else { return (0, 0) }
        guard case let .percentile(percent) = method, !histogram.isEmpty else { return (minimum, maximum) }
        let wanted = Int((Double(count) * percent / 100).rounded(.up))
        var seen = 0
        var clip = bound
        for (bin, binCount) in histogram.enumerated() {
            seen += binCount
            if seen >= wanted {
                clip = Float(bin + 1) * bound / Float(Self.bins)
                break
            }
        }
        return (max(minimum, -clip), min(maximum, clip))
    }
}

/// Records, over calibration batches, the ranges of what each convolution of a model reads and
/// writes, and turns them into each one's ``ConvolutionQuantization``. Set as a pass's
/// ``ForwardContext/calibration``; the pass runs in floating point.
public final class ActivationCalibration {
    /// What one convolution saw.
    public struct Observation: Sendable {
        public var input = ValueStatistics()
        public var output = ValueStatistics()
        public var residual: ValueStatistics?
        /// Input channels (the layer with at most 4 reads the image, and stays floating point).
        public var inputChannels = 0
    }

    private var observations: [ObjectIdentifier: Observation] = [:]
    /// The outputs of batch norms that ran on their own (not folded into a convolution).
    private var normOutputs: [ObjectIdentifier: ValueStatistics] = [:]

    public init() {}

    /// Records a floating-point pass of `convolution`.
    func observe(_ convolution: Conv2D, input: Tensor, output: Tensor, residual: Tensor?) throws {
        var observation = observations[ObjectIdentifier(convolution)] ?? Observation()
        observation.inputChannels = input.shape.count == 4 ? input.shape[1] : 0
        try input.withUnsafeBufferPointer { observation.input.add($0) }
        try output.withUnsafeBufferPointer { observation.output.add($0) }
        if let residual {
            var statistics = observation.residual ?? ValueStatistics()
            try residual.withUnsafeBufferPointer { statistics.add($0) }
            observation.residual = statistics
        }
        observations[ObjectIdentifier(convolution)] = observation
    }

    /// Records a floating-point pass of a batch norm that runs on its own.
    func observe(_ norm: BatchNorm, output: Tensor) throws {
        var statistics = normOutputs[ObjectIdentifier(norm)] ?? ValueStatistics()
        try output.withUnsafeBufferPointer { statistics.add($0) }
        normOutputs[ObjectIdentifier(norm)] = statistics
    }

    /// The quantization calibrated for the output of `norm`; nil when it never ran on its own.
    public func quantization(of norm: BatchNorm, method: CalibrationMethod) -> ActivationQuantization? {
        guard let statistics = normOutputs[ObjectIdentifier(norm)] else { return nil }
        let (minimum, maximum) = statistics.range(method)
        return ActivationQuantization(minimum: minimum, maximum: maximum)
    }

    /// What `convolution` saw; nil when it never ran.
    public func observation(of convolution: Conv2D) -> Observation? {
        observations[ObjectIdentifier(convolution)]
    }

    /// The quantization calibrated for `convolution` by `method`: every range quantized as
    /// ``ActivationQuantization/init(minimum:maximum:)`` does. Nil when it never ran.
    public func quantization(of convolution: Conv2D, method: CalibrationMethod) -> ConvolutionQuantization? {
        guard let observation = observation(of: convolution) else { return nil }
        func quantization(_ statistics: ValueStatistics) -> ActivationQuantization {
            let (minimum, maximum) = statistics.range(method)
            return ActivationQuantization(minimum: minimum, maximum: maximum)
        }
        return ConvolutionQuantization(input: quantization(observation.input), output: quantization(observation.output),
                                       residual: observation.residual.map(quantization))
    }
}
