import Foundation
import ZooTensor
import ZooWeights
import ZooData
import ZooModels

/// The base's outputs for every sample, what the head trains on instead of images: read from
/// feature files (`zoo finetune --features`), or held in memory (``init(extractingFrom:model:imageSize:preprocessing:batchSize:)``).
/// Each list follows the order of the matching dataset of ``TrainingData``; every sample is the
/// base's output feature map at the run's image size (a ``FineTuner`` checks that).
public struct SavedFeatures: @unchecked Sendable {
    public var training: [TensorSample]
    public var validation: [TensorSample]?
    public var test: [TensorSample]?

    /// Samples as ``Tensor/samples()`` gives them from the base's output (`[C, H, W]` each).
    public init(training: [TensorSample], validation: [TensorSample]? = nil, test: [TensorSample]? = nil) {
        self.training = training
        self.validation = validation
        self.test = test
    }

    /// Feature maps given channels-last, `[N, H, W, C]` values with their shape, as
    /// ``FeatureExtraction/run(_:nhwc:shape:layer:preprocessing:batchSize:)`` gives them.
    /// Pooled vectors (`[N, C]`) do not do: the head's pooling or flatten step takes maps.
    public init(training: (values: [Float], shape: [Int]), validation: (values: [Float], shape: [Int])? = nil,
                test: (values: [Float], shape: [Int])? = nil) throws {
        func samples(_ features: (values: [Float], shape: [Int]), _ name: String) throws -> [TensorSample] {
            guard features.shape.count == 4 else {
                throw TrainingError.featureMapsExpected(source: "the \(name) features", shape: features.shape)
            }
            return try Tensor(nhwc: features.values, shape: features.shape).samples()
        }
        self.init(training: try samples(training, "training"), validation: try validation.map { try samples($0, "validation") },
                  test: try test.map { try samples($0, "test") })
    }

    /// Runs `model`'s base once over `data`'s training, validation and test images (resized
    /// to `imageSize` by its evaluation transform, no augmentation, then `preprocessing`) and
    /// keeps its outputs in memory: a head then trains on them as on a feature file, without
    /// writing one.
    public init(extractingFrom data: TrainingData, model: ImageModel, imageSize: Int, preprocessing: Preprocessing,
                batchSize: Int = 32) throws {
        func outputs(_ dataset: any Dataset) throws -> [TensorSample] {
            var options = DataLoader.Options(size: imageSize, batchSize: batchSize)
            options.shuffle = false
            options.preprocessing = preprocessing
            options.transform = data.evaluationTransform
            options.workers = data.workers
            options.skipDamaged = false
            let batches = try DataLoader(dataset, options: options).epoch(0)
            var samples: [TensorSample] = []
            samples.reserveCapacity(dataset.count)
            while let batch = try batches.next() {
                samples += try model.trunk(before: model.stages.count, batch.images, .inference()).samples()
            }
            return samples
        }
        self.init(training: try outputs(data.training), validation: try data.validation.map(outputs), test: try data.test.map(outputs))
    }
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
            throw TrainingError.featureFileIncomplete(file: file, missing: "flavour or image size")
        }
        self.init(architecture: header.architecture, flavor: flavor, imageSize: size)
        weights = header.weights
        preprocessing = Preprocessing(rawValue: header.preprocessing)
        features = file.path
        unfreeze = .headOnly
        head = try HeadSpecification.Template(parsing: "gap,dense")
        // Features hold no images to mirror.
        testTimeAugmentation = false
    }
}

extension FineTuneJob {
    /// The data of a run on saved features: the training file's samples (classes, limits and
    /// the validation split applied as for images) and the test file's, with their features as
    /// head inputs (with `loadingFeatures` false, only the samples: ``loadFeatures(into:from:test:)``
    /// reads the features once they are known to fit the model).
    static func openFeatureData(_ settings: FineTuneSettings, loadingFeatures: Bool = true) throws -> (TrainingData, FeatureFile, FeatureFile?) {
        guard let path = settings.features else { throw TrainingError.noFeatureFile }
        let file = try FeatureFile.open(URL(fileURLWithPath: path))
        guard file.header.layers.count == 1 else {
            throw TrainingError.featureFileLayerCount(file: file.url, layers: file.header.layers.count)
        }
        guard !file.header.classNames.isEmpty else {
            throw TrainingError.featureFileUnlabelled(file: file.url)
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
                throw TrainingError.featureFilesDiffer(test: opened.url, training: file.url)
            }
            guard opened.header.classNames == file.header.classNames else {
                throw TrainingError.classesDiffer(what: "the test features'", classes: opened.header.classNames,
                                                  other: "the training features'", otherClasses: file.header.classNames)
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
        if loadingFeatures { try loadFeatures(into: &data, from: file, test: testFile) }
        return (data, file, testFile)
    }

    /// Reads the features of `data`'s samples from `file` (and its test samples' from `test`).
    static func loadFeatures(into data: inout TrainingData, from file: FeatureFile, test testFile: FeatureFile?) throws {
        data.savedFeatures = SavedFeatures(training: try samples(of: data.training, from: file),
                                           validation: try data.validation.map { try samples(of: $0, from: file) },
                                           test: try data.test.map { try samples(of: $0, from: testFile!) })
    }

    /// The head inputs of `dataset`'s samples (a subset of `file`'s, found by sample id), as the
    /// base gives them: `[C, H, W]` feature maps.
    private static func samples(of dataset: any Dataset, from file: FeatureFile) throws -> [TensorSample] {
        var rows: [String: Int] = [:]
        for (row, id) in file.sampleIDs.enumerated() where rows.updateValue(row, forKey: id) != nil {
            throw TrainingError.duplicateSampleID(file: file.url, id: id)
        }
        let (values, shape) = try file.features()
        let rowShape = Array(shape.dropFirst())
        guard rowShape.count == 3 else {
            throw TrainingError.featureMapsExpected(source: "\(file.url.path) (layer \(file.header.layers.first?.name ?? "?"))", shape: shape)
        }
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
            throw TrainingError.featureFileIncomplete(file: file.url, missing: "image size")
        }
        let last = model.baseLayers.last?.name ?? ""
        let expected = try baseOutputShape(model, imageSize: size)
        guard layer.name == FeatureExtraction.outputName || layer.name == last, layer.shape == expected else {
            throw TrainingError.featuresDoNotFit(source: file.url.path, layer: layer.name, shape: layer.shape, expected: expected,
                                                 baseOutput: last, architecture: model.name, imageSize: size)
        }
    }

    /// The shape of one sample of `model`'s base output at `imageSize`, channels-last
    /// (`[H, W, C]`, as feature files record it).
    static func baseOutputShape(_ model: ImageModel, imageSize size: Int) throws -> [Int] {
        let probe = try Tensor(nhwc: [Float](repeating: 0, count: size * size * 3), shape: [1, size, size, 3])
        let base = try model.features(probe, .inference()).shape
        return [base[2], base[3], base[1]]
    }
}

extension FineTuner {
    /// Checks that every sample of `features` is `model`'s base output at `imageSize`, so the
    /// head trains on what it will see on images.
    static func checkFeaturesFit(_ features: SavedFeatures, model: ImageModel, imageSize: Int) throws {
        let expected = try FineTuneJob.baseOutputShape(model, imageSize: imageSize)
        let lists = [("training", features.training), ("validation", features.validation ?? []), ("test", features.test ?? [])]
        for (name, samples) in lists {
            // TensorSample shapes are [C, H, W]; files and messages say [H, W, C].
            guard let wrong = samples.first(where: { $0.shape.count != 3 || [$0.shape[1], $0.shape[2], $0.shape[0]] != expected }) else { continue }
            let shape = wrong.shape.count == 3 ? [wrong.shape[1], wrong.shape[2], wrong.shape[0]] : wrong.shape
            throw TrainingError.featuresDoNotFit(source: "the \(name) features (SavedFeatures)", layer: FeatureExtraction.outputName, shape: shape,
                                                 expected: expected, baseOutput: model.baseLayers.last?.name ?? "", architecture: model.name,
                                                 imageSize: imageSize)
        }
    }
}

extension FeatureFileHeader {
    /// A header for ``FeatureExtraction/extract(_:from:layers:to:batchSize:header:preprocessing:progress:)``
    /// from what its caller knows: the model and its weights as described (a file, a weight set,
    /// or a name for weights held in memory), the image size and the preprocessing. The
    /// extraction fills in the rest: layers, sample count, class names and batch size.
    public init(architecture: String, flavor: Flavor, weights: String, imageSize: Int?, preprocessing: Preprocessing,
                source: String = "") {
        self.init(architecture: architecture, flavor: flavor.rawValue, weights: weights, imageSize: imageSize,
                  preprocessing: preprocessing.rawValue, source: source, batchSize: 0, layers: [], classNames: [], count: 0)
    }
}
