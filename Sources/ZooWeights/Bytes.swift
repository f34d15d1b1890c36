import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Immutable bytes that stay put in memory: a read-only map of a file, or an owned copy.
///
/// Weight files are mapped rather than read so that opening a 500 MB file costs page faults
/// only for the headers; tensor data is touched when a tensor is read.
final class ByteStorage: @unchecked Sendable {
    // @unchecked: the memory is never written after `init`, and is released only in `deinit`.
    let base: UnsafeRawPointer?
    let count: Int
    private let ownership: Ownership

    private enum Ownership {
        case mapped
        case allocated
        case none
    }

    private init(base: UnsafeRawPointer?, count: Int, ownership: Ownership) {
        self.base = base
        self.count = count
        self.ownership = ownership
    }

    /// Copies `bytes` into storage of its own.
    convenience init<C: Collection<UInt8>>(copying bytes: C) {
        let count = bytes.count
        guard count > 0 else {
            self.init(base: nil, count: 0, ownership: .none)
            return
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 16)
        let buffer = UnsafeMutableRawBufferPointer(start: memory, count: count)
        buffer.copyBytes(from: bytes)
        self.init(base: UnsafeRawPointer(memory), count: count, ownership: .allocated)
    }

    /// Takes ownership of memory allocated with `UnsafeMutableRawPointer.allocate`.
    convenience init(adopting memory: UnsafeMutableRawPointer, count: Int) {
        self.init(base: UnsafeRawPointer(memory), count: count, ownership: .allocated)
    }

    /// Maps the file at `path` read-only, or reads it when it cannot be mapped.
    static func map(fileAt path: String) throws -> ByteStorage {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ParseError(.io, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ParseError(.io, "cannot stat: \(String(cString: strerror(errno)))")
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw ParseError(.io, "is a directory, not a weight file")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw ParseError(.io, "is not a regular file")
        }
        let size = Int(status.st_size)
        if size == 0 {
            return ByteStorage(base: nil, count: 0, ownership: .none)
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        if let address, address != MAP_FAILED {
            return ByteStorage(base: UnsafeRawPointer(address), count: size, ownership: .mapped)
        }
        // Some file systems cannot map; fall back to reading the whole file.
        let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        var done = 0
        while done < size {
            let got = pread(descriptor, memory + done, size - done, off_t(done))
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                memory.deallocate()
                throw ParseError(.io, "read failed after \(done) of \(size) bytes")
            }
            done += got
        }
        return ByteStorage(base: UnsafeRawPointer(memory), count: size, ownership: .allocated)
    }

    deinit {
        guard let base else { return }
        switch ownership {
        case .mapped: munmap(UnsafeMutableRawPointer(mutating: base), count)
        case .allocated: UnsafeMutableRawPointer(mutating: base).deallocate()
        case .none: break
        }
    }
}

/// A bounds-checked, read-only window on a `ByteStorage`. Every read that would leave the
/// window throws instead of trapping, so parsers can follow offsets taken from a file safely.
struct Bytes: Sendable {
    let storage: ByteStorage
    let start: Int
    let count: Int

    init(_ storage: ByteStorage) {
        self.storage = storage
        self.start = 0
        self.count = storage.count
    }

    /// Bytes owned by a fresh storage.
    init<C: Collection<UInt8>>(copying bytes: C) {
        self.init(ByteStorage(copying: bytes))
    }

    private init(storage: ByteStorage, start: Int, count: Int) {
        self.storage = storage
        self.start = start
        self.count = count
    }

    /// The memory of this window; valid while `self` (and so its storage) is alive.
    var raw: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base.map { $0 + start }, count: count)
    }

    /// True when `length` bytes starting at `offset` lie inside the window.
    func contains(offset: Int, length: Int) -> Bool {
        offset >= 0 && length >= 0 && offset <= count && length <= count - offset
    }

    /// The sub-window of `length` bytes at `offset`; `what` names the structure for the error.
    func slice(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws -> Bytes {
        guard contains(offset: offset, length: length) else {
            throw truncation(offset, length, what())
        }
        return Bytes(storage: storage, start: start + offset, count: length)
    }

    /// The sub-window from `offset` to the end.
    func suffix(from offset: Int, _ what: @autoclosure () -> String) throws -> Bytes {
        guard offset >= 0, offset <= count else { throw truncation(offset, 0, what()) }
        return Bytes(storage: storage, start: start + offset, count: count - offset)
    }

    func truncation(_ offset: Int, _ length: Int, _ what: String) -> ParseError {
        if offset < 0 || length < 0 {
            return .malformed("\(what): negative offset or length (\(offset), \(length))")
        }
        if offset > count {
            return .malformed("\(what) at offset \(offset) lies past the end (\(count) bytes)")
        }
        return .truncated(
            "truncated: \(what) needs \(length) bytes at offset \(offset) but only \(count - offset) remain")
    }

    func uint8(at offset: Int, _ what: @autoclosure () -> String = "byte") throws -> UInt8 {
        guard contains(offset: offset, length: 1) else { throw truncation(offset, 1, what()) }
        return raw.load(fromByteOffset: offset, as: UInt8.self)
    }

    func uint16(at offset: Int, _ what: @autoclosure () -> String = "16-bit field") throws -> UInt16 {
        guard contains(offset: offset, length: 2) else { throw truncation(offset, 2, what()) }
        return UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    func uint32(at offset: Int, _ what: @autoclosure () -> String = "32-bit field") throws -> UInt32 {
        guard contains(offset: offset, length: 4) else { throw truncation(offset, 4, what()) }
        return UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    func uint64(at offset: Int, _ what: @autoclosure () -> String = "64-bit field") throws -> UInt64 {
        guard contains(offset: offset, length: 8) else { throw truncation(offset, 8, what()) }
        return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A copy of `length` bytes at `offset`.
    func array(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws -> [UInt8] {
        guard contains(offset: offset, length: length) else { throw truncation(offset, length, what()) }
        return [UInt8](UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
    }

    /// All bytes, copied.
    var array: [UInt8] { [UInt8](raw) }

    /// True when the window starts with `prefix`.
    func starts(with prefix: [UInt8]) -> Bool {
        guard prefix.count <= count else { return false }
        for (index, byte) in prefix.enumerated() where raw[index] != byte { return false }
        return true
    }
}

/// Overflow-checked arithmetic on sizes taken from files.
enum Checked {
    /// `a * b`, or nil on overflow or when either is negative.
    static func multiply(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? nil : product
    }

    /// `a + b`, or nil on overflow or when either is negative.
    static func add(_ a: Int, _ b: Int) -> Int? {
        guard a >= 0, b >= 0 else { return nil }
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? nil : sum
    }

    /// The product of `dimensions`, or nil on overflow or a negative dimension.
    static func elementCount(_ dimensions: [Int]) -> Int? {
        var count = 1
        for dimension in dimensions {
            guard let product = multiply(count, dimension) else { return nil }
            count = product
        }
        return count
    }

    /// A `UInt64` from a file as `Int`, or nil when it does not fit.
    static func int(_ value: UInt64) -> Int? {
        value <= UInt64(Int.max) ? Int(value) : nil
    }
}
