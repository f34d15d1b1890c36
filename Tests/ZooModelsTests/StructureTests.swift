import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooModels

/// What real Keras and torchvision report about each architecture (`keras_layers.json`, written
/// by `converters/make_model_references.py`).
struct FrameworkFacts: Decodable {
    /// One model's facts; the Keras ones are absent for a model Keras does not publish.
    struct Model: Decodable {
        var layerCount: Int?
        var modelLayers: [String]?
        var h5LayerNames: [String]?
        var parameterCounts: [String: Counts]

        enum CodingKeys: String, CodingKey {
            case layerCount = "layer_count", modelLayers = "model_layers", h5LayerNames = "h5_layer_names", parameterCounts = "parameter_counts"
        }
    }

    struct Counts: Decodable {
        var total: Int?
        var trainable: Int?
        var parameters: Int?
        var stateDictFloats: Int?

        enum CodingKeys: String, CodingKey {
            case total, trainable, parameters, stateDictFloats = "state_dict_floats"
        }
    }

    var models: [String: Model]

    static let shared: FrameworkFacts = {
        let url = References.folder.appendingPathComponent("keras_layers.json")
        return try! JSONDecoder().decode(FrameworkFacts.self, from: Data(contentsOf: url))
    }()
}

/// A base with the head Keras users put on for transfer learning: GAP, Dropout(0.5), Dense(100).
func baseWithHead(_ architecture: Architecture, _ flavor: Flavor) throws -> ImageModel {
    let model = try architecture.makeWithZeroWeights(flavor: flavor, top: .features(pooling: nil))
    model.head = ClassificationHead([
        .init(.globalPool(.average), name: "global_average_pooling2d"), .init(.dropout(0.5), name: "dropout"),
        .init(.dense(units: 100, activation: nil), name: "dense", key: "head.dense"),
    ], inputFeatures: model.featureChannels)
    return model
}

extension Architecture {
    /// The model with every weight zero: for checks of structure, and for models whose weights
    /// are loaded next (drawing hundreds of millions of random values would dominate the tests).
    func makeWithZeroWeights(flavor: Flavor, top: Top = .imagenet, inputSize: Int? = nil) throws -> ImageModel {
        try Initialization.skippingRandomness { try make(flavor: flavor, top: top, inputSize: inputSize) }
    }
}

@Suite("Model structure")
struct StructureTests {
    /// The ImageNet architectures with a Keras flavour.
    static let kerasArchitectures = Architecture.imagenet.filter { $0.flavors.contains(.keras) }

    @Test("the keras flavour's layer list is Keras's model.layers and the layer_names of a file Keras wrote",
          arguments: kerasArchitectures)
    func kerasLayerList(_ architecture: Architecture) throws {
        let facts = try #require(FrameworkFacts.shared.models[architecture.name])
        for flavor in architecture.flavors {
            let names = try architecture.makeWithZeroWeights(flavor: flavor, top: .features(pooling: nil)).layers.map(\.name)
            #expect(names.count == facts.layerCount)
            #expect(names == facts.modelLayers, "\(architecture) \(flavor)")
            #expect(names == facts.h5LayerNames)
        }
    }

    @Test("parameter counts equal Keras's and torchvision's", arguments: Architecture.imagenet)
    func parameterCounts(_ architecture: Architecture) throws {
        let counts = try #require(FrameworkFacts.shared.models[architecture.name]?.parameterCounts)
        if architecture.flavors.contains(.keras) {
            // Keras: base at 96x96 without top, plus GAP, Dropout(0.5), Dense(100).
            let headed = try baseWithHead(architecture, .keras)
            #expect(headed.parameterCount == counts["notop96_gap_dropout_dense100"]?.total)
            #expect(headed.trainableParameters.reduce(0) { $0 + $1.value.elementCount } == counts["notop96_gap_dropout_dense100"]?.trainable)
            // Keras full top.
            let kerasTop = try #require(counts["keras_top_224"] ?? counts["keras_top_299"])
            #expect(try architecture.makeWithZeroWeights(flavor: .keras).parameterCount == kerasTop.total)
        }
        guard architecture.flavors.contains(.torchvision) else { return }
        // torchvision full top (learned parameters, and with running statistics).
        let torchvision = try architecture.makeWithZeroWeights(flavor: .torchvision)
        #expect(torchvision.trainableParameters.reduce(0) { $0 + $1.value.elementCount } == counts["torchvision_top"]?.parameters)
        #expect(torchvision.parameterCount == counts["torchvision_top"]?.stateDictFloats)
    }

    @Test("freezing the bottom of DenseNet201's layer list leaves Keras's trainable counts")
    func unfreezeFractions() throws {
        // Keras: freeze base.layers[:n - ceil(n * p)]; the head stays trainable.
        for (fraction, expected) in [(0.0, 192_100), (0.1, 2_831_140), (0.2, 5_056_740)] {
            let model = try baseWithHead(.densenet201, .keras)
            let layers = model.baseLayers
            let trainableCount = Int((Double(layers.count) * fraction).rounded(.up))
            for layer in layers.prefix(layers.count - trainableCount) { layer.module?.freeze() }
            #expect(model.trainableParameters.reduce(0) { $0 + $1.value.elementCount } == expected, "unfreeze \(fraction)")
        }
    }

    @Test("every listed layer's output is tapped exactly once, and nothing else is", arguments: Architecture.imagenet)
    func tapsMatchTheList(_ architecture: Architecture) throws {
        for flavor in architecture.flavors {
            let model = try architecture.makeWithZeroWeights(flavor: flavor, top: .imagenet, inputSize: 32)
            var seen: [String] = []
            let context = ForwardContext.inference()
            context.observer = { name, _ in seen.append(name) }
            let size = model.minimumInputSize
            _ = try model(Tensor.zeros([1, 3, size, size]), context)
            #expect(seen.sorted() == model.layers.map(\.name).sorted(), "\(architecture) \(flavor)")
        }
    }

    @Test("an input below the architecture's minimum is a clear error")
    func minimumSize() throws {
        let model = try Architecture.inceptionv3.make(flavor: .keras, top: .features(pooling: .average))
        #expect(throws: ModelError.inputTooSmall(model: "inceptionv3", height: 64, width: 64, minimum: 75)) {
            try model(Tensor.zeros([1, 3, 64, 64]), .inference())
        }
        #expect(ModelError.inputTooSmall(model: "inceptionv3", height: 64, width: 64, minimum: 75).description
            == "inceptionv3: input 64x64 is below the architecture's minimum of 75x75")
        #expect(throws: ModelError.self) { try model(Tensor.zeros([1, 1, 96, 96]), .inference()) }
    }

    @Test("the summary counts multiply-adds: VGG16's convolutions at 224x224 and a dense layer")
    func multiplyAdds() throws {
        let model = try Architecture.vgg16.make(flavor: .keras, top: .features(pooling: nil))
        // Sum over the 13 convolutions of in x out x 9 x output positions.
        #expect(try ModelSummary(model, inputSize: 224).multiplyAdds == 15_346_630_656)
        model.head = try HeadSpecification(parsing: "gap,dense", classes: 100).head(inputFeatures: model.featureChannels)
        #expect(try ModelSummary(model, inputSize: 32).multiplyAdds == 15_346_630_656 / 49 + 512 * 100)
    }

    @Test("cifar-airbench has its PyTorch definition's 1,971,650 parameters and 118 million multiply-adds at 32x32, its maps 31, 15, 7 and 3 wide")
    func airbench() throws {
        let model = try Architecture.cifarAirbench.make(flavor: .torchvision, top: .classifier(classes: 10))
        let summary = try ModelSummary(model, inputSize: 32)
        #expect(summary.trainable == 1_971_650)
        // Stem 31x31x24x3x4, then per group conv1 at the input size and conv2 after the pool, and the classifier.
        let expected = 31 * 31 * 24 * 12 + 31 * 31 * 64 * 24 * 9 + 15 * 15 * 64 * 64 * 9 + 15 * 15 * 256 * 64 * 9
            + 7 * 7 * 256 * 256 * 9 + 7 * 7 * 256 * 256 * 9 + 3 * 3 * 256 * 256 * 9 + 256 * 10
        #expect(summary.multiplyAdds == expected && expected == 118_147_360)
        let widths = summary.layers.filter { $0.name.hasSuffix("_gelu2") || $0.name == "stem_gelu" }.map { $0.outputShape[1] }
        #expect(widths == [31, 15, 7, 3], "\(summary.layers.map { "\($0.name) \($0.outputShape)" })")
    }

    @Test("model names are accepted with underscores and in any case")
    func names() throws {
        #expect(try Architecture(named: "inception_v3") == .inceptionv3)
        #expect(try Architecture(named: "cifar-resnet20") == .cifarResNet(.init(depth: 20)))
        #expect(try Architecture(named: "cifar_preresnet56") == .cifarResNet(.init(depth: 56, shortcut: .b, preactivation: true)))
        #expect(try Architecture(named: "MobileNet_V2") == .mobilenetv2)
        #expect(try Architecture(named: "mobilenet_v3_small") == .mobilenetv3small)
        #expect(try Architecture(named: "Wide_ResNet50_2") == .wideResNet50_2)
        #expect(try Architecture(named: "vgg16bn") == .vgg16BatchNorm)
        #expect(throws: ModelError.self) { try Architecture(named: "resnet19") }
    }
}
