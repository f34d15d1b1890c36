import CZooCatalogFiles
import Foundation

/// The files of the catalog folder built into the library by `CZooCatalogFiles` (C23 `#embed`,
/// listed by `scripts/embed-catalog`): the manifests, class lists, bundled weights and demo
/// samples. They are in the binary itself, so a `zoo` copied away from its source tree still
/// has them; SwiftPM resources would sit in a folder beside the binary that a copy leaves behind.
enum EmbeddedFiles {
    /// Bytes in the binary's read-only data, valid for the whole run.
    struct Bytes: @unchecked Sendable {
        let buffer: UnsafeRawBufferPointer
    }

    /// Every built-in file by its path inside `zoo/`.
    static let byPath: [String: Bytes] = {
        var files: [String: Bytes] = [:]
        for index in 0..<zoo_catalog_file_count() {
            guard let file = zoo_catalog_file_at(index)?.pointee else { continue }
            files[String(cString: file.path)] = Bytes(buffer: UnsafeRawBufferPointer(start: file.bytes, count: file.count))
        }
        return files
    }()

    /// The built-in file at `path` (inside `zoo/`).
    static func bytes(_ path: String) -> UnsafeRawBufferPointer? { byPath[path]?.buffer }

    /// The built-in file at `path` as UTF-8 text.
    static func text(_ path: String) -> String? { bytes(path).map { String(decoding: $0, as: UTF8.self) } }

    /// The paths of the built-in files under `folder` (`samples/cifar15`), sorted.
    static func paths(under folder: String) -> [String] {
        let prefix = folder.hasSuffix("/") ? folder : folder + "/"
        return byPath.keys.filter { $0.hasPrefix(prefix) }.sorted()
    }
}

extension Catalog {
    /// The paths (inside `zoo/`) of every file built into the library, sorted.
    public static var builtInPaths: [String] { EmbeddedFiles.byPath.keys.sorted() }

    /// A copy of the built-in file at `path` (inside `zoo/`), or `nil` if there is none.
    public static func builtInContents(of path: String) -> Data? { EmbeddedFiles.bytes(path).map { Data($0) } }

    /// Where extracted copies of built-in files live: `catalog/` in the weight cache.
    static func extractionFolder(_ cache: WeightCache) -> URL { cache.root.appendingPathComponent("catalog") }

    /// The built-in bundled file of `set`, checked against its checksum and written to
    /// `catalog/<digest>/<file>` in the cache (once: a later call finds it and checks it again).
    static func extractBundledFile(_ set: WeightSet, path: String, cache: WeightCache) throws -> URL {
        guard let bytes = EmbeddedFiles.bytes(path) else { throw CatalogError.bundledFileMissing(weightSet: set.name, path: path) }
        try set.verify(bytes, path: "zoo's built-in \(path)")
        let key = String(FileDigest.hexadecimal(.sha256, of: bytes).prefix(16))
        let file = extractionFolder(cache).appendingPathComponent(key).appendingPathComponent(set.file)
        if FileManager.default.fileExists(atPath: file.path), (try? set.verify(file)) != nil { return file }
        do {
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            // Written to a temporary file and renamed, so no reader sees half a file.
            try Data(bytes).write(to: file, options: .atomic)
        } catch {
            throw CatalogError.unwritable(path: file.path, reason: "\(error.localizedDescription)")
        }
        try set.verify(file)
        return file
    }

    /// The built-in folder `folder` (`samples/cifar15`) written out under
    /// `catalog/<name>-<digest>/` in the cache. The digest covers every path and byte, so a
    /// binary with other files gets another folder; the folder is written whole under a
    /// temporary name and renamed, so it is either complete or absent.
    static func extractFolder(_ folder: String, cache: WeightCache) throws -> URL? {
        let paths = EmbeddedFiles.paths(under: folder)
        guard !paths.isEmpty else { return nil }
        var digest = FileDigest(.sha256)
        for path in paths {
            guard let bytes = EmbeddedFiles.bytes(path) else { continue }
            digest.update(Array(path.utf8) + [0] + withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) })
            digest.update(bytes)
        }
        let name = (folder as NSString).lastPathComponent + "-" + digest.hexadecimal().prefix(16)
        let root = extractionFolder(cache)
        let destination = root.appendingPathComponent(name, isDirectory: true)
        let manager = FileManager.default
        if manager.fileExists(atPath: destination.path) { return destination }
        let temporary = root.appendingPathComponent(".\(name).\(UUID().uuidString).partial", isDirectory: true)
        do {
            for path in paths {
                guard let bytes = EmbeddedFiles.bytes(path) else { continue }
                let file = temporary.appendingPathComponent(String(path.dropFirst(folder.count + 1)))
                try manager.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try Data(bytes).write(to: file)
            }
        } catch {
            try? manager.removeItem(at: temporary)
            throw CatalogError.unwritable(path: temporary.path, reason: "\(error.localizedDescription)")
        }
        do {
            try manager.moveItem(at: temporary, to: destination)
        } catch {
            try? manager.removeItem(at: temporary)
            // Another process may have put the same folder there first.
            guard manager.fileExists(atPath: destination.path) else {
                throw CatalogError.unwritable(path: destination.path, reason: "\(error.localizedDescription)")
            }
        }
        return destination
    }
}
