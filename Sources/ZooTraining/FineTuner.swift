import Foundation
import ZooTensor
import ZooNN
import ZooWeights
import ZooData
import ZooModels

/// What a training run tells the outside world while it works (the console, a test).
public protocol TrainingObserver: AnyObject {
    func epochStarted(_ epoch: Int, of total: Int, batches: Int)
    func batchFinished(_ batch: Int, of total: Int, loss: Float)
    func epochFinished(_ record: EpochRecord, of total: Int)
    func note(_ message: String)
}

/// The data of a run: training samples, optional validation and test samples, and how their
/// images are turned into batch-sized ones.
public struct TrainingData: @unchecked Sendable {
    public var training: any Dataset
    public var validation: (any Dataset)?
    public var test: (any Dataset)?
    /// Resizing and augmentation for training samples.
    public var trainingTransform: DataLoader.SampleTransform?
    /// Resizing for evaluation samples (no augmentation).
    public var evaluationTransform: DataLoader.SampleTransform?
    public var workers = 2
    public var skipDamaged = false
    /// Whether the training transform augments (draws random choices); without augmentation
    /// every epoch sees the same images and the frozen trunk's outputs can be cached.
    public var trainingIsAugmented = true
    /// The base's outputs read from feature files, standing in for the images: then the base
    /// never runs and only the head trains (see ``SavedFeatures``).
    public var savedFeatures: SavedFeatures?

    public init(training: any Dataset, validation: (any Dataset)? = nil, test: (any Dataset)? = nil,
                trainingTransform: DataLoader.SampleTransform? = nil, evaluationTransform: DataLoader.SampleTransform? = nil) {
        self.training = training
        self.validation = validation
        self.test = test
        self.trainingTransform = trainingTransform
        self.evaluationTransform = evaluationTransform
    }
}

/// The state a run saves in each checkpoint so that a resumed run continues exactly.
struct TrainingState: Codable, Equatable {
    var history: TrainingHistory
    var earlyStopping: EarlyStopping?
    var plateau: ReduceOnPlateau?
    var bestValidationLoss: Float?
    var bestEpoch: Int?
}

/// Fine-tunes a model: trains the head and the unfrozen top of the base, evaluates, and keeps a
/// run folder with the configuration, the history, checkpoints and a report, or, without a
/// folder, trains in memory and leaves the result in the model and the returned history.
///
/// Run folder: `config.json`, `history.csv`, `history.json`, `checkpoints/last.safetensors`
/// (written atomically after every epoch, with the optimizer's and the loop's state) and
/// `checkpoints/best.safetensors` (the best validation loss), and at the end `metrics.json`,
/// `report.md` and `plots/`. With a fixed seed a run killed and resumed ends with the same weights
/// as one that ran through: sample order, augmentation and dropout draw from generators derived
/// from the seed, the epoch and the sample or step, never from a running state.
public final class FineTuner {
    public let settings: FineTuneSettings
    public let model: ImageModel
    /// The run folder; nil for a run in memory.
    public let folder: URL?
    let data: TrainingData
    let optimizer: GradientDescent
    private var state: TrainingState
    /// The run's precision on this machine, and what to tell the user about it.
    private let precision: ResolvedPrecision
    private var trainingCache: TrunkCache?
    private var validationCache: TrunkCache?
    private var testCache: TrunkCache?
    private var cacheCopies = 1
    /// The parameters the current freeze plan trains, with their names (set each epoch; walking
    /// a DenseNet's module tree every step costs as much as a small layer).
    private var trainable: [(name: String, parameter: Parameter)] = []
    /// Rows of the classifier kept fixed (new-class extension with frozen old rows): the
    /// parameter and its rows' values.
    private var fixedRows: [(parameter: Parameter, rows: [Int], values: [Float])] = []

    /// Where checkpoints and the trunk cache's spill files go: the run folder's `checkpoints/`,
    /// or a temporary folder (removed with the tuner) for a run in memory.
    let checkpoints: URL
    /// A run in memory: the parameter values of the best epoch so far, to restore at the end.
    private var bestValues: [Tensor]?
    /// Whether the run has said that other processes slowed it.
    private var warnedAboutSharing = false

    deinit {
        if folder == nil { try? FileManager.default.removeItem(at: checkpoints) }
    }

    /// Starts a new run in `folder` (which must not hold one) with `model` already built and
    /// loaded; without a folder the run writes no files (nothing to resume, no report): the
    /// trained model is `model`, and ``run(observer:)`` returns the history and test metrics.
    ///
    /// The head is the settings' ``FineTuneSettings/head``: a model without a head gets it (its
    /// weights drawn from ``FineTuneSettings/seed``), and a model with one must have exactly
    /// that head, since checkpoints are rebuilt from the settings; otherwise this throws
    /// ``TrainingError/headMismatch(model:settings:)``. Settings without
    /// ``FineTuneSettings/preprocessing`` take the weights' own (their weight set's or
    /// checkpoint's, from ``FineTuneSettings/weights``), else the architecture's usual one for
    /// its flavour, as ``FineTuneJob`` does. Saved features in `data` must be the base's output
    /// at the settings' image size, with the whole base frozen.
    public init(settings: FineTuneSettings, model: ImageModel, data: TrainingData, folder: URL? = nil) throws {
        if let folder, FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path) {
            throw TrainingError.runExists(folder: folder)
        }
        guard data.training.classNames == settings.classNames else {
            throw TrainingError.classesDiffer(what: "the training data's", classes: data.training.classNames,
                                              other: "the settings'", otherClasses: settings.classNames)
        }
        guard settings.precision != .int8 else { throw TrainingError.inferenceOnlyPrecision(.int8) }
        var settings = settings
        if settings.preprocessing == nil { settings.preprocessing = try FineTuneJob.defaultPreprocessing(settings) }
        if settings.classWeights == nil, let weighting = settings.classWeighting {
            settings.classWeights = try weighting.weights(for: data.training)
        }
        if let weights = settings.classWeights, weights.count != settings.classNames.count || weights.contains(where: { !($0.isFinite && $0 >= 0) }) {
            throw TrainingError.classWeightsDoNotFit(count: weights.count, classes: settings.classNames.count)
        }
        // A quantized checkpoint trains (and is evaluated) in floating point.
        model.removeQuantization()
        precision = settings.precision.resolved()
        settings.precision = precision.effective
        if let head = model.head {
            try settings.head.check(head, classes: settings.classNames.count, featureChannels: model.featureChannels, imageSize: settings.imageSize)
        } else {
            model.head = try settings.newHead(for: model)
        }
        if settings.stemWhitening != nil {
            if let weights = settings.weights {
                throw TrainingError.cannotWhiten(layer: nil, reason: "it starts a model trained from scratch, and this run starts from \(weights), "
                                                 + "whose first convolution it would overwrite")
            }
            _ = try PatchWhitening.firstConvolution(of: model)
        }
        if let features = data.savedFeatures {
            if let plan = settings.firstPlanTrainingBase { throw TrainingError.featuresNeedFrozenBase(plan: plan.text) }
            try Self.checkFeaturesFit(features, model: model, imageSize: settings.imageSize)
        }
        self.settings = settings
        self.model = model
        self.data = data
        self.folder = folder
        checkpoints = folder?.appendingPathComponent("checkpoints")
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("zoo-fit-\(UUID().uuidString)")
        optimizer = try settings.optimizer.make()
        state = TrainingState(history: TrainingHistory(),
                              earlyStopping: settings.earlyStoppingPatience.map { EarlyStopping(patience: $0) },
                              plateau: settings.schedule.plateau, bestValidationLoss: nil, bestEpoch: nil)
        try FileManager.default.createDirectory(at: checkpoints, withIntermediateDirectories: true)
        guard let folder else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(settings), to: folder.appendingPathComponent("config.json"))
    }

    /// Continues the run in `folder` from its last checkpoint.
    public init(resuming folder: URL, data: TrainingData) throws {
        let configuration = folder.appendingPathComponent("config.json")
        guard let text = try? Data(contentsOf: configuration) else {
            throw TrainingError.noRunToResume(folder: folder, readable: true)
        }
        settings = try JSONDecoder().decode(FineTuneSettings.self, from: text)
        precision = settings.precision.resolved()
        self.folder = folder
        checkpoints = folder.appendingPathComponent("checkpoints")
        self.data = data
        let last = checkpoints.appendingPathComponent("last.safetensors")
        guard FileManager.default.fileExists(atPath: last.path) else {
            throw TrainingError.noCheckpointYet(folder: folder)
        }
        let checkpoint = try Checkpoint.load(last)
        model = checkpoint.model
        optimizer = try settings.optimizer.make()
        try optimizer.restore(checkpoint.optimizerState)
        guard let saved = checkpoint.trainingState, let decoded = try? JSONDecoder().decode(TrainingState.self, from: Data(saved.utf8)) else {
            throw TrainingError.noTrainingState(file: last)
        }
        state = decoded
    }

    /// Epochs completed so far.
    public var completedEpochs: Int { state.history.epochs.count }

    /// Keeps the given classifier rows (old classes) fixed during training.
    public func fixClassifierRows(_ rows: [Int]) throws {
        guard let classifier = model.head?.denseLayers.last else { throw TrainingError.noClassifier(file: nil) }
        let inputs = classifier.weight.shape[1]
        let weights = try classifier.weight.value.array()
        fixedRows = [(classifier.weight, rows, rows.flatMap { Array(weights[$0 * inputs..<($0 + 1) * inputs]) })]
        if let bias = classifier.bias {
            let values = try bias.value.array()
            fixedRows.append((bias, rows, rows.map { values[$0] }))
        }
    }

    /// Trains the remaining epochs, then evaluates on the test data and writes the report.
    @discardableResult
    public func run(observer: TrainingObserver? = nil) throws -> FineTuneResult {
        let schedule = try settings.schedule.make()
        observer?.note("precision: \(precision.effective)" + (precision.note.map { " (\($0))" } ?? ""))
        var trainingOptions = loaderOptions(transform: data.trainingTransform, shuffle: true)
        trainingOptions.sampler = settings.data.sampler
        let loader = try DataLoader(data.training, options: trainingOptions)
        var stopped = false
        let firstEpoch = completedEpochs
        var previousPlan: FreezePlan?
        if let scale = settings.optimizer.batchNormShiftRateScale { optimizer.rateScales = batchNormShiftScales(scale) }
        let whitened = try settings.stemWhitening.map { whitening in
            if completedEpochs == 0 { try whiten(whitening, observer: observer) }
            return try PatchWhitening.firstConvolution(of: model).convolution
        }
        for epoch in completedEpochs..<settings.epochs where !stopped {
            let plan = settings.plan(forEpoch: epoch)
            let (trainableLayers, _) = try plan.apply(to: model)
            whitened?.weight.isTrainable = false
            trainable = model.namedParameters().filter { $0.parameter.isTrainable }
            let trainableCount = trainable.reduce(0) { $0 + $1.parameter.value.elementCount }
            if epoch == firstEpoch || plan != previousPlan {
                observer?.note("from epoch \(epoch + 1): \(trainableLayers) of \(model.baseLayers.count) base layers train (unfreeze \(plan)), \(trainableCount) parameters")
                try prepareCaches(observer: observer)
            }
            previousPlan = plan
            let start = Date()
            let cpu = CPUMonitor()
            let batches = loader.batches(epoch: epoch)
            observer?.epochStarted(epoch, of: settings.epochs, batches: batches.count)
            var metrics = ClassificationMetrics(classes: settings.classNames.count)
            var step = 0
            var rate = optimizer.learningRate
            try forEachBatch(loader: loader, batches: batches, epoch: epoch, cache: trainingCache) { input, labels in
                let position = Double(epoch) + Double(step) / Double(max(batches.count, 1))
                rate = schedule.rate(base: settings.optimizer.learningRate, epoch: position, totalEpochs: settings.epochs)
                    * (state.plateau?.scale ?? 1)
                optimizer.learningRate = rate
                let loss = try trainStep(input, labels: labels, epoch: epoch, step: step, metrics: &metrics)
                step += 1
                observer?.batchFinished(step, of: batches.count, loss: loss)
            }
            var record = EpochRecord(epoch: epoch + 1, seconds: 0, learningRate: rate, trainableParameters: trainableCount,
                                     trainingLoss: metrics.meanLoss, trainingAccuracy: metrics.accuracy, trainingTop5: metrics.top5)
            if let validation = data.validation {
                let result = try validate(validation)
                (record.validationLoss, record.validationAccuracy, record.validationTop5) = (result.meanLoss, result.accuracy, result.top5)
                _ = state.plateau?.update(validationLoss: result.meanLoss, scheduledRate: rate)
                if let decision = state.earlyStopping?.update(epoch: epoch, validationLoss: result.meanLoss) {
                    stopped = decision.stop
                    if decision.stop { observer?.note("early stopping: no better validation loss for \(settings.earlyStoppingPatience ?? 0) epochs") }
                }
            }
            record.seconds = Date().timeIntervalSince(start)
            state.history.epochs.append(record)
            try saveCheckpoints(after: epoch, record: record, plan: plan)
            if let folder { try state.history.write(to: folder) }
            observer?.epochFinished(record, of: settings.epochs)
            // Once a run, and only from epochs long enough for the CPU accounting to mean something.
            if !warnedAboutSharing, record.seconds >= 2, let warning = Threads.sharingWarning(othersCores: cpu.othersCores()) {
                observer?.note(warning)
                warnedAboutSharing = true
            }
        }
        trainingCache = nil
        validationCache = nil
        if let best = state.bestEpoch, settings.earlyStoppingPatience != nil, best + 1 != completedEpochs {
            observer?.note("restoring the weights of epoch \(best + 1), the best validation loss")
            let best = try bestValues ?? Checkpoint.load(checkpoints.appendingPathComponent("best.safetensors")).model.parameters.map(\.value)
            for ((_, target), value) in zip(model.namedParameters(), best) { target.value = value }
        }
        return try finish(observer: observer)
    }

    private func loaderOptions(transform: DataLoader.SampleTransform?, shuffle: Bool) -> DataLoader.Options {
        var options = DataLoader.Options(size: settings.imageSize, batchSize: settings.batchSize)
        options.seed = settings.seed
        options.shuffle = shuffle
        options.preprocessing = settings.preprocessing ?? .none
        options.transform = transform
        options.workers = data.workers
        options.skipDamaged = data.skipDamaged
        return options
    }

    /// Decides, after the freeze plan changed, whether the frozen trunk is cached, and says why.
    private func prepareCaches(observer: TrainingObserver?) throws {
        trainingCache = nil
        validationCache = nil
        if let features = data.savedFeatures {
            try fillCaches(from: features, observer: observer)
            return
        }
        let cut = model.frozenStageCount
        let copies: Int
        switch settings.trunkCache {
        case .off:
            observer?.note("frozen-trunk cache: off (asked)")
            return
        case .automatic where data.trainingIsAugmented:
            observer?.note("frozen-trunk cache: off, because training images are augmented (--augment none enables it, or --cache-augmented K)")
            return
        case .automatic: copies = 1
        case let .augmentedCopies(count): copies = max(1, count)
        }
        guard cut > 0 else {
            observer?.note("frozen-trunk cache: off, because the first stage of the model trains")
            return
        }
        let budgets = TrunkCache.defaultBudgets()
        trainingCache = TrunkCache(stage: cut, file: checkpoints.appendingPathComponent("training-trunk.cache"), memoryBudget: budgets.memory, diskBudget: budgets.disk)
        validationCache = TrunkCache(stage: cut, file: checkpoints.appendingPathComponent("validation-trunk.cache"), memoryBudget: budgets.memory / 4, diskBudget: budgets.disk / 4)
        cacheCopies = copies
        let stages = model.stages
        observer?.note("frozen-trunk cache: on; the first \(cut) of \(stages.count) stages (up to \(stages[cut - 1].name)) run once"
            + (copies > 1 ? " for each of \(copies) augmented copies" : "") + ", later epochs run only the rest")
    }

    /// Puts saved features into the caches as the input of the head (the base's output), so
    /// every batch comes from them.
    private func fillCaches(from features: SavedFeatures, observer: TrainingObserver?) throws {
        guard model.frozenStageCount == model.stages.count else {
            throw TrainingError.featuresNeedFrozenBase(plan: settings.plan(forEpoch: completedEpochs).text)
        }
        let budgets = TrunkCache.defaultBudgets()
        func cache(_ samples: [TensorSample], _ name: String) throws -> TrunkCache {
            let cache = TrunkCache(stage: model.stages.count, file: checkpoints.appendingPathComponent("\(name)-features.cache"), memoryBudget: budgets.memory, diskBudget: budgets.disk)
            try cache.store(samples, indices: Array(samples.indices), copy: 0)
            guard cache.count == samples.count else {
                throw TrainingError.featuresExceedCache(samples: samples.count)
            }
            return cache
        }
        trainingCache = try cache(features.training, "training")
        validationCache = try features.validation.map { try cache($0, "validation") }
        testCache = try features.test.map { try cache($0, "test") }
        cacheCopies = 1
        observer?.note("training on saved features: the base does not run, only the head trains")
    }

    /// Runs `body` on every batch of an epoch, as the input of the first trainable stage when the
    /// trunk is cached (from the cache, or computed and stored on the way), else as images.
    private func forEachBatch(loader: DataLoader, batches: [[Int]], epoch: Int, cache: TrunkCache?,
                              _ body: (Tensor, [Int]) throws -> Void) throws {
        let copy = epoch % cacheCopies
        if let cache, batches.allSatisfy({ cache.contains($0, copy: copy) }) {
            for indices in batches {
                guard let input = try cache.batch(indices, copy: copy) else { throw TrainingError.trunkCacheLostSamples }
                try body(input, indices.map { loader.dataset.label(at: $0) })
            }
            return
        }
        let epochBatches = loader.epoch(epoch, augmentationEpoch: cache == nil ? epoch : copy)
        while let batch = try epochBatches.next() {
            guard let cache else {
                try body(batch.images, batch.labels)
                continue
            }
            let trunk = try model.trunk(before: cache.stage, batch.images, .inference(precision.activationType))
            try cache.store(try trunk.samples(), indices: batch.indices, copy: copy)
            try body(trunk, batch.labels)
        }
    }

    /// One optimization step on a batch (images, or the trunk's output when it is cached);
    /// returns its loss.
    private func trainStep(_ input: Tensor, labels: [Int], epoch: Int, step: Int, metrics: inout ClassificationMetrics) throws -> Float {
        let tape = GradientTape()
        let context = ForwardContext(training: true, tape: tape, seed: stepSeed(epoch: epoch, step: step),
                                     activationType: precision.activationType)
        let cut = trainingCache?.stage ?? 0
        let logits = cut > 0 ? try model.forward(from: cut, input, context) : try model(input, context)
        let loss = try softmaxCrossEntropy(logits: logits, labels: labels, labelSmoothing: settings.labelSmoothing,
                                                classWeights: settings.classWeights)
        try tape.backward(loss)
        try optimizer.step(trainable)
        try restoreFixedRows()
        let value = try loss.scalar()
        metrics.add(scores: try logits.array(), labels: labels, meanLoss: value)
        return value
    }

    /// Validation metrics, through the trunk cache when it is on.
    private func validate(_ dataset: any Dataset) throws -> ClassificationMetrics {
        try metrics(of: dataset, cache: validationCache)
    }

    /// Metrics of `dataset` in inference mode, through `cache` (whose stage input it holds for
    /// every sample, or gets on the way) when there is one.
    private func metrics(of dataset: any Dataset, cache: TrunkCache?) throws -> ClassificationMetrics {
        guard let cache else { return try evaluate(dataset) }
        let loader = try DataLoader(dataset, options: loaderOptions(transform: data.evaluationTransform, shuffle: false))
        var metrics = ClassificationMetrics(classes: settings.classNames.count)
        let saved = cacheCopies
        cacheCopies = 1
        defer { cacheCopies = saved }
        try forEachBatch(loader: loader, batches: loader.batches(epoch: 0), epoch: 0, cache: cache) { input, labels in
            let logits = try model.forward(from: cache.stage, input, .inference(precision.activationType))
            let loss = try softmaxCrossEntropy(logits: logits, labels: labels).scalar()
            let probabilities = try softmax(logits).array()
            metrics.add(scores: probabilities, labels: labels, meanLoss: loss, probabilities: probabilities)
        }
        return metrics
    }

    /// Sets the first convolution from the first training images, unaugmented, in the seeded
    /// order of the run's first epoch.
    private func whiten(_ whitening: PatchWhitening, observer: TrainingObserver?) throws {
        let loader = try DataLoader(data.training, options: loaderOptions(transform: data.evaluationTransform, shuffle: true))
        let batches = loader.epoch(0, augmentationEpoch: 0)
        var images: [Tensor] = []
        var count = 0
        while count < whitening.images, let batch = try batches.next() {
            images.append(batch.images)
            count += batch.images.shape[0]
        }
        let result = try whitening.apply(to: model, images: images)
        let values = result.eigenvalues
        observer?.note("patch whitening: \(result.layer) set from \(result.patches) patches of \(min(count, whitening.images)) training images "
            + "(covariance eigenvalues \(String(format: "%.3g", values.first ?? 0)) to \(String(format: "%.3g", values.last ?? 0))); its weights stay fixed")
    }

    /// `scale` for the name of every batch norm's shift, found by the module's type.
    private func batchNormShiftScales(_ scale: Float) -> [String: Float] {
        let shifts = Set(model.namedModules().compactMap { ($0.module as? BatchNorm).map { ObjectIdentifier($0.bias) } })
        return Dictionary(uniqueKeysWithValues: model.namedParameters().filter { shifts.contains(ObjectIdentifier($0.parameter)) }.map { ($0.name, scale) })
    }

    /// The seed of a training step's dropout: a stream apart from the samples' (negative index).
    private func stepSeed(epoch: Int, step: Int) -> UInt64 {
        var generator = SeededGenerator.forSample(seed: settings.seed, epoch: epoch, index: -2 - step)
        return generator.next()
    }

    private func restoreFixedRows() throws {
        for (parameter, rows, values) in fixedRows {
            var current = try parameter.value.array()
            let width = parameter.shape.count > 1 ? parameter.shape[1] : 1
            for (position, row) in rows.enumerated() {
                for column in 0..<width { current[row * width + column] = values[position * width + column] }
            }
            parameter.value = try Tensor(shape: parameter.shape, values: current)
        }
    }

    /// Loss and accuracy of the model on `dataset` in inference mode, each image's probabilities
    /// averaged over the views of `testTimeAugmentation`.
    public func evaluate(_ dataset: any Dataset, testTimeAugmentation: TestTimeAugmentation = .none) throws -> ClassificationMetrics {
        try Evaluation.run(model, on: dataset, size: settings.imageSize, batchSize: settings.batchSize,
                           preprocessing: settings.preprocessing ?? .none, transform: data.evaluationTransform, workers: data.workers,
                           skipDamaged: data.skipDamaged, testTimeAugmentation: testTimeAugmentation, precision: precision.activationType)
    }

    private func saveCheckpoints(after epoch: Int, record: EpochRecord, plan: FreezePlan) throws {
        var improved = false
        if let loss = record.validationLoss, loss < (state.bestValidationLoss ?? .infinity) {
            state.bestValidationLoss = loss
            state.bestEpoch = epoch
            improved = true
        }
        guard folder != nil else {
            // In memory: the best epoch's values are kept to restore, nothing is written.
            if improved { bestValues = try model.parameters.map { try Tensor(shape: $0.value.shape, values: try $0.value.array()) } }
            return
        }
        let info = CheckpointInfo(architecture: settings.architecture, flavor: settings.flavor, head: settings.head.text,
                                  classNames: settings.classNames, imageSize: settings.imageSize, preprocessing: settings.preprocessing ?? .none,
                                  epoch: epoch + 1, unfreeze: plan.description)
        let encoded = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try Checkpoint.save(model, info: info, optimizerState: optimizer.state(), trainingState: encoded,
                            to: checkpoints.appendingPathComponent("last.safetensors"))
        if improved || data.validation == nil {
            try Checkpoint.save(model, info: info, to: checkpoints.appendingPathComponent("best.safetensors"))
        }
    }

    /// The final evaluation and the report.
    private func finish(observer: TrainingObserver?) throws -> FineTuneResult {
        var test: ClassificationMetrics?
        if let testData = data.test {
            if let testCache {
                observer?.note("evaluating on the saved features of \(testData.count) test images")
                test = try metrics(of: testData, cache: testCache)
            } else {
                observer?.note("evaluating on \(testData.count) test images" + (settings.testTimeAugmentation ? " (with mirrored copies)" : ""))
                test = try evaluate(testData, testTimeAugmentation: settings.testTimeAugmentation ? .mirror : .none)
            }
        }
        let result = FineTuneResult(history: state.history, test: test, classNames: settings.classNames, folder: folder)
        if let folder { try RunReport(settings: settings, result: result).write(to: folder) }
        return result
    }
}

/// What a run produced.
public struct FineTuneResult: Sendable {
    public var history: TrainingHistory
    /// Metrics on the test data, when there was some.
    public var test: ClassificationMetrics?
    public var classNames: [String]
    /// The run folder; nil for a run in memory.
    public var folder: URL?
}
