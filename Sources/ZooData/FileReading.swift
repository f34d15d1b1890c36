import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads, memory maps and folder listings with POSIX calls: faster than Foundation's
/// for many small files, and every failure is a ``DataError`` that names the path.
enum FileReading {
    /// The text of `errno` (e.g. "No such file or directory").
    static func systemError(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    /// The bytes of the file at `path`.
    static func bytes(atPath path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataError(path, "cannot open: \(systemError())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw DataError(path, "cannot stat: \(systemError())") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw DataError(path, "not a regular file") }
        let size = Int(status.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            initialized = 0
            // Reads until the size seen by fstat or the end of the file, whichever comes first.
            while initialized < size {
                let count = read(descriptor, buffer.baseAddress! + initialized, size - initialized)
                if count < 0 && errno == EINTR { continue }
                if count < 0 { failure = errno }
                guard count > 0 else { break }
                initialized += count
            }
        }
        if failure != 0 { throw DataError(path, "cannot read: \(systemError(failure))") }
        return bytes
    }

    /// What a folder entry is, as far as a listing needs to know.
    enum EntryKind {
        case file, folder, other
    }

    /// The entries of the folder at `path` (without `.` and `..`), unsorted. The kind comes from
    /// the listing itself where the file system reports it; only symbolic links and entries of
    /// unknown kind cost a `stat` (links are followed).
    static func entries(ofFolder path: String) throws -> [(name: String, kind: EntryKind)] {
        guard let folder = opendir(path) else { throw DataError(path, "cannot read the folder: \(systemError())") }
        defer { closedir(folder) }
        var result: [(name: String, kind: EntryKind)] = []
        while true {
            errno = 0
            guard let entry = readdir(folder) else {
                if errno != 0 { throw DataError(path, "cannot read the folder: \(systemError())") }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(validatingCString: $0) ?? String(cString: $0)
                }
            }
            if name == "." || name == ".." { continue }
            let kind: EntryKind
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_REG): kind = .file
            case Int32(DT_DIR): kind = .folder
            case Int32(DT_LNK), Int32(DT_UNKNOWN): kind = self.kind(ofPath: path + "/" + name)
            default: kind = .other
            }
            result.append((name, kind))
        }
        return result
    }

    /// The kind of the file at `path`, following symbolic links; `nil` if it does not exist.
    static func kind(ofPath path: String) -> EntryKind {
        var status = stat()
        guard stat(path, &status) == 0 else { return .other }
        switch status.st_mode & S_IFMT {
        case S_IFREG: return .file
        case S_IFDIR: return .folder
        default: return .other
        }
    }

    /// True when a regular file (or a link to one) is at `path`.
    static func isFile(_ path: String) -> Bool { kind(ofPath: path) == .file }

    /// True when a folder (or a link to one) is at `path`.
    static func isFolder(_ path: String) -> Bool { kind(ofPath: path) == .folder }
}

/// A read-only memory map of a whole file, unmapped when the last reference goes.
///
/// The map is fixed at its size when opened; a file cut shorter afterwards by another process
/// would fault on access, as with any memory-mapped reader.
final class MappedFile: @unchecked Sendable {
    /// The file's path, for error messages.
    let path: String
    /// The mapped bytes (empty for an empty file).
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw DataError(path, "cannot open: \(FileReading.systemError())") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw DataError(path, "cannot stat: \(FileReading.systemError())") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw DataError(path, "not a regular file") }
        let size = Int(status.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
        guard let address, address != MAP_FAILED else {
            throw DataError(path, "cannot map \(size) bytes: \(FileReading.systemError())")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
