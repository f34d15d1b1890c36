import Foundation
import Testing
import ZooCatalog

@Suite("Digests")
struct DigestTests {
    @Test("SHA-256 and MD5 match the standard test vectors")
    func vectors() {
        func hex(_ algorithm: FileDigest.Algorithm, _ text: String) -> String {
            var digest = FileDigest(algorithm)
            digest.update(Array(text.utf8))
            return digest.hexadecimal()
        }
        #expect(hex(.sha256, "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(.sha256, "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(.sha256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(.md5, "") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex(.md5, "The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6")
        // Fed in uneven pieces, a million 'a's.
        var digest = FileDigest(.sha256)
        var remaining = 1_000_000
        var piece = 1
        while remaining > 0 {
            let n = min(piece, remaining)
            digest.update([UInt8](repeating: 0x61, count: n))
            remaining -= n
            piece = piece * 3 % 1000 + 1
        }
        #expect(digest.hexadecimal() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("a file is digested in pieces to the digest of its whole bytes")
    func fileInPieces() throws {
        // Three million 'a's: three pieces of a megabyte (digests from Python's hashlib).
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-digest-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(repeating: 0x61, count: 3_000_000).write(to: file)
        #expect(try FileDigest.hexadecimal(.sha256, of: file) == "2a152c894398719c0570f83fac34ac03a0f6e8e474b995c2403aa5434f7b9dd4")
        #expect(try FileDigest.hexadecimal(.md5, of: file) == "99ddc9a3a46ea62c95652bdf937a1fb8")
        #expect(throws: CatalogError.self) { try FileDigest.hexadecimal(.sha256, of: file.appendingPathExtension("missing")) }
    }
}

@Suite("Downloads from a loopback server", .serialized)
struct DownloadTests {
    /// A weight set pointing at the server, with the body's real checksum in `algorithm`.
    func weightSet(_ server: LoopbackServer, algorithm: WeightSet.Checksum.Algorithm = .sha256, file: String = "weights.bin") -> WeightSet {
        let body = server.body
        var sha = FileDigest(.sha256), md5 = FileDigest(.md5)
        sha.update(body)
        md5.update(body)
        let value: String
        switch algorithm {
        case .md5: value = md5.hexadecimal()
        case .sha256Prefix: value = String(sha.hexadecimal().prefix(8))
        case .sha256: value = sha.hexadecimal()
        }
        return WeightSet(name: "test.loopback", architecture: "resnet50", flavor: .keras, publisher: "test", format: .kerasH5,
                         file: file, url: server.url, checksum: .init(algorithm: algorithm, value: value), includeTop: true,
                         classes: 1000, inputSize: 224, preprocessing: .caffe)
    }

    func temporaryCache() -> WeightCache {
        WeightCache(root: FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cache-\(UUID().uuidString)"))
    }

    let body: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }

    @Test("a pull downloads, verifies and caches; a second pull reuses the file", arguments: WeightSet.Checksum.Algorithm.allCases)
    func pullAndReuse(algorithm: WeightSet.Checksum.Algorithm) throws {
        let server = try LoopbackServer(body: body)
        defer { server.stop() }
        let cache = temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.root) }
        let set = weightSet(server, algorithm: algorithm)
        let file = try WeightDownload.pull(set, cache: cache)
        #expect(try Data(contentsOf: file) == Data(body))
        _ = try WeightDownload.pull(set, cache: cache)
        #expect(server.requests.count == 1)
    }

    @Test("an interrupted download resumes from where it stopped")
    func resume() throws {
        let server = try LoopbackServer(body: body, cutFirstResponseAt: 100_000)
        defer { server.stop() }
        let cache = temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.root) }
        let set = weightSet(server)
        #expect(throws: CatalogError.self) { try WeightDownload.pull(set, cache: cache) }
        let partial = cache.file(for: set).appendingPathExtension("part")
        #expect((try Data(contentsOf: partial)).count == 100_000)
        let file = try WeightDownload.pull(set, cache: cache)
        #expect(try Data(contentsOf: file) == Data(body))
        #expect(server.requests.last?.contains("Range: bytes=100000-") == true)
        #expect(!FileManager.default.fileExists(atPath: partial.path))
    }

    @Test("a server that ignores Range gets a fresh start")
    func noRangeSupport() throws {
        let server = try LoopbackServer(body: body, cutFirstResponseAt: 50_000, honourRange: false)
        defer { server.stop() }
        let cache = temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.root) }
        let set = weightSet(server)
        #expect(throws: CatalogError.self) { try WeightDownload.pull(set, cache: cache) }
        let file = try WeightDownload.pull(set, cache: cache)
        #expect(try Data(contentsOf: file) == Data(body))
    }

    @Test("a checksum mismatch is an error naming the file and both digests, and leaves nothing cached")
    func checksumMismatch() throws {
        let server = try LoopbackServer(body: body)
        defer { server.stop() }
        let cache = temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.root) }
        var set = weightSet(server)
        set.checksum = .init(algorithm: .sha256, value: String(repeating: "0", count: 64))
        do {
            try WeightDownload.pull(set, cache: cache)
            Issue.record("a damaged file was accepted")
        } catch {
            #expect("\(error)".contains("weights.bin"))
            #expect("\(error)".contains(String(repeating: "0", count: 64)))
        }
        #expect(!FileManager.default.fileExists(atPath: cache.file(for: set).path))
        #expect(!FileManager.default.fileExists(atPath: cache.file(for: set).appendingPathExtension("part").path))
    }
}

@Suite("Weights that ship with zoo")
struct BundledWeightTests {
    func temporaryCache() -> WeightCache {
        WeightCache(root: FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cache-\(UUID().uuidString)"))
    }

    @Test("zoo's CIFAR-10 ResNet-20 is in the catalog folder and matches its manifest's checksum")
    func shipped() throws {
        let set = try Catalog.weightSet(named: "cifar-resnet20.zoo_cifar10")
        #expect(set.url == nil && set.bundled != nil && set.checksum?.algorithm == .sha256)
        let cache = temporaryCache()
        defer { try? FileManager.default.removeItem(at: cache.root) }
        // The built-in copy, written out into the cache, and zoo/'s own file are the same.
        let file = try Catalog.bundledFile(set, in: nil, cache: cache)
        #expect(file.path.hasPrefix(cache.root.path))
        #expect(try Data(contentsOf: file) == Data(contentsOf: catalogFolder.appendingPathComponent(try #require(set.bundled))))
        #expect(try WeightDownload.pull(set, cache: cache) == file)
        #expect(try Catalog.localFile(set.name, cache: cache).0 == file)
        // A damaged copy in the cache is replaced by the built-in one.
        try Data("damaged".utf8).write(to: file)
        #expect(try Catalog.bundledFile(set, in: nil, cache: cache) == file)
        try set.verify(file)
        // ZOO_CATALOG's folder, when given, is used as it is.
        #expect(try Catalog.bundledFile(set, in: catalogFolder, cache: cache) == catalogFolder.appendingPathComponent(try #require(set.bundled)))
    }

    @Test("a damaged bundled file is refused with both digests; a missing one is named")
    func damaged() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-catalog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("weights"), withIntermediateDirectories: true)
        let bytes: [UInt8] = Array("weights".utf8)
        var digest = FileDigest(.sha256)
        digest.update(bytes)
        let set = WeightSet(name: "test.bundled", architecture: "cifar-resnet20", flavor: .torchvision, publisher: "zoo",
                            format: .zooCheckpoint, file: "w.safetensors", url: nil, bundled: "weights/w.safetensors",
                            checksum: .init(algorithm: .sha256, value: digest.hexadecimal()), includeTop: true, classes: 10,
                            inputSize: 32, preprocessing: .torch)
        #expect { try Catalog.bundledFile(set, in: folder) } throws: { "\($0)".contains("weights/w.safetensors is missing") }
        let file = folder.appendingPathComponent("weights/w.safetensors")
        try Data(bytes).write(to: file)
        #expect(try Catalog.bundledFile(set, in: folder) == file)
        try Data(Array("weightz".utf8)).write(to: file)
        do {
            _ = try Catalog.bundledFile(set, in: folder)
            Issue.record("a damaged file was accepted")
        } catch {
            #expect("\(error)".contains("w.safetensors") && "\(error)".contains(digest.hexadecimal()), "\(error)")
        }
    }
}
