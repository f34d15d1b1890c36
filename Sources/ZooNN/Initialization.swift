import Synchronization
import ZooTensor

/// How a new layer's weights are drawn.
public enum Initializer: Sendable {
    /// All zeros.
    case zeros
    /// All ones.
    case ones
    /// He (Kaiming) normal for ReLU networks: standard deviation `sqrt(2 / fanIn)`.
    case heNormal
    /// LeCun normal for self-normalizing (SELU) networks: standard deviation `sqrt(1 / fanIn)`,
    /// as PyTorch's SELU notes advise (Keras's `lecun_normal` truncates the same normal at two
    /// deviations).
    case lecunNormal
    /// Glorot (Xavier) uniform, Keras's default: uniform in `±sqrt(6 / (fanIn + fanOut))`.
    case glorotUniform
    /// PyTorch's default for conv and linear layers: uniform in `±1 / sqrt(fanIn)`.
    case pytorchDefault

    /// A tensor of `shape` drawn from this initializer. `fanIn` and `fanOut` count the inputs
    /// and outputs of one unit (for a convolution weight `[O, I, KH, KW]`: `I*KH*KW` and
    /// `O*KH*KW`).
    public func tensor(_ shape: [Int], fanIn: Int, fanOut: Int) -> Tensor {
        if Initialization.isSkipping { return Tensor.zeros(shape) }
        let count = shape.reduce(1, *)
        let values: [Float] = Initialization.withGenerator { generator in
            switch self {
            case .zeros: return [Float](repeating: 0, count: count)
            case .ones: return [Float](repeating: 1, count: count)
            case .heNormal:
                return generator.normalSamples(count, deviation: (2 / Float(max(fanIn, 1))).squareRoot())
            case .lecunNormal:
                return generator.normalSamples(count, deviation: (1 / Float(max(fanIn, 1))).squareRoot())
            case .glorotUniform:
                return Self.uniform(count, limit: (6 / Float(max(fanIn + fanOut, 1))).squareRoot(), &generator)
            case .pytorchDefault:
                return Self.uniform(count, limit: 1 / Float(max(fanIn, 1)).squareRoot(), &generator)
            }
        }
        // Shapes come from layer constructors, which validate them.
        return (try? Tensor(shape: shape, values: values)) ?? Tensor.zeros(shape)
    }

    private static func uniform(_ count: Int, limit: Float, _ generator: inout SeededGenerator) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        for index in values.indices { values[index] = (generator.nextUnitFloat() * 2 - 1) * limit }
        return values
    }
}

/// The random source new layers draw their weights from. Building the same model after the
/// same ``seed(_:)`` gives the same weights.
public enum Initialization {
    private static let generator = Mutex(SeededGenerator(seed: 0))
    private static let skipping = Mutex(0)

    /// Runs `body` with every initializer giving zeros: for models whose weights are about to
    /// be loaded from a file, where drawing hundreds of millions of random values is wasted.
    public static func skippingRandomness<R>(_ body: () throws -> R) rethrows -> R {
        skipping.withLock { $0 += 1 }
        defer { skipping.withLock { $0 -= 1 } }
        return try body()
    }

    static var isSkipping: Bool { skipping.withLock { $0 > 0 } }

    /// Restarts the weight random source.
    public static func seed(_ seed: UInt64) {
        generator.withLock { $0 = SeededGenerator(seed: seed) }
    }

    static func withGenerator<R>(_ body: (inout SeededGenerator) -> R) -> R {
        generator.withLock { body(&$0) }
    }
}
