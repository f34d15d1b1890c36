import Foundation
import Testing
import ZooTraining
import ZooCommands

@Suite("Console output")
struct ConsoleObserverTests {
    func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("zoo-console-\(UUID().uuidString)")
    }

    @Test("the console observer writes lines and the progress bar in the order they come, each in one write")
    func consoleOrder() throws {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let log = folder.appendingPathComponent("log")
        // One file for both streams, as `> log 2>&1` gives.
        let descriptor = open(log.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        #expect(descriptor >= 0)
        let errors = dup(descriptor)
        defer { close(descriptor); close(errors) }
        let observer = ConsoleObserver(progressBar: true, output: descriptor, errors: errors)
        observer.note("first note")
        observer.epochStarted(0, of: 1, batches: 2)
        observer.batchFinished(2, of: 2, loss: 0.5)
        observer.epochFinished(EpochRecord(epoch: 1, seconds: 1, learningRate: 0.1, trainableParameters: 10, trainingLoss: 0.5,
                                           trainingAccuracy: 0.5, trainingTop5: 1), of: 1)
        observer.note("last note")
        let text = try String(contentsOf: log, encoding: .utf8)
        let order = ["first note\n", "\r  [", "2/2", "\r\u{1B}[K", "epoch   1/1", "last note\n"].map { text.range(of: $0)?.lowerBound }
        #expect(order.allSatisfy { $0 != nil }, "\(text.debugDescription)")
        #expect(zip(order, order.dropFirst()).allSatisfy { $0! < $1! }, "\(text.debugDescription)")
    }
}
