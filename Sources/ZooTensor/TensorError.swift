/// An error from a tensor operation. Every case names the operation, and shape errors carry the
/// shapes involved, so a message points at the layer and the tensors that disagree.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    /// Two shapes that must agree do not, for example a convolution's input channels and its
    /// weight's input channels.
    case shapeMismatch(operation: String, expected: String, lhs: [Int], rhs: [Int])
    /// A shape that is wrong on its own, for example a 3-D input to a 2-D convolution.
    case invalidShape(operation: String, shape: [Int], expected: String)
    /// An argument outside its allowed range (a stride of 0, a dropout rate of 1.5, ...).
    case invalidArgument(operation: String, message: String)
    /// Inputs recorded on two different gradient tapes were combined.
    case mixedTapes(operation: String)
    /// oneDNN refused or failed the operation.
    case backend(operation: String, status: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(operation, expected, lhs, rhs):
            return "\(operation): shapes \(lhs) and \(rhs) do not fit: \(expected)"
        case let .invalidShape(operation, shape, expected):
            return "\(operation): got shape \(shape), expected \(expected)"
        case let .invalidArgument(operation, message):
            return "\(operation): \(message)"
        case let .mixedTapes(operation):
            return "\(operation): inputs were recorded on different gradient tapes"
        case let .backend(operation, status, detail):
            return "\(operation): oneDNN failed (\(status))" + (detail.isEmpty ? "" : ": \(detail)")
        }
    }
}
