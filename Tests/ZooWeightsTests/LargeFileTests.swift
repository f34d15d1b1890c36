import Foundation
import Testing
import ZooWeights

/// Opening a large file lists it without reading its data. Opt-in: set ZOO_LARGE_WEIGHT_FILES
/// to a folder of big files (any of big.safetensors, big.pt, big.h5, ...), e.g. ones written
/// by torch / safetensors / h5py under /tmp; the files are never part of the repository.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["ZOO_LARGE_WEIGHT_FILES"] != nil))
struct LargeFileTests {
    static var files: [URL] {
        guard let folder = ProcessInfo.processInfo.environment["ZOO_LARGE_WEIGHT_FILES"],
            let names = try? FileManager.default.contentsOfDirectory(atPath: folder)
        else { return [] }
        return names.sorted().map { URL(fileURLWithPath: folder).appendingPathComponent($0) }
    }

    @Test(arguments: files)
    func listingIsFast(_ url: URL) throws {
        let clock = ContinuousClock()
        var reader: (any WeightReader)?
        let opening = try clock.measure { reader = try WeightFiles.open(url) }
        let listed = try #require(reader)
        var values = 0
        let reading = try clock.measure {
            for tensor in listed.tensors { values += try listed.floats(tensor.name).count }
        }
        let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        print("\(url.lastPathComponent): \(size / 1_000_000) MB, \(listed.format.rawValue), \(listed.tensors.count) tensors; open and list \(opening), read all \(values) values \(reading)")
        #expect(opening < .seconds(1))
        #expect(values == listed.tensors.reduce(0) { $0 + $1.elementCount })
    }
}
