import Foundation

/// The storage classes `torch.save` names in persistent ids (`torch.FloatStorage`, ...).
enum TorchStorageType: String, CaseIterable {
    case DoubleStorage, FloatStorage, HalfStorage, BFloat16Storage
    case LongStorage, IntStorage, ShortStorage, CharStorage, ByteStorage, BoolStorage
    case ComplexFloatStorage, ComplexDoubleStorage

    /// The element type, or nil for storages zoo cannot convert to Float (complex numbers).
    var dtype: DType? {
        switch self {
        case .DoubleStorage: .f64
        case .FloatStorage: .f32
        case .HalfStorage: .f16
        case .BFloat16Storage: .bf16
        case .LongStorage: .i64
        case .IntStorage: .i32
        case .ShortStorage: .i16
        case .CharStorage: .i8
        case .ByteStorage: .u8
        case .BoolStorage: .bool
        case .ComplexFloatStorage, .ComplexDoubleStorage: nil
        }
    }
}

/// `torch.<dtype>` globals, which `_rebuild_tensor_v3` passes for storages without a legacy
/// class (`torch.storage.UntypedStorage` plus a dtype, used for uint16/32/64 and newer types).
enum TorchDTypeName {
    static let dtypes: [String: DType] = [
        "float16": .f16, "half": .f16, "bfloat16": .bf16, "float32": .f32, "float": .f32,
        "float64": .f64, "double": .f64, "int8": .i8, "int16": .i16, "short": .i16, "int32": .i32,
        "int": .i32, "int64": .i64, "long": .i64, "uint8": .u8, "uint16": .u16, "uint32": .u32,
        "uint64": .u64, "bool": .bool,
    ]
    /// Types torch has that zoo does not convert; named so that the error says "unsupported dtype".
    static let unsupported = [
        "complex32", "complex64", "complex128", "cfloat", "cdouble", "chalf", "float8_e4m3fn",
        "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2",
        "qint8", "quint8", "qint32", "quint4x2", "quint2x4", "bits8", "bits16", "uint1", "uint2",
        "uint3", "uint4", "uint5", "uint6", "uint7", "int1", "int2", "int3", "int4", "int5", "int6", "int7",
    ]
}

extension PickleAllowList {
    /// `torch` plus what `_rebuild_tensor_v3` needs (`UntypedStorage`, `torch.<dtype>`).
    static let torchWithDTypes: PickleAllowList = {
        var list = PickleAllowList.torch
        list.rules["torch._utils._rebuild_tensor_v3"] = .record
        list.rules["torch.storage.UntypedStorage"] = .record
        list.rules["torch.UntypedStorage"] = .record
        for name in TorchDTypeName.dtypes.keys { list.rules["torch.\(name)"] = .record }
        for name in TorchDTypeName.unsupported { list.rules["torch.\(name)"] = .record }
        return list
    }()
}

/// Reads `torch.save` files: the zip format (PyTorch 1.6+) and the legacy pickle stream.
///
/// The pickle is run by ``Unpickler`` with the torch allow-list. Persistent ids become storage
/// records; `_rebuild_tensor_v2/v3` calls become tensor views (storage, offset, size, stride),
/// and reading a tensor gathers its view from the storage bytes, so offsets, strides and shared
/// storages are honoured. Tensors are found anywhere in the pickled object: a state dict lists
/// its keys; nested dicts and lists give dotted names such as `optimizer.state.0.momentum_buffer`.
/// In a checkpoint whose state dict sits under a well-known key (`state_dict`, `model`, ...),
/// that dict's tensors come first under their own keys, and `metadata.extra["state_dict_key"]`
/// names the key.
final class TorchReader: WeightReader {
    let url: URL
    let format: WeightFormat
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let views: [String: View]
    private let storages: [String: StorageData]
    private let bigEndian: Bool

    /// Where a tensor's elements are: a view on a storage.
    struct View {
        let info: TensorInfo
        let storageKey: String
        let offset: Int
        let strides: [Int]
    }

    /// A storage's bytes: in place for the legacy format; a zip entry, read (and checked
    /// against its CRC-32 the first time) when a tensor on it is read.
    enum StorageData {
        case bytes(Bytes)
        case zipEntry(ZipArchive, ZipEntry)
    }

    /// What a persistent id said about a storage.
    struct StorageRecord {
        let key: String
        /// Element type of a typed storage; nil for `UntypedStorage` (bytes).
        let dtype: DType?
        let typeName: String
        /// Size in bytes, from the persistent id's element count.
        let byteCount: Int
        /// Byte offset of a legacy storage view into its root storage.
        let viewByteOffset: Int
    }

    private init(
        url: URL, format: WeightFormat, metadata: WeightMetadata, tensors: [TensorInfo], views: [String: View],
        storages: [String: StorageData], bigEndian: Bool
    ) {
        self.url = url
        self.format = format
        self.metadata = metadata
        self.tensors = tensors
        self.views = views
        self.storages = storages
        self.bigEndian = bigEndian
    }

    func info(_ name: String) -> TensorInfo? { views[name]?.info }

    func floats(_ name: String) throws -> [Float] {
        guard let view = views[name] else {
            throw WeightFileError(path: url.path, kind: .missingTensor, message: "no tensor named \(quoted(name))")
        }
        return try locatingErrors(at: url.path) {
            try withContext("tensor \(quoted(name))") {
                guard let data = storages[view.storageKey] else {
                    throw ParseError.malformed("storage \(quoted(view.storageKey)) is missing")
                }
                let bytes: Bytes
                switch data {
                case .bytes(let stored): bytes = stored
                case .zipEntry(let archive, let entry): bytes = try archive.contents(of: entry)
                }
                let storageCount = bytes.count / view.info.dtype.byteSize
                return try ElementConversion.floats(
                    storage: bytes.raw, storageCount: storageCount, dtype: view.info.dtype, offset: view.offset,
                    shape: view.info.shape, strides: view.strides, bigEndian: bigEndian)
            }
        }
    }

    // MARK: Zip format

    /// Reads a zip-format `torch.save` file.
    static func openZip(_ bytes: Bytes, url: URL) throws -> TorchReader {
        let archive = try ZipArchive(bytes: bytes)
        return try openZip(archive, url: url)
    }

    static func openZip(_ archive: ZipArchive, url: URL) throws -> TorchReader {
        let pickleEntry = try findDataPickle(archive)
        let prefix = String(pickleEntry.name.dropLast("data.pkl".count))

        var bigEndian = false
        if let entry = archive.entry(named: prefix + "byteorder") {
            let text = String(decoding: try archive.contents(of: entry).array, as: UTF8.self)
            switch text.trimmingCharacters(in: .whitespacesAndNewlines) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw ParseError.malformed("byteorder record says \(quoted(text, limit: 20)), expected 'little' or 'big'")
            }
        }
        var versions: [String: String] = [:]
        for name in ["version", ".data/version"] {
            if let entry = archive.entry(named: prefix + name) {
                let text = String(decoding: try archive.contents(of: entry).array, as: UTF8.self)
                versions["pytorch format version"] = text.trimmingCharacters(in: .whitespacesAndNewlines)
                break
            }
        }

        let records = StorageTable()
        let pickle = try archive.contents(of: pickleEntry)
        let root = try withContext("data.pkl") {
            try unpickler(records: records, legacy: false).load(pickle, at: 0).value
        }
        var storages: [String: StorageData] = [:]
        for record in records.byKey.values {
            guard let entry = archive.entry(named: prefix + "data/" + record.key) else {
                throw ParseError.malformed("storage \(quoted(record.key)) has no record \(quoted(prefix + "data/" + record.key)) in the archive")
            }
            guard entry.uncompressedSize >= record.byteCount else {
                throw ParseError.truncated(
                    "truncated: storage \(quoted(record.key)) should hold \(record.byteCount) bytes but its record has \(entry.uncompressedSize)")
            }
            storages[record.key] = .zipEntry(archive, entry)
        }
        let metadata = WeightMetadata(writerVersions: versions, extra: ["byteorder": bigEndian ? "big" : "little"])
        return try assemble(
            root: root, records: records, storages: storages, url: url, format: .torchZip, metadata: metadata,
            bigEndian: bigEndian)
    }

    /// The `<prefix>/data.pkl` record; the prefix is whatever folder name the writer chose.
    static func findDataPickle(_ archive: ZipArchive) throws -> ZipEntry {
        let candidates = archive.entries.filter { entry in
            entry.name.hasSuffix("/data.pkl") && entry.name.dropLast("/data.pkl".count).allSatisfy { $0 != "/" }
        }
        guard let first = candidates.first else {
            throw ParseError.malformed("zip archive has no <folder>/data.pkl record, so it is not a torch.save file")
        }
        guard candidates.count == 1 else {
            throw ParseError.malformed("zip archive has \(candidates.count) data.pkl records; expected one")
        }
        return first
    }

    // MARK: Legacy format

    /// The magic number that starts a legacy `torch.save` stream, as LONG1 bytes (little-endian).
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    /// True when `bytes` start with the pickled legacy magic number.
    static func looksLikeLegacy(_ bytes: Bytes) -> Bool {
        // PROTO n, LONG1 10 <magic>
        guard bytes.count >= 14, (try? bytes.uint8(at: 0)) == 0x80, (try? bytes.uint8(at: 2)) == 0x8a,
            (try? bytes.uint8(at: 3)) == 10
        else { return false }
        return (try? bytes.array(4, 10, "magic")) == legacyMagic
    }

    /// Reads a legacy (pre-1.6) `torch.save` stream: magic, protocol version, system info, the
    /// object, the list of storage keys, then each storage as an element count and raw bytes.
    static func openLegacy(_ bytes: Bytes, url: URL) throws -> TorchReader {
        let plain = Unpickler(allowList: PickleAllowList([:]))
        let (magic, afterMagic) = try withContext("legacy magic number") { try plain.load(bytes, at: 0) }
        guard case .bigInt(let magicBytes) = magic, magicBytes == legacyMagic else {
            throw ParseError.malformed("not a legacy torch.save file: the first pickle is not torch's magic number")
        }
        let (version, afterVersion) = try withContext("legacy protocol version") { try plain.load(bytes, at: afterMagic) }
        guard version.int == 1001 else {
            throw ParseError.unsupported("legacy torch protocol version \(version.int.map(String.init) ?? version.kindName) is not supported (expected 1001)")
        }
        let (systemInfo, afterInfo) = try withContext("legacy system info") { try plain.load(bytes, at: afterVersion) }
        var bigEndian = false
        if case .dict(let info) = systemInfo, case .bool(let little)? = info["little_endian"] {
            bigEndian = !little
        }

        let records = StorageTable()
        let (root, afterObject) = try withContext("legacy object pickle") {
            try unpickler(records: records, legacy: true).load(bytes, at: afterInfo)
        }
        let (keyList, afterKeys) = try withContext("legacy storage key list") { try plain.load(bytes, at: afterObject) }
        guard let keyValues = keyList.sequence else {
            throw ParseError.malformed("legacy storage key list is a \(keyList.kindName), not a list")
        }
        var storages: [String: StorageData] = [:]
        var position = afterKeys
        for keyValue in keyValues {
            guard let key = keyValue.string else { throw ParseError.malformed("legacy storage key is a \(keyValue.kindName)") }
            guard let record = records.byKey[key] else {
                throw ParseError.malformed("legacy storage \(quoted(key)) is listed but no tensor uses it, so its element size is unknown")
            }
            guard storages[key] == nil else { throw ParseError(.duplicateName, "legacy storage \(quoted(key)) is listed twice") }
            let rawCount = try bytes.uint64(at: position, "element count of storage \(key)")
            let elementSize = record.dtype?.byteSize ?? 1
            guard let count = Checked.int(bigEndian ? rawCount.byteSwapped : rawCount),
                let byteCount = Checked.multiply(count, elementSize)
            else {
                throw ParseError.malformed("legacy storage \(quoted(key)) claims an impossible element count \(rawCount)")
            }
            let data = try bytes.slice(position + 8, byteCount, "legacy storage \(quoted(key))")
            guard byteCount >= record.byteCount else {
                throw ParseError.malformed("legacy storage \(quoted(key)) holds \(byteCount) bytes, but the pickle expects \(record.byteCount)")
            }
            storages[key] = .bytes(data)
            position += 8 + byteCount
        }
        for key in records.byKey.keys where storages[key] == nil {
            throw ParseError.malformed("legacy storage \(quoted(key)) is used by a tensor but missing from the storage list")
        }
        let metadata = WeightMetadata(
            writerVersions: ["pytorch format version": "1001"], extra: ["byteorder": bigEndian ? "big" : "little"])
        return try assemble(
            root: root, records: records, storages: storages, url: url, format: .torchLegacy, metadata: metadata,
            bigEndian: bigEndian)
    }

    // MARK: Shared

    /// Storage records collected by the persistent-load callback.
    final class StorageTable {
        var byKey: [String: StorageRecord] = [:]
    }

    static let storageGlobal = PickleGlobal(module: "zoo", name: "storage")

    /// An unpickler whose persistent ids become storage objects (`zoo.storage(key, byteOffset)`).
    static func unpickler(records: StorageTable, legacy: Bool) -> Unpickler {
        Unpickler(allowList: .torchWithDTypes) { id in
            guard let fields = id.sequence, fields.count >= 5, fields[0].string == "storage" else {
                throw ParseError.malformed("persistent id is not a ('storage', type, key, location, size) tuple")
            }
            guard case .global(let type) = fields[1] else {
                throw ParseError.malformed("storage type is a \(fields[1].kindName), not a class")
            }
            guard let key = fields[2].string ?? fields[2].int.map(String.init) else {
                throw ParseError.malformed("storage key is a \(fields[2].kindName)")
            }
            guard let count = fields[4].int, count >= 0 else {
                throw ParseError.malformed("storage \(quoted(key)) has a bad element count (\(fields[4].kindName))")
            }
            let dtype: DType?
            if type.name == "UntypedStorage" {
                dtype = nil
            } else if let storageType = TorchStorageType(rawValue: type.name) {
                guard let known = storageType.dtype else {
                    throw ParseError.unsupported("unsupported dtype: storage \(quoted(key)) is a \(type.qualifiedName)")
                }
                dtype = known
            } else {
                throw ParseError.malformed("\(type.qualifiedName) is not a storage type")
            }
            guard let byteCount = Checked.multiply(count, dtype?.byteSize ?? 1) else {
                throw ParseError.malformed("storage \(quoted(key)) claims \(count) elements")
            }
            if let existing = records.byKey[key], existing.dtype != dtype || existing.byteCount != byteCount {
                throw ParseError.malformed("storage \(quoted(key)) is described twice, differently")
            }
            records.byKey[key] = StorageRecord(
                key: key, dtype: dtype, typeName: type.qualifiedName, byteCount: byteCount, viewByteOffset: 0)
            // Legacy ids may carry a view: (view_key, element offset, element count) into the root storage.
            var viewByteOffset = 0
            if legacy, fields.count >= 6, let view = fields[5].sequence {
                guard view.count == 3, let offset = view[1].int, let size = view[2].int, offset >= 0, size >= 0,
                    let byteOffset = Checked.multiply(offset, dtype?.byteSize ?? 1),
                    let viewEnd = Checked.add(offset, size), let endBytes = Checked.multiply(viewEnd, dtype?.byteSize ?? 1),
                    endBytes <= byteCount
                else {
                    throw ParseError.malformed("storage view on \(quoted(key)) lies outside the storage")
                }
                viewByteOffset = byteOffset
            }
            return .object(
                PickleObject(type: storageGlobal, arguments: [.string(key), .int(viewByteOffset)]))
        }
    }

    /// Finds the tensors in the unpickled object and checks each view against its storage.
    static func assemble(
        root: PickleValue, records: StorageTable, storages: [String: StorageData], url: URL, format: WeightFormat,
        metadata: WeightMetadata, bigEndian: Bool
    ) throws -> TorchReader {
        var found: [(name: String, object: PickleObject)] = []
        try collectTensors(root, prefix: "", depth: 0, into: &found)
        var metadata = metadata
        if let key = stateDictKey(root) {
            // A training checkpoint: list the state dict first, under its own keys, then the
            // other tensors (optimizer state, ...) under their full dotted paths.
            let prefix = key + "."
            let inside = found.filter { $0.name.hasPrefix(prefix) }.map { (name: String($0.name.dropFirst(prefix.count)), object: $0.object) }
            let outside = found.filter { !$0.name.hasPrefix(prefix) }
            let renamed = inside + outside
            if Set(renamed.map(\.name)).count == renamed.count {
                found = renamed
                metadata.extra["state_dict_key"] = key
            }
        }

        var views: [String: View] = [:]
        var tensors: [TensorInfo] = []
        for (name, object) in found {
            let view = try withContext("tensor \(quoted(name))") {
                try makeView(name: name, object: object, records: records)
            }
            guard views[name] == nil else {
                throw ParseError(.duplicateName, "two tensors are named \(quoted(name))")
            }
            views[name] = view
            tensors.append(view.info)
        }
        return TorchReader(
            url: url, format: format, metadata: metadata, tensors: tensors, views: views, storages: storages,
            bigEndian: bigEndian)
    }

    /// Keys under which checkpoints commonly keep the model's state dict, most specific first.
    static let stateDictKeys = [
        "state_dict", "model_state_dict", "model_state", "state_dict_ema", "model", "net", "network", "module",
        "weights", "params",
    ]

    /// The key of the state dict inside a checkpoint dict (`{"epoch": 3, "state_dict": {...}}`),
    /// or nil when the root is itself a state dict or holds none under a well-known key.
    static func stateDictKey(_ root: PickleValue) -> String? {
        guard case .dict(let dict) = root else { return nil }
        func isTensor(_ value: PickleValue) -> Bool {
            if case .object(let object) = value { return tensorRebuilders.contains(object.type.qualifiedName) }
            return false
        }
        if dict.entries.contains(where: { isTensor($0.value) }) { return nil }
        for key in stateDictKeys {
            if case .dict(let inner)? = dict[key], inner.entries.contains(where: { isTensor($0.value) }) {
                return key
            }
        }
        return nil
    }

    static let tensorRebuilders: Set<String> = [
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_from_type_v2", "torch._tensor._rebuild_from_type_v2",
    ]

    /// Walks dicts, lists and tuples depth-first, naming tensors by their dotted key path.
    /// (The unpickler's result is a tree of bounded depth and size, so recursion is safe.)
    static func collectTensors(
        _ value: PickleValue, prefix: String, depth: Int, into found: inout [(name: String, object: PickleObject)]
    ) throws {
        guard depth <= 64 else { throw ParseError.malformed("object nests deeper than 64 levels") }
        func child(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }
        switch value {
        case .object(let object) where tensorRebuilders.contains(object.type.qualifiedName):
            found.append((prefix, object))
        case .dict(let dict):
            for (key, entry) in dict.entries {
                let name: String
                switch key {
                case .string(let text): name = text
                case .int(let number): name = String(number)
                default: continue
                }
                try collectTensors(entry, prefix: child(name), depth: depth + 1, into: &found)
            }
        case .list(let elements), .tuple(let elements):
            for (index, element) in elements.enumerated() {
                try collectTensors(element, prefix: child(String(index)), depth: depth + 1, into: &found)
            }
        default:
            break
        }
    }

    /// Interprets a recorded `_rebuild_tensor*` call.
    static func makeView(name: String, object: PickleObject, records: StorageTable) throws -> View {
        var arguments = object.arguments
        var function = object.type.qualifiedName
        if function.hasSuffix("_rebuild_from_type_v2") {
            // (func, new_type, args, state): the tensor is func(*args).
            guard arguments.count >= 3, case .global(let inner) = arguments[0], let innerArguments = arguments[2].sequence,
                tensorRebuilders.contains(inner.qualifiedName), !inner.name.hasSuffix("_rebuild_from_type_v2")
            else {
                throw ParseError.unsupported("_rebuild_from_type_v2 wraps something other than a tensor rebuild")
            }
            function = inner.qualifiedName
            arguments = innerArguments
        }
        guard arguments.count >= 4 else {
            throw ParseError.malformed("\(function) has \(arguments.count) arguments, expected at least 4")
        }
        guard case .object(let storage) = arguments[0], storage.type == storageGlobal,
            let key = storage.arguments.first?.string, let viewByteOffset = storage.arguments.last?.int,
            let record = records.byKey[key]
        else {
            throw ParseError.malformed("first argument of \(function) is a \(arguments[0].kindName), not a storage")
        }
        var dtype = record.dtype
        if function.hasSuffix("_rebuild_tensor_v3") {
            guard arguments.count >= 7, case .global(let dtypeGlobal) = arguments[6], dtypeGlobal.module == "torch" else {
                throw ParseError.malformed("_rebuild_tensor_v3 has no dtype argument")
            }
            guard let named = TorchDTypeName.dtypes[dtypeGlobal.name] else {
                throw ParseError.unsupported("unsupported dtype \(dtypeGlobal.qualifiedName)")
            }
            dtype = named
        }
        guard let dtype else {
            throw ParseError.malformed("storage \(quoted(key)) is untyped and the tensor names no dtype")
        }
        guard let offset = arguments[1].int, offset >= 0 else {
            throw ParseError.malformed("storage offset is a \(arguments[1].kindName), not a non-negative int")
        }
        guard let sizeValues = arguments[2].sequence, let strideValues = arguments[3].sequence else {
            throw ParseError.malformed("size and stride must be tuples")
        }
        let shape = try sizeValues.map { value -> Int in
            guard let size = value.int, size >= 0 else { throw ParseError.malformed("size \(value.kindName) is not a non-negative int") }
            return size
        }
        let strides = try strideValues.map { value -> Int in
            guard let stride = value.int, stride >= 0 else { throw ParseError.malformed("stride is not a non-negative int") }
            return stride
        }
        guard shape.count == strides.count else {
            throw ParseError.malformed("size \(shape) and stride \(strides) differ in length")
        }
        guard viewByteOffset % dtype.byteSize == 0 else {
            throw ParseError.malformed("storage view offset is not a whole number of \(dtype.rawValue) elements")
        }
        let elementOffset = viewByteOffset / dtype.byteSize
        guard let totalOffset = Checked.add(offset, elementOffset) else {
            throw ParseError.malformed("storage offset \(offset) is impossibly large")
        }
        try checkView(
            offset: totalOffset, shape: shape, strides: strides, storageCount: record.byteCount / dtype.byteSize,
            storageKey: key)
        return View(
            info: TensorInfo(name: name, dtype: dtype, shape: shape), storageKey: key, offset: totalOffset,
            strides: strides)
    }

    /// Rejects a view that reaches past its storage, before any data is read.
    static func checkView(offset: Int, shape: [Int], strides: [Int], storageCount: Int, storageKey: String) throws {
        guard let count = Checked.elementCount(shape) else { throw ParseError.malformed("shape \(shape) overflows") }
        if count == 0 { return }
        var last = offset
        for (size, stride) in zip(shape, strides) {
            guard let step = Checked.multiply(size - 1, stride), let sum = Checked.add(last, step) else {
                throw ParseError.malformed("shape \(shape) with strides \(strides) overflows")
            }
            last = sum
        }
        guard last < storageCount else {
            throw ParseError.malformed(
                "view (offset \(offset), shape \(shape), strides \(strides)) reaches element \(last), past the \(storageCount) elements of storage \(quoted(storageKey))")
        }
    }
}
