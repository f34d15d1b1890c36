import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooModels

/// Every registered architecture in every flavour through the same checks, so a new family is
/// covered by adding it to the registry.
@Suite("Every registered architecture")
struct RegistryWideTests {
    static let cases: [(Architecture, Flavor)] = Architecture.allCases.flatMap { architecture in
        architecture.flavors.map { (architecture, $0) }
    }

    @Test("builds, lists every parameter in its layer list, round-trips its weights and runs at its smallest input", arguments: cases)
    func roundTrip(_ architecture: Architecture, _ flavor: Flavor) throws {
        let model = try architecture.make(flavor: flavor, top: .features(pooling: .average))
        // `--unfreeze` counts layers: every parameter must belong to a listed layer, exactly once.
        let listed = model.layers.compactMap(\.module)
        #expect(Set(listed.map(ObjectIdentifier.init)).count == listed.count, "\(architecture) \(flavor): a module listed twice")
        #expect(listed.reduce(0) { $0 + $1.parameterCount } == model.parameterCount, "\(architecture) \(flavor): parameters outside the layer list")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-roundtrip-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        try WeightExport.safetensors(model, to: file)
        let copy = try architecture.makeWithZeroWeights(flavor: flavor, top: .features(pooling: .average))
        #expect(try WeightImport.load(file, into: copy, strict: true).isComplete)

        let size = model.minimumInputSize
        let count = 2 * 3 * size * size
        let x = try Tensor(shape: [2, 3, size, size], values: (0..<count).map { Float(sin(0.37 * Double($0))) })
        let original = try model(x, .inference()), reloaded = try copy(x, .inference())
        #expect(original.shape == [2, model.featureChannels])
        #expect(try original.array() == reloaded.array(), "\(architecture) \(flavor)")
        #expect(try original.array().allSatisfy(\.isFinite))
    }
}
