import CDNNL

/// The arithmetic a job asks for: `--precision f32|bf16|auto`.
public enum Precision: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// Everything in f32.
    case f32
    /// Mixed precision: bf16 activations and convolution and matrix-product inputs, f32
    /// weights, optimizer state, batch-norm statistics, logits and losses.
    case bf16
    /// bf16 where the CPU computes it natively (AVX512_BF16 or AMX), f32 elsewhere.
    case auto

    public var description: String { rawValue }

    /// What this request means on this CPU.
    public func resolved() -> ResolvedPrecision {
        let cpu = CPUCapabilities.instructionSet
        switch self {
        case .f32:
            return ResolvedPrecision(requested: self, activationType: .float32, note: nil)
        case .bf16 where CPUCapabilities.hasNativeBFloat16, .auto where CPUCapabilities.hasNativeBFloat16:
            return ResolvedPrecision(requested: self, activationType: .bfloat16,
                                     note: self == .auto ? "auto chose bf16: oneDNN runs \(cpu), which has native bf16" : nil)
        case .bf16, .auto:
            // oneDNN would run bf16 below AVX512_BF16 through emulation or its reference kernels,
            // slower than f32: the request falls back rather than silently running slow code.
            return ResolvedPrecision(requested: self, activationType: .float32,
                                     note: "\(self == .auto ? "auto chose f32" : "bf16 is not native here, running f32"): "
                                         + "oneDNN runs \(cpu), without AVX512_BF16 or AMX")
        }
    }
}

/// A ``Precision`` resolved for this CPU: the activations' element type, and a line for the
/// user when the choice is not simply what was asked.
public struct ResolvedPrecision: Sendable, Hashable {
    /// What the user asked for.
    public var requested: Precision
    /// The element type activations get.
    public var activationType: ElementType
    /// Why `auto` chose what it did, or why `bf16` fell back to f32; nil for a plain f32 or bf16.
    public var note: String?

    /// The precision that runs: `f32` or `bf16`, never `auto`.
    public var effective: Precision { activationType == .bfloat16 ? .bf16 : .f32 }
}

/// What oneDNN can use on this CPU.
public enum CPUCapabilities {
    /// oneDNN's instruction set for its kernels: the CPU's best, or lower where
    /// `ONEDNN_MAX_CPU_ISA` caps it (`avx2`, `avx512_core`, `avx512_core_bf16`, `avx512_core_amx`, ...).
    public static var instructionSet: String {
        switch effectiveISA {
        case dnnl_cpu_isa_sse41: return "sse41"
        case dnnl_cpu_isa_avx: return "avx"
        case dnnl_cpu_isa_avx2: return "avx2"
        case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni"
        case dnnl_cpu_isa_avx512_core: return "avx512_core"
        case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni"
        case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16"
        case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx"
        default: return "isa 0x\(String(effectiveISA.rawValue, radix: 16))"
        }
    }

    /// Whether oneDNN's bf16 kernels run on native instructions (AVX512_BF16 or AMX).
    public static var hasNativeBFloat16: Bool {
        effectiveISA == dnnl_cpu_isa_avx512_core_bf16 || effectiveISA == dnnl_cpu_isa_avx512_core_amx
    }

    private static var effectiveISA: dnnl_cpu_isa_t {
        _ = DNNL.engine  // oneDNN reads ONEDNN_MAX_CPU_ISA when it first starts
        return dnnl_get_effective_cpu_isa()
    }
}
