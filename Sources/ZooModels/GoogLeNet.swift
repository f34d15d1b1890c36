import ZooTensor
import ZooNN

/// GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision builds it
/// (`torchvision.models.googlenet`): convolutions without bias followed by batch norm (epsilon
/// 1e-3) and ReLU, nine inception modules of four branches, max pools in ceil mode, global
/// average pooling, dropout 0.2 and `fc`.
///
/// As in torchvision, each module's third branch uses a 3x3 convolution where the paper has 5x5
/// (torchvision keeps it for its published weights). The two auxiliary classifiers (`aux1` on
/// `inception4a`, `aux2` on `inception4d`) hold weights in torchvision's files but only training
/// recipes that add their losses use them: zoo builds them with a classifier top, computes them
/// only through ``auxiliaryLogits(_:_:)``, and removes them when a file lacks them. torchvision
/// loads its published weights with `transform_input=True` (``transformInput``).
///
/// Keras applications has no GoogLeNet; the layer list names the layers as a Keras model would
/// (`conv1_conv`, `conv1_bn`, `conv1_relu`, `pool1`, `inception3a_1x1_conv`, ...,
/// `inception3a_concat`).
public final class GoogLeNet: ImageModel {
    let conv1, conv2, conv3: ConvUnit
    let inception3: [InceptionModule], inception4: [InceptionModule], inception5: [InceptionModule]
    /// The auxiliary classifiers, with a classifier top.
    public private(set) var aux1: AuxiliaryClassifier?, aux2: AuxiliaryClassifier?
    /// torchvision's `transform_input`: maps ImageNet-normalized input back to `[-1, 1]`, as
    /// torchvision does when it loads its pretrained weights.
    public var transformInput = false

    public init(top: Top = .imagenet) {
        conv1 = ConvUnit(3, 64, kernel: 7, stride: 2, padding: 3, prefix: "conv1")
        conv2 = ConvUnit(64, 64, kernel: 1, prefix: "conv2")
        conv3 = ConvUnit(64, 192, kernel: 3, padding: 1, prefix: "conv3")
        // (input, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection) per module.
        inception3 = [InceptionModule("inception3a", 192, 64, 96, 128, 16, 32, 32),
                      InceptionModule("inception3b", 256, 128, 128, 192, 32, 96, 64)]
        inception4 = [InceptionModule("inception4a", 480, 192, 96, 208, 16, 48, 64),
                      InceptionModule("inception4b", 512, 160, 112, 224, 24, 64, 64),
                      InceptionModule("inception4c", 512, 128, 128, 256, 24, 64, 64),
                      InceptionModule("inception4d", 512, 112, 144, 288, 32, 64, 64),
                      InceptionModule("inception4e", 528, 256, 160, 320, 32, 128, 128)]
        inception5 = [InceptionModule("inception5a", 832, 256, 160, 320, 32, 128, 128),
                      InceptionModule("inception5b", 832, 384, 192, 384, 48, 128, 128)]
        if case let .classifier(classes) = top {
            aux1 = AuxiliaryClassifier(512, classes: classes)
            aux2 = AuxiliaryClassifier(528, classes: classes)
        }
        super.init(name: "googlenet", flavor: .torchvision, featureChannels: 1024, minimumInputSize: 32)

        appendLayer("input_layer", .inputLayer)
        appendLayers(conv1.unit.layers)
        appendLayer("pool1", .maxPooling2D)
        appendLayers(conv2.unit.layers + conv3.unit.layers)
        appendLayer("pool2", .maxPooling2D)
        inception3.forEach { appendLayers($0.layers) }
        appendLayer("pool3", .maxPooling2D)
        inception4.forEach { appendLayers($0.layers) }
        appendLayer("pool4", .maxPooling2D)
        inception5.forEach { appendLayers($0.layers) }
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"), .init(.dropout(0.2), name: "dropout"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    /// torchvision's module names: `conv1`, ..., `inception3a`, ..., `aux1`, `aux2`, `fc`.
    public override var children: [(name: String, module: Module)] {
        var result: [(name: String, module: Module)] = [("conv1", conv1), ("conv2", conv2), ("conv3", conv3)]
        result += (inception3 + inception4 + inception5).map { ($0.name, $0 as Module) }
        if let aux1 { result.append(("aux1", aux1)) }
        if let aux2 { result.append(("aux2", aux2)) }
        return result + (head?.children ?? [])
    }

    public override func adoptPublishedWeightSettings() { transformInput = true }

    public override var optionalParts: [String] { [aux1.map { _ in "aux1" }, aux2.map { _ in "aux2" }].compactMap { $0 } }

    public override func removeOptionalPart(_ key: String) {
        if key == "aux1" { aux1 = nil }
        if key == "aux2" { aux2 = nil }
    }

    /// The 3x3 stride-2 max pools between stages (2x2 before `inception5a`), in ceil mode.
    private static func pool(_ name: String, kernel: Int = 3) -> Stage {
        Stage(name, modules: []) { x, context in
            context.tap(name, try maxPool2d(x, Pool2DOptions(kernel: kernel, stride: 2, ceilMode: true)))
        }
    }

    /// The stem's convolutions and pools, then every inception module and the pools between.
    public override var stages: [Stage] {
        let transform = transformInput
        var result = [Stage("input", modules: []) { x, context in
            context.tap("input_layer", transform ? try InceptionV3.transformedInput(x) : x)
        }]
        result.append(Stage("conv1", modules: [conv1]) { [conv1] in try conv1($0, $1) })
        result.append(Self.pool("pool1"))
        result += [conv2, conv3].map { unit in Stage(unit.unit.names.conv, modules: [unit]) { try unit($0, $1) } }
        result.append(Self.pool("pool2"))
        func modules(_ list: [InceptionModule]) -> [Stage] { list.map { block in Stage(block.name, modules: [block]) { try block($0, $1) } } }
        result += modules(inception3) + [Self.pool("pool3")] + modules(inception4) + [Self.pool("pool4", kernel: 2)] + modules(inception5)
        return result
    }

    /// The auxiliary classifiers' logits (`aux1` on `inception4a`, `aux2` on `inception4d`), as
    /// torchvision's training forward returns them; nil without them.
    public func auxiliaryLogits(_ x: Tensor, _ context: ForwardContext) throws -> (aux1: Tensor, aux2: Tensor)? {
        guard let aux1, let aux2 else { return nil }
        let taps = [inception4[0].concatName, inception4[3].concatName]
        context.capturing.formUnion(taps)
        _ = try features(x, context)
        guard let first = context.captured[taps[0]], let second = context.captured[taps[1]] else { return nil }
        return (try aux1(first, context), try aux2(second, context))
    }
}

extension GoogLeNet {
    /// Convolution without bias, batch norm (epsilon 1e-3), ReLU (torchvision's `BasicConv2d`:
    /// `conv`, `bn`).
    final class ConvUnit: Module, Layer {
        let unit: ConvNorm

        init(_ input: Int, _ output: Int, kernel: Int, stride: Int = 1, padding: Int = 0, prefix: String) {
            unit = ConvNorm(Conv2D(input, output, kernel: kernel, stride: stride, padding: .symmetric(padding), bias: false),
                            BatchNorm(output, epsilon: 1e-3, momentum: Flavor.torchvision.batchNormMomentum), activation: .relu,
                            names: ConvNorm.names(prefix), keys: ("conv", "bn"))
        }

        override var children: [(name: String, module: Module)] { unit.children }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor { try unit(x, context) }
    }

    /// Four branches concatenated: 1x1; 1x1 then 3x3; 1x1 then 3x3 (torchvision's `branch3`,
    /// 5x5 in the paper); 3x3 stride-1 max pool then 1x1.
    final class InceptionModule: Module, Layer {
        /// torchvision's module name and the Keras name prefix (`inception3a`).
        let name: String
        let branch1: ConvUnit
        let branch2: [ConvUnit], branch3: [ConvUnit]
        let branch4: ConvUnit

        init(_ name: String, _ input: Int, _ ch1x1: Int, _ ch3x3Reduce: Int, _ ch3x3: Int, _ ch5x5Reduce: Int, _ ch5x5: Int,
             _ poolProjection: Int) {
            self.name = name
            branch1 = ConvUnit(input, ch1x1, kernel: 1, prefix: "\(name)_1x1")
            branch2 = [ConvUnit(input, ch3x3Reduce, kernel: 1, prefix: "\(name)_3x3_reduce"),
                       ConvUnit(ch3x3Reduce, ch3x3, kernel: 3, padding: 1, prefix: "\(name)_3x3")]
            branch3 = [ConvUnit(input, ch5x5Reduce, kernel: 1, prefix: "\(name)_5x5_reduce"),
                       ConvUnit(ch5x5Reduce, ch5x5, kernel: 3, padding: 1, prefix: "\(name)_5x5")]
            branch4 = ConvUnit(input, poolProjection, kernel: 1, prefix: "\(name)_pool_proj")
        }

        var poolName: String { "\(name)_pool" }
        var concatName: String { "\(name)_concat" }

        /// torchvision's `branch1`, `branch2.0`, `branch2.1`, `branch3.0`, `branch3.1`, `branch4.1`
        /// (`branch4.0` is the pool).
        override var children: [(name: String, module: Module)] {
            [("branch1", branch1)] + branch2.enumerated().map { ("branch2.\($0.offset)", $0.element as Module) }
                + branch3.enumerated().map { ("branch3.\($0.offset)", $0.element as Module) } + [("branch4.1", branch4)]
        }

        var layers: [NamedLayer] {
            ([branch1] + branch2 + branch3).flatMap(\.unit.layers) + [NamedLayer(poolName, .maxPooling2D)] + branch4.unit.layers
                + [NamedLayer(concatName, .concatenate)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b1 = try branch1(x, context)
            let b2 = try branch2.reduce(x) { try $1($0, context) }
            let b3 = try branch3.reduce(x) { try $1($0, context) }
            let pooled = context.tap(poolName, try maxPool2d(x, Pool2DOptions(kernel: 3, stride: 1, padding: .symmetric(1), ceilMode: true)))
            return context.tap(concatName, try concat([b1, b2, b3, try branch4(pooled, context)]))
        }
    }

    /// torchvision's `InceptionAux`: adaptive average pool to 4x4, 1x1 convolution (128), flatten,
    /// `fc1` (1024) with ReLU, dropout 0.7, `fc2`.
    public final class AuxiliaryClassifier: Module, Layer {
        let conv: ConvUnit
        let fc1, fc2: Dense

        init(_ input: Int, classes: Int) {
            conv = ConvUnit(input, 128, kernel: 1, prefix: "aux")
            fc1 = Dense(2048, 1024)
            fc2 = Dense(1024, classes)
        }

        public override var children: [(name: String, module: Module)] { [("conv", conv), ("fc1", fc1), ("fc2", fc2)] }

        public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let pooled = try adaptiveAvgPool2d(x, outputSize: [4, 4])
            var y = try relu(try fc1(try flatten(try conv(pooled, context)), context))
            if context.isTraining { y = try dropout(y, rate: 0.7, generator: &context.generator) }
            return try fc2(y, context)
        }
    }
}

extension GoogLeNet: ModelFamily {
    public static let architectures: [Architecture] = [.googlenet]
}

extension Architecture {
    /// GoogLeNet (torchvision).
    public static let googlenet = Architecture(
        name: "googlenet", summary: "GoogLeNet (Szegedy et al. 2015)", defaultInputSize: 224, flavors: [.torchvision],
        preprocessing: [.torchvision: .torch]
    ) { GoogLeNet(top: $0.top) }
}
