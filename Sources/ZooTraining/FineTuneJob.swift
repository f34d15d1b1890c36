import Foundation
import ZooTensor
import ZooNN
import ZooWeights
import ZooData
import ZooModels
import ZooCatalog

/// A whole fine-tuning job from its settings: opens the data, builds and loads the model, puts
/// the head on, and runs (or resumes) a ``FineTuner``. What `zoo finetune` calls.
public enum FineTuneJob {
    /// Starts a run in `folder`. The settings' class names and preprocessing are filled in
    /// from the data and the weights when left empty.
    ///
    /// Random weights (no ``FineTuneSettings/weights``) with part of the base frozen are
    /// refused (``TrainingError/frozenRandomWeights(architecture:plan:weightSets:)``) unless
    /// ``FineTuneSettings/allowRandomFrozenLayers`` is set: frozen random layers never learn.
    @discardableResult
    public static func start(_ settings: FineTuneSettings, folder: URL, observer: TrainingObserver? = nil) throws -> FineTuneResult {
        var settings = settings
        let (opened, featureFile, testFeatureFile) = try openAnyData(settings, loadingFeatures: false)
        var data = opened
        if settings.classNames.isEmpty { settings.classNames = data.training.classNames }
        if featureFile != nil, let plan = settings.firstPlanTrainingBase { throw TrainingError.featuresNeedFrozenBase(plan: plan.text) }
        let (model, fixedRows) = try buildModel(settings, observer: observer)
        try checkRandomWeights(settings, model: model)
        if let featureFile {
            try checkFeaturesFit(featureFile, model: model)
            try loadFeatures(into: &data, from: featureFile, test: testFeatureFile)
        }
        let tuner = try FineTuner(settings: settings, model: model, data: data, folder: folder)
        if settings.freezeOldRows, !fixedRows.isEmpty { try tuner.fixClassifierRows(fixedRows) }
        describe(tuner.settings, data: data, observer: observer)
        return try tuner.run(observer: observer)
    }

    /// Continues the run in `folder` from its last checkpoint.
    @discardableResult
    public static func resume(_ folder: URL, observer: TrainingObserver? = nil) throws -> FineTuneResult {
        guard let text = try? Data(contentsOf: folder.appendingPathComponent("config.json")),
              let settings = try? JSONDecoder().decode(FineTuneSettings.self, from: text) else {
            throw TrainingError.noRunToResume(folder: folder, readable: false)
        }
        let (data, _, _) = try openAnyData(settings)
        let tuner = try FineTuner(resuming: folder, data: data)
        if settings.freezeOldRows, let extendFrom = settings.extendFrom {
            let old = try Checkpoint.info(of: try Catalog.localFile(extendFrom).0).classNames
            try tuner.fixClassifierRows(old.compactMap { settings.classNames.firstIndex(of: $0) })
        }
        observer?.note("resuming \(folder.path) after epoch \(tuner.completedEpochs) of \(settings.epochs)")
        return try tuner.run(observer: observer)
    }

    /// The run's data: images, or saved features (then with their files, training and test).
    static func openAnyData(_ settings: FineTuneSettings, loadingFeatures: Bool = true) throws -> (TrainingData, FeatureFile?, FeatureFile?) {
        if settings.features != nil {
            return try openFeatureData(settings, loadingFeatures: loadingFeatures)
        }
        return (try openData(settings.data, seed: settings.seed, imageSize: settings.imageSize), nil, nil)
    }

    /// Refuses random weights with part of the base frozen, unless the settings allow it.
    static func checkRandomWeights(_ settings: FineTuneSettings, model: ImageModel) throws {
        guard settings.weights == nil, !settings.allowRandomFrozenLayers else { return }
        let layers = model.baseLayers
        for plan in [settings.unfreeze] + settings.unfreezeSchedule.map(\.plan) where try plan.trainableLayerCount(in: layers) < layers.count {
            throw TrainingError.frozenRandomWeights(architecture: settings.architecture, plan: plan.text,
                                                    weightSets: Catalog.weightSets.filter { $0.architecture == settings.architecture }.map(\.name))
        }
    }

    /// The preprocessing a run without one takes: its weights' own (their weight set's
    /// manifest, or the zoo checkpoint's), else the architecture's usual one for its flavour.
    public static func defaultPreprocessing(_ settings: FineTuneSettings) throws -> Preprocessing {
        if let weights = settings.weights {
            if let set = Catalog.weightSets.first(where: { $0.name == weights }) { return set.inputPreprocessing }
            let url = URL(fileURLWithPath: (weights as NSString).expandingTildeInPath)
            if FileManager.default.fileExists(atPath: url.path), let info = try? Checkpoint.info(of: url) { return info.preprocessing }
        }
        return try Architecture(named: settings.architecture).defaultPreprocessing(settings.flavor)
    }

    /// Training (with its validation share held out) and test data, with their transforms.
    public static func openData(_ options: DataOptions, seed: UInt64, imageSize: Int) throws -> TrainingData {
        let source = try DataSource(options.sources)
        var training: any Dataset = source.training
        var test: (any Dataset)? = try options.testSources.map { specs in
            let tests = try DataSource(specs)
            return tests.test ?? tests.training
        } ?? source.test
        if let names = options.classes ?? options.firstClasses.map({ Array(training.classNames.prefix($0)) }) {
            training = try training.classes(names)
            test = try test?.classes(names)
        }
        if let test, test.classNames != training.classNames {
            throw TrainingError.classesDiffer(what: "the test data's", classes: test.classNames, other: "the training data's", otherClasses: training.classNames)
        }
        if let limit = options.limitPerClass {
            training = training.limitPerClass(limit)
            test = test?.limitPerClass(limit)
        }
        var validation: (any Dataset)?
        if options.validationFraction > 0 {
            let split = try training.split(validationFraction: options.validationFraction, seed: seed)
            (training, validation) = (split.training, split.validation)
        }
        let augmentation = try AugmentationSpecification(parsing: options.augmentation)
        var data = TrainingData(training: training, validation: validation, test: test,
                                trainingTransform: augmentation.sampleTransform(size: imageSize, resize: options.resizeMethod),
                                evaluationTransform: AugmentationSpecification.evaluationTransform(size: imageSize, resize: options.resizeMethod))
        data.workers = options.workers
        data.skipDamaged = options.skipDamaged
        data.trainingIsAugmented = !augmentation.transforms.isEmpty
        return data
    }

    /// The model with its new head: from a weight file or set (the framework's weights), from a
    /// zoo checkpoint, or randomly initialized. Returns the classifier rows that came from
    /// `extendFrom`. (The run's preprocessing, when the settings leave it out, is the weights'
    /// own: ``defaultPreprocessing(_:)``, which ``FineTuner`` applies.)
    public static func buildModel(_ settings: FineTuneSettings, observer: TrainingObserver?) throws -> (ImageModel, [Int]) {
        let architecture = try Architecture(named: settings.architecture)
        let classes = settings.classNames.count
        var model: ImageModel
        var keptRows: [Int] = []
        if let weights = settings.weights {
            let loaded = try LoadedWeights.load(weights, architecture: architecture, flavor: settings.flavor, asPublished: false)
            if let checkpoint = loaded.checkpoint, checkpoint.flavor != settings.flavor {
                throw TrainingError.weightsDoNotFit(weights: weights, holds: "\(checkpoint.architecture) (\(checkpoint.flavor.rawValue))",
                                                    expected: "\(architecture.name) (\(settings.flavor.rawValue))")
            }
            model = loaded.model
            if let report = loaded.report { observer?.note("loaded \(report.loaded.count) tensors from \(loaded.file.lastPathComponent)") }
        } else {
            Initialization.seed(settings.seed)
            model = try architecture.make(flavor: settings.flavor, top: .features(pooling: nil), inputSize: settings.imageSize)
        }
        let head = try settings.newHead(for: model)
        if let extendFrom = settings.extendFrom {
            let old = try Checkpoint.load(try Catalog.localFile(extendFrom).0)
            keptRows = try copyClassifierRows(from: old, into: head, classNames: settings.classNames,
                                          source: extendFrom, newHead: settings.head)
            observer?.note("classifier extended from \(old.info.classNames.count) to \(classes) classes: \(keptRows.count) rows kept from \(extendFrom)")
        }
        model.head = head
        return (model, keptRows)
    }

    /// Copies the old classifier's rows into the new head for the classes both know (by name);
    /// returns the new head's indices of those rows.
    static func copyClassifierRows(from checkpoint: Checkpoint, into head: ClassificationHead, classNames: [String],
                                   source: String, newHead: HeadSpecification.Template) throws -> [Int] {
        guard let old = checkpoint.model.head?.denseLayers.last, let new = head.denseLayers.last,
              old.weight.shape[1] == new.weight.shape[1] else {
            throw TrainingError.classifierDoesNotFit(checkpoint: source, head: checkpoint.info.head, newHead: newHead.text)
        }
        let width = new.weight.shape[1]
        let oldWeights = try old.weight.value.array(), oldBias = try old.bias?.value.array()
        var weights = try new.weight.value.array(), bias = try new.bias?.value.array()
        var kept: [Int] = []
        for (oldRow, name) in checkpoint.info.classNames.enumerated() {
            guard let row = classNames.firstIndex(of: name) else { continue }
            weights.replaceSubrange(row * width..<(row + 1) * width, with: oldWeights[oldRow * width..<(oldRow + 1) * width])
            if let oldBias { bias?[row] = oldBias[oldRow] }
            kept.append(row)
        }
        new.weight.value = try Tensor(shape: new.weight.shape, values: weights)
        if let bias, let parameter = new.bias { parameter.value = try Tensor(shape: parameter.shape, values: bias) }
        return kept
    }

    private static func describe(_ settings: FineTuneSettings, data: TrainingData, observer: TrainingObserver?) {
        observer?.note("\(settings.architecture) (\(settings.flavor.rawValue)) at \(settings.imageSize)x\(settings.imageSize), head \(settings.head), "
            + "preprocessing \(settings.preprocessing?.rawValue ?? "none"); \(data.training.count) training, \(data.validation?.count ?? 0) validation, "
            + "\(data.test?.count ?? 0) test images in \(settings.classNames.count) classes")
        for warning in data.training.warnings + (data.test?.warnings ?? []) { observer?.note("warning: \(warning)") }
    }
}
