/// The architectures of the zoo, by the names `zoo models` lists.
public enum Architecture: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case vgg16, resnet50, resnet152, densenet121, densenet169, densenet201, inceptionv3, mobilenetv2
    /// The CIFAR ResNets (`cifar-resnet20`, `cifar-resnet56b`, `cifar-preresnet110`, ...).
    case cifarResNet(CIFARResNet.Configuration)

    /// The ImageNet architectures, in the two frameworks' flavours.
    public static let imagenet: [Architecture] = [.vgg16, .resnet50, .resnet152, .densenet121, .densenet169, .densenet201, .inceptionv3, .mobilenetv2]

    public static var allCases: [Architecture] { imagenet + CIFARResNet.Configuration.all.map { .cifarResNet($0) } }

    /// The registry name: `resnet50`, `cifar-resnet20`.
    public var name: String {
        switch self {
        case .vgg16: return "vgg16"
        case .resnet50: return "resnet50"
        case .resnet152: return "resnet152"
        case .densenet121: return "densenet121"
        case .densenet169: return "densenet169"
        case .densenet201: return "densenet201"
        case .inceptionv3: return "inceptionv3"
        case .mobilenetv2: return "mobilenetv2"
        case let .cifarResNet(configuration): return configuration.name
        }
    }

    public var description: String { name }

    /// Whether this is one of the small CIFAR ResNets (one graph, PyTorch naming, no flavours).
    public var isCIFAR: Bool {
        if case .cifarResNet = self { return true }
        return false
    }

    /// Accepts the registry names and the common spellings with underscores
    /// (`inception_v3`, `mobilenet_v2`), in any case.
    public init(named name: String) throws {
        let key = name.lowercased().replacingOccurrences(of: "_", with: "")
        let compact = key.replacingOccurrences(of: "-", with: "")
        guard let architecture = Architecture.allCases.first(where: { $0.name == key || $0.name.replacingOccurrences(of: "-", with: "") == compact }) else {
            throw ModelError("unknown model '\(name)'; known: \(Architecture.imagenet.map(\.name).joined(separator: ", ")), cifar-resnet20 (32, 44, 56, 110; b; cifar-preresnet...)")
        }
        self = architecture
    }

    /// The family's paper, for listings.
    public var summary: String {
        switch self {
        case .vgg16: return "VGG16 (Simonyan & Zisserman 2014)"
        case .resnet50: return "ResNet50 (He et al. 2016)"
        case .resnet152: return "ResNet152 (He et al. 2016)"
        case .densenet121: return "DenseNet121 (Huang et al. 2017)"
        case .densenet169: return "DenseNet169 (Huang et al. 2017)"
        case .densenet201: return "DenseNet201 (Huang et al. 2017)"
        case .inceptionv3: return "InceptionV3 (Szegedy et al. 2016)"
        case .mobilenetv2: return "MobileNetV2 (Sandler et al. 2018)"
        case let .cifarResNet(configuration):
            return "CIFAR ResNet-\(configuration.depth) (He et al. 2016), shortcut \(configuration.shortcut.rawValue.uppercased())"
                + (configuration.preactivation ? ", pre-activation" : "")
        }
    }

    /// The preprocessing the framework's ImageNet weights of this architecture expect: Keras
    /// uses `caffe` for VGG and ResNet, `torch` for DenseNet, `tf` for InceptionV3 and
    /// MobileNetV2; torchvision uses `torch` (ImageNet mean and deviation) throughout.
    public func defaultPreprocessing(_ flavor: Flavor) -> Preprocessing {
        guard flavor == .keras else { return .torch }
        switch self {
        case .vgg16, .resnet50, .resnet152: return .caffe
        case .densenet121, .densenet169, .densenet201, .cifarResNet: return .torch
        case .inceptionv3, .mobilenetv2: return .tf
        }
    }

    /// The input size the ImageNet weights were trained at.
    public var defaultInputSize: Int {
        switch self {
        case .inceptionv3: return 299
        case .cifarResNet: return 32
        default: return 224
        }
    }

    /// Builds the model.
    ///
    /// - Parameters:
    ///   - flavor: the framework whose graph (and weights) the model follows.
    ///   - top: the framework's classifier, or features with optional global pooling.
    ///   - inputSize: only Keras VGG16's classifier depends on it (it flattens the last map).
    public func make(flavor: Flavor, top: Top = .imagenet, inputSize: Int? = nil) throws -> ImageModel {
        switch self {
        case .vgg16: return VGG(flavor: flavor, top: top, inputSize: inputSize ?? defaultInputSize)
        case .resnet50: return ResNet(.resnet50, flavor: flavor, top: top)
        case .resnet152: return ResNet(.resnet152, flavor: flavor, top: top)
        case .densenet121: return DenseNet(.densenet121, flavor: flavor, top: top)
        case .densenet169: return DenseNet(.densenet169, flavor: flavor, top: top)
        case .densenet201: return DenseNet(.densenet201, flavor: flavor, top: top)
        case .inceptionv3: return InceptionV3(flavor: flavor, top: top)
        case .mobilenetv2: return MobileNetV2(flavor: flavor, top: top)
        case let .cifarResNet(configuration): return try CIFARResNet(configuration, top: top)
        }
    }
}
