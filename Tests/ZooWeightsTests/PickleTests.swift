import Foundation
import Testing
import ZooWeights

/// Hand-made pickles: what the unpickler builds, and what it refuses.
@Suite struct PickleTests {
    // Opcode helpers, named after pickletools.
    static func op(_ character: Character) -> [UInt8] { [character.asciiValue ?? 0] }
    static let proto2: [UInt8] = [0x80, 2]
    static let mark = op("(")
    static let stop = op(".")
    static func binunicode(_ text: String) -> [UInt8] { op("X") + le32(UInt32(text.utf8.count)) + Array(text.utf8) }
    static func shortBinunicode(_ text: String) -> [UInt8] { [0x8c, UInt8(text.utf8.count)] + Array(text.utf8) }
    static func binint1(_ value: UInt8) -> [UInt8] { op("K") + [value] }
    static func global(_ module: String, _ name: String) -> [UInt8] { op("c") + Array("\(module)\n\(name)\n".utf8) }

    static var plain: Unpickler { Unpickler(allowList: PickleAllowList([:])) }

    @Test func protocol2Containers() throws {
        // {'a': (1, -2, 3.5), 'b': [300, 70000, 'x'], 'a2': <the same tuple, from the memo>, 'n': None, 't': True}
        var bytes = Self.proto2 + Self.op("}") + Self.op("q") + [0] + Self.mark
        bytes += Self.binunicode("a") + Self.binint1(1) + Self.op("J") + le32(UInt32(bitPattern: -2))
        bytes += Self.op("G") + withUnsafeBytes(of: (3.5 as Double).bitPattern.bigEndian) { Array($0) }
        bytes += [0x87] + Self.op("q") + [1]
        bytes += Self.binunicode("b") + Self.op("]") + Self.op("M") + le16(300) + Self.op("a")
        bytes += Self.op("J") + le32(70000) + Self.op("a") + Self.shortBinunicode("x") + Self.op("a")
        bytes += Self.binunicode("a2") + Self.op("h") + [1]
        bytes += Self.binunicode("n") + Self.op("N") + Self.binunicode("t") + [0x88]
        bytes += Self.op("u") + Self.stop
        let value = try Self.plain.load(bytes)
        guard case .dict(let dict) = value else {
            Issue.record("expected a dict, got \(value.kindName)")
            return
        }
        #expect(dict.entries.compactMap(\.key.string) == ["a", "b", "a2", "n", "t"])
        let tuple = try #require(dict["a"]?.sequence)
        #expect(tuple.count == 3)
        #expect(tuple[0].int == 1)
        #expect(tuple[1].int == -2)
        if case .float(let number) = tuple[2] { #expect(number == 3.5) } else { Issue.record("not a float") }
        #expect(dict["a2"]?.sequence?.count == 3)
        let list = try #require(dict["b"]?.sequence)
        #expect(list.map(\.int) == [300, 70000, nil])
        #expect(list.last?.string == "x")
        if case .none? = dict["n"] {} else { Issue.record("n is not None") }
        #expect(dict["t"]?.int == 1)
    }

    @Test func protocol4FramesMemoizeAndStackGlobal() throws {
        let allow = PickleAllowList(["collections.OrderedDict": PickleAllowList.torch.rules["collections.OrderedDict"]!])
        let body =
            Self.shortBinunicode("collections") + [0x94] + Self.shortBinunicode("OrderedDict") + [0x94] + [0x93] + [0x94]
            + Self.op(")") + Self.op("R") + [0x94] + Self.mark
            + [0x8d] + le64(3) + Array("key".utf8) + [0x94]
            + [0x8e] + le64(2) + [0xde, 0xad]
            + Self.op("u") + Self.stop
        let bytes: [UInt8] = [0x80, 4, 0x95] + le64(UInt64(body.count)) + body
        let value = try Unpickler(allowList: allow).load(bytes)
        guard case .dict(let dict) = value, case .bytes(let data)? = dict["key"] else {
            Issue.record("expected {'key': b'\\xde\\xad'}, got \(value.kindName)")
            return
        }
        #expect(data == [0xde, 0xad])
    }

    @Test func protocol0TextOpcodes() throws {
        // (dp0\nS'it\'s'\np1\nI42\nsV\u00fcber\nL12345678901L\ns...
        let text =
            "(dp0\nS'it\\'s\\n\\x41'\np1\nI42\nsVu\\u00fcber\np2\nL12345678901L\nsS\"f\"\nF2.5\nsI01\n(lp3\nI1\naI00\nasS'tup'\n(I7\ng3\ntp5\ns.".utf8
        let value = try Self.plain.load(Array(text))
        guard case .dict(let dict) = value else {
            Issue.record("expected a dict, got \(value.kindName)")
            return
        }
        #expect(dict["it's\nA"]?.int == 42)
        #expect(dict["u\u{fc}ber"]?.int == 12_345_678_901)
        if case .float(let number)? = dict["f"] { #expect(number == 2.5) } else { Issue.record("no float") }
        // True is a key too: kept in order.
        #expect(dict.entries.count == 5)
        let tuple = try #require(dict["tup"]?.sequence)
        #expect(tuple.first?.int == 7)
        #expect(tuple.last?.sequence?.map(\.int) == [1, 0])
    }

    @Test func longIntegers() throws {
        let magic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]
        let big = try Self.plain.load(Self.proto2 + [0x8a, 10] + magic + Self.stop)
        guard case .bigInt(let bytes) = big else {
            Issue.record("expected a big integer")
            return
        }
        #expect(bytes == magic)
        #expect(try Self.plain.load(Self.proto2 + [0x8a, 1, 0xff] + Self.stop).int == -1)
        #expect(try Self.plain.load(Self.proto2 + [0x8a, 2, 0x00, 0x80] + Self.stop).int == -32768)
        #expect(try Self.plain.load(Self.proto2 + [0x8a, 0] + Self.stop).int == 0)
        #expect(try Self.plain.load(Self.proto2 + [0x8b] + le32(2) + [0x01, 0x01] + Self.stop).int == 257)
    }

    @Test func customAllowListForNumPyStylePickles() throws {
        // A py2-era pickle: numpy.core.multiarray._reconstruct(ndarray, (0,), 'b') then BUILD
        // with a state holding a BINSTRING, read with byteStrings = .bytes.
        let allow = PickleAllowList([
            "numpy.core.multiarray._reconstruct": .record,
            "numpy.ndarray": .record,
            "numpy.dtype": .function { arguments in
                guard case .bytes(let name)? = arguments.first else { return .none }
                return .string("dtype(\(String(decoding: name, as: UTF8.self)))")
            },
        ])
        let bytes =
            Self.proto2 + Self.global("numpy.core.multiarray", "_reconstruct") + Self.global("numpy", "ndarray")
            + Self.binint1(0) + [0x85] + Self.op("U") + [1] + Array("b".utf8) + [0x87] + Self.op("R")
            + Self.mark + Self.binint1(1) + Self.global("numpy", "dtype") + Self.op("U") + [2] + Array("u1".utf8) + [0x85]
            + Self.op("R") + Self.op("T") + le32(3) + [1, 2, 255] + Self.op("t") + Self.op("b") + Self.stop
        let unpickler = Unpickler(allowList: allow, byteStrings: .bytes)
        let value = try unpickler.load(bytes)
        guard case .object(let object) = value else {
            Issue.record("expected a recorded object, got \(value.kindName)")
            return
        }
        #expect(object.type.qualifiedName == "numpy.core.multiarray._reconstruct")
        #expect(object.arguments.count == 3)
        let state = try #require(object.state?.sequence)
        #expect(state.count == 3)
        #expect(state[1].string == "dtype(u1)")
        if case .bytes(let raw) = state[2] { #expect(raw == [1, 2, 255]) } else { Issue.record("state[2] is not bytes") }

        let latin = try Unpickler(allowList: allow, byteStrings: .latin1).load(Self.proto2 + Self.op("U") + [1, 0xe9] + Self.stop)
        #expect(latin.string == "\u{e9}")
    }

    static let disallowed: [(String, [UInt8])] = [
        ("posix.system", proto2 + global("posix", "system") + binunicode("echo pwned") + [0x85] + op("R") + stop),
        ("os.system", proto2 + shortBinunicode("os") + shortBinunicode("system") + [0x93] + stop),
        ("builtins.eval", proto2 + global("builtins", "eval") + stop),
        ("subprocess.Popen", mark + op("i") + Array("subprocess\nPopen\n".utf8) + stop),
        ("builtins.getattr", proto2 + global("builtins", "getattr") + stop),
        ("torch._utils._rebuild_qtensor", proto2 + global("torch._utils", "_rebuild_qtensor") + stop),
        ("nt.system", Array("cnt\nsystem\n(S'calc'\ntR.".utf8)),
    ]

    @Test(arguments: disallowed.map(\.0))
    func globalsOffTheAllowListAreRejected(_ global: String) throws {
        let bytes = try #require(Self.disallowed.first { $0.0 == global }?.1)
        let error = expectWeightError {
            _ = try Unpickler(allowList: .torch).load(bytes, source: "evil.pkl")
        }
        #expect(error?.kind == .disallowedGlobal)
        #expect(error?.path == "evil.pkl")
        #expect(error?.message.contains("global '\(global)' is not allowed") == true, "\(String(describing: error))")
    }

    static let malformed: [(String, [UInt8])] = [
        ("empty", []),
        ("no STOP", proto2 + binint1(1)),
        ("stack underflow", proto2 + op("R") + stop),
        ("pop past mark", proto2 + binint1(1) + mark + op("0") + stop),
        ("unknown opcode", proto2 + [0xff] + stop),
        ("length past end", proto2 + op("X") + le32(0xffff_ffff) + stop),
        ("8-byte length past end", proto2 + [0x8d] + le64(UInt64.max) + stop),
        ("frame past end", [0x80, 4, 0x95] + le64(1 << 40) + stop),
        ("missing memo", proto2 + op("j") + le32(12345) + stop),
        ("invalid UTF-8", proto2 + shortBinunicode("ok").dropLast(2) + [0xff, 0xfe] + stop),
        ("set", proto2 + [0x8f] + stop),
        ("append to int", proto2 + binint1(1) + binint1(2) + op("a") + stop),
        ("setitem odd", proto2 + op("}") + mark + binint1(1) + op("u") + stop),
        ("unhashable key", proto2 + op("}") + op("]") + binint1(1) + op("s") + stop),
        ("call a non-callable", proto2 + binint1(1) + op(")") + op("R") + stop),
        ("persistent id without handler", proto2 + binunicode("x") + op("Q") + stop),
        ("protocol 6", [0x80, 6] + stop),
        ("negative BINSTRING", proto2 + op("T") + le32(0xffff_fff0) + stop),
        ("deep marks", Array(repeating: 0x28, count: 100_000) + stop),
        ("text int garbage", Array("I12abc\n.".utf8)),
        ("text line without newline", Array("I12".utf8)),
        ("kwargs in NEWOBJ_EX", proto2 + global("collections", "OrderedDict") + op(")") + op("}") + binunicode("k") + binint1(1) + op("s") + [0x92] + stop),
        ("out-of-band buffer", [0x80, 5, 0x97] + stop),
    ]

    @Test(arguments: malformed.map(\.0))
    func malformedPicklesThrow(_ name: String) throws {
        let bytes = try #require(Self.malformed.first { $0.0 == name }?.1)
        let error = expectWeightError { _ = try Unpickler(allowList: .torch).load(bytes, source: "bad.pkl") }
        #expect(error?.path == "bad.pkl")
        #expect(error?.kind != .disallowedGlobal)
    }

    @Test func limitsAreEnforced() throws {
        let limits = Unpickler.Limits(maximumStackDepth: 10, maximumMemoSize: 2, maximumMarkDepth: 3)
        let unpickler = Unpickler(allowList: .torch, limits: limits)
        _ = expectWeightError { _ = try unpickler.load(Array(repeating: 0x4e, count: 11) + Self.stop) }
        _ = expectWeightError {
            _ = try unpickler.load(Self.proto2 + Self.op("N") + [0x94, 0x94] + Self.op("N") + [0x94] + Self.stop)
        }
        _ = expectWeightError { _ = try unpickler.load(Array(repeating: 0x28, count: 4) + Self.stop) }
        #expect(try unpickler.load(Array(repeating: 0x4e, count: 10) + Self.stop).kindName == "None")
    }

    /// A list that contains itself cannot become a tree: it is rejected (and, because the
    /// machine empties its containers at the end, the cycle does not leak).
    @Test(.timeLimit(.minutes(1))) func selfReferenceIsRejected() throws {
        var bytes = Self.proto2 + Self.op("]") + Self.op("q") + [0]
        for _ in 0..<50_000 { bytes += Self.op("h") + [0] + Self.op("a") }
        bytes += Self.stop
        let error = expectWeightError { _ = try Self.plain.load(bytes) }
        #expect(error?.message.contains("nests deeper") == true, "\(String(describing: error))")
    }

    /// "Billion laughs": each level holds the previous one twice. The tree would double per
    /// level, so the size budget stops it, quickly.
    @Test(.timeLimit(.minutes(1))) func sharedReferencesCannotExplode() throws {
        var bytes = Self.proto2 + Self.binint1(7) + Self.op("q") + [0]
        for level in 1..<60 {
            bytes += Self.op("h") + [UInt8(level - 1)] + Self.op("h") + [UInt8(level - 1)] + [0x86] + Self.op("q") + [UInt8(level)]
        }
        bytes += Self.stop
        let error = expectWeightError { _ = try Self.plain.load(bytes) }
        #expect(error?.message.contains("more values than its size allows") == true, "\(String(describing: error))")
    }

    /// Deep nesting, built with tuples or with lists chained through the memo, is refused at a
    /// bounded depth, so neither building nor freeing values can overflow the stack.
    @Test(.timeLimit(.minutes(1))) func deepNestingIsRefused() throws {
        let tuples = Self.proto2 + Self.binint1(1) + [UInt8](repeating: 0x85, count: 1_000_000) + Self.stop
        let tupleError = expectWeightError { _ = try Self.plain.load(tuples) }
        #expect(tupleError?.message.contains("nest deeper") == true, "\(String(describing: tupleError))")

        // L0 = []; repeat: Lk+1 = []; Lk.append(Lk+1) — a chain a million lists deep.
        var lists = Self.proto2 + Self.op("]") + Self.op("r") + le32(0)
        for level in 0..<200_000 {
            lists += Self.op("]") + Self.op("r") + le32(UInt32(level + 1))  // new list, memo[k+1]
            lists += Self.op("j") + le32(UInt32(level)) + Self.op("j") + le32(UInt32(level + 1)) + Self.op("a") + Self.op("0")
        }
        lists += Self.op("0") + Self.op("j") + le32(0) + Self.stop
        let listError = expectWeightError { _ = try Self.plain.load(lists) }
        #expect(listError?.message.contains("nests deeper") == true, "\(String(describing: listError))")
    }
}
