import Foundation
import Testing
import ZooWeights

/// The writers produce files the readers (and NumPy / safetensors) read back exactly.
@Suite struct WriterTests {
    /// Deterministic, varied values: negative, fractional, tiny and large magnitudes.
    static func values(_ count: Int, seed: Int) -> [Float] {
        (0..<count).map { index in
            let x = Float(index + seed)
            return (x * 0.37).sin() * Float(1 << (index % 9)) - x / 7
        }
    }

    static let shapes: [[Int]] = [[], [0], [3], [2, 3], [2, 3, 4], [1, 0, 2], [1, 1, 1, 5], [7, 1]]

    @Test func safetensorsRoundTrip() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("model.safetensors")
        let tensors = Self.shapes.enumerated().map { index, shape in
            (name: "layer\(index).weight \"ü\\", shape: shape, values: Self.values(shape.reduce(1, *), seed: index))
        }
        let metadata = ["format": "pt", "note": "line\nbreak \"quoted\""]
        try SafetensorsFile.write(tensors, metadata: metadata, to: url)

        let reader = try WeightFiles.open(url)
        #expect(reader.format == .safetensors)
        #expect(reader.metadata.extra == metadata)
        #expect(reader.tensors.map(\.name) == tensors.map(\.name))
        for (info, tensor) in zip(reader.tensors, tensors) {
            #expect(info.dtype == .f32)
            #expect(info.shape == tensor.shape)
            #expect(try reader.floats(info.name) == tensor.values)
        }
        // The header is padded so that data starts 8-byte aligned.
        let bytes = [UInt8](try Data(contentsOf: url))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    @Test func safetensorsOtherDTypes() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("mixed.safetensors")
        let half: [UInt8] = [0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00]  // 1.0, -2.0, smallest subnormal
        let bfloat: [UInt8] = [0x80, 0x3f, 0x40, 0xc0]  // 1.0, -3.0
        let longs = le64(UInt64(bitPattern: -5)) + le64(1 << 40)
        let flags: [UInt8] = [1, 0, 1]
        let doubles = withUnsafeBytes(of: (0.1 as Double).bitPattern.littleEndian) { Array($0) }
        try SafetensorsFile.write(
            encoded: [
                (name: "half", dtype: .f16, shape: [3], bytes: half),
                (name: "bf", dtype: .bf16, shape: [2], bytes: bfloat),
                (name: "long", dtype: .i64, shape: [2], bytes: longs),
                (name: "flag", dtype: .bool, shape: [3], bytes: flags),
                (name: "double", dtype: .f64, shape: [], bytes: doubles),
            ], to: url)
        let reader = try WeightFiles.open(url)
        #expect(try reader.floats("half") == [1, -2, 0x1p-24])
        #expect(try reader.floats("bf") == [1, -3])
        #expect(try reader.floats("long") == [-5, Float(1 << 40)])
        #expect(try reader.floats("flag") == [1, 0, 1])
        #expect(try reader.floats("double") == [Float(0.1 as Double)])
        #expect(reader.info("half")?.dtype == .f16)
        #expect(reader.info("missing") == nil)
        let error = expectWeightError { _ = try reader.floats("missing") }
        #expect(error?.kind == .missingTensor)
    }

    @Test func safetensorsWriterRejectsBadInput() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("bad.safetensors")
        let duplicate = expectWeightError {
            try SafetensorsFile.write([(name: "a", shape: [1], values: [1]), (name: "a", shape: [1], values: [2])], to: url)
        }
        #expect(duplicate?.kind == .duplicateName)
        let mismatch = expectWeightError {
            try SafetensorsFile.write([(name: "a", shape: [2, 2], values: [1, 2, 3])], to: url)
        }
        #expect(mismatch?.kind == .malformed)
        _ = expectWeightError { try SafetensorsFile.write([(name: "__metadata__", shape: [1], values: [1])], to: url) }
        #expect(!FileManager.default.fileExists(atPath: url.path))
    }

    @Test func npyRoundTrip() throws {
        let folder = try TemporaryFolder()
        for (index, shape) in Self.shapes.enumerated() {
            let url = folder.file("array\(index).npy")
            let values = Self.values(shape.reduce(1, *), seed: index)
            try NPYFile.write(values, shape: shape, to: url)
            let reader = try WeightFiles.open(url)
            #expect(reader.format == .npy)
            #expect(reader.tensors == [TensorInfo(name: "", dtype: .f32, shape: shape)])
            #expect(try reader.floats("") == values)
            // NumPy aligns the data to 64 bytes.
            let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
            #expect((size - values.count * 4) % 64 == 0)
        }
    }

    @Test(arguments: [false, true])
    func npzRoundTrip(compressed: Bool) throws {
        let folder = try TemporaryFolder()
        let url = folder.file(compressed ? "compressed.npz" : "stored.npz")
        let arrays = Self.shapes.enumerated().map { index, shape in
            (name: index == 0 ? "scalar" : "features.\(index).weight", shape: shape, values: Self.values(shape.reduce(1, *), seed: index))
        } + [(name: "big", shape: [300, 1000], values: Self.values(300_000, seed: 99))]
        try NPZFile.write(arrays, compressed: compressed, to: url)

        let reader = try WeightFiles.open(url)
        #expect(reader.format == .npz)
        #expect(reader.tensors.map(\.name) == arrays.map(\.name))
        for array in arrays {
            #expect(reader.info(array.name)?.shape == array.shape)
            #expect(try reader.floats(array.name) == array.values)
        }
        let size = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int ?? 0
        if compressed {
            #expect(size < 1_200_000 * 9 / 10, "deflate should shrink repetitive data")
        } else {
            #expect(size > 1_200_000)
        }
    }

    @Test func npzRejectsDuplicateNames() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("dup.npz")
        let error = expectWeightError {
            try NPZFile.write([(name: "a", shape: [1], values: [1]), (name: "a", shape: [1], values: [1])], compressed: false, to: url)
        }
        #expect(error?.kind == .duplicateName)
    }

    /// A failed write leaves the previous file untouched and no temporary files behind.
    @Test func writesAreAtomic() throws {
        let folder = try TemporaryFolder()
        let url = folder.file("weights.safetensors")
        try SafetensorsFile.write([(name: "old", shape: [2], values: [1, 2])], to: url)
        let before = try Data(contentsOf: url)

        _ = expectWeightError {
            try SafetensorsFile.write([(name: "x", shape: [1], values: [1]), (name: "x", shape: [1], values: [1])], to: url)
        }
        #expect(try Data(contentsOf: url) == before)

        try SafetensorsFile.write([(name: "new", shape: [1], values: [3])], to: url)
        #expect(try WeightFiles.open(url).tensors.map(\.name) == ["new"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.url.path)
        #expect(leftovers == ["weights.safetensors"])

        let missingFolder = folder.file("no/such/folder/w.npy")
        let error = expectWeightError { try NPYFile.write([1], shape: [1], to: missingFolder) }
        #expect(error?.kind == .io)
        #expect(error?.path == missingFolder.path)
    }
}

extension Float {
    fileprivate func sin() -> Float { Float(Foundation.sin(Double(self))) }
}
