import CDNNL
import Synchronization

/// A buffer with its layout: the unit oneDNN primitives read and write.
struct Buffer: @unchecked Sendable {
    let storage: Storage
    let layout: Layout

    /// A fresh, uninitialized buffer for `layout`.
    init(_ layout: Layout) {
        self.layout = layout
        self.storage = Storage(byteCount: max(layout.byteCount, 4))
    }

    init(storage: Storage, layout: Layout) {
        self.storage = storage
        self.layout = layout
    }
}

/// A created oneDNN primitive together with its primitive descriptor.
///
/// Every primitive is made with a user-provided scratchpad: left to oneDNN, each primitive would
/// hold its own work space for its whole life (hundreds of primitives in a training step, over a
/// gigabyte for DenseNet201); this way each run borrows one from the buffer pool.
final class Primitive: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let handle: dnnl_primitive_t
    /// The layout of the scratch space a run needs, nil when it needs none.
    let scratchpadLayout: Layout?

    /// Takes ownership of `descriptor` and creates the primitive from it.
    init(descriptor: dnnl_primitive_desc_t, operation: String) throws {
        var primitive: dnnl_primitive_t?
        let status = dnnl_primitive_create(&primitive, descriptor)
        guard status == dnnl_success, let primitive else {
            dnnl_primitive_desc_destroy(descriptor)
            throw TensorError.backend(operation: operation, status: statusName(status), detail: "creating the primitive")
        }
        self.descriptor = descriptor
        self.handle = primitive
        let scratchpad = Layout(dnnl_primitive_desc_query_md(descriptor, dnnl_query_scratchpad_md, 0).pointee)
        scratchpadLayout = scratchpad.byteCount > 0 ? scratchpad : nil
    }

    /// Creates a primitive descriptor from an operation descriptor and wraps it.
    convenience init(operation: String, descriptor opDesc: UnsafeRawPointer, attributes: dnnl_primitive_attr_t? = nil,
                     hint: Primitive? = nil) throws {
        var pd: dnnl_primitive_desc_t?
        let status = try withScratchpadAttributes(attributes, operation) {
            dnnl_primitive_desc_create(&pd, opDesc, $0, DNNL.engine, hint?.descriptor)
        }
        guard status == dnnl_success, let pd else {
            throw TensorError.backend(operation: operation, status: statusName(status), detail: "no implementation for these shapes")
        }
        try self.init(descriptor: pd, operation: operation)
    }

    deinit {
        dnnl_primitive_destroy(handle)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// The layout the primitive uses for one of its arguments (`dnnl_query_src_md`, ...).
    func layout(_ query: dnnl_query_t, _ index: Int32 = 0) -> Layout {
        Layout(dnnl_primitive_desc_query_md(descriptor, query, index).pointee)
    }

    /// oneDNN's name for the implementation it chose (`jit:avx2`, `ref:any`, ...).
    var implementation: String {
        var name: UnsafePointer<CChar>?
        guard dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, &name) == dnnl_success, let name else { return "unknown" }
        return String(cString: name)
    }

    /// Whether oneDNN fell back to a reference, plain-GEMM or plain C++ kernel (`ref:any`,
    /// `gemm:jit`, `simple:any`, `nspc_bnorm:any`), many times slower than its JIT kernels.
    var isSlowFallback: Bool {
        let name = implementation
        return name.hasPrefix("ref") || name.contains("gemm") || name.hasPrefix("simple") || name.hasSuffix(":any")
    }

    /// Whether the primitive needs a workspace buffer between forward and backward.
    var workspaceLayout: Layout? {
        let layout = self.layout(dnnl_query_workspace_md)
        return layout.desc.ndims == 0 ? nil : layout
    }

    /// Runs the primitive on the calling thread's stream and waits for it.
    func execute(_ operation: String, _ arguments: [(Int32, Buffer)]) throws {
        Kernels.activeLog?.append(Kernels.Run(operation: operation, implementation: implementation))
        var memories: [dnnl_memory_t?] = []
        memories.reserveCapacity(arguments.count)
        defer { for memory in memories { dnnl_memory_destroy(memory) } }
        var execArgs: [dnnl_exec_arg_t] = []
        execArgs.reserveCapacity(arguments.count)
        let scratchpad = scratchpadLayout.map { Buffer($0) }
        for (argument, buffer) in arguments + (scratchpad.map { [(DNNL_ARG_SCRATCHPAD, $0)] } ?? []) {
            var memory: dnnl_memory_t?
            var desc = buffer.layout.desc
            try check(dnnl_memory_create(&memory, &desc, DNNL.engine, buffer.storage.pointer), operation, "wrapping a buffer")
            memories.append(memory)
            execArgs.append(dnnl_exec_arg_t(arg: argument, memory: memory))
        }
        let stream = DNNL.stream
        try check(dnnl_primitive_execute(handle, stream, Int32(execArgs.count), execArgs), operation)
        try check(dnnl_stream_wait(stream), operation)
        withExtendedLifetime((arguments, scratchpad)) {}
    }
}

/// Calls `body` with `attributes` (or new empty ones) set to a user-provided scratchpad.
func withScratchpadAttributes<R>(_ attributes: dnnl_primitive_attr_t?, _ operation: String,
                                 _ body: (dnnl_primitive_attr_t) throws -> R) throws -> R {
    var owned: dnnl_primitive_attr_t?
    if attributes == nil { try check(dnnl_primitive_attr_create(&owned), operation, "creating attributes") }
    defer { if let owned { dnnl_primitive_attr_destroy(owned) } }
    let chosen = attributes ?? owned!
    try check(dnnl_primitive_attr_set_scratchpad_mode(chosen, dnnl_scratchpad_mode_user), operation, "setting the scratchpad mode")
    return try body(chosen)
}

/// Primitives created once per distinct configuration and reused.
///
/// Creating a primitive descriptor searches oneDNN's implementations and may JIT-compile a
/// kernel; a training step reuses the same few hundred configurations every step.
enum PrimitiveCache {
    private static let capacity = 4096
    private static let entries = Mutex<[PrimitiveKey: Primitive]>([:])

    /// The cached primitive for `key`, created with `make` on first use.
    static func primitive(_ key: PrimitiveKey, make: () throws -> Primitive) throws -> Primitive {
        if let hit = entries.withLock({ $0[key] }) { return hit }
        // oneDNN sizes a primitive's per-thread scratch space for the pool size at creation.
        ThreadContext.current.applyThreadCount()
        let created = try make()
        return entries.withLock { cache in
            if let raced = cache[key] { return raced }
            if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
            cache[key] = created
            return created
        }
    }
}

/// What identifies a primitive: the operation, its layouts and its scalar settings, and the
/// thread count it was created for.
struct PrimitiveKey: Hashable, Sendable {
    var words: [Int64]

    init(_ operation: StaticString, layouts: [Layout], _ settings: [Int64] = []) {
        var hasher = Hasher()
        hasher.combine(operation.description)
        words = [Int64(hasher.finalize()), Int64(Threads.current.count)]
        for layout in layouts {
            let key = layout.key.words
            words.append(Int64(key.count))
            words += key
        }
        words += settings
    }
}

/// Reorders `buffer` into `layout` (a copy), or returns it unchanged when already there.
/// Values are multiplied by `scale` on the way (quantizing and dequantizing int8).
func reorder(_ buffer: Buffer, to layout: Layout, scale: Float = 1, operation: String = "reorder") throws -> Buffer {
    if buffer.layout == layout, scale == 1 { return buffer }
    let result = Buffer(layout)
    try reorder(buffer, into: result, scale: scale, operation: operation)
    return result
}

/// Copies `source` into the existing `destination`, converting between their layouts and
/// multiplying by `scale` (rounding to nearest and saturating into integer types).
/// `destination` may describe part of a larger buffer (a sub-memory view).
func reorder(_ source: Buffer, into destination: Buffer, scale: Float = 1, operation: String = "reorder") throws {
    let key = PrimitiveKey("reorder", layouts: [source.layout, destination.layout], [Int64(scale.bitPattern)])
    let primitive = try PrimitiveCache.primitive(key) {
        var pd: dnnl_primitive_desc_t?
        var from = source.layout.desc
        var to = destination.layout.desc
        var owned: dnnl_primitive_attr_t?
        if scale != 1 {
            try check(dnnl_primitive_attr_create(&owned), operation, "creating attributes")
            try check(dnnl_primitive_attr_set_output_scales(owned, 1, 0, [scale]), operation, "setting the reorder's scale")
        }
        defer { if let owned { dnnl_primitive_attr_destroy(owned) } }
        try withScratchpadAttributes(owned, operation) { attributes in
            try check(dnnl_reorder_primitive_desc_create(&pd, &from, DNNL.engine, &to, DNNL.engine, attributes),
                      operation, "reorder \(source.layout) -> \(destination.layout)")
        }
        return try Primitive(descriptor: pd!, operation: operation)
    }
    try primitive.execute(operation, [(DNNL_ARG_FROM, source), (DNNL_ARG_TO, destination)])
}
