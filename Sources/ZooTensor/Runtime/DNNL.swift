import CDNNL
import Foundation

/// The process-wide oneDNN CPU engine and the per-thread streams that run primitives on it.
///
/// oneDNN streams are not safe to use from several threads at once, so every thread that runs
/// an operation gets a stream of its own. The same per-thread record keeps the thread's OpenMP
/// pool size in step with ``Threads/count``: OpenMP keeps that setting per calling thread.
enum DNNL {
    /// The CPU engine every memory object and primitive is created on.
    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        let status = dnnl_engine_create(&engine, dnnl_cpu, 0)
        guard status == dnnl_success, let engine else {
            fatalError("oneDNN: could not create the CPU engine (status \(status.rawValue))")
        }
        return engine
    }()

    /// The calling thread's stream, created on first use.
    static var stream: dnnl_stream_t {
        let context = ThreadContext.current
        context.applyThreadCount()
        return context.stream
    }

    /// oneDNN's version, as `major.minor.patch`.
    static var version: String {
        guard let v = dnnl_version()?.pointee else { return "unknown" }
        return "\(v.major).\(v.minor).\(v.patch)"
    }
}

/// Per-thread state for running primitives: the thread's stream and the OpenMP pool size
/// last applied on this thread.
final class ThreadContext {
    let stream: dnnl_stream_t
    private var appliedGeneration = -1

    private init() {
        var stream: dnnl_stream_t?
        let status = dnnl_stream_create(&stream, DNNL.engine, dnnl_stream_default_flags.rawValue)
        guard status == dnnl_success, let stream else {
            fatalError("oneDNN: could not create a stream (status \(status.rawValue))")
        }
        self.stream = stream
    }

    deinit { dnnl_stream_destroy(stream) }

    /// Sets this thread's OpenMP pool size if ``Threads/count`` changed since the last call.
    func applyThreadCount() {
        let (count, generation) = Threads.current
        if generation != appliedGeneration {
            omp_set_num_threads(Int32(count))
            appliedGeneration = generation
        }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<ThreadContext>.fromOpaque(pointer).release()
        }
        return key
    }()

    static var current: ThreadContext {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<ThreadContext>.fromOpaque(pointer).takeUnretainedValue()
        }
        let context = ThreadContext()
        pthread_setspecific(key, Unmanaged.passRetained(context).toOpaque())
        return context
    }
}

/// Throws a ``TensorError/backend(operation:status:detail:)`` when a oneDNN call fails.
@inline(__always)
func check(_ status: dnnl_status_t, _ operation: @autoclosure () -> String, _ detail: @autoclosure () -> String = "") throws {
    if status != dnnl_success {
        throw TensorError.backend(operation: operation(), status: statusName(status), detail: detail())
    }
}

func statusName(_ status: dnnl_status_t) -> String {
    switch status {
    case dnnl_out_of_memory: return "out of memory"
    case dnnl_invalid_arguments: return "invalid arguments"
    case dnnl_unimplemented: return "unimplemented"
    case dnnl_iterator_ends: return "iterator ends"
    case dnnl_runtime_error: return "runtime error"
    case dnnl_not_required: return "not required"
    default: return "status \(status.rawValue)"
    }
}
