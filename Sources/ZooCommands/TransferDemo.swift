import Foundation
import ZooModels
import ZooTraining
import ZooCatalog

/// zoo's main job: a shipped CIFAR-10 model extended to the five CIFAR-100 reptiles
/// (crocodile, dinosaur, lizard, snake, turtle), the classic "CIFAR-10 + reptiles" transfer
/// exercise. The classifier keeps its ten CIFAR-10 rows and gains five new ones.
public enum TransferDemo {
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

    /// How the demo trains: which shipped model it starts from and what of it trains.
    public struct Recipe: Sendable, Equatable {
        /// The base: one of zoo's own weight sets with a CIFAR-10 classifier.
        public var base: String
        public var classifier: Classifier
        /// What of the base's trunk trains (``FreezePlan/headOnly``: the trunk is frozen).
        public var unfreeze: FreezePlan
        public var classWeighting: ClassWeighting?
        public var epochs: Int
        public var learningRate: Float
        /// `zoo finetune --augment`'s text.
        public var augmentation: String

        public init(base: String, classifier: Classifier = .extend, unfreeze: FreezePlan = .headOnly, classWeighting: ClassWeighting? = nil,
                    epochs: Int, learningRate: Float, augmentation: String) {
            self.base = base
            self.classifier = classifier
            self.unfreeze = unfreeze
            self.classWeighting = classWeighting
            self.epochs = epochs
            self.learningRate = learningRate
            self.augmentation = augmentation
        }

        /// On the embedded sample: the trunk frozen and only the classifier training, so the
        /// trunk runs twice per image (two flipped-or-not copies cached) and the job takes seconds.
        /// The rate is 9 times the full data's because only the classifier trains, behind the
        /// base's 1/9 output scale (measured on the sample: 0.05 finds 15% of the reptiles, 0.45 33%).
        public static let sample = Recipe(base: "cifar-airbench.zoo_cifar10", epochs: 60, learningRate: 0.45, augmentation: "flip")

        /// On the full data: the best recipe of EXPERIMENTS.md's "CIFAR-10 + reptiles" (88.0%,
        /// macro F1 0.802, about 14 minutes on two cores).
        public static let fullData = Recipe(base: "cifar-airbench.zoo_cifar10", unfreeze: .from("block3_conv1"), epochs: 6, learningRate: 0.05,
                                            augmentation: "flip,padcrop=2")
    }

    /// The run's settings: `sources` as `zoo finetune --data` takes them (default: the embedded
    /// sample), optionally only `classes` of them (the 15 from the official CIFAR-10 and
    /// CIFAR-100 files). With the trunk frozen and flips the only augmentation, flipped copies
    /// are cached (two per image), so the frozen trunk runs twice per image whatever the epochs.
    public static func settings(_ recipe: Recipe = .sample, sources: [String], classes: [String]? = nil, seed: UInt64 = 1) throws -> FineTuneSettings {
        let set = try Catalog.weightSet(named: recipe.base)
        let base = try Checkpoint.info(of: try Catalog.localFile(recipe.base).0)
        var settings = FineTuneSettings(architecture: set.architecture, flavor: set.flavor, imageSize: set.inputSize)
        settings.weights = recipe.base
        settings.extendFrom = recipe.classifier == .new ? nil : recipe.base
        settings.freezeOldRows = recipe.classifier == .extendFrozen
        settings.head = try HeadSpecification.Template(parsing: base.head)
        settings.unfreeze = recipe.unfreeze
        settings.classWeighting = recipe.classWeighting
        settings.optimizer.name = "sgd"
        settings.optimizer.learningRate = recipe.learningRate
        settings.optimizer.momentum = 0.9
        settings.optimizer.weightDecay = 5e-4
        settings.schedule.kind = .cosine
        settings.epochs = recipe.epochs
        settings.batchSize = 64
        settings.seed = seed
        settings.data.sources = sources.isEmpty ? [try embeddedSample().path] : sources
        settings.data.classes = classes
        settings.data.validationFraction = 0
        settings.data.augmentation = recipe.augmentation
        if recipe.unfreeze == .headOnly, recipe.augmentation == "flip" { settings.trunkCache = .augmentedCopies(2) }
        return settings
    }

    /// Accuracy over the samples of a group of classes (the old ten, the new five).
    public static func accuracy(_ metrics: ClassificationMetrics, classes: [Int]) -> Float {
        let total = classes.reduce(0) { $0 + metrics.confusion[$1].reduce(0, +) }
        let correct = classes.reduce(0) { $0 + metrics.confusion[$1][$1] }
        return total == 0 ? 0 : Float(correct) / Float(total)
    }
}
