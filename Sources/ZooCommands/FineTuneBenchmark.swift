import Foundation
import ZooTensor
import ZooModels
import ZooTraining

/// Epoch times of a fine-tuning setup with and without the frozen-trunk cache: what
/// `zoo bench finetune` prints.
public struct FineTuneBenchmark: Codable, Sendable {
    public var architecture: String
    public var imageSize: Int
    public var unfreeze: String
    public var images: Int
    public var batchSize: Int
    public var threads: Int
    /// An epoch that runs the whole model (cache off), after a warm-up epoch.
    public var epochSecondsUncached: Double
    /// The first cached epoch: runs the trunk once per image and stores its outputs.
    public var epochSecondsCachedFirst: Double
    /// A later cached epoch (the median of three): only the trainable stages run.
    public var epochSecondsCachedLater: Double
    /// The cached trunk's share of the model's stages ("12 of 20").
    public var cachedStages: String

    enum CodingKeys: String, CodingKey {
        case architecture, imageSize = "image_size", unfreeze, images, batchSize = "batch_size", threads
        case epochSecondsUncached = "epoch_s_uncached", epochSecondsCachedFirst = "epoch_s_cached_first"
        case epochSecondsCachedLater = "epoch_s_cached_later", cachedStages = "cached_stages"
    }

    /// Trains `settings` on `images` training images (an equal share of each class) (no validation, no augmentation,
    /// no test evaluation): two epochs uncached (the first warms up), then four cached, each run
    /// in a fresh temporary folder from the same starting weights.
    public static func run(_ settings: FineTuneSettings, images: Int) throws -> FineTuneBenchmark {
        var settings = settings
        settings.data.validationFraction = 0
        settings.data.augmentation = "none"
        settings.earlyStoppingPatience = nil
        var data = try FineTuneJob.openData(settings.data, seed: settings.seed, imageSize: settings.imageSize)
        let classCount = max(1, data.training.classNames.count)
        data.training = data.training.limitPerClass((images + classCount - 1) / classCount).prefix(images)
        data.validation = nil
        data.test = nil
        if settings.classNames.isEmpty { settings.classNames = data.training.classNames }

        func epochSeconds(cache: TrunkCacheMode, epochs: Int) throws -> (seconds: [Double], cachedStages: String) {
            var run = settings
            run.trunkCache = cache
            run.epochs = epochs
            let (model, _) = try FineTuneJob.buildModel(run, observer: nil)
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-bench-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: folder) }
            let tuner = try FineTuner(settings: run, model: model, data: data, folder: folder)
            let result = try tuner.run(observer: nil)
            return (result.history.epochs.map(\.seconds), "\(model.frozenStageCount) of \(model.stages.count)")
        }
        // The first uncached epoch creates the primitives every later run reuses: it is warm-up.
        let uncached = try epochSeconds(cache: .off, epochs: 2)
        let cached = try epochSeconds(cache: .automatic, epochs: 4)
        return FineTuneBenchmark(architecture: settings.architecture, imageSize: settings.imageSize, unfreeze: settings.unfreeze.text,
                                 images: data.training.count, batchSize: settings.batchSize, threads: Threads.count,
                                 epochSecondsUncached: uncached.seconds[1], epochSecondsCachedFirst: cached.seconds[0],
                                 epochSecondsCachedLater: cached.seconds.dropFirst().sorted()[1], cachedStages: cached.cachedStages)
    }
}
