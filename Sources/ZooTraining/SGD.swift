import ZooNN

/// Updates parameters from their gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next step.
    var learningRate: Float { get set }
    /// Applies one update to every trainable parameter that has a gradient, then clears the
    /// gradients.
    func step(_ parameters: [Parameter]) throws
}

/// Stochastic gradient descent with momentum, in PyTorch's formulation:
/// `velocity = momentum * velocity + (gradient + weightDecay * value)`, then
/// `value -= learningRate * velocity` (Nesterov: `value -= learningRate * (g + momentum * velocity)`).
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    /// L2 penalty added to the gradient (PyTorch's `weight_decay`).
    public let weightDecay: Float
    private var velocities: [ObjectIdentifier: [Float]] = [:]

    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [Parameter]) throws {
        for parameter in parameters where parameter.isTrainable {
            guard let gradient = parameter.gradient else { continue }
            var values = try parameter.value.array()
            let grads = try gradient.array()
            let id = ObjectIdentifier(parameter)
            var velocity = velocities[id] ?? [Float](repeating: 0, count: values.count)
            for i in values.indices {
                let g = grads[i] + weightDecay * values[i]
                velocity[i] = momentum * velocity[i] + g
                values[i] -= learningRate * (nesterov ? g + momentum * velocity[i] : velocity[i])
            }
            velocities[id] = velocity
            parameter.value = try Tensor(shape: parameter.shape, values: values)
            parameter.zeroGradient()
        }
    }
}
