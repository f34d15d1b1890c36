import Foundation

/// A published weight set, as its manifest in the catalog (`zoo/<architecture>.<tag>.json`)
/// describes it: where the file is, how to verify it, and what the weights expect.
public struct WeightSet: Codable, Sendable, Equatable {
    /// `architecture.tag`, e.g. `resnet50.keras_imagenet`.
    public var name: String
    public var architecture: String
    public var flavor: Flavor
    public var publisher: String
    /// The file's format (`keras-h5`, `torch-zip`, ...).
    public var format: String
    /// The file name the publisher uses.
    public var file: String
    /// Where the publisher serves the file; `nil` for a file that ships with zoo (``bundled``).
    public var url: String?
    /// For a weight set that ships in zoo's repository: the file's path inside the catalog
    /// folder (`zoo/`), e.g. `weights/cifar-resnet20.zoo_cifar10.safetensors`.
    public var bundled: String?
    /// The checksum exactly as the publisher states it, if it states one.
    public var checksum: Checksum?
    public var includeTop: Bool
    public var classes: Int?
    /// The input size the weights were trained at.
    public var inputSize: Int
    /// The preprocessing the weights expect: Keras's `caffe`, `tf` or `torch` mode, or
    /// `torchvision` (ImageNet mean and standard deviation, with ``transforms``).
    public var preprocessing: String
    public var transforms: Transforms?
    public var parameters: Int?
    public var metrics: Metrics?
    public var license: String?
    /// Where the facts above were read.
    public var origin: String?
    public var notes: String?

    public init(name: String, architecture: String, flavor: Flavor, publisher: String, format: String, file: String, url: String?,
                bundled: String? = nil, checksum: Checksum?, includeTop: Bool, classes: Int?, inputSize: Int, preprocessing: String,
                transforms: Transforms? = nil, parameters: Int? = nil, metrics: Metrics? = nil, license: String? = nil,
                origin: String? = nil, notes: String? = nil) {
        self.name = name
        self.architecture = architecture
        self.flavor = flavor
        self.publisher = publisher
        self.format = format
        self.file = file
        self.url = url
        self.bundled = bundled
        self.checksum = checksum
        self.includeTop = includeTop
        self.classes = classes
        self.inputSize = inputSize
        self.preprocessing = preprocessing
        self.transforms = transforms
        self.parameters = parameters
        self.metrics = metrics
        self.license = license
        self.origin = origin
        self.notes = notes
    }

    /// A checksum as a publisher states it.
    public struct Checksum: Codable, Sendable, Equatable {
        /// `md5` or `sha256` over the whole file, or `sha256-prefix`: the given hexadecimal
        /// digits begin the file's SHA-256 (torchvision names its files so).
        public var algorithm: String
        public var value: String

        public init(algorithm: String, value: String) {
            self.algorithm = algorithm
            self.value = value
        }
    }

    /// torchvision's evaluation transforms.
    public struct Transforms: Codable, Sendable, Equatable {
        public var resize: Int?
        public var crop: Int?
        public var interpolation: String?
        public var mean: [Double]?
        public var std: [Double]?
    }

    /// Published accuracy on ImageNet-1K validation.
    public struct Metrics: Codable, Sendable, Equatable {
        public var top1: Double?
        public var top5: Double?
    }

    enum CodingKeys: String, CodingKey {
        case name, architecture, flavor, publisher, format, file, url, bundled, checksum, classes, transforms, parameters, metrics, license,
             origin, notes, preprocessing
        case includeTop = "include_top"
        case inputSize = "input_size"
    }

    /// Checks `file` against the stated checksum; throws naming the file and both digests when
    /// they differ. Without a stated checksum the file is accepted as is.
    public func verify(_ file: URL) throws {
        guard let checksum else { return }
        let algorithm: Digest.Algorithm
        switch checksum.algorithm {
        case "md5": algorithm = .md5
        case "sha256", "sha256-prefix": algorithm = .sha256
        default: throw ModelError.invalidArgument("\(name): the manifest states an unknown checksum algorithm '\(checksum.algorithm)'")
        }
        let actual = try Digest.hexadecimal(algorithm, of: file)
        let expected = checksum.value.lowercased()
        let matches = checksum.algorithm == "sha256-prefix" ? actual.hasPrefix(expected) : actual == expected
        guard matches else {
            throw ModelError.invalidArgument("\(file.path): \(checksum.algorithm) is \(actual), but \(name) states \(expected); the file is damaged or not the published one")
        }
    }
}

/// The weight sets zoo knows: the manifests of `zoo/`, built into the library.
public enum Catalog {
    /// Every weight set, sorted by name.
    public static let weightSets: [WeightSet] = {
        let decoder = JSONDecoder()
        return embeddedManifests.values.compactMap { try? decoder.decode(WeightSet.self, from: Data($0.utf8)) }
            .sorted { $0.name < $1.name }
    }()

    /// The catalog folder (`zoo/` of the source tree zoo was built from, or `$ZOO_CATALOG`),
    /// where bundled weights and the demo's sample images live; `nil` when it cannot be found.
    public static var folder: URL? {
        let manager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["ZOO_CATALOG"], !path.isEmpty {
            return URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        }
        // Sources/ZooModels/Catalog/WeightSet.swift -> the repository root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent("zoo")
        return manager.fileExists(atPath: folder.appendingPathComponent("schema.json").path) ? folder : nil
    }

    /// The verified file of a weight set that ships with zoo, in `folder` (default: ``folder``).
    public static func bundledFile(_ set: WeightSet, in folder: URL? = Catalog.folder) throws -> URL {
        guard let path = set.bundled else { throw ModelError.invalidArgument("\(set.name) does not ship with zoo; `zoo pull \(set.name)` downloads it") }
        guard let folder else {
            throw ModelError.invalidArgument("\(set.name) ships in zoo's catalog folder, which was not found; set ZOO_CATALOG to the zoo/ folder of zoo's repository")
        }
        let file = folder.appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw ModelError.invalidArgument("\(set.name): \(file.path) is missing from the catalog folder")
        }
        try set.verify(file)
        return file
    }

    /// The weight set called `name` (`resnet50.keras_imagenet`).
    public static func weightSet(named name: String) throws -> WeightSet {
        guard let set = weightSets.first(where: { $0.name == name }) else {
            let close = weightSets.map(\.name).filter { $0.hasPrefix(name.split(separator: ".").first.map(String.init) ?? name) }
            throw ModelError.invalidArgument("no weight set named '\(name)'" + (close.isEmpty ? "; `zoo models` lists them" : "; did you mean \(close.joined(separator: ", "))?"))
        }
        return set
    }
}
