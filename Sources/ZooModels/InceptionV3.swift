import ZooTensor
import ZooNN

/// InceptionV3 (Szegedy et al. 2016): a stem, then inception blocks A (x3), B, C (x4), D and
/// E (x2), each concatenating parallel branches of convolutions and pooling.
///
/// - keras flavour: `keras.applications.InceptionV3`: batch norm without scale (`scale=False`,
///   so no `weight`), average pools that divide by the valid cells at borders. Keras names these
///   layers automatically (`conv2d_7`, `batch_normalization_7`); weight import matches them by
///   numeric order.
/// - torchvision flavour: `torchvision.models.inception_v3`: batch norm with scale, average
///   pools that count padding, dropout 0.5 before `fc`, and the auxiliary classifier
///   (`AuxLogits`), which holds weights in torchvision's files but is used only by training
///   recipes that add its loss; zoo computes it only when asked through ``auxiliaryLogits(_:_:)``.
///
/// Both flavours use batch-norm epsilon 1e-3.
public final class InceptionV3: ImageModel {
    let stem: [ConvUnit]
    let mixed: [any Layer]
    /// torchvision's auxiliary classifier (torchvision flavour with a classifier top). Optional
    /// in weight files: most fine-tuned checkpoints and timm's are saved without it.
    public private(set) var auxLogits: AuxiliaryClassifier?
    /// torchvision's `transform_input`: maps ImageNet-normalized input back to `[-1, 1]`, as
    /// torchvision does when it loads its pretrained weights.
    public var transformInput = false

    public init(flavor: Flavor, top: Top = .imagenet) {
        let momentum = flavor.batchNormMomentum
        let scale = flavor == .torchvision
        func unit(_ input: Int, _ output: Int, _ kernel: [Int], stride: Int = 1, padding: Padding = .valid) -> ConvUnit {
            ConvUnit(input, output, kernel: kernel, stride: stride, padding: padding, scale: scale, momentum: momentum)
        }
        stem = [
            unit(3, 32, [3, 3], stride: 2), unit(32, 32, [3, 3]), unit(32, 64, [3, 3], padding: .symmetric(1)),
            unit(64, 80, [1, 1]), unit(80, 192, [3, 3]),
        ]
        let countPadding = flavor == .torchvision
        mixed = [
            BlockA(192, poolFeatures: 32, unit: unit, countPadding: countPadding),
            BlockA(256, poolFeatures: 64, unit: unit, countPadding: countPadding),
            BlockA(288, poolFeatures: 64, unit: unit, countPadding: countPadding),
            BlockB(288, unit: unit),
            BlockC(768, channels7x7: 128, unit: unit, countPadding: countPadding),
            BlockC(768, channels7x7: 160, unit: unit, countPadding: countPadding),
            BlockC(768, channels7x7: 160, unit: unit, countPadding: countPadding),
            BlockC(768, channels7x7: 192, unit: unit, countPadding: countPadding),
            BlockD(768, unit: unit),
            BlockE(1280, unit: unit, countPadding: countPadding),
            BlockE(2048, unit: unit, countPadding: countPadding),
        ]
        if flavor == .torchvision, case let .classifier(classes) = top {
            auxLogits = AuxiliaryClassifier(768, classes: classes, unit: unit)
        } else {
            auxLogits = nil
        }
        super.init(name: "inceptionv3", flavor: flavor, featureChannels: 2048, minimumInputSize: 75)
        for layer in layerGraph().kerasOrder(output: "mixed10") { appendLayer(layer.name, layer.kind, layer.module) }
        let dropout: [ClassificationHead.NamedStep] = flavor == .torchvision ? [.init(.dropout(0.5), name: "dropout")] : []
        head = standardHead(top, classifier: [.init(.globalPool(.average), name: "avg_pool")] + dropout
            + [.init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc")])
    }

    /// torchvision's module names.
    public override var children: [(name: String, module: Module)] {
        let stemNames = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
        let mixedNames = ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"]
        var result: [(name: String, module: Module)] = zip(stemNames, stem).map { ($0, $1) } + zip(mixedNames, mixed).map { ($0, $1 as Module) }
        if let auxLogits { result.insert(("AuxLogits", auxLogits), at: stemNames.count + 8) }
        return result + (head?.children ?? [])
    }

    /// torchvision loads its published weights with `transform_input=True`.
    public override func adoptPublishedWeightSettings() {
        if flavor == .torchvision { transformInput = true }
    }

    public override var optionalParts: [String] { auxLogits == nil ? [] : ["AuxLogits"] }

    public override func removeOptionalPart(_ key: String) {
        if key == "AuxLogits" { auxLogits = nil }
    }

    /// The Keras graph of the base, in creation order: every convolution unit is a `Conv2D`,
    /// a `BatchNormalization` and an `Activation`, auto-named by Keras's per-class counters.
    private func layerGraph() -> KerasGraph {
        var graph = KerasGraph()
        func add(_ unit: ConvUnit, after input: String) -> String {
            unit.unit.names = .init(conv: graph.autoName(.conv2D), norm: graph.autoName(.batchNormalization),
                                    activation: graph.autoName(.activation))
            var last = input
            for layer in unit.unit.layers { last = graph.add(layer, inputs: [last]) }
            return last
        }
        func pool(_ kind: LayerKind, after input: String) -> String {
            let name = graph.autoName(kind)
            return graph.add(NamedLayer(name, kind), inputs: [input])
        }
        var x = graph.add(NamedLayer("input_layer", .inputLayer), inputs: [])
        x = add(stem[0], after: x)
        x = add(stem[1], after: x)
        x = add(stem[2], after: x)
        x = pool(.maxPooling2D, after: x)
        x = add(stem[3], after: x)
        x = add(stem[4], after: x)
        x = pool(.maxPooling2D, after: x)
        for (index, block) in mixed.enumerated() {
            let name = "mixed\(index)"
            switch block {
            case let a as BlockA:
                let b1 = add(a.branch1x1, after: x)
                let b5 = add(a.branch5x5_2, after: add(a.branch5x5_1, after: x))
                let b3 = add(a.branch3x3dbl_3, after: add(a.branch3x3dbl_2, after: add(a.branch3x3dbl_1, after: x)))
                a.poolName = pool(.averagePooling2D, after: x)
                let bp = add(a.branchPool, after: a.poolName)
                x = graph.add(NamedLayer(name, .concatenate), inputs: [b1, b5, b3, bp])
            case let b as BlockB:
                let b3 = add(b.branch3x3, after: x)
                let bd = add(b.branch3x3dbl_3, after: add(b.branch3x3dbl_2, after: add(b.branch3x3dbl_1, after: x)))
                b.poolName = pool(.maxPooling2D, after: x)
                x = graph.add(NamedLayer(name, .concatenate), inputs: [b3, bd, b.poolName])
            case let c as BlockC:
                let b1 = add(c.branch1x1, after: x)
                var b7 = x
                for unit in c.branch7x7 { b7 = add(unit, after: b7) }
                var bd = x
                for unit in c.branch7x7dbl { bd = add(unit, after: bd) }
                c.poolName = pool(.averagePooling2D, after: x)
                let bp = add(c.branchPool, after: c.poolName)
                x = graph.add(NamedLayer(name, .concatenate), inputs: [b1, b7, bd, bp])
            case let d as BlockD:
                let b3 = add(d.branch3x3_2, after: add(d.branch3x3_1, after: x))
                var b7 = x
                for unit in d.branch7x7x3 { b7 = add(unit, after: b7) }
                d.poolName = pool(.maxPooling2D, after: x)
                x = graph.add(NamedLayer(name, .concatenate), inputs: [b3, b7, d.poolName])
            case let e as BlockE:
                let b1 = add(e.branch1x1, after: x)
                let b3 = add(e.branch3x3_1, after: x)
                let b3a = add(e.branch3x3_2a, after: b3), b3b = add(e.branch3x3_2b, after: b3)
                e.pairName = graph.add(NamedLayer("mixed9_\(index - 9)", .concatenate), inputs: [b3a, b3b])
                let bd = add(e.branch3x3dbl_2, after: add(e.branch3x3dbl_1, after: x))
                let bda = add(e.branch3x3dbl_3a, after: bd), bdb = add(e.branch3x3dbl_3b, after: bd)
                e.doublePairName = graph.add(NamedLayer(graph.autoName(.concatenate), .concatenate), inputs: [bda, bdb])
                e.poolName = pool(.averagePooling2D, after: x)
                let bp = add(e.branchPool, after: e.poolName)
                x = graph.add(NamedLayer(name, .concatenate), inputs: [b1, e.pairName, e.doublePairName, bp])
            default:
                break
            }
        }
        return graph
    }

    /// The stem's convolutions and pools, then every inception block.
    public override var stages: [Stage] {
        let transform = transformInput
        var result = [Stage("input", modules: []) { x, context in
            context.tap("input_layer", transform ? try InceptionV3.transformedInput(x) : x)
        }]
        result += stem.prefix(3).map { unit in Stage(unit.unit.names.conv, modules: [unit]) { try unit($0, $1) } }
        result.append(Stage("max_pooling2d", modules: []) { x, context in
            context.tap("max_pooling2d", try maxPool2d(x, Pool2DOptions(kernel: 3, stride: 2)))
        })
        result += stem.suffix(2).map { unit in Stage(unit.unit.names.conv, modules: [unit]) { try unit($0, $1) } }
        result.append(Stage("max_pooling2d_1", modules: []) { x, context in
            context.tap("max_pooling2d_1", try maxPool2d(x, Pool2DOptions(kernel: 3, stride: 2)))
        })
        for (index, block) in mixed.enumerated() {
            result.append(Stage("mixed\(index)", modules: [block]) { x, context in context.tap("mixed\(index)", try block(x, context)) })
        }
        return result
    }

    /// The auxiliary classifier's logits from the output of `Mixed_6e` (torchvision flavour).
    public func auxiliaryLogits(_ x: Tensor, _ context: ForwardContext) throws -> Tensor? {
        guard let auxLogits else { return nil }
        context.capturing.insert("mixed7")
        _ = try features(x, context)
        return try context.captured["mixed7"].map { try auxLogits($0, context) }
    }

    /// torchvision's `transform_input`: `x * (std / 0.5) + (mean - 0.5) / 0.5` per channel.
    static func transformedInput(_ x: Tensor) throws -> Tensor {
        let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
        let plane = x.shape[2] * x.shape[3]
        var values = try x.array()
        for index in values.indices {
            let channel = (index / plane) % 3
            values[index] = values[index] * (std[channel] / 0.5) + (mean[channel] - 0.5) / 0.5
        }
        return try Tensor(shape: x.shape, values: values)
    }
}

extension InceptionV3 {
    /// Convolution without bias, batch norm, ReLU (torchvision's `BasicConv2d`: `conv`, `bn`).
    /// Keras names these layers automatically; the names are set when the layer graph is built.
    public final class ConvUnit: Module, Layer {
        let unit: ConvNorm

        init(_ input: Int, _ output: Int, kernel: [Int], stride: Int, padding: Padding, scale: Bool, momentum: BatchNormMomentum) {
            unit = ConvNorm(Conv2D(inChannels: input, outChannels: output, kernel: kernel,
                                   options: Conv2DOptions(stride: [stride, stride], padding: padding), bias: false),
                            BatchNorm(output, epsilon: 1e-3, momentum: momentum, scale: scale), activation: .relu,
                            names: .init(conv: "", norm: "", activation: ""), keys: ("conv", "bn"))
        }

        public override var children: [(name: String, module: Module)] { unit.children }

        public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            try unit(x, context)
        }
    }

    /// 3x3 stride-1 average pooling with the flavour's border divisor.
    static func branchPool(_ x: Tensor, countPadding: Bool) throws -> Tensor {
        try avgPool2d(x, Pool2DOptions(kernel: 3, stride: 1, padding: .symmetric(1), countIncludesPadding: countPadding))
    }

    final class BlockA: Module, Layer {
        let branch1x1, branch5x5_1, branch5x5_2, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3, branchPool: ConvUnit
        let countPadding: Bool
        var poolName = ""

        init(_ input: Int, poolFeatures: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit, countPadding: Bool) {
            branch1x1 = unit(input, 64, [1, 1], 1, .valid)
            branch5x5_1 = unit(input, 48, [1, 1], 1, .valid)
            branch5x5_2 = unit(48, 64, [5, 5], 1, .symmetric(2))
            branch3x3dbl_1 = unit(input, 64, [1, 1], 1, .valid)
            branch3x3dbl_2 = unit(64, 96, [3, 3], 1, .symmetric(1))
            branch3x3dbl_3 = unit(96, 96, [3, 3], 1, .symmetric(1))
            branchPool = unit(input, poolFeatures, [1, 1], 1, .valid)
            self.countPadding = countPadding
        }

        override var children: [(name: String, module: Module)] {
            [("branch1x1", branch1x1), ("branch5x5_1", branch5x5_1), ("branch5x5_2", branch5x5_2), ("branch3x3dbl_1", branch3x3dbl_1),
             ("branch3x3dbl_2", branch3x3dbl_2), ("branch3x3dbl_3", branch3x3dbl_3), ("branch_pool", branchPool)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b1 = try branch1x1(x, context)
            let b5 = try branch5x5_2(try branch5x5_1(x, context), context)
            let b3 = try branch3x3dbl_3(try branch3x3dbl_2(try branch3x3dbl_1(x, context), context), context)
            let bp = try branchPool(context.tap(poolName, try InceptionV3.branchPool(x, countPadding: countPadding)), context)
            return try concat([b1, b5, b3, bp])
        }
    }

    final class BlockB: Module, Layer {
        let branch3x3, branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3: ConvUnit
        var poolName = ""

        init(_ input: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit) {
            branch3x3 = unit(input, 384, [3, 3], 2, .valid)
            branch3x3dbl_1 = unit(input, 64, [1, 1], 1, .valid)
            branch3x3dbl_2 = unit(64, 96, [3, 3], 1, .symmetric(1))
            branch3x3dbl_3 = unit(96, 96, [3, 3], 2, .valid)
        }

        override var children: [(name: String, module: Module)] {
            [("branch3x3", branch3x3), ("branch3x3dbl_1", branch3x3dbl_1), ("branch3x3dbl_2", branch3x3dbl_2),
             ("branch3x3dbl_3", branch3x3dbl_3)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b3 = try branch3x3(x, context)
            let bd = try branch3x3dbl_3(try branch3x3dbl_2(try branch3x3dbl_1(x, context), context), context)
            let bp = context.tap(poolName, try maxPool2d(x, Pool2DOptions(kernel: 3, stride: 2)))
            return try concat([b3, bd, bp])
        }
    }

    final class BlockC: Module, Layer {
        let branch1x1: ConvUnit
        let branch7x7: [ConvUnit]
        let branch7x7dbl: [ConvUnit]
        let branchPool: ConvUnit
        let countPadding: Bool
        var poolName = ""

        init(_ input: Int, channels7x7 c7: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit, countPadding: Bool) {
            let wide = Padding.symmetric(height: 0, width: 3), tall = Padding.symmetric(height: 3, width: 0)
            branch1x1 = unit(input, 192, [1, 1], 1, .valid)
            branch7x7 = [unit(input, c7, [1, 1], 1, .valid), unit(c7, c7, [1, 7], 1, wide), unit(c7, 192, [7, 1], 1, tall)]
            branch7x7dbl = [unit(input, c7, [1, 1], 1, .valid), unit(c7, c7, [7, 1], 1, tall), unit(c7, c7, [1, 7], 1, wide),
                            unit(c7, c7, [7, 1], 1, tall), unit(c7, 192, [1, 7], 1, wide)]
            branchPool = unit(input, 192, [1, 1], 1, .valid)
            self.countPadding = countPadding
        }

        override var children: [(name: String, module: Module)] {
            [("branch1x1", branch1x1)] + branch7x7.enumerated().map { ("branch7x7_\($0.offset + 1)", $0.element as Module) }
                + branch7x7dbl.enumerated().map { ("branch7x7dbl_\($0.offset + 1)", $0.element as Module) }
                + [("branch_pool", branchPool)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b1 = try branch1x1(x, context)
            let b7 = try branch7x7.reduce(x) { try $1($0, context) }
            let bd = try branch7x7dbl.reduce(x) { try $1($0, context) }
            let bp = try branchPool(context.tap(poolName, try InceptionV3.branchPool(x, countPadding: countPadding)), context)
            return try concat([b1, b7, bd, bp])
        }
    }

    final class BlockD: Module, Layer {
        let branch3x3_1, branch3x3_2: ConvUnit
        let branch7x7x3: [ConvUnit]
        var poolName = ""

        init(_ input: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit) {
            branch3x3_1 = unit(input, 192, [1, 1], 1, .valid)
            branch3x3_2 = unit(192, 320, [3, 3], 2, .valid)
            branch7x7x3 = [unit(input, 192, [1, 1], 1, .valid), unit(192, 192, [1, 7], 1, .symmetric(height: 0, width: 3)),
                           unit(192, 192, [7, 1], 1, .symmetric(height: 3, width: 0)), unit(192, 192, [3, 3], 2, .valid)]
        }

        override var children: [(name: String, module: Module)] {
            [("branch3x3_1", branch3x3_1), ("branch3x3_2", branch3x3_2)]
                + branch7x7x3.enumerated().map { ("branch7x7x3_\($0.offset + 1)", $0.element as Module) }
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b3 = try branch3x3_2(try branch3x3_1(x, context), context)
            let b7 = try branch7x7x3.reduce(x) { try $1($0, context) }
            let bp = context.tap(poolName, try maxPool2d(x, Pool2DOptions(kernel: 3, stride: 2)))
            return try concat([b3, b7, bp])
        }
    }

    final class BlockE: Module, Layer {
        let branch1x1, branch3x3_1, branch3x3_2a, branch3x3_2b: ConvUnit
        let branch3x3dbl_1, branch3x3dbl_2, branch3x3dbl_3a, branch3x3dbl_3b, branchPool: ConvUnit
        let countPadding: Bool
        var poolName = "", pairName = "", doublePairName = ""

        init(_ input: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit, countPadding: Bool) {
            let wide = Padding.symmetric(height: 0, width: 1), tall = Padding.symmetric(height: 1, width: 0)
            branch1x1 = unit(input, 320, [1, 1], 1, .valid)
            branch3x3_1 = unit(input, 384, [1, 1], 1, .valid)
            branch3x3_2a = unit(384, 384, [1, 3], 1, wide)
            branch3x3_2b = unit(384, 384, [3, 1], 1, tall)
            branch3x3dbl_1 = unit(input, 448, [1, 1], 1, .valid)
            branch3x3dbl_2 = unit(448, 384, [3, 3], 1, .symmetric(1))
            branch3x3dbl_3a = unit(384, 384, [1, 3], 1, wide)
            branch3x3dbl_3b = unit(384, 384, [3, 1], 1, tall)
            branchPool = unit(input, 192, [1, 1], 1, .valid)
            self.countPadding = countPadding
        }

        override var children: [(name: String, module: Module)] {
            [("branch1x1", branch1x1), ("branch3x3_1", branch3x3_1), ("branch3x3_2a", branch3x3_2a), ("branch3x3_2b", branch3x3_2b),
             ("branch3x3dbl_1", branch3x3dbl_1), ("branch3x3dbl_2", branch3x3dbl_2), ("branch3x3dbl_3a", branch3x3dbl_3a),
             ("branch3x3dbl_3b", branch3x3dbl_3b), ("branch_pool", branchPool)]
        }

        func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            let b1 = try branch1x1(x, context)
            let b3 = try branch3x3_1(x, context)
            let pair = context.tap(pairName, try concat([try branch3x3_2a(b3, context), try branch3x3_2b(b3, context)]))
            let bd = try branch3x3dbl_2(try branch3x3dbl_1(x, context), context)
            let doublePair = context.tap(doublePairName, try concat([try branch3x3dbl_3a(bd, context), try branch3x3dbl_3b(bd, context)]))
            let bp = try branchPool(context.tap(poolName, try InceptionV3.branchPool(x, countPadding: countPadding)), context)
            return try concat([b1, pair, doublePair, bp])
        }
    }

    /// torchvision's auxiliary classifier on `Mixed_6e`: 5x5/3 average pool, 1x1 (128), 5x5
    /// (768), global average pool, `fc`.
    public final class AuxiliaryClassifier: Module, Layer {
        let conv0, conv1: ConvUnit
        let fc: Dense

        init(_ input: Int, classes: Int, unit: (Int, Int, [Int], Int, Padding) -> ConvUnit) {
            conv0 = unit(input, 128, [1, 1], 1, .valid)
            conv1 = unit(128, 768, [5, 5], 1, .valid)
            fc = Dense(768, classes)
        }

        public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
            var y = try avgPool2d(x, Pool2DOptions(kernel: 5, stride: 3))
            y = try conv1(try conv0(y, context), context)
            return try fc(try globalAvgPool2d(y), context)
        }
    }
}

extension InceptionV3: ModelFamily {
    public static let architectures: [Architecture] = [.inceptionv3]
}

extension Architecture {
    /// InceptionV3 at 299x299.
    public static let inceptionv3 = Architecture(
        name: "inceptionv3", summary: "InceptionV3 (Szegedy et al. 2016)", defaultInputSize: 299,
        preprocessing: [.keras: .tf, .torchvision: .torch]
    ) { InceptionV3(flavor: $0.flavor, top: $0.top) }
}
