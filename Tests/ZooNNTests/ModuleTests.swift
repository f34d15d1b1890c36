import Testing
import ZooTensor
import ZooNN

/// A two-level model with the kinds of children a real model has.
final class Block: Module, Layer {
    let conv = Conv2D(4, 8, kernel: 3, padding: .symmetric(1), bias: false)
    let norm = BatchNorm(8)
    let stages: [Conv2D] = [Conv2D(8, 8, kernel: 1), Conv2D(8, 8, kernel: 1, bias: false)]

    func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try stages.reduce(try relu(norm(conv(x, context), context))) { try $1($0, context) }
    }
}

@Suite("Modules")
struct ModuleTests {
    @Test("each initializer draws with the spread its definition gives (He, LeCun, Glorot, PyTorch's uniform)")
    func initializerSpreads() throws {
        Initialization.seed(3)
        let fanIn = 64 * 9, fanOut = 32 * 9
        let expected: [(Initializer, Double)] = [
            (.heNormal, (2 / Double(fanIn)).squareRoot()), (.lecunNormal, (1 / Double(fanIn)).squareRoot()),
            // A uniform in ±limit has standard deviation limit / sqrt(3).
            (.glorotUniform, (6 / Double(fanIn + fanOut)).squareRoot() / 3.0.squareRoot()),
            (.pytorchDefault, 1 / Double(fanIn).squareRoot() / 3.0.squareRoot()),
        ]
        for (initializer, deviation) in expected {
            let values = try initializer.tensor([32, 64, 3, 3], fanIn: fanIn, fanOut: fanOut).array().map(Double.init)
            let mean = values.reduce(0, +) / Double(values.count)
            let measured = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)).squareRoot()
            // 18,432 draws: the sample deviation is within about 1% of the true one.
            #expect(abs(measured / deviation - 1) < 0.03, "\(initializer): \(measured) against \(deviation)")
            #expect(abs(mean) < deviation * 0.05, "\(initializer): mean \(mean)")
        }
    }

    @Test("parameters have hierarchical names in declaration order")
    func names() {
        let model = Sequential { Block(); GlobalPool2D(); Dense(8, 3) }
        #expect(model.namedParameters().map(\.name) == [
            "0.conv.weight", "0.norm.weight", "0.norm.bias", "0.norm.running_mean", "0.norm.running_var",
            "0.stages.0.weight", "0.stages.0.bias", "0.stages.1.weight", "2.weight", "2.bias",
        ])
        #expect(model.namedModules().map(\.name) == ["", "0", "0.conv", "0.norm", "0.stages.0", "0.stages.1", "1", "2"])
        #expect(model.parameterCount == 4 * 8 * 9 + 4 * 8 + 2 * (64 + 8) - 8 + 8 * 3 + 3)
    }

    @Test("freezing excludes parameters from training; running statistics are never trainable")
    func freezing() {
        let block = Block()
        // conv.weight, norm.weight, norm.bias, stages.0.weight, stages.0.bias, stages.1.weight
        #expect(block.trainableParameters.count == 6)
        block.norm.freeze()
        #expect(block.norm.isFrozen)
        #expect(block.trainableParameters.count == 4)
        block.unfreeze()
        #expect(block.trainableParameters.count == 6)
        #expect(!block.norm.runningMean.isTrainable)
    }

    @Test("batch norm updates running statistics in training and not when frozen or in inference")
    func batchNormModes() throws {
        let norm = BatchNorm(3, momentum: .pytorch(momentum: 0.5))
        let x = try Tensor(shape: [2, 3, 1, 2], values: (0..<12).map(Float.init))
        // Channel c holds {2c, 2c+1, 6+2c, 7+2c}: mean 2c + 3.5, biased variance 9.25.
        _ = try norm(x, ForwardContext(training: true, tape: GradientTape()))
        #expect(try norm.runningMean.value.array() == [1.75, 2.75, 3.75])
        let unbiased: Float = 9.25 * 4 / 3
        #expect(try norm.runningVariance.value.array().allSatisfy { abs($0 - (0.5 + 0.5 * unbiased)) < 1e-5 })
        let before = try norm.runningMean.value.array()
        _ = try norm(x, .inference())
        norm.freeze()
        let frozenOutput = try norm(x, ForwardContext(training: true, tape: GradientTape()))
        #expect(try norm.runningMean.value.array() == before)
        let inferenceOutput = try norm(x, .inference())
        #expect(try frozenOutput.array() == inferenceOutput.array())
    }

    @Test("building after the same seed gives the same weights")
    func seededInitialization() throws {
        Initialization.seed(3)
        let a = Conv2D(3, 4, kernel: 3)
        Initialization.seed(3)
        let b = Conv2D(3, 4, kernel: 3)
        #expect(try a.weight.value.array() == b.weight.value.array())
    }
}
