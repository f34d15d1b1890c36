/// A tensor a model holds as state: a learned weight, or a running statistic that forward
/// passes update. Its value keeps a canonical layout (row-major: OIHW for convolutions); an
/// operation that prefers another layout reorders it once and reuses that copy until the
/// value changes. After a backward pass, ``gradient`` holds the gradient in the same layout.
public final class Parameter: @unchecked Sendable {
    /// What a parameter is for.
    public enum Role: Sendable {
        /// Learned by gradient descent (weights, biases, batch-norm scale and shift).
        case learned
        /// Updated by forward passes in training, never by gradients (batch-norm running
        /// mean and variance). Never trainable.
        case runningStatistic
    }

    /// The current value, never traced.
    public var value: Tensor {
        didSet { value = value.detached() }
    }
    /// The gradient accumulated by backward passes since the last ``zeroGradient()``.
    public var gradient: Tensor?
    public let role: Role
    private var trainable: Bool

    /// Whether backward passes compute a gradient for this parameter. A frozen parameter is a
    /// constant to the tape: no gradient work is done for it. Always false for running
    /// statistics.
    public var isTrainable: Bool {
        get { role == .learned && trainable }
        set { trainable = newValue }
    }

    public init(_ value: Tensor, role: Role = .learned, trainable: Bool = true) {
        self.value = value.detached()
        self.role = role
        self.trainable = trainable
    }

    /// The parameter's shape.
    public var shape: [Int] { value.shape }

    /// Forgets the accumulated gradient.
    public func zeroGradient() { gradient = nil }
}

/// Marks a tensor as part of a tape's graph: the slot its gradient accumulates in.
final class Trace {
    weak var tape: GradientTape?
    let slot: Int

    init(tape: GradientTape, slot: Int) {
        self.tape = tape
        self.slot = slot
    }
}

/// Reverse-mode automatic differentiation as a tape of explicit backward functions.
///
/// Operations on traced tensors append an entry holding what their backward function needs.
/// An operation none of whose inputs is traced records nothing and keeps nothing, so a network
/// whose bottom is frozen pays for backward only from its first trainable layer up. The
/// backward pass frees each entry's saved tensors and each consumed gradient as it goes.
///
/// ```swift
/// let tape = GradientTape()
/// let w = tape.watch(weight)                    // weight: Parameter
/// let loss = try softmaxCrossEntropy(logits: dense(x, weight: w), labels: labels)
/// try tape.backward(loss)                        // weight.gradient now holds dLoss/dWeight
/// ```
public final class GradientTape {
    struct Entry {
        let operation: String
        /// The slot of each input whose gradient is wanted, nil for the others.
        let inputSlots: [Int?]
        /// The layout each input had, so gradients come back in it.
        let inputLayouts: [Layout]
        let outputSlot: Int
        let backward: (_ outputGradient: Tensor, _ needed: [Bool]) throws -> [Tensor?]
    }

    private var entries: [Entry] = []
    private var slotCount = 0
    private var parameterSlots: [ObjectIdentifier: (slot: Int, parameter: Parameter)] = [:]
    private var watchedGradients: [Int: Tensor] = [:]
    private var finished = false

    public init() {}

    /// Number of recorded operations (for tests and diagnostics).
    public var recordedOperationCount: Int { entries.count }

    private func newTrace() -> Trace {
        defer { slotCount += 1 }
        return Trace(tape: self, slot: slotCount)
    }

    /// The parameter's value, traced so that its gradient accumulates into the parameter;
    /// the untraced value when the parameter is frozen.
    public func watch(_ parameter: Parameter) -> Tensor {
        guard parameter.isTrainable else { return parameter.value }
        let id = ObjectIdentifier(parameter)
        if let known = parameterSlots[id] {
            return Tensor(shape: parameter.value.shape, buffer: parameter.value.buffer,
                          trace: Trace(tape: self, slot: known.slot))
        }
        let trace = newTrace()
        parameterSlots[id] = (trace.slot, parameter)
        return Tensor(shape: parameter.value.shape, buffer: parameter.value.buffer, trace: trace)
    }

    /// A traced copy of `tensor` whose gradient ``gradient(for:)`` returns after backward.
    public func watch(_ tensor: Tensor) -> Tensor {
        Tensor(shape: tensor.shape, buffer: tensor.buffer, trace: newTrace())
    }

    /// The gradient that reached a tensor returned by ``watch(_:)-(Tensor)``, or nil if none did.
    public func gradient(for tensor: Tensor) -> Tensor? {
        guard let trace = tensor.trace, trace.tape === self else { return nil }
        return watchedGradients[trace.slot]
    }

    /// Records an operation. Returns `output` traced when some input is traced on a tape, or
    /// unchanged (and records nothing) when none is.
    static func record(_ operation: String, inputs: [Tensor], output: Tensor,
                       backward: @escaping (_ outputGradient: Tensor, _ needed: [Bool]) throws -> [Tensor?]) throws -> Tensor {
        guard let tape = try tape(of: inputs, operation) else { return output }
        let slots = inputs.map { $0.trace?.tape === tape ? $0.trace!.slot : nil }
        let trace = tape.newTrace()
        tape.entries.append(Entry(operation: operation, inputSlots: slots, inputLayouts: inputs.map(\.layout),
                                  outputSlot: trace.slot, backward: backward))
        var traced = output
        traced.trace = trace
        return traced
    }

    /// The one tape the traced inputs share, nil when none is traced.
    static func tape(of inputs: [Tensor], _ operation: String) throws -> GradientTape? {
        var found: GradientTape?
        for input in inputs {
            guard let tape = input.trace?.tape else { continue }
            if let found, found !== tape { throw TensorError.mixedTapes(operation: operation) }
            found = tape
        }
        if let found, found.finished {
            throw TensorError.invalidArgument(operation: operation, message: "the gradient tape was already used for a backward pass")
        }
        return found
    }

    /// Runs the recorded operations backward from `output`, seeded with `seed` (ones when nil;
    /// `output` is usually a scalar loss). Gradients of watched parameters are added to their
    /// ``Parameter/gradient``. A tape runs backward once.
    public func backward(_ output: Tensor, seed: Tensor? = nil) throws {
        guard let trace = output.trace, trace.tape === self else {
            throw TensorError.invalidArgument(operation: "GradientTape.backward", message: "the output was not recorded on this tape")
        }
        guard !finished else {
            throw TensorError.invalidArgument(operation: "GradientTape.backward", message: "the tape was already used for a backward pass")
        }
        finished = true
        let start = try seed.map { seed -> Tensor in
            guard seed.shape == output.shape else {
                throw TensorError.shapeMismatch(operation: "GradientTape.backward", expected: "the seed has the output's shape",
                                                lhs: output.shape, rhs: seed.shape)
            }
            return try seed.detached().reordered(to: output.layout)
        } ?? Tensor.filled(output.shape, 1).reordered(to: output.layout)

        var gradients: [Int: Tensor] = [trace.slot: start]
        while let entry = entries.popLast() {
            guard let outputGradient = gradients.removeValue(forKey: entry.outputSlot) else { continue }
            let needed = entry.inputSlots.map { $0 != nil }
            let inputGradients = try entry.backward(outputGradient, needed)
            for (index, slot) in entry.inputSlots.enumerated() {
                guard let slot, index < inputGradients.count, let gradient = inputGradients[index] else { continue }
                let aligned = try gradient.detached().reordered(to: entry.inputLayouts[index], operation: entry.operation + " backward")
                gradients[slot] = try gradients[slot].map { try accumulate($0, aligned) } ?? aligned
            }
        }
        for (slot, parameter) in parameterSlots.values {
            guard let gradient = gradients.removeValue(forKey: slot) else { continue }
            let canonical = try gradient.reordered(to: parameter.value.layout)
            parameter.gradient = try parameter.gradient.map { try accumulate($0, canonical) } ?? canonical
        }
        watchedGradients = gradients
        parameterSlots.removeAll()
    }
}

/// `a + b` for two untraced tensors of one shape and layout.
func accumulate(_ a: Tensor, _ b: Tensor) throws -> Tensor {
    try binary(.add, a.detached(), b.detached())
}
