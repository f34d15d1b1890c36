import Foundation
import Testing
import ZooData

/// A fresh temporary folder, removed when `body` returns.
func withTemporaryFolder<T>(_ body: (URL) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-data-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try body(folder)
}

func makeFolder(_ url: URL) throws {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
}

func write(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
}

/// Runs `body`, expecting a ``DataError`` whose source is `source` and whose message contains
/// every one of `fragments`; returns the error.
@discardableResult
func expectDataError(
    source: String, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> DataError? {
    do {
        try body()
        Issue.record("expected a DataError about \(source), got no error", sourceLocation: sourceLocation)
        return nil
    } catch let error as DataError {
        #expect(error.source == source, "error: \(error)", sourceLocation: sourceLocation)
        for fragment in fragments {
            #expect(error.message.contains(fragment), "'\(fragment)' not in: \(error)", sourceLocation: sourceLocation)
        }
        return error
    } catch {
        Issue.record("expected a DataError about \(source), got \(type(of: error)): \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

// MARK: - PNG files built byte by byte

/// PNG files of any color type and bit depth, written without a compression library: the
/// zlib stream uses stored (uncompressed) deflate blocks, which every inflater reads.
enum TestPNG {
    static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let length = min(65535, data.count - offset)
            let final: UInt8 = offset + length == data.count ? 1 : 0
            out += [final, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<(offset + length)]
            offset += length
        } while offset < data.count
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return out + bigEndian(b << 16 | a)
    }

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// A PNG whose scanlines are `rows` (packed samples, without the filter byte).
    static func encode(
        width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, rows: [[UInt8]], palette: [UInt8]? = nil,
        transparency: [UInt8]? = nil
    ) -> [UInt8] {
        encode(
            width: width, height: height, bitDepth: bitDepth, colorType: colorType, interlaced: false,
            scanlines: rows.flatMap { [0] + $0 }, palette: palette, transparency: transparency)
    }

    static func encode(
        width: Int, height: Int, bitDepth: UInt8, colorType: UInt8, interlaced: Bool, scanlines: [UInt8], palette: [UInt8]? = nil,
        transparency: [UInt8]? = nil
    ) -> [UInt8] {
        let header = bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [bitDepth, colorType, 0, 0, interlaced ? 1 : 0]
        var file = signature + chunk("IHDR", header)
        if let palette { file += chunk("PLTE", palette) }
        if let transparency { file += chunk("tRNS", transparency) }
        return file + chunk("IDAT", zlibStored(scanlines)) + chunk("IEND", [])
    }

    /// An Adam7-interlaced 8-bit RGB PNG of `image`.
    static func interlacedRGB(_ image: Image) -> [UInt8] {
        let passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        var scanlines: [UInt8] = []
        for (x0, y0, dx, dy) in passes {
            guard x0 < image.width, y0 < image.height else { continue }
            for y in stride(from: y0, to: image.height, by: dy) {
                scanlines.append(0)
                for x in stride(from: x0, to: image.width, by: dx) {
                    scanlines += image.pixels[((y * image.width + x) * 3)..<((y * image.width + x) * 3 + 3)]
                }
            }
        }
        return encode(width: image.width, height: image.height, bitDepth: 8, colorType: 2, interlaced: true, scanlines: scanlines)
    }
}

/// A test image whose pixels follow from their position.
func patternImage(width: Int, height: Int, seed: Int = 0) -> Image {
    var pixels: [UInt8] = []
    for y in 0..<height {
        for x in 0..<width {
            pixels += [UInt8((x * 37 + y * 11 + seed) & 0xFF), UInt8((x * 5 + y * 53 + 2 * seed) & 0xFF), UInt8((x * y + 3 * seed) & 0xFF)]
        }
    }
    return Image(width: width, height: height, pixels: pixels)
}

/// The RGB value at `(row, column)`.
func pixel(_ image: Image, _ row: Int, _ column: Int) -> [UInt8] {
    let start = (row * image.width + column) * 3
    return Array(image.pixels[start..<(start + 3)])
}

/// True when every channel differs by at most `tolerance`.
func close(_ a: [UInt8], _ b: [UInt8], _ tolerance: Int) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { abs(Int($0) - Int($1)) <= tolerance }
}
