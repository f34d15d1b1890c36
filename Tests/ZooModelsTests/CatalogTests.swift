import Foundation
import Testing
import ZooModels

@Suite("Digests")
struct DigestTests {
    @Test("SHA-256 and MD5 match the standard test vectors")
    func vectors() {
        func hex(_ algorithm: Digest.Algorithm, _ text: String) -> String {
            var digest = Digest(algorithm)
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
        var digest = Digest(.sha256)
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
}

@Suite("Downloads from a loopback server", .serialized)
struct DownloadTests {
    /// A weight set pointing at the server, with the body's real checksum in `algorithm`.
    func weightSet(_ server: LoopbackServer, algorithm: String = "sha256", file: String = "weights.bin") -> WeightSet {
        let body = server.body
        var sha = Digest(.sha256), md5 = Digest(.md5)
        sha.update(body)
        md5.update(body)
        let value: String
        switch algorithm {
        case "md5": value = md5.hexadecimal()
        case "sha256-prefix": value = String(sha.hexadecimal().prefix(8))
        default: value = sha.hexadecimal()
        }
        return WeightSet(name: "test.loopback", architecture: "resnet50", flavor: .keras, publisher: "test", format: "keras-h5",
                         file: file, url: server.url, checksum: .init(algorithm: algorithm, value: value), includeTop: true,
                         classes: 1000, inputSize: 224, preprocessing: "caffe")
    }

    func temporaryCache() -> WeightCache {
        WeightCache(root: FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cache-\(UUID().uuidString)"))
    }

    let body: [UInt8] = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }

    @Test("a pull downloads, verifies and caches; a second pull reuses the file", arguments: ["sha256", "md5", "sha256-prefix"])
    func pullAndReuse(algorithm: String) throws {
        let server = try LoopbackServer(body: body)
        defer { server.stop() }
        let cache = temporaryCache()
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
        let set = weightSet(server)
        #expect(throws: ModelError.self) { try WeightDownload.pull(set, cache: cache) }
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
        let set = weightSet(server)
        #expect(throws: ModelError.self) { try WeightDownload.pull(set, cache: cache) }
        let file = try WeightDownload.pull(set, cache: cache)
        #expect(try Data(contentsOf: file) == Data(body))
    }

    @Test("a checksum mismatch is an error naming the file and both digests, and leaves nothing cached")
    func checksumMismatch() throws {
        let server = try LoopbackServer(body: body)
        defer { server.stop() }
        let cache = temporaryCache()
        var set = weightSet(server)
        set.checksum = .init(algorithm: "sha256", value: String(repeating: "0", count: 64))
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
    @Test("zoo's CIFAR-10 ResNet-20 is in the catalog folder and matches its manifest's checksum")
    func shipped() throws {
        let set = try Catalog.weightSet(named: "cifar-resnet20.zoo_cifar10")
        #expect(set.url == nil && set.bundled != nil && set.checksum?.algorithm == "sha256")
        let file = try Catalog.bundledFile(set)
        #expect(try WeightDownload.pull(set) == file)
        #expect(try Catalog.localFile(set.name).0 == file)
    }

    @Test("a damaged bundled file is refused with both digests; a missing one is named")
    func damaged() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-catalog-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("weights"), withIntermediateDirectories: true)
        let bytes: [UInt8] = Array("weights".utf8)
        var digest = Digest(.sha256)
        digest.update(bytes)
        let set = WeightSet(name: "test.bundled", architecture: "cifar-resnet20", flavor: .torchvision, publisher: "zoo",
                            format: "zoo-checkpoint", file: "w.safetensors", url: nil, bundled: "weights/w.safetensors",
                            checksum: .init(algorithm: "sha256", value: digest.hexadecimal()), includeTop: true, classes: 10,
                            inputSize: 32, preprocessing: "torch")
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

@Suite("The catalog")
struct CatalogManifestTests {
    @Test("the manifests built into the library are exactly those of zoo/ (scripts/embed-catalog)")
    func embeddedMatchesFolder() throws {
        let folder = try #require(Catalog.folder)
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".json") && $0 != "schema.json" }.sorted()
        let fromFiles = try files.map { try JSONDecoder().decode(WeightSet.self, from: Data(contentsOf: folder.appendingPathComponent($0))) }
        #expect(files.map { String($0.dropLast(5)) } == fromFiles.map(\.name), "a manifest's name differs from its file name")
        #expect(Catalog.weightSets == fromFiles.sorted { $0.name < $1.name }, "run scripts/embed-catalog")
    }
}
