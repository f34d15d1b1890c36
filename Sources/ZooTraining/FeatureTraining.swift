import Foundation
import ZooTensor
import ZooWeights
import ZooData
import ZooModels

/// The base's outputs for every sample, read from feature files: what the head trains on in
/// `zoo finetune --features`. Each list follows the order of the matching dataset of
/// ``TrainingData``.
public struct SavedFeatures: @unchecked Sendable {
    public var training: [TensorSample]
    public var validation: [TensorSample]?
    public var test: [TensorSample]?
}

/// The samples of a feature file as a dataset: labels, class names and sample ids, but no
/// images (asking for one is an error that says so).
struct FeatureDataset: Dataset {
    let file: FeatureFile

    var classNames: [String] { file.header.classNames }
    var count: Int { file.labels.count }
    func label(at index: Int) -> Int { file.labels[index] }
    func sampleID(at index: Int) -> String { file.sampleIDs[index] }
    func image(at index: Int) throws -> Image {
        throw DataError(file.url.path, "holds features, not images (sample \(sampleID(at: index)))")
    }
}

extension FineTuneSettings {
    /// Settings for training a head on the features in `file`: the model, weights, size and
    /// preprocessing it was extracted with, the whole base frozen.
    public init(features file: URL) throws {
        let header = try FeatureFile.open(file).header
        guard let flavor = Flavor(rawValue: header.flavor), let size = header.imageSize else {
            throw TrainingError("\(file.path) records no flavour or image size; extract from --data with --size")
        }
        self.init(architecture: header.architecture, flavor: flavor, imageSize: size)
        weights = header.weights
        preprocessing = Preprocessing(rawValue: header.preprocessing)
        features = file.path
        unfreeze = "none"
        head = "gap,dense"
        // Features hold no images to mirror.
        testTimeAugmentation = false
    }
}

extension FineTuneJob {
    /// The data of a run on saved features: the training file's samples (classes, limits and
    /// the validation split applied as for images) and the test file's, with their features as
    /// head inputs.
    static func openFeatureData(_ settings: FineTuneSettings) throws -> (TrainingData, FeatureFile) {
        guard let path = settings.features else { throw TrainingError("no feature file given") }
        let file = try FeatureFile.open(URL(fileURLWithPath: path))
        guard file.header.layers.count == 1 else {
            throw TrainingError("\(path) holds \(file.header.layers.count) layers; a head trains on one (the base's output)")
        }
        guard !file.header.classNames.isEmpty else {
            throw TrainingError("\(path) has no labels (it was extracted from an array); extract from --data to train on it")
        }
        let options = settings.data
        var training: any Dataset = FeatureDataset(file: file)
        var testFile: FeatureFile?
        var test: (any Dataset)?
        if let testPath = settings.testFeatures {
            let opened = try FeatureFile.open(URL(fileURLWithPath: testPath))
            guard opened.header.layers == file.header.layers, opened.header.architecture == file.header.architecture,
                  opened.header.weights == file.header.weights, opened.header.imageSize == file.header.imageSize,
                  opened.header.preprocessing == file.header.preprocessing else {
                throw TrainingError("\(testPath) was not extracted like \(path) (model, weights, size, preprocessing and layer must match)")
            }
            guard opened.header.classNames == file.header.classNames else {
                throw TrainingError("the test features' classes \(opened.header.classNames) differ from the training features' \(file.header.classNames)")
            }
            testFile = opened
            test = FeatureDataset(file: opened)
        }
        if let names = options.classes ?? options.firstClasses.map({ Array(training.classNames.prefix($0)) }) {
            training = try training.classes(names)
            test = try test?.classes(names)
        }
        if let limit = options.limitPerClass {
            training = training.limitPerClass(limit)
            test = test?.limitPerClass(limit)
        }
        var validation: (any Dataset)?
        if options.validationFraction > 0 {
            let split = try training.split(validationFraction: options.validationFraction, seed: settings.seed)
            (training, validation) = (split.training, split.validation)
        }
        var data = TrainingData(training: training, validation: validation, test: test)
        data.trainingIsAugmented = false
        data.savedFeatures = SavedFeatures(training: try samples(of: training, from: file),
                                           validation: try validation.map { try samples(of: $0, from: file) },
                                           test: try test.map { try samples(of: $0, from: testFile!) })
        return (data, file)
    }

    /// The head inputs of `dataset`'s samples (a subset of `file`'s, found by sample id), as the
    /// base gives them: `[C, H, W]` feature maps.
    private static func samples(of dataset: any Dataset, from file: FeatureFile) throws -> [TensorSample] {
        var rows: [String: Int] = [:]
        for (row, id) in file.sampleIDs.enumerated() where rows.updateValue(row, forKey: id) != nil {
            throw TrainingError("\(file.url.path): sample id \(id) appears twice")
        }
        let (values, shape) = try file.features()
        let rowShape = Array(shape.dropFirst())
        let rowSize = rowShape.reduce(1, *)
        var samples: [TensorSample] = []
        samples.reserveCapacity(dataset.count)
        let chunk = 256
        for start in stride(from: 0, to: dataset.count, by: chunk) {
            let indices = start..<min(start + chunk, dataset.count)
            var block: [Float] = []
            block.reserveCapacity(indices.count * rowSize)
            for index in indices {
                let row = rows[dataset.sampleID(at: index)]!
                block += values[row * rowSize..<(row + 1) * rowSize]
            }
            samples += try Tensor(nhwc: block, shape: [indices.count] + rowShape).samples()
        }
        return samples
    }

    /// Checks that the features of `file` are what `model`'s base gives at the file's size, so
    /// a head trained on them fits the base: the base's output (`output` of a model without a
    /// classifier, or its last layer by name) of the same shape.
    static func checkFeaturesFit(_ file: FeatureFile, model: ImageModel) throws {
        guard let layer = file.header.layers.first, let size = file.header.imageSize else {
            throw TrainingError("\(file.url.path) records no image size; extract from --data with --size")
        }
        let last = model.baseLayers.last?.name ?? ""
        let probe = try Tensor(nhwc: [Float](repeating: 0, count: size * size * 3), shape: [1, size, size, 3])
        let base = try model.features(probe, .inference()).shape
        let expected = [base[2], base[3], base[1]]
        guard layer.name == FeatureExtraction.outputName || layer.name == last, layer.shape == expected else {
            throw TrainingError("\(file.url.path) holds layer \(layer.name) \(layer.shape), not the output of \(model.name)'s base (\(last), \(expected) at \(size)); "
                + "extract with --layer \(last) from weights without a classifier so that the trained head fits the model")
        }
    }
}
