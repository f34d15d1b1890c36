import Foundation
import Testing
import ZooWeights

/// Feature files: written a block of rows at a time, read back whole, refused when unfinished,
/// and continued after an interruption.
@Suite struct FeatureFileTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-feature-files-\(UUID().uuidString)")

    func header(count: Int = 10, layers: [FeatureFileHeader.Layer] = [.init(name: "block", shape: [2, 2, 3])]) -> FeatureFileHeader {
        FeatureFileHeader(architecture: "resnet50", flavor: "keras", weights: "w.h5", imageSize: 64, preprocessing: "caffe",
                          source: "images/", batchSize: 4, layers: layers, classNames: ["cat", "dog"], count: count)
    }

    func rows(_ layer: FeatureFileHeader.Layer, _ range: Range<Int>) -> [Float] {
        let size = layer.shape.reduce(1, *)
        return range.flatMap { row in (0..<size).map { Float(row * 1000 + $0) * 0.25 - 3 } }
    }

    /// Writes rows `0..<upTo` in blocks of 4, committing after each block.
    func write(_ writer: FeatureFileWriter, from start: Int, upTo end: Int) throws {
        for first in stride(from: start, to: end, by: 4) {
            let last = min(first + 4, end)
            for (index, layer) in writer.header.layers.enumerated() {
                try writer.write(layer: index, start: first, rows: last - first, values: rows(layer, first..<last))
            }
            try writer.commit(rows: last)
        }
    }

    @Test("every format reads back the features, labels, class names and sample ids it was given", arguments: ["h5", "safetensors", "npy"])
    func roundTrip(format: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("features.\(format)")
        let layers: [FeatureFileHeader.Layer] = format == "npy" ? [.init(name: "block", shape: [2, 2, 3])]
            : [.init(name: "block", shape: [2, 2, 3]), .init(name: "pool", shape: [5])]
        let header = header(layers: layers)
        let labels = (0..<10).map { $0 % 2 }
        let ids = (0..<10).map { "images/ü\($0).png" }
        let writer = try FeatureFileWriter(url: url, header: header, labels: labels, sampleIDs: ids)
        try write(writer, from: 0, upTo: 10)
        try writer.finish()
        #expect(!FileManager.default.fileExists(atPath: url.path + ".partial"))
        #expect(!FileManager.default.fileExists(atPath: url.path + ".progress"))

        let file = try FeatureFile.open(url)
        #expect(file.header == header)
        #expect(file.labels == labels)
        #expect(file.sampleIDs == ids)
        for layer in layers {
            let (values, shape) = try file.features(layer.name)
            #expect(shape == [10] + layer.shape)
            #expect(values == rows(layer, 0..<10))
        }
        #expect(throws: WeightFileError.self) { try file.features("nonsense") }
        // The destination is never overwritten.
        #expect(throws: WeightFileError.self) { try FeatureFileWriter(url: url, header: header, labels: labels, sampleIDs: ids) }
    }

    @Test("an unfinished file is refused, and a new writer continues it after its last committed row", arguments: ["h5", "safetensors", "npy"])
    func resume(format: String) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("features.\(format)")
        let straightURL = folder.appendingPathComponent("straight.\(format)")
        let header = header()
        let labels = (0..<10).map { $0 % 2 }
        let ids = (0..<10).map { "sample\($0)" }
        let straight = try FeatureFileWriter(url: straightURL, header: header, labels: labels, sampleIDs: ids)
        try write(straight, from: 0, upTo: 10)
        try straight.finish()

        do {
            let interrupted = try FeatureFileWriter(url: url, header: header, labels: labels, sampleIDs: ids)
            try write(interrupted, from: 0, upTo: 8)
            // A block written but not committed, as when a kill comes before the commit.
            try interrupted.write(layer: 0, start: 8, rows: 2, values: [Float](repeating: 99, count: 24))
        }
        let partial = URL(fileURLWithPath: url.path + ".partial")
        #expect(!FileManager.default.fileExists(atPath: url.path))
        // The unfinished file itself, given by its own name, is refused with a clear message.
        let renamed = folder.appendingPathComponent("renamed.\(format)")
        try FileManager.default.copyItem(at: partial, to: renamed)
        let refusal = #expect(throws: WeightFileError.self) { try FeatureFile.open(renamed) }
        #expect(refusal.map { "\($0)".contains(format == "npy" ? "not a complete zoo feature file" : "unfinished extraction") } == true)

        var other = header
        other.imageSize = 96
        let mismatch = #expect(throws: WeightFileError.self) { try FeatureFileWriter(url: url, header: other, labels: labels, sampleIDs: ids) }
        #expect(mismatch.map { "\($0)".contains("size was 64, now 96") } == true)

        let resumed = try FeatureFileWriter(url: url, header: header, labels: labels, sampleIDs: ids)
        #expect(resumed.rowsDone == 8)
        try write(resumed, from: resumed.rowsDone, upTo: 10)
        try resumed.finish()
        #expect(try Data(contentsOf: url) == Data(contentsOf: straightURL))
        #expect(try FeatureFile.open(url).features().values == FeatureFile.open(straightURL).features().values)
    }

    @Test("bad requests are refused before anything is written")
    func refusals() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let two = header(layers: [.init(name: "a", shape: [3]), .init(name: "b", shape: [4])])
        let labels = [Int](repeating: 0, count: 10), ids = (0..<10).map(String.init)
        #expect(throws: WeightFileError.self) { try FeatureFileWriter(url: folder.appendingPathComponent("x.npy"), header: two, labels: labels, sampleIDs: ids) }
        #expect(throws: WeightFileError.self) { try FeatureFileWriter(url: folder.appendingPathComponent("x.csv"), header: two, labels: labels, sampleIDs: ids) }
        let writer = try FeatureFileWriter(url: folder.appendingPathComponent("x.h5"), header: two, labels: labels, sampleIDs: ids)
        #expect(throws: WeightFileError.self) { try writer.write(layer: 0, start: 8, rows: 4, values: [Float](repeating: 0, count: 12)) }
        #expect(throws: WeightFileError.self) { try FeatureFile.open(folder.appendingPathComponent("missing.h5")) }
    }
}
