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

    /// A sentence for a training or extraction run when other processes used the cores this
    /// process computes on (`othersCores`, from ``CPUMonitor``), or nil when they left them alone.
    ///
    /// The default stays every core, with OpenMP's default of spinning briefly between parallel
    /// regions: on a quiet machine that is the fastest choice by far. Measured here (2 cores,
    /// `zoo bench models`, images/s, MobileNetV2 inference / ResNet50 training at 96x96, batch
    /// 32): quiet, 2 threads 700 / 25.6, 1 thread 401 / 13.8, `OMP_WAIT_POLICY=passive` 439 / 23.4.
    /// With one core taken by `yes`: 2 threads 272 / 9.3, 1 thread 390 / 13.2, passive 298 / 12.7.
    /// With another zoo training beside it (two spinning OpenMP pools): 2 threads 69 / 6.1,
    /// 1 thread 301 / 10.2, passive 385 / 13.5. No one setting wins both ways, and a thread count
    /// that changed with the load would change results (oneDNN's reductions follow the thread
    /// count), so the run says what it saw and what to set.
    public static func sharingWarning(othersCores: Double?) -> String? {
        guard let others = othersCores, others > 0.5, count > 1 else { return nil }
        return String(format: "other processes used %.1f of the cores during this epoch, which slows every OpenMP thread of this one; "
                      + "for runs beside other work set ZOO_THREADS to the cores left free (here %d), or OMP_WAIT_POLICY=passive "
                      + "beside another zoo (see the README's 'Sharing the CPU')", others, max(1, count - Int(others.rounded())))
    }

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
