import Foundation
import Testing
import ZooWeights

/// Every fixture lists exactly the tensors its writer stored and reads back exactly their values.
@Suite struct FixtureTests {
    /// Formats whose expected listing is in name order rather than file order (see
    /// `naming_rules` in expected.json: Keras 3 groups iterate by name, safetensors orders its
    /// data by dtype alignment).
    static let comparedByName: Set<String> = ["safetensors", "keras3-weights-h5", "keras-archive"]

    struct ExpectedTensor {
        let name: String
        let dtype: String
        let shape: [Int]
        let values: [Double]?

        init(_ object: [String: Any]) {
            name = object["name"] as? String ?? "<missing>"
            dtype = object["dtype"] as? String ?? "<missing>"
            shape = (object["shape"] as? [NSNumber] ?? []).map(\.intValue)
            values = (object["values"] as? [NSNumber])?.map(\.doubleValue)
        }
    }

    static func expectedTensors(_ fixture: [String: Any]) -> [ExpectedTensor] {
        let main = (fixture["tensors"] as? [[String: Any]] ?? []).map(ExpectedTensor.init)
        // Checkpoints: the state dict's tensors, then the others under their dotted paths.
        let extra = (fixture["extra_tensors"] as? [[String: Any]] ?? []).map(ExpectedTensor.init)
        return main + extra
    }

    @Test func fixturesArePresent() {
        #expect(Fixtures.readable.count >= 20)
        #expect(Fixtures.rejected.count >= 3)
        for name in Fixtures.allFiles {
            #expect(FileManager.default.fileExists(atPath: Fixtures.url(name).path), "missing fixture \(name)")
        }
    }

    @Test(arguments: Fixtures.readable)
    func listingAndValues(_ name: String) throws {
        let fixture = try #require(Fixtures.fixtures[name])
        let reader = try WeightFiles.open(Fixtures.url(name))
        let format = fixture["format"] as? String ?? ""
        #expect(reader.format.rawValue == format)

        var expected = Self.expectedTensors(fixture)
        var listed = reader.tensors
        if Self.comparedByName.contains(format) {
            expected.sort { $0.name < $1.name }
            listed.sort { $0.name < $1.name }
        }
        #expect(listed.map(\.name) == expected.map(\.name), "names of \(name)")
        for (tensor, want) in zip(listed, expected) where tensor.name == want.name {
            #expect(tensor.dtype.rawValue == want.dtype, "dtype of \(name):\(tensor.name)")
            #expect(tensor.shape == want.shape, "shape of \(name):\(tensor.name)")
            #expect(reader.info(tensor.name) == tensor)
            let values = try reader.floats(tensor.name)
            #expect(values.count == tensor.elementCount)
            if let wanted = want.values {
                let converted = wanted.map { Float($0) }
                let mismatches = zip(values, converted).enumerated().filter { $0.element.0 != $0.element.1 }
                #expect(
                    values.count == converted.count && mismatches.isEmpty,
                    "values of \(name):\(tensor.name) differ at \(mismatches.prefix(3).map { "[\($0.offset)] \($0.element.0) != \($0.element.1)" })")
            }
        }
        checkMetadata(reader.metadata, fixture: fixture, format: format, name: name)
    }

    func checkMetadata(_ metadata: WeightMetadata, fixture: [String: Any], format: String, name: String) {
        let expected = fixture["metadata"] as? [String: Any] ?? [:]
        switch format {
        case "keras-h5":
            #expect(metadata.writerVersions["keras_version"] == expected["keras_version"] as? String, "\(name)")
            #expect(metadata.writerVersions["backend"] == expected["backend"] as? String, "\(name)")
            #expect(metadata.kerasLayerNames == expected["layer_names"] as? [String], "\(name)")
            if let className = expected["model_config_class_name"] as? String {
                #expect(metadata.kerasModelConfig?.contains(className) == true, "\(name) model_config")
            }
            if expected["has_training_config"] as? Bool == true {
                #expect(metadata.extra["training_config"] != nil, "\(name) training_config")
            }
        case "keras3-weights-h5", "keras-archive":
            for group in expected["vars_groups"] as? [[String: Any]] ?? [] {
                guard let varsPath = group["vars_group"] as? String else { continue }
                let layerPath = varsPath == "vars" ? "" : String(varsPath.dropLast("/vars".count))
                #expect(metadata.kerasLayerNamesByPath[layerPath] == group["name_attr"] as? String, "\(name) \(varsPath)")
            }
            if format == "keras-archive" {
                #expect(metadata.writerVersions["keras_version"] == expected["keras_version"] as? String)
                if let model = expected["model_name"] as? String {
                    #expect(metadata.kerasModelConfig?.contains(model) == true)
                }
            }
        case "torch-zip":
            if let version = expected["version"] {
                #expect(metadata.writerVersions["pytorch format version"] == "\(version)", "\(name)")
            }
            #expect(metadata.extra["byteorder"] == expected["byteorder"] as? String, "\(name)")
            #expect(metadata.extra["state_dict_key"] == expected["state_dict_key"] as? String, "\(name)")
        case "torch-legacy":
            #expect(metadata.writerVersions["pytorch format version"] == "1001")
        case "safetensors":
            let header = expected["__metadata__"] as? [String: String] ?? [:]
            #expect(metadata.extra == header, "\(name)")
        case "npy":
            if let version = expected["npy_version"] as? [NSNumber], version.count == 2 {
                #expect(metadata.writerVersions["npy format version"] == "\(version[0]).\(version[1])")
            }
            let fortran = expected["fortran_order"] as? Bool ?? false
            #expect((metadata.extra["fortran_order"] == "True") == fortran)
        default:
            break
        }
    }

    @Test(arguments: Fixtures.rejected)
    func rejectedFixtures(_ name: String) throws {
        let fixture = try #require(Fixtures.fixtures[name])
        let metadata = fixture["metadata"] as? [String: Any] ?? [:]
        let url = Fixtures.url(name)
        let error = try #require(expectWeightError { try openAndReadEverything(url) })
        #expect(error.path == url.path)
        #expect(error.description.hasPrefix(url.path))
        if let global = metadata["disallowed_global"] as? String {
            // "posix system" in expected.json: module and name separated by a space.
            let qualified = global.replacingOccurrences(of: " ", with: ".")
            #expect(error.kind == .disallowedGlobal)
            #expect(error.message.contains("global '\(qualified)'"), "\(error)")
        } else {
            #expect(error.kind == .unsupported, "\(error)")
            #expect(error.message.contains("object"), "\(error)")
        }
    }

    /// Detection must not depend on the extension.
    @Test(arguments: Fixtures.readable)
    func formatDetectionIgnoresTheExtension(_ name: String) throws {
        let folder = try TemporaryFolder()
        let copy = folder.file("weights.bin")
        try FileManager.default.copyItem(at: Fixtures.url(name), to: copy)
        let original = try WeightFiles.open(Fixtures.url(name))
        let renamed = try WeightFiles.open(copy)
        #expect(renamed.format == original.format)
        #expect(renamed.tensors == original.tensors)
    }
}
