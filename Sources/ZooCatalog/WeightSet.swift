import Foundation
import ZooTensor
import ZooModels

/// A published weight set, as its manifest in the catalog (`zoo/<architecture>.<tag>.json`)
/// describes it: where the file is, how to verify it, and what the weights expect.
///
/// It encodes to the manifest's JSON key for key, `null`s included (`bundled` is left out when
/// there is none, as the published manifests leave it out).
public struct WeightSet: Codable, Sendable, Equatable {
    /// `architecture.tag`, e.g. `resnet50.keras_imagenet`.
    public var name: String
    /// The architecture's registry name (`resnet50`). A string, not a resolved architecture:
    /// the registry is open, so a manifest may name one that is registered later;
    /// ``resolvedArchitecture()`` looks it up.
    public var architecture: String
    public var flavor: Flavor
    public var publisher: String
    public var format: Format
    /// The file name the publisher uses.
    public var file: String
    /// Where the publisher serves the file; `nil` for a file that ships with zoo (``bundled``).
    public var url: String?
    /// For a weight set that ships with zoo: the file's path inside the catalog folder (`zoo/`),
    /// e.g. `weights/cifar-resnet20.zoo_cifar10.safetensors`. The file is built into the
    /// library too (``Catalog/bundledFile(_:in:cache:)``).
    public var bundled: String?
    /// The checksum exactly as the publisher states it, if it states one.
    public var checksum: Checksum?
    public var includeTop: Bool
    public var classes: Int?
    /// The names of the classifier's outputs, when they are a list zoo ships; `nil` without a
    /// top and for zoo's own checkpoints, whose class names are in the file.
    public var classList: ClassList?
    /// The input size the weights were trained at.
    public var inputSize: Int
    public var preprocessing: PreprocessingMode
    public var transforms: Transforms?
    public var parameters: Int?
    public var metrics: Metrics?
    public var license: String?
    /// Where the facts above were read.
    public var origin: String?
    public var notes: String?

    public init(name: String, architecture: String, flavor: Flavor, publisher: String, format: Format, file: String, url: String?,
                bundled: String? = nil, checksum: Checksum?, includeTop: Bool, classes: Int?, classList: ClassList? = nil, inputSize: Int,
                preprocessing: PreprocessingMode, transforms: Transforms? = nil, parameters: Int? = nil, metrics: Metrics? = nil,
                license: String? = nil, origin: String? = nil, notes: String? = nil) {
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
        self.classList = classList
        self.inputSize = inputSize
        self.preprocessing = preprocessing
        self.transforms = transforms
        self.parameters = parameters
        self.metrics = metrics
        self.license = license
        self.origin = origin
        self.notes = notes
    }

    /// The kind of file the publisher serves.
    public enum Format: String, Codable, Sendable, CaseIterable {
        /// A Keras HDF5 weights file.
        case kerasH5 = "keras-h5"
        /// A `torch.save` zip container (PyTorch 1.6 and later).
        case torchZip = "torch-zip"
        /// A `torch.save` file from before the zip container.
        case torchLegacy = "torch-legacy"
        /// A safetensors file written by zoo, its model description in the metadata.
        case zooCheckpoint = "zoo-checkpoint"
    }

    /// The preprocessing the weights expect, as the manifest names it: Keras's `preprocess_input`
    /// modes `caffe`, `tf` and `torch`, `torchvision` (the `torch` normalization, after the
    /// resize and crop of ``transforms``), or `none`. ``inputPreprocessing``
    /// gives the transform that applies it.
    public enum PreprocessingMode: String, Codable, Sendable, CaseIterable {
        case caffe, tf, torch, torchvision, none

        /// The pixel preprocessing of the mode (`torchvision` normalizes as `torch` does).
        public var preprocessing: Preprocessing {
            switch self {
            case .caffe: return .caffe
            case .tf: return .tf
            case .torch, .torchvision: return .torch
            case .none: return .none
            }
        }
    }

    /// The pixel preprocessing the weights expect.
    public var inputPreprocessing: Preprocessing { preprocessing.preprocessing }

    /// A checksum as a publisher states it.
    public struct Checksum: Codable, Sendable, Equatable {
        public enum Algorithm: String, Codable, Sendable, CaseIterable {
            /// MD5 of the whole file.
            case md5
            /// SHA-256 of the whole file.
            case sha256
            /// The given hexadecimal digits begin the file's SHA-256 (torchvision names its
            /// files so, and torch.hub checks them).
            case sha256Prefix = "sha256-prefix"

            /// The digest to compute for this check.
            var digest: FileDigest.Algorithm { self == .md5 ? .md5 : .sha256 }

            /// Whether `actual`, a whole digest, satisfies the stated `value`.
            func accepts(_ actual: String, stated value: String) -> Bool {
                self == .sha256Prefix ? !value.isEmpty && actual.hasPrefix(value.lowercased()) : actual == value.lowercased()
            }
        }

        public var algorithm: Algorithm
        public var value: String

        public init(algorithm: Algorithm, value: String) {
            self.algorithm = algorithm
            self.value = value
        }
    }

    /// torchvision's evaluation transforms.
    public struct Transforms: Codable, Sendable, Equatable {
        public enum Interpolation: String, Codable, Sendable, CaseIterable {
            case bilinear, bicubic, nearest
        }

        public var resize: Int?
        public var crop: Int?
        public var interpolation: Interpolation?
        public var mean: [Double]?
        public var std: [Double]?

        public init(resize: Int?, crop: Int?, interpolation: Interpolation?, mean: [Double]?, std: [Double]?) {
            self.resize = resize
            self.crop = crop
            self.interpolation = interpolation
            self.mean = mean
            self.std = std
        }
    }

    /// Published accuracy in percent: ImageNet-1K validation, or for zoo's own weights the
    /// CIFAR-10 test set.
    public struct Metrics: Codable, Sendable, Equatable {
        public var top1: Double?
        public var top5: Double?

        public init(top1: Double?, top5: Double?) {
            self.top1 = top1
            self.top5 = top5
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, architecture, flavor, publisher, format, file, url, bundled, checksum, classes, transforms, parameters, metrics, license,
             origin, notes, preprocessing
        case includeTop = "include_top"
        case classList = "class_list"
        case inputSize = "input_size"
    }

    public func encode(to encoder: Encoder) throws {
        // Every field the schema requires is written, as null when empty, so that a manifest
        // re-encodes to itself.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(architecture, forKey: .architecture)
        try container.encode(flavor, forKey: .flavor)
        try container.encode(publisher, forKey: .publisher)
        try container.encode(format, forKey: .format)
        try container.encode(file, forKey: .file)
        try container.encode(url, forKey: .url)
        try container.encodeIfPresent(bundled, forKey: .bundled)
        try container.encode(checksum, forKey: .checksum)
        try container.encode(includeTop, forKey: .includeTop)
        try container.encode(classes, forKey: .classes)
        try container.encode(classList, forKey: .classList)
        try container.encode(inputSize, forKey: .inputSize)
        try container.encode(preprocessing, forKey: .preprocessing)
        try container.encode(transforms, forKey: .transforms)
        try container.encode(parameters, forKey: .parameters)
        try container.encode(metrics, forKey: .metrics)
        try container.encode(license, forKey: .license)
        try container.encode(origin, forKey: .origin)
        try container.encode(notes, forKey: .notes)
    }

    /// The architecture the manifest names, looked up in the registry now.
    public func resolvedArchitecture() throws -> Architecture {
        do {
            return try Architecture(named: architecture)
        } catch {
            throw CatalogError.unknownArchitecture(weightSet: name, architecture: architecture, reason: "\(error)")
        }
    }

    /// The class names of the classifier's outputs, in index order, when the manifest names a
    /// class list.
    public var classNames: [String]? { classList?.names }

    /// Checks `file` against the stated checksum, reading it in pieces; throws naming the file
    /// and both digests when they differ. Without a stated checksum the file is accepted as is.
    public func verify(_ file: URL) throws {
        guard let checksum else { return }
        let actual = try FileDigest.hexadecimal(checksum.algorithm.digest, of: file)
        try check(actual, for: file.path, against: checksum)
    }

    /// Checks bytes in memory (a built-in file, here called `path`) against the stated checksum.
    public func verify(_ bytes: UnsafeRawBufferPointer, path: String) throws {
        guard let checksum else { return }
        try check(FileDigest.hexadecimal(checksum.algorithm.digest, of: bytes), for: path, against: checksum)
    }

    private func check(_ actual: String, for path: String, against checksum: Checksum) throws {
        guard checksum.algorithm.accepts(actual, stated: checksum.value) else {
            throw CatalogError.checksumMismatch(file: path, weightSet: name, algorithm: checksum.algorithm,
                                                expected: checksum.value.lowercased(), actual: actual)
        }
    }
}

/// A list of class names that zoo ships (`zoo/classes/<name>.txt`, one name per line, in the
/// order of the classifier's outputs), built into the library.
public enum ClassList: String, Codable, Sendable, CaseIterable {
    /// The 1000 ImageNet-1k classes in the index order of Keras's and torchvision's weights,
    /// as torchvision names them (`_IMAGENET_CATEGORIES`).
    case imagenet1k = "imagenet-1k"

    /// The names, in index order.
    public var names: [String] {
        let path = "classes/\(rawValue).txt"
        // A test checks that every list is built in and has no blank lines.
        guard let text = EmbeddedFiles.text(path) else { preconditionFailure("zoo's class list \(path) is not built in: run scripts/embed-catalog") }
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}
