import Testing
import ZooTensor

/// Random tensors and finite-difference gradient checks shared by the operation tests.
struct Check {
    var generator = SeededGenerator(seed: 7)

    /// A tensor with values uniform in `range`, in row-major layout or (for 4-D) blocked.
    mutating func tensor(_ shape: [Int], in range: ClosedRange<Float> = -1...1, blocked: Bool = false) throws -> Tensor {
        let values = (0..<shape.reduce(1, *)).map { _ in range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextUnitFloat() }
        let tensor = try Tensor(shape: shape, values: values)
        return blocked ? try tensor.blocked() : tensor
    }

    /// Values that are pairwise at least `gap` apart (shuffled), so that small perturbations
    /// never change which element a max picks or which side of a kink a value is on.
    mutating func distinctValues(_ count: Int, gap: Float = 0.05, offset: Float = 0) -> [Float] {
        var values = (0..<count).map { Float($0) * gap - Float(count) * gap / 2 + offset }
        values.shuffle(using: &generator)
        return values
    }

    /// Compares the tape's gradients of `sum(f(inputs) * projection)` with central differences.
    ///
    /// - Parameters:
    ///   - inputs: the operation's inputs; each is perturbed element by element (at most
    ///     `samples` elements each, spread over the tensor).
    ///   - step: the finite-difference step.
    ///   - tolerance: the check passes when `|analytic - numeric| <= tolerance * (1 + |numeric|)`.
    mutating func gradients(_ inputs: [Tensor], step: Float = 1e-2, tolerance: Float = 2e-2, samples: Int = 24,
                            sourceLocation: SourceLocation = #_sourceLocation,
                            _ f: ([Tensor]) throws -> Tensor) throws {
        let tape = GradientTape()
        let watched = inputs.map { tape.watch($0) }
        let output = try f(watched)
        let projection = try tensor(output.shape)
        try tape.backward(output, seed: projection)
        let weights = try projection.array()

        func objective(_ values: [Tensor]) throws -> Double {
            let y = try f(values).array()
            return zip(y, weights).reduce(0) { $0 + Double($1.0) * Double($1.1) }
        }

        for (index, input) in inputs.enumerated() {
            guard let gradient = tape.gradient(for: watched[index]) else {
                Issue.record("no gradient reached input \(index)", sourceLocation: sourceLocation)
                continue
            }
            #expect(gradient.shape == input.shape, "gradient shape of input \(index)", sourceLocation: sourceLocation)
            let analytic = try gradient.array()
            let base = try input.array()
            let stride = max(1, base.count / samples)
            for element in Swift.stride(from: 0, to: base.count, by: stride) {
                var plus = base, minus = base
                plus[element] += step
                minus[element] -= step
                var perturbedPlus = inputs, perturbedMinus = inputs
                perturbedPlus[index] = try Tensor(shape: input.shape, values: plus)
                perturbedMinus[index] = try Tensor(shape: input.shape, values: minus)
                let numeric = Float((try objective(perturbedPlus) - objective(perturbedMinus)) / Double(2 * step))
                let error = abs(analytic[element] - numeric)
                #expect(error <= tolerance * (1 + abs(numeric)),
                        "input \(index) element \(element): analytic \(analytic[element]) vs numeric \(numeric)",
                        sourceLocation: sourceLocation)
            }
        }
    }
}

/// `|a - b| <= tolerance * (1 + |b|)` element-wise, reporting the worst element.
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-4, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    var worst: (index: Int, error: Float) = (0, 0)
    for (index, (a, b)) in zip(actual, expected).enumerated() {
        let error = abs(a - b) / (1 + abs(b))
        if !(error <= worst.error) { worst = (index, error) }
    }
    #expect(worst.error <= tolerance,
            "\(what): element \(worst.index) is \(actual.isEmpty ? 0 : actual[worst.index]), expected \(expected.isEmpty ? 0 : expected[worst.index])",
            sourceLocation: sourceLocation)
}
