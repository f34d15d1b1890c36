/// A value built by ``Unpickler``: plain, immutable data. Nothing in it was produced by running
/// code from the pickle; every class or function the pickle names was resolved through a
/// ``PickleAllowList``. The tree is bounded in depth and size (see ``Unpickler/Limits``), so it
/// is safe to walk recursively.
public indirect enum PickleValue: Sendable {
    /// Python's `None`.
    case none
    /// `True` or `False`.
    case bool(Bool)
    /// An integer that fits in `Int`.
    case int(Int)
    /// An integer too large for `Int`: its two's-complement little-endian bytes, as pickled.
    case bigInt([UInt8])
    /// A Python float.
    case float(Double)
    /// A `str` (and Python 2 `str` unless ``Unpickler/ByteStringDecoding/bytes`` is chosen).
    case string(String)
    /// `bytes` or `bytearray`.
    case bytes([UInt8])
    /// A tuple.
    case tuple([PickleValue])
    /// A list.
    case list([PickleValue])
    /// A dict or `OrderedDict`.
    case dict(PickleDictionary)
    /// A reference to an allowed global that was not called (e.g. `torch.FloatStorage` inside
    /// a storage record).
    case global(PickleGlobal)
    /// The recorded call of an allowed global whose rule is ``PickleAllowList/Rule/record``.
    case object(PickleObject)

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .none: "None"
        case .bool: "bool"
        case .int, .bigInt: "int"
        case .float: "float"
        case .string: "str"
        case .bytes: "bytes"
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .global(let global): "global \(global.qualifiedName)"
        case .object(let object): "\(object.type.qualifiedName) object"
        }
    }

    /// The string, when this is one.
    public var string: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The integer, when this is one that fits in `Int` (bools count as 0 and 1, as in Python).
    public var int: Int? {
        switch self {
        case .int(let value): value
        case .bool(let value): value ? 1 : 0
        default: nil
        }
    }

    /// The elements of a tuple or list.
    public var sequence: [PickleValue]? {
        switch self {
        case .tuple(let elements), .list(let elements): elements
        default: nil
        }
    }
}

/// A module-qualified global name from a pickle, e.g. `collections.OrderedDict`.
public struct PickleGlobal: Sendable, Hashable {
    /// The module, e.g. `collections` or `torch._utils`.
    public let module: String
    /// The name within the module, e.g. `OrderedDict`.
    public let name: String

    /// A global named `module.name`.
    public init(module: String, name: String) {
        self.module = module
        self.name = name
    }

    /// `module.name`, the key of a ``PickleAllowList``.
    public var qualifiedName: String { "\(module).\(name)" }
}

/// A dict built by the unpickler, in insertion order (pickled `OrderedDict`s become these).
public struct PickleDictionary: Sendable {
    /// Key-value pairs in insertion order; a key set twice keeps its first position and last value.
    public let entries: [(key: PickleValue, value: PickleValue)]
    /// The state a BUILD opcode attached (an `OrderedDict`'s attributes, such as torch's `_metadata`).
    public let state: PickleValue?
    private let stringKeys: [String: Int]

    /// A dictionary of `entries` (string keys are indexed for lookup).
    public init(entries: [(key: PickleValue, value: PickleValue)], state: PickleValue? = nil) {
        self.entries = entries
        self.state = state
        var index: [String: Int] = [:]
        for (position, entry) in entries.enumerated() {
            if case .string(let key) = entry.key, index[key] == nil { index[key] = position }
        }
        self.stringKeys = index
    }

    /// The value stored under a string key.
    public subscript(key: String) -> PickleValue? {
        stringKeys[key].map { entries[$0].value }
    }
}

/// The recorded call of an allowed global: `type(*arguments)`, plus the state set by BUILD.
/// The caller interprets it (torch's reader turns `torch._utils._rebuild_tensor_v2` calls into tensors).
public struct PickleObject: Sendable {
    /// The global that was called.
    public let type: PickleGlobal
    /// The call's positional arguments.
    public let arguments: [PickleValue]
    /// The state a BUILD opcode set afterwards (NumPy arrays keep their data here).
    public let state: PickleValue?

    /// A recorded call.
    public init(type: PickleGlobal, arguments: [PickleValue], state: PickleValue? = nil) {
        self.type = type
        self.arguments = arguments
        self.state = state
    }
}

/// The globals a pickle may name, and what calling each does. Anything else is rejected with an
/// error that names it: the allow-list is what keeps a pickle from running code.
public struct PickleAllowList: Sendable {
    /// What happens when the pickle names (and possibly calls) a global.
    public enum Rule: Sendable {
        /// The global may appear as a value; calling it yields a ``PickleObject`` that records
        /// the call for the caller to interpret.
        case record
        /// Calling the global runs this Swift function over the call's arguments. A returned
        /// `.list` or `.dict` is a fresh container that later opcodes may fill.
        case function(@Sendable ([PickleValue]) throws -> PickleValue)
    }

    /// Rules keyed by `module.name`.
    public var rules: [String: Rule]

    /// An allow-list with the given rules, keyed by `module.name`.
    public init(_ rules: [String: Rule]) {
        self.rules = rules
    }

    /// Everything a `torch.save` state dict or checkpoint needs: `collections.OrderedDict`,
    /// the tensor and parameter rebuild functions, `torch.Size`, the tensor and parameter
    /// classes, and the storage types.
    public static let torch: PickleAllowList = {
        var rules: [String: Rule] = [
            "collections.OrderedDict": .function(makeOrderedDict),
            "torch.Size": .function { arguments in
                guard let first = arguments.first else { return .tuple([]) }
                guard let elements = first.sequence else {
                    throw ParseError.malformed("torch.Size expects a sequence, got \(first.kindName)")
                }
                return .tuple(elements)
            },
            "torch._utils._rebuild_tensor": .record,
            "torch._utils._rebuild_tensor_v2": .record,
            "torch._utils._rebuild_parameter": .function(firstArgument),
            "torch._utils._rebuild_parameter_with_state": .function(firstArgument),
            "torch._utils._rebuild_from_type_v2": .record,
            "torch._tensor._rebuild_from_type_v2": .record,
            "torch.Tensor": .record,
            "torch._tensor.Tensor": .record,
            "torch.nn.parameter.Parameter": .record,
        ]
        for storage in TorchStorageType.allCases {
            rules["torch.\(storage.rawValue)"] = .record
        }
        return PickleAllowList(rules)
    }()

    private static let makeOrderedDict: @Sendable ([PickleValue]) throws -> PickleValue = { arguments in
        var entries: [(key: PickleValue, value: PickleValue)] = []
        if let items = arguments.first {
            if case .none = items { return .dict(PickleDictionary(entries: [])) }
            // OrderedDict([(key, value), ...])
            guard let pairs = items.sequence else {
                throw ParseError.malformed("OrderedDict expects a sequence of pairs, got \(items.kindName)")
            }
            for pair in pairs {
                guard let keyValue = pair.sequence, keyValue.count == 2 else {
                    throw ParseError.malformed("OrderedDict item is not a pair")
                }
                entries.append((keyValue[0], keyValue[1]))
            }
        }
        return .dict(PickleDictionary(entries: entries))
    }

    private static let firstArgument: @Sendable ([PickleValue]) throws -> PickleValue = { arguments in
        guard let first = arguments.first else { throw ParseError.malformed("missing the tensor argument") }
        return first
    }
}

/// A pickle virtual machine that builds data and never executes code.
///
/// It implements the opcodes of protocols 0 to 5 that data pickles use (torch state dicts,
/// NumPy arrays, Python 2-era pickles). Every global the pickle names is looked up in the
/// allow-list; a global off the list stops unpickling with an error that names it. Stack,
/// memo, nesting and the size of the result are bounded, every length is checked against the
/// remaining input, and the work done is linear in the input size.
///
/// While running, lists, dicts and objects are mutable shared containers (pickles fill them
/// after memoizing them, and may even make one contain itself); the result is converted to an
/// immutable ``PickleValue`` tree, and the containers are then emptied one by one, so that
/// cycles cannot leak and deep chains cannot overflow the stack when they are freed.
public struct Unpickler {
    /// How Python 2 `str` values (STRING, BINSTRING, SHORT_BINSTRING) come out.
    public enum ByteStringDecoding: Sendable {
        /// As `.string`, decoded as UTF-8 (what `torch.load` does).
        case utf8
        /// As `.string`, each byte one Latin-1 character.
        case latin1
        /// As `.bytes` (like `pickle.load(..., encoding="bytes")`).
        case bytes
    }

    /// Bounds on the machine's state and on its result.
    public struct Limits: Sendable {
        /// The most values on the stack at once.
        public var maximumStackDepth: Int
        /// The most memo entries.
        public var maximumMemoSize: Int
        /// The most MARKs open at once.
        public var maximumMarkDepth: Int
        /// The deepest nesting of tuples, lists, dicts and objects in any value.
        public var maximumNesting: Int
        /// The result may hold at most this many values per byte of input (plus 4096): shared
        /// sub-values are copied into the tree, and this stops "billion laughs" pickles.
        public var maximumValuesPerInputByte: Int

        /// Limits generous for any weight file; lower them for untrusted data of a known shape.
        public init(
            maximumStackDepth: Int = 1 << 22, maximumMemoSize: Int = 1 << 22, maximumMarkDepth: Int = 4096,
            maximumNesting: Int = 200, maximumValuesPerInputByte: Int = 16
        ) {
            self.maximumStackDepth = maximumStackDepth
            self.maximumMemoSize = maximumMemoSize
            self.maximumMarkDepth = maximumMarkDepth
            self.maximumNesting = maximumNesting
            self.maximumValuesPerInputByte = maximumValuesPerInputByte
        }
    }

    /// The globals the pickle may name.
    public var allowList: PickleAllowList
    /// Resolves persistent ids (PERSID, BINPERSID); without it such a pickle is rejected.
    public var persistentLoad: ((PickleValue) throws -> PickleValue)?
    /// How Python 2 byte strings are returned.
    public var byteStrings: ByteStringDecoding
    /// Bounds on the machine and its result.
    public var limits: Limits

    /// A machine that resolves globals through `allowList`.
    public init(
        allowList: PickleAllowList, persistentLoad: ((PickleValue) throws -> PickleValue)? = nil,
        byteStrings: ByteStringDecoding = .utf8, limits: Limits = Limits()
    ) {
        self.allowList = allowList
        self.persistentLoad = persistentLoad
        self.byteStrings = byteStrings
        self.limits = limits
    }

    /// Unpickles one pickle from `bytes`; errors name `source`. Trailing bytes after STOP are ignored.
    public func load(_ bytes: [UInt8], source: String = "<pickle>") throws -> PickleValue {
        try locatingErrors(at: source) {
            try load(Bytes(copying: bytes), at: 0).value
        }
    }

    /// Unpickles the pickle starting at `offset`, returning the value and the offset after STOP
    /// (torch's legacy format is several pickles in a row).
    func load(_ bytes: Bytes, at offset: Int) throws -> (value: PickleValue, end: Int) {
        var machine = Machine(unpickler: self, bytes: bytes, position: offset)
        defer { machine.tearDown() }
        return try machine.run()
    }

    /// Parses `bytes` as a pickle with the torch allow-list and persistent ids returned as they
    /// are: the entry point of the fuzzer.
    public static func parse(bytes: [UInt8]) throws -> PickleValue {
        try Unpickler(allowList: .torch, persistentLoad: { $0 }).load(bytes)
    }
}

// MARK: - The machine

/// The mutable containers of a running machine.
private final class ListBox {
    var elements: [Node] = []
}

private final class DictBox {
    var entries: [(key: Node, value: Node)] = []
    var state: Node?
    private var stringKeys: [String: Int] = [:]
    private var intKeys: [Int: Int] = [:]

    /// Sets `key` to `value`, keeping the position of an existing key as Python does.
    func set(_ key: Node, _ value: Node) throws {
        switch key {
        case .scalar(.string(let text)):
            if let index = stringKeys[text] {
                entries[index].value = value
            } else {
                stringKeys[text] = entries.count
                entries.append((key, value))
            }
        case .scalar(.int(let number)):
            if let index = intKeys[number] {
                entries[index].value = value
            } else {
                intKeys[number] = entries.count
                entries.append((key, value))
            }
        case .scalar, .tuple:
            // Rare key kinds: kept in order without de-duplication.
            entries.append((key, value))
        case .list, .dict, .object:
            throw ParseError.malformed("a \(key.kindName) cannot be a dict key (unhashable)")
        }
    }
}

private final class ObjectBox {
    let type: PickleGlobal
    var arguments: [Node]
    var state: Node?

    init(type: PickleGlobal, arguments: [Node]) {
        self.type = type
        self.arguments = arguments
    }
}

/// A value inside the running machine: scalars and tuples by value, containers by reference.
private indirect enum Node {
    /// none, bool, int, bigInt, float, string, bytes or global.
    case scalar(PickleValue)
    case tuple([Node])
    case list(ListBox)
    case dict(DictBox)
    case object(ObjectBox)

    var kindName: String {
        switch self {
        case .scalar(let value): value.kindName
        case .tuple: "tuple"
        case .list: "list"
        case .dict: "dict"
        case .object(let box): "\(box.type.qualifiedName) object"
        }
    }

    var string: String? {
        if case .scalar(.string(let text)) = self { return text }
        return nil
    }
}

/// A stack or memo slot: the node and the nesting depth of its tuples. Containers count as 1,
/// because they are emptied one by one at the end instead of being freed recursively.
private struct Slot {
    var node: Node
    var depth: Int
}

/// The running state of one unpickling.
private struct Machine {
    let unpickler: Unpickler
    let bytes: Bytes
    var position: Int
    var stack: [Slot] = []
    var marks: [Int] = []
    var memo: [Int: Slot] = [:]
    /// Every container created, so that all can be emptied at the end.
    var lists: [ListBox] = []
    var dicts: [DictBox] = []
    var objects: [ObjectBox] = []
    /// Values still allowed in converted results (see `Limits.maximumValuesPerInputByte`).
    var valueBudget: Int

    init(unpickler: Unpickler, bytes: Bytes, position: Int) {
        self.unpickler = unpickler
        self.bytes = bytes
        self.position = position
        let perByte = unpickler.limits.maximumValuesPerInputByte
        self.valueBudget = max(0, bytes.count - position).multipliedReportingOverflow(by: perByte).partialValue + 4096
    }

    mutating func run() throws -> (value: PickleValue, end: Int) {
        while true {
            let opcodeOffset = position
            let opcode = try readByte("opcode")
            do {
                if let result = try execute(opcode) {
                    return (try value(of: result, depth: 0), position)
                }
            } catch let error as ParseError {
                throw error.within("pickle opcode 0x\(String(opcode, radix: 16)) at offset \(opcodeOffset)")
            }
        }
    }

    /// Empties every container so that cycles are broken and nothing is freed recursively.
    mutating func tearDown() {
        var graveyard: [Node] = []
        for list in lists {
            graveyard.append(contentsOf: list.elements)
            list.elements = []
        }
        for dict in dicts {
            for entry in dict.entries {
                graveyard.append(entry.key)
                graveyard.append(entry.value)
            }
            dict.entries = []
            if let state = dict.state { graveyard.append(state) }
            dict.state = nil
        }
        for object in objects {
            graveyard.append(contentsOf: object.arguments)
            object.arguments = []
            if let state = object.state { graveyard.append(state) }
            object.state = nil
        }
        stack = []
        memo = [:]
        graveyard = []
        lists = []
        dicts = []
        objects = []
    }

    // MARK: Conversion between nodes and values

    /// The immutable tree of `node`, bounded in depth and size.
    mutating func value(of node: Node, depth: Int) throws -> PickleValue {
        guard depth <= unpickler.limits.maximumNesting else {
            throw ParseError.malformed("pickled data nests deeper than \(unpickler.limits.maximumNesting) levels")
        }
        valueBudget -= 1
        guard valueBudget >= 0 else {
            throw ParseError.malformed("pickled data expands to more values than its size allows (shared references repeated too often)")
        }
        switch node {
        case .scalar(let value):
            return value
        case .tuple(let elements):
            return .tuple(try elements.map { try value(of: $0, depth: depth + 1) })
        case .list(let box):
            return .list(try box.elements.map { try value(of: $0, depth: depth + 1) })
        case .dict(let box):
            let entries = try box.entries.map { (key: try value(of: $0.key, depth: depth + 1), value: try value(of: $0.value, depth: depth + 1)) }
            return .dict(PickleDictionary(entries: entries, state: try box.state.map { try value(of: $0, depth: depth + 1) }))
        case .object(let box):
            return .object(
                PickleObject(
                    type: box.type, arguments: try box.arguments.map { try value(of: $0, depth: depth + 1) },
                    state: try box.state.map { try value(of: $0, depth: depth + 1) }))
        }
    }

    /// A node for a value returned by a rule or a persistent-load callback, and its tuple depth.
    mutating func node(of value: PickleValue, depth: Int = 0) throws -> Slot {
        guard depth <= unpickler.limits.maximumNesting else {
            throw ParseError.malformed("a converted value nests deeper than \(unpickler.limits.maximumNesting) levels")
        }
        switch value {
        case .none, .bool, .int, .bigInt, .float, .string, .bytes, .global:
            return Slot(node: .scalar(value), depth: 1)
        case .tuple(let elements):
            let slots = try elements.map { try node(of: $0, depth: depth + 1) }
            return Slot(node: .tuple(slots.map(\.node)), depth: 1 + (slots.map(\.depth).max() ?? 0))
        case .list(let elements):
            let box = ListBox()
            lists.append(box)
            box.elements = try elements.map { try node(of: $0, depth: depth + 1).node }
            return Slot(node: .list(box), depth: 1)
        case .dict(let dictionary):
            let box = DictBox()
            dicts.append(box)
            for entry in dictionary.entries {
                try box.set(try node(of: entry.key, depth: depth + 1).node, try node(of: entry.value, depth: depth + 1).node)
            }
            box.state = try dictionary.state.map { try node(of: $0, depth: depth + 1).node }
            return Slot(node: .dict(box), depth: 1)
        case .object(let object):
            let box = ObjectBox(type: object.type, arguments: try object.arguments.map { try node(of: $0, depth: depth + 1).node })
            objects.append(box)
            box.state = try object.state.map { try node(of: $0, depth: depth + 1).node }
            return Slot(node: .object(box), depth: 1)
        }
    }

    // MARK: Reading operands

    mutating func readByte(_ what: String) throws -> UInt8 {
        let byte = try bytes.uint8(at: position, "pickle \(what)")
        position += 1
        return byte
    }

    mutating func readUInt16() throws -> Int {
        let value = try bytes.uint16(at: position, "pickle operand")
        position += 2
        return Int(value)
    }

    mutating func readUInt32() throws -> Int {
        let value = try bytes.uint32(at: position, "pickle operand")
        position += 4
        return Int(value)
    }

    mutating func readInt32() throws -> Int {
        let value = try bytes.uint32(at: position, "pickle operand")
        position += 4
        return Int(Int32(bitPattern: value))
    }

    mutating func readUInt64() throws -> Int {
        let value = try bytes.uint64(at: position, "pickle operand")
        position += 8
        guard let length = Checked.int(value) else {
            throw ParseError.malformed("length \(value) is impossibly large")
        }
        return length
    }

    /// `count` raw bytes; the length was read from the pickle, so it is checked first.
    mutating func readBytes(_ count: Int) throws -> [UInt8] {
        guard count >= 0 else { throw ParseError.malformed("negative length \(count)") }
        let data = try bytes.array(position, count, "pickle data of \(count) bytes")
        position += count
        return data
    }

    /// Bytes up to the next newline (protocol 0 text operands), without the newline.
    mutating func readLine() throws -> [UInt8] {
        let start = position
        let raw = bytes.raw
        var end = start
        while end < bytes.count && raw[end] != 0x0a { end += 1 }
        guard end < bytes.count else {
            throw ParseError.truncated("truncated: pickle text operand at offset \(start) has no end of line")
        }
        position = end + 1
        return [UInt8](UnsafeRawBufferPointer(rebasing: raw[start..<end]))
    }

    mutating func readTextLine(_ what: String) throws -> String {
        let line = try readLine()
        guard let text = String(validating: line, as: UTF8.self) else {
            throw ParseError.malformed("\(what) is not valid text")
        }
        return text
    }

    func utf8(_ data: [UInt8]) throws -> String {
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ParseError.malformed("string is not valid UTF-8")
        }
        return text
    }

    func byteString(_ data: [UInt8]) throws -> PickleValue {
        switch unpickler.byteStrings {
        case .utf8: return .string(try utf8(data))
        case .latin1: return .string(String(String.UnicodeScalarView(data.map { Unicode.Scalar($0) })))
        case .bytes: return .bytes(data)
        }
    }

    // MARK: Stack

    mutating func push(_ slot: Slot) throws {
        guard stack.count < unpickler.limits.maximumStackDepth else {
            throw ParseError(.malformed, "pickle stack exceeds \(unpickler.limits.maximumStackDepth) items")
        }
        guard slot.depth <= unpickler.limits.maximumNesting else {
            throw ParseError.malformed("pickled tuples nest deeper than \(unpickler.limits.maximumNesting) levels")
        }
        stack.append(slot)
    }

    mutating func push(_ value: PickleValue) throws {
        try push(Slot(node: .scalar(value), depth: 1))
    }

    mutating func pushTuple(_ slots: [Slot]) throws {
        try push(Slot(node: .tuple(slots.map(\.node)), depth: 1 + (slots.map(\.depth).max() ?? 0)))
    }

    mutating func newList(_ elements: [Node] = []) -> Slot {
        let box = ListBox()
        box.elements = elements
        lists.append(box)
        return Slot(node: .list(box), depth: 1)
    }

    mutating func newDict() -> DictBox {
        let box = DictBox()
        dicts.append(box)
        return box
    }

    mutating func pop() throws -> Slot {
        guard let slot = stack.popLast() else { throw ParseError.malformed("pickle stack underflow") }
        if let mark = marks.last, stack.count < mark {
            throw ParseError.malformed("pickle pops past a MARK")
        }
        return slot
    }

    func top() throws -> Slot {
        guard let slot = stack.last else { throw ParseError.malformed("pickle stack is empty") }
        return slot
    }

    /// Pops everything above the last MARK, and the mark.
    mutating func popToMark() throws -> [Slot] {
        guard let mark = marks.popLast() else { throw ParseError.malformed("pickle has no MARK to pop to") }
        let items = Array(stack[mark...])
        stack.removeSubrange(mark...)
        return items
    }

    mutating func memoPut(_ key: Int) throws {
        guard memo.count < unpickler.limits.maximumMemoSize || memo[key] != nil else {
            throw ParseError(.malformed, "pickle memo exceeds \(unpickler.limits.maximumMemoSize) entries")
        }
        memo[key] = try top()
    }

    func memoGet(_ key: Int) throws -> Slot {
        guard let slot = memo[key] else { throw ParseError.malformed("memo key \(key) is not defined") }
        return slot
    }

    // MARK: Globals and calls

    func resolveGlobal(module: String, name: String) throws -> PickleValue {
        let global = PickleGlobal(module: module, name: name)
        guard unpickler.allowList.rules[global.qualifiedName] != nil else {
            throw ParseError(
                .disallowedGlobal,
                "global \(quoted(global.qualifiedName)) is not allowed: zoo never runs code from a file, and this name is not on its allow-list")
        }
        return .global(global)
    }

    mutating func call(_ callable: Slot, _ arguments: [Slot]) throws -> Slot {
        guard case .scalar(.global(let global)) = callable.node, let rule = unpickler.allowList.rules[global.qualifiedName] else {
            throw ParseError.malformed("calls a \(callable.node.kindName), which is not callable")
        }
        switch rule {
        case .record:
            let box = ObjectBox(type: global, arguments: arguments.map(\.node))
            objects.append(box)
            return Slot(node: .object(box), depth: 1)
        case .function(let function):
            let values = try arguments.map { try value(of: $0.node, depth: 1) }
            let result: PickleValue
            do {
                result = try function(values)
            } catch let error as ParseError {
                throw error.within("calling \(quoted(global.qualifiedName))")
            } catch {
                throw ParseError.malformed("calling \(quoted(global.qualifiedName)) failed: \(error)")
            }
            return try node(of: result)
        }
    }

    mutating func persistent(_ id: Slot) throws -> Slot {
        guard let load = unpickler.persistentLoad else {
            throw ParseError.unsupported("pickle refers to a persistent id, but this reader resolves none")
        }
        return try node(of: try load(try value(of: id.node, depth: 1)))
    }

    func integer(fromText text: String) throws -> PickleValue {
        var digits = Substring(text)
        if digits.hasSuffix("L") { digits = digits.dropLast() }
        guard let value = Int(digits) else {
            throw ParseError.unsupported("integer literal \(quoted(text, limit: 40)) is malformed or too large")
        }
        return .int(value)
    }

    // MARK: Opcodes

    /// Executes one opcode; returns the result at STOP.
    mutating func execute(_ opcode: UInt8) throws -> Node? {
        switch opcode {
        case 0x80:  // PROTO
            let version = try readByte("protocol version")
            guard version <= 5 else { throw ParseError.unsupported("pickle protocol \(version) is not supported") }
        case 0x95:  // FRAME: a length prefix for buffering; the contents are ordinary opcodes.
            let length = try readUInt64()
            guard bytes.contains(offset: position, length: length) else {
                throw ParseError.truncated("truncated: pickle frame of \(length) bytes runs past the end")
            }
        case UInt8(ascii: "."):  // STOP
            return try pop().node
        case UInt8(ascii: "("):  // MARK
            guard marks.count < unpickler.limits.maximumMarkDepth else {
                throw ParseError.malformed("pickle nests MARKs deeper than \(unpickler.limits.maximumMarkDepth)")
            }
            marks.append(stack.count)
        case UInt8(ascii: ")"): try pushTuple([])
        case UInt8(ascii: "]"): try push(newList())
        case UInt8(ascii: "}"): try push(Slot(node: .dict(newDict()), depth: 1))
        case 0x8f, 0x90, 0x91:  // EMPTY_SET, ADDITEMS, FROZENSET
            throw ParseError.unsupported("sets are not supported in weight pickles")
        case UInt8(ascii: "N"): try push(.none)
        case 0x88: try push(.bool(true))
        case 0x89: try push(.bool(false))

        // Integers and floats
        case UInt8(ascii: "J"): try push(.int(try readInt32()))
        case UInt8(ascii: "K"): try push(.int(Int(try readByte("operand"))))
        case UInt8(ascii: "M"): try push(.int(try readUInt16()))
        case 0x8a:  // LONG1
            try push(longValue(try readBytes(Int(try readByte("length")))))
        case 0x8b:  // LONG4
            let length = try readInt32()
            guard length >= 0 else { throw ParseError.malformed("negative LONG4 length \(length)") }
            try push(longValue(try readBytes(length)))
        case UInt8(ascii: "G"):  // BINFLOAT, big-endian
            let bits = try bytes.uint64(at: position, "pickle float")
            position += 8
            try push(.float(Double(bitPattern: bits.byteSwapped)))
        case UInt8(ascii: "I"):  // INT (protocol 0); "00"/"01" are False/True
            let text = try readTextLine("INT operand")
            if text == "00" {
                try push(.bool(false))
            } else if text == "01" {
                try push(.bool(true))
            } else {
                try push(try integer(fromText: text))
            }
        case UInt8(ascii: "L"):  // LONG (protocol 0)
            try push(try integer(fromText: try readTextLine("LONG operand")))
        case UInt8(ascii: "F"):  // FLOAT (protocol 0)
            let text = try readTextLine("FLOAT operand")
            guard let value = Double(text) else { throw ParseError.malformed("FLOAT operand \(quoted(text, limit: 40)) is malformed") }
            try push(.float(value))

        // Strings and bytes
        case UInt8(ascii: "X"): try push(.string(try utf8(try readBytes(try readUInt32()))))
        case 0x8c: try push(.string(try utf8(try readBytes(Int(try readByte("length"))))))
        case 0x8d: try push(.string(try utf8(try readBytes(try readUInt64()))))
        case UInt8(ascii: "T"):  // BINSTRING (Python 2 str)
            let length = try readInt32()
            guard length >= 0 else { throw ParseError.malformed("negative BINSTRING length \(length)") }
            try push(try byteString(try readBytes(length)))
        case UInt8(ascii: "U"): try push(try byteString(try readBytes(Int(try readByte("length")))))
        case UInt8(ascii: "B"): try push(.bytes(try readBytes(try readUInt32())))
        case UInt8(ascii: "C"): try push(.bytes(try readBytes(Int(try readByte("length")))))
        case 0x8e, 0x96: try push(.bytes(try readBytes(try readUInt64())))  // BINBYTES8, BYTEARRAY8
        case UInt8(ascii: "S"):  // STRING (protocol 0): a quoted Python 2 repr
            try push(try byteString(try decodeQuotedString(try readLine())))
        case UInt8(ascii: "V"):  // UNICODE (protocol 0): raw-unicode-escape
            try push(.string(try decodeRawUnicodeEscape(try readLine())))
        case 0x97, 0x98:  // NEXT_BUFFER, READONLY_BUFFER
            throw ParseError.unsupported("out-of-band buffers (pickle protocol 5) are not supported")

        // Tuples, lists, dicts
        case UInt8(ascii: "t"): try pushTuple(try popToMark())
        case 0x85: try pushTuple([try pop()])
        case 0x86:
            let second = try pop()
            try pushTuple([try pop(), second])
        case 0x87:
            let third = try pop()
            let second = try pop()
            try pushTuple([try pop(), second, third])
        case UInt8(ascii: "l"): try push(newList(try popToMark().map(\.node)))
        case UInt8(ascii: "d"):
            let items = try popToMark()
            let dict = newDict()
            try setItems(items, in: dict)
            try push(Slot(node: .dict(dict), depth: 1))
        case UInt8(ascii: "a"):  // APPEND
            let value = try pop()
            try append([value], to: try top())
        case UInt8(ascii: "e"):  // APPENDS
            let values = try popToMark()
            try append(values, to: try top())
        case UInt8(ascii: "s"):  // SETITEM
            let value = try pop()
            let key = try pop()
            try setItems([key, value], in: try dict(try top()))
        case UInt8(ascii: "u"):  // SETITEMS
            let items = try popToMark()
            try setItems(items, in: try dict(try top()))

        // Stack manipulation and memo
        case UInt8(ascii: "0"): _ = try pop()
        case UInt8(ascii: "1"): _ = try popToMark()
        case UInt8(ascii: "2"): try push(try top())
        case UInt8(ascii: "q"): try memoPut(Int(try readByte("memo key")))
        case UInt8(ascii: "r"): try memoPut(try readUInt32())
        case UInt8(ascii: "p"):
            let text = try readTextLine("PUT operand")
            guard let key = Int(text), key >= 0 else { throw ParseError.malformed("PUT key \(quoted(text, limit: 40)) is malformed") }
            try memoPut(key)
        case 0x94: try memoPut(memo.count)  // MEMOIZE
        case UInt8(ascii: "h"): try push(try memoGet(Int(try readByte("memo key"))))
        case UInt8(ascii: "j"): try push(try memoGet(try readUInt32()))
        case UInt8(ascii: "g"):
            let text = try readTextLine("GET operand")
            guard let key = Int(text) else { throw ParseError.malformed("GET key \(quoted(text, limit: 40)) is malformed") }
            try push(try memoGet(key))

        // Globals, calls, objects
        case UInt8(ascii: "c"):  // GLOBAL: module\nname\n
            let module = try readTextLine("GLOBAL module")
            let name = try readTextLine("GLOBAL name")
            try push(try resolveGlobal(module: module, name: name))
        case 0x93:  // STACK_GLOBAL
            let name = try pop()
            let module = try pop()
            guard let moduleText = module.node.string, let nameText = name.node.string else {
                throw ParseError.malformed("STACK_GLOBAL needs two strings, got \(module.node.kindName) and \(name.node.kindName)")
            }
            try push(try resolveGlobal(module: moduleText, name: nameText))
        case UInt8(ascii: "R"), 0x81:  // REDUCE, NEWOBJ: callable(*arguments)
            let arguments = try pop()
            let callable = try pop()
            try push(try call(callable, try tupleItems(arguments)))
        case 0x92:  // NEWOBJ_EX: cls, args, kwargs
            let keywords = try pop()
            let arguments = try pop()
            let callable = try pop()
            guard case .dict(let dict) = keywords.node, dict.entries.isEmpty else {
                throw ParseError.unsupported("keyword arguments in NEWOBJ_EX are not supported")
            }
            try push(try call(callable, try tupleItems(arguments)))
        case UInt8(ascii: "i"):  // INST: module\nname\n, arguments from the mark
            let module = try readTextLine("INST module")
            let name = try readTextLine("INST name")
            let callable = Slot(node: .scalar(try resolveGlobal(module: module, name: name)), depth: 1)
            let arguments = try popToMark()
            try push(try call(callable, arguments))
        case UInt8(ascii: "o"):  // OBJ: mark, callable, arguments...
            var items = try popToMark()
            guard !items.isEmpty else { throw ParseError.malformed("OBJ without a class") }
            let callable = items.removeFirst()
            try push(try call(callable, items))
        case UInt8(ascii: "b"):  // BUILD
            let state = try pop()
            try build(try top(), state)
        case UInt8(ascii: "Q"):  // BINPERSID
            let id = try pop()
            try push(try persistent(id))
        case UInt8(ascii: "P"):  // PERSID
            let id = try readTextLine("PERSID operand")
            try push(try persistent(Slot(node: .scalar(.string(id)), depth: 1)))
        case 0x82, 0x83, 0x84:
            throw ParseError.unsupported("extension-registry opcodes (EXT1/2/4) are not supported")
        default:
            throw ParseError.malformed("unknown opcode")
        }
        return nil
    }

    /// The items of a call's argument tuple, with their depths (a tuple's items are at most one
    /// level shallower than the tuple).
    func tupleItems(_ arguments: Slot) throws -> [Slot] {
        guard case .tuple(let elements) = arguments.node else {
            throw ParseError.malformed("call arguments must be a tuple, got \(arguments.node.kindName)")
        }
        return elements.map { Slot(node: $0, depth: max(1, arguments.depth - 1)) }
    }

    func longValue(_ data: [UInt8]) -> PickleValue {
        if data.isEmpty { return .int(0) }
        if data.count <= 8 {
            var value: UInt64 = 0
            for (index, byte) in data.enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            // Sign-extend from the top byte.
            if data.count < 8 && data[data.count - 1] & 0x80 != 0 {
                value |= UInt64.max << (8 * UInt64(data.count))
            }
            return .int(Int(Int64(bitPattern: value)))
        }
        return .bigInt(data)
    }

    func dict(_ target: Slot) throws -> DictBox {
        guard case .dict(let dict) = target.node else {
            throw ParseError.malformed("SETITEM on a \(target.node.kindName)")
        }
        return dict
    }

    func append(_ values: [Slot], to target: Slot) throws {
        guard case .list(let list) = target.node else {
            throw ParseError.malformed("APPEND to a \(target.node.kindName)")
        }
        list.elements.append(contentsOf: values.map(\.node))
    }

    func setItems(_ items: [Slot], in dict: DictBox) throws {
        guard items.count % 2 == 0 else { throw ParseError.malformed("dict items come in an odd number") }
        var index = 0
        while index < items.count {
            try dict.set(items[index].node, items[index + 1].node)
            index += 2
        }
    }

    func build(_ target: Slot, _ state: Slot) throws {
        switch target.node {
        case .object(let object): object.state = state.node
        case .dict(let dict): dict.state = state.node
        default: throw ParseError.malformed("BUILD on a \(target.node.kindName)")
        }
    }

    /// Decodes a protocol-0 STRING operand: `'text'` or `"text"` with Python escapes.
    func decodeQuotedString(_ line: [UInt8]) throws -> [UInt8] {
        guard line.count >= 2, let quote = line.first, quote == 0x27 || quote == 0x22, line.last == quote else {
            throw ParseError.malformed("STRING operand is not quoted")
        }
        let body = line[1..<(line.count - 1)]
        var result: [UInt8] = []
        var index = body.startIndex
        func hexValue(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x41...0x46: byte - 0x41 + 10
            case 0x61...0x66: byte - 0x61 + 10
            default: nil
            }
        }
        while index < body.endIndex {
            let byte = body[index]
            index += 1
            guard byte == 0x5c else {
                result.append(byte)
                continue
            }
            guard index < body.endIndex else { throw ParseError.malformed("STRING operand ends in a backslash") }
            let escape = body[index]
            index += 1
            switch escape {
            case UInt8(ascii: "n"): result.append(0x0a)
            case UInt8(ascii: "r"): result.append(0x0d)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "a"): result.append(0x07)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0c)
            case UInt8(ascii: "v"): result.append(0x0b)
            case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): result.append(escape)
            case UInt8(ascii: "x"):
                guard index + 1 < body.endIndex, let high = hexValue(body[index]), let low = hexValue(body[index + 1]) else {
                    throw ParseError.malformed("STRING operand has a bad \\x escape")
                }
                result.append(high << 4 | low)
                index += 2
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var value = Int(escape - 0x30)
                var digits = 1
                while digits < 3, index < body.endIndex, (0x30...0x37).contains(body[index]) {
                    value = value * 8 + Int(body[index] - 0x30)
                    index += 1
                    digits += 1
                }
                result.append(UInt8(truncatingIfNeeded: value))
            default:
                result.append(0x5c)
                result.append(escape)
            }
        }
        return result
    }

    /// Decodes a protocol-0 UNICODE operand (Python's raw-unicode-escape: `\uXXXX`, `\UXXXXXXXX`,
    /// every other byte a Latin-1 character).
    func decodeRawUnicodeEscape(_ line: [UInt8]) throws -> String {
        var scalars = String.UnicodeScalarView()
        var index = 0
        while index < line.count {
            let byte = line[index]
            if byte == 0x5c, index + 1 < line.count, line[index + 1] == UInt8(ascii: "u") || line[index + 1] == UInt8(ascii: "U") {
                let width = line[index + 1] == UInt8(ascii: "u") ? 4 : 8
                guard index + 2 + width <= line.count,
                    let value = UInt32(String(decoding: line[(index + 2)..<(index + 2 + width)], as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(value)
                else {
                    throw ParseError.malformed("UNICODE operand has a bad escape")
                }
                scalars.append(scalar)
                index += 2 + width
            } else {
                scalars.append(Unicode.Scalar(byte))
                index += 1
            }
        }
        return String(scalars)
    }
}
