/// Classification results accumulated over batches: loss, top-1 and top-5 accuracy, the
/// confusion matrix and confidences.
import ZooTensor

public struct ClassificationMetrics: Sendable, Codable, Equatable {
    public let classCount: Int
    /// `confusion[true][predicted]`.
    public private(set) var confusion: [[Int]]
    public private(set) var count = 0
    public private(set) var top5Correct = 0
    private var lossSum: Double = 0
    private var confidenceSum: Double = 0

    public init(classes: Int) {
        classCount = classes
        confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
    }

    /// Adds a batch: row-major probabilities or logits `[N, classes]` (only their order matters
    /// for accuracy; confidence reads probabilities), labels, and the batch's mean loss.
    public mutating func add(scores: [Float], labels: [Int], meanLoss: Float, probabilities: [Float]? = nil) {
        for (row, label) in labels.enumerated() {
            let slice = scores[row * classCount..<(row + 1) * classCount]
            let ranked = slice.indices.sorted { slice[$0] > slice[$1] }.map { $0 - row * classCount }
            confusion[label][ranked[0]] += 1
            if ranked.prefix(5).contains(label) { top5Correct += 1 }
            if let probabilities { confidenceSum += Double(probabilities[row * classCount + ranked[0]]) }
        }
        lossSum += Double(meanLoss) * Double(labels.count)
        count += labels.count
    }

    public var meanLoss: Float { count == 0 ? 0 : Float(lossSum / Double(count)) }
    /// Top-1 accuracy.
    public var accuracy: Float { count == 0 ? 0 : Float(confusion.indices.reduce(0) { $0 + confusion[$1][$1] }) / Float(count) }
    /// Top-5 accuracy (top-k with k = min(5, classes)).
    public var top5: Float { count == 0 ? 0 : Float(top5Correct) / Float(count) }
    /// Mean probability of the predicted class (when probabilities were given).
    public var meanConfidence: Float { count == 0 ? 0 : Float(confidenceSum / Double(count)) }

    /// Accuracy within each true class (nan-free: 0 for a class without samples).
    public var perClassAccuracy: [Float] {
        confusion.indices.map { c in
            let total = confusion[c].reduce(0, +)
            return total == 0 ? 0 : Float(confusion[c][c]) / Float(total)
        }
    }

    /// Per class: precision (of the predictions of that class, the right ones), recall (of the
    /// samples of that class, those found) and F1. A class never predicted has precision 0.
    public var perClassPrecisionRecallF1: [(precision: Float, recall: Float, f1: Float)] {
        confusion.indices.map { c in
            let predicted = confusion.indices.reduce(0) { $0 + confusion[$1][c] }
            let actual = confusion[c].reduce(0, +)
            let precision = predicted == 0 ? 0 : Float(confusion[c][c]) / Float(predicted)
            let recall = actual == 0 ? 0 : Float(confusion[c][c]) / Float(actual)
            let f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
            return (precision, recall, f1)
        }
    }

    /// Unweighted means over classes (scikit-learn's `average='macro'`).
    public var macroPrecision: Float { mean(perClassPrecisionRecallF1.map(\.precision)) }
    public var macroRecall: Float { mean(perClassPrecisionRecallF1.map(\.recall)) }
    public var macroF1: Float { mean(perClassPrecisionRecallF1.map(\.f1)) }

    private func mean(_ values: [Float]) -> Float { values.isEmpty ? 0 : values.reduce(0, +) / Float(values.count) }
}
