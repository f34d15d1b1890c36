import Foundation
import Testing
import ZooWeights

/// What `zoo inspect` prints, rendered by the library.
@Suite struct InspectTests {
    @Test(arguments: ["torch_state_dict.pt", "keras2_full_model.h5", "tensors.safetensors", "arrays.npz", "keras3_model.keras"])
    func jsonListsExactlyTheTensors(_ name: String) throws {
        let url = Fixtures.url(name)
        let reader = try WeightFiles.open(url)
        let text = try WeightInspector.report(for: url, json: true)
        #expect(text.hasPrefix("{\"format\": \"\(reader.format.rawValue)\", \"tensors\": ["))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["format"] as? String == reader.format.rawValue)
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        #expect(tensors.count == reader.tensors.count)
        for (entry, tensor) in zip(tensors, reader.tensors) {
            #expect(Set(entry.keys) == ["name", "dtype", "shape"])
            #expect(entry["name"] as? String == tensor.name)
            #expect(entry["dtype"] as? String == tensor.dtype.rawValue)
            #expect((entry["shape"] as? [Int]) == tensor.shape)
        }
        let metadata = try #require(object["metadata"] as? [String: Any])
        #expect((metadata["writer_versions"] as? [String: String]) == reader.metadata.writerVersions)
        #expect(object["parameter_count"] as? Int == WeightInspector.parameterCount(reader))
    }

    @Test func tableShowsFormatVersionsAndAlignedRows() throws {
        let url = Fixtures.url("keras2_full_model.h5")
        let reader = try WeightFiles.open(url)
        let table = try WeightInspector.report(for: url, json: false)
        let lines = table.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("Format:  keras-h5"))
        #expect(lines.contains { $0.hasPrefix("Writer:  ") && $0.contains("keras_version 2.21.0") && $0.contains("backend tensorflow") })
        #expect(lines.contains("Layers:  10 in layer_names"))
        let header = try #require(lines.firstIndex { $0.hasPrefix("NAME") })
        let rows = Array(lines[(header + 1)..<(header + 1 + reader.tensors.count)])
        let dtypeColumn = try #require(lines[header].range(of: "DTYPE")).lowerBound.utf16Offset(in: lines[header])
        for (row, tensor) in zip(rows, reader.tensors) {
            #expect(row.hasPrefix(tensor.name + " "))
            #expect(row.dropFirst(dtypeColumn).hasPrefix(tensor.dtype.rawValue))
            #expect(row.hasSuffix("[" + tensor.shape.map(String.init).joined(separator: ", ") + "]"))
        }
        // 3·3·3·4 + 4 + 4·4 (BN) + 3·3·4·1 + 4·4 (BN) + 4·5 + 5
        #expect(lines.last == "13 tensors, 205 parameters")
    }

    @Test func errorsNameTheFile() throws {
        let folder = try TemporaryFolder()
        let url = try folder.write(Array("not weights".utf8), name: "x.bin")
        let error = expectWeightError { _ = try WeightInspector.report(for: url, json: true) }
        #expect(error?.description.hasPrefix(url.path) == true)
    }
}
