import Foundation
import Testing
import ZooNN
import ZooModels
import ZooCatalog

@Suite("Manifests")
struct ManifestTests {
    static let manifestFiles: [String] = (try? FileManager.default.contentsOfDirectory(atPath: catalogFolder.path))
        .map { $0.filter { $0.hasSuffix(".json") && $0 != "schema.json" }.sorted() } ?? []

    static func validator() throws -> SchemaValidator {
        SchemaValidator(schema: try JSONValue.parse(Data(contentsOf: catalogFolder.appendingPathComponent("schema.json"))))
    }

    @Test("every ImageNet architecture and flavour has a published weight set in zoo/")
    func everyArchitectureHasManifests() throws {
        var published: Set<String> = []
        for file in Self.manifestFiles {
            let set = try Catalog.manifest(Data(contentsOf: catalogFolder.appendingPathComponent(file)), file: file)
            published.insert("\(set.architecture) \(set.flavor.rawValue)")
        }
        let missing = Architecture.imagenet.flatMap { architecture in
            architecture.flavors.map { "\(architecture.name) \($0.rawValue)" }
        }.filter { !published.contains($0) }
        #expect(missing.isEmpty, "no manifest for: \(missing.joined(separator: ", "))")
    }

    @Test("each manifest follows zoo/schema.json, decodes, names itself after its file and re-encodes to the same JSON, key for key",
          arguments: manifestFiles)
    func manifest(_ file: String) throws {
        let data = try Data(contentsOf: catalogFolder.appendingPathComponent(file))
        let json = try JSONValue.parse(data)
        let errors = try Self.validator().errors(json)
        #expect(errors.isEmpty, "\(file): \(errors.joined(separator: "; "))")
        let set = try Catalog.manifest(data, file: file)
        #expect(set.name + ".json" == file)
        let encoded = try JSONValue.parse(JSONEncoder().encode(set))
        guard case .object(let original) = json, case .object(let again) = encoded else {
            Issue.record("\(file): not a JSON object")
            return
        }
        #expect(Set(again.keys) == Set(original.keys), "\(file): keys differ")
        for key in original.keys.sorted() { #expect(again[key] == original[key], "\(file): \(key) re-encodes as \(again[key] ?? .null)") }
        #expect(try Catalog.weightSet(named: set.name) == set, "\(file): the built-in manifest differs from zoo/'s; run scripts/embed-catalog")
        #expect(try set.resolvedArchitecture().name == set.architecture)
        if let names = set.classNames { #expect(names.count == set.classes, "\(file): \(names.count) class names for \(set.classes ?? 0) classes") }
    }

    @Test("the built-in catalog is exactly zoo/'s manifests")
    func builtIn() {
        #expect(Catalog.weightSets.map { $0.name + ".json" } == Self.manifestFiles)
    }

    /// A published manifest with one field changed.
    func changed(_ change: (inout [String: Any]) -> Void) throws -> Data {
        let data = try Data(contentsOf: catalogFolder.appendingPathComponent("resnet50.tv_in1k.json"))
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        change(&object)
        return try JSONSerialization.data(withJSONObject: object)
    }

    @Test("a manifest that breaks the schema is caught by the validator, and one that does not decode throws naming its file")
    func brokenManifests() throws {
        let validator = try Self.validator()
        let breakages: [(String, (inout [String: Any]) -> Void, Bool)] = [
            // what, change, whether decoding alone catches it
            ("unknown format", { $0["format"] = "onnx" }, true),
            ("unknown preprocessing", { $0["preprocessing"] = "imagenet" }, true),
            ("unknown checksum algorithm", { $0["checksum"] = ["algorithm": "sha1", "value": "00"] }, true),
            ("unknown class list", { $0["class_list"] = "imagenet-21k" }, true),
            ("missing input size", { $0.removeValue(forKey: "input_size") }, true),
            ("missing license", { $0.removeValue(forKey: "license") }, false),
            ("an extra field", { $0["weights"] = "yes" }, false),
            ("a short checksum", { $0["checksum"] = ["algorithm": "sha256", "value": "abc"] }, false),
            ("an http URL", { $0["url"] = "http://example.invalid/resnet50-0676ba61.pth" }, false),
            ("torchvision with Keras preprocessing", { $0["preprocessing"] = "caffe" }, false),
            ("a top without its class list", { $0["class_list"] = NSNull() }, false),
        ]
        for (what, change, decodingCatches) in breakages {
            let data = try changed(change)
            #expect(!validator.errors(try JSONValue.parse(data)).isEmpty, "the validator passed a manifest with \(what)")
            if decodingCatches {
                let error = #expect(throws: CatalogError.self, "\(what)") { try Catalog.manifest(data, file: "broken.json") }
                guard case .invalidManifest(let file, _) = error else {
                    Issue.record("\(what): \(String(describing: error))")
                    continue
                }
                #expect(file == "broken.json")
            }
        }
        #expect(validator.errors(try JSONValue.parse(try changed { _ in })).isEmpty)
    }

    @Test("the validator refuses a schema keyword it does not implement")
    func unknownKeyword() throws {
        let validator = SchemaValidator(schema: try JSONValue.parse(Data(#"{"type": "object", "patternProperties": {}}"#.utf8)))
        #expect(validator.errors(.object([:])).contains { $0.contains("patternProperties") })
    }

    @Test("the ImageNet-1k class list: 1000 distinct names in torchvision's order")
    func imageNetClasses() throws {
        let names = ClassList.imagenet1k.names
        #expect(names.count == 1000 && Set(names).count == 1000)
        #expect(names.prefix(3) == ["tench", "goldfish", "great white shark"])
        #expect(names[281] == "tabby" && names[999] == "toilet tissue")
        #expect(names.allSatisfy { !$0.isEmpty && $0 == $0.trimmingCharacters(in: .whitespaces) })
        let file = try String(contentsOf: catalogFolder.appendingPathComponent("classes/imagenet-1k.txt"), encoding: .utf8)
        #expect(file.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init) == names)
    }

    @Test("a weight set whose architecture is not registered is an error naming both")
    func unregisteredArchitecture() throws {
        var set = try Catalog.weightSet(named: "resnet50.tv_in1k")
        set.architecture = "resnet19"
        let error = #expect(throws: CatalogError.self) { try set.resolvedArchitecture() }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("resnet50.tv_in1k") && message.contains("resnet19"), "\(message)")
    }
}

@Suite("Files built into the library")
struct BuiltInFileTests {
    @Test("the built-in files are exactly those of zoo/ that scripts/embed-catalog lists, byte for byte")
    func matchesFolder() throws {
        let expected = try catalogFilesToBuildIn(), builtIn = Catalog.builtInPaths
        let missing = expected.filter { !Set(builtIn).contains($0) }, extra = builtIn.filter { !Set(expected).contains($0) }
        #expect(missing.isEmpty && extra.isEmpty, "run scripts/embed-catalog; not built in: \(missing); built in but not in zoo/: \(extra)")
        for path in expected where Set(builtIn).contains(path) {
            #expect(Catalog.builtInContents(of: path) == (try Data(contentsOf: catalogFolder.appendingPathComponent(path))), "\(path)")
        }
    }

    @Test("the demo sample is written out once, whole, into the cache, and ZOO_CATALOG's folder is used as it is")
    func sample() throws {
        let cache = WeightCache(root: FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cache-\(UUID().uuidString)"))
        defer { try? FileManager.default.removeItem(at: cache.root) }
        #expect(Catalog.sampleNames == ["cifar15"])
        let folder = try Catalog.sampleFolder("cifar15", in: nil, cache: cache)
        #expect(folder.path.hasPrefix(cache.root.path))
        let source = catalogFolder.appendingPathComponent("samples/cifar15")
        let files = try #require(FileManager.default.enumerator(atPath: source.path)?.allObjects as? [String])
            .filter { $0.hasSuffix(".png") || $0.hasSuffix(".jpg") }
        #expect(files.count == 750)
        for file in files {
            #expect(FileManager.default.contents(atPath: folder.appendingPathComponent(file).path)
                    == FileManager.default.contents(atPath: source.appendingPathComponent(file).path), "\(file)")
        }
        // Nothing half-written is left beside it, and a second call finds it.
        let entries = try FileManager.default.contentsOfDirectory(atPath: folder.deletingLastPathComponent().path)
        #expect(entries == [folder.lastPathComponent])
        #expect(try Catalog.sampleFolder("cifar15", in: nil, cache: cache) == folder)
        #expect(try Catalog.sampleFolder("cifar15", in: catalogFolder, cache: cache) == source)
        #expect(throws: CatalogError.self) { try Catalog.sampleFolder("imagenette", in: nil, cache: cache) }
    }
}

/// The publishers' parameter counts against the models zoo builds for their weight sets.
@Suite("Published parameter counts")
struct PublishedCountTests {
    static let sets = Catalog.weightSets.filter { $0.includeTop && $0.parameters != nil && $0.publisher != "zoo" }

    @Test("a weight set's stated parameter count is the model's", arguments: sets)
    func parameters(_ set: WeightSet) throws {
        let architecture = try set.resolvedArchitecture()
        let model = try Initialization.skippingRandomness {
            try architecture.make(flavor: set.flavor, top: .classifier(classes: set.classes ?? 1000), inputSize: set.inputSize)
        }
        // torchvision's `num_params` counts parameters, not buffers, of the model its builder
        // returns: InceptionV3 with its auxiliary classifier, GoogLeNet without; Keras's counts
        // every weight.
        func count() -> Int {
            set.flavor == .torchvision ? model.trainableParameters.reduce(0) { $0 + $1.value.elementCount } : model.parameterCount
        }
        let whole = count()
        model.optionalParts.forEach(model.removeOptionalPart)
        #expect([whole, count()].contains(set.parameters), "\(set.name)")
    }
}
