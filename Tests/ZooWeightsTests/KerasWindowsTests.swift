import Foundation
import Testing
import ZooWeights

/// Keras 3 on Windows names its HDF5 groups with `os.path.join`: `layers\conv2d`, one top-level
/// group per layer. Such files list and load exactly like the same weights written on Linux.
@Suite struct KerasWindowsTests {
    static func expectSameWeights(_ windows: any WeightReader, _ linux: any WeightReader) throws {
        #expect(windows.tensors == linux.tensors)
        #expect(windows.metadata.kerasLayerNamesByPath == linux.metadata.kerasLayerNamesByPath)
        #expect(windows.metadata.kerasLayerNamesByPath["layers/functional/layers/conv2d"] == "inner_conv")
        for tensor in linux.tensors {
            #expect(try windows.floats(tensor.name) == linux.floats(tensor.name), "\(tensor.name)")
        }
        // The optimizer's and the metrics' variables (`optimizer/vars/*`, `metrics\loss/vars/*`) are left out.
        #expect(!windows.tensors.contains { $0.name.hasPrefix("optimizer") || $0.name.hasPrefix("metrics") })
        #expect(!windows.tensors.contains { $0.name.contains("\\") })
    }

    @Test func weightsFileListsLikeTheLinuxOne() throws {
        let windows = try WeightFiles.open(Fixtures.url("keras3_windows.weights.h5"))
        let linux = try WeightFiles.open(Fixtures.url("keras3.weights.h5"))
        #expect(windows.format == .kerasWeightsH5)
        #expect(windows.tensors.first?.name == "layers/batch_normalization/vars/0")
        try Self.expectSameWeights(windows, linux)
    }

    /// The same HDF5 as the `model.weights.h5` of a `.keras` archive.
    @Test func kerasArchiveListsLikeTheLinuxOne() throws {
        let weights = [UInt8](try Data(contentsOf: Fixtures.url("keras3_windows.weights.h5")))
        let archive = makeZip([
            (name: "metadata.json", data: Array(#"{"keras_version": "3.15.1"}"#.utf8)),
            (name: "config.json", data: Array(#"{"class_name": "Functional"}"#.utf8)),
            (name: "model.weights.h5", data: weights),
        ])
        let folder = try TemporaryFolder()
        let windows = try WeightFiles.open(try folder.write(archive, name: "windows.keras"))
        #expect(windows.format == .kerasArchive)
        try Self.expectSameWeights(windows, try WeightFiles.open(Fixtures.url("keras3_model.keras")))
    }
}
