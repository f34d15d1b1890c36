import Synchronization

/// One file inside a zip archive, as the central directory describes it.
struct ZipEntry: Sendable {
    /// The entry's position in the central directory (and in ``ZipArchive/entries``).
    let index: Int
    let name: String
    let flags: UInt16
    let method: UInt16
    let crc32: UInt32
    let compressedSize: Int
    let uncompressedSize: Int
    let localHeaderOffset: Int
    /// Where the entry's (possibly compressed) bytes start: after the local header, whose name
    /// and extra-field lengths may differ from the central directory's (torch pads the local
    /// extra field so that data is 64-byte aligned).
    let dataOffset: Int

    var isStored: Bool { method == 0 }
}

/// A zip archive read through its central directory (the only reliable source of sizes: torch
/// writes sizes of 0 in local headers and puts the real ones in trailing data descriptors).
///
/// Supports stored and deflated entries, data descriptors and zip64. Every size and offset is
/// checked against the archive before it is used.
struct ZipArchive: Sendable {
    let bytes: Bytes
    let entries: [ZipEntry]
    private let entryIndex: [String: Int]
    /// One per entry: whether its stored bytes have passed their CRC-32 check.
    private let checksums: [ZipChecksumOutcome]

    private static let endOfCentralDirectorySignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EndSignature: UInt32 = 0x0606_4b50
    private static let centralHeaderSignature: UInt32 = 0x0201_4b50
    private static let localHeaderSignature: UInt32 = 0x0403_4b50

    /// True when `bytes` begin like a zip archive (a local header, or the end record of an empty one).
    static func looksLikeZip(_ bytes: Bytes) -> Bool {
        bytes.starts(with: [0x50, 0x4b, 0x03, 0x04]) || bytes.starts(with: [0x50, 0x4b, 0x05, 0x06])
    }

    init(bytes: Bytes) throws {
        self.bytes = bytes
        let end = try Self.findEndOfCentralDirectory(bytes)
        let diskNumber = try bytes.uint16(at: end + 4)
        let directoryDisk = try bytes.uint16(at: end + 6)
        var entryCount = Int(try bytes.uint16(at: end + 10))
        var directorySize = Int(try bytes.uint32(at: end + 12))
        var directoryOffset = Int(try bytes.uint32(at: end + 16))
        var directoryLimit = end

        if entryCount == 0xffff || directorySize == 0xffff_ffff || directoryOffset == 0xffff_ffff {
            // Zip64: the real values live in the zip64 end record, found through its locator.
            let locator = end - 20
            guard locator >= 0, try bytes.uint32(at: locator) == Self.zip64LocatorSignature else {
                throw ParseError.malformed("zip end record asks for zip64 but there is no zip64 locator")
            }
            guard let record = Checked.int(try bytes.uint64(at: locator + 8)), record < locator,
                try bytes.uint32(at: record, "zip64 end record") == Self.zip64EndSignature
            else {
                throw ParseError.malformed("zip64 locator points to no zip64 end record")
            }
            guard let count = Checked.int(try bytes.uint64(at: record + 32)),
                let size = Checked.int(try bytes.uint64(at: record + 40)),
                let offset = Checked.int(try bytes.uint64(at: record + 48))
            else {
                throw ParseError.malformed("zip64 end record holds impossible sizes")
            }
            entryCount = count
            directorySize = size
            directoryOffset = offset
            directoryLimit = record
        }
        guard diskNumber == 0 || diskNumber == 0xffff, directoryDisk == 0 || directoryDisk == 0xffff else {
            throw ParseError.unsupported("multi-volume zip archives are not supported")
        }
        guard let directoryEnd = Checked.add(directoryOffset, directorySize), directoryEnd <= directoryLimit else {
            throw ParseError.malformed(
                "zip central directory (offset \(directoryOffset), \(directorySize) bytes) runs past its end record at \(directoryLimit)")
        }
        // Each central header takes at least 46 bytes, which bounds the count before allocating.
        guard entryCount <= directorySize / 46 else {
            throw ParseError.malformed(
                "zip claims \(entryCount) entries in a central directory of \(directorySize) bytes")
        }

        var entries: [ZipEntry] = []
        entries.reserveCapacity(entryCount)
        var index: [String: Int] = [:]
        var position = directoryOffset
        for number in 0..<entryCount {
            let entry = try withContext("zip central directory entry \(number)") {
                try Self.readCentralHeader(bytes, at: &position, limit: directoryEnd, index: number)
            }
            if index[entry.name] != nil {
                throw ParseError(.duplicateName, "zip holds two entries named \(quoted(entry.name))")
            }
            index[entry.name] = entries.count
            entries.append(entry)
        }
        self.entries = entries
        self.entryIndex = index
        self.checksums = entries.map { _ in ZipChecksumOutcome() }
    }

    private static func findEndOfCentralDirectory(_ bytes: Bytes) throws -> Int {
        let minimum = 22
        guard bytes.count >= minimum else {
            throw ParseError.truncated("truncated: \(bytes.count) bytes is too short for a zip archive")
        }
        // The end record is the last thing in the file, followed only by a comment of up to 64 KiB.
        let lowest = max(0, bytes.count - minimum - 0xffff)
        var candidate = bytes.count - minimum
        var fallback: Int?
        while candidate >= lowest {
            if try bytes.uint32(at: candidate) == endOfCentralDirectorySignature {
                let commentLength = Int(try bytes.uint16(at: candidate + 20))
                if candidate + minimum + commentLength == bytes.count { return candidate }
                if fallback == nil && candidate + minimum + commentLength <= bytes.count { fallback = candidate }
            }
            candidate -= 1
        }
        if let fallback { return fallback }
        throw ParseError.truncated("no zip end-of-central-directory record (the archive is truncated or not a zip)")
    }

    private static func readCentralHeader(_ bytes: Bytes, at position: inout Int, limit: Int, index: Int) throws -> ZipEntry {
        guard position <= limit - 46 else {
            throw ParseError.malformed("the central directory ends inside a header at offset \(position)")
        }
        let header = try bytes.slice(position, 46, "central header")
        guard try header.uint32(at: 0) == centralHeaderSignature else {
            throw ParseError.malformed("bad central header signature at offset \(position)")
        }
        let flags = try header.uint16(at: 8)
        let method = try header.uint16(at: 10)
        let crc = try header.uint32(at: 16)
        var compressedSize = Int(try header.uint32(at: 20))
        var uncompressedSize = Int(try header.uint32(at: 24))
        let nameLength = Int(try header.uint16(at: 28))
        let extraLength = Int(try header.uint16(at: 30))
        let commentLength = Int(try header.uint16(at: 32))
        var localOffset = Int(try header.uint32(at: 42))
        let recordLength = 46 + nameLength + extraLength + commentLength
        guard position + recordLength <= limit else {
            throw ParseError.malformed("central header at offset \(position) runs past the central directory")
        }
        let nameBytes = try bytes.array(position + 46, nameLength, "entry name")
        let name = String(decoding: nameBytes, as: UTF8.self)
        let extra = try bytes.slice(position + 46 + nameLength, extraLength, "extra field")

        // Zip64 extended information: present values replace the 32-bit fields set to 0xffffffff, in order.
        var extraPosition = 0
        while extraPosition + 4 <= extra.count {
            let id = try extra.uint16(at: extraPosition)
            let size = Int(try extra.uint16(at: extraPosition + 2))
            let field = try extra.slice(extraPosition + 4, size, "extra field of \(quoted(name))")
            if id == 0x0001 {
                var fieldPosition = 0
                func next() throws -> Int {
                    guard let value = Checked.int(try field.uint64(at: fieldPosition, "zip64 field of \(quoted(name))")) else {
                        throw ParseError.malformed("zip64 size of \(quoted(name)) is impossibly large")
                    }
                    fieldPosition += 8
                    return value
                }
                if uncompressedSize == 0xffff_ffff { uncompressedSize = try next() }
                if compressedSize == 0xffff_ffff { compressedSize = try next() }
                if localOffset == 0xffff_ffff { localOffset = try next() }
            }
            extraPosition += 4 + size
        }

        // The data starts after the local header, whose variable parts have their own lengths.
        let local = try bytes.slice(localOffset, 30, "local header of \(quoted(name))")
        guard try local.uint32(at: 0) == localHeaderSignature else {
            throw ParseError.malformed("entry \(quoted(name)) points to offset \(localOffset), which holds no local header")
        }
        let localNameLength = Int(try local.uint16(at: 26))
        let localExtraLength = Int(try local.uint16(at: 28))
        let dataOffset = localOffset + 30 + localNameLength + localExtraLength
        guard bytes.contains(offset: dataOffset, length: compressedSize) else {
            throw ParseError.truncated(
                "truncated: entry \(quoted(name)) needs \(compressedSize) bytes at offset \(dataOffset), past the end of the archive (\(bytes.count) bytes)")
        }
        position += recordLength
        return ZipEntry(
            index: index, name: name, flags: flags, method: method, crc32: crc, compressedSize: compressedSize,
            uncompressedSize: uncompressedSize, localHeaderOffset: localOffset, dataOffset: dataOffset)
    }

    func entry(named name: String) -> ZipEntry? {
        entryIndex[name].map { entries[$0] }
    }

    /// The entry's uncompressed bytes, checked against the entry's CRC-32: a window on the
    /// archive when stored, inflated otherwise.
    ///
    /// A stored entry is checked the first time its bytes are asked for, and the outcome is
    /// remembered, so a torch storage shared by many tensors costs one pass. A deflated entry is
    /// checked each time it is inflated, since each inflation makes new bytes.
    ///
    /// Cost, measured on a 422 MB stored torch zip (98 float32 storages of 4-9 MB, warm page
    /// cache, debug build, the shared 2-core build machine at load 10): zlib 1.2.13's crc32 runs
    /// at 0.95-1.5 GB/s, 0.29-0.44 s for the file. Opening takes 0.01-0.04 s and checks nothing;
    /// reading every tensor as Float takes 0.46-0.70 s the first time (CRC included) and
    /// 0.12-0.21 s once the outcomes are remembered. For float32 data the read is a copy, so the
    /// CRC is most of a first read; it is paid once per entry and only for entries read.
    func contents(of entry: ZipEntry) throws -> Bytes {
        try withContext("zip entry \(quoted(entry.name))") {
            if entry.isStored {
                let data = try storedBytes(of: entry)
                try checksums[entry.index].verify { Self.checksumError(entry, data) }
                return data
            }
            try checkReadable(entry)
            let compressed = try bytes.slice(entry.dataOffset, entry.compressedSize, "entry data")
            let data = Bytes(try Deflate.inflate(compressed.raw, expectedCount: entry.uncompressedSize))
            if let error = Self.checksumError(entry, data) { throw error }
            return data
        }
    }

    /// A stored entry's bytes without the CRC-32 check, for a caller that only lists structure
    /// now and calls ``verify(_:)`` before it hands out values (a `.keras` archive's HDF5).
    func uncheckedStoredBytes(of entry: ZipEntry) throws -> Bytes {
        try withContext("zip entry \(quoted(entry.name))") { try storedBytes(of: entry) }
    }

    /// Checks a stored entry against its CRC-32 (once; later calls repeat the outcome).
    func verify(_ entry: ZipEntry) throws {
        _ = try contents(of: entry)
    }

    private func storedBytes(of entry: ZipEntry) throws -> Bytes {
        try checkReadable(entry)
        guard entry.isStored else { throw ParseError.unsupported("entry is compressed, not stored") }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw ParseError.malformed(
                "stored entry has compressed size \(entry.compressedSize) but uncompressed size \(entry.uncompressedSize)")
        }
        return try bytes.slice(entry.dataOffset, entry.compressedSize, "entry data")
    }

    private static func checksumError(_ entry: ZipEntry, _ data: Bytes) -> ParseError? {
        let crc = Deflate.crc32(data.raw)
        guard crc != entry.crc32 else { return nil }
        return ParseError(
            .checksumMismatch,
            "CRC-32 mismatch (the archive records \(hex(entry.crc32)), the data gives \(hex(crc))): the entry's bytes are damaged")
    }

    /// The first `count` uncompressed bytes of the entry (fewer when it is shorter), without
    /// inflating the rest: enough to read an `.npy` header inside a compressed `.npz`.
    func prefix(of entry: ZipEntry, count: Int) throws -> Bytes {
        try withContext("zip entry \(quoted(entry.name))") {
            try checkReadable(entry)
            let compressed = try bytes.slice(entry.dataOffset, entry.compressedSize, "entry data")
            if entry.isStored {
                return try compressed.slice(0, min(count, compressed.count), "entry data")
            }
            return Bytes(copying: try Deflate.inflatePrefix(compressed.raw, count: min(count, entry.uncompressedSize)))
        }
    }

    private func checkReadable(_ entry: ZipEntry) throws {
        if entry.flags & 0x0001 != 0 {
            throw ParseError.unsupported("entry is encrypted")
        }
        guard entry.method == 0 || entry.method == 8 else {
            throw ParseError.unsupported(
                "compression method \(entry.method) is not supported (only stored and deflate)")
        }
    }
}

/// Whether one zip entry has passed its CRC-32 check: unchecked until its bytes are first used.
/// The lock is held while the check runs, so threads reading tensors of one storage at once
/// compute it once; entries have a lock each, so different storages are checked in parallel.
final class ZipChecksumOutcome: Sendable {
    private enum State {
        case unchecked
        case passed
        case failed(ParseError)
    }

    private let state = Mutex(State.unchecked)

    /// Runs `check` unless an earlier call did, and throws the error it found, then or now.
    func verify(_ check: () -> ParseError?) throws {
        let failure: ParseError? = state.withLock { state in
            switch state {
            case .passed:
                return nil
            case .failed(let error):
                return error
            case .unchecked:
                let error = check()
                state = error.map(State.failed) ?? .passed
                return error
            }
        }
        if let failure { throw failure }
    }
}

func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}

/// Writes a zip archive (stored or deflated entries) into a `FileSink`. Used for `.npz`.
struct ZipWriter {
    private struct Record {
        let name: [UInt8]
        let flags: UInt16
        let method: UInt16
        let crc: UInt32
        let compressedSize: Int
        let uncompressedSize: Int
        let offset: Int
    }

    private var records: [Record] = []
    private let path: String

    init(path: String) {
        self.path = path
    }

    private func tooLarge(_ what: String) -> WeightFileError {
        WeightFileError(path: path, kind: .unsupported, message: "\(what) exceeds 4 GiB; zoo does not write zip64 archives")
    }

    /// Appends one entry.
    mutating func add(name: String, data: UnsafeRawBufferPointer, compress: Bool, to sink: inout FileSink) throws {
        let nameBytes = Array(name.utf8)
        guard nameBytes.count <= 0xffff else {
            throw WeightFileError(path: path, kind: .malformed, message: "entry name is longer than 65535 bytes")
        }
        guard records.count < 0xffff else { throw tooLarge("the entry count") }
        let crc = Deflate.crc32(data)
        let payload: [UInt8]?
        if compress {
            do {
                payload = try Deflate.deflate(data)
            } catch let error as ParseError {
                throw error.located(at: path)
            }
        } else {
            payload = nil
        }
        let compressedSize = payload?.count ?? data.count
        guard data.count < 0xffff_ffff, compressedSize < 0xffff_ffff else { throw tooLarge("entry \(quoted(name))") }
        guard sink.bytesWritten < 0xffff_ffff else { throw tooLarge("the archive") }
        let record = Record(
            name: nameBytes, flags: nameBytes.allSatisfy { $0 < 0x80 } ? 0 : 0x0800,
            method: compress ? 8 : 0, crc: crc, compressedSize: compressedSize, uncompressedSize: data.count,
            offset: sink.bytesWritten)
        var header = LittleEndianBuffer()
        header.u32(0x0403_4b50)
        header.u16(20)
        header.u16(record.flags)
        header.u16(record.method)
        header.u16(0)  // time
        header.u16(0x21)  // date: 1980-01-01
        header.u32(record.crc)
        header.u32(UInt32(record.compressedSize))
        header.u32(UInt32(record.uncompressedSize))
        header.u16(UInt16(nameBytes.count))
        header.u16(0)
        header.bytes(nameBytes)
        try sink.write(header.data)
        if let payload {
            try sink.write(payload)
        } else {
            try sink.write(data)
        }
        records.append(record)
    }

    /// Writes the central directory and end record.
    func finish(to sink: inout FileSink) throws {
        let directoryOffset = sink.bytesWritten
        var directory = LittleEndianBuffer()
        for record in records {
            directory.u32(0x0201_4b50)
            directory.u16(0x0314)  // made by: Unix, zip 2.0
            directory.u16(20)
            directory.u16(record.flags)
            directory.u16(record.method)
            directory.u16(0)
            directory.u16(0x21)
            directory.u32(record.crc)
            directory.u32(UInt32(record.compressedSize))
            directory.u32(UInt32(record.uncompressedSize))
            directory.u16(UInt16(record.name.count))
            directory.u16(0)  // extra
            directory.u16(0)  // comment
            directory.u16(0)  // disk
            directory.u16(0)  // internal attributes
            directory.u32(0o100644 << 16)  // external attributes: regular file, rw-r--r--
            directory.u32(UInt32(record.offset))
            directory.bytes(record.name)
        }
        let directorySize = directory.data.count
        guard directoryOffset < 0xffff_ffff, directorySize < 0xffff_ffff else { throw tooLarge("the archive") }
        directory.u32(0x0605_4b50)
        directory.u16(0)
        directory.u16(0)
        directory.u16(UInt16(records.count))
        directory.u16(UInt16(records.count))
        directory.u32(UInt32(directorySize))
        directory.u32(UInt32(directoryOffset))
        directory.u16(0)
        try sink.write(directory.data)
    }
}

/// Builds little-endian binary records.
struct LittleEndianBuffer {
    private(set) var data: [UInt8] = []

    mutating func u8(_ value: UInt8) { data.append(value) }
    mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) } }
    mutating func bytes(_ values: [UInt8]) { data.append(contentsOf: values) }
}
