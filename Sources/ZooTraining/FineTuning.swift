import Foundation
import ZooTensor
import ZooNN
import ZooData
import ZooModels

/// The settings of a fine-tuning run, saved as `config.json` in its run folder so that
/// `--resume` continues the same run.
public struct FineTuneSettings: Codable, Sendable, Equatable {
    public var architecture: String
    public var flavor: Flavor
    /// The weights the run started from, as given (a file or a weight set); nil for random.
    public var weights: String?
    /// A checkpoint whose classifier rows are kept for the classes it knows (new-class extension).
    public var extendFrom: String?
    /// With ``extendFrom``: keep the old classes' classifier rows fixed.
    public var freezeOldRows = false
    public var imageSize: Int
    /// The head put on the base (its classifier gets one unit per class). A ``FineTuner``
    /// given a model with a head checks that it is this one, since checkpoints are rebuilt
    /// from it.
    public var head = HeadSpecification.Template.standard
    /// Layers of the base that train (written `20%`, `12`, `all`, `none` in `config.json`).
    public var unfreeze = FreezePlan.headOnly
    /// Later stages: from `epoch` (0-based) on, `unfreeze` becomes `plan`.
    public var unfreezeSchedule: [UnfreezeStage] = []
    /// Start with random weights (no ``weights``) although the freeze plan keeps part of the
    /// base frozen, layers that then never learn. Off by default: ``FineTuneJob/start(_:folder:observer:)``
    /// refuses such a run with ``TrainingError/frozenRandomWeights(architecture:plan:weightSets:)``.
    public var allowRandomFrozenLayers: Bool {
        get { randomFrozenLayersAllowed ?? false }
        set { randomFrozenLayersAllowed = newValue ? true : nil }
    }
    /// ``allowRandomFrozenLayers`` as `config.json` holds it: only when set, so files of runs
    /// without it are those older versions wrote.
    private var randomFrozenLayersAllowed: Bool?
    public var optimizer = OptimizerSettings()
    public var schedule = ScheduleSettings()
    public var epochs = 10
    public var batchSize = 32
    public var labelSmoothing: Float = 0
    /// Loss weights per class for unbalanced data (Keras's `class_weight`): how they are
    /// chosen. The run resolves them into ``classWeights`` when it starts.
    public var classWeighting: ClassWeighting?
    /// The loss weight of each class, in ``classNames``' order, when the run weights classes:
    /// set directly, or resolved from ``classWeighting`` (and stored, so a resumed run uses the
    /// same weights whatever the file holds by then).
    public var classWeights: [Float]?
    /// Stop after this many epochs without a better validation loss, keeping the best weights.
    public var earlyStoppingPatience: Int?
    public var seed: UInt64 = 0
    public var classNames: [String] = []
    /// The input preprocessing; nil until the run starts, which takes the weights' own (or the
    /// architecture's usual one for its flavour).
    public var preprocessing: Preprocessing?
    /// Where the data comes from and how it is prepared (so `--resume` rebuilds it).
    public var data = DataOptions()
    /// Test-time augmentation at the final evaluation: average the predictions of the image and
    /// its horizontal mirror.
    public var testTimeAugmentation = true
    /// Whether the frozen bottom of the model runs once and is cached (by default when training
    /// images are not augmented).
    public var trunkCache = TrunkCacheMode.automatic
    /// A feature file (`zoo extract`) of the base's output to train the head on instead of
    /// images; the base stays frozen and never runs.
    public var features: String?
    /// Test features for the final evaluation of a run on ``features``.
    public var testFeatures: String?
    /// The arithmetic of training and evaluation. A run stores what its precision resolved to
    /// on the machine that started it (`f32` or `bf16`, never `auto`), and resuming keeps it.
    public var precision = Precision.f32
    /// For a model trained from scratch: set its first convolution to whiten the training
    /// images' patches, and keep it so (``PatchWhitening``). Nil (not written to `config.json`)
    /// leaves the layer as initialized and trainable.
    public var stemWhitening: PatchWhitening?

    public init(architecture: String, flavor: Flavor, imageSize: Int) {
        self.architecture = architecture
        self.flavor = flavor
        self.imageSize = imageSize
    }

    /// A change of the freeze plan during training.
    public struct UnfreezeStage: Codable, Sendable, Equatable {
        public var epoch: Int
        public var plan: FreezePlan

        public init(epoch: Int, plan: FreezePlan) {
            self.epoch = epoch
            self.plan = plan
        }
    }

    /// The freeze plan in effect during `epoch`.
    public func plan(forEpoch epoch: Int) -> FreezePlan {
        unfreezeSchedule.filter { $0.epoch <= epoch }.max { $0.epoch < $1.epoch }?.plan ?? unfreeze
    }

    /// The first plan (``unfreeze``, then the stages') that trains part of the base; `nil`
    /// when every plan keeps the whole base frozen.
    var firstPlanTrainingBase: FreezePlan? {
        ([unfreeze] + unfreezeSchedule.map(\.plan)).first { ![.headOnly, .layers(0), .fraction(0)].contains($0) }
    }

    enum CodingKeys: String, CodingKey {
        case architecture, flavor, weights, extendFrom, freezeOldRows, imageSize, head, unfreeze, unfreezeSchedule
        case randomFrozenLayersAllowed = "allowRandomFrozenLayers"
        case optimizer, schedule, epochs, batchSize, labelSmoothing, classWeighting, classWeights, earlyStoppingPatience, seed, classNames, preprocessing, data
        case testTimeAugmentation, trunkCache, features, testFeatures, precision, stemWhitening
    }
}

extension FineTuneSettings {
    /// Reads a `config.json`. Settings that later versions of zoo added take their defaults
    /// when the file lacks them, so a run started by an older zoo still resumes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(architecture: try container.decode(String.self, forKey: .architecture),
                  flavor: try container.decode(Flavor.self, forKey: .flavor),
                  imageSize: try container.decode(Int.self, forKey: .imageSize))
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try container.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        weights = try container.decodeIfPresent(String.self, forKey: .weights)
        extendFrom = try container.decodeIfPresent(String.self, forKey: .extendFrom)
        freezeOldRows = try value(.freezeOldRows, freezeOldRows)
        head = try value(.head, head)
        unfreeze = try value(.unfreeze, unfreeze)
        unfreezeSchedule = try value(.unfreezeSchedule, unfreezeSchedule)
        optimizer = try value(.optimizer, optimizer)
        schedule = try value(.schedule, schedule)
        epochs = try value(.epochs, epochs)
        batchSize = try value(.batchSize, batchSize)
        labelSmoothing = try value(.labelSmoothing, labelSmoothing)
        classWeighting = try container.decodeIfPresent(ClassWeighting.self, forKey: .classWeighting)
        classWeights = try container.decodeIfPresent([Float].self, forKey: .classWeights)
        earlyStoppingPatience = try container.decodeIfPresent(Int.self, forKey: .earlyStoppingPatience)
        seed = try value(.seed, seed)
        classNames = try value(.classNames, classNames)
        preprocessing = try container.decodeIfPresent(Preprocessing.self, forKey: .preprocessing)
        data = try value(.data, data)
        testTimeAugmentation = try value(.testTimeAugmentation, testTimeAugmentation)
        trunkCache = try value(.trunkCache, trunkCache)
        features = try container.decodeIfPresent(String.self, forKey: .features)
        testFeatures = try container.decodeIfPresent(String.self, forKey: .testFeatures)
        precision = try value(.precision, precision)
        randomFrozenLayersAllowed = try container.decodeIfPresent(Bool.self, forKey: .randomFrozenLayersAllowed)
        stemWhitening = try container.decodeIfPresent(PatchWhitening.self, forKey: .stemWhitening)
    }
}

/// The data of a run as users describe it.
public struct DataOptions: Codable, Sendable, Equatable {
    /// Training sources (`DataSource` spellings); several form a union.
    public var sources: [String] = []
    /// Test sources; by default the sources' own test splits.
    public var testSources: [String]?
    /// Only these classes, in this order.
    public var classes: [String]?
    /// Only the first N classes.
    public var firstClasses: Int?
    /// At most N training (and test) samples per class, for quick runs.
    public var limitPerClass: Int?
    /// Share of the training samples held out for validation (seeded, stratified).
    public var validationFraction = 0.2
    /// Augmentation steps (`AugmentationSpecification`), applied after resizing.
    public var augmentation = "flip"
    /// `bilinear` or `nearest`, in the `tensorflow` or `torchvision` convention.
    public var resize = "bilinear"
    public var resizeConvention = ResizeConvention.tensorflow
    public var workers = 2
    public var skipDamaged = false
    /// How each epoch's training samples are drawn: each once, or class-balanced with
    /// replacement (``DataLoader/Sampler``).
    public var sampler: DataLoader.Sampler {
        get { storedSampler ?? .uniform }
        set { storedSampler = newValue == .uniform ? nil : newValue }
    }
    /// ``sampler`` as `config.json` holds it: only when not uniform, so that runs without it
    /// write the files older versions wrote.
    private var storedSampler: DataLoader.Sampler?

    public init() {}

    public var resizeMethod: ResizeMethod {
        resize == "nearest" ? .nearest(resizeConvention) : .bilinear(resizeConvention)
    }

    enum CodingKeys: String, CodingKey {
        case sources, testSources, classes, firstClasses, limitPerClass, validationFraction, augmentation, resize, resizeConvention
        case workers, skipDamaged
        case storedSampler = "sampler"
    }

    /// Reads the `data` of a `config.json`; options later versions added take their defaults
    /// when the file lacks them.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func value<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try container.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        sources = try value(.sources, sources)
        testSources = try container.decodeIfPresent([String].self, forKey: .testSources)
        classes = try container.decodeIfPresent([String].self, forKey: .classes)
        firstClasses = try container.decodeIfPresent(Int.self, forKey: .firstClasses)
        limitPerClass = try container.decodeIfPresent(Int.self, forKey: .limitPerClass)
        validationFraction = try value(.validationFraction, validationFraction)
        augmentation = try value(.augmentation, augmentation)
        resize = try value(.resize, resize)
        resizeConvention = try value(.resizeConvention, resizeConvention)
        workers = try value(.workers, workers)
        skipDamaged = try value(.skipDamaged, skipDamaged)
        storedSampler = try container.decodeIfPresent(DataLoader.Sampler.self, forKey: .storedSampler)
    }
}

/// Optimizer settings as users write them.
public struct OptimizerSettings: Codable, Sendable, Equatable {
    /// `sgd`, `nesterov`, `rmsprop`, `adam`, `adamw` (Adam with decoupled decay), `adamax`.
    public var name = "sgd"
    public var learningRate: Float = 0.01
    public var momentum: Float = 0.9
    public var weightDecay: Float = 0
    /// Decoupled instead of L2 weight decay (implied by `adamw`).
    public var decoupled = false
    public var clipNorm: Float?
    /// The learning rate of batch-norm shifts (their bias) is this times the others', their
    /// weight decay per step the same (airbench's `bias_scaler`, 64); nil is 1.
    public var batchNormShiftRateScale: Float?

    public init() {}

    public func make() throws -> GradientDescent {
        let kind: OptimizerKind
        switch name {
        case "sgd": kind = .sgd(momentum: momentum)
        case "nesterov": kind = .sgd(momentum: momentum, nesterov: true)
        case "rmsprop": kind = .rmsprop(momentum: 0)
        case "adam", "adamw": kind = .adam()
        case "adamax": kind = .adamax()
        default: throw TrainingError.unknownOptimizer(name)
        }
        let decay: WeightDecay = weightDecay == 0 ? .none : ((decoupled || name == "adamw") ? .decoupled(weightDecay) : .l2(weightDecay))
        return GradientDescent(kind, learningRate: learningRate, weightDecay: decay, clipping: clipNorm.map { .globalNorm($0) } ?? .none)
    }
}

/// The learning-rate schedule as users write it.
public struct ScheduleSettings: Codable, Sendable, Equatable {
    /// The shape of the schedule, written `constant`, `cosine`, `onecycle`, `onecycle:0.25` or
    /// `step:81,122` (in `config.json` under `name`).
    public enum Kind: Sendable, Equatable, TextCodable, CustomStringConvertible {
        case constant
        case cosine
        /// Multiply the rate by ``ScheduleSettings/factors``, one per milestone, from these
        /// epochs (counted from 0) on.
        case step(milestones: [Int])
        /// Smith's one-cycle: the rate climbs from a 25th of the base rate to the base rate over
        /// the first `peakFraction` of the run (0.3 by default, as PyTorch's `pct_start`), then
        /// falls to a 10,000th of where it started (``LearningRateSchedule/oneCycle(peakFraction:startDivisor:endDivisor:)``).
        case oneCycle(peakFraction: Double)

        /// Reads `constant`, `cosine`, `onecycle[:PEAK]` or `step:EPOCH,EPOCH...`.
        public init(parsing text: String) throws {
            if text == "constant" {
                self = .constant
            } else if text == "cosine" {
                self = .cosine
            } else if text == "onecycle" || text.hasPrefix("onecycle:") {
                let peak = text == "onecycle" ? 0.3 : Double(text.dropFirst(9))
                guard let peak, peak > 0, peak < 1 else {
                    throw TrainingError.invalidSchedule(text, reason: "give the share of the run that climbs to the peak rate in (0, 1), as onecycle:0.3")
                }
                self = .oneCycle(peakFraction: peak)
            } else if text.hasPrefix("step:") {
                let milestones = text.dropFirst(5).split(separator: ",").compactMap { Int($0) }
                guard !milestones.isEmpty else {
                    throw TrainingError.invalidSchedule(text, reason: "give milestones as step:81,122 and one factor per milestone")
                }
                self = .step(milestones: milestones)
            } else {
                throw TrainingError.invalidSchedule(text, reason: "unknown: constant, cosine, onecycle[:PEAK] or step:EPOCH,EPOCH...")
            }
        }

        public var description: String {
            switch self {
            case .constant: return "constant"
            case .cosine: return "cosine"
            case let .oneCycle(peak): return peak == 0.3 ? "onecycle" : "onecycle:\(peak)"
            case let .step(milestones): return "step:" + milestones.map(String.init).joined(separator: ",")
            }
        }

        public var text: String { description }
    }

    public var kind = Kind.constant
    public var factors: [Float] = [0.1, 0.01]
    public var warmupEpochs: Double = 0
    /// Reduce the rate by `factor` after `patience` epochs without a better validation loss.
    public var plateau: ReduceOnPlateau?

    enum CodingKeys: String, CodingKey {
        case kind = "name"
        case factors, warmupEpochs, plateau
    }

    public init() {}

    public func make() throws -> LearningRateSchedule {
        var schedule: LearningRateSchedule
        switch kind {
        case .constant: schedule = .constant
        case .cosine: schedule = .cosine(minimum: 0)
        case let .oneCycle(peak):
            guard warmupEpochs == 0 else {
                throw TrainingError.invalidSchedule(kind.description, reason: "one-cycle warms up by itself: leave out the warmup")
            }
            schedule = .oneCycle(peakFraction: peak, startDivisor: 25, endDivisor: 1e4)
        case let .step(milestones):
            guard milestones.count <= factors.count else {
                throw TrainingError.invalidSchedule(kind.description, reason: "give milestones as step:81,122 and one factor per milestone")
            }
            schedule = .step(milestones: milestones, factors: Array(factors.prefix(milestones.count)))
        }
        if warmupEpochs > 0 { schedule = .warmup(epochs: warmupEpochs, startFactor: 0.1, then: schedule) }
        return schedule
    }
}

/// A setting written in `config.json` as the text it is parsed from (`"20%"`, `"gap,dense"`,
/// `"step:81,122"`): the strings settings held before they were typed, so files of either
/// version read in both.
public protocol TextCodable: Codable {
    init(parsing text: String) throws
    /// The text that parses back to this value.
    var text: String { get }
}

extension TextCodable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            try self.init(parsing: text)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

extension FineTuneSettings {
    /// The run's new head for `model`'s base, its weights drawn from ``seed``.
    func newHead(for model: ImageModel) throws -> ClassificationHead {
        Initialization.seed(seed)
        return try head.specification(classes: classNames.count).head(for: model, inputSize: imageSize)
    }
}
