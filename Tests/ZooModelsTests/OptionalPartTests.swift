import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooWeights
import ZooModels

/// A listing-backed file without some of its tensors, as a checkpoint saved without a part is.
final class WeightsWithout: WeightReader, @unchecked Sendable {
    let base: FormulaWeights
    let tensors: [TensorInfo]

    init(_ base: FormulaWeights, droppingPrefix prefix: String) {
        self.base = base
        tensors = base.tensors.filter { !$0.name.hasPrefix(prefix) }
    }

    var url: URL { base.url }
    var format: WeightFormat { base.format }
    var metadata: WeightMetadata { base.metadata }
    func info(_ name: String) -> TensorInfo? { tensors.first { $0.name == name } }
    func floats(_ name: String) throws -> [Float] { try base.floats(name) }
}

@Suite("Optional parts of a model")
struct OptionalPartTests {
    @Test("a torchvision InceptionV3 state dict without AuxLogits loads and removes the part; one with it loads it")
    func inceptionAuxiliaryClassifier() throws {
        let full = FormulaWeights(try References.listing("inceptionv3", "torchvision"))
        #expect(full.tensors.contains { $0.name.hasPrefix("AuxLogits.") })

        let withAux = try Initialization.skippingRandomness { try Architecture.inceptionv3.make(flavor: .torchvision) }
        let complete = try WeightImport.load(full, into: withAux)
        #expect(complete.isComplete && complete.removedParts.isEmpty)
        #expect((withAux as? InceptionV3)?.auxLogits != nil)

        let withoutAux = try Initialization.skippingRandomness { try Architecture.inceptionv3.make(flavor: .torchvision) }
        let report = try WeightImport.load(WeightsWithout(full, droppingPrefix: "AuxLogits."), into: withoutAux)
        #expect(report.isComplete)
        #expect(report.removedParts == ["AuxLogits"])
        #expect((withoutAux as? InceptionV3)?.auxLogits == nil)
        #expect(!withoutAux.namedParameters().contains { $0.name.hasPrefix("AuxLogits.") })
        #expect(report.description.contains("not in the file, removed from the model: AuxLogits (optional)"))

        // The rest of the model is the same either way.
        let input = try Tensor(nhwc: (0..<(75 * 75 * 3)).map { Float($0 % 17) / 17 }, shape: [1, 75, 75, 3])
        #expect(try withAux(input, .inference()).array() == withoutAux(input, .inference()).array())

        // Another required part missing still fails strict loading.
        let broken = try Initialization.skippingRandomness { try Architecture.inceptionv3.make(flavor: .torchvision) }
        #expect(throws: ModelError.self) { try WeightImport.load(WeightsWithout(full, droppingPrefix: "Mixed_7c."), into: broken) }
    }
}
