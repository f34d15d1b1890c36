import Foundation
import ZooTensor
import ZooData
import ZooModels

/// Test-time augmentation: each image is seen in several views, and the views' predicted
/// probabilities are averaged with fixed weights.
public enum TestTimeAugmentation: String, Sendable, CaseIterable {
    /// The image alone.
    case none
    /// The image and its left-right mirror, half each.
    case mirror
    /// airbench's level 2: the mirror pair (half the weight), and the mirror pairs of the image
    /// moved by one pixel up-left and down-right (a quarter each): six views. The row and column
    /// moved in are the edge's own, as Keras's reflect fill gives (airbench's PyTorch reflection
    /// takes the next row in).
    case mirrorTranslate = "mirror-translate"

    /// The views: each one's weight and what it does to the image (nil: nothing).
    var views: [(weight: Float, transform: View?)] {
        let mirror: View = { $0.flipped(horizontally: true, vertically: false) }
        switch self {
        case .none: return [(1, nil)]
        case .mirror: return [(0.5, nil), (0.5, mirror)]
        case .mirrorTranslate:
            var views: [(weight: Float, transform: View?)] = [(0.25, nil), (0.25, mirror)]
            for pixels in [-1.0, 1.0] {
                let move: View = { $0.transformed(by: .translation(x: pixels, y: pixels), interpolation: .nearest, fillMode: .reflect) }
                views += [(0.125, move), (0.125, { mirror(move($0)) })]
            }
            return views
        }
    }

    typealias View = @Sendable (FloatImage) -> FloatImage
}

/// Runs a model over a dataset in inference mode and gathers classification metrics.
public enum Evaluation {
    /// Metrics of `model` on `dataset`. With test-time augmentation each image is seen in the
    /// views of `testTimeAugmentation` and their probabilities are averaged; accuracy and
    /// confidence then come from the averaged probabilities, the loss from the plain images.
    /// Activations are of `precision` (logits and metrics are f32 either way).
    public static func run(_ model: ImageModel, on dataset: any Dataset, size: Int, batchSize: Int = 32, preprocessing: Preprocessing,
                           transform: DataLoader.SampleTransform? = nil, workers: Int = 2, skipDamaged: Bool = false,
                           testTimeAugmentation: TestTimeAugmentation = .none, precision: ElementType = .float32) throws -> ClassificationMetrics {
        var options = DataLoader.Options(size: size, batchSize: batchSize)
        options.shuffle = false
        options.preprocessing = preprocessing
        options.workers = workers
        options.skipDamaged = skipDamaged
        // One loader per view, in step: the same images in the same order, each view's
        // transform applied after the evaluation transform (resizing).
        let views = try testTimeAugmentation.views.map { weight, view in
            var viewOptions = options
            if let view {
                viewOptions.transform = { @Sendable image, generator in view(try transform?(image, &generator) ?? image) }
            } else {
                viewOptions.transform = transform
            }
            return (weight, try DataLoader(dataset, options: viewOptions).epoch(0))
        }
        let classes = dataset.classNames.count
        var metrics = ClassificationMetrics(classes: classes)
        while let batch = try views[0].1.next() {
            let logits = try model(batch.images, .inference(precision))
            guard logits.shape == [batch.labels.count, classes] else {
                throw TrainingError.outputsDoNotMatchClasses(file: nil, outputs: logits.shape.last ?? 0, classes: classes)
            }
            let loss = try softmaxCrossEntropy(logits: logits, labels: batch.labels).scalar()
            var probabilities = try softmax(logits).array()
            for i in probabilities.indices { probabilities[i] *= views[0].0 }
            for (index, (weight, view)) in views.enumerated().dropFirst() {
                guard let other = try view.next() else { throw TrainingError.augmentedViewEndedEarly(view: index) }
                let viewProbabilities = try softmax(model(other.images, .inference(precision))).array()
                for i in probabilities.indices { probabilities[i] += weight * viewProbabilities[i] }
            }
            metrics.add(scores: probabilities, labels: batch.labels, meanLoss: loss, probabilities: probabilities)
        }
        return metrics
    }
}
