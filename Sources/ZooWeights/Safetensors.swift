import Foundation

/// Reading and writing Hugging Face safetensors files: an 8-byte little-endian header length,
/// a JSON header, then the tensors' little-endian bytes back to back.
public enum SafetensorsFile {
    /// The largest header the reference implementation accepts.
    static let maximumHeaderSize = 100_000_000

    static let dtypeNames: [String: DType] = [
        "BOOL": .bool, "U8": .u8, "I8": .i8, "I16": .i16, "U16": .u16, "F16": .f16, "BF16": .bf16,
        "I32": .i32, "U32": .u32, "F32": .f32, "F64": .f64, "I64": .i64, "U64": .u64,
    ]

    static func name(of dtype: DType) -> String {
        switch dtype {
        case .bool: "BOOL"
        case .u8: "U8"
        case .i8: "I8"
        case .i16: "I16"
        case .u16: "U16"
        case .f16: "F16"
        case .bf16: "BF16"
        case .i32: "I32"
        case .u32: "U32"
        case .f32: "F32"
        case .f64: "F64"
        case .i64: "I64"
        case .u64: "U64"
        }
    }

    /// One tensor of a parsed header: where its bytes are, relative to the data buffer.
    struct Entry: Sendable {
        let info: TensorInfo
        let begin: Int
        let end: Int
    }

    /// A parsed header.
    struct Header: Sendable {
        let entries: [Entry]
        let metadata: [String: String]
        /// File offset of the data buffer (8 + header length).
        let dataOffset: Int
    }

    /// True when `bytes` start like a safetensors file: a plausible header length followed by `{`.
    static func looksLikeSafetensors(_ bytes: Bytes) -> Bool {
        guard let length = try? bytes.uint64(at: 0), length >= 2, length <= UInt64(maximumHeaderSize),
            Int(length) <= bytes.count - 8, (try? bytes.uint8(at: 8)) == UInt8(ascii: "{")
        else { return false }
        return true
    }

    /// Parses and validates the header of a safetensors file held in `bytes`.
    static func parseHeader(_ bytes: Bytes) throws -> Header {
        let rawLength = try bytes.uint64(at: 0, "header length")
        guard rawLength <= UInt64(maximumHeaderSize) else {
            throw ParseError.malformed("header length \(rawLength) exceeds the \(maximumHeaderSize)-byte limit")
        }
        let headerLength = Int(rawLength)
        let headerBytes = try bytes.slice(8, headerLength, "JSON header")
        let dataOffset = 8 + headerLength
        let bufferSize = bytes.count - dataOffset

        let json = try withContext("header") { try JSONParser.parse(headerBytes.raw) }
        guard case .object(let members) = json else {
            throw ParseError.malformed("header is \(json.kindName), not a JSON object")
        }
        var entries: [Entry] = []
        var metadata: [String: String] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else {
                    throw ParseError.malformed("__metadata__ is \(value.kindName), not an object of strings")
                }
                for (key, text) in pairs {
                    guard let string = text.string else {
                        throw ParseError.malformed("__metadata__ value for \(quoted(key)) is \(text.kindName), not a string")
                    }
                    metadata[key] = string
                }
                continue
            }
            entries.append(try withContext("tensor \(quoted(name))") { try parseEntry(name: name, value) })
        }
        // The data must be covered exactly, without gaps or overlaps.
        let ordered = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for entry in ordered {
            guard entry.begin == expected else {
                if entry.begin < expected {
                    throw ParseError.malformed("tensor \(quoted(entry.info.name)) overlaps the tensor before it (offset \(entry.begin))")
                }
                throw ParseError.malformed("gap in the data before tensor \(quoted(entry.info.name)) (offset \(entry.begin), expected \(expected))")
            }
            expected = entry.end
        }
        guard expected <= bufferSize else {
            throw ParseError.truncated(
                "truncated: tensors need \(expected) bytes of data but the file has \(max(bufferSize, 0)) after the header")
        }
        guard expected == bufferSize else {
            throw ParseError.malformed("\(bufferSize - expected) bytes after the last tensor belong to no tensor")
        }
        return Header(entries: entries, metadata: metadata, dataOffset: dataOffset)
    }

    private static func parseEntry(name: String, _ value: JSONValue) throws -> Entry {
        guard case .object = value else { throw ParseError.malformed("entry is \(value.kindName), not an object") }
        guard let dtypeName = value["dtype"]?.string else { throw ParseError.malformed("entry has no dtype string") }
        guard let dtype = dtypeNames[dtypeName] else {
            throw ParseError.unsupported("unsupported dtype \(quoted(dtypeName, limit: 40))")
        }
        guard case .array(let shapeValues)? = value["shape"] else { throw ParseError.malformed("entry has no shape array") }
        let shape = try shapeValues.map { element -> Int in
            guard let size = element.int, size >= 0 else {
                throw ParseError.malformed("shape holds \(element.kindName) that is not a non-negative integer")
            }
            return size
        }
        guard case .array(let offsets)? = value["data_offsets"], offsets.count == 2, let begin = offsets[0].int,
            let end = offsets[1].int, begin >= 0, end >= begin
        else {
            throw ParseError.malformed("data_offsets must be [begin, end] with 0 <= begin <= end")
        }
        guard let count = Checked.elementCount(shape), let byteCount = Checked.multiply(count, dtype.byteSize) else {
            throw ParseError.malformed("shape \(shape) is impossibly large")
        }
        guard end - begin == byteCount else {
            throw ParseError.malformed(
                "data_offsets [\(begin), \(end)] span \(end - begin) bytes but \(dtypeName) \(shape) needs \(byteCount)")
        }
        return Entry(info: TensorInfo(name: name, dtype: dtype, shape: shape), begin: begin, end: end)
    }

    /// Parses a whole file held in memory and converts every tensor: the fuzzer's entry point.
    static func parse(bytes: [UInt8]) throws -> [(TensorInfo, [Float])] {
        let storage = Bytes(copying: bytes)
        let header = try parseHeader(storage)
        return try header.entries.map { entry in
            let data = try storage.slice(header.dataOffset + entry.begin, entry.end - entry.begin, "tensor data")
            return (entry.info, try ElementConversion.floats(data.raw, dtype: entry.info.dtype, count: entry.info.elementCount))
        }
    }

    // MARK: Writing

    /// Writes float32 tensors, in the given order, with optional `__metadata__`.
    ///
    /// The file is written atomically (temporary file, fsync, rename). Names must be unique
    /// and `values.count` must equal each shape's element count.
    public static func write(
        _ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String] = [:], to url: URL
    ) throws {
        let plans = try tensors.map { tensor in
            try Plan(name: tensor.name, dtype: .f32, shape: tensor.shape, byteCount: tensor.values.count * 4, url: url)
        }
        try write(plans, metadata: metadata, to: url) { index, sink in
            try tensors[index].values.withUnsafeBytes { raw in
                if ElementConversion.isLittleEndianHost {
                    try sink.write(raw)
                } else {
                    try sink.write(tensors[index].values.flatMap { value in
                        withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
                    })
                }
            }
        }
    }

    /// Writes tensors of any ``DType`` from their little-endian bytes, in the given order.
    public static func write(
        encoded tensors: [(name: String, dtype: DType, shape: [Int], bytes: [UInt8])], metadata: [String: String] = [:],
        to url: URL
    ) throws {
        let plans = try tensors.map { tensor in
            try Plan(name: tensor.name, dtype: tensor.dtype, shape: tensor.shape, byteCount: tensor.bytes.count, url: url)
        }
        try write(plans, metadata: metadata, to: url) { index, sink in
            try sink.write(tensors[index].bytes)
        }
    }

    struct Plan {
        let name: String
        let dtype: DType
        let shape: [Int]
        let byteCount: Int

        init(name: String, dtype: DType, shape: [Int], byteCount: Int, url: URL) throws {
            guard let count = Checked.elementCount(shape), Checked.multiply(count, dtype.byteSize) == byteCount else {
                throw WeightFileError(
                    path: url.path, kind: .malformed,
                    message: "tensor \(quoted(name)) has shape \(shape) but \(byteCount / dtype.byteSize) \(dtype.rawValue) elements")
            }
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.byteCount = byteCount
        }
    }

    private static func write(
        _ plans: [Plan], metadata: [String: String], to url: URL, data: (Int, inout FileSink) throws -> Void
    ) throws {
        let header = try header(plans, metadata: metadata, url: url)
        try AtomicFile.write(to: url) { sink in
            try sink.write(header)
            for index in plans.indices { try data(index, &sink) }
        }
    }

    /// The bytes before the tensor data: the header's length and the header, its tensors laid
    /// out one after another in the order of `plans`, padded with spaces to at least
    /// `minimumLength` bytes (and a multiple of 8, as the reference writer does).
    static func header(_ plans: [Plan], metadata: [String: String], url: URL, minimumLength: Int = 0) throws -> [UInt8] {
        var names = Set<String>()
        var members: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0] ?? ""))" }
            members.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        for plan in plans {
            guard plan.name != "__metadata__" else {
                throw WeightFileError(path: url.path, kind: .malformed, message: "a tensor cannot be named '__metadata__'")
            }
            guard names.insert(plan.name).inserted else {
                throw WeightFileError(path: url.path, kind: .duplicateName, message: "two tensors are named \(quoted(plan.name))")
            }
            let shape = plan.shape.map(String.init).joined(separator: ",")
            members.append(
                "\(JSONText.quote(plan.name)):{\"dtype\":\"\(name(of: plan.dtype))\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + plan.byteCount)]}")
            offset += plan.byteCount
        }
        var header = Array("{\(members.joined(separator: ","))}".utf8)
        while header.count < minimumLength || header.count % 8 != 0 { header.append(0x20) }
        var length = LittleEndianBuffer()
        length.u64(UInt64(header.count))
        return length.data + header
    }
}

/// A safetensors file opened for reading; tensor data is read from the mapped file on demand.
final class SafetensorsReader: WeightReader {
    let url: URL
    let format = WeightFormat.safetensors
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let bytes: Bytes
    private let dataOffset: Int
    private let entries: [String: SafetensorsFile.Entry]

    init(bytes: Bytes, url: URL) throws {
        let header = try SafetensorsFile.parseHeader(bytes)
        var entries: [String: SafetensorsFile.Entry] = [:]
        for entry in header.entries {
            // The JSON parser already rejects duplicate keys; this guards the invariant.
            guard entries.updateValue(entry, forKey: entry.info.name) == nil else {
                throw ParseError(.duplicateName, "two tensors are named \(quoted(entry.info.name))")
            }
        }
        self.url = url
        self.bytes = bytes
        self.dataOffset = header.dataOffset
        self.entries = entries
        self.tensors = header.entries.map(\.info)
        self.metadata = WeightMetadata(extra: header.metadata)
    }

    func info(_ name: String) -> TensorInfo? { entries[name]?.info }

    func floats(_ name: String) throws -> [Float] {
        guard let entry = entries[name] else {
            throw WeightFileError(path: url.path, kind: .missingTensor, message: "no tensor named \(quoted(name))")
        }
        return try locatingErrors(at: url.path) {
            let data = try bytes.slice(dataOffset + entry.begin, entry.end - entry.begin, "data of tensor \(quoted(name))")
            return try ElementConversion.floats(data.raw, dtype: entry.info.dtype, count: entry.info.elementCount)
        }
    }
}
