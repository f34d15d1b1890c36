import Foundation

/// Opens weight files of every supported format behind one ``WeightReader`` interface.
public enum WeightFiles {
    /// Opens the file at `url`, detecting its format from its content (extension only breaks ties).
    ///
    /// Opening reads headers only; a large file is memory-mapped, and its tensor data is read
    /// when ``WeightReader/floats(_:)`` asks for it. Throws ``WeightFileError`` naming the file
    /// and what is wrong with it.
    public static func open(_ url: URL) throws -> any WeightReader {
        try locatingErrors(at: url.path) {
            let storage = try ByteStorage.map(fileAt: url.path)
            return try open(bytes: Bytes(storage), url: url, onDisk: true)
        }
    }

    /// Detects the format of the file at `url` the way ``open(_:)`` does, without listing it.
    public static func format(of url: URL) throws -> WeightFormat {
        try open(url).format
    }

    /// Opens bytes held in memory as if they were the file at `url` (used by the fuzzer and by
    /// tests that mutate files). HDF5 content is opened from memory too.
    static func open(bytes: Bytes, url: URL, onDisk: Bool = false) throws -> any WeightReader {
        let fileExtension = url.pathExtension.lowercased()
        guard bytes.count > 0 else {
            throw ParseError.truncated("truncated: the file is empty")
        }
        if bytes.starts(with: HDF5Signature.bytes) {
            return try openHDF5(bytes, url: url, onDisk: onDisk)
        }
        if ZipArchive.looksLikeZip(bytes) {
            return try openZip(bytes, url: url, fileExtension: fileExtension)
        }
        if NPYFile.looksLikeNPY(bytes) {
            return try NPYReader(bytes: bytes, url: url)
        }
        if TorchReader.looksLikeLegacy(bytes) {
            return try TorchReader.openLegacy(bytes, url: url)
        }
        if SafetensorsFile.looksLikeSafetensors(bytes) {
            return try SafetensorsReader(bytes: bytes, url: url)
        }
        // Nothing matched: let the extension pick the parser whose error says most.
        switch fileExtension {
        case "safetensors":
            return try SafetensorsReader(bytes: bytes, url: url)
        case "npy":
            return try NPYReader(bytes: bytes, url: url)
        case "h5", "hdf5", "keras":
            throw ParseError.malformed("bad magic: a .\(fileExtension) file should start with the HDF5 or zip signature")
        case "npz":
            throw ParseError.malformed("bad magic: an .npz file should start with the zip signature PK\\x03\\x04")
        default:
            break
        }
        if bytes.count >= 262, (try? bytes.array(257, 5, "tar magic")) == Array("ustar".utf8) {
            throw ParseError.unsupported("this is a tar archive (the torch.save format of PyTorch before 0.4), which zoo does not read")
        }
        if (try? bytes.uint8(at: 0)) == 0x80 {
            throw ParseError.unsupported("this is a pickle but not a torch.save file (no torch magic number)")
        }
        let head = (try? bytes.array(0, min(bytes.count, 8), "head")) ?? []
        throw ParseError(
            .unrecognizedFormat,
            "unrecognized format (first bytes \(head.map { String(format: "%02x", $0) }.joined(separator: " "))): expected Keras HDF5, .keras, torch.save, safetensors, .npy or .npz")
    }

    private static func openHDF5(_ bytes: Bytes, url: URL, onDisk: Bool) throws -> any WeightReader {
        try KerasHDF5.open(path: onDisk ? url.path : nil, bytes: bytes, url: url)
    }

    private static func openZip(_ bytes: Bytes, url: URL, fileExtension: String) throws -> any WeightReader {
        let archive = try ZipArchive(bytes: bytes)
        if (try? TorchReader.findDataPickle(archive)) != nil {
            return try TorchReader.openZip(archive, url: url)
        }
        if KerasArchive.matches(archive) {
            return try KerasArchive.open(archive, url: url)
        }
        let files = archive.entries.filter { !$0.name.hasSuffix("/") }
        if files.allSatisfy({ $0.name.hasSuffix(".npy") }) && (!files.isEmpty || fileExtension == "npz") {
            return try NPZReader(archive: archive, url: url)
        }
        switch fileExtension {
        case "npz": return try NPZReader(archive: archive, url: url)
        case "pt", "pth", "bin", "ckpt", "tar": return try TorchReader.openZip(archive, url: url)
        case "keras": return try KerasArchive.open(archive, url: url)
        default: break
        }
        let sample = files.prefix(5).map { quoted($0.name, limit: 60) }.joined(separator: ", ")
        throw ParseError(
            .unrecognizedFormat,
            "zip archive is not a torch.save file (no data.pkl), a .keras archive (no model.weights.h5) or an .npz (entries \(sample)\(files.count > 5 ? ", ..." : ""))")
    }
}
