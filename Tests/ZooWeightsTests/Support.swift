import Foundation
import Testing
import ZooWeights

/// Fixture files and their description, `expected.json`, written by
/// `converters/make_weight_fixtures.py`.
enum Fixtures {
    static let folder: URL = {
        guard let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) else {
            fatalError("the Fixtures resource is missing from the test bundle")
        }
        return url
    }()

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    /// `expected.json` parsed with Foundation (read-only after initialization).
    nonisolated(unsafe) static let expected: [String: Any] = {
        guard let data = try? Data(contentsOf: url("expected.json")),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else {
            fatalError("cannot read Fixtures/expected.json")
        }
        return object
    }()

    static var fixtures: [String: [String: Any]] {
        (expected["fixtures"] as? [String: [String: Any]]) ?? [:]
    }

    /// Names of the fixtures that must open.
    static var readable: [String] {
        fixtures.filter { ($0.value["format"] as? String) != "rejected" }.keys.sorted()
    }

    /// Names of the fixtures that must be rejected.
    static var rejected: [String] {
        fixtures.filter { ($0.value["format"] as? String) == "rejected" }.keys.sorted()
    }

    /// Every fixture file (not expected.json).
    static var allFiles: [String] {
        fixtures.keys.sorted()
    }
}

/// A fresh temporary folder, removed when the value is deinitialized.
final class TemporaryFolder {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-weights-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }

    /// Writes `bytes` to a file called `name` and returns its URL.
    func write(_ bytes: [UInt8], name: String) throws -> URL {
        let target = file(name)
        try Data(bytes).write(to: target)
        return target
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Opens a file and reads every tensor, as a user would; returns the listing.
@discardableResult
func openAndReadEverything(_ url: URL) throws -> [TensorInfo] {
    let reader = try WeightFiles.open(url)
    for tensor in reader.tensors {
        let values = try reader.floats(tensor.name)
        if values.count != tensor.elementCount {
            throw WeightFileError(
                path: url.path, kind: .malformed,
                message: "test: \(tensor.name) gave \(values.count) values for shape \(tensor.shape)")
        }
    }
    return reader.tensors
}

/// Expects `body` to throw a `WeightFileError` and returns it.
func expectWeightError(
    _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> WeightFileError? {
    do {
        try body()
        Issue.record("expected a WeightFileError, nothing was thrown \(comment.map { "(\($0))" } ?? "")", sourceLocation: sourceLocation)
        return nil
    } catch let error as WeightFileError {
        return error
    } catch {
        Issue.record("expected a WeightFileError, got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

extension Array where Element == UInt8 {
    init(_ text: String) { self = Array(text.utf8) }
}

/// Little-endian encodings for building malformed files by hand.
func le64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
func le16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

/// CRC-32 (zip polynomial), for building zip archives by hand.
func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A zip archive of `entries`, written the simple way. With `deflated`, each entry is method 8
/// holding one "stored" deflate block (valid raw deflate that needs no compressor).
func makeZip(_ entries: [(name: String, data: [UInt8])], deflated: Bool = false) -> [UInt8] {
    var out: [UInt8] = []
    var central: [UInt8] = []
    for (name, data) in entries {
        let offset = UInt32(out.count)
        let nameBytes = Array(name.utf8)
        let crc = crc32(data)
        let payload = deflated ? [0x01] + le16(UInt16(data.count)) + le16(~UInt16(data.count)) + data : data
        let method: UInt16 = deflated ? 8 : 0
        out += le32(0x0403_4b50) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0x21) + le32(crc)
        out += le32(UInt32(payload.count)) + le32(UInt32(data.count)) + le16(UInt16(nameBytes.count)) + le16(0) + nameBytes + payload
        central += le32(0x0201_4b50) + le16(20) + le16(20) + le16(0) + le16(method) + le16(0) + le16(0x21) + le32(crc)
        central += le32(UInt32(payload.count)) + le32(UInt32(data.count)) + le16(UInt16(nameBytes.count)) + le16(0) + le16(0)
        central += le16(0) + le16(0) + le32(0) + le32(offset) + nameBytes
    }
    let directoryOffset = UInt32(out.count)
    out += central
    out += le32(0x0605_4b50) + le16(0) + le16(0) + le16(UInt16(entries.count)) + le16(UInt16(entries.count))
    out += le32(UInt32(central.count)) + le32(directoryOffset) + le16(0)
    return out
}

/// Offsets of every occurrence of `pattern` in `bytes`.
func occurrences(of pattern: [UInt8], in bytes: [UInt8]) -> [Int] {
    guard pattern.count <= bytes.count, !pattern.isEmpty else { return [] }
    return (0...(bytes.count - pattern.count)).filter { start in
        bytes[start] == pattern[0] && Array(bytes[start..<(start + pattern.count)]) == pattern
    }
}

/// A safetensors file from a header (JSON text, padded) and data bytes.
func makeSafetensors(header: String, data: [UInt8]) -> [UInt8] {
    var json = Array(header.utf8)
    while json.count % 8 != 0 { json.append(0x20) }
    return le64(UInt64(json.count)) + json + data
}

/// An .npy file (version 1.0) from a header dict literal and data bytes.
func makeNPY(header: String, data: [UInt8], version: UInt8 = 1) -> [UInt8] {
    var text = Array(header.utf8)
    let prefix = version == 1 ? 10 : 12
    while (prefix + text.count + 1) % 64 != 0 { text.append(0x20) }
    text.append(0x0a)
    let length = version == 1 ? le16(UInt16(text.count)) : le32(UInt32(text.count))
    return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + text + data
}
