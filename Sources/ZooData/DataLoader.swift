import Foundation
import ZooTensor

/// A batch of images in the engine's activation layout, with their labels.
public struct Batch: @unchecked Sendable {
    /// `[N, 3, height, width]`, blocked.
    public var images: Tensor
    public var labels: [Int]
    /// The samples' indices in the dataset.
    public var indices: [Int]
    /// Samples left out because they could not be read (with `skipDamaged`): their ids and errors.
    public var skipped: [DataError]
}

/// Reads a dataset in batches on background threads: decoding, transforming (resizing,
/// augmenting) and preprocessing images while the caller trains on earlier batches.
///
/// Work is bounded: at most ``Options/prefetch`` batches are ready or in progress beyond the
/// one the caller holds, so memory stays the same whatever the dataset's size. Every random
/// choice for a sample comes from a generator derived from the seed, the epoch and the sample's
/// index, so an epoch's batches are the same whatever the number of threads and however they
/// interleave.
public final class DataLoader: @unchecked Sendable {
    /// What a sample goes through after decoding: resizing to the batch size and any
    /// augmentation, drawing its random choices from the generator it is given.
    public typealias SampleTransform = @Sendable (FloatImage, inout SeededGenerator) throws -> FloatImage

    /// How an epoch's samples are drawn.
    public enum Sampler: String, Codable, Sendable, CaseIterable {
        /// Every sample once (in a seeded random order when ``Options/shuffle`` is on).
        case uniform
        /// As many draws as there are samples, with replacement, every class equally likely:
        /// PyTorch's `WeightedRandomSampler` with each sample weighted by one over its class's
        /// count. A class ten times rarer is seen as often as the others, its samples repeated
        /// (each repeat with augmentation choices of its own).
        case balanced
    }

    public struct Options: Sendable {
        public var batchSize = 32
        /// Output image size; every transformed image must have it.
        public var height: Int
        public var width: Int
        /// Shuffle sample order each epoch (seeded).
        public var shuffle = true
        /// How an epoch's samples are drawn (``Sampler/balanced`` draws at random whatever
        /// ``shuffle`` says).
        public var sampler = Sampler.uniform
        public var seed: UInt64 = 0
        /// Background threads decoding and transforming.
        public var workers = 2
        /// Batches prepared ahead of the caller.
        public var prefetch = 4
        /// Leave out a last batch smaller than `batchSize`.
        public var dropLast = false
        /// Leave out samples that cannot be read (counted in each ``Batch/skipped``) instead of
        /// failing the epoch.
        public var skipDamaged = false
        public var preprocessing: Preprocessing = .none
        public var transform: SampleTransform?

        public init(size: Int, batchSize: Int = 32) {
            height = size
            width = size
            self.batchSize = batchSize
        }
    }

    public let dataset: any Dataset
    public let options: Options

    public init(_ dataset: any Dataset, options: Options) throws {
        guard options.batchSize > 0, options.height > 0, options.width > 0, options.workers > 0, options.prefetch > 0 else {
            throw DataError("data loader", "batch size, image size, workers and prefetch must be positive")
        }
        self.dataset = dataset
        self.options = options
    }

    /// Batches in one epoch.
    public var batchesPerEpoch: Int {
        options.dropLast ? dataset.count / options.batchSize : (dataset.count + options.batchSize - 1) / options.batchSize
    }

    /// The sample order of `epoch`.
    public func order(epoch: Int) -> [Int] {
        var generator = SeededGenerator.forSample(seed: options.seed, epoch: epoch, index: -1)
        switch options.sampler {
        case .uniform:
            var order = Array(0..<dataset.count)
            if options.shuffle { order.shuffle(using: &generator) }
            return order
        case .balanced:
            var members = [[Int]](repeating: [], count: dataset.classNames.count)
            for index in 0..<dataset.count { members[dataset.label(at: index)].append(index) }
            let present = members.filter { !$0.isEmpty }
            guard !present.isEmpty else { return [] }
            // A class uniformly, then a sample of it uniformly: each sample's chance is one over
            // (classes present x its class's count).
            return (0..<dataset.count).map { _ in
                let samples = present[Int(generator.next() % UInt64(present.count))]
                return samples[Int(generator.next() % UInt64(samples.count))]
            }
        }
    }

    /// The generator index of each sample of `batches` (one epoch's): the sample's index for its
    /// first draw in the epoch, and beyond the dataset's indices for repeats, so that a sample
    /// drawn twice (``Sampler/balanced``) is augmented differently each time.
    func augmentationKeys(_ batches: [[Int]]) -> [[Int]] {
        var draws: [Int: Int] = [:]
        return batches.map { batch in
            batch.map { index in
                let repeats = draws[index, default: 0]
                draws[index] = repeats + 1
                return index + repeats * dataset.count
            }
        }
    }

    /// The batches of `epoch`, produced in the background as they are consumed. Samples are
    /// transformed with the random choices of `augmentationEpoch` (by default the epoch itself;
    /// a cache of K augmented copies reuses epoch `e % K`'s).
    public func epoch(_ epoch: Int, augmentationEpoch: Int? = nil) -> EpochBatches {
        EpochBatches(loader: self, epoch: epoch, augmentationEpoch: augmentationEpoch ?? epoch)
    }

    /// The sample indices of each batch of `epoch`, in order.
    public func batches(epoch: Int) -> [[Int]] {
        let order = self.order(epoch: epoch)
        let size = options.batchSize
        return (0..<batchesPerEpoch).map { Array(order[($0 * size)..<min(($0 + 1) * size, order.count)]) }
    }

    /// Builds a batch of an epoch from its sample indices and their ``augmentationKeys(_:)``
    /// (on any thread).
    func makeBatch(_ indices: [Int], keys: [Int], epoch: Int) throws -> Batch {
        var images: [[Float]] = []
        var kept: [Int] = []
        var skipped: [DataError] = []
        for (index, key) in zip(indices, keys) {
            do {
                var generator = SeededGenerator.forSample(seed: options.seed, epoch: epoch, index: key)
                var image = try dataset.image(at: index).floatImage
                if let transform = options.transform { image = try transform(image, &generator) }
                guard image.width == options.width, image.height == options.height else {
                    throw DataError(dataset.sampleID(at: index),
                                    "transformed to \(image.width)x\(image.height), but batches are \(options.width)x\(options.height) (add a resize)")
                }
                options.preprocessing.apply(nhwc: &image.values)
                images.append(image.values)
                kept.append(index)
            } catch let error as DataError where options.skipDamaged {
                skipped.append(error)
            } catch let error as DataError {
                throw error
            } catch {
                throw DataError(dataset.sampleID(at: index), "\(error)")
            }
        }
        guard !kept.isEmpty else {
            throw DataError("batch of \(indices.count) samples", "every sample was damaged: \(skipped.map(\.description).joined(separator: "; "))")
        }
        let tensor = try Tensor.imageBatch(count: kept.count, height: options.height, width: options.width) { writer in
            for (position, values) in images.enumerated() { values.withUnsafeBufferPointer { writer.write(image: position, nhwc: $0) } }
        }
        return Batch(images: tensor, labels: kept.map { dataset.label(at: $0) }, indices: kept, skipped: skipped)
    }
}

/// One epoch's batches, in order, prepared by background threads. Iterate it once; errors of
/// damaged samples (without `skipDamaged`) are thrown by ``next()``. Dropping it (or calling
/// ``stop()``) ends the background work.
public final class EpochBatches: @unchecked Sendable {
    private let production: Production

    init(loader: DataLoader, epoch: Int, augmentationEpoch: Int) {
        production = Production(loader: loader, epoch: augmentationEpoch, batches: loader.batches(epoch: epoch))
    }

    deinit { production.stop() }

    /// Number of batches in the epoch.
    public var count: Int { production.batches.count }

    /// The next batch, or nil at the end of the epoch.
    public func next() throws -> Batch? { try production.next() }

    /// Stops the background threads (when the caller leaves the epoch early).
    public func stop() { production.stop() }

    /// The shared state of the caller and the worker threads. Workers hold only this, so the
    /// caller dropping its ``EpochBatches`` stops them.
    private final class Production: @unchecked Sendable {
        let loader: DataLoader
        let epoch: Int
        let batches: [[Int]]
        let keys: [[Int]]
        private let condition = NSCondition()
        private var assigned = 0
        private var consumed = 0
        private var results: [Int: Result<Batch, Error>] = [:]
        private var stopped = false
        private var started = false

        init(loader: DataLoader, epoch: Int, batches: [[Int]]) {
            self.loader = loader
            self.epoch = epoch
            self.batches = batches
            keys = loader.augmentationKeys(batches)
        }

        func next() throws -> Batch? {
            condition.lock()
            defer { condition.unlock() }
            if !started { startWorkers() }
            guard consumed < batches.count else { return nil }
            while results[consumed] == nil { condition.wait() }
            let result = results.removeValue(forKey: consumed)!
            consumed += 1
            condition.broadcast()
            return try result.get()
        }

        func stop() {
            condition.lock()
            stopped = true
            condition.broadcast()
            condition.unlock()
        }

        private func startWorkers() {
            started = true
            for _ in 0..<min(loader.options.workers, max(batches.count, 1)) {
                let thread = Thread { [self] in work() }
                thread.name = "zoo data loader"
                thread.start()
            }
        }

        private func work() {
            while true {
                condition.lock()
                while !stopped, assigned < batches.count, assigned - consumed >= loader.options.prefetch { condition.wait() }
                guard !stopped, assigned < batches.count else {
                    condition.unlock()
                    return
                }
                let number = assigned
                assigned += 1
                condition.unlock()
                let result = Result { try loader.makeBatch(batches[number], keys: keys[number], epoch: epoch) }
                condition.lock()
                results[number] = result
                condition.broadcast()
                condition.unlock()
            }
        }
    }
}
