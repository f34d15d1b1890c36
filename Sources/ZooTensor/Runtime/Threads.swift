import CDNNL
import Foundation
import Synchronization

/// The size of the one thread pool that runs every operation.
///
/// oneDNN runs on OpenMP here; zoo uses no other compute pool, so two pools never compete for
/// the same cores. The default is every core this process may use, or `ZOO_THREADS` (then
/// `OMP_NUM_THREADS`) when set.
public enum Threads {
    private static let state = Mutex<(count: Int, generation: Int)>((defaultCount, 0))

    /// The number of threads operations run on. Setting it takes effect for the next operation
    /// on every thread.
    public static var count: Int {
        get { state.withLock { $0.count } }
        set {
            let count = max(1, newValue)
            state.withLock { $0 = (count, $0.generation + 1) }
        }
    }

    static var current: (count: Int, generation: Int) { state.withLock { $0 } }

    /// The count used when nothing sets one: `ZOO_THREADS`, then `OMP_NUM_THREADS`, then the
    /// number of cores available to this process.
    public static var defaultCount: Int {
        let environment = ProcessInfo.processInfo.environment
        for name in ["ZOO_THREADS", "OMP_NUM_THREADS"] {
            if let value = environment[name], let n = Int(value.trimmingCharacters(in: .whitespaces)), n > 0 {
                return n
            }
        }
        return max(1, ProcessInfo.processInfo.activeProcessorCount)
    }
}
