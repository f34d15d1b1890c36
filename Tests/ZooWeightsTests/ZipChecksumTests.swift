import Foundation
import Testing
import ZooWeights

/// A bit flipped in the data of a zip-based weight file (torch zip, `.keras`, `.npz`) is caught
/// by the entry's CRC-32 and reported naming the file and the entry, instead of loading as
/// silently wrong numbers.
@Suite struct ZipChecksumTests {
    /// Where the bytes of the entry called `name` are, found through the central directory the
    /// way a zip reader finds them (local header sizes may be zero in torch files).
    static func dataRange(of name: String, in bytes: [UInt8]) throws -> Range<Int> {
        func u16(_ at: Int) -> Int { Int(bytes[at]) | Int(bytes[at + 1]) << 8 }
        func u32(_ at: Int) -> Int { u16(at) | u16(at + 2) << 16 }
        let end = try #require((0...(bytes.count - 22)).reversed().first { u32($0) == 0x0605_4b50 })
        var position = u32(end + 16)
        for _ in 0..<u16(end + 10) {
            let nameLength = u16(position + 28)
            let entryName = String(decoding: bytes[(position + 46)..<(position + 46 + nameLength)], as: UTF8.self)
            if entryName == name {
                let size = u32(position + 20)
                let local = u32(position + 42)
                let start = local + 30 + u16(local + 26) + u16(local + 28)
                return start..<(start + size)
            }
            position += 46 + nameLength + u16(position + 30) + u16(position + 32)
        }
        Issue.record("no zip entry named \(name)")
        return 0..<0
    }

    /// A copy of the fixture with one bit flipped at `offset`, in `folder`.
    static func damagedCopy(of fixture: String, at offset: Int, in folder: TemporaryFolder) throws -> URL {
        var bytes = [UInt8](try Data(contentsOf: Fixtures.url(fixture)))
        bytes[offset] ^= 0x10
        return try folder.write(bytes, name: "damaged-" + fixture)
    }

    static func expectChecksumError(_ error: WeightFileError?, url: URL, entry: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard let error else {
            Issue.record("a damaged entry loaded without error", sourceLocation: sourceLocation)
            return
        }
        #expect(error.kind == .checksumMismatch, "\(error)", sourceLocation: sourceLocation)
        #expect(error.path == url.path, sourceLocation: sourceLocation)
        #expect(error.message.contains("zip entry '\(entry)'"), "\(error)", sourceLocation: sourceLocation)
        #expect(error.message.contains("CRC-32"), "\(error)", sourceLocation: sourceLocation)
    }

    @Test func flippedBitInTorchTensorDataIsRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: Fixtures.url("torch_state_dict.pt")))
        let range = try Self.dataRange(of: "archive/data/3", in: bytes)
        let folder = try TemporaryFolder()
        let url = try Self.damagedCopy(of: "torch_state_dict.pt", at: range.lowerBound + range.count / 2, in: folder)

        // Listing reads no tensor data; only the tensor on storage 3 is refused, the others load.
        let reader = try WeightFiles.open(url)
        let pristine = try WeightFiles.open(Fixtures.url("torch_state_dict.pt"))
        for tensor in reader.tensors {
            if tensor.name == "features.1.bias" {
                let error = expectWeightError { _ = try reader.floats(tensor.name) }
                Self.expectChecksumError(error, url: url, entry: "archive/data/3")
                #expect(error?.message.contains("tensor 'features.1.bias'") == true, "\(String(describing: error))")
            } else {
                #expect(try reader.floats(tensor.name) == pristine.floats(tensor.name), "\(tensor.name)")
            }
        }
    }

    /// Tensors sharing a damaged storage all fail, with the one outcome of the one check.
    @Test func sharedStorageFailsForEveryTensorOnIt() throws {
        let bytes = [UInt8](try Data(contentsOf: Fixtures.url("torch_views.pt")))
        let range = try Self.dataRange(of: "archive/data/0", in: bytes)
        let folder = try TemporaryFolder()
        let url = try Self.damagedCopy(of: "torch_views.pt", at: range.lowerBound, in: folder)
        let reader = try WeightFiles.open(url)
        var messages: Set<String> = []
        for name in ["base", "base_t", "base_slice", "flat_slice", "base"] {
            let error = expectWeightError { _ = try reader.floats(name) }
            Self.expectChecksumError(error, url: url, entry: "archive/data/0")
            if let error { messages.insert(error.message.replacingOccurrences(of: "tensor '\(name)': ", with: "")) }
        }
        #expect(messages.count == 1, "\(messages)")
        #expect(try reader.floats("orphan_slice").count == 4)
    }

    @Test func flippedBitInKerasArchiveTensorDataIsRefused() throws {
        let fixture = try #require(Fixtures.fixtures["keras3_model.keras"])
        let dense = try #require(FixtureTests.expectedTensors(fixture).first { $0.name == "layers/dense/vars/0" })
        let pattern = (dense.values ?? []).flatMap { value in withUnsafeBytes(of: Float(value).bitPattern.littleEndian, Array.init) }
        let bytes = [UInt8](try Data(contentsOf: Fixtures.url("keras3_model.keras")))
        let weights = try Self.dataRange(of: "model.weights.h5", in: bytes)
        let tensorOffset = try #require(
            weights.first { bytes[$0..<min($0 + pattern.count, bytes.count)].elementsEqual(pattern) },
            "the dense kernel's bytes are in model.weights.h5")
        let folder = try TemporaryFolder()
        let url = try Self.damagedCopy(of: "keras3_model.keras", at: tensorOffset + 5, in: folder)

        // Listing still works (the HDF5 structure is intact); values are refused, since the
        // CRC-32 covers the whole model.weights.h5 entry.
        let reader = try WeightFiles.open(url)
        #expect(reader.tensors.count == FixtureTests.expectedTensors(fixture).count)
        for name in ["layers/dense/vars/0", "layers/conv2d/vars/0"] {
            Self.expectChecksumError(expectWeightError { _ = try reader.floats(name) }, url: url, entry: "model.weights.h5")
        }
    }

    @Test func flippedBitInStoredNPZEntryIsRefused() throws {
        let bytes = [UInt8](try Data(contentsOf: Fixtures.url("arrays.npz")))
        let range = try Self.dataRange(of: "bias.npy", in: bytes)
        let folder = try TemporaryFolder()
        let url = try Self.damagedCopy(of: "arrays.npz", at: range.upperBound - 1, in: folder)
        let reader = try WeightFiles.open(url)
        Self.expectChecksumError(expectWeightError { _ = try reader.floats("bias") }, url: url, entry: "bias.npy")
        #expect(try reader.floats("ids") == WeightFiles.open(Fixtures.url("arrays.npz")).floats("ids"))
    }

    /// The untouched fixtures still load, every tensor of them (the CRC-32 of every entry passes).
    @Test(arguments: ["torch_state_dict.pt", "torch_views.pt", "torch_checkpoint.pth", "torch_custom_prefix.pt", "keras3_model.keras", "arrays.npz", "arrays_compressed.npz"])
    func untouchedArchivesLoad(_ name: String) throws {
        let tensors = try openAndReadEverything(Fixtures.url(name))
        #expect(!tensors.isEmpty)
    }
}
