import CDNNL

/// The arithmetic a job asks for: `--precision f32|bf16|auto|int8`.
public enum Precision: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// Everything in f32.
    case f32
    /// Mixed precision: bf16 activations and convolution and matrix-product inputs, f32
    /// weights, optimizer state, batch-norm statistics, logits and losses.
    case bf16
    /// bf16 where the CPU computes it natively (AVX512_BF16 or AMX), f32 elsewhere.
    case auto
    /// Inference with int8 convolutions, as a model's quantization (`zoo quantize`) calibrated
    /// them, where the CPU has integer dot products (AVX512_VNNI, AVX_VNNI or AMX); the other
    /// layers run in bf16 where native, else f32.
    case int8

    public var description: String { rawValue }

    /// What this request means on this CPU.
    public func resolved() -> ResolvedPrecision {
        let cpu = CPUCapabilities.instructionSet
        switch self {
        case .f32:
            return ResolvedPrecision(requested: self, activationType: .float32, note: nil)
        case .int8 where CPUCapabilities.hasNativeInt8:
            let floatType: ElementType = CPUCapabilities.hasNativeBFloat16 ? .bfloat16 : .float32
            return ResolvedPrecision(requested: self, activationType: floatType, quantized: true,
                                     note: floatType == .float32 ? "int8: the layers that stay floating point run f32 (oneDNN runs \(cpu), without native bf16)" : nil)
        case .int8:
            // Without dot-product instructions oneDNN's int8 kernels multiply pairs into 16 bits
            // (which can saturate) and gain little: the float path runs instead.
            return ResolvedPrecision(requested: self, activationType: .float32,
                                     note: "int8 is not native here, running f32: oneDNN runs \(cpu), without AVX512_VNNI, AVX_VNNI or AMX")
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
    /// The element type activations get (those of the layers that stay floating point, with int8).
    public var activationType: ElementType
    /// Whether quantized convolutions run in int8.
    public var quantized: Bool
    /// Why `auto` chose what it did, or why `bf16` or `int8` fell back to f32; nil for a plain f32 or bf16.
    public var note: String?

    public init(requested: Precision, activationType: ElementType, quantized: Bool = false, note: String?) {
        self.requested = requested
        self.activationType = activationType
        self.quantized = quantized
        self.note = note
    }

    /// The precision that runs: `f32`, `bf16` or `int8`, never `auto`.
    public var effective: Precision { quantized ? .int8 : activationType == .bfloat16 ? .bf16 : .f32 }
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

    /// Whether oneDNN runs AVX-512 kernels (`avx512_core` and up). Below it (AVX2 and older: an
    /// AMD EPYC of the Zen 3 generation, say) oneDNN 2.6 has no bf16 convolution or batch norm
    /// at all, only conversions (``Precision`` resolves bf16 to f32 there anyway), and some
    /// kernels are slower in kind (grouped convolutions with under 8 channels per group use GEMM).
    public static var hasAVX512: Bool {
        [dnnl_cpu_isa_avx512_core, dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx].contains(effectiveISA)
    }

    /// Whether oneDNN's int8 convolutions run on dot-product instructions (AVX512_VNNI, AVX_VNNI
    /// or AMX). Without them oneDNN multiplies pairs of u8 x s8 products into 16 bits, which can
    /// saturate with full-range weights, and runs slower than bf16.
    public static var hasNativeInt8: Bool {
        [dnnl_cpu_isa_avx2_vnni, dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core_bf16, dnnl_cpu_isa_avx512_core_amx]
            .contains(effectiveISA)
    }

    private static var effectiveISA: dnnl_cpu_isa_t {
        _ = DNNL.engine  // oneDNN reads ONEDNN_MAX_CPU_ISA when it first starts
        return dnnl_get_effective_cpu_isa()
    }
}
