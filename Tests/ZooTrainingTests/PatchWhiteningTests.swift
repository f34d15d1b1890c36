import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooData
import ZooModels
import ZooTraining
import ZooCommands

@Suite("Patch whitening", .serialized)
struct PatchWhiteningTests {
    /// Images whose channels and neighbouring pixels are correlated, as photographs' are: a
    /// smoothed random field mixed into three channels plus a little independent noise.
    func correlatedImages(count: Int, size: Int, seed: UInt64) throws -> Tensor {
        var generator = SeededGenerator(seed: seed)
        func normal() -> Float {
            let u = Float.random(in: Float.ulpOfOne..<1, using: &generator), v = Float.random(in: 0..<1, using: &generator)
            return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
        }
        let plane = size * size
        var values = [Float](repeating: 0, count: count * 3 * plane)
        for image in 0..<count {
            let field = (0..<plane).map { _ in normal() }
            for y in 0..<size {
                for x in 0..<size {
                    let right = field[y * size + min(x + 1, size - 1)], below = field[min(y + 1, size - 1) * size + x]
                    let smooth = field[y * size + x] + 0.8 * right + 0.6 * below
                    for (channel, mix) in [1.0, 0.7, -0.4].enumerated() {
                        values[(image * 3 + channel) * plane + y * size + x] = Float(mix) * smooth + 0.1 * normal()
                    }
                }
            }
        }
        return try Tensor(shape: [count, 3, size, size], values: values)
    }

    /// The covariance of the channels of `maps` `[N, C, H, W]` over every image and position.
    func channelCovariance(_ maps: Tensor) throws -> [[Double]] {
        let (count, channels, plane) = (maps.shape[0], maps.shape[1], maps.shape[2] * maps.shape[3])
        let values = try maps.array()
        func value(_ n: Int, _ c: Int, _ p: Int) -> Double { Double(values[(n * channels + c) * plane + p]) }
        let total = Double(count * plane)
        let means = (0..<channels).map { c in (0..<count).reduce(0.0) { sum, n in (0..<plane).reduce(sum) { $0 + value(n, c, $1) } } / total }
        return (0..<channels).map { i in
            (0..<channels).map { j in
                var sum = 0.0
                for n in 0..<count { for p in 0..<plane { sum += (value(n, i, p) - means[i]) * (value(n, j, p) - means[j]) } }
                return sum / total
            }
        }
    }

    @Test("cifar-airbench's 2x2 stem whitens: its first 12 outputs are uncorrelated with variance λ/(λ+ε), the other 12 their negatives")
    func stemWhitens() throws {
        Initialization.seed(5)
        let model = try Architecture.cifarAirbench.make(flavor: .torchvision, top: .features(pooling: nil))
        let images = try correlatedImages(count: 24, size: 12, seed: 9)
        let whitening = PatchWhitening(images: 20, epsilon: 5e-4)
        let result = try whitening.apply(to: model, images: [images])
        #expect(result.layer == "stem_conv")
        #expect(result.patches == 20 * 11 * 11)
        #expect(result.eigenvalues.count == 12)
        #expect(zip(result.eigenvalues, result.eigenvalues.dropFirst()).allSatisfy { $0 >= $1 })
        // The strongest direction carries most of the variance: the three channels are one field.
        #expect(result.eigenvalues[0] > 10 * result.eigenvalues[11])

        let convolution = try PatchWhitening.firstConvolution(of: model).convolution
        let first20 = try Tensor(shape: [20, 3, 12, 12], values: Array(try images.array().prefix(20 * 3 * 144)))
        let outputs = try conv2d(first20, weight: convolution.weight.value, options: convolution.options)
        let covariance = try channelCovariance(outputs)
        for i in 0..<12 {
            let lambda = result.eigenvalues[i]
            #expect(abs(covariance[i][i] - lambda / (lambda + 5e-4)) < 2e-3, "variance of output \(i)")
            for j in 0..<12 where j != i { #expect(abs(covariance[i][j]) < 2e-3, "covariance of outputs \(i) and \(j)") }
        }
        // The trace of the patch covariance, computed straight from the patches, is the eigenvalues' sum.
        let patchCovariance = try channelCovariance(try patches(of: first20, kernel: 2))
        let trace = (0..<12).reduce(0.0) { $0 + patchCovariance[$1][$1] }
        #expect(abs(result.eigenvalues.reduce(0, +) - trace) < 1e-4 * trace)
        let weights = try convolution.weight.value.array()
        #expect(zip(weights.prefix(144), weights.suffix(144)).allSatisfy { $0 == -$1 })
    }

    /// Every `kernel` x `kernel` patch of `images` as a column of values `[N, C*k*k, H', W']`.
    func patches(of images: Tensor, kernel: Int) throws -> Tensor {
        let (count, channels, size) = (images.shape[0], images.shape[1], images.shape[2])
        let out = size - kernel + 1
        let values = try images.array()
        var result: [Float] = []
        for n in 0..<count {
            for c in 0..<channels {
                for row in 0..<kernel {
                    for column in 0..<kernel {
                        for y in 0..<out { for x in 0..<out { result.append(values[((n * channels + c) * size + y + row) * size + x + column]) } }
                    }
                }
            }
        }
        return try Tensor(shape: [count, channels * kernel * kernel, out, out], values: result)
    }

    @Test("a first convolution with more outputs than twice its patch values is refused, naming the layer")
    func tooManyOutputs() throws {
        let model = try Architecture.vgg16.make(flavor: .keras, top: .features(pooling: nil))
        #expect {
            try PatchWhitening.firstConvolution(of: model)
        } throws: { error in
            "\(error)".contains("block1_conv1") && "\(error)".contains("64 outputs exceed twice the 27 values")
        }
    }

    func settings() -> FineTuneSettings {
        var settings = FineTuneSettings(architecture: "cifar-airbench", flavor: .torchvision, imageSize: 32)
        settings.classNames = SyntheticDemo.classNames
        (settings.epochs, settings.batchSize, settings.unfreeze, settings.seed) = (1, 8, .all, 2)
        settings.optimizer.learningRate = 0.05
        settings.preprocessing = .torch
        settings.data.augmentation = "none"
        settings.testTimeAugmentation = false
        settings.stemWhitening = PatchWhitening(images: 12)
        return settings
    }

    @Test("a whitened run sets the stem once and keeps it fixed through training and resume while the rest trains")
    func runKeepsStemFixed() throws {
        let data = TrainingData(training: try patternDataset(count: 16, size: 32, seed: 6))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-whiten-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        Initialization.seed(8)
        let model = try Architecture.cifarAirbench.make(flavor: .torchvision, top: .features(pooling: nil))
        let random = try PatchWhitening.firstConvolution(of: model).convolution.weight.value.array()
        try FineTuner(settings: settings(), model: model, data: data, folder: folder).run()
        let stem = try PatchWhitening.firstConvolution(of: model).convolution.weight.value.array()
        #expect(stem != random)
        #expect(zip(stem.prefix(144), stem.suffix(144)).allSatisfy { $0 == -$1 })
        let saved = try JSONDecoder().decode(FineTuneSettings.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        #expect(saved.stemWhitening == PatchWhitening(images: 12))

        try setEpochs(2, ofRunIn: folder)
        let resumed = try FineTuner(resuming: folder, data: data)
        let others = try resumed.model.namedParameters().filter { $0.name != "stem.conv.weight" }.map { try $0.parameter.value.array() }
        try resumed.run()
        #expect(try PatchWhitening.firstConvolution(of: resumed.model).convolution.weight.value.array() == stem)
        let trained = try resumed.model.namedParameters().filter { $0.name != "stem.conv.weight" }.map { try $0.parameter.value.array() }
        #expect(zip(others, trained).contains { $0 != $1 })
    }

    @Test("whitening a run that starts from weights is refused: it would overwrite their first convolution")
    func refusedWithWeights() throws {
        var settings = settings()
        settings.weights = "cifar-airbench.zoo_cifar10"
        let model = try Architecture.cifarAirbench.make(flavor: .torchvision, top: .features(pooling: nil))
        let data = TrainingData(training: try patternDataset(count: 8, size: 32, seed: 6))
        #expect {
            try FineTuner(settings: settings, model: model, data: data)
        } throws: { error in
            "\(error)".contains("cifar-airbench.zoo_cifar10") && "\(error)".contains("overwrite")
        }
    }
}
