import Foundation
import Synchronization
import Testing
import ZooData

/// Images made on demand: sample `i` is a flat image of value `i % 256`; the samples listed in
/// `damaged` fail to decode. Counts how many are being read at once.
final class GeneratedDataset: Dataset, @unchecked Sendable {
    let classNames: [String]
    let labels: [Int]
    let size: Int
    let damaged: Set<Int>
    let reading = Mutex((now: 0, most: 0))

    init(classes: [String], perClass: Int, size: Int = 8, damaged: Set<Int> = []) {
        classNames = classes
        labels = (0..<(classes.count * perClass)).map { $0 % classes.count }
        self.size = size
        self.damaged = damaged
    }

    var count: Int { labels.count }
    func label(at index: Int) -> Int { labels[index] }
    func sampleID(at index: Int) -> String { "generated#\(index)" }

    func image(at index: Int) throws -> Image {
        reading.withLock { $0.now += 1; $0.most = max($0.most, $0.now) }
        defer { reading.withLock { $0.now -= 1 } }
        if damaged.contains(index) { throw DataError(sampleID(at: index), "damaged on purpose") }
        usleep(200)
        return Image(width: size, height: size, pixels: [UInt8](repeating: UInt8(index % 256), count: size * size * 3))
    }
}

@Suite("Dataset composition")
struct CompositionTests {
    @Test("a union numbers new classes after the old ones and merges classes of the same name")
    func union() throws {
        let cifar = GeneratedDataset(classes: ["airplane", "cat", "dog"], perClass: 2)
        let reptiles = GeneratedDataset(classes: ["crocodile", "dog", "snake"], perClass: 1)
        let both = Union([cifar, reptiles])
        #expect(both.classNames == ["airplane", "cat", "dog", "crocodile", "snake"])
        #expect(both.count == 9)
        #expect((0..<9).map { both.label(at: $0) } == [0, 1, 2, 0, 1, 2, 3, 2, 4])
        #expect(both.sampleID(at: 7) == "generated#1")
    }

    @Test("class subsets relabel in the order given; per-class limits keep the first samples")
    func subsets() throws {
        let data = GeneratedDataset(classes: ["a", "b", "c", "d"], perClass: 5)
        let chosen = try data.classes(["c", "a"])
        #expect(chosen.classNames == ["c", "a"])
        #expect(chosen.count == 10)
        #expect(Set((0..<10).map { chosen.label(at: $0) }) == [0, 1])
        #expect(chosen.label(at: 0) == 1)
        #expect(try data.firstClasses(2).classNames == ["a", "b"])
        #expect(throws: DataError.self) { try data.classes(["zebra"]) }
        let limited = data.limitPerClass(2)
        #expect(limited.classCounts == [2, 2, 2, 2])
        #expect(limited.indices == Array(0..<8))
    }

    @Test("a seeded split is stratified, disjoint, complete and repeatable")
    func split() throws {
        let data = GeneratedDataset(classes: ["a", "b", "c"], perClass: 10)
        let (training, validation) = try data.split(validationFraction: 0.2, seed: 4)
        #expect(validation.classCounts == [2, 2, 2])
        #expect(training.classCounts == [8, 8, 8])
        #expect(Set(training.indices).isDisjoint(with: validation.indices))
        #expect(Set(training.indices + validation.indices) == Set(0..<30))
        #expect(try data.split(validationFraction: 0.2, seed: 4).validation.indices == validation.indices)
        #expect(try data.split(validationFraction: 0.2, seed: 5).validation.indices != validation.indices)
    }
}

@Suite("Data loader", .serialized)
struct LoaderTests {
    func batches(_ loader: DataLoader, epoch: Int) throws -> [Batch] {
        let epochBatches = loader.epoch(epoch)
        var result: [Batch] = []
        while let batch = try epochBatches.next() { result.append(batch) }
        return result
    }

    @Test("an epoch yields every sample once, in a seeded order, the same with one worker or three")
    func epochs() throws {
        let data = GeneratedDataset(classes: ["a", "b", "c"], perClass: 11)
        var options = DataLoader.Options(size: 8, batchSize: 4)
        options.seed = 9
        options.workers = 1
        let one = try batches(try DataLoader(data, options: options), epoch: 0)
        options.workers = 3
        let three = try batches(try DataLoader(data, options: options), epoch: 0)
        #expect(one.count == 9)
        #expect(one.flatMap(\.indices).sorted() == Array(0..<33))
        #expect(one.flatMap(\.indices) == three.flatMap(\.indices))
        #expect(one.flatMap(\.indices) != Array(0..<33))
        #expect(try batches(try DataLoader(data, options: options), epoch: 1).flatMap(\.indices) != one.flatMap(\.indices))
        let first = one[0]
        #expect(first.images.shape == [4, 3, 8, 8])
        #expect(first.images.layout.description == "nhwc", "batches are channels-last, as the first convolution reads them")
        #expect(first.labels == first.indices.map { data.label(at: $0) })
        let pixels = try first.images.nhwcArray()
        #expect(pixels[0] == Float(first.indices[0] % 256))
    }

    @Test("random choices depend on the seed, epoch and sample, not on threads")
    func transformsAreSeeded() throws {
        let data = GeneratedDataset(classes: ["a"], perClass: 12)
        var options = DataLoader.Options(size: 8, batchSize: 5)
        options.transform = { image, generator in
            var shifted = image
            let offset = generator.nextUnitFloat()
            for i in shifted.values.indices { shifted.values[i] += offset }
            return shifted
        }
        options.workers = 1
        let a = try batches(try DataLoader(data, options: options), epoch: 2).map { try $0.images.array() }
        options.workers = 3
        let b = try batches(try DataLoader(data, options: options), epoch: 2).map { try $0.images.array() }
        #expect(a == b)
        options.seed = 1
        let c = try batches(try DataLoader(data, options: options), epoch: 2).map { try $0.images.array() }
        #expect(a != c)
    }

    @Test("balanced sampling draws every class equally often, repeats rare samples with augmentation of their own, and is seeded")
    func balancedSampling() throws {
        // 50, 50 and 5 samples: a class ten times rarer, as the reptiles beside CIFAR-10.
        let data = Union([GeneratedDataset(classes: ["a", "b"], perClass: 50), GeneratedDataset(classes: ["c"], perClass: 5)])
        var options = DataLoader.Options(size: 8, batchSize: 16)
        options.seed = 4
        options.sampler = .balanced
        let loader = try DataLoader(data, options: options)
        var draws = [0, 0, 0]
        for epoch in 0..<20 {
            let order = loader.order(epoch: epoch)
            #expect(order.count == data.count)
            for index in order { draws[data.label(at: index)] += 1 }
        }
        // 700 draws expected per class (standard deviation about 22); uniform sampling gives the rare class 100.
        #expect(draws.allSatisfy { abs($0 - 700) < 110 }, "\(draws)")
        #expect(loader.order(epoch: 3) == (try DataLoader(data, options: options)).order(epoch: 3))
        #expect(loader.order(epoch: 3) != loader.order(epoch: 4))

        options.transform = { image, generator in
            var shifted = image
            let offset = generator.nextUnitFloat()
            for i in shifted.values.indices { shifted.values[i] += offset }
            return shifted
        }
        let epoch = try batches(try DataLoader(data, options: options), epoch: 0)
        var seen: [Int: Float] = [:]
        var repeats = 0
        for batch in epoch {
            let pixels = try batch.images.nhwcArray()
            for (position, index) in batch.indices.enumerated() {
                let first = pixels[position * 8 * 8 * 3]
                if let earlier = seen[index] {
                    #expect(earlier != first, "sample \(index) drawn twice with the same augmentation")
                    repeats += 1
                }
                seen[index] = first
            }
        }
        #expect(repeats > 0)
        var uniform = options
        uniform.sampler = .uniform
        #expect(try DataLoader(data, options: uniform).order(epoch: 0).sorted() == Array(0..<data.count))
    }

    @Test("work in progress stays within the prefetch bound")
    func boundedPrefetch() throws {
        let data = GeneratedDataset(classes: ["a", "b"], perClass: 200)
        var options = DataLoader.Options(size: 8, batchSize: 8)
        options.prefetch = 2
        options.workers = 4
        let epoch = try DataLoader(data, options: options).epoch(0)
        _ = try epoch.next()
        usleep(100_000)
        // The consumer holds one batch; at most `prefetch` more are being made, one sample at a time per worker.
        #expect(data.reading.withLock { $0.most } <= 2)
        epoch.stop()
    }

    @Test("a damaged sample fails the epoch naming it, or is skipped and counted when asked")
    func damaged() throws {
        let data = GeneratedDataset(classes: ["a"], perClass: 10, damaged: [3])
        var options = DataLoader.Options(size: 8, batchSize: 4)
        options.shuffle = false
        #expect(throws: DataError("generated#3", "damaged on purpose")) { try batches(try DataLoader(data, options: options), epoch: 0) }
        options.skipDamaged = true
        let result = try batches(try DataLoader(data, options: options), epoch: 0)
        #expect(result.flatMap(\.indices) == [0, 1, 2, 4, 5, 6, 7, 8, 9])
        #expect(result.flatMap(\.skipped).map(\.source) == ["generated#3"])
    }

    @Test("an image of the wrong size is an error naming the sample")
    func wrongSize() throws {
        let data = GeneratedDataset(classes: ["a"], perClass: 2, size: 6)
        let loader = try DataLoader(data, options: DataLoader.Options(size: 8, batchSize: 2))
        #expect(throws: DataError.self) { try batches(loader, epoch: 0) }
    }
}
