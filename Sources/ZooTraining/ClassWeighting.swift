import Foundation
import ZooData

/// Per-class loss weights for unbalanced data, as Keras's `class_weight` gives: each sample's loss
/// is multiplied by its class's weight (see `softmaxCrossEntropy(logits:labels:labelSmoothing:classWeights:)`).
/// Written `balanced` or a file's path in `config.json` and on the command line.
public enum ClassWeighting: Sendable, Equatable, TextCodable, CustomStringConvertible {
    /// scikit-learn's `compute_class_weight("balanced")`, the weights Keras's guide suggests:
    /// samples / (classes x the class's samples), so that every class weighs as much in total
    /// and the weights average 1 over the samples.
    case balanced
    /// A JSON object of class names to weights, `{"crocodile": 10, "snake": 10}`; classes it
    /// leaves out weigh 1.
    case file(String)

    /// Reads `balanced`, or takes anything else for a file's path.
    public init(parsing text: String) throws {
        guard !text.isEmpty else { throw TrainingError.invalidClassWeights(file: text, reason: "give balanced or a JSON file of class names to weights") }
        self = text == "balanced" ? .balanced : .file(text)
    }

    public var text: String {
        switch self {
        case .balanced: return "balanced"
        case let .file(path): return path
        }
    }

    public var description: String { text }

    /// The weight of each of `dataset`'s classes, in its class order.
    public func weights(for dataset: any Dataset) throws -> [Float] {
        switch self {
        case .balanced:
            return Self.balancedWeights(classCounts: dataset.classCounts)
        case let .file(path):
            return try Self.read(path, classNames: dataset.classNames)
        }
    }

    /// samples / (classes present x count) per class; a class without samples weighs 1 (it never
    /// contributes a loss).
    public static func balancedWeights(classCounts: [Int]) -> [Float] {
        let present = classCounts.filter { $0 > 0 }.count
        let samples = classCounts.reduce(0, +)
        return classCounts.map { $0 > 0 ? Float(Double(samples) / Double(present * $0)) : 1 }
    }

    /// The weights a class-weight file gives `classNames`.
    static func read(_ path: String, classNames: [String]) throws -> [Float] {
        let url = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        guard let data = try? Data(contentsOf: url) else {
            throw TrainingError.invalidClassWeights(file: path, reason: "cannot be read (is it a file? `balanced` is the other choice)")
        }
        guard let object = try? JSONDecoder().decode([String: Double].self, from: data) else {
            throw TrainingError.invalidClassWeights(file: path, reason: "is not a JSON object of class names to numbers, as {\"snake\": 10}")
        }
        var weights = [Float](repeating: 1, count: classNames.count)
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            guard let index = classNames.firstIndex(of: name) else {
                throw TrainingError.invalidClassWeights(file: path, reason: "names the class '\(name)', which the data lacks (its classes: \(classNames.joined(separator: ", ")))")
            }
            guard value.isFinite, value >= 0 else {
                throw TrainingError.invalidClassWeights(file: path, reason: "the weight of '\(name)' is \(value), not a finite number of at least 0")
            }
            weights[index] = Float(value)
        }
        return weights
    }
}
