/// The parity formula of `converters/make_model_references.py` and
/// `converters/make_training_step_references.py`: deterministic weights from a tensor's source
/// name and element index, so tests rebuild what the converters filled the real frameworks with.
public enum ParityFormula {
    /// 32-bit FNV-1a of the text's UTF-8 bytes.
    public static func fnv1a32(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }

    /// The `lowbias32` integer hash.
    public static func lowbias32(_ value: UInt32) -> UInt32 {
        var x = value
        x ^= x >> 16
        x = x &* 0x7feb_352d
        x ^= x >> 15
        x = x &* 0x846c_a68b
        x ^= x >> 16
        return x
    }

    /// The values of a tensor, row-major over its source shape.
    public static func values(name: String, count: Int, role: String, fanIn: Int?) -> [Float] {
        let seed = lowbias32(fnv1a32(name))
        let gain = fanIn.map { (6.0 / Double($0)).squareRoot() } ?? 0
        return (0..<count).map { index in
            let u = (Double(lowbias32(UInt32(truncatingIfNeeded: index) ^ seed)) + 0.5) * 0x1p-31 - 1
            switch role {
            case "kernel": return Float(u * gain)
            case "bias", "bn_beta", "bn_mean": return Float(0.05 * u)
            case "bn_gamma": return Float(1.0 + 0.1 * u)
            case "bn_gamma_damped": return Float(0.25 + 0.05 * u)
            case "se_gate_bias": return Float(3.0 + 0.05 * u)
            case "se_hard_gate_bias": return Float(1.5 + 0.05 * u)
            case "bn_gamma_mbconv": return Float(0.6 + 0.05 * u)
            case "input_mean": return Float(0.0002 * u)
            case "input_var": return Float(1.5e-5 * (1.0 + 0.1 * u))
            case "bn_gamma_raised": return Float(1.15 + 0.1 * u)
            case "bn_var": return Float(1.25 + 0.25 * u)
            default: return 0
            }
        }
    }
}
