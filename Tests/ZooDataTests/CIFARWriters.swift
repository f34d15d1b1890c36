import Foundation
import ZooData

// The official CIFAR formats, written byte by byte so that the tests need no Python.

let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

let cifar100FineNames = """
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle \
    caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish \
    forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle \
    mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine \
    possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider squirrel streetcar \
    sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree \
    wolf woman worm
    """.split(separator: " ").map(String.init)

let cifar100CoarseNames = """
    aquatic_mammals fish flowers food_containers fruit_and_vegetables household_electrical_devices household_furniture \
    insects large_carnivores large_man-made_outdoor_things large_natural_outdoor_scenes large_omnivores_and_herbivores \
    medium_mammals non-insect_invertebrates people reptiles small_mammals trees vehicles_1 vehicles_2
    """.split(separator: " ").map(String.init)

/// One CIFAR record: labels and 3072 planar pixel bytes (1024 red, 1024 green, 1024 blue).
struct TestRecord {
    var label: UInt8
    var coarse: UInt8 = 0
    var planes: [UInt8]

    /// A record with pixels derived from `seed`, so that every record differs.
    init(label: UInt8, coarse: UInt8 = 0, seed: Int) {
        self.label = label
        self.coarse = coarse
        self.planes = (0..<3072).map { UInt8((($0 * 7) ^ (seed * 131) + $0 / 97) & 0xFF) }
    }

    /// The image zoo should decode: interleaved RGB.
    var image: Image {
        var pixels = [UInt8](repeating: 0, count: 3072)
        for p in 0..<1024 {
            pixels[3 * p] = planes[p]
            pixels[3 * p + 1] = planes[1024 + p]
            pixels[3 * p + 2] = planes[2048 + p]
        }
        return Image(width: 32, height: 32, pixels: pixels)
    }
}

/// `data_batch_N.bin` / `test_batch.bin`: per record, 1 label byte and 3072 pixel bytes.
func cifar10Binary(_ records: [TestRecord]) -> [UInt8] {
    records.flatMap { [$0.label] + $0.planes }
}

/// `train.bin` / `test.bin`: per record, the coarse label, the fine label and 3072 pixel bytes.
func cifar100Binary(_ records: [TestRecord]) -> [UInt8] {
    records.flatMap { [$0.coarse, $0.label] + $0.planes }
}

// MARK: - Pickles as Python 2's cPickle writes them (protocol 2)

/// A value to pickle.
indirect enum PyValue {
    /// A Python 2 `str` (Python 3 `bytes`).
    case bytes([UInt8])
    case int(Int)
    case list([PyValue])
    case tuple([PyValue])
    /// A dict, in the order given.
    case dict([(String, PyValue)])
    /// A NumPy array of `shape` with dtype `dtype`, pickled through `module._reconstruct`.
    case array(shape: [Int], dtype: String, data: [UInt8], module: String, fortran: Bool)
    /// `module.name(*arguments)`: a call the reader must refuse unless it is allowed.
    case call(module: String, name: String, arguments: [PyValue])

    static func text(_ string: String) -> PyValue { .bytes(Array(string.utf8)) }

    static func uint8Array(_ rows: [[UInt8]], module: String = "numpy.core.multiarray") -> PyValue {
        .array(shape: [rows.count, rows.first?.count ?? 0], dtype: "u1", data: rows.flatMap { $0 }, module: module, fortran: false)
    }
}

/// Writes pickles opcode by opcode: `.python2` as Python 2.7's cPickle writes the official
/// CIFAR files (SHORT_BINSTRING and BINSTRING byte strings, ints 0/1 in dtype calls), or
/// `.python3` as Python 3's `pickle.dumps(obj, protocol=2)` does (bytes through
/// `_codecs.encode(str, 'latin1')`, BINUNICODE text, `numpy._core`, NEWTRUE/NEWFALSE).
struct TestPickler {
    enum Style { case python2, python3 }

    let style: Style
    private(set) var bytes: [UInt8] = [0x80, 0x02]  // PROTO 2
    private var memo = 1

    init(style: Style = .python2) { self.style = style }

    static func pickle(_ value: PyValue, style: Style = .python2) -> [UInt8] {
        var pickler = TestPickler(style: style)
        pickler.save(value)
        pickler.bytes.append(UInt8(ascii: "."))  // STOP
        return pickler.bytes
    }

    private mutating func put() {
        if memo < 256 {
            bytes += [UInt8(ascii: "q"), UInt8(memo)]  // BINPUT
        } else {
            bytes += [UInt8(ascii: "r")] + littleEndian(UInt32(memo))  // LONG_BINPUT
        }
        memo += 1
    }

    private func littleEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value & 0xFF), UInt8((value >> 8) & 0xFF), UInt8((value >> 16) & 0xFF), UInt8(value >> 24)]
    }

    private mutating func global(_ module: String, _ name: String) {
        bytes += [UInt8(ascii: "c")] + Array("\(module)\n\(name)\n".utf8)  // GLOBAL
        put()
    }

    private mutating func unicode(_ text: String) {
        let utf8 = Array(text.utf8)
        bytes += [UInt8(ascii: "X")] + littleEndian(UInt32(utf8.count)) + utf8  // BINUNICODE
        put()
    }

    private mutating func byteString(_ data: [UInt8]) {
        switch style {
        case .python2:
            if data.count < 256 {
                bytes += [UInt8(ascii: "U"), UInt8(data.count)] + data  // SHORT_BINSTRING
            } else {
                bytes += [UInt8(ascii: "T")] + littleEndian(UInt32(data.count)) + data  // BINSTRING
            }
            put()
        case .python3:
            global("_codecs", "encode")
            unicode(String(String.UnicodeScalarView(data.map { Unicode.Scalar($0) })))
            unicode("latin1")
            bytes += [0x86, UInt8(ascii: "R")]  // TUPLE2, REDUCE
            put()
        }
    }

    private mutating func int(_ value: Int) {
        if value >= 0 && value < 256 {
            bytes += [UInt8(ascii: "K"), UInt8(value)]  // BININT1
        } else if value >= 0 && value < 65536 {
            bytes += [UInt8(ascii: "M"), UInt8(value & 0xFF), UInt8(value >> 8)]  // BININT2
        } else {
            bytes += [UInt8(ascii: "J")] + littleEndian(UInt32(bitPattern: Int32(value)))  // BININT
        }
    }

    private mutating func bool(_ value: Bool) {
        bytes.append(value ? 0x88 : 0x89)  // NEWTRUE, NEWFALSE
    }

    mutating func save(_ value: PyValue) {
        switch value {
        case .bytes(let data): byteString(data)
        case .int(let number): int(number)
        case .list(let items):
            bytes.append(UInt8(ascii: "]"))  // EMPTY_LIST
            put()
            if items.count == 1 {
                save(items[0])
                bytes.append(UInt8(ascii: "a"))  // APPEND
            } else {
                // cPickle appends in batches of 1000 items; smaller batches here exercise several.
                for start in stride(from: 0, to: items.count, by: 7) {
                    bytes.append(UInt8(ascii: "("))  // MARK
                    for item in items[start..<min(start + 7, items.count)] { save(item) }
                    bytes.append(UInt8(ascii: "e"))  // APPENDS
                }
            }
        case .tuple(let items):
            bytes.append(UInt8(ascii: "("))  // MARK
            for item in items { save(item) }
            bytes.append(UInt8(ascii: "t"))  // TUPLE
        case .dict(let entries):
            bytes.append(UInt8(ascii: "}"))  // EMPTY_DICT
            put()
            if entries.count == 1 {
                byteString(Array(entries[0].0.utf8))
                save(entries[0].1)
                bytes.append(UInt8(ascii: "s"))  // SETITEM
            } else if !entries.isEmpty {
                bytes.append(UInt8(ascii: "("))  // MARK
                for (key, item) in entries {
                    byteString(Array(key.utf8))
                    save(item)
                }
                bytes.append(UInt8(ascii: "u"))  // SETITEMS
            }
        case .array(let shape, let dtype, let data, let module, let fortran):
            // numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
            global(module, "_reconstruct")
            global("numpy", "ndarray")
            int(0)
            bytes.append(0x85)  // TUPLE1
            byteString(Array("b".utf8))
            bytes += [0x87, UInt8(ascii: "R")]  // TUPLE3, REDUCE
            put()
            // BUILD state: (1, shape, dtype, is_fortran, raw bytes)
            bytes.append(UInt8(ascii: "("))
            int(1)
            if shape.count == 2 {
                int(shape[0])
                int(shape[1])
                bytes.append(0x86)  // TUPLE2
            } else {
                bytes.append(UInt8(ascii: "("))
                for dimension in shape { int(dimension) }
                bytes.append(UInt8(ascii: "t"))  // TUPLE
            }
            // numpy.dtype('u1', 0, 1) with BUILD state (3, '|', None, None, None, -1, -1, 0)
            global("numpy", "dtype")
            // Python 2's NumPy passes the ints 0 and 1, Python 3's False and True.
            switch style {
            case .python2:
                byteString(Array(dtype.utf8))
                int(0)
                int(1)
            case .python3:
                unicode(dtype)
                bool(false)
                bool(true)
            }
            bytes += [0x87, UInt8(ascii: "R")]
            put()
            bytes.append(UInt8(ascii: "("))
            int(3)
            switch style {
            case .python2: byteString(Array("|".utf8))
            case .python3: unicode("|")
            }
            bytes += Array("NNN".utf8)
            int(-1)
            int(-1)
            int(0)
            bytes += [UInt8(ascii: "t"), UInt8(ascii: "b")]  // TUPLE, BUILD
            bool(fortran)
            byteString(data)
            bytes += [UInt8(ascii: "t"), UInt8(ascii: "b")]
        case .call(let module, let name, let arguments):
            global(module, name)
            bytes.append(UInt8(ascii: "("))
            for argument in arguments { save(argument) }
            bytes += [UInt8(ascii: "t"), UInt8(ascii: "R")]
            put()
        }
    }
}

// MARK: - CIFAR python-form files

func cifar10Pickle(_ records: [TestRecord], batchLabel: String, style: TestPickler.Style = .python2, module: String? = nil) -> [UInt8] {
    let arrayModule = module ?? (style == .python2 ? "numpy.core.multiarray" : "numpy._core.multiarray")
    // The order of Python 2's dict in the official files.
    return TestPickler.pickle(
        .dict([
            ("data", .uint8Array(records.map(\.planes), module: arrayModule)),
            ("labels", .list(records.map { .int(Int($0.label)) })),
            ("batch_label", .text(batchLabel)),
            ("filenames", .list(records.indices.map { .text("image_\($0).png") })),
        ]), style: style)
}

func cifar10MetaPickle(names: [String] = cifar10Names, style: TestPickler.Style = .python2) -> [UInt8] {
    TestPickler.pickle(
        .dict([
            ("num_cases_per_batch", .int(10000)),
            ("label_names", .list(names.map { .text($0) })),
            ("num_vis", .int(3072)),
        ]), style: style)
}

func cifar100Pickle(_ records: [TestRecord], batchLabel: String, style: TestPickler.Style = .python2) -> [UInt8] {
    let module = style == .python2 ? "numpy.core.multiarray" : "numpy._core.multiarray"
    return TestPickler.pickle(
        .dict([
            ("filenames", .list(records.indices.map { .text("image_\($0).png") })),
            ("batch_label", .text(batchLabel)),
            ("fine_labels", .list(records.map { .int(Int($0.label)) })),
            ("coarse_labels", .list(records.map { .int(Int($0.coarse)) })),
            ("data", .uint8Array(records.map(\.planes), module: module)),
        ]), style: style)
}

func cifar100MetaPickle(style: TestPickler.Style = .python2) -> [UInt8] {
    TestPickler.pickle(
        .dict([
            ("fine_label_names", .list(cifar100FineNames.map { .text($0) })),
            ("coarse_label_names", .list(cifar100CoarseNames.map { .text($0) })),
        ]), style: style)
}

// MARK: - Whole datasets

/// Records per CIFAR-10 batch file: a few each, with labels cycling through the classes.
func cifar10Records(batch: Int, count: Int = 3) -> [TestRecord] {
    (0..<count).map { TestRecord(label: UInt8((batch * 3 + $0) % 10), seed: batch * 100 + $0) }
}

/// Writes `cifar-10-batches-bin` under `parent`, returning the folder.
@discardableResult
func writeCIFAR10Binary(in parent: URL) throws -> URL {
    let folder = parent.appendingPathComponent("cifar-10-batches-bin")
    try makeFolder(folder)
    for batch in 1...5 { try write(cifar10Binary(cifar10Records(batch: batch)), to: folder.appendingPathComponent("data_batch_\(batch).bin")) }
    try write(cifar10Binary(cifar10Records(batch: 0, count: 4)), to: folder.appendingPathComponent("test_batch.bin"))
    // As in the official archive: one name a line, then blank lines.
    try write(Array((cifar10Names.joined(separator: "\n") + "\n\n").utf8), to: folder.appendingPathComponent("batches.meta.txt"))
    try write(Array("data_batch_1.bin\n".utf8), to: folder.appendingPathComponent("readme.html"))
    return folder
}

/// Writes `cifar-10-batches-py` under `parent`, returning the folder.
@discardableResult
func writeCIFAR10Python(in parent: URL, style: TestPickler.Style = .python2) throws -> URL {
    let folder = parent.appendingPathComponent("cifar-10-batches-py")
    try makeFolder(folder)
    for batch in 1...5 {
        try write(
            cifar10Pickle(cifar10Records(batch: batch), batchLabel: "training batch \(batch) of 5", style: style),
            to: folder.appendingPathComponent("data_batch_\(batch)"))
    }
    try write(
        cifar10Pickle(cifar10Records(batch: 0, count: 4), batchLabel: "testing batch 1 of 1", style: style),
        to: folder.appendingPathComponent("test_batch"))
    try write(cifar10MetaPickle(style: style), to: folder.appendingPathComponent("batches.meta"))
    return folder
}

/// CIFAR-100 records: fine labels spread over the classes, coarse labels over the superclasses.
func cifar100Records(split: CIFARSplit) -> [TestRecord] {
    let count = split == .train ? 5 : 3
    return (0..<count).map { index in
        let fine = (index * 23 + (split == .train ? 0 : 50)) % 100
        return TestRecord(label: UInt8(fine), coarse: UInt8(fine % 20), seed: index + (split == .train ? 0 : 1000))
    }
}

@discardableResult
func writeCIFAR100Binary(in parent: URL) throws -> URL {
    let folder = parent.appendingPathComponent("cifar-100-binary")
    try makeFolder(folder)
    try write(cifar100Binary(cifar100Records(split: .train)), to: folder.appendingPathComponent("train.bin"))
    try write(cifar100Binary(cifar100Records(split: .test)), to: folder.appendingPathComponent("test.bin"))
    try write(Array((cifar100FineNames.joined(separator: "\n") + "\n").utf8), to: folder.appendingPathComponent("fine_label_names.txt"))
    try write(Array((cifar100CoarseNames.joined(separator: "\n") + "\n").utf8), to: folder.appendingPathComponent("coarse_label_names.txt"))
    return folder
}

@discardableResult
func writeCIFAR100Python(in parent: URL, style: TestPickler.Style = .python2) throws -> URL {
    let folder = parent.appendingPathComponent("cifar-100-python")
    try makeFolder(folder)
    try write(cifar100Pickle(cifar100Records(split: .train), batchLabel: "training batch 1 of 1", style: style), to: folder.appendingPathComponent("train"))
    try write(cifar100Pickle(cifar100Records(split: .test), batchLabel: "testing batch 1 of 1", style: style), to: folder.appendingPathComponent("test"))
    try write(cifar100MetaPickle(style: style), to: folder.appendingPathComponent("meta"))
    return folder
}
