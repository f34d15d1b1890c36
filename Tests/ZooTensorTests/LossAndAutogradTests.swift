import Foundation
import Testing
import ZooTensor

@Suite("Loss and autograd")
struct LossAndAutogradTests {
    @Test("softmax cross-entropy with and without label smoothing")
    func crossEntropy() throws {
        let logits = try Tensor(shape: [2, 3], values: [1, 2, 3, 0, 0, 5])
        let labels = [2, 0]
        for smoothing: Float in [0, 0.1] {
            var expected: Double = 0
            let rows: [[Double]] = [[1, 2, 3], [0, 0, 5]]
            for (row, label) in zip(rows, labels) {
                let logSum = log(row.map { exp($0) }.reduce(0, +))
                for (k, v) in row.enumerated() {
                    let target = Double(k == label ? 1 - smoothing + smoothing / 3 : smoothing / 3)
                    expected -= target * (v - logSum)
                }
            }
            let loss = try softmaxCrossEntropy(logits: logits, labels: labels, labelSmoothing: smoothing)
            #expect(abs(Double(try loss.scalar()) - expected / 2) < 1e-5)
            var check = Check()
            try check.gradients([try check.tensor([4, 6], in: -3...3)], step: 1e-2, tolerance: 1e-2) { t in
                try softmaxCrossEntropy(logits: t[0], labels: [0, 5, 2, 2], labelSmoothing: smoothing)
            }
        }
    }

    @Test("class weights scale each sample's loss; the sum is divided by the batch size, as Keras's class_weight")
    func classWeightedCrossEntropy() throws {
        let rows: [[Float]] = [[1, 2, 3], [0, 0, 5], [2, -1, 0]]
        let labels = [2, 0, 0]
        let weights: [Float] = [4, 1, 0.5]
        let logits = try Tensor(shape: [3, 3], values: rows.flatMap { $0 })
        var expected: Double = 0
        for (row, label) in zip(rows, labels) {
            let logSum = log(row.map { exp(Double($0)) }.reduce(0, +))
            expected += Double(weights[label]) * (logSum - Double(row[label]))
        }
        let loss = try softmaxCrossEntropy(logits: logits, labels: labels, classWeights: weights)
        #expect(abs(Double(try loss.scalar()) - expected / 3) < 1e-5)
        // Weights of one are the unweighted loss.
        let plain = try softmaxCrossEntropy(logits: logits, labels: labels).scalar()
        #expect(try softmaxCrossEntropy(logits: logits, labels: labels, classWeights: [1, 1, 1]).scalar() == plain)
        var check = Check()
        try check.gradients([try check.tensor([4, 3], in: -3...3)], step: 1e-2, tolerance: 1e-2) { t in
            try softmaxCrossEntropy(logits: t[0], labels: [0, 1, 2, 2], labelSmoothing: 0.1, classWeights: [3, 0.25, 1])
        }
        #expect(throws: TensorError.self) { try softmaxCrossEntropy(logits: logits, labels: labels, classWeights: [1, 2]) }
        #expect(throws: TensorError.self) { try softmaxCrossEntropy(logits: logits, labels: labels, classWeights: [1, -2, 1]) }
    }

    @Test("softmax rows sum to one; gradient matches finite differences")
    func softmaxRows() throws {
        var check = Check()
        let x = try check.tensor([3, 5], in: -2...2)
        let p = try softmax(x).array()
        for row in 0..<3 { #expect(abs(p[row * 5..<row * 5 + 5].reduce(0, +) - 1) < 1e-6) }
        try check.gradients([x], step: 1e-2, tolerance: 1e-2) { try softmax($0[0]) }
    }

    @Test("parameter gradients accumulate over backward passes and shared uses")
    func parameterAccumulation() throws {
        var check = Check()
        let weight = Parameter(try check.tensor([3, 4]))
        let x = try check.tensor([2, 4])
        func step() throws {
            let tape = GradientTape()
            let w = tape.watch(weight)
            // The weight is used twice in one graph.
            let y = try add(dense(x, weight: w), dense(x, weight: w))
            try tape.backward(y, seed: Tensor.filled([2, 3], 1))
        }
        try step()
        let once = try weight.gradient!.array()
        // d/dW of sum(2 x W^T) is 2 * column sums of x, for every output row.
        let xv = try x.array()
        let expectedRow = (0..<4).map { 2 * (xv[$0] + xv[4 + $0]) }
        expectClose(once, Array((0..<3).map { _ in expectedRow }.joined()), tolerance: 1e-5, "shared use")
        try step()
        expectClose(try weight.gradient!.array(), once.map { $0 * 2 }, tolerance: 1e-5, "accumulated")
        weight.zeroGradient()
        #expect(weight.gradient == nil)
    }

    @Test("a tape runs backward once, and inputs from two tapes do not mix")
    func tapeMisuse() throws {
        let tapeA = GradientTape(), tapeB = GradientTape()
        let a = tapeA.watch(Tensor.filled([2, 2], 1)), b = tapeB.watch(Tensor.filled([2, 2], 1))
        #expect(throws: TensorError.mixedTapes(operation: "add")) { try add(a, b) }
        let y = try relu(a)
        try tapeA.backward(y)
        #expect(throws: TensorError.self) { try tapeA.backward(y) }
    }

    @Test("saved tensors are freed by backward and by dropping the tape")
    func freesIntermediates() throws {
        var check = Check()
        let x = try check.tensor([4, 8, 16, 16], blocked: true)
        let weight = Parameter(try check.tensor([8, 8, 3, 3]))
        func trainingPass() throws {
            let tape = GradientTape()
            var h = tape.watch(x)
            for _ in 0..<4 { h = try relu(conv2d(h, weight: tape.watch(weight), options: Conv2DOptions(padding: .symmetric(1)))) }
            try tape.backward(try globalAvgPool2d(h), seed: Tensor.filled([4, 8], 1))
            weight.zeroGradient()
        }
        // Metered, so tests running beside this one do not count.
        let meter = MemoryMeter()
        try Memory.metering(meter) {
            // The first pass also leaves the weight's reordered copy behind, which is meant to stay.
            try trainingPass()
            let before = meter.liveBytes
            try trainingPass()
            #expect(meter.liveBytes == before)
            do {
                let tape = GradientTape()
                var h = tape.watch(x)
                for _ in 0..<4 { h = try relu(conv2d(h, weight: tape.watch(weight), options: Conv2DOptions(padding: .symmetric(1)))) }
                #expect(meter.liveBytes > before)
            }
            #expect(meter.liveBytes == before)
        }
    }
}
