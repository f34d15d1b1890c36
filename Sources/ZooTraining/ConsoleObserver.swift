import Foundation

/// Reports a training run on the console: one line per epoch (time, training loss and
/// accuracy, validation loss and accuracy) on standard output, and on a terminal a progress bar
/// with the time left on standard error. Off a terminal (a log file, CI) only the lines appear.
public final class ConsoleObserver: TrainingObserver {
    private let isTerminal: Bool
    private var epochStart = Date()
    private var lastDraw = Date.distantPast

    public init(progressBar: Bool? = nil) {
        isTerminal = progressBar ?? (isatty(STDERR_FILENO) != 0)
    }

    public func epochStarted(_ epoch: Int, of total: Int, batches: Int) {
        epochStart = Date()
        lastDraw = .distantPast
    }

    public func batchFinished(_ batch: Int, of total: Int, loss: Float) {
        guard isTerminal, Date().timeIntervalSince(lastDraw) > 0.2 || batch == total else { return }
        lastDraw = Date()
        let elapsed = Date().timeIntervalSince(epochStart)
        let remaining = elapsed / Double(batch) * Double(total - batch)
        let width = 30
        let filled = Int(Double(width) * Double(batch) / Double(max(total, 1)))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let line = String(format: "\r  [%@] %d/%d  loss %.4f  %@ left ", bar, batch, total, loss, Self.duration(remaining))
        FileHandle.standardError.write(Data(line.utf8))
    }

    public func epochFinished(_ record: EpochRecord, of total: Int) {
        if isTerminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        var line = String(format: "epoch %3d/%d  %6.1fs  train loss %.4f acc %5.1f%%", record.epoch, total, record.seconds,
                          record.trainingLoss, 100 * record.trainingAccuracy)
        if let loss = record.validationLoss, let accuracy = record.validationAccuracy {
            line += String(format: "  val loss %.4f acc %5.1f%%", loss, 100 * accuracy)
        }
        line += String(format: "  lr %.3g", record.learningRate)
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    public func note(_ message: String) {
        FileHandle.standardOutput.write(Data((message + "\n").utf8))
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let whole = Int(seconds.rounded())
        return whole >= 3600 ? String(format: "%dh%02dm", whole / 3600, whole / 60 % 60)
            : whole >= 60 ? String(format: "%dm%02ds", whole / 60, whole % 60) : "\(whole)s"
    }
}
