import CZlib

/// Raw deflate (zip method 8) and CRC-32 through zlib.
enum Deflate {
    /// Deflate cannot expand data by more than this factor (about 1032:1 in theory); a header
    /// that claims more is lying, and believing it would allocate without bound.
    static let maximumExpansion = 1100

    /// Inflates raw deflate data that must produce exactly `expectedCount` bytes.
    static func inflate(_ input: UnsafeRawBufferPointer, expectedCount: Int) throws -> ByteStorage {
        guard expectedCount >= 0 else { throw ParseError.malformed("negative uncompressed size") }
        guard let bound = Checked.multiply(max(input.count, 1), maximumExpansion), expectedCount <= bound else {
            throw ParseError.malformed(
                "claims \(expectedCount) uncompressed bytes from \(input.count) compressed bytes, more than deflate can produce")
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(expectedCount, 1), alignment: 16)
        let output = UnsafeMutableRawBufferPointer(start: memory, count: expectedCount)
        do {
            let produced = try run(input, into: output, requireEnd: true)
            guard produced == expectedCount else {
                throw ParseError.malformed("inflated to \(produced) bytes, expected \(expectedCount)")
            }
        } catch {
            memory.deallocate()
            throw error
        }
        return ByteStorage(adopting: memory, count: expectedCount)
    }

    /// Inflates only the first `count` bytes of the stream (fewer if it is shorter).
    static func inflatePrefix(_ input: UnsafeRawBufferPointer, count: Int) throws -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        let produced = try result.withUnsafeMutableBytes { output in
            try run(input, into: output, requireEnd: false)
        }
        result.removeSubrange(produced...)
        return result
    }

    /// Runs inflate until `output` is full or the stream ends. With `requireEnd`, a stream that
    /// has more data than `output` holds, or stops before its end marker, is an error.
    private static func run(
        _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, requireEnd: Bool
    ) throws -> Int {
        var stream = z_stream()
        guard zoo_inflateInit2(&stream, -15) == Z_OK else { throw ParseError(.io, "zlib inflateInit failed") }
        defer { inflateEnd(&stream) }

        let chunk = Int(UInt32.max / 2)
        var consumed = 0
        var produced = 0
        let scratch = UnsafeMutablePointer<Bytef>.allocate(capacity: 1)
        defer { scratch.deallocate() }
        while true {
            if stream.avail_in == 0 && consumed < input.count, let base = input.baseAddress {
                let take = min(chunk, input.count - consumed)
                stream.next_in = UnsafeMutablePointer(mutating: base.advanced(by: consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(take)
                consumed += take
            }
            let outputFull = produced == output.count
            if outputFull && !requireEnd { return produced }
            var offered = 0
            if outputFull {
                // Offer one byte of scratch space to learn whether the stream has more data.
                stream.next_out = scratch
                stream.avail_out = 1
            } else if let base = output.baseAddress {
                offered = min(chunk, output.count - produced)
                stream.next_out = base.advanced(by: produced).assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(offered)
            }
            let status = zlibInflate(&stream)
            if outputFull {
                if stream.avail_out == 0 {
                    throw ParseError.malformed("compressed data is longer than the declared \(output.count) bytes")
                }
            } else {
                produced += offered - Int(stream.avail_out)
            }
            switch status {
            case Z_STREAM_END:
                return produced
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                // No progress possible: input exhausted before the end of the stream.
                if stream.avail_in == 0 && consumed == input.count {
                    if !requireEnd { return produced }
                    throw ParseError.truncated("compressed data ends before the end of the deflate stream")
                }
                continue
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "status \(status)"
                throw ParseError.malformed("corrupt deflate data (\(reason))")
            }
        }
    }

    private static func zlibInflate(_ stream: inout z_stream) -> Int32 {
        CZlib.inflate(&stream, Z_NO_FLUSH)
    }

    /// Raw-deflates `input` at zlib's default level.
    static func deflate(_ input: UnsafeRawBufferPointer) throws -> [UInt8] {
        var stream = z_stream()
        guard zoo_deflateInit2(&stream, Z_DEFAULT_COMPRESSION, -15) == Z_OK else {
            throw ParseError(.io, "zlib deflateInit failed")
        }
        defer { deflateEnd(&stream) }
        let chunk = Int(UInt32.max / 2)
        var output: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 1 << 16)
        var consumed = 0
        while true {
            if stream.avail_in == 0 && consumed < input.count, let base = input.baseAddress {
                let take = min(chunk, input.count - consumed)
                stream.next_in = UnsafeMutablePointer(mutating: base.advanced(by: consumed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(take)
                consumed += take
            }
            let flush = consumed == input.count ? Z_FINISH : Z_NO_FLUSH
            let (status, produced) = block.withUnsafeMutableBufferPointer { buffer -> (Int32, Int) in
                stream.next_out = buffer.baseAddress
                stream.avail_out = uInt(buffer.count)
                let status = CZlib.deflate(&stream, flush)
                return (status, buffer.count - Int(stream.avail_out))
            }
            output.append(contentsOf: block[0..<produced])
            if status == Z_STREAM_END { return output }
            guard status == Z_OK || status == Z_BUF_ERROR else {
                throw ParseError(.io, "zlib deflate failed (status \(status))")
            }
        }
    }

    /// CRC-32 (the zip and PNG polynomial) of `bytes`, continuing from `crc`.
    static func crc32(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var value = UInt(crc)
        guard let base = bytes.baseAddress else { return crc }
        let chunk = Int(UInt32.max / 2)
        var offset = 0
        while offset < bytes.count {
            let take = min(chunk, bytes.count - offset)
            value = CZlib.crc32(value, base.advanced(by: offset).assumingMemoryBound(to: Bytef.self), uInt(take))
            offset += take
        }
        return UInt32(truncatingIfNeeded: value)
    }
}
