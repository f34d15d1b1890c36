import Foundation
import Synchronization

/// A tensor's buffer: 64-byte aligned, taken from and returned to ``BufferPool``.
///
/// Storage also remembers copies of itself reordered into other layouts (a weight in the layout
/// a convolution prefers), so a weight is reordered once per value rather than once per use.
/// Tensors never write into storage after creating it (an updated weight is a new tensor), so
/// those copies stay valid for the storage's lifetime.
final class Storage: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let byteCount: Int
    private let derived = Mutex<[LayoutKey: Tensor]>([:])
    /// The meter that was active where this storage was made, if any.
    private let meter: MemoryMeter?

    init(byteCount: Int) {
        self.byteCount = byteCount
        self.pointer = BufferPool.shared.take(byteCount: byteCount)
        meter = Memory.activeMeter
        meter?.add(byteCount)
    }

    deinit {
        meter?.add(-byteCount)
        BufferPool.shared.give(pointer, byteCount: byteCount)
    }

    func derivedCopy(_ key: LayoutKey) -> Tensor? { derived.withLock { $0[key] } }
    func rememberDerivedCopy(_ tensor: Tensor, for key: LayoutKey) { derived.withLock { $0[key] = tensor } }
}

/// Counts of the engine's tensor memory, for benchmarks and leak tests.
public struct MemoryStats: Sendable, Equatable {
    /// Bytes held by live tensors.
    public var liveBytes: Int
    /// The most bytes live at once since the last ``Memory/resetPeak()``.
    public var peakLiveBytes: Int
    /// Bytes of freed buffers kept for reuse.
    public var cachedBytes: Int
}

/// Counts the bytes of the tensors made while it is active (see ``Memory/metering(_:_:)``) that
/// are still alive, wherever they are freed. Unlike ``Memory/stats`` it sees nothing of work
/// that runs beside the measured code, so leak checks stay exact in a busy process.
public final class MemoryMeter: Sendable {
    private let bytes = Atomic<Int>(0)

    public init() {}

    /// Bytes of metered tensors still alive.
    public var liveBytes: Int { bytes.load(ordering: .relaxed) }

    func add(_ count: Int) { bytes.add(count, ordering: .relaxed) }
}

/// The engine's tensor memory.
public enum Memory {
    @TaskLocal static var activeMeter: MemoryMeter?

    /// Runs `body` with `meter` counting the tensors it makes (in this task or thread, not in
    /// others it starts).
    public static func metering<T>(_ meter: MemoryMeter, _ body: () throws -> T) rethrows -> T {
        try $activeMeter.withValue(meter, operation: body)
    }

    /// Current counts.
    public static var stats: MemoryStats { BufferPool.shared.stats }
    /// Starts a new peak measurement at the current live size.
    public static func resetPeak() { BufferPool.shared.resetPeak() }
    /// Frees every cached buffer.
    public static func releaseCache() { BufferPool.shared.releaseCache() }
    /// The most bytes this process has had resident since it started or since the last
    /// ``resetPeakResidentBytes()`` (Linux `VmHWM`); 0 where `/proc` is not available.
    public static var peakResidentBytes: Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return 0 }
        return kilobytes << 10
    }

    /// Starts a new peak-resident measurement at the current resident size (Linux 4.0 and later:
    /// writing 5 to `/proc/self/clear_refs`). Returns false where that is not possible.
    @discardableResult
    public static func resetPeakResidentBytes() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    /// The resident set size of this process, in bytes (Linux `/proc/self/statm`).
    public static var residentBytes: Int {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Reuses freed tensor buffers.
///
/// Training repeats the same shapes every step; handing a step the memory the previous step
/// freed avoids fresh pages from the kernel (first-touch page faults cost as much as a small
/// convolution). Buffers up to 1 MiB are pooled by size class. Larger ones are carved from big
/// segments, best fit, and freed blocks merge with free neighbours (the scheme of PyTorch's
/// caching allocator): a pool keyed by exact size would keep one buffer of every size a step
/// ever used, and sizes vary a lot (a DenseNet block makes a differently sized concatenation per
/// layer), which kept twice the memory actually in use. Free memory is kept up to a byte limit
/// (`ZOO_POOL_LIMIT_MB`, default a quarter of physical memory); beyond it, wholly free segments
/// go back to the system.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()

    private struct State {
        /// Freed small buffers by size class, as addresses (pointers are not Sendable).
        var small: [Int: [UInt]] = [:]
        var segments = SegmentArena()
        var smallCachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
    }

    private let state = Mutex(State())
    private let limit: Int
    /// Requests above this size come from segments.
    static let largeThreshold = 1 << 20

    private init() {
        if let text = ProcessInfo.processInfo.environment["ZOO_POOL_LIMIT_MB"], let mb = Int(text), mb >= 0 {
            limit = mb << 20
        } else {
            limit = Int(ProcessInfo.processInfo.physicalMemory / 4)
        }
    }

    /// Rounds a small request up to the size class it is pooled under (multiples of 64 bytes).
    private static func sizeClass(_ byteCount: Int) -> Int { max(64, (byteCount + 63) / 64 * 64) }

    func take(byteCount: Int) -> UnsafeMutableRawPointer {
        if byteCount > Self.largeThreshold {
            let address: UInt = state.withLock { s in
                let (address, size) = s.segments.take(byteCount)
                s.liveBytes += size
                s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
                return address
            }
            return UnsafeMutableRawPointer(bitPattern: address)!
        }
        let size = Self.sizeClass(byteCount)
        let reused: UInt? = state.withLock { s in
            s.liveBytes += size
            s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
            guard let address = s.small[size]?.popLast() else { return nil }
            s.smallCachedBytes -= size
            return address
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        return allocate(size, alignment: 64)
    }

    func give(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let address = UInt(bitPattern: pointer)
        if byteCount > Self.largeThreshold {
            state.withLock { s in
                s.liveBytes -= s.segments.give(address)
                if s.smallCachedBytes + s.segments.freeBytes > limit { s.segments.releaseFreeSegments() }
            }
            return
        }
        let size = Self.sizeClass(byteCount)
        let keep: Bool = state.withLock { s in
            s.liveBytes -= size
            guard s.smallCachedBytes + s.segments.freeBytes + size <= limit else { return false }
            s.small[size, default: []].append(address)
            s.smallCachedBytes += size
            return true
        }
        if !keep { free(pointer) }
    }

    var stats: MemoryStats {
        state.withLock {
            MemoryStats(liveBytes: $0.liveBytes, peakLiveBytes: $0.peakLiveBytes, cachedBytes: $0.smallCachedBytes + $0.segments.freeBytes)
        }
    }

    func resetPeak() { state.withLock { $0.peakLiveBytes = $0.liveBytes } }

    func releaseCache() {
        let buffers: [UInt] = state.withLock { s in
            s.segments.releaseFreeSegments()
            let all = s.small.values.flatMap { $0 }
            s.small.removeAll()
            s.smallCachedBytes = 0
            return all
        }
        buffers.forEach { free(UnsafeMutableRawPointer(bitPattern: $0)) }
    }
}

/// Allocates `size` bytes aligned to `alignment`, or stops the process: a tensor that cannot be
/// allocated leaves nothing sensible to do.
private func allocate(_ size: Int, alignment: Int) -> UnsafeMutableRawPointer {
    var pointer: UnsafeMutableRawPointer?
    guard posix_memalign(&pointer, alignment, size) == 0, let pointer else {
        fatalError("zoo: out of memory allocating \(size) bytes for a tensor")
    }
    return pointer
}

/// Large buffers as blocks of big segments: best fit, splitting a block when the rest is worth
/// keeping, merging a freed block with free neighbours in its segment. The engine's buffer pool
/// uses one for every tensor over 1 MiB; public so that its policy can be tested.
///
/// Not thread-safe: the pool calls it under its lock.
public struct SegmentArena {
    private struct Block {
        var segment: UInt
        var size: Int
        var isFree: Bool
    }

    /// Blocks by start address, and block starts by end address (to find a left neighbour).
    private var blocks: [UInt: Block] = [:]
    private var startByEnd: [UInt: UInt] = [:]
    private var freeStarts: Set<UInt> = []
    private var segmentSizes: [UInt: Int] = [:]
    /// Bytes in free blocks.
    public private(set) var freeBytes = 0
    /// Bytes of all segments, free or not: what the arena holds from the system.
    public var reservedBytes: Int { segmentSizes.values.reduce(0, +) }

    public init() {}

    private static let granule = 4096
    /// A block is split only when the rest is at least this big.
    private static let minimumRemainder = 1 << 19

    /// A block for `byteCount` bytes: its address and its size.
    public mutating func take(_ byteCount: Int) -> (address: UInt, size: Int) {
        let wanted = (byteCount + Self.granule - 1) / Self.granule * Self.granule
        var best: UInt?
        for start in freeStarts where blocks[start]!.size >= wanted {
            if best == nil || blocks[start]!.size < blocks[best!]!.size { best = start }
        }
        if best == nil {
            // Small requests share a segment; large ones get their own, in 2 MiB steps.
            let size = wanted <= 10 << 20 ? 20 << 20 : (wanted + (2 << 20) - 1) / (2 << 20) * (2 << 20)
            let base = Self.mapSegment(size)
            segmentSizes[base] = size
            insert(start: base, Block(segment: base, size: size, isFree: true))
            best = base
        }
        let start = best!
        var block = blocks[start]!
        remove(start: start)
        if block.size - wanted >= Self.minimumRemainder {
            insert(start: start + UInt(wanted), Block(segment: block.segment, size: block.size - wanted, isFree: true))
            block.size = wanted
        }
        block.isFree = false
        insert(start: start, block)
        return (start, block.size)
    }

    /// Frees the block at `address`; returns its size.
    public mutating func give(_ address: UInt) -> Int {
        guard var block = blocks[address], !block.isFree else { fatalError("zoo: freeing an unknown tensor buffer") }
        let size = block.size
        remove(start: address)
        var start = address
        if let next = blocks[start + UInt(block.size)], next.isFree, next.segment == block.segment {
            remove(start: start + UInt(block.size))
            block.size += next.size
        }
        if let previousStart = startByEnd[start], let previous = blocks[previousStart], previous.isFree, previous.segment == block.segment {
            remove(start: previousStart)
            block.size += previous.size
            start = previousStart
        }
        block.isFree = true
        insert(start: start, block)
        return size
    }

    /// Gives the segments that are wholly free back to the system; returns their bytes.
    @discardableResult
    public mutating func releaseFreeSegments() -> Int {
        let whole = segmentSizes.filter { base, size in blocks[base].map { $0.isFree && $0.size == size } ?? false }
        for (base, size) in whole {
            remove(start: base)
            segmentSizes[base] = nil
            munmap(UnsafeMutableRawPointer(bitPattern: base), size)
        }
        return whole.values.reduce(0, +)
    }

    /// A segment of `size` bytes (a multiple of the page size) mapped straight from the kernel and
    /// left out of forked children (`MADV_DONTFORK`). zoo forks to read HDF5 files in a sandbox
    /// (`ZooWeights`' `HDF5Sandbox`), and the child never touches tensors; copying the page tables
    /// of touched memory cost this machine 46 ms per GiB per fork (the test process, holding a few
    /// GiB of pooled tensors, took 151 s for the mutation tests' 1,320 damaged HDF5 files; 92 s
    /// with this, the rest being malloc's memory; 12 s in a process of their own).
    private static func mapSegment(_ size: Int) -> UInt {
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), base != MAP_FAILED else {
            fatalError("zoo: out of memory mapping \(size) bytes for tensors")
        }
        #if os(Linux)
        madvise(base, size, MADV_DONTFORK)
        #endif
        return UInt(bitPattern: base)
    }

    private mutating func insert(start: UInt, _ block: Block) {
        blocks[start] = block
        startByEnd[start + UInt(block.size)] = start
        if block.isFree {
            freeStarts.insert(start)
            freeBytes += block.size
        }
    }

    private mutating func remove(start: UInt) {
        guard let block = blocks.removeValue(forKey: start) else { return }
        startByEnd[start + UInt(block.size)] = nil
        if block.isFree {
            freeStarts.remove(start)
            freeBytes -= block.size
        }
    }
}
