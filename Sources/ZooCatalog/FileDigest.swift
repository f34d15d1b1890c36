import Crypto
import Foundation

/// SHA-256 or MD5, the two digests weight publishers state for their files (torchvision:
/// SHA-256 prefixes in file names; Keras: MD5 or SHA-256), fed in pieces so that a weight file
/// of hundreds of megabytes is never in memory whole. The hashing is swift-crypto's.
public struct FileDigest {
    /// A digest algorithm.
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256, md5
    }

    public let algorithm: Algorithm
    private var state: State

    private enum State {
        case sha256(SHA256)
        case md5(Insecure.MD5)
    }

    /// How much of a file is read at a time.
    static let chunkSize = 1 << 20

    public init(_ algorithm: Algorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .md5: state = .md5(Insecure.MD5())
        }
    }

    /// Feeds bytes.
    public mutating func update(_ bytes: some DataProtocol) {
        switch state {
        case .sha256(var hash):
            hash.update(data: bytes)
            state = .sha256(hash)
        case .md5(var hash):
            hash.update(data: bytes)
            state = .md5(hash)
        }
    }

    /// Feeds bytes in memory.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var hash):
            hash.update(bufferPointer: bytes)
            state = .sha256(hash)
        case .md5(var hash):
            hash.update(bufferPointer: bytes)
            state = .md5(hash)
        }
    }

    /// Feeds a file's bytes, a megabyte at a time.
    public mutating func update(contentsOf url: URL) throws {
        let handle: FileHandle
        do {
            handle = try FileHandle(forReadingFrom: url)
        } catch {
            throw CatalogError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
        defer { try? handle.close() }
        do {
            while let chunk = try handle.read(upToCount: Self.chunkSize), !chunk.isEmpty { update(chunk) }
        } catch {
            throw CatalogError.unreadable(path: url.path, reason: "\(error.localizedDescription)")
        }
    }

    /// The digest of everything fed so far, as lowercase hexadecimal.
    public func hexadecimal() -> String {
        let bytes: [UInt8]
        switch state {
        case .sha256(let hash): bytes = Array(hash.finalize())
        case .md5(let hash): bytes = Array(hash.finalize())
        }
        return bytes.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
    }

    /// The digest of a whole file.
    public static func hexadecimal(_ algorithm: Algorithm, of url: URL) throws -> String {
        var digest = FileDigest(algorithm)
        try digest.update(contentsOf: url)
        return digest.hexadecimal()
    }

    /// The digest of bytes in memory.
    public static func hexadecimal(_ algorithm: Algorithm, of bytes: UnsafeRawBufferPointer) -> String {
        var digest = FileDigest(algorithm)
        digest.update(bytes)
        return digest.hexadecimal()
    }
}
