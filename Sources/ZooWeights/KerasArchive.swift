import Foundation

/// Reads `.keras` archives: `config.json` and `metadata.json` give the model configuration and
/// Keras version; the weights come from `model.weights.h5` (handed to libhdf5 in place, without
/// copying, when the entry is stored) or `model.weights.npz`. Every entry is checked against its
/// CRC-32 before its values are used; a stored `model.weights.h5` only when the first tensor is
/// read, so that listing a large archive does not read all of it.
enum KerasArchive {
    static func matches(_ archive: ZipArchive) -> Bool {
        archive.entry(named: "model.weights.h5") != nil || archive.entry(named: "model.weights.npz") != nil
    }

    static func open(_ archive: ZipArchive, url: URL) throws -> any WeightReader {
        var metadata = WeightMetadata()
        if let entry = archive.entry(named: "metadata.json") {
            let data = try archive.contents(of: entry)
            let json = try withContext("metadata.json") { try JSONParser.parse(data.raw) }
            if let version = json["keras_version"]?.string { metadata.writerVersions["keras_version"] = version }
            if let date = json["date_saved"]?.string { metadata.extra["date_saved"] = date }
        }
        if let entry = archive.entry(named: "config.json") {
            let data = try archive.contents(of: entry)
            guard let text = String(validating: data.array, as: UTF8.self) else {
                throw ParseError.malformed("config.json is not UTF-8 text")
            }
            metadata.kerasModelConfig = text
        }
        if let entry = archive.entry(named: "model.weights.h5") {
            return try withContext("model.weights.h5") {
                guard entry.isStored else {
                    let image = try archive.contents(of: entry)
                    return try KerasHDF5.open(path: nil, bytes: image, url: url, archiveMetadata: metadata)
                }
                // libhdf5 in the sandbox survives damaged structure; damaged tensor data is
                // what the CRC-32 is for, and it is checked before any tensor is read.
                let image = try archive.uncheckedStoredBytes(of: entry)
                return try KerasHDF5.open(
                    path: nil, bytes: image, url: url, archiveMetadata: metadata,
                    checkBeforeReading: { try archive.verify(entry) })
            }
        }
        if let entry = archive.entry(named: "model.weights.npz") {
            return try withContext("model.weights.npz") {
                let inner = try ZipArchive(bytes: try archive.contents(of: entry))
                return try NPZReader(archive: inner, url: url, format: .kerasArchive, metadata: metadata)
            }
        }
        throw ParseError.malformed(".keras archive has neither model.weights.h5 nor model.weights.npz")
    }
}
