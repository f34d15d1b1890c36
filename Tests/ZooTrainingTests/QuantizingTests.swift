import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooWeights
import ZooModels
import ZooTraining
import ZooCommands

/// Calibrating a classifier for int8, and keeping a framework's classifier in the file it writes.
@Suite("Quantizing classifiers", .serialized)
struct QuantizingTests {
    func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-quantizing-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A framework-flavoured weight file: the architecture with its own classifier, random
    /// weights, keyed as the framework keys them.
    func frameworkFile(_ architecture: String, classes: Int, removing parts: [String] = [], in folder: URL) throws -> URL {
        let model = try Architecture(named: architecture).make(flavor: .torchvision, top: .classifier(classes: classes))
        parts.forEach(model.removeOptionalPart)
        let url = folder.appendingPathComponent("\(architecture).safetensors")
        try SafetensorsFile.write(try model.namedParameters().map { (name: $0.name, shape: $0.parameter.shape, values: try $0.parameter.value.array()) },
                                  to: url)
        return url
    }

    @Test("each layer's own int8 error is measured; --keep-float and a maximum error keep layers in floating point; entropy calibrates")
    func layerErrors() throws {
        let model = try Architecture(named: "cifar-resnet20").make(flavor: .torchvision, top: .classifier(classes: SyntheticDemo.classNames.count))
        let classifier = Classifier(model: model, classNames: SyntheticDemo.classNames, imageSize: 32, preprocessing: .torch)
        let data = try patternDataset(count: 16, seed: 9)
        let report = try classifier.calibrate(on: data, images: 16, method: .entropy, batchSize: 8, workers: 1)
        #expect(report.plan.method == "entropy" && report.images == 16)
        let quantized = report.layers.filter { $0.quantization != nil }
        #expect(quantized.count == 18)
        for layer in quantized {
            let error = try #require(layer.error, "\(layer.path)")
            #expect(error > 0 && error < 0.2, "\(layer.path): \(error)")
        }
        #expect(report.layers.first { $0.path == "conv1" }?.error == nil, "the image-facing convolution never ran in int8")

        let sorted = quantized.compactMap(\.error).sorted()
        let bound = (sorted[sorted.count / 2] + sorted[sorted.count / 2 + 1]) / 2
        let pruned = try classifier.calibrate(on: data, images: 16, method: .minMax, keepingFloat: ["layer1.0.conv1"],
                                              maximumLayerError: bound, batchSize: 8, workers: 1)
        #expect(pruned.plan.keptFloat["layer1.0.conv1"] == "asked for")
        #expect(pruned.layers.first { $0.path == "layer1.0.conv1" }?.error != nil, "a layer kept float is still measured")
        for layer in pruned.layers where layer.path != "conv1" && layer.path != "layer1.0.conv1" {
            let error = try #require(layer.error)
            #expect((layer.quantization == nil) == (error > bound), "\(layer.path): \(error) against \(bound)")
            if error > bound { #expect(pruned.plan.keptFloat[layer.path]?.contains("is above") == true) }
        }
        #expect(model.convolutions.filter { $0.convolution.quantization != nil }.count == pruned.plan.layers.count)

        #expect(throws: ModelError.self) {
            try classifier.calibrate(on: data, images: 16, keepingFloat: ["layer9.conv1"], workers: 1)
        }
    }

    @Test("a framework's classifier is saved with that classifier, without the optional parts its file lacked, and reloads to the same outputs")
    func frameworkClassifier() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = try frameworkFile("inceptionv3", classes: 5, removing: ["AuxLogits"], in: folder)
        let loaded = try LoadedWeights.load(file.path, architecture: try Architecture(named: "inceptionv3"), inputSize: 75)
        let names = (0..<5).map { "class \($0)" }
        let info = try loaded.checkpointInfo(classNames: names)
        #expect(info.head == CheckpointInfo.frameworkClassifier && info.imageSize == 75 && info.publishedWeightSet == nil)
        let saved = folder.appendingPathComponent("saved.safetensors")
        try Checkpoint.save(loaded.model, info: info, to: saved)

        let reloaded = try LoadedWeights.load(saved.path)
        #expect(reloaded.checkpoint == info && reloaded.classNames == names)
        var generator = SeededGenerator(seed: 4)
        let x = try Tensor(shape: [2, 3, 75, 75], values: (0..<(2 * 3 * 75 * 75)).map { _ in generator.nextUnitFloat() * 2 - 1 })
        #expect(try reloaded.model(x, .inference()).array() == loaded.model(x, .inference()).array())
        #expect(throws: TrainingError.self) { try loaded.checkpointInfo(classNames: ["one"]) }

        // A published weight set's settings come back with the model.
        var published = info
        published.publishedWeightSet = "inceptionv3.tv_in1k"
        #expect((try Checkpoint.makeModel(published) as? InceptionV3)?.transformInput == true)
        #expect((try Checkpoint.makeModel(info) as? InceptionV3)?.transformInput == false)
    }
}
