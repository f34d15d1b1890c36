import CHDF5
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an HDF5 weight file holds, as worked out by libhdf5 in a sandbox child process.
struct HDF5Listing {
    /// Where a tensor's bytes are.
    enum Source {
        /// Contiguous data at this offset of the file (read from zoo's mapping, on demand).
        case contiguous(offset: Int)
        /// Data libhdf5 had to assemble (compact or chunked storage), sent by the child.
        case inline([UInt8])
    }

    struct Tensor {
        let info: TensorInfo
        let bigEndian: Bool
        let source: Source
        /// The HDF5 dataset path, for error messages.
        let datasetPath: String
    }

    var format: WeightFormat
    var metadata: WeightMetadata
    var tensors: [Tensor]
}

/// Runs libhdf5 on a file in a forked child process with a time limit, a memory limit and no
/// crash handlers, and receives the file's `HDF5Listing` through a pipe.
///
/// libhdf5 1.10 crashes, loops or allocates gigabytes on some damaged files (a quick test with
/// randomly mutated Keras files crashed it in about 1 case in 40 and hung it in 1 in 400). So
/// zoo's own process never calls libhdf5: a crash, hang or runaway allocation kills only the
/// child, and the parent reports the file as damaged. The child runs the Swift listing code
/// and leaves with `_exit`. If another thread of the parent held a runtime lock at the moment
/// of the fork the child could block on it; the time limit turns that into a retry.
enum HDF5Sandbox {
    /// Lists the file at `path` (or the in-memory image when `path` is nil) with `work`.
    static func list(
        path: String?, bytes: Bytes, work: @escaping (HDF5File) throws -> HDF5Listing
    ) throws -> HDF5Listing {
        // A truncated file is recognised without a child process.
        try HDF5File.checkSuperblock(bytes)
        let loop = ParseError.malformed(
            "HDF5 structure is damaged: libhdf5 did not finish reading it within \(timeLimit(bytes.count)) s (a loop in the file's metadata)")
        do {
            return try runOnce(path: path, bytes: bytes, work: work)
        } catch let timeout as SandboxTimeout {
            // A child that was busy all along is looping in libhdf5. One that used almost no CPU
            // was blocked, most likely on a lock that another thread of the parent held at the
            // moment of the fork (the child inherits it held): that is worth one more try.
            guard timeout.cpuSeconds < 1 else { throw loop }
            do {
                return try runOnce(path: path, bytes: bytes, work: work)
            } catch is SandboxTimeout {
                throw loop
            }
        }
    }

    private struct SandboxTimeout: Error {
        let cpuSeconds: Double
    }

    static func timeLimit(_ size: Int) -> UInt32 {
        UInt32(min(600, 15 + size / 50_000_000))
    }

    private static func runOnce(
        path: String?, bytes: Bytes, work: (HDF5File) throws -> HDF5Listing
    ) throws -> HDF5Listing {
        var descriptors: [Int32] = [-1, -1]
        guard pipe(&descriptors) == 0 else {
            throw ParseError(.io, "cannot create a pipe for the HDF5 reader: \(String(cString: strerror(errno)))")
        }
        let (readEnd, writeEnd) = (descriptors[0], descriptors[1])
        let child = HDF5Lock.run { zoo_sandbox_fork() }
        guard child >= 0 else {
            close(readEnd)
            close(writeEnd)
            throw ParseError(.io, "cannot start the HDF5 reader process: \(String(cString: strerror(errno)))")
        }
        if child == 0 {
            // The child: everything below ends in _exit.
            close(readEnd)
            zoo_sandbox_close_other_descriptors(writeEnd)
            let extraMemory = (1 << 30) + bytes.count.multipliedReportingOverflow(by: 2).partialValue
            zoo_sandbox_enter(timeLimit(bytes.count), extraMemory)
            var message = SandboxMessage()
            do {
                let file = try path.map { try HDF5File.open(path: $0, bytes: bytes) } ?? HDF5File.open(image: bytes)
                message.encode(success: try work(file))
            } catch let error as ParseError {
                message.encode(failure: error)
            } catch {
                message.encode(failure: ParseError.malformed("\(error)"))
            }
            message.data.data.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var done = 0
                while done < raw.count {
                    let written = write(writeEnd, base + done, raw.count - done)
                    if written < 0 && errno == EINTR { continue }
                    if written <= 0 { break }
                    done += written
                }
            }
            zoo_sandbox_exit(0)
        }

        // The parent.
        close(writeEnd)
        let limit = bytes.count.multipliedReportingOverflow(by: Deflate.maximumExpansion).partialValue + (16 << 20)
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var overflow = false
        while true {
            let count = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            if received.count + count > limit {
                overflow = true
                kill(child, SIGKILL)
                break
            }
            received.append(contentsOf: chunk[0..<count])
        }
        close(readEnd)
        var cpuSeconds = 0.0
        let status = zoo_sandbox_wait(child, &cpuSeconds)
        if overflow {
            throw ParseError.malformed("HDF5 structure is damaged: the reader produced more data than the file can hold")
        }
        if status == -zoo_sandbox_sigalrm() {
            throw SandboxTimeout(cpuSeconds: cpuSeconds)
        }
        if status < 0 {
            let signal = status == -1000 ? "unknown" : String(-status)
            throw ParseError.malformed(
                "HDF5 structure is damaged: libhdf5 crashed or ran out of memory reading it (signal \(signal), in a sandboxed child process)")
        }
        return try SandboxMessage.decode(Bytes(copying: received))
    }
}

/// The child's answer: a listing or an error, in a small binary encoding.
struct SandboxMessage {
    private(set) var data = LittleEndianBuffer()

    mutating func encode(success listing: HDF5Listing) {
        data.u8(0)
        string(listing.format.rawValue)
        let metadata = listing.metadata
        dictionary(metadata.writerVersions)
        optionalString(metadata.kerasModelConfig)
        if let names = metadata.kerasLayerNames {
            data.u8(1)
            data.u64(UInt64(names.count))
            names.forEach { string($0) }
        } else {
            data.u8(0)
        }
        dictionary(metadata.kerasLayerNamesByPath)
        dictionary(metadata.extra)
        data.u64(UInt64(listing.tensors.count))
        for tensor in listing.tensors {
            string(tensor.info.name)
            string(tensor.info.dtype.rawValue)
            data.u64(UInt64(tensor.info.shape.count))
            tensor.info.shape.forEach { data.u64(UInt64($0)) }
            data.u8(tensor.bigEndian ? 1 : 0)
            string(tensor.datasetPath)
            switch tensor.source {
            case .contiguous(let offset):
                data.u8(0)
                data.u64(UInt64(offset))
            case .inline(let bytes):
                data.u8(1)
                data.u64(UInt64(bytes.count))
                data.bytes(bytes)
            }
        }
    }

    mutating func encode(failure error: ParseError) {
        data.u8(1)
        string(error.kind.rawValue)
        string(error.message)
    }

    private mutating func string(_ text: String) {
        let utf8 = Array(text.utf8)
        data.u64(UInt64(utf8.count))
        data.bytes(utf8)
    }

    private mutating func optionalString(_ text: String?) {
        if let text {
            data.u8(1)
            string(text)
        } else {
            data.u8(0)
        }
    }

    private mutating func dictionary(_ pairs: [String: String]) {
        data.u64(UInt64(pairs.count))
        for key in pairs.keys.sorted() {
            string(key)
            string(pairs[key] ?? "")
        }
    }

    /// Decodes a message; throws the child's error when it sent one.
    static func decode(_ bytes: Bytes) throws -> HDF5Listing {
        var reader = Reader(bytes: bytes)
        switch try reader.u8() {
        case 0:
            break
        case 1:
            let kind = WeightFileError.Kind(rawValue: try reader.string()) ?? .malformed
            throw ParseError(kind, try reader.string())
        default:
            throw ParseError.malformed("the HDF5 reader process sent an unknown message")
        }
        guard let format = WeightFormat(rawValue: try reader.string()) else {
            throw ParseError.malformed("the HDF5 reader process sent an unknown format")
        }
        var metadata = WeightMetadata()
        metadata.writerVersions = try reader.dictionary()
        metadata.kerasModelConfig = try reader.u8() == 1 ? try reader.string() : nil
        if try reader.u8() == 1 {
            metadata.kerasLayerNames = try (0..<reader.count()).map { _ in try reader.string() }
        }
        metadata.kerasLayerNamesByPath = try reader.dictionary()
        metadata.extra = try reader.dictionary()
        var tensors: [HDF5Listing.Tensor] = []
        for _ in 0..<(try reader.count()) {
            let name = try reader.string()
            guard let dtype = DType(rawValue: try reader.string()) else {
                throw ParseError.malformed("the HDF5 reader process sent an unknown dtype")
            }
            let shape = try (0..<reader.count()).map { _ in try reader.integer() }
            let bigEndian = try reader.u8() == 1
            let datasetPath = try reader.string()
            let source: HDF5Listing.Source =
                try reader.u8() == 0 ? .contiguous(offset: try reader.integer()) : .inline(try reader.data())
            tensors.append(
                HDF5Listing.Tensor(
                    info: TensorInfo(name: name, dtype: dtype, shape: shape), bigEndian: bigEndian, source: source,
                    datasetPath: datasetPath))
        }
        return HDF5Listing(format: format, metadata: metadata, tensors: tensors)
    }

    private struct Reader {
        let bytes: Bytes
        var position = 0

        mutating func u8() throws -> UInt8 {
            defer { position += 1 }
            return try bytes.uint8(at: position, "message from the HDF5 reader process")
        }

        /// A length or item count: never more than the message could hold.
        mutating func count() throws -> Int {
            let value = try integer()
            guard value <= bytes.count else { throw ParseError.malformed("the HDF5 reader process sent a bad count") }
            return value
        }

        mutating func integer() throws -> Int {
            let value = try bytes.uint64(at: position, "message from the HDF5 reader process")
            position += 8
            guard let integer = Checked.int(value) else {
                throw ParseError.malformed("the HDF5 reader process sent a bad number")
            }
            return integer
        }

        mutating func data() throws -> [UInt8] {
            let length = try count()
            defer { position += length }
            return try bytes.array(position, length, "message from the HDF5 reader process")
        }

        mutating func string() throws -> String {
            String(decoding: try data(), as: UTF8.self)
        }

        mutating func dictionary() throws -> [String: String] {
            var result: [String: String] = [:]
            for _ in 0..<(try count()) {
                let key = try string()
                result[key] = try string()
            }
            return result
        }
    }
}
