import CImageIO
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// JPEG and PNG decoding to 8-bit RGB (libjpeg-turbo and libpng), and PNG encoding.
///
/// Decoding converts grayscale, palette, 16-bit (rounded to 8 bits), CMYK and YCCK images to
/// RGB and drops alpha, as PIL's `convert("RGB")` does. Damaged data is an error, never a
/// partly gray image: a truncated file, corrupt compressed data (libjpeg's "corrupt data"
/// warnings included), a PNG cut before its end chunk. Images of more than
/// ``maximumPixelCount`` pixels are refused before any pixel memory is allocated. Every error is
/// a ``DataError`` whose source is the `source` the caller passed (a file path).
public enum ImageCodec {
    /// The formats the codec decodes.
    public enum Format: String, Sendable, CaseIterable {
        case jpeg, png
    }

    /// The largest image decoded or encoded, in pixels (`1 << 26`, e.g. 8192 x 8192).
    public static let maximumPixelCount = Int(ZOO_IMAGE_MAX_PIXELS)

    /// The library versions in use, e.g. "libjpeg-turbo 2.1.5 (libjpeg API 62), libpng 1.6.39".
    public static var libraryVersions: String { String(cString: zoo_image_library_versions()) }

    /// The format of `bytes` by its magic bytes, or `nil` if it is neither.
    public static func format(of bytes: [UInt8]) -> Format? {
        bytes.withUnsafeBytes { format(of: $0) }
    }

    static func format(of bytes: UnsafeRawBufferPointer) -> Format? {
        switch zoo_image_detect(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count) {
        case ZOO_IMAGE_FORMAT_JPEG: .jpeg
        case ZOO_IMAGE_FORMAT_PNG: .png
        default: nil
        }
    }

    /// Decodes a JPEG or PNG file's bytes; errors name `source`.
    public static func decode(_ bytes: [UInt8], source: String) throws -> Image {
        try bytes.withUnsafeBytes { try decode(raw: $0, source: source) }
    }

    /// Decodes a JPEG or PNG file's bytes; errors name `source`.
    public static func decode(_ data: Data, source: String) throws -> Image {
        try data.withUnsafeBytes { try decode(raw: $0, source: source) }
    }

    /// Reads and decodes the JPEG or PNG file at `url`; errors name its path.
    public static func decode(contentsOf url: URL) throws -> Image {
        let path = url.path
        return try decode(try FileReading.bytes(atPath: path), source: path)
    }

    /// The width and height in a JPEG or PNG header, without decoding the pixels.
    public static func size(of bytes: [UInt8], source: String) throws -> (width: Int, height: Int) {
        try bytes.withUnsafeBytes { raw in
            try check(raw, source: source)
            var width: Int32 = 0, height: Int32 = 0
            var message = [CChar](repeating: 0, count: messageCapacity)
            let status = zoo_image_header(
                raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count, &width, &height, &message, message.count)
            guard status == ZOO_IMAGE_OK else { throw DataError(source, text(message)) }
            return (Int(width), Int(height))
        }
    }

    /// Encodes `image` as an 8-bit RGB PNG. `compressionLevel` is zlib's 0...9 (libpng's default
    /// when `nil`).
    public static func encodePNG(_ image: Image, compressionLevel: Int? = nil) throws -> [UInt8] {
        try encodePNG(pixels: image.pixels, width: image.width, height: image.height, channels: 3, compressionLevel: compressionLevel)
    }

    /// Encodes 8-bit pixels with `channels` 3 (RGB) or 4 (RGBA), rows top to bottom, as a PNG.
    public static func encodePNG(pixels: [UInt8], width: Int, height: Int, channels: Int, compressionLevel: Int? = nil) throws -> [UInt8] {
        guard channels == 3 || channels == 4, width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max),
            pixels.count == width * height * channels
        else {
            throw DataError("PNG encoder", "\(pixels.count) bytes are not a \(width)x\(height) image of \(channels) channels")
        }
        var output: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: messageCapacity)
        let status = pixels.withUnsafeBufferPointer { buffer in
            zoo_png_encode(
                buffer.baseAddress, Int32(width), Int32(height), Int32(channels), Int32(compressionLevel ?? -1), &output, &size,
                &message, message.count)
        }
        guard status == ZOO_IMAGE_OK, let output else { throw DataError("PNG encoder", text(message)) }
        defer { zoo_image_free(output) }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }

    /// Writes `image` as a PNG file, atomically: the bytes go to a temporary file in the same
    /// folder, which is renamed over `url` once complete, so readers never see half a file.
    public static func writePNG(_ image: Image, to url: URL, compressionLevel: Int? = nil) throws {
        let png = try encodePNG(image, compressionLevel: compressionLevel)
        try writeAtomically(png, to: url.path)
    }

    // MARK: Internals

    private static let messageCapacity = 512

    private static func text(_ message: [CChar]) -> String {
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return text.isEmpty ? "image decoding failed" : text
    }

    /// Rejects empty and unrecognized data with a message saying what the bytes are.
    private static func check(_ raw: UnsafeRawBufferPointer, source: String) throws {
        guard !raw.isEmpty else { throw DataError(source, "empty file (0 bytes): not a JPEG or PNG image") }
        guard format(of: raw) == nil else { return }
        let head = raw.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw DataError(source, "not a JPEG or PNG image (\(raw.count) bytes starting with \(head))")
    }

    static func decode(raw: UnsafeRawBufferPointer, source: String) throws -> Image {
        try check(raw, source: source)
        var pixels: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: messageCapacity)
        let status = zoo_image_decode(
            raw.baseAddress!.assumingMemoryBound(to: UInt8.self), raw.count, &pixels, 0, &width, &height, &message, message.count)
        guard status == ZOO_IMAGE_OK, let pixels else { throw DataError(source, text(message)) }
        defer { zoo_image_free(pixels) }
        let count = Int(width) * Int(height) * 3
        return Image(width: Int(width), height: Int(height), pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
    }

    private static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let folder = (path as NSString).deletingLastPathComponent
        let name = (path as NSString).lastPathComponent
        let temporary = (folder.isEmpty ? "." : folder) + "/.\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw DataError(path, "cannot create a temporary file beside it: \(FileReading.systemError())")
        }
        var closed = false
        do {
            try bytes.withUnsafeBytes { buffer in
                var done = 0
                while done < buffer.count {
                    let written = write(descriptor, buffer.baseAddress! + done, buffer.count - done)
                    if written < 0 && errno == EINTR { continue }
                    guard written > 0 else { throw DataError(path, "write failed: \(FileReading.systemError())") }
                    done += written
                }
            }
            guard fsync(descriptor) == 0 else { throw DataError(path, "fsync failed: \(FileReading.systemError())") }
            closed = true
            guard close(descriptor) == 0 else { throw DataError(path, "close failed: \(FileReading.systemError())") }
            guard rename(temporary, path) == 0 else { throw DataError(path, "rename failed: \(FileReading.systemError())") }
        } catch {
            if !closed { close(descriptor) }
            unlink(temporary)
            throw error
        }
    }
}
