import Synchronization
import ZooTensor

/// An architecture zoo can build, by the name `zoo models` lists: what it is, the input it was
/// made for, the preprocessing of its weight sets, and how to build it.
///
/// Each family file declares its variants (``ModelFamily/architectures``); ``ModelRegistry``
/// lists the families. Another package registers an architecture of its own with
/// ``ModelRegistry/register(_:)`` and then uses it like a built-in one: by name, with summaries,
/// weight loading, fine-tuning and extraction.
public struct Architecture: Sendable, Hashable, CustomStringConvertible {
    /// The image domain an architecture's graph is made for.
    public enum Domain: String, Sendable, Hashable {
        /// ImageNet-size images (224x224, 299x299) and the frameworks' graphs.
        case imagenet
        /// CIFAR's 32x32 images.
        case cifar
    }

    /// What a builder is asked for.
    public struct Request: Sendable {
        /// The framework whose graph (and weights) the model follows.
        public var flavor: Flavor
        /// The framework's classifier, or features with optional global pooling.
        public var top: Top
        /// The input height and width the model is built for (the architecture's default size
        /// unless asked otherwise). Only a model whose top flattens a feature map (Keras VGG)
        /// depends on it.
        public var inputSize: Int
    }

    /// The registry name: `resnet50`, `cifar-resnet20`.
    public let name: String
    /// The family's paper, for listings: `ResNet50 (He et al. 2016)`.
    public let summary: String
    /// The input size the published weights were trained at.
    public let defaultInputSize: Int
    public let domain: Domain
    /// The flavours the architecture is built in; the first is the default.
    public let flavors: [Flavor]
    /// The preprocessing the framework's published weights of this architecture expect, per
    /// flavour.
    private let preprocessing: [Flavor: Preprocessing]
    private let build: @Sendable (Request) throws -> ImageModel

    /// Declares an architecture.
    ///
    /// - Parameters:
    ///   - preprocessing: what the published weights expect in each flavour (Keras uses
    ///     `caffe` for VGG and ResNet, `torch` for DenseNet, `tf` for InceptionV3 and
    ///     MobileNetV2; torchvision uses `torch` throughout). Every flavour of `flavors` needs one.
    ///   - build: makes the model for a request.
    public init(name: String, summary: String, defaultInputSize: Int, domain: Domain = .imagenet,
                flavors: [Flavor] = [.keras, .torchvision], preprocessing: [Flavor: Preprocessing],
                build: @escaping @Sendable (Request) throws -> ImageModel) {
        precondition(!flavors.isEmpty && flavors.allSatisfy { preprocessing[$0] != nil },
                     "\(name): every flavour needs its preprocessing")
        self.name = name
        self.summary = summary
        self.defaultInputSize = defaultInputSize
        self.domain = domain
        self.flavors = flavors
        self.preprocessing = preprocessing
        self.build = build
    }

    public var description: String { name }

    /// The flavour used when none is asked for.
    public var defaultFlavor: Flavor { flavors[0] }

    /// Whether this is one of the small CIFAR ResNets (one graph, PyTorch naming, no flavours).
    public var isCIFAR: Bool { domain == .cifar }

    /// The preprocessing the framework's published weights of this architecture expect.
    public func defaultPreprocessing(_ flavor: Flavor) -> Preprocessing {
        preprocessing[flavor] ?? preprocessing[defaultFlavor]!
    }

    /// Builds the model.
    ///
    /// - Parameters:
    ///   - flavor: the framework whose graph (and weights) the model follows. An architecture
    ///     with a single graph (the CIFAR ResNets) is built in its one flavour whatever is asked,
    ///     as `zoo`'s commands default to `keras`.
    ///   - top: the framework's classifier, or features with optional global pooling.
    ///   - inputSize: only Keras VGG16's classifier depends on it (it flattens the last map).
    public func make(flavor: Flavor, top: Top = .imagenet, inputSize: Int? = nil) throws -> ImageModel {
        let flavor = flavors.count == 1 ? defaultFlavor : flavor
        guard flavors.contains(flavor) else {
            throw ModelError.unsupportedFlavor(architecture: name, flavor: flavor, supported: flavors)
        }
        return try build(Request(flavor: flavor, top: top, inputSize: inputSize ?? defaultInputSize))
    }

    public static func == (lhs: Architecture, rhs: Architecture) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }

    /// The registered architecture called `name`. Accepts the registry names and the common
    /// spellings with underscores (`inception_v3`, `mobilenet_v2`), in any case.
    public init(named name: String) throws {
        self = try ModelRegistry.architecture(named: name)
    }

    /// Every registered architecture, the built-in families first, in registry order.
    public static var allCases: [Architecture] { ModelRegistry.architectures }

    /// The registered ImageNet architectures, in registry order.
    public static var imagenet: [Architecture] { allCases.filter { $0.domain == .imagenet } }
}

/// A model family: one file that declares its variants.
public protocol ModelFamily: SendableMetatype {
    /// The family's architectures, in listing order.
    static var architectures: [Architecture] { get }
}

/// The architectures zoo knows: the built-in families, one line each, and whatever other
/// packages register.
public enum ModelRegistry {
    /// The built-in families, in listing order.
    static let builtInFamilies: [any ModelFamily.Type] = [
        AlexNet.self,
        VGG.self,
        GoogLeNet.self,
        SqueezeNet.self,
        ResNet.self,
        DenseNet.self,
        InceptionV3.self,
        MobileNetV2.self,
        MobileNetV3.self,
        MNASNet.self,
        ShuffleNetV2.self,
        EfficientNet.self,
        EfficientNetV2.self,
        // Keras applications only.
        Xception.self,
        ResNetV2.self,
        MobileNet.self,
        InceptionResNetV2.self,
        CIFARResNet.self,
        CIFARAirbench.self,
    ]

    private static let registered = Mutex<[Architecture]>(builtInFamilies.flatMap { $0.architectures })

    /// Every registered architecture, in registration order.
    public static var architectures: [Architecture] { registered.withLock { $0 } }

    /// Adds an architecture of another package; it is then found by name like a built-in one.
    /// Throws when the name (or its spelling without `_` and `-`) is taken.
    public static func register(_ architecture: Architecture) throws {
        try registered.withLock { list in
            if let taken = list.first(where: { spelling($0.name) == spelling(architecture.name) }) {
                throw ModelError.nameTaken(architecture.name, by: taken.name)
            }
            list.append(architecture)
        }
    }

    /// The architecture called `name`, in any of its spellings.
    public static func architecture(named name: String) throws -> Architecture {
        let all = architectures
        if let exact = all.first(where: { $0.name == name.lowercased() }) { return exact }
        if let close = all.first(where: { spelling($0.name) == spelling(name) }) { return close }
        let cifar = all.filter(\.isCIFAR)
        let others = all.filter { !$0.isCIFAR }.map(\.name)
        let listing = others + (cifar.isEmpty ? [] : ["cifar-resnet20 (32, 44, 56, 110; b; cifar-preresnet...)"])
        throw ModelError.unknownArchitecture(name, known: listing)
    }

    /// A name without case, `_` and `-`: `Inception_V3` and `inceptionv3` are one name.
    private static func spelling(_ name: String) -> String {
        name.lowercased().replacingOccurrences(of: "_", with: "").replacingOccurrences(of: "-", with: "")
    }
}
