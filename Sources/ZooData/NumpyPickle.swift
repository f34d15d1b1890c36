import ZooWeights

/// Reading the pickles of the CIFAR "python version" archives (`cifar-10-batches-py`,
/// `cifar-100-python`) with zoo's safe ``Unpickler``.
///
/// The files are Python 2 `cPickle` protocol-2 pickles of dicts with byte-string keys. Their
/// `data` entry is a NumPy `uint8` array pickled as
/// `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')` followed by a BUILD with
/// the state `(version, shape, dtype, is_fortran, raw_bytes)`, the dtype itself being
/// `numpy.dtype('u1', 0, 1)` with a BUILD state. Only those NumPy globals are allowed (newer
/// NumPy writes `numpy._core.multiarray._reconstruct`), plus two that let files re-pickled by
/// Python 3 be read too: `_codecs.encode`, through which Python 3 writes byte strings at
/// protocol 2 (evaluated in Swift, for Latin-1 only), and NumPy's `_frombuffer`, through which
/// arrays are pickled at protocol 5. Any other global stops reading with an error that names it.
enum NumpyPickle {
    static let reconstructNames = ["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"]
    static let frombufferNames = ["numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer"]

    static let allowList = PickleAllowList([
        "numpy.core.multiarray._reconstruct": .record,
        "numpy._core.multiarray._reconstruct": .record,
        "numpy.core.numeric._frombuffer": .record,
        "numpy._core.numeric._frombuffer": .record,
        "numpy.ndarray": .record,
        "numpy.dtype": .record,
        "_codecs.encode": .function(encodeLatin1),
    ])

    /// `_codecs.encode(text, 'latin1')`, as Python 3's protocol-2 pickles write `bytes`.
    private static let encodeLatin1: @Sendable ([PickleValue]) throws -> PickleValue = { arguments in
        guard arguments.count == 2, case .string(let text) = arguments[0], case .string(let encoding) = arguments[1],
            ["latin1", "latin-1", "iso-8859-1"].contains(encoding.lowercased())
        else {
            throw DataError("_codecs.encode", "only _codecs.encode(str, 'latin1') is supported")
        }
        // Straight from the (valid) UTF-8: Latin-1 characters take one byte, or two led by C2 or C3.
        var utf8 = text
        let bytes = try utf8.withUTF8 { source in
            try [UInt8](unsafeUninitializedCapacity: source.count) { output, count in
                var index = 0
                count = 0
                while index < source.count {
                    let lead = source[index]
                    if lead < 0x80 {
                        output[count] = lead
                        index += 1
                    } else if (lead == 0xC2 || lead == 0xC3) && index + 1 < source.count {
                        output[count] = (lead & 0x1F) << 6 | (source[index + 1] & 0x3F)
                        index += 2
                    } else {
                        throw DataError("_codecs.encode", "the text holds characters beyond Latin-1")
                    }
                    count += 1
                }
            }
        }
        return .bytes(bytes)
    }

    /// Unpickles the file at `path` (byte strings as bytes); errors name the file.
    static func load(path: String) throws -> PickleDictionary {
        let bytes = try FileReading.bytes(atPath: path)
        guard !bytes.isEmpty else { throw DataError(path, "empty file (0 bytes): not a pickle") }
        guard bytes[0] == 0x80 || bytes[0] == UInt8(ascii: "(") || bytes[0] == UInt8(ascii: "}") else {
            throw DataError(path, "not a Python pickle (starts with byte 0x\(String(bytes[0], radix: 16)))")
        }
        let value: PickleValue
        do {
            value = try Unpickler(allowList: allowList, byteStrings: .bytes).load(bytes, source: path)
        } catch let error as WeightFileError {
            throw DataError(path, error.message)
        } catch let error as DataError {
            throw DataError(path, error.description)
        }
        guard case .dict(let dictionary) = value else {
            throw DataError(path, "the pickle holds a \(value.kindName), not the dict of a CIFAR batch")
        }
        return dictionary
    }

    /// The value under a key written as bytes (Python 2 `str`, Python 3 `bytes`) or as text.
    static func value(_ dictionary: PickleDictionary, _ key: String) -> PickleValue? {
        let keyBytes = Array(key.utf8)
        for entry in dictionary.entries.reversed() {
            switch entry.key {
            case .bytes(let bytes) where bytes == keyBytes: return entry.value
            case .string(let text) where text == key: return entry.value
            default: continue
            }
        }
        return nil
    }

    /// The value under `key`, or an error naming the file and the key.
    static func required(_ dictionary: PickleDictionary, _ key: String, path: String) throws -> PickleValue {
        guard let value = value(dictionary, key) else {
            let keys = dictionary.entries.map { describeKey($0.key) }.joined(separator: ", ")
            throw DataError(path, "no '\(key)' entry (the dict has \(keys.isEmpty ? "no entries" : keys))")
        }
        return value
    }

    private static func describeKey(_ key: PickleValue) -> String {
        switch key {
        case .bytes(let bytes): "b'\(text(bytes))'"
        case .string(let text): "'\(text)'"
        default: key.kindName
        }
    }

    /// Bytes as text: UTF-8 when valid, otherwise Latin-1.
    static func text(_ bytes: [UInt8]) -> String {
        String(validating: bytes, as: UTF8.self) ?? String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// A list of names (byte strings or text).
    static func names(_ value: PickleValue, key: String, path: String) throws -> [String] {
        guard let elements = value.sequence else { throw DataError(path, "'\(key)' is a \(value.kindName), not a list of names") }
        return try elements.enumerated().map { index, element in
            switch element {
            case .bytes(let bytes): text(bytes)
            case .string(let text): text
            default: throw DataError(path, "'\(key)'[\(index)] is a \(element.kindName), not a name")
            }
        }
    }

    /// A list of integer labels, each in `0..<classCount`.
    static func labels(_ value: PickleValue, key: String, classCount: Int, path: String) throws -> [UInt8] {
        guard let elements = value.sequence else { throw DataError(path, "'\(key)' is a \(value.kindName), not a list of labels") }
        var labels: [UInt8] = []
        labels.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            guard let label = element.int else { throw DataError(path, "'\(key)'[\(index)] is a \(element.kindName), not an integer label") }
            guard (0..<classCount).contains(label) else {
                throw DataError(path, "'\(key)'[\(index)] is \(label), outside 0..<\(classCount)")
            }
            labels.append(UInt8(label))
        }
        return labels
    }

    /// The bytes of a pickled two-dimensional `uint8` array of `columns` columns, in row-major
    /// order, and its row count.
    static func uint8Matrix(_ value: PickleValue, key: String, columns: Int, path: String) throws -> (bytes: [UInt8], rows: Int) {
        func fail(_ message: String) -> DataError { DataError(path, "'\(key)': \(message)") }
        guard case .object(let array) = value else { throw fail("a \(value.kindName), not a pickled NumPy array") }
        if frombufferNames.contains(array.type.qualifiedName) {
            return try frombuffer(array, columns: columns, fail: fail)
        }
        guard reconstructNames.contains(array.type.qualifiedName) else { throw fail("a \(value.kindName), not a pickled NumPy array") }
        guard let first = array.arguments.first, case .global(let type) = first, type.qualifiedName == "numpy.ndarray" else {
            throw fail("\(array.type.qualifiedName) does not rebuild a numpy.ndarray")
        }
        // ndarray.__setstate__: (version, shape, dtype, is_fortran, data), or without the version.
        guard let stateValue = array.state, var state = stateValue.sequence else { throw fail("the array has no state (BUILD)") }
        if state.count == 5 { state.removeFirst() }
        guard state.count == 4 else { throw fail("the array state has \(state.count) items, not 4 or 5") }
        guard let shape = state[0].sequence?.compactMap(\.int), shape.count == state[0].sequence?.count else {
            throw fail("the array shape is a \(state[0].kindName), not a tuple of integers")
        }
        let dtype = try dtypeName(state[1], fail: fail)
        guard dtype == "u1" || dtype == "uint8" || dtype == "B" else { throw fail("the array's dtype is '\(dtype)', not uint8") }
        guard shape.count == 2, shape[1] == columns, shape[0] > 0 else {
            throw fail("the array's shape is \(shape), not [N, \(columns)]")
        }
        let fortran = state[2].int ?? 0
        guard case .bytes(let data) = state[3] else { throw fail("the array data is a \(state[3].kindName), not bytes") }
        return try matrix(data, shape: shape, fortran: fortran != 0, fail: fail)
    }

    /// `numpy._core.numeric._frombuffer(buffer, dtype, shape, order)` (protocol 5).
    private static func frombuffer(_ array: PickleObject, columns: Int, fail: (String) -> DataError) throws -> (bytes: [UInt8], rows: Int) {
        let arguments = array.arguments
        guard arguments.count == 4 else { throw fail("\(array.type.qualifiedName) has \(arguments.count) arguments, not 4") }
        guard case .bytes(let data) = arguments[0] else { throw fail("the array data is a \(arguments[0].kindName), not bytes") }
        let dtype = try dtypeName(arguments[1], fail: fail)
        guard dtype == "u1" || dtype == "uint8" || dtype == "B" else { throw fail("the array's dtype is '\(dtype)', not uint8") }
        guard let shape = arguments[2].sequence?.compactMap(\.int), shape.count == arguments[2].sequence?.count else {
            throw fail("the array shape is a \(arguments[2].kindName), not a tuple of integers")
        }
        guard shape.count == 2, shape[1] == columns, shape[0] > 0 else {
            throw fail("the array's shape is \(shape), not [N, \(columns)]")
        }
        let order: String? = switch arguments[3] {
        case .string(let text): text
        case .bytes(let bytes): text(bytes)
        default: nil
        }
        guard let order, order == "C" || order == "F" else { throw fail("the array order is not 'C' or 'F'") }
        return try matrix(data, shape: shape, fortran: order == "F", fail: fail)
    }

    /// Checks the size of a `[rows, columns]` array's bytes and returns them in row-major order.
    private static func matrix(_ data: [UInt8], shape: [Int], fortran: Bool, fail: (String) -> DataError) throws -> (bytes: [UInt8], rows: Int) {
        let (rows, columns) = (shape[0], shape[1])
        // Shapes come from the file: compare by division, which cannot overflow.
        guard data.count % columns == 0, data.count / columns == rows else {
            throw fail("the array of shape \(shape) holds \(data.count) bytes, not \(rows) x \(columns)")
        }
        guard fortran else { return (data, rows) }
        // Column-major: element (r, c) is at c * rows + r.
        let transposed = [UInt8](unsafeUninitializedCapacity: data.count) { buffer, count in
            for r in 0..<rows {
                for c in 0..<columns { buffer[r * columns + c] = data[c * rows + r] }
            }
            count = data.count
        }
        return (transposed, rows)
    }

    /// The dtype name in `numpy.dtype(name, align, copy)` (`u1` in CIFAR's pickles).
    private static func dtypeName(_ value: PickleValue, fail: (String) -> DataError) throws -> String {
        guard case .object(let dtype) = value, dtype.type.qualifiedName == "numpy.dtype", let name = dtype.arguments.first else {
            throw fail("the array's dtype is a \(value.kindName), not a numpy.dtype")
        }
        switch name {
        case .bytes(let bytes): return text(bytes)
        case .string(let text): return text
        default: throw fail("the dtype name is a \(name.kindName)")
        }
    }
}
