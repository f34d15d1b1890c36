import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a feature file says about how its features were made: enough to train on it, to
/// attach a head trained on it back onto the model, and to check that a resumed extraction
/// continues the same one.
public struct FeatureFileHeader: Codable, Sendable, Equatable {
    /// One extracted layer: its name and the shape of one sample's output (channels-last for
    /// feature maps, `[C]` for vectors).
    public struct Layer: Codable, Sendable, Equatable {
        public var name: String
        public var shape: [Int]

        public init(name: String, shape: [Int]) {
            self.name = name
            self.shape = shape
        }
    }

    public var architecture: String
    public var flavor: String
    /// The weights as given (a file, a weight set or a checkpoint).
    public var weights: String
    /// The input the images were resized to; nil for an array given as it was.
    public var imageSize: Int?
    public var preprocessing: String
    /// Where the images came from (data sources, or the input array).
    public var source: String
    public var batchSize: Int
    public var layers: [Layer]
    /// Class names that the labels index; empty for unlabelled input (labels are -1).
    public var classNames: [String]
    public var count: Int

    public init(architecture: String, flavor: String, weights: String, imageSize: Int?, preprocessing: String, source: String,
                batchSize: Int, layers: [Layer], classNames: [String], count: Int) {
        self.architecture = architecture
        self.flavor = flavor
        self.weights = weights
        self.imageSize = imageSize
        self.preprocessing = preprocessing
        self.source = source
        self.batchSize = batchSize
        self.layers = layers
        self.classNames = classNames
        self.count = count
    }
}

/// The file formats features are written in, chosen by the output's extension.
public enum FeatureFileFormat: String, Sendable {
    /// HDF5 (`.h5`, `.hdf5`): `features/<layer>` float32 `[N, ...]` (chunked), `labels` int64,
    /// `sample_ids` strings, and root attributes (`complete` 0 or 1, `class_names`, `zoo_header`).
    case hdf5
    /// NumPy (`.npy`): one layer's features; the labels in `<stem>.labels.npy` and the header,
    /// sample ids and completion in `<stem>.json`, written last.
    case npy
    /// safetensors: `features/<layer>` and `labels` tensors; the rest in `__metadata__`.
    case safetensors

    public init(_ url: URL) throws {
        switch url.pathExtension.lowercased() {
        case "h5", "hdf5": self = .hdf5
        case "npy": self = .npy
        case "safetensors": self = .safetensors
        default:
            throw WeightFileError(path: url.path, kind: .unsupported, message: "features are written as .h5, .npy or .safetensors, not .\(url.pathExtension)")
        }
    }
}

/// Names shared by the writer and the reader.
enum FeatureFileKeys {
    static let format = "zoo_format"
    static let formatValue = "zoo-features/1"
    static let complete = "complete"
    static let header = "zoo_header"
    static let classNames = "class_names"
    static let sampleIDs = "sample_ids"
    static let labels = "labels"
    static func tensor(_ layer: String) -> String { "features/\(layer)" }
    /// Sorted keys, so that the same extraction always writes the same bytes.
    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}

/// Writes a feature file a block of rows at a time, so that memory stays bounded and a killed
/// extraction can continue.
///
/// Until ``finish()`` everything lives beside the destination: the data in `<file>.partial`
/// (laid out in full when created, marked incomplete inside) and the progress in
/// `<file>.progress`, updated only after the rows it counts are flushed to disk. The
/// destination appears, complete, only at the end.
public final class FeatureFileWriter {
    public let url: URL
    public let format: FeatureFileFormat
    public let header: FeatureFileHeader
    /// Rows known to be on disk: an extraction continues from here.
    public private(set) var rowsDone: Int
    private let labels: [Int]
    private let sampleIDs: [String]
    private var hdf5: HDF5Writer?
    private var handle: FileHandle?
    /// Where each layer's rows start in the partial file (npy and safetensors).
    private var layerOffsets: [Int] = []

    private var partialURL: URL { URL(fileURLWithPath: url.path + ".partial") }
    private var progressURL: URL { URL(fileURLWithPath: url.path + ".progress") }

    private struct Progress: Codable {
        var header: FeatureFileHeader
        var rows: Int
    }

    /// Starts writing `url`, or continues an interrupted extraction of the same header there.
    ///
    /// Throws when `url` already exists, or when the unfinished extraction there was made with
    /// other settings (it names the difference).
    public init(url: URL, header: FeatureFileHeader, labels: [Int], sampleIDs: [String]) throws {
        self.url = url
        self.format = try FeatureFileFormat(url)
        self.header = header
        self.labels = labels
        self.sampleIDs = sampleIDs
        precondition(labels.count == header.count && sampleIDs.count == header.count)
        guard !FileManager.default.fileExists(atPath: url.path) else {
            throw WeightFileError(path: url.path, kind: .io, message: "already exists; delete it (or choose another --out) to extract again")
        }
        if format == .npy, header.layers.count != 1 {
            throw WeightFileError(path: url.path, kind: .unsupported,
                                  message: "a .npy file holds one array, but \(header.layers.count) layers were asked for; write .h5 or .safetensors")
        }
        for layer in header.layers where layer.name.contains("/") || layer.name.isEmpty {
            throw WeightFileError(path: url.path, kind: .malformed, message: "layer name \(quoted(layer.name)) cannot name a tensor")
        }
        rowsDone = 0
        if let data = try? Data(contentsOf: progressURL), let progress = try? JSONDecoder().decode(Progress.self, from: data),
           FileManager.default.fileExists(atPath: partialURL.path) {
            guard progress.header == header else {
                throw WeightFileError(path: url.path, kind: .io, message: "an unfinished extraction with other settings is in \(partialURL.lastPathComponent) ("
                    + Self.differences(progress.header, header) + "); run the same command again to finish it, or delete \(partialURL.lastPathComponent) and \(progressURL.lastPathComponent)")
            }
            try reopen()
            rowsDone = progress.rows
        } else {
            try create()
        }
    }

    private static func differences(_ old: FeatureFileHeader, _ new: FeatureFileHeader) -> String {
        let pairs: [(String, String, String)] = [
            ("model", old.architecture, new.architecture), ("flavor", old.flavor, new.flavor), ("weights", old.weights, new.weights),
            ("size", "\(old.imageSize.map(String.init) ?? "as given")", "\(new.imageSize.map(String.init) ?? "as given")"),
            ("preprocessing", old.preprocessing, new.preprocessing), ("data", old.source, new.source), ("batch", "\(old.batchSize)", "\(new.batchSize)"),
            ("layers", old.layers.map(\.name).joined(separator: ","), new.layers.map(\.name).joined(separator: ",")),
            ("samples", "\(old.count)", "\(new.count)"),
        ]
        let changed = pairs.filter { $0.1 != $0.2 }.map { "\($0.0) was \($0.1), now \($0.2)" }
        return changed.isEmpty ? "the same options, another data order or class list" : changed.joined(separator: "; ")
    }

    // MARK: Layout

    private var metadata: [String: String] {
        get throws {
            [FeatureFileKeys.format: FeatureFileKeys.formatValue,
             FeatureFileKeys.header: String(decoding: try FeatureFileKeys.encoder.encode(header), as: UTF8.self),
             FeatureFileKeys.classNames: String(decoding: try FeatureFileKeys.encoder.encode(header.classNames), as: UTF8.self),
             FeatureFileKeys.sampleIDs: String(decoding: try FeatureFileKeys.encoder.encode(sampleIDs), as: UTF8.self)]
        }
    }

    private var safetensorsPlans: [SafetensorsFile.Plan] {
        get throws {
            try header.layers.map { layer in
                try SafetensorsFile.Plan(name: FeatureFileKeys.tensor(layer.name), dtype: .f32, shape: [header.count] + layer.shape,
                                         byteCount: header.count * layer.shape.reduce(1, *) * 4, url: url)
            } + [SafetensorsFile.Plan(name: FeatureFileKeys.labels, dtype: .i64, shape: [header.count], byteCount: header.count * 8, url: url)]
        }
    }

    private func safetensorsHeader(complete: Bool, minimumLength: Int = 0) throws -> [UInt8] {
        var metadata = try metadata
        metadata[FeatureFileKeys.complete] = complete ? "true" : "false"
        return try SafetensorsFile.header(try safetensorsPlans, metadata: metadata, url: url, minimumLength: minimumLength)
    }

    private func create() throws {
        try? FileManager.default.removeItem(at: partialURL)
        try? FileManager.default.removeItem(at: progressURL)
        switch format {
        case .hdf5:
            let writer = try HDF5Writer.create(partialURL.path)
            for layer in header.layers {
                try writer.createRows(FeatureFileKeys.tensor(layer.name), shape: [header.count] + layer.shape)
            }
            try writer.writeIntegers(FeatureFileKeys.labels, labels.map(Int64.init))
            try writer.writeStrings(FeatureFileKeys.sampleIDs, sampleIDs)
            try writer.setAttribute(FeatureFileKeys.format, strings: [FeatureFileKeys.formatValue])
            try writer.setAttribute(FeatureFileKeys.header, strings: [String(decoding: try FeatureFileKeys.encoder.encode(header), as: UTF8.self)])
            try writer.setAttribute(FeatureFileKeys.classNames, strings: header.classNames.isEmpty ? [] : header.classNames)
            try writer.setAttribute(FeatureFileKeys.complete, integer: 0)
            try writer.flush()
            hdf5 = writer
        case .npy:
            let layer = header.layers[0]
            let prefix = NPYFile.header(descr: "<f4", shape: [header.count] + layer.shape)
            try createFile(prefix: prefix, dataBytes: header.count * layer.shape.reduce(1, *) * 4)
            layerOffsets = [prefix.count]
        case .safetensors:
            let prefix = try safetensorsHeader(complete: false)
            let plans = try safetensorsPlans
            var offset = prefix.count
            for plan in plans {
                layerOffsets.append(offset)
                offset += plan.byteCount
            }
            try createFile(prefix: prefix, dataBytes: offset - prefix.count)
            let labelBytes = labels.flatMap { withUnsafeBytes(of: Int64($0).littleEndian) { Array($0) } }
            try handle!.seek(toOffset: UInt64(layerOffsets.last!))
            try handle!.write(contentsOf: Data(labelBytes))
        }
    }

    private func createFile(prefix: [UInt8], dataBytes: Int) throws {
        guard FileManager.default.createFile(atPath: partialURL.path, contents: Data(prefix)),
              let handle = FileHandle(forUpdatingAtPath: partialURL.path) else {
            throw WeightFileError(path: partialURL.path, kind: .io, message: "cannot create the file")
        }
        try handle.truncate(atOffset: UInt64(prefix.count + dataBytes))
        self.handle = handle
    }

    private func reopen() throws {
        switch format {
        case .hdf5:
            hdf5 = try HDF5Writer.openForUpdate(partialURL.path)
        case .npy, .safetensors:
            guard let handle = FileHandle(forUpdatingAtPath: partialURL.path) else {
                throw WeightFileError(path: partialURL.path, kind: .io, message: "cannot open the unfinished extraction")
            }
            self.handle = handle
            if format == .npy {
                layerOffsets = [NPYFile.header(descr: "<f4", shape: [header.count] + header.layers[0].shape).count]
            } else {
                var offset = try safetensorsHeader(complete: false).count
                for plan in try safetensorsPlans {
                    layerOffsets.append(offset)
                    offset += plan.byteCount
                }
            }
        }
    }

    // MARK: Writing

    /// Writes rows `start..<start + rows` of layer `layer` (an index into the header's layers).
    public func write(layer: Int, start: Int, rows: Int, values: [Float]) throws {
        let rowElements = header.layers[layer].shape.reduce(1, *)
        guard values.count == rows * rowElements, start >= 0, start + rows <= header.count else {
            throw WeightFileError(path: url.path, kind: .malformed,
                                  message: "rows \(start)..<\(start + rows) of layer \(quoted(header.layers[layer].name)) (\(header.layers[layer].shape) each) do not take \(values.count) values")
        }
        if let hdf5 {
            try hdf5.writeRows(FeatureFileKeys.tensor(header.layers[layer].name), start: start, count: rows, values: values)
        } else if let handle {
            try handle.seek(toOffset: UInt64(layerOffsets[layer] + start * rowElements * 4))
            try values.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
        }
    }

    /// Records that every row before `rows` is written: flushes the data to disk, then the
    /// progress (atomically), so a kill from here on loses nothing before it.
    public func commit(rows: Int) throws {
        try syncData()
        let progress = Progress(header: header, rows: rows)
        try AtomicFile.write(try FeatureFileKeys.encoder.encode(progress), to: progressURL)
        rowsDone = rows
    }

    private func syncData() throws {
        if let hdf5 {
            try hdf5.flush()
            // libhdf5 hands the data to the kernel; fsync it too, so progress never runs ahead.
            let descriptor = open(partialURL.path, O_RDONLY | O_CLOEXEC)
            if descriptor >= 0 {
                fsync(descriptor)
                close(descriptor)
            }
        } else {
            try handle?.synchronize()
        }
    }

    /// Marks the file complete and moves it to its destination (for npy, with the labels and
    /// the JSON index, written last), then drops the progress file.
    public func finish() throws {
        switch format {
        case .hdf5:
            try hdf5?.setAttribute(FeatureFileKeys.complete, integer: 1)
            try syncData()
            hdf5 = nil
        case .safetensors:
            let incomplete = try safetensorsHeader(complete: false)
            let complete = try safetensorsHeader(complete: true, minimumLength: incomplete.count - 8)
            guard complete.count == incomplete.count else {
                throw WeightFileError(path: url.path, kind: .malformed, message: "the completed header does not fit the space reserved for it")
            }
            try handle?.seek(toOffset: 0)
            try handle?.write(contentsOf: Data(complete))
            try syncData()
            try handle?.close()
            handle = nil
        case .npy:
            try syncData()
            try handle?.close()
            handle = nil
        }
        guard rename(partialURL.path, url.path) == 0 else {
            throw WeightFileError(path: url.path, kind: .io, message: "cannot move \(partialURL.lastPathComponent) into place: \(String(cString: strerror(errno)))")
        }
        if format == .npy {
            let stem = url.deletingPathExtension()
            let labelBytes = NPYFile.header(descr: "<i8", shape: [header.count]) + labels.flatMap { withUnsafeBytes(of: Int64($0).littleEndian) { Array($0) } }
            try AtomicFile.write(Data(labelBytes), to: stem.appendingPathExtension("labels.npy"))
            var index = try metadata
            index[FeatureFileKeys.complete] = "true"
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: index, options: [.sortedKeys]), to: stem.appendingPathExtension("json"))
        }
        try? FileManager.default.removeItem(at: progressURL)
    }
}

/// A complete feature file, opened for reading: its header, labels, sample ids, and each
/// layer's features on demand.
public struct FeatureFile: Sendable {
    public let url: URL
    public let header: FeatureFileHeader
    /// Labels indexing ``FeatureFileHeader/classNames``; -1 for unlabelled samples.
    public let labels: [Int]
    public let sampleIDs: [String]
    private let reader: any WeightReader

    /// Opens the feature file at `url`; refuses a file that is not one, or whose extraction
    /// did not finish.
    public static func open(_ url: URL) throws -> FeatureFile {
        let format = try FeatureFileFormat(url)
        let tensorFile = url
        var metadata: [String: String]
        var labelReader: any WeightReader
        let reader: any WeightReader
        if format == .npy {
            let index = url.deletingPathExtension().appendingPathExtension("json")
            guard let data = try? Data(contentsOf: index) else {
                throw WeightFileError(path: url.path, kind: .missingTensor,
                                      message: "has no \(index.lastPathComponent) beside it, so it is not a complete zoo feature file (an unfinished extraction is FILE.partial)")
            }
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: String] else {
                throw WeightFileError(path: index.path, kind: .malformed, message: "is not a zoo feature index (a JSON object of strings)")
            }
            metadata = object
            reader = try WeightFiles.open(tensorFile)
            labelReader = try WeightFiles.open(url.deletingPathExtension().appendingPathExtension("labels.npy"))
        } else {
            reader = try WeightFiles.open(tensorFile)
            metadata = reader.metadata.extra
            labelReader = reader
        }
        guard metadata[FeatureFileKeys.format] == FeatureFileKeys.formatValue else {
            throw WeightFileError(path: url.path, kind: .unrecognizedFormat, message: "is not a zoo feature file (no \(FeatureFileKeys.format) = \(FeatureFileKeys.formatValue)); zoo extract writes them")
        }
        guard metadata[FeatureFileKeys.complete] == "true" else {
            throw WeightFileError(path: url.path, kind: .truncated,
                                  message: "is an unfinished extraction (it is marked incomplete); run the same zoo extract command again to finish it")
        }
        guard let headerText = metadata[FeatureFileKeys.header],
              let header = try? JSONDecoder().decode(FeatureFileHeader.self, from: Data(headerText.utf8)),
              let idsText = metadata[FeatureFileKeys.sampleIDs],
              let sampleIDs = try? JSONDecoder().decode([String].self, from: Data(idsText.utf8)) else {
            throw WeightFileError(path: url.path, kind: .malformed, message: "its \(FeatureFileKeys.header) or \(FeatureFileKeys.sampleIDs) cannot be read")
        }
        let labelName = format == .npy ? "" : FeatureFileKeys.labels
        let labels = try labelReader.floats(labelName).map { Int($0) }
        guard labels.count == header.count, sampleIDs.count == header.count else {
            throw WeightFileError(path: url.path, kind: .malformed,
                                  message: "holds \(labels.count) labels and \(sampleIDs.count) sample ids for \(header.count) samples")
        }
        for layer in header.layers {
            let name = format == .npy ? "" : FeatureFileKeys.tensor(layer.name)
            guard reader.info(name)?.shape == [header.count] + layer.shape else {
                throw WeightFileError(path: url.path, kind: .malformed,
                                      message: "layer \(quoted(layer.name)) should be \([header.count] + layer.shape), the file has \(reader.info(name)?.shape.description ?? "nothing")")
            }
        }
        return FeatureFile(url: url, header: header, labels: labels, sampleIDs: sampleIDs, reader: reader)
    }

    /// The features of `layer` (the first layer when nil): all samples, `[N] + shape`.
    public func features(_ layer: String? = nil) throws -> (values: [Float], shape: [Int]) {
        guard let entry = layer.map({ name in header.layers.first { $0.name == name } }) ?? header.layers.first else {
            throw WeightFileError(path: url.path, kind: .missingTensor,
                                  message: "holds no layer \(quoted(layer ?? "")); it has \(header.layers.map(\.name).joined(separator: ", "))")
        }
        let name = reader.format == .npy ? "" : FeatureFileKeys.tensor(entry.name)
        return (try reader.floats(name), [header.count] + entry.shape)
    }
}

/// Lists a zoo feature file (HDF5) inside the sandbox: its tensors, and its attributes and
/// sample ids as metadata.
enum FeatureH5Layout {
    static func matches(_ file: HDF5File) -> Bool {
        file.hasAttribute(FeatureFileKeys.format, at: "/")
    }

    static func list(_ file: HDF5File) throws -> HDF5Listing {
        var extra: [String: String] = [:]
        for key in [FeatureFileKeys.format, FeatureFileKeys.header] where file.hasAttribute(key, at: "/") {
            extra[key] = try file.stringAttribute(key, at: "/").first
        }
        if file.hasAttribute(FeatureFileKeys.complete, at: "/") {
            extra[FeatureFileKeys.complete] = try file.integerAttribute(FeatureFileKeys.complete, at: "/") == 1 ? "true" : "false"
        }
        var tensors: [HDF5Listing.Tensor] = []
        if file.kind(of: "/features") == .group {
            for member in try file.members(of: "/features") where file.kind(of: "/features/\(member)") == .dataset {
                tensors.append(try file.listingEntry(name: FeatureFileKeys.tensor(member), datasetPath: "/features/\(member)"))
            }
        }
        if file.kind(of: "/\(FeatureFileKeys.labels)") == .dataset {
            tensors.append(try file.listingEntry(name: FeatureFileKeys.labels, datasetPath: "/\(FeatureFileKeys.labels)"))
        }
        if file.kind(of: "/\(FeatureFileKeys.sampleIDs)") == .dataset {
            let ids = try file.stringDataset("/\(FeatureFileKeys.sampleIDs)")
            extra[FeatureFileKeys.sampleIDs] = String(decoding: try FeatureFileKeys.encoder.encode(ids), as: UTF8.self)
        }
        return HDF5Listing(format: .zooFeaturesH5, metadata: WeightMetadata(extra: extra), tensors: tensors)
    }
}
