import Foundation
import ZooTensor
import ZooWeights
import ZooData
import ZooModels
import ZooTraining

/// `zoo extract` as a call: the outputs of named layers for a dataset or an image array, from
/// weights resolved by ``ZooTraining/LoadedWeights``, written to a resumable feature file.
public struct ExtractionJob {
    /// Where the images come from.
    public enum Images {
        /// A float32 `.npy` array `[N, H, W, 3]` of RGB pixels (0-255), used at its size.
        case array(URL)
        /// A dataset's training or test split, each image resized to `size` (default: the
        /// architecture's input size) with `resize`.
        case dataset(DataOptions, testSplit: Bool, size: Int?, resize: ResizeConvention)
    }

    public var architecture: Architecture
    /// A weight file, a weight set, or a zoo checkpoint.
    public var weights: String
    public var images: Images
    /// Layers of the layer list; empty for the model's output.
    public var layers: [String] = []
    /// Overrides of what the weights imply.
    public var flavor: Flavor?
    /// The preprocessing: by default the weights' own; otherwise the architecture's usual one
    /// for a dataset, and none for an array (whose values are taken as they are).
    public var preprocessing: Preprocessing?
    public var batchSize = 32
    /// Threads reading images of a dataset.
    public var workers = 2
    /// Load a weight file even if it does not fit exactly (see ``ZooModels/WeightImport``).
    public var strict = true
    public var renameRules: [RenameRule] = []
    /// The arithmetic, resolved for this CPU: f32, bf16, auto, or int8 for weights `zoo quantize`
    /// calibrated (the file holds f32 features either way).
    public var precision: Precision = .f32

    public init(architecture: Architecture, weights: String, images: Images) {
        self.architecture = architecture
        self.weights = weights
        self.images = images
    }

    /// What a run did: the file's header and the loaded weights.
    public struct Result {
        public var header: FeatureFileHeader
        public var weights: LoadedWeights
        /// Samples already in the file from an earlier, interrupted run of the same job.
        public var resumedAfter: Int
    }

    /// Writes the features to `file` (`.h5`, `.npy`, `.safetensors`); continues an interrupted
    /// run of the same job. `progress` hears (done, total) after each batch.
    @discardableResult
    public func run(to file: URL, progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let loaded = try LoadedWeights.load(weights, architecture: architecture, flavor: flavor, strict: strict, rules: renameRules)
        let resolved = precision.resolved()
        try loaded.prepare(for: resolved)
        let source: FeatureExtraction.Source
        let description: String
        let imageSize: Int?
        let mode: Preprocessing
        switch images {
        case let .array(url):
            let reader = try WeightFiles.open(url)
            guard let array = reader.tensors.first, reader.format == .npy else {
                throw ModelError.invalidArgument("\(url.path): expected a .npy array")
            }
            source = .array(values: try reader.floats(array.name), shape: array.shape, name: url.lastPathComponent)
            description = url.path
            imageSize = array.shape.count == 4 && array.shape[1] == array.shape[2] ? array.shape[1] : nil
            mode = preprocessing ?? loaded.statedPreprocessing ?? .none
        case let .dataset(options, testSplit, size, resize):
            let sources = try DataSource(options.sources)
            var dataset: any Dataset = sources.training
            if testSplit {
                guard let test = sources.test else {
                    throw ModelError.invalidArgument("\(options.sources.joined(separator: " ")) has no test split")
                }
                dataset = test
            }
            if let classes = options.classes { dataset = try dataset.classes(classes) }
            if let first = options.firstClasses { dataset = try dataset.firstClasses(first) }
            if let limit = options.limitPerClass { dataset = dataset.limitPerClass(limit) }
            let size = size ?? architecture.defaultInputSize
            source = .dataset(dataset, size: size, transform: AugmentationSpecification.evaluationTransform(size: size, resize: .bilinear(resize)),
                              workers: workers)
            description = options.sources.joined(separator: " ") + " (\(testSplit ? "test" : "train"), \(resize.rawValue) resizing)"
            imageSize = size
            mode = preprocessing ?? loaded.preprocessing
        }
        let header = FeatureFileHeader(architecture: loaded.architecture.name, flavor: loaded.flavor, weights: weights,
                                       imageSize: imageSize, preprocessing: mode, source: description)
        var resumedAfter: Int?
        let written = try FeatureExtraction.extract(loaded.model, from: source, layers: layers.isEmpty ? [FeatureExtraction.outputName] : layers,
                                                    to: file, batchSize: batchSize, header: header, preprocessing: mode,
                                                    precision: resolved.activationType) { done, total in
            if resumedAfter == nil { resumedAfter = done }
            progress?(done, total)
        }
        var result = loaded
        result.preprocessing = mode
        return Result(header: written, weights: result, resumedAfter: resumedAfter ?? 0)
    }
}
