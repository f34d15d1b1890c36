import Foundation
import ZooTensor
import ZooData
import ZooModels

/// Runs a model over a dataset in inference mode and gathers classification metrics.
public enum Evaluation {
    /// Metrics of `model` on `dataset`. With `mirrored`, each image is also seen mirrored
    /// left-right and the two predictions' probabilities are averaged (test-time augmentation);
    /// accuracy and confidence then come from the averaged probabilities, the loss from the plain
    /// images. Activations are of `precision` (logits and metrics are f32 either way).
    public static func run(_ model: ImageModel, on dataset: any Dataset, size: Int, batchSize: Int = 32, preprocessing: Preprocessing,
                           transform: DataLoader.SampleTransform? = nil, workers: Int = 2, skipDamaged: Bool = false,
                           mirrored: Bool = false, precision: ElementType = .float32) throws -> ClassificationMetrics {
        var options = DataLoader.Options(size: size, batchSize: batchSize)
        options.shuffle = false
        options.preprocessing = preprocessing
        options.transform = transform
        options.workers = workers
        options.skipDamaged = skipDamaged
        let plain = try DataLoader(dataset, options: options).epoch(0)
        var mirroredOptions = options
        mirroredOptions.transform = { image, generator in mirror(try transform?(image, &generator) ?? image) }
        let flipped = mirrored ? try DataLoader(dataset, options: mirroredOptions).epoch(0) : nil
        let classes = dataset.classNames.count
        var metrics = ClassificationMetrics(classes: classes)
        while let batch = try plain.next() {
            let logits = try model(batch.images, .inference(precision))
            guard logits.shape == [batch.labels.count, classes] else {
                throw TrainingError.outputsDoNotMatchClasses(file: nil, outputs: logits.shape.last ?? 0, classes: classes)
            }
            let loss = try softmaxCrossEntropy(logits: logits, labels: batch.labels).scalar()
            var probabilities = try softmax(logits).array()
            if let flipped, let other = try flipped.next() {
                let otherProbabilities = try softmax(model(other.images, .inference(precision))).array()
                for i in probabilities.indices { probabilities[i] = (probabilities[i] + otherProbabilities[i]) / 2 }
            }
            metrics.add(scores: probabilities, labels: batch.labels, meanLoss: loss, probabilities: probabilities)
        }
        return metrics
    }

    /// The image mirrored left-right.
    static func mirror(_ image: FloatImage) -> FloatImage {
        var result = image
        for row in 0..<image.height {
            for column in 0..<image.width {
                for channel in 0..<3 { result[row, column, channel] = image[row, image.width - 1 - column, channel] }
            }
        }
        return result
    }
}
