import Testing
import ZooModels
import ZooTraining

@Suite("Freezing")
struct FreezePlanTests {
    /// DenseNet201 at 96x96 with GAP, Dropout(0.5) and Dense(100), as Keras users build it.
    func model(_ flavor: Flavor) throws -> ImageModel {
        let model = try Architecture.densenet201.make(flavor: flavor, top: .features(pooling: nil))
        model.head = HeadSpecification.standard(classes: 100).head(inputFeatures: model.featureChannels)
        return model
    }

    func trainableCount(_ model: ImageModel) -> Int { model.trainableParameters.reduce(0) { $0 + $1.value.elementCount } }

    @Test("unfreezing 0, 10% and 20% of DenseNet201 trains exactly what Keras trains", arguments: Flavor.allCases)
    func kerasCounts(_ flavor: Flavor) throws {
        let model = try model(flavor)
        for (plan, layers, expected) in [(FreezePlan.headOnly, 0, 192_100), (.fraction(0.1), 71, 2_831_140), (.fraction(0.2), 142, 5_056_740)] {
            let (trainable, frozen) = try plan.apply(to: model)
            #expect(trainable == layers && frozen == 707 - layers)
            #expect(trainableCount(model) == expected, "\(plan) \(flavor)")
        }
        try FreezePlan.all.apply(to: model)
        #expect(trainableCount(model) == 18_285_028)
    }

    @Test("plans parse from the command line's spellings; counts and layer names work too")
    func parsing() throws {
        #expect(try FreezePlan(parsing: "20%") == .fraction(0.2))
        #expect(try FreezePlan(parsing: "12") == .layers(12))
        #expect(try FreezePlan(parsing: "all") == .all)
        #expect(try FreezePlan(parsing: "none") == .headOnly)
        #expect(throws: TrainingError.invalidFreezePlan("twenty")) { try FreezePlan(parsing: "twenty") }
        let model = try model(.keras)
        let fromLayer = try FreezePlan.from("conv5_block32_concat").apply(to: model)
        #expect(fromLayer.trainableLayers == 3)
        #expect(throws: TrainingError.unknownLayer("nonsense")) { try FreezePlan.from("nonsense").apply(to: model) }
    }
}
