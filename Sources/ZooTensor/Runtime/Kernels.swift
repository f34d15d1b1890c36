import Synchronization

/// Which oneDNN kernels the engine's operations run: for tests and diagnostics that check an
/// operation gets a fast kernel (`jit:avx512_core`, `brg:avx512_core`, `jit:uni`) rather than
/// a reference one (`ref:any`), many times slower. The same names appear in oneDNN's own log
/// (`ONEDNN_VERBOSE=1`), which prints every primitive of the process.
public enum Kernels {
    /// One run of a oneDNN primitive.
    public struct Run: Sendable, Equatable, CustomStringConvertible {
        /// The zoo operation that ran it (`conv2d backward weights`, `sigmoid`, `reorder`, ...).
        public let operation: String
        /// oneDNN's name for the implementation it chose (`jit:avx512_core`, `ref:any`, ...).
        public let implementation: String

        /// Whether this is one of oneDNN's reference kernels (`ref:any`, `bnorm_ref:any`, ...).
        public var isReference: Bool { implementation.contains("ref") }

        public var description: String { "\(operation): \(implementation)" }
    }

    /// The runs of a recording, in order.
    final class Log: Sendable {
        private let runs = Mutex<[Run]>([])

        func append(_ run: Run) { runs.withLock { $0.append(run) } }
        var all: [Run] { runs.withLock { $0 } }
    }

    @TaskLocal static var activeLog: Log?

    /// Runs `body` and returns its result with every primitive run it made (in this task or
    /// thread, not in others it starts), in order.
    public static func recording<T>(_ body: () throws -> T) rethrows -> (result: T, runs: [Run]) {
        let log = Log()
        let result = try $activeLog.withValue(log, operation: body)
        return (result, log.all)
    }
}
