import Foundation
import ZooWeights

/// One epoch of a training run.
public struct EpochRecord: Codable, Sendable, Equatable {
    public var epoch: Int
    public var seconds: Double
    public var learningRate: Float
    public var trainableParameters: Int
    public var trainingLoss: Float
    public var trainingAccuracy: Float
    public var trainingTop5: Float
    public var validationLoss: Float?
    public var validationAccuracy: Float?
    public var validationTop5: Float?

    /// A record, for observers and tests that make their own.
    public init(epoch: Int, seconds: Double, learningRate: Float, trainableParameters: Int, trainingLoss: Float,
                trainingAccuracy: Float, trainingTop5: Float, validationLoss: Float? = nil, validationAccuracy: Float? = nil,
                validationTop5: Float? = nil) {
        self.epoch = epoch
        self.seconds = seconds
        self.learningRate = learningRate
        self.trainableParameters = trainableParameters
        self.trainingLoss = trainingLoss
        self.trainingAccuracy = trainingAccuracy
        self.trainingTop5 = trainingTop5
        self.validationLoss = validationLoss
        self.validationAccuracy = validationAccuracy
        self.validationTop5 = validationTop5
    }

    enum CodingKeys: String, CodingKey {
        case epoch, seconds
        case learningRate = "learning_rate"
        case trainableParameters = "trainable_parameters"
        case trainingLoss = "train_loss"
        case trainingAccuracy = "train_accuracy"
        case trainingTop5 = "train_top5"
        case validationLoss = "val_loss"
        case validationAccuracy = "val_accuracy"
        case validationTop5 = "val_top5"
    }

    static let csvHeader = "epoch,seconds,learning_rate,trainable_parameters,train_loss,train_accuracy,train_top5,val_loss,val_accuracy,val_top5"

    var csvRow: String {
        func optional(_ value: Float?) -> String { value.map { "\($0)" } ?? "" }
        return "\(epoch),\(String(format: "%.3f", seconds)),\(learningRate),\(trainableParameters),\(trainingLoss),\(trainingAccuracy),"
            + "\(trainingTop5),\(optional(validationLoss)),\(optional(validationAccuracy)),\(optional(validationTop5))"
    }
}

/// The per-epoch history of a run, written as `history.csv` and `history.json`.
public struct TrainingHistory: Codable, Sendable, Equatable {
    public var epochs: [EpochRecord] = []

    public init(epochs: [EpochRecord] = []) { self.epochs = epochs }

    /// Writes both files atomically into `folder`.
    public func write(to folder: URL) throws {
        let csv = ([EpochRecord.csvHeader] + epochs.map(\.csvRow)).joined(separator: "\n") + "\n"
        try AtomicFile.write(Data(csv.utf8), to: folder.appendingPathComponent("history.csv"))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(self), to: folder.appendingPathComponent("history.json"))
    }
}
