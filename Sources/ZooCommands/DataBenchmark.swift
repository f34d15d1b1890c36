import Foundation
import ZooTensor
import ZooData

/// How fast images are prepared, against how fast training consumes them.
public enum DataBenchmark {
    public struct Result: Codable, Sendable {
        /// The measurement: `decode`, `decode+resize96+augment`, `loader96`, `train_densenet201_96`, ...
        public var name: String
        public var imagesPerSecond: Double
        public var threads: Int

        enum CodingKeys: String, CodingKey {
            case name, threads
            case imagesPerSecond = "images_per_s"
        }
    }

    /// Measures, on `dataset`: decoding alone; decoding, resizing and augmenting to 96 and 299 on
    /// one thread; the loader at 96 with `workers` threads; and, for comparison, training
    /// DenseNet201 at 96 (batch 32) with every layer trainable and with the bottom 80% frozen.
    public static func run(_ dataset: any Dataset, images: Int = 512, workers: Int = 2, augmentation: String = "flip,rotation=0.05,zoom=0.1",
                           includeTraining: Bool = true) throws -> [Result] {
        let count = min(images, dataset.count)
        guard count > 0 else { throw DataError("benchmark", "the dataset is empty") }
        let spec = try AugmentationSpecification(parsing: augmentation)
        var results: [Result] = []
        results.append(Result(name: "decode", imagesPerSecond: try rate(count) { _ = try dataset.image(at: $0) }, threads: 1))
        for size in [96, 299] {
            let transform = spec.sampleTransform(size: size, resize: .keras)
            let perSecond = try rate(count) { index in
                var generator = SeededGenerator.forSample(seed: 0, epoch: 0, index: index)
                var image = try transform(dataset.image(at: index).floatImage, &generator)
                Preprocessing.torch.apply(nhwc: &image.values)
            }
            results.append(Result(name: "decode+resize\(size)+augment", imagesPerSecond: perSecond, threads: 1))
        }
        var options = DataLoader.Options(size: 96, batchSize: 32)
        options.transform = spec.sampleTransform(size: 96, resize: .keras)
        options.preprocessing = .torch
        options.workers = workers
        let start = Date()
        let epoch = try DataLoader(dataset.prefix(count), options: options).epoch(0)
        var loaded = 0
        while let batch = try epoch.next() { loaded += batch.labels.count }
        results.append(Result(name: "loader96", imagesPerSecond: Double(loaded) / Date().timeIntervalSince(start), threads: workers))
        if includeTraining {
            for (name, benchmarkCase) in [("all", ModelBenchmark.Case.train), ("top20%", .trainFrozen80)] {
                let rate = try ModelBenchmark.imagesPerSecond(.densenet201, flavor: .keras, size: 96, batch: 32, benchmarkCase: benchmarkCase,
                                                              classes: 10, steps: 3)
                results.append(Result(name: "train_densenet201_96_\(name)", imagesPerSecond: rate, threads: Threads.count))
            }
        }
        return results
    }

    /// Images per second of `body` over `count` items (after one warm-up item).
    private static func rate(_ count: Int, _ body: (Int) throws -> Void) throws -> Double {
        try body(0)
        let start = Date()
        for index in 0..<count { try body(index) }
        return Double(count) / Date().timeIntervalSince(start)
    }
}
