import Foundation
import Testing
import ZooWeights

/// `NPYFile.read(from:)`, the public way to read a `.npy` into values and a shape.
@Suite struct NPYReadTests {
    @Test func roundTripsThroughWrite() throws {
        let folder = try TemporaryFolder()
        for (index, shape) in [[], [0], [7], [2, 3], [2, 3, 4, 5]].enumerated() {
            let url = folder.file("array\(index).npy")
            let values = (0..<shape.reduce(1, *)).map { Float($0) * 0.25 - 3 }
            try NPYFile.write(values, shape: shape, to: url)
            let array = try NPYFile.read(from: url)
            #expect(array == NPYArray(values: values, shape: shape, storedType: .f32))
        }
    }

    /// f16, Fortran-order f64 and big-endian f32 fixtures read to the values NumPy saved,
    /// Fortran order turned into row-major order.
    @Test(arguments: ["f16.npy", "f64_fortran.npy", "big_endian_f4.npy", "f32.npy", "i64.npy", "scalar_f32.npy", "v2.npy"])
    func readsFixtures(_ name: String) throws {
        let fixture = try #require(Fixtures.fixtures[name])
        let expected = try #require(FixtureTests.expectedTensors(fixture).first)
        let array = try NPYFile.read(from: Fixtures.url(name))
        #expect(array.shape == expected.shape)
        #expect(array.storedType.rawValue == expected.dtype)
        #expect(array.values == (expected.values ?? []).map { Float($0) })
    }

    @Test func refusesWhatItCannotRead() throws {
        let objects = try #require(expectWeightError { _ = try NPYFile.read(from: Fixtures.url("object.npy")) })
        #expect(objects.kind == .unsupported)
        #expect(objects.path == Fixtures.url("object.npy").path)

        let folder = try TemporaryFolder()
        let url = folder.file("short.npy")
        try NPYFile.write([1, 2, 3, 4], shape: [4], to: url)
        let bytes = [UInt8](try Data(contentsOf: url))
        let truncated = try folder.write(Array(bytes.dropLast(3)), name: "truncated.npy")
        #expect(expectWeightError { _ = try NPYFile.read(from: truncated) }?.kind == .truncated)
        let missing = folder.file("missing.npy")
        #expect(expectWeightError { _ = try NPYFile.read(from: missing) }?.kind == .io)
    }
}
