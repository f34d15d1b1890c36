import Foundation
import Testing
import ZooData

@Suite("ImageCodec")
struct ImageCodecTests {
    // MARK: JPEG

    /// PIL's pixels at (row, column) for each fixture: quadrant centres and two corners.
    static let jpegExpectations: [(name: String, bytes: [UInt8], pixels: [(Int, Int, [UInt8])])] = [
        (
            "rgb", JPEGFixtures.rgb,
            [(3, 3, [221, 29, 42]), (3, 12, [28, 201, 59]), (12, 3, [18, 41, 207]), (12, 12, [251, 249, 250]), (0, 0, [217, 33, 35]), (15, 15, [247, 252, 246])]
        ),
        (
            "progressive", JPEGFixtures.progressive,
            [(3, 3, [220, 30, 40]), (3, 12, [28, 201, 57]), (12, 3, [19, 40, 209]), (12, 12, [250, 249, 254]), (0, 0, [221, 28, 45]), (15, 15, [251, 248, 255])]
        ),
        (
            "gray", JPEGFixtures.gray,
            [(3, 3, [30, 30, 30]), (3, 12, [100, 100, 100]), (12, 3, [170, 170, 170]), (12, 12, [240, 240, 240]), (0, 0, [30, 30, 30]), (15, 15, [240, 240, 240])]
        ),
        (
            "cmyk", JPEGFixtures.cmyk,
            [(3, 3, [255, 0, 0]), (3, 12, [0, 255, 0]), (12, 3, [127, 127, 127]), (12, 12, [255, 255, 255]), (0, 0, [255, 0, 0]), (15, 15, [255, 255, 255])]
        ),
    ]

    @Test("JPEG: baseline, progressive, grayscale and Adobe CMYK decode to PIL's RGB", arguments: 0..<4)
    func jpegVariants(_ index: Int) throws {
        let (name, bytes, expected) = Self.jpegExpectations[index]
        #expect(ImageCodec.format(of: bytes) == .jpeg)
        let image = try ImageCodec.decode(bytes, source: "\(name).jpg")
        #expect(image.width == 16 && image.height == 16)
        for (row, column, rgb) in expected {
            // libjpeg-turbo's default (islow) IDCT is exact across versions; allow 1 for safety.
            #expect(close(pixel(image, row, column), rgb, 1), "\(name) at (\(row), \(column)): \(pixel(image, row, column)) vs PIL \(rgb)")
        }
        let size = try ImageCodec.size(of: bytes, source: name)
        #expect(size.width == 16 && size.height == 16)
        #expect(try ImageCodec.decode(Data(bytes), source: name) == image)
    }

    @Test("JPEG: every truncation of a file is an error naming the source, never a crash or a gray image")
    func truncatedJPEG() {
        let bytes = JPEGFixtures.rgb
        for length in 0..<bytes.count {
            expectDataError(source: "cut.jpg") { _ = try ImageCodec.decode(Array(bytes[0..<length]), source: "cut.jpg") }
        }
        expectDataError(source: "half.jpg", "corrupt JPEG") {
            _ = try ImageCodec.decode(Array(bytes[0..<(bytes.count / 2)]), source: "half.jpg")
        }
    }

    @Test("JPEG: a JPEG header followed by garbage is an error")
    func garbageJPEG() {
        var generator = SystemRandomNumberGenerator()
        for trial in 0..<20 {
            var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
            bytes += (0..<(50 + trial * 40)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            expectDataError(source: "garbage.jpg", "corrupt JPEG") { _ = try ImageCodec.decode(bytes, source: "garbage.jpg") }
        }
    }

    @Test("JPEG: stray bytes between marker segments are tolerated; the pixels are intact")
    func extraneousBytes() throws {
        var bytes = JPEGFixtures.rgb
        let sof = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes.insert(contentsOf: [0x00, 0x17, 0x42], at: sof)
        #expect(try ImageCodec.decode(bytes, source: "stray.jpg") == ImageCodec.decode(JPEGFixtures.rgb, source: "rgb.jpg"))
    }

    @Test("JPEG: absurd dimensions are refused before decoding")
    func hugeJPEG() throws {
        var bytes = JPEGFixtures.rgb
        // SOF0: FF C0, length (2), precision (1), height (2), width (2).
        let sof = try #require((0..<(bytes.count - 1)).first { bytes[$0] == 0xFF && bytes[$0 + 1] == 0xC0 })
        bytes.replaceSubrange((sof + 5)..<(sof + 9), with: [0xEA, 0x60, 0xEA, 0x60])  // 60000 x 60000
        expectDataError(source: "huge.jpg", "60000x60000", "refused") { _ = try ImageCodec.decode(bytes, source: "huge.jpg") }
    }

    // MARK: PNG

    @Test("PNG: gray, palette, 16-bit, alpha and interlaced images become 8-bit RGB")
    func pngVariants() throws {
        func decode(_ bytes: [UInt8], _ name: String) throws -> Image {
            #expect(ImageCodec.format(of: bytes) == .png)
            return try ImageCodec.decode(bytes, source: name)
        }
        // 8-bit gray, 3x2.
        var image = try decode(TestPNG.encode(width: 3, height: 2, bitDepth: 8, colorType: 0, rows: [[0, 128, 255], [1, 2, 3]]), "gray8")
        #expect(image.width == 3 && image.height == 2)
        #expect(image.pixels == [0, 0, 0, 128, 128, 128, 255, 255, 255, 1, 1, 1, 2, 2, 2, 3, 3, 3])
        // 1-bit gray: 0b1010_0000 → 255 0 255 0.
        image = try decode(TestPNG.encode(width: 4, height: 1, bitDepth: 1, colorType: 0, rows: [[0b1010_0000]]), "gray1")
        #expect(image.pixels == [255, 255, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0])
        // 4-bit gray: 0x3F → 3*17, 15*17.
        image = try decode(TestPNG.encode(width: 2, height: 1, bitDepth: 4, colorType: 0, rows: [[0x3F]]), "gray4")
        #expect(image.pixels == [51, 51, 51, 255, 255, 255])
        // 16-bit gray, scaled with rounding: 0x12F0 → 19 (its high byte is 18), 0xFFFF → 255, 0x0080 → 0.
        image = try decode(TestPNG.encode(width: 3, height: 1, bitDepth: 16, colorType: 0, rows: [[0x12, 0xF0, 0xFF, 0xFF, 0x00, 0x80]]), "gray16")
        #expect(image.pixels == [19, 19, 19, 255, 255, 255, 0, 0, 0])
        // 16-bit RGB: 0x8000 → 128, 0x00FF → 1 (255 * 255 / 65535 rounded; the high byte is 0), 0xFFFF → 255.
        image = try decode(
            TestPNG.encode(width: 1, height: 1, bitDepth: 16, colorType: 2, rows: [[0x80, 0x00, 0x00, 0xFF, 0xFF, 0xFF]]), "rgb16")
        #expect(image.pixels == [128, 1, 255])
        // 16-bit RGBA: alpha dropped.
        image = try decode(
            TestPNG.encode(width: 1, height: 1, bitDepth: 16, colorType: 6, rows: [[0x10, 0x10, 0x20, 0x20, 0x30, 0x30, 0x00, 0x00]]), "rgba16")
        #expect(image.pixels == [16, 32, 48])
        // 8-bit palette with transparency: colors from the palette, transparency ignored.
        let palette: [UInt8] = [10, 20, 30, 40, 50, 60, 70, 80, 90]
        image = try decode(
            TestPNG.encode(width: 3, height: 1, bitDepth: 8, colorType: 3, rows: [[2, 0, 1]], palette: palette, transparency: [0, 128]), "palette8")
        #expect(image.pixels == [70, 80, 90, 10, 20, 30, 40, 50, 60])
        // 2-bit palette: indices 0b01_10_00_10 → 1, 2, 0, 2.
        image = try decode(TestPNG.encode(width: 4, height: 1, bitDepth: 2, colorType: 3, rows: [[0b0110_0010]], palette: palette), "palette2")
        #expect(image.pixels == [40, 50, 60, 70, 80, 90, 10, 20, 30, 70, 80, 90])
        // Gray with alpha.
        image = try decode(TestPNG.encode(width: 2, height: 1, bitDepth: 8, colorType: 4, rows: [[77, 0, 200, 255]]), "grayAlpha")
        #expect(image.pixels == [77, 77, 77, 200, 200, 200])
        // RGBA: alpha dropped, not composited.
        image = try decode(TestPNG.encode(width: 2, height: 1, bitDepth: 8, colorType: 6, rows: [[1, 2, 3, 0, 4, 5, 6, 128]]), "rgba")
        #expect(image.pixels == [1, 2, 3, 4, 5, 6])
        // Gray with a tRNS color.
        image = try decode(TestPNG.encode(width: 1, height: 1, bitDepth: 8, colorType: 0, rows: [[9]], transparency: [0, 9]), "grayTRNS")
        #expect(image.pixels == [9, 9, 9])
        // Adam7-interlaced RGB of an odd size.
        let pattern = patternImage(width: 13, height: 11, seed: 5)
        #expect(try decode(TestPNG.interlacedRGB(pattern), "interlaced") == pattern)
    }

    @Test("PNG: encoding round-trips RGB exactly at every compression level; RGBA loses only alpha")
    func pngRoundTrip() throws {
        let image = patternImage(width: 37, height: 23, seed: 1)
        for level in [nil, 0, 1, 9] {
            let png = try ImageCodec.encodePNG(image, compressionLevel: level)
            #expect(ImageCodec.format(of: png) == .png)
            #expect(try ImageCodec.decode(png, source: "round trip") == image)
        }
        var rgba: [UInt8] = []
        for index in 0..<(image.width * image.height) {
            rgba += image.pixels[(index * 3)..<(index * 3 + 3)] + [UInt8(index & 0xFF)]
        }
        let png = try ImageCodec.encodePNG(pixels: rgba, width: image.width, height: image.height, channels: 4)
        #expect(try ImageCodec.decode(png, source: "rgba") == image)
        #expect(throws: DataError.self) { try ImageCodec.encodePNG(pixels: [1, 2], width: 1, height: 1, channels: 3) }
        #expect(throws: DataError.self) { try ImageCodec.encodePNG(image, compressionLevel: 10) }
    }

    @Test("PNG: writePNG replaces the file atomically and leaves no temporary file")
    func writePNG() throws {
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("out.png")
            let first = patternImage(width: 8, height: 8, seed: 2)
            let second = patternImage(width: 5, height: 3, seed: 3)
            try ImageCodec.writePNG(first, to: url)
            #expect(try ImageCodec.decode(contentsOf: url) == first)
            try ImageCodec.writePNG(second, to: url)
            #expect(try ImageCodec.decode(contentsOf: url) == second)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["out.png"])
            let missing = folder.appendingPathComponent("no/such/folder/x.png")
            expectDataError(source: missing.path, "temporary file") { try ImageCodec.writePNG(first, to: missing) }
        }
    }

    @Test("PNG: every truncation, a bad CRC and absurd dimensions are errors naming the source")
    func corruptPNG() throws {
        let png = try ImageCodec.encodePNG(patternImage(width: 9, height: 7), compressionLevel: 9)
        for length in 0..<png.count {
            expectDataError(source: "cut.png") { _ = try ImageCodec.decode(Array(png[0..<length]), source: "cut.png") }
        }
        // Cut just before IEND: the pixels are all there, but the file is incomplete.
        expectDataError(source: "no-end.png", "corrupt PNG") { _ = try ImageCodec.decode(Array(png.dropLast(12)), source: "no-end.png") }
        // A flipped bit in the IDAT data fails its CRC.
        var flipped = png
        flipped[png.count - 20] ^= 0x10
        expectDataError(source: "crc.png", "corrupt PNG") { _ = try ImageCodec.decode(flipped, source: "crc.png") }
        // A header declaring 100000 x 100000 pixels is refused before any pixel memory is allocated.
        let huge = TestPNG.signature + TestPNG.chunk("IHDR", TestPNG.bigEndian(100_000) + TestPNG.bigEndian(100_000) + [8, 2, 0, 0, 0])
            + TestPNG.chunk("IDAT", TestPNG.zlibStored([0, 1, 2, 3])) + TestPNG.chunk("IEND", [])
        expectDataError(source: "huge.png", "100000x100000", "refused") { _ = try ImageCodec.decode(huge, source: "huge.png") }
    }

    @Test("Anything but JPEG or PNG is refused by its magic bytes")
    func unrecognized() {
        expectDataError(source: "empty", "empty file") { _ = try ImageCodec.decode([UInt8](), source: "empty") }
        expectDataError(source: "text.jpg", "not a JPEG or PNG image", "68 65 6c 6c 6f") {
            _ = try ImageCodec.decode(Array("hello world".utf8), source: "text.jpg")
        }
        let gif = Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]
        #expect(ImageCodec.format(of: gif) == nil)
        expectDataError(source: "a.gif", "not a JPEG or PNG image") { _ = try ImageCodec.decode(gif, source: "a.gif") }
        expectDataError(source: "short", "not a JPEG or PNG image") { _ = try ImageCodec.decode([0xFF, 0xD8], source: "short") }
        #expect(ImageCodec.libraryVersions.contains("libpng"))
    }
}
