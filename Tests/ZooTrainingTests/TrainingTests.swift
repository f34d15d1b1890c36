import Testing
import ZooTensor
import ZooNN
import ZooTraining
import ZooCommands

@Suite("Training", .serialized)
struct TrainingTests {
    @Test("SGD with momentum follows PyTorch's update rule")
    func sgdRule() throws {
        let parameter = Parameter(try Tensor(shape: [2], values: [1, -2]))
        let optimizer = GradientDescent(.sgd(momentum: 0.9), learningRate: 0.1, weightDecay: .l2(0.01))
        var velocity: [Float] = [0, 0], value: [Float] = [1, -2]
        for gradient: [Float] in [[0.5, 0.25], [-1, 2]] {
            parameter.gradient = try Tensor(shape: [2], values: gradient)
            try optimizer.step([("p", parameter)])
            for i in 0..<2 {
                velocity[i] = 0.9 * velocity[i] + gradient[i] + 0.01 * value[i]
                value[i] -= 0.1 * velocity[i]
            }
            #expect(zip(try parameter.value.array(), value).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(parameter.gradient == nil)
        }
    }

    @Test("a rate scale multiplies one parameter's rate and keeps its L2 decay per step")
    func rateScale() throws {
        let scaled = Parameter(try Tensor(shape: [2], values: [1, -2])), plain = Parameter(try Tensor(shape: [2], values: [1, -2]))
        let optimizer = GradientDescent(.sgd(momentum: 0), learningRate: 0.1, weightDecay: .l2(0.01))
        optimizer.rateScales = ["scaled": 64]
        for parameter in [scaled, plain] { parameter.gradient = try Tensor(shape: [2], values: [0.5, 0.25]) }
        try optimizer.step([("scaled", scaled), ("plain", plain)])
        // p - lr * s * (g + decay / s * p) = p - lr * (s * g + decay * p)
        let expectedScaled: [Float] = [1 - 3.2 - 0.001, -2 - 1.6 + 0.002], expectedPlain: [Float] = [1 - 0.05 - 0.001, -2 - 0.025 + 0.002]
        let (scaledValues, plainValues) = (try scaled.value.array(), try plain.value.array())
        #expect(zip(scaledValues, expectedScaled).allSatisfy { abs($0 - $1) < 1e-5 }, "\(scaledValues)")
        #expect(zip(plainValues, expectedPlain).allSatisfy { abs($0 - $1) < 1e-6 }, "\(plainValues)")
    }

    @Test("the synthetic demo's CNN learns: validation loss below 0.15 and accuracy above 95% in 8 epochs")
    func demoLearns() throws {
        let reports = try SyntheticDemo.run()
        let last = try #require(reports.last)
        #expect(last.validationLoss < 0.15)
        #expect(last.validationAccuracy > 0.95)
        #expect(reports.first!.trainingLoss > last.trainingLoss)
    }

    @Test("a training step's memory does not grow over 100 steps")
    func noLeaks() throws {
        Initialization.seed(5)
        let network = SyntheticDemo.model()
        let optimizer = GradientDescent(.sgd(momentum: 0.9), learningRate: 0.01)
        var generator = SeededGenerator(seed: 5)
        let data = SyntheticDemo.images(count: 16, size: 16, generator: &generator)
        let batch = try Tensor(shape: [16, 3, 16, 16], values: data.values)
        func step() throws {
            let tape = GradientTape()
            let loss = try softmaxCrossEntropy(logits: network(batch, ForwardContext(training: true, tape: tape)), labels: data.labels)
            try tape.backward(loss)
            try optimizer.step(network.namedParameters())
        }
        // Metered, so tests running beside this one do not count.
        let meter = MemoryMeter()
        let resident = try Memory.metering(meter) {
            for _ in 0..<5 { try step() }
            let live = meter.liveBytes
            let resident = Memory.residentBytes
            var liveCounts: Set<Int> = []
            for _ in 0..<100 {
                try step()
                liveCounts.insert(meter.liveBytes)
            }
            // Tensors: exactly the same bytes live after every step.
            #expect(liveCounts == [live])
            return resident
        }
        // The process: no growth beyond allocator noise (2 MB) over 100 steps.
        #expect(Memory.residentBytes - resident < 2 << 20)
    }
}
