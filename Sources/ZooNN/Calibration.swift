import Foundation
import ZooTensor

/// How a calibrated range is chosen from the values a tensor took.
public enum CalibrationMethod: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The smallest and largest values seen: nothing saturates, and one outlier coarsens the step
    /// for every other value.
    case minMax
    /// The magnitude below which `percent` of the values fell, clipping the rest: a finer step for
    /// the bulk (99.99 is the usual choice, as in TensorRT's and NNCF's percentile calibrators).
    case percentile(Double)
    /// The clip whose quantized distribution of magnitudes loses the least information against
    /// the one seen (the smallest Kullback-Leibler divergence, TensorRT's entropy calibrator):
    /// clips the tail where few values lie, adapting to each tensor's shape.
    case entropy

    public var description: String {
        switch self {
        case .minMax: return "minmax"
        case let .percentile(percent): return "percentile \(percent)"
        case .entropy: return "entropy"
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
    /// Values exactly 0 (a ReLU's output is mostly these), also counted in the first bin.
    private var zeros = 0
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
            for value in values {
                counts[min(Int(abs(value) * perUnit), Self.bins - 1)] += 1
                if value == 0 { zeros += 1 }
            }
        }
    }

    /// The range to quantize to: the extremes, or both clipped to the magnitude the method
    /// chooses (for a percentile, the upper edge of the bin where that share of the values is
    /// reached).
    public func range(_ method: CalibrationMethod) -> (minimum: Float, maximum: Float) {
        guard count > 0 else { return (0, 0) }
        guard !histogram.isEmpty else { return (minimum, maximum) }
        let clip: Float
        switch method {
        case .minMax: return (minimum, maximum)
        case let .percentile(percent): clip = percentileClip(percent)
        case .entropy: clip = entropyClip(levels: minimum >= 0 ? 255 : 127)
        }
        return (max(minimum, -clip), min(maximum, clip))
    }

    private func percentileClip(_ percent: Double) -> Float {
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
        return clip
    }

    /// The clip, at a bin edge, that minimizes KL(P || Q): P the magnitudes below it with those
    /// above counted in its last bin, Q the same bins quantized to `levels` steps (each step's
    /// count spread evenly over the bins where P is not empty). Candidates every 8 bins from
    /// `levels` up: a 256th of the histogram's range is finer than the step of any int8 range it
    /// gives.
    ///
    /// Exact zeros are left out: every clip keeps them exact, and after a ReLU their spike in
    /// the first bin, spread over a step's bins by Q, would outweigh everything else and drive
    /// the clip far too low. Measured on the CIFAR-10 ResNet-20 (256 images, each layer's own
    /// error): 3-12% with them, 1.2-3.2% without, against 1.6-4.0% for the 99.99 percentile
    /// and 1.3-4.8% for the extremes.
    private func entropyClip(levels: Int) -> Float {
        var histogram = self.histogram
        histogram[0] -= zeros
        let total = histogram.reduce(0, +)
        guard total > 0, let last = histogram.lastIndex(where: { $0 > 0 }) else { return bound }
        let binWidth = bound / Float(Self.bins)
        guard last + 1 > levels else { return Float(last + 1) * binWidth }
        var best = (divergence: Double.infinity, bins: last + 1)
        var reference = [Double](repeating: 0, count: last + 1), expanded = reference
        for bins in stride(from: levels, through: last + 1, by: 8) {
            let outliers = histogram[bins...].reduce(0, +)
            for bin in 0..<bins { reference[bin] = Double(histogram[bin]) }
            reference[bins - 1] += Double(outliers)
            for level in 0..<levels {
                let start = level * bins / levels, end = (level + 1) * bins / levels
                var sum = 0.0, occupied = 0
                for bin in start..<end {
                    sum += Double(histogram[bin])
                    if reference[bin] > 0 { occupied += 1 }
                }
                for bin in start..<end { expanded[bin] = reference[bin] > 0 ? sum / Double(occupied) : 0 }
            }
            // The clipped tail counts in P's last bin but in no step of Q; Q gets a floor so the
            // divergence stays finite where a step holds nothing but that tail.
            let referenceTotal = Double(total), expandedTotal = expanded[..<bins].reduce(0, +)
            var divergence = 0.0
            for bin in 0..<bins where reference[bin] > 0 {
                let p = reference[bin] / referenceTotal
                let q = max(expanded[bin] / max(expandedTotal, 1), 1e-12)
                divergence += p * log(p / q)
            }
            if divergence < best.divergence { best = (divergence, bins) }
        }
        return Float(best.bins) * binWidth
    }
}

/// Records, over calibration batches, the ranges of what each convolution of a model reads and
/// writes, and turns them into each one's ``ConvolutionQuantization``. Set as a pass's
/// ``ForwardContext/calibration``; the pass runs in floating point.
///
/// One made with `measuringError` records no ranges: instead each convolution that has a
/// ``Conv2D/quantization`` also runs in int8 on the floating-point pass's input, and the
/// calibration keeps how far that lands from the floating-point output (``error(of:)``): each
/// layer's own error, apart from what earlier layers add.
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

    /// Sums of squared int8-minus-float differences and of squared float values, by convolution.
    private var errors: [ObjectIdentifier: (difference: Double, reference: Double)] = [:]
    /// Whether this calibration measures int8 error instead of recording ranges.
    public let measuresError: Bool

    public init(measuringError: Bool = false) {
        measuresError = measuringError
    }

    /// Records how far `quantized`, the int8 output of `convolution`, lands from its
    /// floating-point `reference`.
    func observeError(_ convolution: Conv2D, reference: Tensor, quantized: Tensor) throws {
        let expected = try reference.array(), actual = try quantized.array()
        var sums = errors[ObjectIdentifier(convolution)] ?? (0, 0)
        for (value, approximation) in zip(expected, actual) {
            let difference = Double(approximation - value)
            sums.difference += difference * difference
            sums.reference += Double(value) * Double(value)
        }
        errors[ObjectIdentifier(convolution)] = sums
    }

    /// The root-mean-square difference between `convolution`'s int8 and floating-point outputs
    /// over the root-mean-square floating-point output (0.01 is 1%); nil when it was not
    /// measured.
    public func error(of convolution: Conv2D) -> Double? {
        guard let sums = errors[ObjectIdentifier(convolution)] else { return nil }
        return sums.reference > 0 ? (sums.difference / sums.reference).squareRoot() : (sums.difference > 0 ? .infinity : 0)
    }

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
        guard !measuresError else { return }
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
