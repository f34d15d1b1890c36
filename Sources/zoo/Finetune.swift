import ArgumentParser
import Foundation
import ZooKit

extension ResizeConvention: ExpressibleByArgument {}
extension DataLoader.Sampler: ExpressibleByArgument {}

/// Where the data comes from: shared by finetune, evaluate and data.
struct DataArguments: ParsableArguments {
    @Option(name: .customLong("data"), help: "Training data: a folder (with train/ and test/ or class folders), cifar10:PATH, cifar100:PATH; repeat to join sources (their classes are merged, later sources' new classes numbered after).")
    var sources: [String] = []
    @Option(name: .customLong("test-data"), help: "Test data (default: the sources' own test splits).")
    var testSources: [String] = []
    @Option(help: "Only these classes, comma-separated, in this order.") var classes: String?
    @Option(help: "Only the first N classes.") var firstClasses: Int?
    @Option(help: "At most N samples per class (training and test), for quick runs.") var limitPerClass: Int?
    @Flag(help: "Leave out images that cannot be read (they are counted and reported) instead of stopping.") var skipDamaged = false
}

/// `--cache-trunk`'s values.
enum TrunkCacheChoice: String, ExpressibleByArgument, CaseIterable {
    case auto, off
}

extension ZooCommand {
    struct Finetune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fine-tune a model on your classes: new head, frozen base layers, a run folder with checkpoints and a report.",
            discussion: """
                Example: zoo finetune densenet201 --weights densenet201.keras_imagenet_notop --data cifar10:~/cifar-10-batches-bin \\
                --size 96 --unfreeze 20% --epochs 10 --out runs/d201

                --unfreeze counts layers as Keras does: the base's Keras layer list, weightless layers \
                included; 20% keeps the top ceil(n * 0.2) layers trainable (the head always trains). \
                Frozen batch norms run in inference mode with their moving statistics. A run killed \
                at any point continues with --resume RUN_FOLDER from its last completed epoch.
                """)

        @Argument(help: "The architecture (zoo models lists them).") var model: String?
        @Option(help: "Continue the run in this folder from its last checkpoint.") var resume: String?
        @Option(help: "The run folder to create.") var out: String?

        @OptionGroup var data: DataArguments
        @Option(help: "Share of the training data held out for validation.") var validation = 0.2

        @Option(help: "Starting weights: a weight file, a weight set pulled with zoo pull, or a zoo checkpoint (default: random).") var weights: String?
        @Option(help: "keras or torchvision (default: the architecture's first: keras where Keras publishes it).") var flavor: Flavor?
        @Option(help: "Input height and width images are resized to.") var size = 224
        @Option(help: "The head: gap|gmp|flatten, dropout=RATE, dense=UNITS[:ACTIVATION], dense (classes).") var head = "gap,dropout=0.5,dense"
        @Option(help: "Base layers that train: 20%, 12, all or none.") var unfreeze = "none"
        @Flag(help: "Without --weights, freeze random layers anyway (by default refused unless --unfreeze all: frozen random layers never learn).")
        var allowRandomFrozen = false
        @Flag(help: "Without --weights: set the first convolution to whiten 2x2 (its kernel's) patches of 5,000 training images, and keep it fixed (airbench's initialization).")
        var whitenStem = false
        @Option(help: "Train the base from this layer (a name zoo summary lists) to its top; replaces --unfreeze.") var unfreezeFrom: String?
        @Option(parsing: .upToNextOption, help: "Unfreeze more later: EPOCH:PLAN pairs, e.g. 5:20% 10:50% (epochs count from 1).")
        var unfreezeAt: [String] = []
        @Option(help: "Train the head on these saved features (zoo extract of the base's output) instead of images; the model, weights, size and preprocessing come from the file.")
        var features: String?
        @Option(help: "With --features: test features for the final evaluation.") var testFeatures: String?
        @Option(help: "A zoo checkpoint whose classifier rows are kept for the classes it knows; the new classes get new rows.") var extendClasses: String?
        @Flag(help: "With --extend-classes: keep the old classes' rows fixed.") var freezeOldRows = false

        @Option(help: "sgd, nesterov, rmsprop, adam, adamw or adamax.") var optimizer = "sgd"
        @Option(help: "Learning rate.") var lr: Float = 0.01
        @Option(help: "Momentum (sgd, nesterov).") var momentum: Float = 0.9
        @Option(help: "Weight decay (L2; decoupled for adamw or with --decoupled-weight-decay).") var weightDecay: Float = 0
        @Flag(help: "Decoupled weight decay.") var decoupledWeightDecay = false
        @Option(help: "Clip gradients to this global norm.") var clipNorm: Float?
        @Option(help: "Train batch-norm shifts (biases) at this times the learning rate, their weight decay per step unchanged (airbench: 64).")
        var normBiasLrScale: Float?
        @Option(help: "constant, cosine, onecycle[:PEAK] (Smith's one-cycle: up from a 25th of --lr to --lr over the first PEAK share of the run, 0.3 by default, then down), or step:EPOCH,EPOCH (epochs count from 0) with --step-factors.")
        var schedule = "constant"
        @Option(help: "Factors of the step schedule, comma-separated.") var stepFactors = "0.1,0.01"
        @Option(help: "Warm the learning rate up over this many epochs.") var warmup: Double = 0
        @Option(help: "Reduce the learning rate tenfold after this many epochs without a better validation loss.") var plateauPatience: Int?
        @Option(help: "Stop after this many epochs without a better validation loss, keeping the best weights.") var earlyStopping: Int?
        @Option(help: "Label smoothing.") var labelSmoothing: Float = 0
        @Option(help: "Weight each class's loss: balanced (samples / (classes x the class's samples), as scikit-learn and Keras's guide), or a JSON file of class names to weights ({\"snake\": 10}; classes it leaves out weigh 1).")
        var classWeight: String?
        @Option(help: "uniform: every training sample once an epoch; balanced: as many draws with replacement, every class equally likely.")
        var sampler: DataLoader.Sampler = .uniform
        @Option(help: "Epochs.") var epochs = 10
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Random seed (data order, augmentation, dropout, new weights).") var seed: UInt64 = 0

        @Option(help: "Augmentation after resizing: flip, vflip, rotation=F, zoom=F, translate=F, padcrop=P, contrast=F, brightness=F, shift=R, none.")
        var augment = "flip"
        @Option(help: "bilinear or nearest.") var resize = "bilinear"
        @Option(help: "tensorflow or torchvision resizing.") var resizeConvention: ResizeConvention = .tensorflow
        @Option(help: "none, caffe, tf or torch (default: the weights' own).") var preprocess: Preprocessing?
        @Option(help: "Background threads reading and augmenting images.") var workers = 2
        @Option(help: "auto: run the frozen base once and reuse its outputs when training images are not augmented; off: never.")
        var cacheTrunk: TrunkCacheChoice = .auto
        @Option(help: "Cache the frozen base's outputs for K augmented copies of each image, cycled through epochs (augmentation then repeats every K epochs).")
        var cacheAugmented: Int?
        @OptionGroup var precision: PrecisionOptions
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            if resume == nil {
                guard model != nil || features != nil else { throw ValidationError("name a model (zoo models lists them), or --resume a run") }
                guard !data.sources.isEmpty || features != nil else { throw ValidationError("give training data with --data (or saved features with --features)") }
                guard out != nil else { throw ValidationError("give the run folder with --out") }
            }
            if resume != nil, precision.precision != nil {
                throw ValidationError("a resumed run keeps the precision it started with (its config.json); leave out --precision")
            }
            if features != nil, !data.sources.isEmpty { throw ValidationError("--features replaces --data: give one of them") }
            if testFeatures != nil, features == nil { throw ValidationError("--test-features needs --features") }
            if freezeOldRows, extendClasses == nil { throw ValidationError("--freeze-old-rows needs --extend-classes") }
            if let cacheAugmented, cacheAugmented < 1 { throw ValidationError("--cache-augmented takes a count of at least 1") }
            if cacheAugmented != nil, cacheTrunk == .off { throw ValidationError("--cache-augmented contradicts --cache-trunk off") }
        }

        func run() throws {
            engine.apply()
            let observer = ConsoleObserver()
            do {
                if let resume {
                    try FineTuneJob.resume(URL(fileURLWithPath: resume), observer: observer)
                } else {
                    let folder = URL(fileURLWithPath: out!)
                    try FineTuneJob.start(try settings(), folder: folder, observer: observer)
                    observer.note("run folder: \(folder.path) (report.md, metrics.json, plots/, checkpoints/)")
                }
            } catch {
                throw fail("finetune", error)
            }
        }

        func settings() throws -> FineTuneSettings {
            var settings: FineTuneSettings
            if let features {
                settings = try FineTuneSettings(features: URL(fileURLWithPath: features))
                if let model, try Architecture(named: model).name != settings.architecture {
                    throw ValidationError("\(features) holds features of \(settings.architecture), not \(model)")
                }
                settings.testFeatures = testFeatures
                settings.weights = weights ?? settings.weights
                if preprocess != nil { throw ValidationError("the features were made with \(settings.preprocessing?.rawValue ?? "none") preprocessing; leave out --preprocess") }
            } else {
                let architecture = try Architecture(named: model!)
                settings = FineTuneSettings(architecture: architecture.name, flavor: flavor ?? architecture.defaultFlavor, imageSize: size)
                settings.weights = weights
                settings.preprocessing = preprocess
            }
            settings.extendFrom = extendClasses
            settings.freezeOldRows = freezeOldRows
            settings.head = try HeadSpecification.Template(parsing: head)
            settings.unfreeze = try FreezePlan(parsing: unfreezeFrom.map { "from:\($0)" } ?? unfreeze)
            settings.allowRandomFrozenLayers = allowRandomFrozen
            settings.stemWhitening = whitenStem ? PatchWhitening() : nil
            settings.unfreezeSchedule = try unfreezeAt.map { stage in
                let parts = stage.split(separator: ":", maxSplits: 1).map(String.init)
                guard parts.count == 2, let epoch = Int(parts[0]), epoch >= 1, let plan = try? FreezePlan(parsing: parts[1]) else {
                    throw ValidationError("--unfreeze-at takes EPOCH:PLAN, as in 5:20%, got '\(stage)'")
                }
                return .init(epoch: epoch - 1, plan: plan)
            }
            settings.optimizer.name = optimizer
            settings.optimizer.learningRate = lr
            settings.optimizer.momentum = momentum
            settings.optimizer.weightDecay = weightDecay
            settings.optimizer.decoupled = decoupledWeightDecay
            settings.optimizer.clipNorm = clipNorm
            settings.optimizer.batchNormShiftRateScale = normBiasLrScale
            _ = try settings.optimizer.make()
            settings.schedule.kind = try ScheduleSettings.Kind(parsing: schedule)
            settings.schedule.factors = stepFactors.split(separator: ",").compactMap { Float($0) }
            settings.schedule.warmupEpochs = warmup
            settings.schedule.plateau = plateauPatience.map { ReduceOnPlateau(factor: 0.1, patience: $0) }
            _ = try settings.schedule.make()
            settings.earlyStoppingPatience = earlyStopping
            settings.labelSmoothing = labelSmoothing
            settings.classWeighting = try classWeight.map { try ClassWeighting(parsing: $0) }
            settings.epochs = epochs
            settings.batchSize = batch
            settings.seed = seed
            settings.precision = precision.requested
            settings.data.sources = data.sources
            settings.data.testSources = data.testSources.isEmpty ? nil : data.testSources
            settings.data.classes = data.classes.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            settings.data.firstClasses = data.firstClasses
            settings.data.limitPerClass = data.limitPerClass
            settings.data.validationFraction = validation
            settings.data.augmentation = features == nil ? augment : "none"
            _ = try AugmentationSpecification(parsing: augment)
            settings.data.resize = resize
            settings.data.resizeConvention = resizeConvention
            settings.data.workers = workers
            settings.data.skipDamaged = data.skipDamaged
            settings.data.sampler = sampler
            settings.trunkCache = cacheAugmented.map { .augmentedCopies($0) } ?? (cacheTrunk == .off ? .off : .automatic)
            return settings
        }
    }
}

extension TrainingError {
    /// The message in the command line's terms: the flags that set what the library calls
    /// settings, and the commands that do what it calls calls.
    var commandLineDescription: String {
        switch self {
        case let .runExists(folder):
            return "\(folder.path) already holds a run; resume it (`zoo finetune --resume \(folder.path)`) or choose another --out"
        case let .sweepExists(folder):
            return "\(folder.path) already holds a sweep; resume it (`zoo sweep --resume \(folder.path)`) or choose another --out"
        case .featuresNeedFrozenBase:
            return "training on saved features keeps the whole base frozen: leave out --unfreeze and --unfreeze-at"
        case let .frozenRandomWeights(architecture, plan, weightSets):
            let pull = weightSets.isEmpty ? "the catalog has no weight set for \(architecture) (zoo models lists them)"
                : "`zoo pull \(weightSets[0])`, then --weights \(weightSets[0]); weight sets for \(architecture): " + weightSets.joined(separator: ", ")
            return "\(architecture) has random weights (no --weights), yet --unfreeze \(plan) keeps part of its base frozen: those layers would never learn. "
                + "Give --weights (\(pull)), use --unfreeze all, or pass --allow-random-frozen"
        case let .featureFileIncomplete(file, missing):
            return "\(file.path) records no \(missing); extract from --data with --size"
        case let .featureFileUnlabelled(file):
            return "\(file.path) has no labels (it was extracted from an array); extract from --data to train on it"
        case let .featuresDoNotFit(source, layer, shape, expected, baseOutput, architecture, imageSize):
            return "\(source) holds layer \(layer) \(shape), not the output of \(architecture)'s base (\(baseOutput), \(expected) at \(imageSize)); "
                + "extract with --layer \(baseOutput) from weights without a classifier so that the trained head fits the model"
        case let .headMismatch(model, settings):
            return "the model's head (\(model)) differs from --head (\(settings))"
        case let .cannotWhiten(layer, reason):
            return "--whiten-stem" + (layer.map { " (\($0))" } ?? "") + ": " + reason
        default:
            return description
        }
    }
}
