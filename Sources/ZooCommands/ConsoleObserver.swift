import Foundation
import ZooTraining

/// Reports a training run on the console: one line per epoch (time, training loss and
/// accuracy, validation loss and accuracy) on standard output, and on a terminal a progress bar
/// with the time left on standard error. Off a terminal (a log file, CI) only the lines appear.
///
/// Every line and every redraw of the bar is one `write` on its file descriptor, after
/// flushing what `print` left in the C library's buffers: so in a log that takes both streams
/// (`zoo finetune ... > log 2>&1`) the program's own prints, the run's lines and the bar come
/// in the order they were made.
public final class ConsoleObserver: TrainingObserver {
    private let isTerminal: Bool
    private let output: Int32
    private let errors: Int32
    private var epochStart = Date()
    private var lastDraw = Date.distantPast

    /// Lines go to `output`, the progress bar to `errors` (file descriptors: standard output
    /// and standard error by default); the bar is drawn when `progressBar` says so, by default
    /// when `errors` is a terminal.
    public init(progressBar: Bool? = nil, output: Int32 = STDOUT_FILENO, errors: Int32 = STDERR_FILENO) {
        isTerminal = progressBar ?? (isatty(errors) != 0)
        self.output = output
        self.errors = errors
    }

    /// Writes `text` to `descriptor` in one call (more only when the system takes part of it),
    /// after everything buffered by `print` and the C library.
    private func emit(_ text: String, to descriptor: Int32) {
        fflush(nil)
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            bytes = bytes.dropFirst(written)
        }
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
        emit(line, to: errors)
    }

    public func epochFinished(_ record: EpochRecord, of total: Int) {
        if isTerminal { emit("\r\u{1B}[K", to: errors) }
        var line = String(format: "epoch %3d/%d  %6.1fs  train loss %.4f acc %5.1f%%", record.epoch, total, record.seconds,
                          record.trainingLoss, 100 * record.trainingAccuracy)
        if let loss = record.validationLoss, let accuracy = record.validationAccuracy {
            line += String(format: "  val loss %.4f acc %5.1f%%", loss, 100 * accuracy)
        }
        line += String(format: "  lr %.3g", record.learningRate)
        emit(line + "\n", to: output)
    }

    public func note(_ message: String) {
        emit(message + "\n", to: output)
    }

    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite else { return "?" }
        let whole = Int(seconds.rounded())
        return whole >= 3600 ? String(format: "%dh%02dm", whole / 3600, whole / 60 % 60)
            : whole >= 60 ? String(format: "%dm%02ds", whole / 60, whole % 60) : "\(whole)s"
    }
}
