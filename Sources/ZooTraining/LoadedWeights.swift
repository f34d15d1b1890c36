import Foundation
import ZooTensor
import ZooWeights
import ZooModels
import ZooCatalog

/// Weights as a user names them, loaded: a zoo checkpoint, a framework's weight file, or a
/// weight set of the catalog (one zoo ships, or one pulled into the cache), with the flavour,
/// preprocessing, input size and classes they imply. Fine-tuning, evaluation, prediction and
/// extraction all resolve their weights through this one set of rules:
///
/// - a zoo checkpoint is the model it saved, with its own flavour, preprocessing, size and
///   classes (its architecture must be the one asked for, when one is);
/// - any other file loads into the architecture asked for, in the flavour asked for, else the
///   weight set's, else the file's framework (Keras files are Keras's), else the architecture's
///   default;
/// - preprocessing is the one asked for, else the weight set's or the checkpoint's, else the
///   architecture's usual one for the flavour; the input size likewise.
public struct LoadedWeights {
    public var model: ImageModel
    public var architecture: Architecture
    public var flavor: Flavor
    /// The preprocessing to use: the one asked for, else ``statedPreprocessing``, else the
    /// architecture's usual one for the flavour.
    public var preprocessing: Preprocessing
    /// The preprocessing the weights state themselves (a checkpoint's, a weight set's); nil for a
    /// plain framework file.
    public var statedPreprocessing: Preprocessing?
    public var inputSize: Int
    /// The classes of the model's outputs when the weights name them: a checkpoint's, or the
    /// weight set's class list.
    public var classNames: [String]?
    /// The file that was read.
    public var file: URL
    /// The catalog's weight set, when the weights were named by one or are its file.
    public var weightSet: WeightSet?
    /// What a checkpoint says of itself; nil for framework weights.
    public var checkpoint: CheckpointInfo?
    /// What loading a framework file did; nil for checkpoints.
    public var report: LoadReport?
    /// The int8 calibration of a file `zoo quantize` wrote; nil otherwise. Not applied: see
    /// ``prepare(for:)``.
    public var quantization: QuantizationPlan?
    /// Whether the model runs with its weight set's published settings
    /// (``ZooModels/ImageModel/adoptPublishedWeightSettings()``).
    public var publishedSettings = false

    /// Sets the model up to run in `precision`: int8 runs the convolutions the file's
    /// calibration quantized in int8 (an error for weights without one); any other precision
    /// runs every convolution in floating point.
    public func prepare(for precision: ResolvedPrecision) throws {
        guard precision.quantized else { return model.removeQuantization() }
        guard let quantization else { throw TrainingError.notQuantized(file: file) }
        try model.quantize(quantization)
    }

    /// What a checkpoint of these weights records: a checkpoint's own description, or for a
    /// framework's classifier its architecture with that classifier
    /// (``CheckpointInfo/frameworkClassifier``) and the published settings of its weight set,
    /// its outputs named by `classNames`.
    public func checkpointInfo(classNames: [String]) throws -> CheckpointInfo {
        if let checkpoint { return checkpoint }
        guard let outputs = model.head?.outputFeatures else { throw TrainingError.noClassifier(file: file) }
        guard outputs == classNames.count else {
            throw TrainingError.outputsDoNotMatchClasses(file: file, outputs: outputs, classes: classNames.count)
        }
        return CheckpointInfo(architecture: architecture.name, flavor: flavor, head: CheckpointInfo.frameworkClassifier,
                              classNames: classNames, imageSize: inputSize, preprocessing: preprocessing, epoch: 0,
                              unfreeze: FreezePlan.all.description, publishedWeightSet: publishedSettings ? weightSet?.name : nil)
    }

    /// Loads `weights` (a path, or a weight set's name).
    ///
    /// - Parameters:
    ///   - architecture: the architecture the weights are for; required unless they are a zoo
    ///     checkpoint (which names its own).
    ///   - flavor, preprocessing, inputSize: overrides of what the weights imply.
    ///   - strict: refuse a framework file that does not set every parameter (see
    ///     ``ZooModels/Architecture/load(flavor:weights:strict:rules:)``).
    ///   - asPublished: set on the model what the framework sets when it loads a published weight
    ///     set (``ZooModels/ImageModel/adoptPublishedWeightSettings()``). Fine-tuning leaves it
    ///     off: checkpoints do not record such settings, so a checkpoint would not reload them.
    public static func load(_ weights: String, architecture: Architecture? = nil, flavor: Flavor? = nil,
                            preprocessing: Preprocessing? = nil, inputSize: Int? = nil, strict: Bool = true,
                            rules: [RenameRule] = [], asPublished: Bool = true) throws -> LoadedWeights {
        let (file, set) = try Catalog.localFile(weights)
        if let checkpoint = try? Checkpoint.load(file) {
            let saved = try Architecture(named: checkpoint.info.architecture)
            if let architecture, architecture != saved {
                throw TrainingError.weightsDoNotFit(weights: weights, holds: "\(saved.name) (\(checkpoint.info.flavor.rawValue))", expected: architecture.name)
            }
            return LoadedWeights(model: checkpoint.model, architecture: saved, flavor: checkpoint.info.flavor,
                                 preprocessing: preprocessing ?? checkpoint.info.preprocessing, statedPreprocessing: checkpoint.info.preprocessing,
                                 inputSize: inputSize ?? checkpoint.info.imageSize, classNames: checkpoint.info.classNames, file: file,
                                 weightSet: set, checkpoint: checkpoint.info, report: nil, quantization: checkpoint.quantization,
                                 publishedSettings: checkpoint.info.publishedWeightSet != nil)
        }
        guard let architecture = try architecture ?? set.map({ try $0.resolvedArchitecture() }) else {
            throw TrainingError.architectureNeeded(weights: weights)
        }
        let format = try WeightFiles.format(of: file)
        let isKerasFile = [.kerasH5, .kerasWeightsH5, .kerasArchive].contains(format)
        let chosenFlavor = flavor ?? set?.flavor ?? (architecture.flavors.count > 1 ? (isKerasFile ? .keras : .torchvision) : architecture.defaultFlavor)
        let (model, report) = try architecture.load(flavor: chosenFlavor, weights: file, strict: strict, rules: rules)
        if set != nil, asPublished { model.adoptPublishedWeightSettings() }
        let classNames = set?.classNames ?? (model.head?.outputFeatures == ClassList.imagenet1k.names.count ? ClassList.imagenet1k.names : nil)
        return LoadedWeights(model: model, architecture: architecture, flavor: chosenFlavor,
                             preprocessing: preprocessing ?? set?.inputPreprocessing ?? architecture.defaultPreprocessing(chosenFlavor),
                             statedPreprocessing: set?.inputPreprocessing,
                             inputSize: inputSize ?? set?.inputSize ?? architecture.defaultInputSize, classNames: classNames, file: file,
                             weightSet: set, checkpoint: nil, report: report, quantization: nil, publishedSettings: set != nil && asPublished)
    }
}
