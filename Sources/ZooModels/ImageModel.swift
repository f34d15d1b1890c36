import ZooTensor
import ZooNN

/// What every model of the zoo offers: a base that turns images into a feature map, an
/// optional head on top, the Keras-equivalent layer list, and named layer outputs.
///
/// Subclasses (one per family) build their modules, list their layers in Keras's order with
/// ``appendLayer(_:_:_:)``, and implement ``features(_:_:)``, tapping every listed layer's
/// output on the context under its name.
open class ImageModel: Module, Layer {
    /// The registry name (`resnet50`).
    public let name: String
    public let flavor: Flavor
    /// Channels of the base's last feature map.
    public let featureChannels: Int
    /// The smallest input height and width the architecture accepts.
    public let minimumInputSize: Int
    /// The base's layer list (Keras's `model.layers` without the top), in Keras's order.
    public private(set) var baseLayers: [NamedLayer] = []
    /// The layers on top of the base, or nil for the bare feature map.
    public var head: ClassificationHead?

    public init(name: String, flavor: Flavor, featureChannels: Int, minimumInputSize: Int) {
        self.name = name
        self.flavor = flavor
        self.featureChannels = featureChannels
        self.minimumInputSize = minimumInputSize
    }

    /// Adds a layer to the base's layer list; called by subclasses in Keras's order.
    public func appendLayer(_ name: String, _ kind: LayerKind, _ module: Module? = nil) {
        baseLayers.append(NamedLayer(name, kind, module))
    }

    /// Adds layers to the base's layer list, in order.
    public func appendLayers(_ layers: [NamedLayer]) {
        baseLayers += layers
    }

    /// The whole layer list: the base's, then the head's.
    public var layers: [NamedLayer] { baseLayers + (head?.namedLayers ?? []) }

    /// Children for parameter names: the subclass's modules by property name, and the head's
    /// dense layers under their root keys (`fc`, `classifier`).
    public override var children: [(name: String, module: Module)] {
        super.children.filter { $0.name != "head" } + (head?.children ?? [])
    }

    /// Renamings applied to PyTorch-style checkpoint names before they are matched (a family
    /// whose checkpoints circulate with several spellings lists them): regular expression and
    /// replacement template.
    open var stateDictionaryAliases: [(pattern: String, replacement: String)] { [] }

    /// Renamings applied to the layer names of legacy HDF5 files that no layer of the model
    /// carries (a family whose Keras 2 names differ from Keras 3's lists them): regular
    /// expression and replacement template, applied in order to the name with its slashes
    /// already turned into underscores.
    open var legacyKerasLayerAliases: [(pattern: String, replacement: String)] { [] }

    /// Sets what the framework sets when it loads its own published weights into this model
    /// (torchvision's InceptionV3 turns on `transform_input`); called when weights come from a
    /// published weight set.
    open func adoptPublishedWeightSettings() {}

    /// Parts of the model that weight files may leave out, by their key in the state dict
    /// (InceptionV3's auxiliary classifier, `AuxLogits`): loading a file that holds none of a
    /// part's tensors removes the part instead of failing.
    open var optionalParts: [String] { [] }

    /// Removes the optional part `key`, one of ``optionalParts``.
    open func removeOptionalPart(_ key: String) {}

    /// The base as a chain of stages, each taking one tensor and giving one (the stem, a block,
    /// a dense layer with its concatenation, a transition). Subclasses build it; the base's output
    /// is the last stage's.
    open var stages: [Stage] { [] }

    /// The base: images `[N, 3, H, W]` to the last feature map.
    public func features(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try run(stages, x, context)
    }

    /// Runs the base and the head.
    public func callAsFunction(_ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try checkInput(x)
        let base = try features(x, context)
        return try head.map { try $0(base, context) } ?? base
    }

    /// The base's last feature map pooled globally to one vector per image, `[N, featureChannels]`,
    /// whatever the top: what a new head, a linear probe or a nearest-neighbour search takes
    /// (timm's `forward_features` then pooling).
    public func pooledFeatures(_ x: Tensor, _ context: ForwardContext, pooling: GlobalPooling = .average) throws -> Tensor {
        try checkInput(x)
        let base = try features(x, context)
        return pooling == .average ? try globalAvgPool2d(base) : try globalMaxPool2d(base)
    }

    /// The stages before `stage` (the trunk up to a cut): images to the tensor that enters `stage`.
    public func trunk(before stage: Int, _ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try checkInput(x)
        return try run(Array(stages.prefix(stage)), x, context)
    }

    /// The stages from `stage` on and the head, on the tensor that enters `stage`.
    public func forward(from stage: Int, _ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        let base = try run(Array(stages.dropFirst(stage)), x, context)
        return try head.map { try $0(base, context) } ?? base
    }

    /// How many leading stages have nothing trainable: their output can be computed once and
    /// reused while the rest trains (the frozen-trunk cache).
    public var frozenStageCount: Int {
        stages.prefix { $0.modules.allSatisfy(\.isFrozen) }.count
    }

    /// Runs `stages` on `x` converted to the context's activation type.
    private func run(_ stages: [Stage], _ x: Tensor, _ context: ForwardContext) throws -> Tensor {
        try stages.reduce(x.activationConverted(to: context.activationType)) { try $1.run($0, context) }
    }

    /// Throws unless `x` is an image batch this model accepts.
    public func checkInput(_ x: Tensor) throws {
        guard x.shape.count == 4, x.shape[1] == 3 else {
            throw ModelError.notAnImageBatch(model: name, shape: x.shape)
        }
        guard x.shape[2] >= minimumInputSize, x.shape[3] >= minimumInputSize else {
            throw ModelError.inputTooSmall(model: name, height: x.shape[2], width: x.shape[3], minimum: minimumInputSize)
        }
    }

    /// The standard top: the framework's classifier `classifier` for a classifier top, or
    /// global pooling named as Keras names it (`avg_pool`, `max_pool`), or nothing.
    public func standardHead(_ top: Top, classifier: [ClassificationHead.NamedStep]) -> ClassificationHead? {
        switch top {
        case .classifier:
            return ClassificationHead(classifier, inputFeatures: featureChannels)
        case let .features(pooling?):
            return ClassificationHead([.init(.globalPool(pooling), name: pooling == .average ? "avg_pool" : "max_pool")],
                                      inputFeatures: featureChannels)
        case .features(nil):
            return nil
        }
    }
}

/// A piece of a model's base with one input and one output, and the modules holding its weights.
public struct Stage {
    public let name: String
    public let modules: [Module]
    let run: (Tensor, ForwardContext) throws -> Tensor

    public init(_ name: String, modules: [Module], _ run: @escaping (Tensor, ForwardContext) throws -> Tensor) {
        self.name = name
        self.modules = modules
        self.run = run
    }
}
