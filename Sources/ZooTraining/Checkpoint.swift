import Foundation
import ZooTensor
import ZooNN
import ZooWeights
import ZooModels

/// What a checkpoint says about the model it holds, so it can be rebuilt without the run's
/// configuration: architecture, flavour, head, classes and the preprocessing its inputs need.
public struct CheckpointInfo: Codable, Sendable, Equatable {
    public var architecture: String
    public var flavor: Flavor
    /// The head as `HeadSpecification` text (`gap,dropout=0.5,dense`), or
    /// ``frameworkClassifier``.
    public var head: String
    public var classNames: [String]
    public var imageSize: Int
    public var preprocessing: Preprocessing
    /// Epochs completed (0 before training).
    public var epoch: Int
    /// The freeze plan in effect at `epoch`.
    public var unfreeze: String
    public var zooVersion: String
    /// The catalog weight set the model came from unchanged, whose published settings it runs
    /// with (``ZooModels/ImageModel/adoptPublishedWeightSettings()``); nil for a model trained
    /// by zoo.
    public var publishedWeightSet: String?

    /// The ``head`` of a model with the architecture's own classifier, as the framework builds
    /// it (a framework's ImageNet classifier, saved by `zoo quantize`).
    public static let frameworkClassifier = "framework"

    enum CodingKeys: String, CodingKey {
        case architecture, flavor, head, epoch, unfreeze, preprocessing
        case classNames = "class_names"
        case imageSize = "image_size"
        case zooVersion = "zoo_version"
        case publishedWeightSet = "published_weight_set"
    }

    public init(architecture: String, flavor: Flavor, head: String, classNames: [String], imageSize: Int,
                preprocessing: Preprocessing, epoch: Int, unfreeze: String, zooVersion: String = "0.1.0", publishedWeightSet: String? = nil) {
        self.architecture = architecture
        self.flavor = flavor
        self.head = head
        self.classNames = classNames
        self.imageSize = imageSize
        self.preprocessing = preprocessing
        self.epoch = epoch
        self.unfreeze = unfreeze
        self.zooVersion = zooVersion
        self.publishedWeightSet = publishedWeightSet
    }
}

/// A model with everything needed to continue training or to use it: one safetensors file.
///
/// Tensors: `model.<parameter>` (running statistics included) and `optimizer.<state>`; the
/// `__metadata__` holds the ``CheckpointInfo`` (`zoo.checkpoint`), the trainer's own state
/// (`zoo.training`, JSON) and, in a file `zoo quantize` wrote, the int8 ``QuantizationPlan``
/// (`zoo.quantization`, JSON), so the file is complete on its own and written atomically: a kill
/// leaves the previous checkpoint or the new one, never half of either. A JSON copy of the
/// metadata is written beside it for people.
public struct Checkpoint {
    public var info: CheckpointInfo
    public var model: ImageModel
    /// The optimizer's state (empty when the file has none).
    public var optimizerState: [String: [Float]]
    /// The training loop's own state, as JSON text (nil outside a training run).
    public var trainingState: String?
    /// The int8 calibration the file holds (see ``ZooModels/ImageModel/quantize(_:)``); nil for
    /// an ordinary checkpoint. Loading does not apply it.
    public var quantization: QuantizationPlan?

    /// Builds the model a checkpoint describes (weights not loaded).
    public static func makeModel(_ info: CheckpointInfo) throws -> ImageModel {
        let architecture = try Architecture(named: info.architecture)
        if info.head == CheckpointInfo.frameworkClassifier {
            let model = try Initialization.skippingRandomness {
                try architecture.make(flavor: info.flavor, top: .classifier(classes: info.classNames.count), inputSize: info.imageSize)
            }
            if info.publishedWeightSet != nil { model.adoptPublishedWeightSettings() }
            return model
        }
        let model = try Initialization.skippingRandomness {
            try architecture.make(flavor: info.flavor, top: .features(pooling: nil), inputSize: info.imageSize)
        }
        model.head = try HeadSpecification(parsing: info.head, classes: info.classNames.count).head(for: model, inputSize: info.imageSize)
        return model
    }

    /// Writes `model` (and optionally an optimizer's and a trainer's state) to `url`.
    public static func save(_ model: ImageModel, info: CheckpointInfo, optimizerState: [String: [Float]] = [:],
                            trainingState: String? = nil, quantization: QuantizationPlan? = nil, to url: URL) throws {
        var tensors = try model.namedParameters().map { name, parameter in
            (name: "model." + name, shape: parameter.shape, values: try parameter.value.array())
        }
        for key in optimizerState.keys.sorted() {
            tensors.append((name: "optimizer." + key, shape: [optimizerState[key]!.count], values: optimizerState[key]!))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var metadata = ["zoo.checkpoint": String(decoding: try encoder.encode(info), as: UTF8.self), "format": "zoo-checkpoint"]
        if let trainingState { metadata["zoo.training"] = trainingState }
        if let quantization { metadata[quantizationKey] = String(decoding: try encoder.encode(quantization), as: UTF8.self) }
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try AtomicFile.write(Data(encoder.encode(info)) + Data("\n".utf8), to: url.deletingPathExtension().appendingPathExtension("json"))
    }

    static let quantizationKey = "zoo.quantization"

    /// The ``CheckpointInfo`` of the checkpoint at `url`, without loading its tensors.
    public static func info(of url: URL) throws -> CheckpointInfo {
        try info(in: try WeightFiles.open(url), url: url)
    }

    private static func info(in reader: any WeightReader, url: URL) throws -> CheckpointInfo {
        guard reader.format == .safetensors, let text = reader.metadata.extra["zoo.checkpoint"] else {
            throw TrainingError.notACheckpoint(file: url)
        }
        let info: CheckpointInfo
        do {
            info = try JSONDecoder().decode(CheckpointInfo.self, from: Data(text.utf8))
        } catch {
            throw TrainingError.unreadableCheckpoint(file: url, reason: "\(error)")
        }
        return info
    }

    /// Reads a checkpoint, rebuilding its model and loading every parameter by name.
    public static func load(_ url: URL) throws -> Checkpoint {
        let reader = try WeightFiles.open(url)
        let info = try info(in: reader, url: url)
        let model = try makeModel(info)
        // A framework classifier saved without its optional parts (InceptionV3's AuxLogits).
        let names = Set(reader.tensors.map(\.name))
        for part in model.optionalParts where !names.contains(where: { $0.hasPrefix("model." + part + ".") }) {
            model.removeOptionalPart(part)
        }
        for (name, parameter) in model.namedParameters() {
            guard let tensor = reader.info("model." + name) else {
                throw TrainingError.checkpointLacksTensor(file: url, tensor: "model." + name, architecture: info.architecture, head: info.head)
            }
            guard tensor.shape == parameter.shape else {
                throw TrainingError.checkpointShapeMismatch(file: url, tensor: "model." + name, shape: tensor.shape, expected: parameter.shape)
            }
            parameter.value = try Tensor(shape: tensor.shape, values: try reader.floats(tensor.name))
        }
        var optimizerState: [String: [Float]] = [:]
        for tensor in reader.tensors where tensor.name.hasPrefix("optimizer.") {
            optimizerState[String(tensor.name.dropFirst("optimizer.".count))] = try reader.floats(tensor.name)
        }
        var quantization: QuantizationPlan?
        if let text = reader.metadata.extra[quantizationKey] {
            do {
                quantization = try JSONDecoder().decode(QuantizationPlan.self, from: Data(text.utf8))
            } catch {
                throw TrainingError.unreadableCheckpoint(file: url, reason: "its int8 quantization (\(quantizationKey)) does not decode: \(error)")
            }
        }
        return Checkpoint(info: info, model: model, optimizerState: optimizerState, trainingState: reader.metadata.extra["zoo.training"],
                          quantization: quantization)
    }
}
