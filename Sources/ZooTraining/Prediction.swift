import Foundation
import ZooTensor
import ZooData
import ZooModels

/// A trained classifier ready to use: a model, its class names, input size and preprocessing.
public struct Classifier {
    public var model: ImageModel
    public var classNames: [String]
    public var imageSize: Int
    public var preprocessing: Preprocessing
    public var resize: ResizeMethod = .keras
    /// The activations' element type: f32, or bf16 for mixed precision (see ``Precision``).
    public var precision: ElementType = .float32

    public init(model: ImageModel, classNames: [String], imageSize: Int, preprocessing: Preprocessing) {
        self.model = model
        self.classNames = classNames
        self.imageSize = imageSize
        self.preprocessing = preprocessing
    }

    /// The classifier a zoo checkpoint holds.
    public init(checkpoint url: URL) throws {
        let checkpoint = try Checkpoint.load(url)
        self.init(model: checkpoint.model, classNames: checkpoint.info.classNames, imageSize: checkpoint.info.imageSize,
                  preprocessing: checkpoint.info.preprocessing)
    }

    /// A framework's weight file on an architecture; its classifier must have one output per
    /// class of `classNames`.
    public init(architecture: Architecture, flavor: Flavor, weights url: URL, classNames: [String], imageSize: Int,
                preprocessing: Preprocessing) throws {
        let (model, _) = try architecture.load(flavor: flavor, weights: url)
        guard let outputs = model.head?.outputFeatures else {
            throw TrainingError.noClassifier(file: url)
        }
        guard outputs == classNames.count else {
            throw TrainingError.outputsDoNotMatchClasses(file: url, outputs: outputs, classes: classNames.count)
        }
        self.init(model: model, classNames: classNames, imageSize: imageSize, preprocessing: preprocessing)
    }

    /// The classifier of loaded weights (a checkpoint, a weight set, a framework file): its
    /// outputs named by `classNames`, or by the classes the weights name (a checkpoint's, a
    /// weight set's class list, ImageNet-1k's for a 1000-output framework classifier).
    public init(_ loaded: LoadedWeights, classNames: [String]? = nil) throws {
        guard let outputs = loaded.model.head?.outputFeatures else { throw TrainingError.noClassifier(file: loaded.file) }
        guard let classNames = classNames ?? loaded.classNames else {
            throw TrainingError.noClassList(weightSet: loaded.weightSet?.name ?? loaded.file.path, hasClassifier: true)
        }
        guard outputs == classNames.count else {
            throw TrainingError.outputsDoNotMatchClasses(file: loaded.file, outputs: outputs, classes: classNames.count)
        }
        self.init(model: loaded.model, classNames: classNames, imageSize: loaded.inputSize, preprocessing: loaded.preprocessing)
    }

    /// Metrics on `dataset` (its classes matched to the classifier's by name), each image's
    /// prediction averaged over the views of `testTimeAugmentation`.
    public func evaluate(_ dataset: any Dataset, batchSize: Int = 32, workers: Int = 2, skipDamaged: Bool = false,
                         testTimeAugmentation: TestTimeAugmentation = .none) throws -> MetricsSummary {
        var data = dataset
        if data.classNames != classNames {
            let unknown = data.classNames.filter { !classNames.contains($0) }
            guard unknown.isEmpty else {
                throw TrainingError.unknownClasses(unknown)
            }
            data = Union([EmptyDataset(classNames: classNames), data])
        }
        let metrics = try Evaluation.run(model, on: data, size: imageSize, batchSize: batchSize, preprocessing: preprocessing,
                                         transform: AugmentationSpecification.evaluationTransform(size: imageSize, resize: resize),
                                         workers: workers, skipDamaged: skipDamaged, testTimeAugmentation: testTimeAugmentation, precision: precision)
        return MetricsSummary(metrics, classNames: classNames)
    }

    /// The `top` most probable classes of each image, most probable first, with their index in
    /// the classifier's outputs and their probabilities (a softmax over all outputs), as Keras's
    /// `decode_predictions` gives them.
    public func predict(_ images: [Image], top: Int = 5) throws -> [[(index: Int, className: String, probability: Float)]] {
        guard !images.isEmpty else { return [] }
        let resize = Resize(size: imageSize, method: resize)
        var generator = SeededGenerator(seed: 0)
        let prepared = images.map { image -> FloatImage in
            var resized = resize.apply(image.floatImage, generator: &generator)
            preprocessing.apply(nhwc: &resized.values)
            return resized
        }
        let batch = try Tensor.imageBatch(count: prepared.count, height: imageSize, width: imageSize) { writer in
            for (index, image) in prepared.enumerated() { image.values.withUnsafeBufferPointer { writer.write(image: index, nhwc: $0) } }
        }
        let probabilities = try softmax(model(batch, .inference(precision))).array()
        let classes = classNames.count
        return (0..<images.count).map { row in
            let scores = Array(probabilities[row * classes..<(row + 1) * classes])
            return scores.indices.sorted { scores[$0] > scores[$1] }.prefix(top).map { ($0, classNames[$0], scores[$0]) }
        }
    }
}

/// No samples, only class names: puts a classifier's label space first in a ``Union``.
struct EmptyDataset: Dataset {
    let classNames: [String]
    var count: Int { 0 }
    func label(at index: Int) -> Int { 0 }
    func sampleID(at index: Int) -> String { "" }
    func image(at index: Int) throws -> Image { throw DataError("empty dataset", "has no samples") }
}
