import Foundation

/// A Keras HDF5 file (legacy `.h5`, Keras 3 `.weights.h5`, or the weights of a `.keras`
/// archive), listed by the sandbox. Reading a tensor takes contiguous data straight from the
/// mapped file, with bounds checks; libhdf5 is not involved.
final class HDF5Reader: WeightReader {
    let url: URL
    let format: WeightFormat
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let bytes: Bytes
    private let entries: [String: HDF5Listing.Tensor]
    /// Runs before every tensor read: the CRC-32 check of the zip entry that holds the HDF5
    /// (once; later calls repeat its outcome). Nil for a plain HDF5 file, which has no checksum.
    private let checkBeforeReading: (@Sendable () throws -> Void)?

    init(
        listing: HDF5Listing, bytes: Bytes, url: URL, checkBeforeReading: (@Sendable () throws -> Void)? = nil
    ) throws {
        var entries: [String: HDF5Listing.Tensor] = [:]
        for tensor in listing.tensors {
            guard entries.updateValue(tensor, forKey: tensor.info.name) == nil else {
                throw ParseError(.duplicateName, "two tensors are named \(quoted(tensor.info.name))")
            }
        }
        self.url = url
        self.format = listing.format
        self.metadata = listing.metadata
        self.tensors = listing.tensors.map(\.info)
        self.bytes = bytes
        self.entries = entries
        self.checkBeforeReading = checkBeforeReading
    }

    func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    func floats(_ name: String) throws -> [Float] {
        guard let tensor = entries[name] else {
            throw WeightFileError(path: url.path, kind: .missingTensor, message: "no tensor named \(quoted(name))")
        }
        return try locatingErrors(at: url.path) {
            try checkBeforeReading?()
            return try withContext("dataset \(quoted(tensor.datasetPath))") {
                let count = tensor.info.elementCount
                guard let byteCount = Checked.multiply(count, tensor.info.dtype.byteSize) else {
                    throw ParseError.malformed("shape \(tensor.info.shape) is impossibly large")
                }
                switch tensor.source {
                case .contiguous(let offset):
                    let data = try bytes.slice(offset, byteCount, "data")
                    return try ElementConversion.floats(data.raw, dtype: tensor.info.dtype, count: count, bigEndian: tensor.bigEndian)
                case .inline(let data):
                    return try data.withUnsafeBytes { raw in
                        try ElementConversion.floats(raw, dtype: tensor.info.dtype, count: count, bigEndian: tensor.bigEndian)
                    }
                }
            }
        }
    }
}

/// Lists any Keras HDF5 weights file, legacy or Keras 3, inside the sandbox child.
enum KerasHDF5 {
    /// Opens the HDF5 weights in `bytes` (the file at `path`, or an in-memory image when nil).
    static func open(
        path: String?, bytes: Bytes, url: URL, archiveMetadata: WeightMetadata? = nil,
        checkBeforeReading: (@Sendable () throws -> Void)? = nil
    ) throws -> any WeightReader {
        let listing = try HDF5Sandbox.list(path: path, bytes: bytes) { file in
            if let archiveMetadata {
                return try Keras3Layout.list(file, format: .kerasArchive, metadata: archiveMetadata)
            }
            if KerasH5Layout.matches(file) {
                return try KerasH5Layout.list(file)
            }
            if FeatureH5Layout.matches(file) {
                return try FeatureH5Layout.list(file)
            }
            if Keras3Layout.matches(file) {
                return try Keras3Layout.list(file, format: .kerasWeightsH5, metadata: WeightMetadata())
            }
            throw ParseError(
                .unrecognizedFormat,
                "HDF5 file is not Keras weights: no layer_names attribute (legacy Keras) and no layers or vars group (Keras 3)")
        }
        return try HDF5Reader(listing: listing, bytes: bytes, url: url, checkBeforeReading: checkBeforeReading)
    }
}
