import Foundation
import Testing
import ZooTensor
import ZooTraining

@Suite("Optimizers, schedules and metrics")
struct OptimizerTests {
    /// Runs two steps of `kind` on one parameter and compares with the rule written out.
    func twoSteps(_ kind: OptimizerKind, decay: WeightDecay = .none, expected: ([Float], [Float], Float, Int) -> [Float]) throws {
        let parameter = Parameter(try Tensor(shape: [3], values: [0.5, -1, 2]))
        let optimizer = GradientDescent(kind, learningRate: 0.1, weightDecay: decay)
        var values: [Float] = [0.5, -1, 2]
        for (step, gradient) in [[Float(0.2), -0.4, 1], [-0.1, 0.3, 0.5]].enumerated() {
            parameter.gradient = try Tensor(shape: [3], values: gradient)
            try optimizer.step([("w", parameter)])
            values = expected(values, gradient, 0.1, step + 1)
            let actual = try parameter.value.array()
            #expect(zip(actual, values).allSatisfy { abs($0 - $1) <= 1e-5 * (1 + abs($1)) }, "\(kind) step \(step + 1): \(actual) vs \(values)")
        }
    }

    @Test("Adam, Adamax, RMSprop and AdamW follow their update rules")
    func rules() throws {
        var m = [Float](repeating: 0, count: 3), v = [Float](repeating: 0, count: 3)
        try twoSteps(.adam()) { p, g, lr, t in
            (0..<3).map { i in
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mHat = m[i] / (1 - pow(0.9, Float(t))), vHat = v[i] / (1 - pow(0.999, Float(t)))
                return p[i] - lr * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        (m, v) = ([0, 0, 0], [0, 0, 0])
        try twoSteps(.adam(), decay: .decoupled(0.5)) { p, g, lr, t in
            (0..<3).map { i in
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mHat = m[i] / (1 - pow(0.9, Float(t))), vHat = v[i] / (1 - pow(0.999, Float(t)))
                return p[i] * (1 - lr * 0.5) - lr * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        (m, v) = ([0, 0, 0], [0, 0, 0])
        try twoSteps(.adamax()) { p, g, lr, t in
            (0..<3).map { i in
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = max(0.999 * v[i], abs(g[i]))
                return p[i] - lr / (1 - pow(0.9, Float(t))) * m[i] / (v[i] + 1e-8)
            }
        }
        v = [0, 0, 0]
        try twoSteps(.rmsprop()) { p, g, lr, _ in
            (0..<3).map { i in
                v[i] = 0.99 * v[i] + 0.01 * g[i] * g[i]
                return p[i] - lr * g[i] / (v[i].squareRoot() + 1e-8)
            }
        }
        v = [0, 0, 0]
        try twoSteps(.sgd(momentum: 0.9, nesterov: true), decay: .l2(0.01)) { p, g, lr, _ in
            (0..<3).map { i in
                let decayed = g[i] + 0.01 * p[i]
                v[i] = 0.9 * v[i] + decayed
                return p[i] - lr * (decayed + 0.9 * v[i])
            }
        }
    }

    @Test("frozen parameters and parameters without gradients are left alone; clipping bounds the step")
    func frozenAndClipped() throws {
        let frozen = Parameter(try Tensor(shape: [1], values: [1]), trainable: false)
        frozen.gradient = try Tensor(shape: [1], values: [5])
        let idle = Parameter(try Tensor(shape: [1], values: [2]))
        let clipped = Parameter(try Tensor(shape: [2], values: [0, 0]))
        clipped.gradient = try Tensor(shape: [2], values: [3, 4])
        let optimizer = GradientDescent(.sgd(momentum: 0), learningRate: 1, clipping: .globalNorm(1))
        try optimizer.step([("frozen", frozen), ("idle", idle), ("clipped", clipped)])
        #expect(try frozen.value.array() == [1])
        #expect(try idle.value.array() == [2])
        let step = try clipped.value.array()
        #expect(abs(step[0] + 0.6) < 1e-6 && abs(step[1] + 0.8) < 1e-6)

        // Clipping by value clamps each element; weight decay is added after the clamp.
        let clamped = Parameter(try Tensor(shape: [3], values: [1, 1, 1]))
        clamped.gradient = try Tensor(shape: [3], values: [-3, 0.25, 2])
        let clamping = GradientDescent(.sgd(momentum: 0), learningRate: 1, weightDecay: .l2(0.5), clipping: .value(0.5))
        try clamping.step([("clamped", clamped)])
        // Clamped gradients -0.5, 0.25, 0.5, each plus 0.5 * 1 of decay.
        let expected: [Float] = [1, 0.25, 0]
        #expect(try clamped.value.array() == expected)
    }

    @Test("optimizer state survives a save and restore, giving the same next step")
    func stateRoundTrip() throws {
        func run(restoreAfterFirst: Bool) throws -> [Float] {
            let parameter = Parameter(try Tensor(shape: [2], values: [1, 2]))
            var optimizer = GradientDescent(.adam(), learningRate: 0.05)
            for step in 0..<3 {
                parameter.gradient = try Tensor(shape: [2], values: [Float(step) + 0.5, -1])
                try optimizer.step([("w", parameter)])
                if restoreAfterFirst, step == 0 {
                    let saved = optimizer.state()
                    optimizer = GradientDescent(.adam(), learningRate: 0.05)
                    try optimizer.restore(saved)
                }
            }
            return try parameter.value.array()
        }
        #expect(try run(restoreAfterFirst: true) == run(restoreAfterFirst: false))
    }

    @Test("schedules: step decay, cosine, one-cycle, warmup, reduce on plateau, early stopping")
    func schedules() throws {
        let step = LearningRateSchedule.step(milestones: [81, 122], factors: [0.1, 0.01])
        #expect(step.rate(base: 0.1, epoch: 80.9, totalEpochs: 160) == 0.1)
        #expect(abs(step.rate(base: 0.1, epoch: 81, totalEpochs: 160) - 0.01) < 1e-9)
        #expect(abs(step.rate(base: 0.1, epoch: 150, totalEpochs: 160) - 0.001) < 1e-9)
        let cosine = LearningRateSchedule.cosine(minimum: 0)
        #expect(cosine.rate(base: 1, epoch: 0, totalEpochs: 10) == 1)
        #expect(abs(cosine.rate(base: 1, epoch: 5, totalEpochs: 10) - 0.5) < 1e-6)
        #expect(abs(cosine.rate(base: 1, epoch: 10, totalEpochs: 10)) < 1e-6)
        let warm = LearningRateSchedule.warmup(epochs: 2, startFactor: 0, then: .constant)
        #expect(abs(warm.rate(base: 1, epoch: 1, totalEpochs: 10) - 0.5) < 1e-6)
        #expect(warm.rate(base: 1, epoch: 3, totalEpochs: 10) == 1)

        // One-cycle: a 25th of the base rate, up to the base rate at 30% of the run, down to a 10,000th of the start.
        let cycle = try #require(try? ScheduleSettings.Kind(parsing: "onecycle"))
        #expect(cycle == .oneCycle(peakFraction: 0.3) && cycle.text == "onecycle")
        var settings = ScheduleSettings()
        settings.kind = cycle
        let oneCycle = try #require(try? settings.make())
        func rate(_ epoch: Double) -> Float { oneCycle.rate(base: 0.4, epoch: epoch, totalEpochs: 10) }
        #expect(abs(rate(0) - 0.016) < 1e-7)
        #expect(abs(rate(1.5) - (0.016 + (0.4 - 0.016) * 0.5)) < 1e-6, "half way up, by cosine")
        #expect(abs(rate(3) - 0.4) < 1e-7)
        #expect(abs(rate(6.5) - (0.016e-4 + (0.4 - 0.016e-4) * 0.5)) < 1e-6, "half way down")
        #expect(abs(rate(10) - 0.016e-4) < 1e-9)
        let rates = stride(from: 0.0, through: 10, by: 0.25).map(rate)
        #expect(zip(rates, rates.dropFirst()).prefix(12).allSatisfy { $0 < $1 } && zip(rates, rates.dropFirst()).dropFirst(12).allSatisfy { $0 > $1 })
        #expect(try ScheduleSettings.Kind(parsing: "onecycle:0.25") == .oneCycle(peakFraction: 0.25))
        for bad in ["onecycle:0", "onecycle:1.5", "onecycle:x"] {
            #expect(throws: TrainingError.self, "\(bad)") { try ScheduleSettings.Kind(parsing: bad) }
        }
        settings.warmupEpochs = 1
        #expect(throws: TrainingError.self) { try settings.make() }

        var plateau = ReduceOnPlateau(factor: 0.5, patience: 2)
        let scales = [1.0, 0.9, 0.95, 0.93, 0.94, 0.8].map { plateau.update(validationLoss: Float($0), scheduledRate: 0.1) }
        #expect(scales == [1, 1, 1, 0.5, 0.5, 0.5])

        var stopping = EarlyStopping(patience: 2)
        let decisions = [1.0, 0.8, 0.85, 0.9].enumerated().map { stopping.update(epoch: $0.offset, validationLoss: Float($0.element)) }
        #expect(decisions.map(\.improved) == [true, true, false, false])
        #expect(decisions.map(\.stop) == [false, false, false, true])
        #expect(stopping.bestEpoch == 1)
    }

    @Test("metrics: accuracy, top-5, confusion, macro precision, recall and F1")
    func metrics() {
        var metrics = ClassificationMetrics(classes: 3)
        // Predictions: 0->0, 1->0, 2->2, 2->1.
        metrics.add(scores: [0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.1, 0.2, 0.7, 0.1, 0.5, 0.4], labels: [0, 1, 2, 2], meanLoss: 0.5,
                    probabilities: [0.9, 0.05, 0.05, 0.6, 0.3, 0.1, 0.1, 0.2, 0.7, 0.1, 0.5, 0.4])
        #expect(metrics.accuracy == 0.5)
        #expect(metrics.top5 == 1)
        #expect(metrics.confusion == [[1, 0, 0], [1, 0, 0], [0, 1, 1]])
        #expect(metrics.perClassAccuracy == [1, 0, 0.5])
        // Precision: class 0 1/2, class 1 0/1, class 2 1/1; recall 1, 0, 1/2.
        #expect(abs(metrics.macroPrecision - 0.5) < 1e-6)
        #expect(abs(metrics.macroRecall - 0.5) < 1e-6)
        #expect(abs(metrics.macroF1 - (2.0 / 3 + 0 + 2.0 / 3) / 3) < 1e-6)
        #expect(abs(metrics.meanConfidence - (0.9 + 0.6 + 0.7 + 0.5) / 4) < 1e-6)
    }
}
