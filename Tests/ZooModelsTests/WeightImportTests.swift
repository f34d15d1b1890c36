import Foundation
import Testing
import ZooTensor
import ZooWeights
import ZooModels

/// A listing-backed file whose tensor names are rewritten, to imitate checkpoints from elsewhere.
final class RenamedWeights: WeightReader, @unchecked Sendable {
    let base: FormulaWeights
    let rename: (String) -> String
    let url: URL
    let tensors: [TensorInfo]
    let metadata: WeightMetadata
    private let original: [String: String]

    /// `metadata` replaces the base's (a Keras file's `layer_names` in the other spelling).
    init(_ base: FormulaWeights, metadata: WeightMetadata? = nil, rename: @escaping (String) -> String) {
        self.base = base
        self.rename = rename
        self.metadata = metadata ?? base.metadata
        url = base.url
        tensors = base.tensors.map { TensorInfo(name: rename($0.name), dtype: $0.dtype, shape: $0.shape) }
        original = Dictionary(base.tensors.map { (rename($0.name), $0.name) }, uniquingKeysWith: { first, _ in first })
    }

    var format: WeightFormat { base.format }
    func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }
    func floats(_ name: String) throws -> [Float] { try base.floats(try #require(original[name])) }
}

@Suite("Weight import")
struct WeightImportTests {
    func densenet() throws -> FormulaWeights { FormulaWeights(try References.listing("densenet121", "torchvision")) }

    /// The old torchvision spelling: `denselayer1.norm1.weight` was `denselayer1.norm.1.weight`.
    static func oldDenseNetName(_ name: String) -> String {
        name.replacingOccurrences(of: #"(denselayer\d+\.(norm|relu|conv))([12])\."#, with: "$1.$3.", options: .regularExpression)
    }

    @Test("old DenseNet keys and a DataParallel prefix load like modern keys")
    func torchvisionSpellings() throws {
        let reference = DenseNet(.densenet121, flavor: .torchvision)
        try WeightImport.load(try densenet(), into: reference)
        let renamed = RenamedWeights(try densenet()) { "module." + Self.oldDenseNetName($0) }
        #expect(renamed.tensors.contains { $0.name == "module.features.denseblock1.denselayer1.norm.1.weight" })
        let model = DenseNet(.densenet121, flavor: .torchvision)
        let report = try WeightImport.load(renamed, into: model)
        #expect(report.isComplete)
        #expect(report.ignored.allSatisfy { $0.hasSuffix("num_batches_tracked") })
        for (ours, theirs) in zip(model.namedParameters(), reference.namedParameters()).prefix(40) {
            #expect(try ours.parameter.value.array() == theirs.parameter.value.array(), "\(ours.name)")
        }
    }

    @Test("user renaming rules map foreign names")
    func renameRules() throws {
        let renamed = RenamedWeights(try densenet()) { "backbone." + $0.replacingOccurrences(of: "features.", with: "body.") }
        let model = DenseNet(.densenet121, flavor: .torchvision)
        #expect(throws: ModelError.self) { try WeightImport.load(renamed, into: model) }
        let rules = [RenameRule(pattern: #"^backbone\."#, replacement: ""), RenameRule(pattern: #"^body\."#, replacement: "features.")]
        #expect(try WeightImport.load(renamed, into: model, rules: rules).isComplete)
    }

    @Test("a classifier for other classes fails strict loading, naming the tensor and both shapes, and is skipped otherwise")
    func mismatchedHead() throws {
        let model = DenseNet(.densenet121, flavor: .torchvision, top: .classifier(classes: 10))
        do {
            try WeightImport.load(try densenet(), into: model)
            Issue.record("a 1000-class classifier loaded into a 10-class model")
        } catch {
            #expect("\(error)".contains("classifier.weight [1000, 1024] -> classifier.weight expects [10, 1024]"))
        }
        let before = try model.head!.denseLayers[0].weight.value.array()
        let report = try WeightImport.load(try densenet(), into: model, strict: false)
        #expect(report.mismatched.map(\.target) == ["classifier.weight", "classifier.bias"])
        #expect(report.missing.isEmpty && report.unexpected.isEmpty)
        #expect(try model.head!.denseLayers[0].weight.value.array() == before)
    }

    @Test("a file without a classifier gives the base; with one, its class count")
    func topFollowsTheFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-top-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let headless = folder.appendingPathComponent("base.safetensors"), headed = folder.appendingPathComponent("top.safetensors")
        try WeightExport.safetensors(MobileNetV2(flavor: .torchvision, top: .features(pooling: nil)), to: headless)
        try WeightExport.safetensors(MobileNetV2(flavor: .torchvision, top: .classifier(classes: 5)), to: headed)
        let base = try Architecture.mobilenetv2.load(flavor: .torchvision, weights: headless)
        #expect(base.model.head == nil)
        let top = try Architecture.mobilenetv2.load(flavor: .torchvision, weights: headed)
        #expect(top.model.head?.outputFeatures == 5)
        #expect(top.report.isComplete)
    }

    /// `keras2_names.json` (from `converters/make_keras2_names.py`): what tf_keras's
    /// `save_weights` file of each model holds, each tensor paired with its Keras 3 name.
    struct Keras2Names: Decodable {
        struct Model: Decodable {
            var layer_names: [String]
            var tensors: [Entry]
        }
        struct Entry: Decodable {
            var name: String
            var keras3: String
        }
        var models: [String: Model]
    }

    @Test("Keras 2's MobileNetV3 files (Conv/BatchNorm, Logits) load by name, with Keras 3's logits",
          arguments: ["mobilenetv3small", "mobilenetv3large", "mobilenetv3small_minimalistic",
                      "mobilenetv3large_minimalistic", "mobilenetv3small_a075", "mobilenetv3large_a075"])
    func keras2Names(_ name: String) throws {
        let names = try JSONDecoder().decode(Keras2Names.self, from: Data(contentsOf: References.folder.appendingPathComponent("keras2_names.json")))
        let file = try #require(names.models[name])
        let listing = try References.listing(name, "keras")
        let keras2 = Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.keras3, $0.name) })
        #expect(Set(listing.tensors.map(\.name)) == Set(keras2.keys))
        #expect(file.tensors.contains { $0.name.contains("/BatchNorm/") }, "\(name): the file should hold Keras 2 names")
        let weights = RenamedWeights(FormulaWeights(listing), metadata: WeightMetadata(kerasLayerNames: file.layer_names)) { keras2[$0] ?? $0 }
        let model = try Architecture(named: name).makeWithZeroWeights(flavor: .keras, top: .imagenet, inputSize: listing.inputSize)
        let report = try WeightImport.load(weights, into: model, strict: true)
        #expect(report.isComplete && report.unexpected.isEmpty, "\(report)")
        let input = try References.array(listing.input)
        let logits = try model(Tensor(nhwc: input.values, shape: input.shape), .inference())
        expectClose(try logits.array(), try References.array(listing.logits).values, "\(name) logits from Keras 2 names")
    }

    @Test("Keras weights map layer by layer into PyTorch layouts")
    func kerasLayouts() throws {
        // HWIO -> OIHW: element (h, w, i, o) lands at (o, i, h, w).
        let kernel = (0..<(2 * 3 * 4 * 5)).map(Float.init)
        let moved = LayoutTransform.kerasConvolution.apply(kernel, from: [2, 3, 4, 5])
        let oihw: Int = ((4 * 4 + 3) * 2 + 1) * 3 + 2, hwio: Int = ((1 * 3 + 2) * 4 + 3) * 5 + 4
        #expect(moved[oihw] == kernel[hwio])
        // A flatten of [2, 2, 3] channels-last feeding a dense layer: Keras row (h, w, c) is zoo column (c, h, w).
        let dense = (0..<(12 * 2)).map(Float.init)
        let permuted = LayoutTransform.kerasDenseAfterFlatten(height: 2, width: 2, channels: 3).apply(dense, from: [12, 2])
        let zooIndex: Int = 1 * 12 + (2 * 2 + 1) * 2 + 0, kerasIndex: Int = ((1 * 2 + 0) * 3 + 2) * 2 + 1
        #expect(permuted[zooIndex] == dense[kerasIndex])
    }
}
