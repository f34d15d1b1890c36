import Foundation
import ZooTensor

/// Updates parameters from their gradients.
///
/// Optimizers keep per-parameter state (momentum, moment estimates) keyed by the parameter's
/// name, so their state can be saved in a checkpoint and restored into a rebuilt model.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next step; schedules set it.
    var learningRate: Float { get set }
    /// Steps taken so far.
    var stepCount: Int { get }
    /// Applies one update to every trainable parameter that has a gradient, then clears the
    /// gradients.
    func step(_ parameters: [(name: String, parameter: Parameter)]) throws
    /// The state as named arrays, for checkpoints.
    func state() -> [String: [Float]]
    /// Restores a state from ``state()``.
    func restore(_ state: [String: [Float]]) throws
}

/// How weight decay enters an update.
public enum WeightDecay: Sendable, Equatable {
    case none
    /// L2 regularization: `decay * value` is added to the gradient (PyTorch's `weight_decay` in
    /// SGD, Adam, RMSprop; Keras's kernel regularizer `l2(decay / 2)`).
    case l2(Float)
    /// Decoupled: `value -= learningRate * decay * value` besides the gradient step (AdamW,
    /// Keras 3's `weight_decay` argument).
    case decoupled(Float)
}

/// Gradient clipping before the update.
public enum GradientClipping: Sendable, Equatable {
    case none
    /// Scale all gradients together so their global L2 norm is at most this (`clipnorm`-style
    /// over all parameters, as `torch.nn.utils.clip_grad_norm_`).
    case globalNorm(Float)
    /// Clamp every gradient element into `[-value, value]` (Keras `clipvalue`).
    case value(Float)
}

/// The optimizers zoo offers, with PyTorch's update rules and defaults unless stated.
public enum OptimizerKind: Sendable, Equatable {
    /// `v = momentum * v + g; p -= lr * v` (Nesterov: `p -= lr * (g + momentum * v)`).
    case sgd(momentum: Float = 0.9, nesterov: Bool = false)
    /// `s = rho * s + (1 - rho) * g^2; p -= lr * g / (sqrt(s) + epsilon)` (PyTorch; Keras puts
    /// epsilon inside the square root and defaults to rho 0.9, epsilon 1e-7).
    case rmsprop(rho: Float = 0.99, epsilon: Float = 1e-8, momentum: Float = 0)
    /// Adam with bias correction: `p -= lr * m̂ / (sqrt(v̂) + epsilon)`.
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8)
    /// Adamax: `u = max(beta2 * u, |g|); p -= lr / (1 - beta1^t) * m / (u + epsilon)`.
    case adamax(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8)
}

/// One optimizer for every kind: the per-parameter arithmetic differs, the bookkeeping does not.
public final class GradientDescent: Optimizer {
    public let kind: OptimizerKind
    public var learningRate: Float
    public let weightDecay: WeightDecay
    public let clipping: GradientClipping
    public private(set) var stepCount = 0
    /// Per parameter name: a factor on the learning rate (1 where absent). Its weight decay per
    /// step stays the others' (the L2 coefficient is divided by the factor), as airbench's
    /// higher rate for batch-norm shifts does.
    public var rateScales: [String: Float] = [:]
    /// Per parameter: the kind's buffers (momentum; first and second moments).
    private var buffers: [String: [[Float]]] = [:]

    public init(_ kind: OptimizerKind, learningRate: Float, weightDecay: WeightDecay = .none, clipping: GradientClipping = .none) {
        self.kind = kind
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.clipping = clipping
    }

    /// Every kind keeps at most two buffers per parameter.
    private let bufferCount = 2

    public func step(_ parameters: [(name: String, parameter: Parameter)]) throws {
        let updating = parameters.filter { $0.parameter.isTrainable && $0.parameter.gradient != nil }
        let gradients = try updating.map { try $0.parameter.gradient!.rowMajor() }
        let clip = try gradientClip(gradients)
        stepCount += 1
        let t = Float(stepCount)
        for ((name, parameter), gradient) in zip(updating, gradients) {
            let count = parameter.value.elementCount
            // Taken out of the dictionary so the updates below write in place instead of copying.
            var state = buffers.removeValue(forKey: name) ?? [[Float]](repeating: [Float](repeating: 0, count: count), count: bufferCount)
            guard state.count == bufferCount, state[0].count == count else {
                throw TrainingError.invalidOptimizerState(parameter: name, reason: "has \(state.first?.count ?? 0) values, the parameter \(count)")
            }
            var first = state[0]
            // A checkpoint of a kind with one buffer may hold the second empty.
            var second = state[1].count == count ? state[1] : [Float](repeating: 0, count: count)
            state = []
            // The new value is written once, straight from the old one and the gradient.
            let value = try parameter.value.withUnsafeBufferPointer { old in
                try gradient.withUnsafeBufferPointer { g in
                    try Tensor(shape: parameter.shape) { p in
                        _ = p.initialize(fromContentsOf: old)
                        first.withUnsafeMutableBufferPointer { m in
                            second.withUnsafeMutableBufferPointer { v in update(p, g, m, v, t: t, clip: clip, rateScale: rateScales[name] ?? 1) }
                        }
                    }
                }
            }
            buffers[name] = [first, second]
            parameter.value = value
            parameter.zeroGradient()
        }
    }

    /// How gradients are clipped before an update: each element is scaled by `scale`, then
    /// clamped into `[-limit, limit]`.
    private struct Clip { var scale: Float = 1, limit: Float = .infinity }

    private func gradientClip(_ gradients: [Tensor]) throws -> Clip {
        switch clipping {
        case .none:
            return Clip()
        case let .value(limit):
            return Clip(limit: limit)
        case let .globalNorm(limit):
            let squares = try gradients.reduce(Double(0)) { total, gradient in
                try gradient.withUnsafeBufferPointer { g in g.reduce(total) { $0 + Double($1) * Double($1) } }
            }
            let norm = squares.squareRoot()
            return norm > Double(limit) ? Clip(scale: Float(Double(limit) / norm)) : Clip()
        }
    }

    /// The kind's update of one parameter's values `p` from its gradient `g` (clipped by
    /// `clip`), with its buffers `m` and `v`, at step `t` (from 1), at `rateScale` times the rate.
    private func update(_ p: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, _ m: UnsafeMutableBufferPointer<Float>,
                        _ v: UnsafeMutableBufferPointer<Float>, t: Float, clip: Clip, rateScale: Float) {
        let decay: Float
        switch weightDecay {
        case let .l2(rate): decay = rate / rateScale
        case let .decoupled(rate):
            decay = 0
            let factor = 1 - learningRate * rate
            for i in p.indices { p[i] *= factor }
        case .none: decay = 0
        }
        let learningRate = learningRate * rateScale
        let (scale, limit) = (clip.scale, clip.limit)
        // Element `i`'s gradient as every rule sees it: clipped, then with L2 decay added.
        func effectiveGradient(_ i: Int) -> Float { min(max(g[i] * scale, -limit), limit) + decay * p[i] }
        switch kind {
        case let .sgd(momentum, nesterov):
            for i in p.indices {
                let gradient = effectiveGradient(i)
                m[i] = momentum * m[i] + gradient
                p[i] -= learningRate * (nesterov ? gradient + momentum * m[i] : m[i])
            }
        case let .rmsprop(rho, epsilon, momentum):
            for i in p.indices {
                let gradient = effectiveGradient(i)
                m[i] = rho * m[i] + (1 - rho) * gradient * gradient
                let step = gradient / (m[i].squareRoot() + epsilon)
                if momentum > 0 {
                    v[i] = momentum * v[i] + step
                    p[i] -= learningRate * v[i]
                } else {
                    p[i] -= learningRate * step
                }
            }
        case let .adam(beta1, beta2, epsilon):
            let correction1 = 1 - pow(beta1, t), correction2 = 1 - pow(beta2, t)
            for i in p.indices {
                let gradient = effectiveGradient(i)
                m[i] = beta1 * m[i] + (1 - beta1) * gradient
                v[i] = beta2 * v[i] + (1 - beta2) * gradient * gradient
                p[i] -= learningRate * (m[i] / correction1) / ((v[i] / correction2).squareRoot() + epsilon)
            }
        case let .adamax(beta1, beta2, epsilon):
            let rate = learningRate / (1 - pow(beta1, t))
            for i in p.indices {
                let gradient = effectiveGradient(i)
                m[i] = beta1 * m[i] + (1 - beta1) * gradient
                v[i] = max(beta2 * v[i], abs(gradient))
                p[i] -= rate * m[i] / (v[i] + epsilon)
            }
        }
    }

    public func state() -> [String: [Float]] {
        var result: [String: [Float]] = ["step": [Float(stepCount)], "learning_rate": [learningRate]]
        for (name, state) in buffers {
            for (index, buffer) in state.enumerated() { result["\(name).\(index)"] = buffer }
        }
        return result
    }

    public func restore(_ state: [String: [Float]]) throws {
        guard let step = state["step"]?.first else { throw TrainingError.invalidOptimizerState(parameter: nil, reason: "has no step count") }
        stepCount = Int(step)
        if let rate = state["learning_rate"]?.first { learningRate = rate }
        var restored: [String: [[Float]]] = [:]
        for (key, values) in state where key != "step" && key != "learning_rate" {
            guard let dot = key.lastIndex(of: "."), let index = Int(key[key.index(after: dot)...]), index < bufferCount else {
                throw TrainingError.invalidOptimizerState(parameter: nil, reason: "key '\(key)' is not '<parameter>.<buffer>'")
            }
            let name = String(key[..<dot])
            var buffers = restored[name] ?? [[Float]](repeating: [], count: bufferCount)
            buffers[index] = values
            restored[name] = buffers
        }
        for (name, buffers) in restored where buffers.contains(where: { $0.count != buffers[0].count }) {
            throw TrainingError.invalidOptimizerState(parameter: name, reason: "has buffers of different sizes")
        }
        buffers = restored
    }
}
