import Foundation
import Testing
import ZooTensor

@Suite("Batch normalization")
struct NormalizationTests {
    /// Per-channel mean and biased variance of NCHW values.
    func statistics(_ values: [Float], _ shape: [Int]) -> (mean: [Float], variance: [Float]) {
        let (n, c, plane) = (shape[0], shape[1], shape.dropFirst(2).reduce(1, *))
        var mean = [Float](repeating: 0, count: c), variance = [Float](repeating: 0, count: c)
        for channel in 0..<c {
            var sum: Double = 0, squares: Double = 0
            for b in 0..<n {
                for i in 0..<plane {
                    let v = Double(values[(b * c + channel) * plane + i])
                    sum += v
                    squares += v * v
                }
            }
            let count = Double(n * plane)
            mean[channel] = Float(sum / count)
            variance[channel] = Float(squares / count - (sum / count) * (sum / count))
        }
        return (mean, variance)
    }

    @Test("training normalizes with batch statistics and returns them", arguments: [[4, 3, 5, 5], [3, 16, 4, 2], [6, 5]])
    func training(shape: [Int]) throws {
        var check = Check()
        let x = try check.tensor(shape, in: -2...3, blocked: shape.count == 4)
        let scale = try check.tensor([shape[1]], in: 0.5...1.5), shift = try check.tensor([shape[1]])
        let epsilon: Float = 1.001e-5
        let (y, mean, variance) = try batchNormTraining(x, scale: scale, shift: shift, epsilon: epsilon)
        let values = try x.array()
        let expected = statistics(values, shape)
        expectClose(try mean.array(), expected.mean, tolerance: 1e-5, "mean")
        expectClose(try variance.array(), expected.variance, tolerance: 1e-5, "variance")
        let (gamma, beta) = (try scale.array(), try shift.array())
        let plane = shape.dropFirst(2).reduce(1, *)
        let normalized = values.enumerated().map { index, v -> Float in
            let channel = (index / plane) % shape[1]
            return (v - expected.mean[channel]) / (expected.variance[channel] + epsilon).squareRoot() * gamma[channel] + beta[channel]
        }
        expectClose(try y.array(), normalized, tolerance: 1e-4, "output")
    }

    @Test("training gradients match finite differences", arguments: [[3, 3, 4, 4], [2, 16, 3, 3], [5, 4]])
    func trainingGradients(shape: [Int]) throws {
        var check = Check()
        let inputs = [try check.tensor(shape, in: -2...2, blocked: shape.count == 4),
                      try check.tensor([shape[1]], in: 0.5...1.5), try check.tensor([shape[1]])]
        try check.gradients(inputs, step: 1e-2, tolerance: 2e-2) { t in
            try batchNormTraining(t[0], scale: t[1], shift: t[2], epsilon: 1e-3).output
        }
    }

    @Test("inference uses the given statistics; gradients match finite differences")
    func inference() throws {
        var check = Check()
        let shape = [2, 12, 3, 3]
        let x = try check.tensor(shape, blocked: true)
        let scale = try check.tensor([12], in: 0.5...1.5), shift = try check.tensor([12])
        let mean = try check.tensor([12]), variance = try check.tensor([12], in: 0.5...2)
        let y = try batchNormInference(x, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3)
        let (v, g, b, m, s) = (try x.array(), try scale.array(), try shift.array(), try mean.array(), try variance.array())
        let expected = v.enumerated().map { index, value -> Float in
            let c = (index / 9) % 12
            return (value - m[c]) / (s[c] + 1e-3).squareRoot() * g[c] + b[c]
        }
        expectClose(try y.array(), expected, tolerance: 1e-5, "output")
        try check.gradients([x, scale, shift], step: 0.25, tolerance: 2e-3) { t in
            try batchNormInference(t[0], scale: t[1], shift: t[2], mean: mean, variance: variance, epsilon: 1e-3)
        }
    }

    @Test("a frozen norm after a trainable layer: only the input is traced, and its gradient matches finite differences",
          arguments: [[2, 12, 3, 3], [3, 40, 2, 2]])
    func inputGradientOnly(shape: [Int]) throws {
        var check = Check()
        let x = try check.tensor(shape, blocked: true)
        let channels = shape[1]
        let scale = try check.tensor([channels], in: 0.5...1.5), shift = try check.tensor([channels])
        let mean = try check.tensor([channels]), variance = try check.tensor([channels], in: 0.5...2)
        try check.gradients([x], step: 0.05, tolerance: 5e-3) { t in
            try batchNormInference(t[0], scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3)
        }
        try check.gradients([x], step: 1e-2, tolerance: 2e-2) { t in
            try batchNormTraining(t[0], scale: scale, shift: shift, epsilon: 1e-3).output
        }
        // With the ReLU fused, against the norm and a separate ReLU (finite differences would
        // straddle the ReLU's kink).
        let seed = try check.tensor(shape)
        func inputGradient(_ f: (Tensor) throws -> Tensor) throws -> [Float] {
            let tape = GradientTape()
            let watched = tape.watch(x)
            try tape.backward(try f(watched), seed: seed)
            return try #require(tape.gradient(for: watched)).array()
        }
        for training in [false, true] {
            func norm(_ t: Tensor, relu: Bool) throws -> Tensor {
                training ? try batchNormTraining(t, scale: scale, shift: shift, epsilon: 1e-3, relu: relu).output
                    : try batchNormInference(t, scale: scale, shift: shift, mean: mean, variance: variance, epsilon: 1e-3, relu: relu)
            }
            expectClose(try inputGradient { try norm($0, relu: true) }, try inputGradient { try ZooTensor.relu(try norm($0, relu: false)) },
                        tolerance: 1e-5, "fused ReLU, training \(training)")
        }
    }

    @Test("running statistics follow the Keras and PyTorch momentum conventions")
    func momentum() throws {
        let running = (try Tensor(shape: [2], values: [1, 2]), try Tensor(shape: [2], values: [3, 4]))
        let batch = (try Tensor(shape: [2], values: [5, 6]), try Tensor(shape: [2], values: [8, 10]))
        // Keras: moving = 0.9 * moving + 0.1 * batch, biased variance.
        let keras = try BatchNormMomentum.keras(momentum: 0.9).updated(
            runningMean: running.0, runningVariance: running.1, batchMean: batch.0, batchVariance: batch.1, count: 5)
        expectClose(try keras.mean.array(), [1.4, 2.4], tolerance: 1e-6, "keras mean")
        expectClose(try keras.variance.array(), [3.5, 4.6], tolerance: 1e-6, "keras variance")
        // PyTorch: running = 0.9 * running + 0.1 * batch, variance corrected by n / (n - 1) = 5 / 4.
        let torch = try BatchNormMomentum.pytorch(momentum: 0.1).updated(
            runningMean: running.0, runningVariance: running.1, batchMean: batch.0, batchVariance: batch.1, count: 5)
        expectClose(try torch.mean.array(), [1.4, 2.4], tolerance: 1e-6, "pytorch mean")
        expectClose(try torch.variance.array(), [3.7, 4.85], tolerance: 1e-6, "pytorch variance")
    }
}
