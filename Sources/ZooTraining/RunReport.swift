import Foundation
import ZooWeights
import ZooPlots

/// Classification results as files and `zoo evaluate --json` give them.
public struct MetricsSummary: Codable, Sendable, Equatable {
    public var samples: Int
    public var loss: Float
    public var accuracy: Float
    public var top5: Float
    /// Accuracy per class, by class name.
    public var perClass: [String: Float]
    /// Macro-averaged precision, recall and F1.
    public var precision: Float
    public var recall: Float
    public var f1: Float
    public var meanConfidence: Float
    public var classNames: [String]
    /// `confusion[true][predicted]`, in `classNames` order.
    public var confusion: [[Int]]

    enum CodingKeys: String, CodingKey {
        case samples, loss, accuracy, top5, precision, recall, f1, confusion
        case perClass = "per_class"
        case meanConfidence = "mean_confidence"
        case classNames = "class_names"
    }

    public init(_ metrics: ClassificationMetrics, classNames: [String]) {
        samples = metrics.count
        loss = metrics.meanLoss
        accuracy = metrics.accuracy
        top5 = metrics.top5
        perClass = Dictionary(uniqueKeysWithValues: zip(classNames, metrics.perClassAccuracy))
        precision = metrics.macroPrecision
        recall = metrics.macroRecall
        f1 = metrics.macroF1
        meanConfidence = metrics.meanConfidence
        self.classNames = classNames
        confusion = metrics.confusion
    }

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// Accuracy over a subset of the classes (the old and the new ones of an extended model).
    public func accuracy(ofClasses names: [String]) -> Float {
        let indices = names.compactMap { classNames.firstIndex(of: $0) }
        let total = indices.reduce(0) { $0 + confusion[$1].reduce(0, +) }
        let correct = indices.reduce(0) { $0 + confusion[$1][$1] }
        return total == 0 ? 0 : Float(correct) / Float(total)
    }
}

/// The report of a run: `metrics.json`, `report.md` and plots in `plots/`.
struct RunReport {
    let settings: FineTuneSettings
    let result: FineTuneResult

    func write(to folder: URL) throws {
        let plots = folder.appendingPathComponent("plots")
        try FileManager.default.createDirectory(at: plots, withIntermediateDirectories: true)
        let epochs = result.history.epochs
        func series(_ name: String, _ value: (EpochRecord) -> Float?, dashed: Bool = false) -> LineChart.Series {
            LineChart.Series(name: name, points: epochs.compactMap { record in value(record).map { (Double(record.epoch), Double($0)) } },
                             dashed: dashed)
        }
        let hasValidation = epochs.contains { $0.validationLoss != nil }
        try LineChart(title: "Loss", xLabel: "epoch", yLabel: "cross-entropy loss",
                      series: [series("training", \.trainingLoss)] + (hasValidation ? [series("validation", \.validationLoss, dashed: true)] : []))
            .write(to: plots.appendingPathComponent("loss.png"))
        try LineChart(title: "Accuracy", xLabel: "epoch", yLabel: "top-1 accuracy",
                      series: [series("training", \.trainingAccuracy)] + (hasValidation ? [series("validation", \.validationAccuracy, dashed: true)] : []),
                      yRange: 0...1)
            .write(to: plots.appendingPathComponent("accuracy.png"))
        var lines = [
            "# Fine-tuning report", "",
            "\(settings.architecture) (\(settings.flavor.rawValue) flavour) at \(settings.imageSize)x\(settings.imageSize), "
                + "head `\(settings.head)`, base layers unfrozen: `\(settings.unfreeze.text)`"
                + (settings.unfreezeSchedule.isEmpty ? "" : ", then " + settings.unfreezeSchedule.map { "`\($0.plan.text)` from epoch \($0.epoch + 1)" }.joined(separator: ", "))
                + ".",
            "Weights: \(settings.weights ?? "random initialization")" + (settings.extendFrom.map { "; classifier extended from `\($0)`" } ?? "") + ".",
            "Optimizer \(settings.optimizer.name), learning rate \(settings.optimizer.learningRate), schedule \(settings.schedule.kind), "
                + "batch \(settings.batchSize), \(epochs.count) of \(settings.epochs) epochs, seed \(settings.seed)"
                + (settings.data.sampler == .balanced ? ", class-balanced sampling" : "")
                + (settings.classWeights.map { weights in
                    "; class weights" + (settings.classWeighting.map { " (`\($0)`)" } ?? "") + ": "
                        + zip(settings.classNames, weights).map { String(format: "%@ %.3g", $0, $1) }.joined(separator: ", ")
                } ?? "") + ".", "",
            "## Training", "",
            "| epoch | seconds | learning rate | train loss | train accuracy | val loss | val accuracy |", "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in epochs {
            lines.append(String(format: "| %d | %.1f | %.3g | %.4f | %.1f%% | %@ | %@ |", r.epoch, r.seconds, r.learningRate, r.trainingLoss,
                                100 * r.trainingAccuracy, r.validationLoss.map { String(format: "%.4f", $0) } ?? "-",
                                r.validationAccuracy.map { String(format: "%.1f%%", 100 * $0) } ?? "-"))
        }
        lines += ["", "![loss](plots/loss.png)", "", "![accuracy](plots/accuracy.png)", ""]
        if let test = result.test {
            let summary = MetricsSummary(test, classNames: result.classNames)
            try AtomicFile.write(Data(summary.json.utf8), to: folder.appendingPathComponent("metrics.json"))
            try Heatmap(title: "Confusion matrix (test)", rowLabel: "true class", columnLabel: "predicted class",
                        labels: result.classNames, values: test.confusion).write(to: plots.appendingPathComponent("confusion.png"))
            try BarChart(title: "Test accuracy per class", valueLabel: "accuracy", labels: result.classNames,
                         values: test.perClassAccuracy.map(Double.init)).write(to: plots.appendingPathComponent("per_class_accuracy.png"))
            lines += [
                "## Test", "",
                String(format: "%d images: accuracy %.2f%%, top-5 %.2f%%, loss %.4f; macro precision %.3f, recall %.3f, F1 %.3f; "
                    + "mean confidence %.3f%@.", test.count, 100 * test.accuracy, 100 * test.top5, test.meanLoss, test.macroPrecision,
                    test.macroRecall, test.macroF1, test.meanConfidence, settings.testTimeAugmentation ? " (averaged with mirrored images)" : ""),
                "", "| class | accuracy | precision | recall | F1 |", "|---|---:|---:|---:|---:|",
            ]
            for (index, name) in result.classNames.enumerated() {
                let (precision, recall, f1) = test.perClassPrecisionRecallF1[index]
                lines.append(String(format: "| %@ | %.1f%% | %.3f | %.3f | %.3f |", name, 100 * test.perClassAccuracy[index], precision, recall, f1))
            }
            lines += ["", "![confusion matrix](plots/confusion.png)", "", "![accuracy per class](plots/per_class_accuracy.png)", ""]
        }
        try AtomicFile.write(Data(lines.joined(separator: "\n").utf8), to: folder.appendingPathComponent("report.md"))
    }
}
