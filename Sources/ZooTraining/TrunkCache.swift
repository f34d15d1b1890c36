import Foundation
import ZooTensor

/// The frozen-trunk cache: what the frozen bottom of a model gives for each sample, computed once
/// and reused every later epoch, so an epoch runs only the trainable part.
///
/// It holds the tensors that enter the model's first trainable stage (for DenseNet the whole
/// concatenation, every feature map a trainable layer uses). Samples are kept in memory up to a
/// byte budget, then in a file up to a disk budget; samples beyond both are simply recomputed.
public enum TrunkCacheMode: Codable, Sendable, Equatable {
    /// Never cache.
    case off
    /// Cache when the training images are not augmented (resizing only): then every epoch would
    /// compute the same trunk outputs.
    case automatic
    /// Cache this many augmented versions of each image and cycle through them: epoch `e` sees
    /// the augmentation drawn for epoch `e % copies`.
    case augmentedCopies(Int)
}

final class TrunkCache {
    /// The stage whose input the cache holds.
    let stage: Int
    private let memoryBudget: Int
    private let diskBudget: Int
    /// Where samples beyond the memory budget go (deleted with the cache).
    private let file: URL
    private var memory: [Key: TensorSample] = [:]
    private var memoryBytes = 0
    private var disk: [Key: (offset: Int, count: Int, shape: [Int], blocked: Bool)] = [:]
    private var diskFile: FileHandle?
    private var diskBytes = 0

    struct Key: Hashable {
        var index: Int
        var copy: Int
    }

    init(stage: Int, file: URL, memoryBudget: Int, diskBudget: Int) {
        self.stage = stage
        self.file = file
        self.memoryBudget = memoryBudget
        self.diskBudget = diskBudget
    }

    deinit {
        try? diskFile?.close()
        try? FileManager.default.removeItem(at: file)
    }

    /// Budgets from the environment (`ZOO_CACHE_MEMORY_MB`, `ZOO_CACHE_DISK_MB`), by default a
    /// quarter of physical memory and 8 GB of disk.
    static func defaultBudgets() -> (memory: Int, disk: Int) {
        let environment = ProcessInfo.processInfo.environment
        let memory = environment["ZOO_CACHE_MEMORY_MB"].flatMap(Int.init).map { $0 << 20 } ?? Int(ProcessInfo.processInfo.physicalMemory / 4)
        let disk = environment["ZOO_CACHE_DISK_MB"].flatMap(Int.init).map { $0 << 20 } ?? (8 << 30)
        return (memory, disk)
    }

    var count: Int { memory.count + disk.count }

    func contains(_ indices: [Int], copy: Int) -> Bool {
        indices.allSatisfy { memory[Key(index: $0, copy: copy)] != nil || disk[Key(index: $0, copy: copy)] != nil }
    }

    func store(_ samples: [TensorSample], indices: [Int], copy: Int) throws {
        for (sample, index) in zip(samples, indices) {
            let key = Key(index: index, copy: copy)
            // A sample drawn twice in an epoch (balanced sampling) is stored once.
            guard memory[key] == nil, disk[key] == nil else { continue }
            let bytes = sample.values.count * 4
            if memoryBytes + bytes <= memoryBudget {
                memory[key] = sample
                memoryBytes += bytes
            } else if diskBytes + bytes <= diskBudget {
                let file = try openDisk()
                let offset = diskBytes
                try file.seek(toOffset: UInt64(offset))
                try sample.values.withUnsafeBytes { try file.write(contentsOf: Data($0)) }
                disk[key] = (offset, sample.values.count, sample.shape, sample.blocked)
                diskBytes += bytes
            }
        }
    }

    /// The cached batch for `indices`, or nil if a sample is missing.
    func batch(_ indices: [Int], copy: Int) throws -> Tensor? {
        var samples: [TensorSample] = []
        for index in indices {
            let key = Key(index: index, copy: copy)
            if let sample = memory[key] {
                samples.append(sample)
            } else if let entry = disk[key], let file = diskFile {
                try file.seek(toOffset: UInt64(entry.offset))
                guard let data = try file.read(upToCount: entry.count * 4), data.count == entry.count * 4 else { return nil }
                let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                samples.append(TensorSample(shape: entry.shape, blocked: entry.blocked, values: values))
            } else {
                return nil
            }
        }
        return try Tensor(stacking: samples)
    }

    private func openDisk() throws -> FileHandle {
        if let diskFile { return diskFile }
        _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forUpdating: file)
        diskFile = handle
        return handle
    }
}
