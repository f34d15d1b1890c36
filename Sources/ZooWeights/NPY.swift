import Foundation

/// Reading and writing NumPy `.npy` arrays: magic, version, a Python-literal header
/// (`{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`), then the raw data.
public enum NPYFile {
    static let magic: [UInt8] = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]  // \x93NUMPY
    /// NumPy itself refuses headers over 10,000 bytes by default; allow more, but not without bound.
    static let maximumHeaderSize = 1 << 20

    /// A parsed `.npy` header.
    struct Header: Sendable {
        let dtype: DType
        let bigEndian: Bool
        let fortranOrder: Bool
        let shape: [Int]
        /// Offset of the data from the start of the array.
        let dataOffset: Int
        let version: String

        var byteCount: Int { (Checked.elementCount(shape) ?? 0) * dtype.byteSize }
    }

    static func looksLikeNPY(_ bytes: Bytes) -> Bool { bytes.starts(with: magic) }

    /// The number of bytes the header occupies, from the first 12 bytes of an array (so that a
    /// compressed `.npz` entry need only be inflated that far).
    static func headerExtent(_ prefix: Bytes) throws -> Int {
        guard prefix.starts(with: magic) else {
            guard prefix.count >= magic.count else {
                throw ParseError.truncated("truncated: \(prefix.count) bytes is too short for an .npy header")
            }
            throw ParseError.malformed("bad magic: an .npy array starts with \\x93NUMPY")
        }
        let major = try prefix.uint8(at: 6, "format version")
        switch major {
        case 1:
            return 10 + Int(try prefix.uint16(at: 8, "header length"))
        case 2, 3:
            let length = Int(try prefix.uint32(at: 8, "header length"))
            guard length <= maximumHeaderSize else {
                throw ParseError.malformed("header length \(length) exceeds the \(maximumHeaderSize)-byte limit")
            }
            return 12 + length
        default:
            throw ParseError.unsupported("unsupported .npy format version \(major)")
        }
    }

    /// Parses the header at the start of `bytes` (which need hold only the header).
    static func parseHeader(_ bytes: Bytes) throws -> Header {
        let extent = try headerExtent(bytes)
        let major = try bytes.uint8(at: 6)
        let minor = try bytes.uint8(at: 7)
        let textStart = major == 1 ? 10 : 12
        let text = try bytes.slice(textStart, extent - textStart, "header")
        // Versions 1 and 2 are Latin-1, version 3 UTF-8; the keys and values zoo needs are ASCII.
        let literal = try withContext("header") { try PythonLiteral.parse(text.raw) }
        guard case .dict(let entries) = literal else { throw ParseError.malformed("header is not a dict literal") }
        func value(_ key: String) -> PythonLiteral? { entries.first { $0.key == .string(key) }?.value }

        guard let descrValue = value("descr") else { throw ParseError.malformed("header has no 'descr'") }
        guard case .string(let descr) = descrValue else {
            throw ParseError.unsupported("structured dtypes are not supported (descr is not a string)")
        }
        let (dtype, bigEndian) = try parseDescr(descr)
        guard case .bool(let fortranOrder)? = value("fortran_order") else {
            throw ParseError.malformed("header has no boolean 'fortran_order'")
        }
        guard case .tuple(let dimensions)? = value("shape") else { throw ParseError.malformed("header has no 'shape' tuple") }
        let shape = try dimensions.map { dimension -> Int in
            guard case .int(let size) = dimension, size >= 0 else {
                throw ParseError.malformed("shape holds something other than non-negative integers")
            }
            return size
        }
        guard let count = Checked.elementCount(shape), Checked.multiply(count, dtype.byteSize) != nil else {
            throw ParseError.malformed("shape \(shape) is impossibly large")
        }
        return Header(
            dtype: dtype, bigEndian: bigEndian, fortranOrder: fortranOrder, shape: shape, dataOffset: extent,
            version: "\(major).\(minor)")
    }

    static func parseDescr(_ descr: String) throws -> (DType, bigEndian: Bool) {
        var characters = Substring(descr)
        var bigEndian = !ElementConversion.isLittleEndianHost
        if let order = characters.first, "<>|=".contains(order) {
            if order == ">" { bigEndian = true }
            if order == "<" { bigEndian = false }
            characters = characters.dropFirst()
        }
        let table: [Substring: DType] = [
            "f2": .f16, "f4": .f32, "f8": .f64, "i1": .i8, "i2": .i16, "i4": .i32, "i8": .i64,
            "u1": .u8, "u2": .u16, "u4": .u32, "u8": .u64, "b1": .bool, "?": .bool,
        ]
        if characters.first == "O" {
            throw ParseError.unsupported("object arrays (descr \(quoted(descr, limit: 40))) hold pickled Python objects; zoo does not load them")
        }
        guard let dtype = table[characters] else {
            throw ParseError.unsupported("unsupported dtype \(quoted(descr, limit: 40))")
        }
        return (dtype, dtype.byteSize == 1 ? false : bigEndian)
    }

    /// Converts the array's data (which follows its header in `bytes`) to row-major Floats.
    static func floats(_ bytes: Bytes, header: Header) throws -> [Float] {
        try checkSize(header, total: bytes.count)
        let data = try bytes.slice(header.dataOffset, header.byteCount, "array data")
        let count = Checked.elementCount(header.shape) ?? 0
        if header.fortranOrder && header.shape.count > 1 {
            return try ElementConversion.floats(
                storage: data.raw, storageCount: count, dtype: header.dtype, offset: 0, shape: header.shape,
                strides: ElementConversion.columnMajorStrides(header.shape), bigEndian: header.bigEndian)
        }
        return try ElementConversion.floats(data.raw, dtype: header.dtype, count: count, bigEndian: header.bigEndian)
    }

    /// Checks that `total` bytes are exactly header plus data.
    static func checkSize(_ header: Header, total: Int) throws {
        guard let expected = Checked.add(header.dataOffset, header.byteCount) else {
            throw ParseError.malformed("shape \(header.shape) is impossibly large")
        }
        if total < expected {
            throw ParseError.truncated("truncated: shape \(header.shape) of \(header.dtype.rawValue) needs \(expected) bytes, the array has \(total)")
        }
        if total > expected {
            throw ParseError.malformed("\(total - expected) bytes follow the data of shape \(header.shape)")
        }
    }

    /// Parses a whole `.npy` held in memory and converts it: the fuzzer's entry point.
    static func parse(bytes: [UInt8]) throws -> (TensorInfo, [Float]) {
        let storage = Bytes(copying: bytes)
        let header = try parseHeader(storage)
        try checkSize(header, total: storage.count)
        return (TensorInfo(name: "", dtype: header.dtype, shape: header.shape), try floats(storage, header: header))
    }

    // MARK: Writing

    /// The bytes of a float32 `.npy` array (version 1.0, or 2.0 when the header needs it).
    static func encode(_ values: [Float], shape: [Int], path: String) throws -> [UInt8] {
        guard let count = Checked.elementCount(shape), count == values.count else {
            throw WeightFileError(
                path: path, kind: .malformed, message: "shape \(shape) does not hold \(values.count) values")
        }
        var out = header(descr: "<f4", shape: shape)
        out.reserveCapacity(out.count + values.count * 4)
        if ElementConversion.isLittleEndianHost {
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        } else {
            for value in values { out += withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        }
        return out
    }

    /// The magic, version and header of a C-order array of NumPy type `descr` (`<f4`, `<i8`),
    /// padded so that the data starts 64-byte aligned.
    static func header(descr: String, shape: [Int]) -> [UInt8] {
        let dimensions: String
        switch shape.count {
        case 0: dimensions = "()"
        case 1: dimensions = "(\(shape[0]),)"
        default: dimensions = "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
        var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(dimensions), }".utf8)
        let prefixSize = header.count + 1 + 10 <= 0xffff ? 10 : 12
        while (prefixSize + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0a)
        var out = magic
        if prefixSize == 10 {
            out += [1, 0]
            out += withUnsafeBytes(of: UInt16(header.count).littleEndian) { Array($0) }
        } else {
            out += [2, 0]
            out += withUnsafeBytes(of: UInt32(header.count).littleEndian) { Array($0) }
        }
        return out + header
    }

    /// Writes a float32 array as `.npy` (C order), atomically.
    public static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        let data = try encode(values, shape: shape, path: url.path)
        try AtomicFile.write(to: url) { sink in try sink.write(data) }
    }

    // MARK: Reading

    /// Reads the `.npy` array at `url` into memory, converted to `Float` in row-major (C) order.
    ///
    /// Reads what ``write(_:shape:to:)`` writes and what `np.save` writes for numeric arrays:
    /// format versions 1 to 3; float16, float32 and float64 (converted with IEEE
    /// round-to-nearest), signed and unsigned integers of 8 to 64 bits (to the nearest `Float`)
    /// and bool (0 or 1); either byte order; C or Fortran order (Fortran arrays are reordered).
    /// A zero-dimensional array has shape `[]` and one value.
    ///
    /// Throws ``WeightFileError`` naming the file: `.unsupported` for object arrays (pickled
    /// Python objects, never loaded), structured and other dtypes; `.truncated` or `.malformed`
    /// when the data does not match the header's shape.
    public static func read(from url: URL) throws -> NPYArray {
        try locatingErrors(at: url.path) {
            let bytes = Bytes(try ByteStorage.map(fileAt: url.path))
            guard bytes.count > 0 else { throw ParseError.truncated("truncated: the file is empty") }
            let header = try parseHeader(bytes)
            try checkSize(header, total: bytes.count)
            return NPYArray(values: try floats(bytes, header: header), shape: header.shape, storedType: header.dtype)
        }
    }
}

/// A NumPy array read by ``NPYFile/read(from:)``.
public struct NPYArray: Sendable, Equatable {
    /// The elements as `Float`, in row-major (C) order whatever the file's order.
    public var values: [Float]
    /// The dimensions, outermost first; `[]` for a zero-dimensional array.
    public var shape: [Int]
    /// The element type the file stores, before conversion to `Float`.
    public var storedType: DType

    /// Creates an array; `values` must hold as many elements as `shape` describes.
    public init(values: [Float], shape: [Int], storedType: DType = .f32) {
        self.values = values
        self.shape = shape
        self.storedType = storedType
    }
}

/// A single `.npy` array opened for reading. NumPy arrays carry no name, so its one tensor is
/// named "" (the empty string).
final class NPYReader: WeightReader {
    let url: URL
    let format = WeightFormat.npy
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let bytes: Bytes
    private let header: NPYFile.Header

    init(bytes: Bytes, url: URL) throws {
        let header = try NPYFile.parseHeader(bytes)
        try NPYFile.checkSize(header, total: bytes.count)
        self.url = url
        self.bytes = bytes
        self.header = header
        self.tensors = [TensorInfo(name: "", dtype: header.dtype, shape: header.shape)]
        self.metadata = WeightMetadata(
            writerVersions: ["npy format version": header.version],
            extra: header.fortranOrder ? ["fortran_order": "True"] : [:])
    }

    func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }

    func floats(_ name: String) throws -> [Float] {
        guard info(name) != nil else {
            throw WeightFileError(path: url.path, kind: .missingTensor, message: "no tensor named \(quoted(name))")
        }
        return try locatingErrors(at: url.path) { try NPYFile.floats(bytes, header: header) }
    }
}

/// The subset of Python literals that `.npy` headers use: dicts, tuples, lists, strings,
/// integers, booleans and None.
indirect enum PythonLiteral: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([DictEntry])

    struct DictEntry: Equatable {
        let key: PythonLiteral
        let value: PythonLiteral
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> PythonLiteral {
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == bytes.count else { throw ParseError.malformed("unexpected text after the literal") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x0a || byte == 0x09 || byte == 0x0d { position += 1 }
        }

        mutating func value(depth: Int) throws -> PythonLiteral {
            guard depth < 32 else { throw ParseError.malformed("literal nests too deeply") }
            guard let byte = current else { throw ParseError.malformed("literal ends early") }
            switch byte {
            case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string(quote: byte))
            case UInt8(ascii: "{"):
                let items = try sequence(close: UInt8(ascii: "}"), depth: depth, pairs: true)
                var entries: [DictEntry] = []
                var index = 0
                while index + 1 < items.count {
                    entries.append(DictEntry(key: items[index], value: items[index + 1]))
                    index += 2
                }
                return .dict(entries)
            case UInt8(ascii: "("): return .tuple(try sequence(close: UInt8(ascii: ")"), depth: depth, pairs: false))
            case UInt8(ascii: "["): return .list(try sequence(close: UInt8(ascii: "]"), depth: depth, pairs: false))
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .int(try integer())
            default:
                let word = identifier()
                switch word {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                default: throw ParseError.malformed("unexpected \(quoted(word.isEmpty ? String(UnicodeScalar(byte)) : word, limit: 20)) in literal")
                }
            }
        }

        mutating func identifier() -> String {
            let start = position
            while let byte = current, (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) { position += 1 }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        }

        mutating func integer() throws -> Int {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            while let byte = current, byte >= 0x30 && byte <= 0x39 { position += 1 }
            // Python 2 headers may write long integers as 3L.
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            if current == UInt8(ascii: "L") { position += 1 }
            guard let value = Int(text) else { throw ParseError.malformed("integer \(quoted(text, limit: 30)) is malformed or too large") }
            return value
        }

        mutating func string(quote: UInt8) throws -> String {
            position += 1
            var scalars = String.UnicodeScalarView()
            while true {
                guard let byte = current else { throw ParseError.malformed("string literal is not closed") }
                position += 1
                if byte == quote { return String(scalars) }
                if byte == 0x5c {
                    guard let escaped = current else { throw ParseError.malformed("string literal ends in a backslash") }
                    position += 1
                    scalars.append(Unicode.Scalar(escaped))
                } else {
                    scalars.append(Unicode.Scalar(byte))
                }
            }
        }

        mutating func sequence(close: UInt8, depth: Int, pairs: Bool) throws -> [PythonLiteral] {
            position += 1
            var items: [PythonLiteral] = []
            while true {
                skipSpace()
                if current == close {
                    position += 1
                    return items
                }
                items.append(try value(depth: depth + 1))
                skipSpace()
                if pairs {
                    guard current == UInt8(ascii: ":") else { throw ParseError.malformed("dict literal lacks ':'") }
                    position += 1
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                }
                if current == UInt8(ascii: ",") {
                    position += 1
                } else if current != close {
                    throw ParseError.malformed("expected ',' in literal")
                }
            }
        }
    }
}
