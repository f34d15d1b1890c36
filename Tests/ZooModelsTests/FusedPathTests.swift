import Testing
import ZooTensor
import ZooNN
import ZooModels

/// Models run fused forms when nobody watches their inner layers (batch norms folded into
/// convolutions, activations as post-ops, DenseNet's recomputing layers in training) and the
/// layer-by-layer form otherwise. Both must give the same numbers.
@Suite("Fused and layer-by-layer paths")
struct FusedPathTests {
    /// Gives every batch norm statistics and an affine transform far from the identity, so that
    /// folding them is not trivially right.
    func randomizeNormalization(_ model: ImageModel, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        for (name, parameter) in model.namedParameters() {
            let isStatistic = name.hasSuffix("running_var") || name.hasSuffix("running_mean")
            guard isStatistic || (parameter.shape.count == 1 && !name.hasPrefix("fc") && !name.hasPrefix("classifier")
                                  && !name.hasPrefix("predictions")) else { continue }
            let range: ClosedRange<Float> = name.hasSuffix("running_var") ? 0.5...2 : (name.hasSuffix("weight") ? 0.5...1.5 : -0.5...0.5)
            let values = (0..<parameter.value.elementCount).map { _ in
                range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextUnitFloat()
            }
            parameter.value = try Tensor(shape: parameter.shape, values: values)
        }
    }

    func images(_ count: Int, size: Int, seed: UInt64) throws -> Tensor {
        var generator = SeededGenerator(seed: seed)
        return try Tensor(nhwc: (0..<(count * size * size * 3)).map { _ in generator.nextUnitFloat() * 2 - 1 },
                          shape: [count, size, size, 3])
    }

    /// A context that watches every layer, which keeps every layer separate.
    func layerByLayer(training: Bool, tape: GradientTape? = nil) -> ForwardContext {
        let context = ForwardContext(training: training, tape: tape)
        context.observer = { _, _ in }
        return context
    }

    @Test("inference gives the same output fused and layer by layer",
          arguments: [("resnet50", Flavor.keras), ("mobilenetv2", .keras), ("mobilenetv2", .torchvision), ("densenet121", .torchvision),
                      ("inceptionv3", .keras), ("xception", .keras), ("resnet50v2", .keras), ("mobilenet", .keras), ("vgg16", .torchvision), ("cifar-resnet20", .torchvision), ("cifar-resnet20b", .torchvision),
                      ("cifar-preresnet110", .torchvision), ("cifar-airbench", .torchvision),
                      ("inceptionresnetv2", .keras)])
    func inference(name: String, flavor: Flavor) throws {
        let model = try Architecture(named: name).make(flavor: flavor, top: .features(pooling: .average))
        try randomizeNormalization(model, seed: 3)
        let x = try images(2, size: max(model.minimumInputSize, 32), seed: 5)
        let fused = try model(x, .inference()).array()
        let separate = try model(x, layerByLayer(training: false)).array()
        expectClose(fused, separate, tolerance: 1e-4, minimumScale: 1e-3, "\(name) features")
    }

    /// One training step's loss, parameter gradients and running statistics; the layers named in
    /// `watching` are captured, which keeps them separate.
    func trainingStep(_ model: ImageModel, _ x: Tensor, watching: Set<String>) throws -> (loss: Float, state: [String: [Float]]) {
        model.namedParameters().forEach { $0.parameter.zeroGradient() }
        let tape = GradientTape()
        let context = ForwardContext(training: true, tape: tape)
        context.capturing = watching
        let loss = try softmaxCrossEntropy(logits: model(x, context), labels: [1, 7, 3, 0])
        try tape.backward(loss)
        var state: [String: [Float]] = [:]
        for (name, parameter) in model.namedParameters() {
            if let gradient = parameter.gradient { state["grad " + name] = try gradient.array() }
            if !parameter.isTrainable { state[name] = try parameter.value.array() }
        }
        return (try loss.scalar(), state)
    }

    @Test("DenseNet's memory-efficient training step equals the layer-by-layer one, with the bottom frozen or not",
          arguments: [0, 40])
    func denseNetTraining(frozenLayers: Int) throws {
        let model = try Architecture.densenet121.make(flavor: .torchvision, top: .classifier(classes: 10))
        try randomizeNormalization(model, seed: 11)
        model.stages.prefix(frozenLayers).forEach { $0.modules.forEach { $0.freeze() } }
        let initial = model.parameters.map(\.value)
        let x = try images(4, size: 64, seed: 13)
        let fused = try trainingStep(model, x, watching: [])
        zip(model.parameters, initial).forEach { $0.value = $1 }
        // Watching each dense layer's first batch norm sends the layer down the layer-by-layer path
        // and leaves the rest as it was, so the frozen part computes the same bits both times.
        let separate = try trainingStep(model, x, watching: Set(model.layers.map(\.name).filter { $0.hasSuffix("_0_bn") }))
        #expect(abs(fused.loss - separate.loss) <= 1e-4 * (1 + abs(separate.loss)))
        #expect(Set(fused.state.keys) == Set(separate.state.keys))
        #expect(fused.state.keys.contains { $0.hasPrefix("grad features.denseblock1") } == (frozenLayers == 0))
        for (name, values) in separate.state {
            expectClose(fused.state[name] ?? [], values, tolerance: 1e-3, minimumScale: 1e-3, name + " (frozen \(frozenLayers))")
        }
    }

    @Test("a training step of cifar-airbench (GELU and scale-free batch norms in fused convolutions) equals the layer-by-layer one")
    func airbenchTraining() throws {
        let model = try Architecture.cifarAirbench.make(flavor: .torchvision, top: .classifier(classes: 10))
        try randomizeNormalization(model, seed: 7)
        let initial = model.parameters.map(\.value)
        let x = try images(4, size: 32, seed: 9)
        let fused = try trainingStep(model, x, watching: [])
        zip(model.parameters, initial).forEach { $0.value = $1 }
        let separate = try trainingStep(model, x, watching: Set(model.layers.map(\.name)))
        #expect(abs(fused.loss - separate.loss) <= 1e-4 * (1 + abs(separate.loss)))
        #expect(Set(fused.state.keys) == Set(separate.state.keys))
        for (name, values) in separate.state {
            expectClose(fused.state[name] ?? [], values, tolerance: 1e-3, minimumScale: 1e-3, name)
        }
    }

    @Test("DenseNet's training forward keeps less than 60% of what the layer-by-layer one keeps for backward")
    func denseNetMemory() throws {
        let model = try Architecture.densenet121.make(flavor: .torchvision, top: .classifier(classes: 10))
        let x = try images(4, size: 64, seed: 17)
        func retainedBytes(fused: Bool) throws -> Int {
            let meter = MemoryMeter()
            let tape = GradientTape()
            return try Memory.metering(meter) {
                let context = fused ? ForwardContext(training: true, tape: tape) : layerByLayer(training: true, tape: tape)
                let logits = try model(x, context)
                return withExtendedLifetime((tape, logits)) { meter.liveBytes }
            }
        }
        // The first passes make the weights' reordered copies, which later passes share.
        _ = (try retainedBytes(fused: true), try retainedBytes(fused: false))
        let (fused, separate) = (try retainedBytes(fused: true), try retainedBytes(fused: false))
        #expect(fused * 5 < separate * 3, "kept \(fused >> 10) KiB for backward, layer by layer \(separate >> 10) KiB")
    }
}


