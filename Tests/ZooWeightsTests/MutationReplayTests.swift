import Foundation
import Testing
import ZooWeights

/// A deterministic corpus of damaged fixtures replayed through every reader: opening and
/// reading every tensor may fail only by throwing `WeightFileError`, never by crashing,
/// hanging or allocating without bound.
@Suite struct MutationReplayTests {
    /// SplitMix64: a small, fast, deterministic generator, so failures reproduce exactly.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9e37_79b9_7f4a_7c15
            var z = state
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            return z ^ (z >> 31)
        }
    }

    /// Values that break length and offset fields in interesting ways.
    static let interesting: [[UInt8]] = [
        [0xff, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], [0, 0, 0, 0], [0x7f, 0xff, 0xff, 0xff],
        [0, 0, 0, 0x80], [0xff, 0xff], [0x01], [0x40, 0, 0, 0, 0, 0, 0, 0], [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ]

    static func mutate(_ original: [UInt8], _ random: inout Generator) -> [UInt8] {
        var bytes = original
        guard !bytes.isEmpty else { return [0] }
        let rounds = Int.random(in: 1...3, using: &random)
        for _ in 0..<rounds {
            let position = Int.random(in: 0..<max(bytes.count, 1), using: &random)
            switch Int.random(in: 0..<8, using: &random) {
            case 0:  // flip bits of a few bytes
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    let at = Int.random(in: 0..<bytes.count, using: &random)
                    bytes[at] ^= UInt8(1) << UInt8.random(in: 0...7, using: &random)
                }
            case 1:  // random bytes
                for offset in 0..<Int.random(in: 1...4, using: &random) where position + offset < bytes.count {
                    bytes[position + offset] = UInt8.random(in: 0...255, using: &random)
                }
            case 2:  // an interesting value over a field
                let value = interesting[Int.random(in: 0..<interesting.count, using: &random)]
                for (offset, byte) in value.enumerated() where position + offset < bytes.count {
                    bytes[position + offset] = byte
                }
            case 3:  // truncate
                bytes.removeSubrange(position...)
                if bytes.isEmpty { return bytes }
            case 4:  // insert
                let count = Int.random(in: 1...16, using: &random)
                bytes.insert(contentsOf: (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }, at: position)
            case 5:  // delete a range
                let end = min(bytes.count, position + Int.random(in: 1...64, using: &random))
                bytes.removeSubrange(position..<end)
                if bytes.isEmpty { return bytes }
            case 6:  // duplicate a chunk
                let end = min(bytes.count, position + Int.random(in: 1...64, using: &random))
                let chunk = Array(bytes[position..<end])
                bytes.insert(contentsOf: chunk, at: Int.random(in: 0...bytes.count, using: &random))
            default:  // swap two bytes
                let other = Int.random(in: 0..<bytes.count, using: &random)
                bytes.swapAt(position, other)
            }
        }
        return bytes
    }

    static let mutantsPerFixture = 120

    @Test(.timeLimit(.minutes(5)), arguments: Fixtures.allFiles)
    func mutantsOnlyThrow(_ name: String) throws {
        let original = [UInt8](try Data(contentsOf: Fixtures.url(name)))
        let folder = try TemporaryFolder()
        var random = Generator(state: UInt64(truncatingIfNeeded: name.utf8.reduce(5381) { ($0 << 5) &+ $0 &+ Int($1) }))
        var outcomes = (opened: 0, rejected: 0)
        for index in 0..<Self.mutantsPerFixture {
            let mutant = Self.mutate(original, &random)
            let url = try folder.write(mutant, name: "m\(index)-\(name)")
            do {
                try openAndReadEverything(url)
                outcomes.opened += 1
            } catch let error as WeightFileError {
                #expect(error.path == url.path)
                #expect(!error.message.isEmpty)
                outcomes.rejected += 1
            } catch {
                Issue.record("mutant \(index) of \(name) threw \(type(of: error)), not WeightFileError: \(error)")
            }
            try? FileManager.default.removeItem(at: url)
        }
        #expect(outcomes.opened + outcomes.rejected == Self.mutantsPerFixture)
    }
}
