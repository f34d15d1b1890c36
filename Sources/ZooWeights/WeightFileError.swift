import Foundation

/// Why a weight file could not be opened or read. The description always names the file.
public struct WeightFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Broad classes of failure, for callers that branch on them.
    public enum Kind: String, Sendable {
        /// The file could not be opened, mapped or written.
        case io
        /// The bytes match no format zoo reads.
        case unrecognizedFormat
        /// The file ends before a structure it declares.
        case truncated
        /// A structure is inconsistent: bad magic, impossible sizes, offsets past the end, bad syntax.
        case malformed
        /// The bytes differ from the checksum the file records for them (a zip entry's CRC-32):
        /// damaged on disk or in transfer. Fetching the file again is the cure.
        case checksumMismatch
        /// Well-formed, but uses something zoo does not read (a dtype, a compression method, ...).
        case unsupported
        /// A pickle names a global that is not on the allow-list.
        case disallowedGlobal
        /// Two tensors or entries have the same name.
        case duplicateName
        /// The caller asked for a tensor the file does not have.
        case missingTensor
    }

    /// The file the error is about.
    public var path: String
    /// The class of failure.
    public var kind: Kind
    /// What was wrong, naming the tensor, entry, global or offset involved.
    public var message: String

    /// Creates an error about the file at `path`.
    public init(path: String, kind: Kind, message: String) {
        self.path = path
        self.kind = kind
        self.message = message
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

/// An error found while parsing bytes whose origin the parser does not know; the public entry
/// points turn it into a ``WeightFileError`` that names the file.
struct ParseError: Error, CustomStringConvertible {
    var kind: WeightFileError.Kind
    var message: String

    init(_ kind: WeightFileError.Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func malformed(_ message: String) -> ParseError { ParseError(.malformed, message) }
    static func unsupported(_ message: String) -> ParseError { ParseError(.unsupported, message) }
    static func truncated(_ message: String) -> ParseError { ParseError(.truncated, message) }

    var description: String { message }

    /// The same error with `context` in front of the message ("entry 'a.npy': ...").
    func within(_ context: String) -> ParseError {
        ParseError(kind, "\(context): \(message)")
    }

    func located(at path: String) -> WeightFileError {
        WeightFileError(path: path, kind: kind, message: message)
    }
}

/// Runs `body`, turning a `ParseError` into a `WeightFileError` naming `path`.
func locatingErrors<T>(at path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ParseError {
        throw error.located(at: path)
    }
}

/// Runs `body`, prefixing the message of any `ParseError` with `context`.
func withContext<T>(_ context: @autoclosure () -> String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ParseError {
        throw error.within(context())
    }
}

/// Quotes a name taken from a file for an error message, cutting it short when it is long and
/// escaping control characters so a hostile name cannot garble the terminal.
func quoted(_ name: String, limit: Int = 200) -> String {
    var text = ""
    for scalar in name.unicodeScalars.prefix(limit) {
        if scalar.value < 0x20 || scalar.value == 0x7f {
            text += "\\u{\(String(scalar.value, radix: 16))}"
        } else if scalar == "'" || scalar == "\\" {
            text += "\\" + String(scalar)
        } else {
            text.unicodeScalars.append(scalar)
        }
    }
    if name.unicodeScalars.count > limit { text += "..." }
    return "'\(text)'"
}
