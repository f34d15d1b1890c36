import Foundation
import Testing
import ZooWeights

/// Hand-made malformed files: each is rejected with a clear error that names the file and
/// what is wrong, without crashing, hanging or allocating what a header claims.
@Suite struct MalformedInputTests {
    /// Writes `bytes` as `name`, opens it, reads every tensor, and returns the error.
    @discardableResult
    func rejected(
        _ bytes: [UInt8], name: String, kind: WeightFileError.Kind? = nil, mentions: [String] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> WeightFileError? {
        let folder = try TemporaryFolder()
        let url = try folder.write(bytes, name: name)
        let error = expectWeightError(sourceLocation: sourceLocation) { try openAndReadEverything(url) }
        guard let error else { return nil }
        #expect(error.path == url.path, sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix(url.path + ": "), sourceLocation: sourceLocation)
        if let kind { #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation) }
        for mention in mentions {
            #expect(error.message.contains(mention), "\"\(mention)\" not in: \(error.message)", sourceLocation: sourceLocation)
        }
        return error
    }

    static let float32Data = (0..<6).flatMap { le32(Float($0).bitPattern) }

    // MARK: Files that are not weight files

    @Test func missingEmptyAndDirectory() throws {
        let folder = try TemporaryFolder()
        let missing = folder.file("nope.safetensors")
        let error = expectWeightError { _ = try WeightFiles.open(missing) }
        #expect(error?.kind == .io)
        #expect(error?.path == missing.path)
        try rejected([], name: "empty.pt", kind: .truncated)
        let directory = expectWeightError { _ = try WeightFiles.open(folder.url) }
        #expect(directory?.kind == .io)
        try rejected(Array("hello, this is text and not a weight file".utf8), name: "notes.bin", kind: .unrecognizedFormat, mentions: ["unrecognized"])
        var tar = [UInt8](repeating: 0, count: 1024)
        tar.replaceSubrange(257..<262, with: Array("ustar".utf8))
        try rejected(tar, name: "old.pth", kind: .unsupported, mentions: ["tar"])
        try rejected([0x80, 0x02, 0x4e, 0x2e], name: "plain.pkl", kind: .unsupported, mentions: ["pickle"])
    }

    /// The first byte of every fixture changed: no format accepts it.
    @Test(arguments: Fixtures.readable)
    func wrongMagic(_ name: String) throws {
        var bytes = [UInt8](try Data(contentsOf: Fixtures.url(name)))
        bytes[0] ^= 0x5a
        try rejected(bytes, name: name)
    }

    // MARK: safetensors

    @Test func safetensorsHeaderSizes() throws {
        let header = Array("{\"a\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}}".utf8)
        try rejected(le64(1 << 63) + header + Self.float32Data, name: "huge.safetensors", kind: .malformed, mentions: ["header length"])
        try rejected(le64(100_000_001) + header, name: "limit.safetensors", kind: .malformed, mentions: ["100000000"])
        try rejected(le64(UInt64(header.count + 1000)) + header + Self.float32Data, name: "past.safetensors", kind: .truncated)
        try rejected(le64(3), name: "short.safetensors", kind: .truncated)
        try rejected([1, 2, 3], name: "tiny.safetensors", kind: .truncated)
    }

    static let safetensorsCases: [(name: String, header: String, data: [UInt8], kind: WeightFileError.Kind, mention: String)] = [
        ("offsets past end", #"{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}"#, [], .truncated, "24"),
        ("offset far past end", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551000,18446744073709551008]}}"#, float32Data, .malformed, "data_offsets"),
        ("overlap", #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#, float32Data, .malformed, "overlaps"),
        ("gap", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#, float32Data, .malformed, "gap"),
        ("trailing data", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, float32Data, .malformed, "belong to no tensor"),
        ("shape mismatch", #"{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,24]}}"#, float32Data, .malformed, "needs 20"),
        ("shape overflow", #"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,24]}}"#, float32Data, .malformed, "impossibly large"),
        ("negative dimension", #"{"a":{"dtype":"F32","shape":[-6],"data_offsets":[0,24]}}"#, float32Data, .malformed, "non-negative"),
        ("begin after end", #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[24,0]}}"#, float32Data, .malformed, "data_offsets"),
        ("complex dtype", #"{"w":{"dtype":"C64","shape":[3],"data_offsets":[0,24]}}"#, float32Data, .unsupported, "'C64'"),
        ("float8 dtype", #"{"w":{"dtype":"F8_E4M3","shape":[24],"data_offsets":[0,24]}}"#, float32Data, .unsupported, "'F8_E4M3'"),
        ("duplicate name", #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"a":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}}"#, float32Data, .duplicateName, "'a'"),
        ("metadata not strings", #"{"__metadata__":{"epoch":3},"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}"#, float32Data, .malformed, "epoch"),
        ("header is an array", #"[1,2,3]"#, float32Data, .malformed, "not a JSON object"),
        ("header is not JSON", #"{"a":{"dtype":"F32",}"#, float32Data, .malformed, "JSON"),
        ("missing dtype", #"{"a":{"shape":[6],"data_offsets":[0,24]}}"#, float32Data, .malformed, "dtype"),
        ("deep nesting", "{\"a\":" + String(repeating: "[", count: 100_000) + "}", float32Data, .malformed, "nests deeper"),
    ]

    @Test(arguments: safetensorsCases.map(\.name))
    func safetensorsHeaders(_ name: String) throws {
        let testCase = try #require(Self.safetensorsCases.first { $0.name == name })
        try rejected(
            makeSafetensors(header: testCase.header, data: testCase.data), name: "case.safetensors", kind: testCase.kind,
            mentions: [testCase.mention])
    }

    @Test func safetensorsInvalidUTF8() throws {
        let header: [UInt8] = Array("{\"".utf8) + [0xff, 0xfe] + Array("\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}  ".utf8)
        try rejected(le64(UInt64(header.count)) + header, name: "utf8.safetensors", kind: .malformed, mentions: ["UTF-8"])
    }

    // MARK: NumPy

    static let npyCases: [(name: String, bytes: [UInt8], kind: WeightFileError.Kind, mention: String)] = [
        ("header past end", [0x93] + Array("NUMPY".utf8) + [1, 0] + le16(0xffff) + Array("{'descr'".utf8), .truncated, "header"),
        ("v2 header length absurd", [0x93] + Array("NUMPY".utf8) + [2, 0] + le32(0x7fff_ffff) + Array("{}".utf8), .malformed, "limit"),
        ("shape overflow", makeNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776), }", data: float32Data), .malformed, "impossibly large"),
        ("shape beyond data", makeNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", data: float32Data), .truncated, "needs"),
        ("negative shape", makeNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (-6,), }", data: float32Data), .malformed, "non-negative"),
        ("complex dtype", makeNPY(header: "{'descr': '<c8', 'fortran_order': False, 'shape': (3,), }", data: float32Data), .unsupported, "'<c8'"),
        ("object dtype", makeNPY(header: "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }", data: float32Data), .unsupported, "object"),
        ("structured dtype", makeNPY(header: "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (6,), }", data: float32Data), .unsupported, "structured"),
        ("no fortran_order", makeNPY(header: "{'descr': '<f4', 'shape': (6,), }", data: float32Data), .malformed, "fortran_order"),
        ("trailing data", makeNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", data: float32Data), .malformed, "follow"),
        ("bad literal", makeNPY(header: "{'descr': '<f4', 'fortran_order': Fals, 'shape': (6,), }", data: float32Data), .malformed, "literal"),
        ("version 9", [0x93] + Array("NUMPY".utf8) + [9, 0] + le16(10) + Array("{}        ".utf8), .unsupported, "version 9"),
    ]

    @Test(arguments: npyCases.map(\.name))
    func npyHeaders(_ name: String) throws {
        let testCase = try #require(Self.npyCases.first { $0.name == name })
        try rejected(testCase.bytes, name: "case.npy", kind: testCase.kind, mentions: [testCase.mention])
    }

    // MARK: Zip archives (npz, torch, .keras)

    /// An npz written by zoo, and the offsets of its records, for patching.
    func npz(compressed: Bool) throws -> (bytes: [UInt8], central: Int, end: Int) {
        let folder = try TemporaryFolder()
        let url = folder.file("a.npz")
        try NPZFile.write([(name: "a", shape: [1000], values: [Float](repeating: 1.5, count: 1000))], compressed: compressed, to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let central = try #require(occurrences(of: [0x50, 0x4b, 0x01, 0x02], in: bytes).first)
        let end = try #require(occurrences(of: [0x50, 0x4b, 0x05, 0x06], in: bytes).last)
        return (bytes, central, end)
    }

    func patched(_ bytes: [UInt8], at offset: Int, with values: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.replaceSubrange(offset..<(offset + values.count), with: values)
        return copy
    }

    @Test func zipStructure() throws {
        let (bytes, central, end) = try npz(compressed: false)
        try rejected(patched(bytes, at: end + 16, with: le32(0x7fff_0000)), name: "cd.npz", kind: .malformed, mentions: ["central directory"])
        try rejected(patched(bytes, at: end + 10, with: le16(0xfff0)), name: "count.npz", kind: .malformed, mentions: ["entries"])
        try rejected(patched(bytes, at: end + 10, with: le16(0xffff)), name: "zip64.npz", kind: .malformed, mentions: ["zip64"])
        try rejected(patched(bytes, at: central + 42, with: le32(0x7fff_0000)), name: "local.npz", kind: .malformed, mentions: ["local header", "past the end"])
        try rejected(patched(bytes, at: central + 42, with: le32(7)), name: "nolocal.npz", kind: .malformed, mentions: ["no local header"])
        try rejected(patched(bytes, at: central + 20, with: le32(0x7fff_0000)), name: "size.npz", kind: .truncated, mentions: ["past the end"])
        try rejected(patched(bytes, at: central + 10, with: le16(12)), name: "bzip2.npz", kind: .unsupported, mentions: ["compression method 12"])
        try rejected(patched(bytes, at: central + 8, with: le16(1)), name: "encrypted.npz", kind: .unsupported, mentions: ["encrypted"])
        try rejected(Array(bytes[0..<(end - 1)]), name: "noend.npz", kind: .truncated, mentions: ["end-of-central-directory"])
        // Stored entries are checked too, when their bytes are first read.
        try rejected(patched(bytes, at: central + 16, with: le32(0x1234_5678)), name: "crc.npz", kind: .checksumMismatch, mentions: ["CRC-32 mismatch", "'a.npy'"])
    }

    @Test func deflatedEntries() throws {
        let (bytes, central, _) = try npz(compressed: true)
        // The array header's size check catches a wrong uncompressed size first.
        try rejected(patched(bytes, at: central + 24, with: le32(0xffff_fff0)), name: "big.npz", kind: .malformed, mentions: ["follow the data"])
        try rejected(patched(bytes, at: central + 16, with: le32(0x1234_5678)), name: "crc.npz", kind: .checksumMismatch, mentions: ["CRC-32 mismatch", "'a.npy'"])
        try rejected(patched(bytes, at: central + 24, with: le32(4096)), name: "shorter.npz", kind: .truncated)
        // A deflated data.pkl that claims 4 GB from a few bytes is rejected before anything is allocated.
        let pickle = Self.statePickle([("w", "0", "FloatStorage", 6, 0, [6], [1])])
        var bomb = makeZip([("archive/data.pkl", pickle), ("archive/data/0", Self.float32Data)], deflated: true)
        let bombCentral = try #require(occurrences(of: [0x50, 0x4b, 0x01, 0x02], in: bomb).first)
        bomb = patched(bomb, at: bombCentral + 24, with: le32(0xffff_fff0))
        try rejected(bomb, name: "bomb.pt", kind: .malformed, mentions: ["more than deflate can produce", "data.pkl"])
        // The same archive, honest, reads (deflated storages are inflated on demand).
        let honest = makeZip([("archive/data.pkl", pickle), ("archive/data/0", Self.float32Data)], deflated: true)
        let folder = try TemporaryFolder()
        #expect(try WeightFiles.open(try folder.write(honest, name: "honest.pt")).floats("w") == [0, 1, 2, 3, 4, 5])
        let dataStart = 30 + "a.npy".utf8.count
        try rejected(patched(bytes, at: dataStart + 20, with: [0xff, 0xff, 0xff, 0xff]), name: "corrupt.npz")
    }

    @Test func duplicateEntries() throws {
        let array = makeNPY(header: "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", data: Self.float32Data)
        try rejected(makeZip([("a.npy", array), ("a.npy", array)]), name: "dup.npz", kind: .duplicateName, mentions: ["'a.npy'"])
        let good = makeZip([("a.npy", array), ("b.npy", array)])
        let folder = try TemporaryFolder()
        #expect(try openAndReadEverything(try folder.write(good, name: "ok.npz")).map(\.name) == ["a", "b"])
    }

    // MARK: torch.save

    /// A protocol-2 pickle of {name: _rebuild_tensor_v2(storage(key, type, numel), offset, size, stride)}.
    static func statePickle(
        _ tensors: [(name: String, key: String, type: String, numel: Int, offset: Int, size: [Int], stride: [Int])]
    ) -> [UInt8] {
        func unicode(_ text: String) -> [UInt8] { [0x58] + le32(UInt32(text.utf8.count)) + Array(text.utf8) }
        func int(_ value: Int) -> [UInt8] { [0x4a] + le32(UInt32(bitPattern: Int32(value))) }
        func tuple(_ values: [Int]) -> [UInt8] { [0x28] + values.flatMap(int) + [0x74] }
        var bytes: [UInt8] = [0x80, 0x02, 0x7d, 0x28]
        for tensor in tensors {
            bytes += unicode(tensor.name)
            bytes += Array("ctorch._utils\n_rebuild_tensor_v2\n".utf8) + [0x28]
            bytes += [0x28] + unicode("storage") + Array("ctorch\n\(tensor.type)\n".utf8) + unicode(tensor.key) + unicode("cpu") + int(tensor.numel) + [0x74, 0x51]
            bytes += int(tensor.offset) + tuple(tensor.size) + tuple(tensor.stride) + [0x89, 0x4e] + [0x74, 0x52]
        }
        return bytes + [0x75, 0x2e]
    }

    static func torchZip(pickle: [UInt8], storages: [(String, [UInt8])], byteorder: String = "little") -> [UInt8] {
        makeZip([("archive/data.pkl", pickle), ("archive/byteorder", Array(byteorder.utf8))] + storages.map { ("archive/data/\($0.0)", $0.1) } + [("archive/version", Array("3\n".utf8))])
    }

    @Test func torchZipPositiveCases() throws {
        // A transposed view and a big-endian archive, read back exactly.
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let pickle = Self.statePickle([
            ("w", "0", "FloatStorage", 6, 0, [2, 3], [3, 1]),
            ("t", "0", "FloatStorage", 6, 0, [3, 2], [1, 3]),
            ("s", "0", "FloatStorage", 6, 4, [2], [1]),
        ])
        let folder = try TemporaryFolder()
        let little = try folder.write(Self.torchZip(pickle: pickle, storages: [("0", values.flatMap { le32($0.bitPattern) })]), name: "l.pt")
        let reader = try WeightFiles.open(little)
        #expect(try reader.floats("w") == values)
        #expect(try reader.floats("t") == [1, 4, 2, 5, 3, 6])
        #expect(try reader.floats("s") == [5, 6])
        let bigData = values.flatMap { withUnsafeBytes(of: $0.bitPattern.bigEndian) { Array($0) } }
        let big = try folder.write(Self.torchZip(pickle: pickle, storages: [("0", bigData)], byteorder: "big"), name: "b.pt")
        #expect(try WeightFiles.open(big).floats("t") == [1, 4, 2, 5, 3, 6])
    }

    @Test func torchZipDamage() throws {
        let data = Self.float32Data
        let good = Self.statePickle([("w", "0", "FloatStorage", 6, 0, [2, 3], [3, 1])])
        try rejected(Self.torchZip(pickle: good, storages: []), name: "nostorage.pt", kind: .malformed, mentions: ["storage '0'", "archive/data/0"])
        try rejected(Self.torchZip(pickle: good, storages: [("0", Array(data[0..<20]))]), name: "short.pt", kind: .truncated, mentions: ["'0'"])
        let outside = Self.statePickle([("w", "0", "FloatStorage", 6, 4, [2, 3], [3, 1])])
        try rejected(Self.torchZip(pickle: outside, storages: [("0", data)]), name: "view.pt", kind: .malformed, mentions: ["tensor 'w'", "reaches element"])
        let huge = Self.statePickle([("w", "0", "FloatStorage", 6, 0, [2, 3], [2_000_000_000, 1])])
        try rejected(Self.torchZip(pickle: huge, storages: [("0", data)]), name: "stride.pt", kind: .malformed)
        let negative = Self.statePickle([("w", "0", "FloatStorage", 6, 0, [2, 3], [-3, 1])])
        try rejected(Self.torchZip(pickle: negative, storages: [("0", data)]), name: "negative.pt", kind: .malformed, mentions: ["stride"])
        let complex = Self.statePickle([("z", "0", "ComplexFloatStorage", 3, 0, [3], [1])])
        try rejected(Self.torchZip(pickle: complex, storages: [("0", data)]), name: "complex.pt", kind: .unsupported, mentions: ["torch.ComplexFloatStorage"])
        let quantized = Self.statePickle([("q", "0", "QInt8Storage", 3, 0, [3], [1])])
        try rejected(Self.torchZip(pickle: quantized, storages: [("0", data)]), name: "qint.pt", kind: .disallowedGlobal, mentions: ["global 'torch.QInt8Storage'"])
        try rejected(Self.torchZip(pickle: good, storages: [("0", data)], byteorder: "middle"), name: "order.pt", kind: .malformed, mentions: ["byteorder"])
        let twoPickles = makeZip([("a/data.pkl", good), ("b/data.pkl", good)])
        try rejected(twoPickles, name: "two.pt", kind: .malformed, mentions: ["data.pkl"])
        let duplicate = Self.statePickle([("w", "0", "FloatStorage", 6, 0, [6], [1]), ("w", "0", "FloatStorage", 6, 0, [6], [1])])
        // A dict with the same key twice keeps the last value, as Python does.
        let folder = try TemporaryFolder()
        #expect(try openAndReadEverything(try folder.write(Self.torchZip(pickle: duplicate, storages: [("0", data)]), name: "d.pt")).count == 1)
    }

    /// A legacy (pre-1.6) torch.save stream with one FloatStorage tensor.
    static func legacyTorch(count: UInt64 = 6, version: UInt16 = 1001, storage: [UInt8] = float32Data) -> [UInt8] {
        let magic: [UInt8] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]
        let protocolVersion: [UInt8] = [0x80, 0x02, 0x4d] + le16(version) + [0x2e]
        let systemInfo: [UInt8] = [0x80, 0x02, 0x7d, 0x58] + le32(13) + Array("little_endian".utf8) + [0x88, 0x73, 0x2e]
        var object = statePickle([("w", "140", "FloatStorage", 6, 0, [2, 3], [3, 1])])
        // Legacy persistent ids carry a sixth field (view metadata): None.
        let tupleEnd = occurrences(of: [0x74, 0x51], in: object)[0]
        object.insert(0x4e, at: tupleEnd)
        let keys: [UInt8] = [0x80, 0x02, 0x5d, 0x58] + le32(3) + Array("140".utf8) + [0x61, 0x2e]
        return magic + protocolVersion + systemInfo + object + keys + le64(count) + storage
    }

    @Test func torchLegacy() throws {
        let folder = try TemporaryFolder()
        let good = try folder.write(Self.legacyTorch(), name: "legacy.pt")
        let reader = try WeightFiles.open(good)
        #expect(reader.format == .torchLegacy)
        #expect(try reader.floats("w") == [0, 1, 2, 3, 4, 5])
        try rejected(Self.legacyTorch(version: 1000), name: "v1000.pt", kind: .unsupported, mentions: ["1000"])
        try rejected(Self.legacyTorch(count: 1 << 62), name: "count.pt", kind: .malformed, mentions: ["'140'"])
        try rejected(Self.legacyTorch(count: 1 << 40), name: "past.pt", kind: .truncated, mentions: ["'140'"])
        try rejected(Self.legacyTorch(count: 2, storage: Array(Self.float32Data[0..<8])), name: "small.pt", kind: .malformed, mentions: ["'140'"])
        try rejected(Array(Self.legacyTorch()[0..<15]), name: "magic-only.pt", kind: .truncated)
    }

    // MARK: HDF5

    /// An HDF5 file written by h5py with one dataset and no Keras structure.
    static let plainHDF5 = Data(base64Encoded: """
iUhERg0KGgoAAAAAAAgIAAQAEAAAAAAAAAAAAAAAAAD//////////wwIAAAAAAAA//////////8AAAAAAAAAAGAAAAAAAAAAAQAA
AAAAAACIAAAAAAAAAKgCAAAAAAAAAQABAAEAAAAYAAAAAAAAABEAEAAAAAAAiAAAAAAAAACoAgAAAAAAAFRSRUUAAAEA////////
/////////////wAAAAAAAAAAMAQAAAAAAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAABIRUFQAAAAAFgAAAAAAAAAEAAAAAAAAADIAgAAAAAAAAAAAAAAAAAAeAAAAAAAAAABAAAAAAAAAEgAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAUAAQAAAAABAAAAAAAAAQAYAAAAAAAB
AQEAAAAAAAMAAAAAAAAAAwAAAAAAAAADABgAAQAAABEgHwAEAAAAAAAgABcIABd/AAAAAAAAAAUACAABAAAAAgICAQAAAAAIABgA
AAAAAAMBAAgAAAAAAAAMAAAAAAAAAAAAAAAAAAAAiAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAFNOT0QBAAEACAAAAAAAAAAgAwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACAPwAAAEA=
""".replacingOccurrences(of: "\n", with: "")).map { [UInt8]($0) } ?? []

    @Test func hdf5() throws {
        #expect(Self.plainHDF5.count == 2060)
        try rejected(Self.plainHDF5, name: "plain.h5", kind: .unrecognizedFormat, mentions: ["not Keras weights"])
        try rejected(Array(Self.plainHDF5[0..<1000]), name: "cut.h5", kind: .truncated, mentions: ["superblock"])
        try rejected([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 7] + [UInt8](repeating: 0, count: 100), name: "v7.h5", kind: .unsupported, mentions: ["version 7"])
        var garbage = Self.plainHDF5
        for index in stride(from: 100, to: garbage.count, by: 3) { garbage[index] = 0xa5 }
        try rejected(garbage, name: "garbage.h5")
        try rejected(Array(HDF5Magic.bytes), name: "magic.h5", kind: .truncated)
    }
}

enum HDF5Magic {
    static let bytes: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
}
