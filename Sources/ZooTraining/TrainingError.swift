import Foundation
import ZooTensor

/// An error in training: bad settings, a checkpoint or feature file that does not fit, a run
/// folder in an unexpected state. Each case carries the file, layer or setting it is about;
/// ``description`` is the message for people, in the library's terms (settings and calls).
/// The `zoo` command words the cases that concern its flags in flags instead.
public enum TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
    // Run folders.
    /// `folder` already holds a run (a `config.json`).
    case runExists(folder: URL)
    /// `folder` holds no run to resume: no `config.json`, or one that does not read.
    case noRunToResume(folder: URL, readable: Bool)
    /// The run in `folder` stopped before its first epoch ended, so it has no checkpoint.
    case noCheckpointYet(folder: URL)
    /// The checkpoint `file` has no training state to resume from.
    case noTrainingState(file: URL)

    /// `folder` already holds a sweep (a `sweep.json`).
    case sweepExists(folder: URL)
    /// A sweep's folder or search-space file (`path`) is not what it should be: `reason` says why.
    case invalidSweep(path: URL, reason: String)

    // Settings.
    /// The `optimizer` setting names no optimizer zoo has.
    case unknownOptimizer(String)
    /// The `schedule` setting does not read, or does not fit `factors`.
    case invalidSchedule(String, reason: String)
    /// The text does not read as a freeze plan (`unfreeze`, an unfreeze stage's plan).
    case invalidFreezePlan(String)
    /// The text does not read as a head (`head`): `reason` says why.
    case invalidHead(String, reason: String)
    /// A freeze plan starts from a layer the model's layer list does not have.
    case unknownLayer(String)
    /// The model's head and the settings' head differ: the checkpoints could not be rebuilt
    /// from the settings.
    case headMismatch(model: String, settings: String)
    /// Training on saved features with a freeze plan that trains part of the base (the
    /// `unfreeze` setting, or `unfreezeSchedule`).
    case featuresNeedFrozenBase(plan: String)
    /// Random weights (no `weights` setting) with part of the base frozen: those layers would
    /// never learn. `weightSets` are the catalog's sets for the architecture.
    case frozenRandomWeights(architecture: String, plan: String, weightSets: [String])

    // Data and classes.
    /// The class-weight file `file` does not give what it should (`reason` says what).
    case invalidClassWeights(file: String, reason: String)
    /// Class weights (`count` of them) that do not fit the run's `classes` classes, or are negative.
    case classWeightsDoNotFit(count: Int, classes: Int)
    /// Two lists of classes that must agree do not: `what` and `other` name them.
    case classesDiffer(what: String, classes: [String], other: String, otherClasses: [String])
    /// The data has classes the classifier does not know.
    case unknownClasses([String])
    /// The model gives `outputs` scores per image (`file`: the model's file), the data has
    /// `classes` classes.
    case outputsDoNotMatchClasses(file: URL?, outputs: Int, classes: Int)
    /// The model (`file`: its file, when it came from one) has no classifier.
    case noClassifier(file: URL?)
    /// Weights that are not a zoo checkpoint, given without the architecture they are for.
    case architectureNeeded(weights: String)
    /// A weight set whose manifest names no class list.
    case noClassList(weightSet: String, hasClassifier: Bool)

    // Weights and checkpoints.
    /// `weights` holds a different architecture or flavour than the settings name.
    case weightsDoNotFit(weights: String, holds: String, expected: String)
    /// `file` is not a zoo checkpoint.
    case notACheckpoint(file: URL)
    /// int8 was asked of weights without an int8 calibration.
    case notQuantized(file: URL)
    /// A request that only inference can honour (int8) made of training.
    case inferenceOnlyPrecision(Precision)
    /// Calibration was asked for with nothing to calibrate on.
    case noCalibrationImages(requested: Int, available: Int)
    /// The checkpoint metadata of `file` does not read.
    case unreadableCheckpoint(file: URL, reason: String)
    /// The checkpoint `file` lacks the tensor `tensor` of its model.
    case checkpointLacksTensor(file: URL, tensor: String, architecture: String, head: String)
    /// The checkpoint `file`'s tensor has `shape`, the model needs `expected`.
    case checkpointShapeMismatch(file: URL, tensor: String, shape: [Int], expected: [Int])
    /// The classifier of `checkpoint` (as given) does not fit the new head (new-class extension).
    case classifierDoesNotFit(checkpoint: String, head: String, newHead: String)
    /// An optimizer's saved state does not fit (`parameter`, when it is about one).
    case invalidOptimizerState(parameter: String?, reason: String)

    // Saved features.
    /// The feature file lacks what training on it needs (`missing`: the flavour, the image size).
    case featureFileIncomplete(file: URL, missing: String)
    /// The feature file holds `layers` layers; a head trains on one.
    case featureFileLayerCount(file: URL, layers: Int)
    /// The feature file has no labels (it was extracted from an array).
    case featureFileUnlabelled(file: URL)
    /// The test feature file was not extracted like the training one.
    case featureFilesDiffer(test: URL, training: URL)
    /// A sample id appears twice in the feature file.
    case duplicateSampleID(file: URL, id: String)
    /// Saved features (`source`: a file, or the in-memory ``SavedFeatures``) of `layer` do not
    /// have the shape of the base's output the head takes.
    case featuresDoNotFit(source: String, layer: String, shape: [Int], expected: [Int], baseOutput: String, architecture: String,
                          imageSize: Int)
    /// The saved features do not fit the trunk cache's budgets.
    case featuresExceedCache(samples: Int)
    /// Saved features (`source`) are not feature maps `[N, H, W, C]` (pooled vectors, say).
    case featureMapsExpected(source: String, shape: [Int])
    /// A run on saved features without a feature file (the `features` setting).
    case noFeatureFile
    /// The trunk cache lost samples it had stored.
    case trunkCacheLostSamples
    /// A test-time augmentation view gave fewer batches than the plain images.
    case augmentedViewEndedEarly(view: Int)
    /// Patch whitening (``PatchWhitening``) cannot set this layer, or this run's first convolution.
    case cannotWhiten(layer: String?, reason: String)

    public var description: String {
        switch self {
        case let .runExists(folder):
            return "\(folder.path) already holds a run; resume it (FineTuneJob.resume, FineTuner(resuming:)) or choose another folder"
        case let .noRunToResume(folder, readable):
            return "\(folder.path) holds no run to resume (no \(readable ? "" : "readable ")config.json)"
        case let .noCheckpointYet(folder):
            return "\(folder.path) has no checkpoint yet; start the run again (it stopped before its first epoch ended)"
        case let .sweepExists(folder):
            return "\(folder.path) already holds a sweep; resume it (Sweep(resuming:)) or choose another folder"
        case let .invalidSweep(path, reason):
            return "sweep \(path.path): \(reason)"
        case let .noTrainingState(file):
            return "\(file.path): the checkpoint has no training state to resume from"
        case let .unknownOptimizer(name):
            return "unknown optimizer '\(name)': sgd, nesterov, rmsprop, adam, adamw or adamax"
        case let .invalidSchedule(name, reason):
            return "schedule '\(name)': \(reason)"
        case let .invalidFreezePlan(text):
            return "cannot read '\(text)' as layers to unfreeze: give a percentage (20%), a count (12), all or none"
        case let .invalidHead(text, reason):
            return "head '\(text)': \(reason)"
        case let .unknownLayer(name):
            return "no layer '\(name)' in the model's layer list (ImageModel.baseLayers; zoo summary lists them)"
        case let .headMismatch(model, settings):
            return "the model's head (\(model)) differs from the settings' head (\(settings)); checkpoints are rebuilt from the settings' head, "
                + "so build the model's head from settings.head, or set settings.head to the model's"
        case let .featuresNeedFrozenBase(plan):
            return "training on saved features keeps the whole base frozen, but the freeze plan is \(plan): set unfreeze to none and no unfreezeSchedule"
        case let .frozenRandomWeights(architecture, plan, weightSets):
            return "\(architecture) has random weights (no weights setting), yet the freeze plan \(plan) keeps part of its base frozen: "
                + "those layers would never learn. Give weights (" + Self.weightSetsText(weightSets)
                + "), unfreeze all, or set allowRandomFrozenLayers"
        case let .invalidClassWeights(file, reason):
            return "class weights \(file): \(reason)"
        case let .classWeightsDoNotFit(count, classes):
            return "\(count) class weights for \(classes) classes: give one finite, non-negative weight per class, in the run's class order"
        case let .classesDiffer(what, classes, other, otherClasses):
            return "\(what) classes \(classes) differ from \(other) \(otherClasses)"
        case let .unknownClasses(names):
            return "the data has classes the classifier does not know: \(names.joined(separator: ", "))"
        case let .outputsDoNotMatchClasses(file, outputs, classes):
            if let file { return "\(file.path)'s classifier has \(outputs) outputs, the data has \(classes) classes" }
            return "the model gives \(outputs) outputs per image, the data has \(classes) classes"
        case let .architectureNeeded(weights):
            return "\(weights) is not a zoo checkpoint: name the architecture its weights are for"
        case let .noClassList(set, hasClassifier):
            return "\(set) names no class list (\(hasClassifier ? "its classes are in its checkpoint" : "it has no classifier"))"
        case let .noClassifier(file):
            if let file { return "\(file.path) has no classifier: it gives features, not classes" }
            return "the model has no classifier to fix rows of"
        case let .weightsDoNotFit(weights, holds, expected):
            return "\(weights) holds a \(holds), not a \(expected)"
        case let .notACheckpoint(file):
            return "\(file.path): not a zoo checkpoint (a safetensors file with zoo.checkpoint metadata)"
        case let .notQuantized(file):
            return "\(file.path) has no int8 calibration: make one with zoo quantize \(file.lastPathComponent) --calibrate DATA --out FILE"
        case let .noCalibrationImages(requested, available):
            return "calibration needs at least one image: asked for \(requested) of a dataset of \(available)"
        case let .inferenceOnlyPrecision(precision):
            return "--precision \(precision) is for inference (zoo evaluate, predict, extract, bench): train in bf16 or f32, then zoo quantize the checkpoint"
        case let .unreadableCheckpoint(file, reason):
            return "\(file.path): the checkpoint's metadata does not read (\(reason))"
        case let .checkpointLacksTensor(file, tensor, architecture, head):
            return "\(file.path): the checkpoint lacks \(tensor) (\(architecture), head \(head))"
        case let .checkpointShapeMismatch(file, tensor, shape, expected):
            return "\(file.path): \(tensor) has shape \(shape), the model needs \(expected)"
        case let .classifierDoesNotFit(checkpoint, head, newHead):
            return "the classifier of \(checkpoint) does not fit the new head (\(head) vs the run's head \(newHead))"
        case let .invalidOptimizerState(parameter, reason):
            return parameter.map { "optimizer state for \($0) \(reason)" } ?? "optimizer state \(reason)"
        case let .featureFileIncomplete(file, missing):
            return "\(file.path) records no \(missing); extract it from a dataset at a given image size"
        case let .featureFileLayerCount(file, layers):
            return "\(file.path) holds \(layers) layers; a head trains on one (the base's output)"
        case let .featureFileUnlabelled(file):
            return "\(file.path) has no labels (it was extracted from an array); extract it from a dataset to train on it"
        case let .featureFilesDiffer(test, training):
            return "\(test.path) was not extracted like \(training.path) (model, weights, size, preprocessing and layer must match)"
        case let .duplicateSampleID(file, id):
            return "\(file.path): sample id \(id) appears twice"
        case let .featuresDoNotFit(source, layer, shape, expected, baseOutput, architecture, imageSize):
            return "\(source) holds layer \(layer) \(shape), not the output of \(architecture)'s base (\(baseOutput), \(expected) at \(imageSize)); "
                + "extract the layer \(baseOutput) from weights without a classifier so that the trained head fits the model"
        case let .featuresExceedCache(samples):
            return "the saved features (\(samples) samples) exceed the cache's memory and disk budgets (ZOO_CACHE_MEMORY_MB, ZOO_CACHE_DISK_MB)"
        case let .featureMapsExpected(source, shape):
            return "\(source) has shape \(shape), not feature maps [N, H, W, C]: a head trains on the base's output maps "
                + "(its gap, gmp or flatten step takes maps), so extract the base's output rather than pooled vectors"
        case .noFeatureFile:
            return "no feature file given (the features setting)"
        case .trunkCacheLostSamples:
            return "the trunk cache lost samples"
        case let .augmentedViewEndedEarly(view):
            return "test-time augmentation: view \(view) of the test images ended before the plain images did"
        case let .cannotWhiten(layer, reason):
            return "patch whitening" + (layer.map { " of \($0)" } ?? "") + ": " + reason
        }
    }

    /// "the weight sets for it: a, b" or "none in the catalog", for messages.
    static func weightSetsText(_ names: [String]) -> String {
        names.isEmpty ? "the catalog has no weight set for it" : "the catalog's for it: " + names.joined(separator: ", ")
    }
}
