import Foundation
import ZooModels
import ZooTraining
import ZooCatalog

/// zoo's main job: the shipped CIFAR-10 ResNet-20 extended to the five CIFAR-100 reptiles
/// (crocodile, dinosaur, lizard, snake, turtle) with its trunk frozen, the classic
/// "CIFAR-10 + reptiles" transfer exercise. The classifier keeps its ten CIFAR-10 rows and
/// gains five new ones; only the classifier trains.
public enum TransferDemo {
    /// The base model: zoo's own CIFAR-10 weights, built into zoo.
    public static let weightSet = "cifar-resnet20.zoo_cifar10"

    /// The small real sample built into zoo: `train/` and `test/` folders of the 15 classes
    /// (see `scripts/make-demo-sample`), written out once into the cache (or in `$ZOO_CATALOG`).
    public static func embeddedSample() throws -> URL {
        try Catalog.sampleFolder("cifar15")
    }

    /// Where the 15-class classifier starts.
    public enum Classifier: String, CaseIterable, Sendable {
        /// The ten CIFAR-10 rows kept (and trained further), five new rows.
        case extend
        /// The ten CIFAR-10 rows kept fixed, only the five new rows train.
        case extendFrozen = "extend-frozen"
        /// A new classifier for all 15 classes (the old rows thrown away).
        case new
    }

    /// The run's settings: `sources` as `zoo finetune --data` takes them (default: the embedded
    /// sample), optionally only `classes` of them (the 15 from the official CIFAR-10 and
    /// CIFAR-100 files). Flipped copies are cached (two per image), so the frozen trunk runs twice per
    /// image in all, whatever the number of epochs.
    public static func settings(sources: [String], classes: [String]? = nil, classifier: Classifier = .extend, epochs: Int = 60,
                                seed: UInt64 = 1) throws -> FineTuneSettings {
        let set = try Catalog.weightSet(named: weightSet)
        var settings = FineTuneSettings(architecture: set.architecture, flavor: set.flavor, imageSize: set.inputSize)
        settings.weights = weightSet
        settings.extendFrom = classifier == .new ? nil : weightSet
        settings.freezeOldRows = classifier == .extendFrozen
        settings.head = try HeadSpecification.Template(parsing: "gap,dense")
        settings.unfreeze = .headOnly
        settings.optimizer.name = "sgd"
        settings.optimizer.learningRate = 0.05
        settings.optimizer.momentum = 0.9
        settings.optimizer.weightDecay = 5e-4
        settings.schedule.kind = .cosine
        settings.epochs = epochs
        settings.batchSize = 64
        settings.seed = seed
        settings.data.sources = sources.isEmpty ? [try embeddedSample().path] : sources
        settings.data.classes = classes
        settings.data.validationFraction = 0
        settings.data.augmentation = "flip"
        settings.trunkCache = .augmentedCopies(2)
        return settings
    }

    /// Accuracy over the samples of a group of classes (the old ten, the new five).
    public static func accuracy(_ metrics: ClassificationMetrics, classes: [Int]) -> Float {
        let total = classes.reduce(0) { $0 + metrics.confusion[$1].reduce(0, +) }
        let correct = classes.reduce(0) { $0 + metrics.confusion[$1][$1] }
        return total == 0 ? 0 : Float(correct) / Float(total)
    }
}
