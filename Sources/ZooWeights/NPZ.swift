import Foundation

/// Reading and writing NumPy `.npz` archives: a zip of `<name>.npy` arrays.
public enum NPZFile {
    /// Writes float32 arrays as `<name>.npy` entries, in order, stored or deflate-compressed
    /// (`np.savez` / `np.savez_compressed`), atomically. Names must be unique.
    public static func write(
        _ arrays: [(name: String, shape: [Int], values: [Float])], compressed: Bool, to url: URL
    ) throws {
        var names = Set<String>()
        for array in arrays where !names.insert(array.name).inserted {
            throw WeightFileError(path: url.path, kind: .duplicateName, message: "two arrays are named \(quoted(array.name))")
        }
        try AtomicFile.write(to: url) { sink in
            var zip = ZipWriter(path: url.path)
            for array in arrays {
                let data = try NPYFile.encode(array.values, shape: array.shape, path: url.path)
                try data.withUnsafeBytes { raw in
                    try zip.add(name: array.name + ".npy", data: raw, compress: compressed, to: &sink)
                }
            }
            try zip.finish(to: &sink)
        }
    }
}

/// An `.npz` archive opened for reading: each `<name>.npy` entry is a tensor called `<name>`.
/// Only headers are read when opening; compressed entries are inflated when a tensor is read.
final class NPZReader: WeightReader {
    let url: URL
    let format: WeightFormat
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let archive: ZipArchive
    private let arrays: [String: (entry: ZipEntry, header: NPYFile.Header)]

    init(archive: ZipArchive, url: URL, format: WeightFormat = .npz, metadata: WeightMetadata = WeightMetadata()) throws {
        var arrays: [String: (entry: ZipEntry, header: NPYFile.Header)] = [:]
        var tensors: [TensorInfo] = []
        var versions = Set<String>()
        for entry in archive.entries where entry.name.hasSuffix(".npy") {
            let name = String(entry.name.dropLast(4))
            let header = try withContext("array \(quoted(name))") { () throws -> NPYFile.Header in
                let start = try archive.prefix(of: entry, count: 12)
                let extent = try NPYFile.headerExtent(start)
                let header = try NPYFile.parseHeader(try archive.prefix(of: entry, count: extent))
                try NPYFile.checkSize(header, total: entry.uncompressedSize)
                return header
            }
            guard arrays[name] == nil else { throw ParseError(.duplicateName, "two arrays are named \(quoted(name))") }
            arrays[name] = (entry, header)
            tensors.append(TensorInfo(name: name, dtype: header.dtype, shape: header.shape))
            versions.insert(header.version)
        }
        self.url = url
        self.format = format
        self.archive = archive
        self.arrays = arrays
        self.tensors = tensors
        var metadata = metadata
        if !versions.isEmpty { metadata.writerVersions["npy format version"] = versions.sorted().joined(separator: ", ") }
        self.metadata = metadata
    }

    func info(_ name: String) -> TensorInfo? {
        guard let array = arrays[name] else { return nil }
        return TensorInfo(name: name, dtype: array.header.dtype, shape: array.header.shape)
    }

    func floats(_ name: String) throws -> [Float] {
        guard let array = arrays[name] else {
            throw WeightFileError(path: url.path, kind: .missingTensor, message: "no tensor named \(quoted(name))")
        }
        return try locatingErrors(at: url.path) {
            try withContext("array \(quoted(name))") {
                let data = try archive.contents(of: array.entry)
                return try NPYFile.floats(data, header: array.header)
            }
        }
    }
}
