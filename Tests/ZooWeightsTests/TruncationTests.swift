import Foundation
import Testing
import ZooWeights

/// Every fixture cut short at every structural boundary, and at many other offsets, is
/// rejected with an error that names the file.
@Suite struct TruncationTests {
    /// Signatures that start structures: zip records, HDF5 objects, NumPy headers, pickle STOP+PROTO.
    static let signatures: [[UInt8]] = [
        [0x50, 0x4b, 0x03, 0x04], [0x50, 0x4b, 0x01, 0x02], [0x50, 0x4b, 0x05, 0x06], [0x50, 0x4b, 0x06, 0x06],
        [0x50, 0x4b, 0x06, 0x07], [0x50, 0x4b, 0x07, 0x08],
        [0x89, 0x48, 0x44, 0x46], Array("TREE".utf8), Array("HEAP".utf8), Array("SNOD".utf8), Array("OHDR".utf8),
        Array("OCHK".utf8), Array("GCOL".utf8), Array("FRHP".utf8), Array("FSHD".utf8), Array("BTHD".utf8),
        Array("BTLF".utf8), Array("FHDB".utf8), Array("FHIB".utf8),
        [0x93] + Array("NUMPY".utf8), [0x2e, 0x80], [0x80, 0x02],
    ]

    static func cutPoints(_ bytes: [UInt8]) -> [Int] {
        let count = bytes.count
        var cuts = Set<Int>()
        cuts.formUnion(0..<min(count, 512))
        cuts.formUnion(max(0, count - 256)..<count)
        cuts.formUnion(stride(from: 0, to: count, by: max(1, count / 256)))
        for signature in signatures {
            for offset in occurrences(of: signature, in: bytes) {
                for delta in [-1, 0, 1, 2, signature.count, signature.count + 8] { cuts.insert(offset + delta) }
            }
        }
        // safetensors: the end of the JSON header; npy: the end of the header.
        if count >= 8 {
            let headerLength = bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
            if headerLength < UInt64(count) {
                for delta in [-1, 0, 1] { cuts.insert(8 + Int(headerLength) + delta) }
            }
        }
        if count >= 10, bytes[0] == 0x93 {
            let headerEnd = 10 + Int(bytes[8]) + Int(bytes[9]) << 8
            for delta in [-1, 0, 1] { cuts.insert(headerEnd + delta) }
        }
        return cuts.filter { $0 >= 0 && $0 < count }.sorted()
    }

    @Test(.timeLimit(.minutes(5)), arguments: Fixtures.allFiles)
    func everyTruncationIsRejected(_ name: String) throws {
        let original = [UInt8](try Data(contentsOf: Fixtures.url(name)))
        let folder = try TemporaryFolder()
        let cuts = Self.cutPoints(original)
        #expect(cuts.count > 100 || cuts.count == original.count)
        for cut in cuts {
            // A fresh name per cut: libhdf5 recognises files it already has open by path.
            let url = try folder.write(Array(original[0..<cut]), name: "cut\(cut)-\(name)")
            do {
                try openAndReadEverything(url)
                Issue.record("\(name) cut to \(cut) of \(original.count) bytes was accepted")
            } catch let error as WeightFileError {
                #expect(error.path == url.path)
                #expect(error.description.hasPrefix(url.path + ": "))
            } catch {
                Issue.record("\(name) cut to \(cut) threw \(type(of: error)): \(error)")
            }
            try? FileManager.default.removeItem(at: url)
        }
    }
}
