import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that other processes see either the old file or the complete new one,
/// never a half-written file: the bytes go to a temporary file in the destination's folder,
/// which is flushed to disk and then renamed over the destination. A crash or kill at any
/// point leaves the old file intact (and at worst a stray `.<name>.tmp-*` file).
public enum AtomicFile {
    /// Writes `data` to `url` atomically.
    public static func write(_ data: Data, to url: URL) throws {
        try write(to: url) { sink in try data.withUnsafeBytes { try sink.write($0) } }
    }

    static func write(to url: URL, _ produce: (inout FileSink) throws -> Void) throws {
        let destination = url.path
        let folder = url.deletingLastPathComponent().path
        let temporary = "\(folder)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw WeightFileError(
                path: destination, kind: .io,
                message: "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
        }
        var sink = FileSink(descriptor: descriptor, path: destination)
        var closed = false
        do {
            try produce(&sink)
            try sink.flush()
            guard fsync(descriptor) == 0 else { throw sink.failure("fsync") }
            closed = true
            guard close(descriptor) == 0 else { throw sink.failure("close") }
            guard rename(temporary, destination) == 0 else { throw sink.failure("rename") }
        } catch {
            if !closed { close(descriptor) }
            unlink(temporary)
            throw error
        }
        // Make the rename itself durable.
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }
}

/// A buffered writer on a file descriptor, used by `AtomicFile`.
struct FileSink {
    let descriptor: Int32
    let path: String
    private(set) var bytesWritten = 0
    private var buffer: [UInt8] = []
    private static let bufferLimit = 1 << 20

    init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
        buffer.reserveCapacity(Self.bufferLimit)
    }

    mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    mutating func write(_ string: String) throws {
        try write(Array(string.utf8))
    }

    mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += bytes.count
        if buffer.count + bytes.count <= Self.bufferLimit {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        try writeFully(bytes)
    }

    /// Writes `count` zero bytes.
    mutating func writeZeros(_ count: Int) throws {
        try write([UInt8](repeating: 0, count: count))
    }

    mutating func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeFully($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let written = systemWrite(descriptor, base + done, bytes.count - done)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw failure("write") }
            done += written
        }
    }

    func failure(_ operation: String) -> WeightFileError {
        WeightFileError(path: path, kind: .io, message: "\(operation) failed: \(String(cString: strerror(errno)))")
    }
}

private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(descriptor, bytes, count)
    #else
    Darwin.write(descriptor, bytes, count)
    #endif
}
