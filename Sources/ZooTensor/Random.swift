import Foundation

/// A fast, seedable random number generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in zoo (initial weights, dropout masks, augmentation, shuffling) draws
/// from one of these, so a run with a fixed seed repeats exactly.
public struct SeededGenerator: RandomNumberGenerator, Sendable, Equatable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var mix = seed
        func next() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (next(), next(), next(), next())
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform float in [0, 1).
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// A standard normal sample (Box-Muller).
    public mutating func nextNormal() -> Float {
        let u1 = max(nextUnitFloat(), 0x1p-24), u2 = nextUnitFloat()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * .pi * u2)
    }

    /// `count` normal samples with the given standard deviation, two per uniform pair
    /// (Box-Muller in single precision: initializing a large model draws hundreds of millions).
    public mutating func normalSamples(_ count: Int, deviation: Float = 1) -> [Float] {
        var result = [Float](repeating: 0, count: count)
        var index = 0
        while index < count {
            let bits = next()
            let u1 = max(Float(bits >> 40) * 0x1p-24, 0x1p-24), u2 = Float((bits >> 16) & 0xFF_FFFF) * 0x1p-24
            let radius = (-2 * logf(u1)).squareRoot() * deviation
            let angle = 2 * Float.pi * u2
            result[index] = radius * cosf(angle)
            if index + 1 < count { result[index + 1] = radius * sinf(angle) }
            index += 2
        }
        return result
    }

    public static func == (lhs: SeededGenerator, rhs: SeededGenerator) -> Bool {
        lhs.state == rhs.state
    }
}

@inline(__always) private func _log(_ x: Float) -> Float { Float(log(Double(x))) }
@inline(__always) private func _cos(_ x: Float) -> Float { Float(cos(Double(x))) }
