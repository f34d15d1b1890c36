import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooWeights
import ZooModels
import ZooTraining
import ZooCommands

/// A family as another package would write one, through the public API only: a convolution, its
/// batch norm and a ReLU, then the standard top.
final class TinyNet: ImageModel {
    let conv: Conv2D
    let bn: BatchNorm

    init(flavor: Flavor, top: Top) {
        conv = Conv2D(inChannels: 3, outChannels: 8, kernel: [3, 3], options: Conv2DOptions(stride: 2, padding: .symmetric(1)), bias: false)
        bn = BatchNorm(8)
        super.init(name: "tinynet-test", flavor: flavor, featureChannels: 8, minimumInputSize: 8)
        appendLayer("input_layer", .inputLayer)
        appendLayer("conv", .conv2D, conv)
        appendLayer("bn", .batchNormalization, bn)
        appendLayer("relu", .activation)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    override var stages: [Stage] {
        [Stage("stem", modules: [conv, bn]) { [conv, bn] x, context in
            var y = context.tap("input_layer", x)
            y = context.tap("conv", try conv(y, context))
            y = context.tap("bn", try bn(y, context))
            return context.tap("relu", try relu(y))
        }]
    }

    static let architecture = Architecture(name: "tinynet-test", summary: "a test family", defaultInputSize: 16,
                                           flavors: [.torchvision], preprocessing: [.torchvision: .torch]) {
        TinyNet(flavor: $0.flavor, top: $0.top)
    }
}

@Suite("An architecture registered by another package", .serialized)
struct RegistryTests {
    init() throws {
        if (try? Architecture(named: "tinynet-test")) == nil { try ModelRegistry.register(TinyNet.architecture) }
    }

    @Test("is found by name in any spelling, lists with the others, and its name cannot be taken twice")
    func byName() throws {
        #expect(try Architecture(named: "TinyNet_Test") == TinyNet.architecture)
        #expect(Architecture.allCases.contains(TinyNet.architecture))
        // The built-in families first, in registry order; what other packages register after them.
        let names = Architecture.allCases.map(\.name)
        #expect(names.prefix(3) == ["alexnet", "vgg11", "vgg13"])
        #expect(try #require(names.firstIndex(of: TinyNet.architecture.name)) > (names.firstIndex(of: "mobilenetv2") ?? .max))
        #expect(throws: ModelError.self) { try ModelRegistry.register(TinyNet.architecture) }
        #expect(throws: ModelError.self) { try ModelRegistry.register(Architecture.resnet50) }
    }

    @Test("summarizes, loads weights by name, fine-tunes, extracts and reloads its checkpoint like a built-in one")
    func everywhere() throws {
        let architecture = try Architecture(named: "tinynet-test")
        let model = try architecture.make(flavor: .torchvision, top: .classifier(classes: 3))
        let summary = try ModelSummary(model, inputSize: 16)
        #expect(summary.layers.map(\.name) == ["input_layer", "conv", "bn", "relu", "avg_pool", "predictions"])
        #expect(summary.total == 8 * 3 * 9 + 4 * 8 + 8 * 3 + 3)
        #expect(summary.multiplyAdds == 8 * 8 * (8 * 3 * 9) + 8 * 3)

        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("tiny.safetensors")
        try WeightExport.safetensors(model, to: file)
        let (loaded, report) = try architecture.load(flavor: .torchvision, weights: file)
        #expect(report.isComplete)
        #expect(loaded.head?.outputFeatures == 3)
        let images = (0..<2 * 16 * 16 * 3).map { Float($0 % 255) }
        let expected = try FeatureExtraction.run(model, nhwc: images, shape: [2, 16, 16, 3], preprocessing: .torch)
        let actual = try FeatureExtraction.run(loaded, nhwc: images, shape: [2, 16, 16, 3], preprocessing: .torch)
        #expect(expected.shape == [2, 3] && actual.values == expected.values)
        let features = try FeatureExtraction.run(loaded, nhwc: images, shape: [2, 16, 16, 3], layer: "bn", preprocessing: .torch)
        #expect(features.shape == [2, 8, 8, 8])

        // The pooled base output, under zoo's name and the frameworks' (on a base without a top,
        // where no such layer exists), is the global average of the last feature map.
        let base = try architecture.make(flavor: .torchvision, top: .features(pooling: nil))
        let lastMap = try FeatureExtraction.run(base, nhwc: images, shape: [2, 16, 16, 3], layer: "relu", preprocessing: .torch)
        for name in [FeatureExtraction.pooledName, "avgpool", "avg_pool", "global_average_pooling2d"] {
            let pooled = try FeatureExtraction.run(base, nhwc: images, shape: [2, 16, 16, 3], layer: name, preprocessing: .torch)
            #expect(pooled.shape == [2, 8])
            for (index, value) in pooled.values.enumerated() {
                let (image, channel) = (index / 8, index % 8)
                let cells = (0..<64).map { lastMap.values[(image * 64 + $0) * 8 + channel] }
                #expect(abs(value - cells.reduce(0, +) / 64) < 1e-5)
            }
        }
        let context = ForwardContext.inference()
        #expect(try base.pooledFeatures(try Tensor(nhwc: images, shape: [2, 16, 16, 3]), context).shape == [2, 8])

        // A dataset source without a transform is resized by the evaluation transform.
        let featureFile = folder.appendingPathComponent("pooled.h5")
        let header = FeatureFileHeader(architecture: "tinynet-test", flavor: .torchvision, weights: "random", imageSize: 16, preprocessing: .torch)
        let written = try FeatureExtraction.extract(base, from: .dataset(try patternDataset(count: 8, size: 32, seed: 4), size: 16, transform: nil, workers: 1),
                                                    layers: [FeatureExtraction.pooledName], to: featureFile, batchSize: 4, header: header,
                                                    preprocessing: .torch)
        #expect(written.count == 8 && written.layers.map(\.shape) == [[8]])
        #expect(!FileManager.default.fileExists(atPath: featureFile.path + ".partial"))

        var settings = FineTuneSettings(architecture: "tinynet-test", flavor: .torchvision, imageSize: 16)
        settings.classNames = SyntheticDemo.classNames
        settings.epochs = 1
        settings.batchSize = 16
        settings.unfreeze = .all
        settings.preprocessing = .torch
        let data = TrainingData(training: try patternDataset(count: 32, size: 16, seed: 1), validation: nil,
                                test: try patternDataset(count: 16, size: 16, seed: 2))
        let run = folder.appendingPathComponent("run")
        // The fine-tuner puts the settings' head on a bare base.
        let result = try FineTuner(settings: settings, model: try architecture.make(flavor: .torchvision, top: .features(pooling: nil)),
                                   data: data, folder: run).run()
        #expect(result.history.epochs.count == 1)
        let classifier = try Classifier(checkpoint: run.appendingPathComponent("checkpoints/last.safetensors"))
        #expect(classifier.model.name == "tinynet-test" && classifier.classNames == SyntheticDemo.classNames)
    }
}
