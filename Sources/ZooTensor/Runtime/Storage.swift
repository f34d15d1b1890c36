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

/// Reuses freed tensor buffers by size.
///
/// Training repeats the same shapes every step; handing a step the buffers the previous step
/// freed avoids fresh pages from the kernel (first-touch page faults cost as much as a small
/// convolution). Buffers are kept up to a byte limit (`ZOO_POOL_LIMIT_MB`, default a quarter of
/// physical memory); beyond it they go back to the system.
final class BufferPool: @unchecked Sendable {
    static let shared = BufferPool()

    private struct State {
        /// Freed buffers by size class, as addresses (pointers are not Sendable).
        var free: [Int: [UInt]] = [:]
        var cachedBytes = 0
        var liveBytes = 0
        var peakLiveBytes = 0
    }

    private let state = Mutex(State())
    private let limit: Int

    private init() {
        if let text = ProcessInfo.processInfo.environment["ZOO_POOL_LIMIT_MB"], let mb = Int(text), mb >= 0 {
            limit = mb << 20
        } else {
            limit = Int(ProcessInfo.processInfo.physicalMemory / 4)
        }
    }

    /// Rounds a request up to the size class it is pooled under.
    private static func sizeClass(_ byteCount: Int) -> Int {
        let granule = byteCount >= 1 << 16 ? 4096 : 64
        return max(granule, (byteCount + granule - 1) / granule * granule)
    }

    func take(byteCount: Int) -> UnsafeMutableRawPointer {
        let size = Self.sizeClass(byteCount)
        let reused: UInt? = state.withLock { s in
            s.liveBytes += size
            s.peakLiveBytes = max(s.peakLiveBytes, s.liveBytes)
            guard let address = s.free[size]?.popLast() else { return nil }
            s.cachedBytes -= size
            return address
        }
        if let reused, let pointer = UnsafeMutableRawPointer(bitPattern: reused) { return pointer }
        var pointer: UnsafeMutableRawPointer?
        guard posix_memalign(&pointer, 64, size) == 0, let pointer else {
            fatalError("zoo: out of memory allocating \(size) bytes for a tensor")
        }
        return pointer
    }

    func give(_ pointer: UnsafeMutableRawPointer, byteCount: Int) {
        let size = Self.sizeClass(byteCount)
        let address = UInt(bitPattern: pointer)
        let keep: Bool = state.withLock { s in
            s.liveBytes -= size
            guard s.cachedBytes + size <= limit else { return false }
            s.free[size, default: []].append(address)
            s.cachedBytes += size
            return true
        }
        if !keep { free(pointer) }
    }

    var stats: MemoryStats {
        state.withLock { MemoryStats(liveBytes: $0.liveBytes, peakLiveBytes: $0.peakLiveBytes, cachedBytes: $0.cachedBytes) }
    }

    func resetPeak() { state.withLock { $0.peakLiveBytes = $0.liveBytes } }

    func releaseCache() {
        let buffers: [UInt] = state.withLock { s in
            let all = s.free.values.flatMap { $0 }
            s.free.removeAll()
            s.cachedBytes = 0
            return all
        }
        buffers.forEach { free(UnsafeMutableRawPointer(bitPattern: $0)) }
    }
}
