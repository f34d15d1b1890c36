import Foundation
import Testing
import ZooTestSupport
import ZooTensor
import ZooNN
import ZooWeights
import ZooModels

/// The reference files written by `converters/make_model_references.py` with the real Keras
/// and torchvision.
enum References {
    static let folder = Bundle.module.resourceURL!.appendingPathComponent("References")

    /// One model's listing: every tensor of its weight file with the role that picks its formula.
    struct Listing: Decodable {
        var model: String
        var flavor: String
        var inputSize: Int
        var input: String
        var logits: String
        var features: String?
        /// The auxiliary classifiers' logits files, by torchvision module name (`aux1`, `AuxLogits`).
        var auxiliaryLogits: [String: String]?
        var tensors: [Entry]

        struct Entry: Decodable {
            var name: String
            var shape: [Int]
            var role: String
            var fanIn: Int?

            enum CodingKeys: String, CodingKey {
                case name, shape, role
                case fanIn = "fan_in"
            }
        }

        enum CodingKeys: String, CodingKey {
            case model, flavor, input, logits, features, tensors
            case inputSize = "input_size", auxiliaryLogits = "auxiliary_logits"
        }
    }

    static func listing(_ model: String, _ flavor: String) throws -> Listing {
        try JSONDecoder().decode(Listing.self, from: Data(contentsOf: folder.appendingPathComponent("\(model)_\(flavor).json")))
    }

    /// A `.npy` array's values and shape.
    static func array(_ file: String) throws -> (values: [Float], shape: [Int]) {
        let reader = try WeightFiles.open(folder.appendingPathComponent(file))
        let tensor = try #require(reader.tensors.first)
        return (try reader.floats(tensor.name), tensor.shape)
    }
}

/// A weight file that exists only as a listing: tensors named as the framework names them,
/// values from the parity formula. It goes through the same import path as a real file.
final class FormulaWeights: WeightReader, @unchecked Sendable {
    let url: URL
    let format: WeightFormat
    let metadata: WeightMetadata
    let tensors: [TensorInfo]
    private let entries: [String: References.Listing.Entry]

    init(_ listing: References.Listing) {
        url = References.folder.appendingPathComponent("\(listing.model)_\(listing.flavor).json")
        let keras = listing.flavor == "keras"
        format = keras ? .kerasH5 : .torchZip
        let files = listing.tensors.filter { $0.role != "counter" }
        var layers: [String] = []
        for entry in files {
            let layer = String(entry.name.split(separator: "/").first ?? "")
            if keras, layers.last != layer { layers.append(layer) }
        }
        metadata = WeightMetadata(kerasLayerNames: keras ? layers : nil)
        tensors = listing.tensors.map { TensorInfo(name: $0.name, dtype: $0.role == "counter" ? .i64 : .f32, shape: $0.shape) }
        entries = Dictionary(listing.tensors.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }

    func floats(_ name: String) throws -> [Float] {
        let entry = try #require(entries[name])
        return ParityFormula.values(name: name, count: entry.shape.reduce(1, *), role: entry.role, fanIn: entry.fanIn)
    }
}

@Suite("Parity with Keras and torchvision")
struct ParityTests {
    @Test("the formula matches the converter's worked values")
    func formulaVectors() throws {
        struct Vectors: Decodable {
            struct Case: Decodable {
                var name: String
                var role: String
                var fan_in: Int?
                var values: [Value]
            }
            struct Value: Decodable {
                var index: Int
                var value_bits: String
            }
            var cases: [Case]
        }
        let vectors = try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: References.folder.appendingPathComponent("formula_vectors.json")))
        for test in vectors.cases {
            let largest = test.values.map(\.index).max() ?? 0
            let values = ParityFormula.values(name: test.name, count: largest + 1, role: test.role, fanIn: test.fan_in)
            for expected in test.values {
                #expect(String(values[expected.index].bitPattern, radix: 16) == String(expected.value_bits.dropFirst(2)),
                        "\(test.name)[\(expected.index)]")
            }
        }
    }

    /// Every ImageNet architecture in every flavour it is built in: each needs its references.
    static let cases: [(String, Flavor)] = Architecture.imagenet.flatMap { architecture in
        architecture.flavors.map { (architecture.name, $0) }
    }

    @Test("logits and pooled features match the framework's", arguments: cases)
    func parity(_ name: String, _ flavor: Flavor) throws {
        let listing = try References.listing(name, flavor.rawValue)
        let model = try Architecture(named: name).makeWithZeroWeights(flavor: flavor, top: .imagenet, inputSize: listing.inputSize)
        let report = try WeightImport.load(FormulaWeights(listing), into: model, strict: true)
        #expect(report.isComplete)
        let input = try References.array(listing.input)
        let x = try Tensor(nhwc: input.values, shape: input.shape)
        let context = ForwardContext.inference()
        let logits = try model(x, context)
        let expectedLogits = try References.array(listing.logits)
        #expect(logits.shape == expectedLogits.shape)
        expectClose(try logits.array(), expectedLogits.values, "\(name) \(flavor) logits")
        let features = try globalAvgPool2d(model.features(x, .inference()))
        expectClose(try features.array(), try References.array(try #require(listing.features)).values, "\(name) \(flavor) features")
    }

    @Test("auxiliary classifiers match torchvision's", arguments: ["googlenet"])
    func auxiliaryClassifiers(_ name: String) throws {
        let listing = try References.listing(name, "torchvision")
        let files = try #require(listing.auxiliaryLogits)
        let model = try Architecture(named: name).makeWithZeroWeights(flavor: .torchvision)
        #expect(try WeightImport.load(FormulaWeights(listing), into: model, strict: true).isComplete)
        let input = try References.array(listing.input)
        let x = try Tensor(nhwc: input.values, shape: input.shape)
        var outputs: [String: Tensor] = [:]
        switch model {
        case let googlenet as GoogLeNet:
            let logits = try #require(try googlenet.auxiliaryLogits(x, .inference()))
            outputs = ["aux1": logits.aux1, "aux2": logits.aux2]
        default:
            Issue.record("\(name) has no auxiliary classifiers")
        }
        #expect(Set(outputs.keys) == Set(files.keys))
        for (classifier, file) in files {
            expectClose(try #require(outputs[classifier]).array(), try References.array(file).values, "\(name) \(classifier)")
        }
    }

    @Test("CIFAR ResNets and cifar-airbench agree with their PyTorch definition",
          arguments: ["cifar-resnet20", "cifar-resnet20b", "cifar-preresnet20", "cifar-airbench"])
    func cifarParity(_ name: String) throws {
        let listing = try JSONDecoder().decode(References.Listing.self,
                                               from: Data(contentsOf: References.folder.appendingPathComponent("cifar/\(name).json")))
        let model = try Architecture(named: name).make(flavor: .torchvision, top: .classifier(classes: 10))
        #expect(try WeightImport.load(FormulaWeights(listing), into: model).isComplete)
        let input = try References.array(listing.input)
        let logits = try model(Tensor(nhwc: input.values, shape: input.shape), .inference())
        expectClose(try logits.array(), try References.array(listing.logits).values, "\(name) logits")
    }

    @Test("a CIFAR ResNet checkpoint from another project loads: DataParallel prefix, wrapped state dict, classifier named fc")
    func cifarCheckpoint() throws {
        let model = try CIFARResNet(.init(depth: 8))
        let file = References.folder.appendingPathComponent("cifar/cifar_resnet8_checkpoint.pth")
        let report = try WeightImport.load(file, into: model)
        #expect(report.isComplete)
        let input = try References.array("input_32.npy")
        let logits = try model(Tensor(nhwc: input.values, shape: input.shape), .inference())
        expectClose(try logits.array(), try References.array("cifar/cifar_resnet8_checkpoint_logits.npy").values, "checkpoint logits")
    }
}

/// Agreement within `tolerance` times the expected values' largest magnitude (or `minimumScale`,
/// when that is larger).
func expectClose(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-4, minimumScale: Float = 0, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
    let scale = max(expected.map(abs).max() ?? 1, minimumScale)
    let worst = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance * scale, "\(what): largest difference \(worst) against scale \(scale)", sourceLocation: sourceLocation)
}
