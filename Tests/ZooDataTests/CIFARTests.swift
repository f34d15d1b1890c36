import Foundation
import Testing
import ZooData

@Suite("CIFAR")
struct CIFARTests {
    /// The expected train and test records of the CIFAR-10 files the tests write.
    static let cifar10Train = (1...5).flatMap { cifar10Records(batch: $0) }
    static let cifar10Test = cifar10Records(batch: 0, count: 4)

    func check(_ dataset: CIFAR10, _ records: [TestRecord], files: [String], form: CIFARForm, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(dataset.form == form, sourceLocation: sourceLocation)
        #expect(dataset.classNames == cifar10Names, sourceLocation: sourceLocation)
        #expect(dataset.count == records.count, sourceLocation: sourceLocation)
        var index = 0
        for (file, recordCount) in files.map({ ($0, records.count / files.count) }) {
            for record in 0..<recordCount {
                #expect(dataset.label(at: index) == Int(records[index].label), sourceLocation: sourceLocation)
                #expect(try dataset.image(at: index) == records[index].image, sourceLocation: sourceLocation)
                #expect(dataset.sampleID(at: index) == dataset.folder.appendingPathComponent(file).path + "#\(record)", sourceLocation: sourceLocation)
                index += 1
            }
        }
    }

    @Test("CIFAR-10 binary: records, labels, names; the folder or its parent")
    func cifar10Binary() throws {
        try withTemporaryFolder { parent in
            let folder = try writeCIFAR10Binary(in: parent)
            for root in [folder, parent] {
                let train = try CIFAR10(root: root, split: .train)
                #expect(train.folder.path == folder.path)
                try check(train, Self.cifar10Train, files: (1...5).map { "data_batch_\($0).bin" }, form: .binary)
                let test = try CIFAR10(root: root, split: .test)
                try check(test, Self.cifar10Test, files: ["test_batch.bin"], form: .binary)
            }
            // A known pixel, from the layout itself: red plane, row 1, column 2 of record 0 of
            // data_batch_1 is byte 1 + 32 + 2.
            let bytes = try [UInt8](Data(contentsOf: folder.appendingPathComponent("data_batch_1.bin")))
            let image = try CIFAR10(root: folder, split: .train).image(at: 0)
            #expect(pixel(image, 1, 2) == [bytes[1 + 34], bytes[1 + 1024 + 34], bytes[1 + 2048 + 34]])
        }
    }

    @Test("CIFAR-10 python pickles, as Python 2 and as Python 3 write them, equal the binary form", arguments: [TestPickler.Style.python2, .python3])
    func cifar10Python(_ style: TestPickler.Style) throws {
        try withTemporaryFolder { parent in
            let folder = try writeCIFAR10Python(in: parent, style: style)
            for root in [folder, parent] {
                let train = try CIFAR10(root: root, split: .train)
                try check(train, Self.cifar10Train, files: (1...5).map { "data_batch_\($0)" }, form: .python)
                let test = try CIFAR10(root: root, split: .test)
                try check(test, Self.cifar10Test, files: ["test_batch"], form: .python)
            }
            // Both forms side by side: the binary form is preferred.
            try writeCIFAR10Binary(in: parent)
            #expect(try CIFAR10(root: parent, split: .train).form == .binary)
        }
    }

    @Test("CIFAR-10 python: numpy.core and numpy._core are both read")
    func numpyModules() throws {
        try withTemporaryFolder { folder in
            for module in ["numpy.core.multiarray", "numpy._core.multiarray"] {
                for batch in 1...5 {
                    try write(
                        cifar10Pickle(cifar10Records(batch: batch), batchLabel: "b", module: module),
                        to: folder.appendingPathComponent("data_batch_\(batch)"))
                }
                try write(cifar10MetaPickle(), to: folder.appendingPathComponent("batches.meta"))
                let dataset = try CIFAR10(root: folder, split: .train)
                #expect(dataset.count == 15)
                #expect(try dataset.image(at: 14) == Self.cifar10Train[14].image)
            }
        }
    }

    @Test("CIFAR-10 python: arrays as protocol 5 pickles them, through numpy._core.numeric._frombuffer")
    func frombuffer() throws {
        try withTemporaryFolder { folder in
            try writeCIFAR10Python(in: folder)
            let root = folder.appendingPathComponent("cifar-10-batches-py")
            let records = cifar10Records(batch: 0, count: 4)
            func array(_ data: [UInt8], order: String) -> PyValue {
                .call(
                    module: "numpy._core.numeric", name: "_frombuffer",
                    arguments: [
                        .bytes(data), .call(module: "numpy", name: "dtype", arguments: [.text("u1"), .int(0), .int(1)]),
                        .tuple([.int(4), .int(3072)]), .text(order),
                    ])
            }
            let labels = PyValue.list(records.map { .int(Int($0.label)) })
            let test = root.appendingPathComponent("test_batch")
            for order in ["C", "F"] {
                let data = order == "C" ? records.flatMap(\.planes) : (0..<3072).flatMap { column in records.map { $0.planes[column] } }
                try write(TestPickler.pickle(.dict([("data", array(data, order: order)), ("labels", labels)])), to: test)
                let dataset = try CIFAR10(root: root, split: .test)
                for (index, record) in records.enumerated() { #expect(try dataset.image(at: index) == record.image) }
            }
            try write(TestPickler.pickle(.dict([("data", array([1, 2, 3], order: "C")), ("labels", labels)])), to: test)
            expectDataError(source: test.path, "holds 3 bytes") { _ = try CIFAR10(root: root, split: .test) }
        }
    }

    @Test("CIFAR-100 binary and python: fine and coarse labels and names", arguments: [CIFARForm.binary, .python])
    func cifar100(_ form: CIFARForm) throws {
        try withTemporaryFolder { parent in
            let folder = form == .binary ? try writeCIFAR100Binary(in: parent) : try writeCIFAR100Python(in: parent)
            for split in CIFARSplit.allCases {
                let records = cifar100Records(split: split)
                for root in [folder, parent] {
                    let fine = try CIFAR100(root: root, split: split)
                    let coarse = try CIFAR100(root: root, split: split, labels: .coarse)
                    #expect(fine.form == form)
                    #expect(fine.labelKind == .fine && coarse.labelKind == .coarse)
                    #expect(fine.classNames == cifar100FineNames && fine.fineClassNames == cifar100FineNames)
                    #expect(coarse.classNames == cifar100CoarseNames && fine.coarseClassNames == cifar100CoarseNames)
                    #expect(fine.count == records.count && coarse.count == records.count)
                    for (index, record) in records.enumerated() {
                        #expect(fine.label(at: index) == Int(record.label))
                        #expect(fine.coarseLabel(at: index) == Int(record.coarse))
                        #expect(coarse.label(at: index) == Int(record.coarse))
                        #expect(coarse.fineLabel(at: index) == Int(record.label))
                        #expect(try fine.image(at: index) == record.image)
                    }
                    #expect(fine.classCounts.reduce(0, +) == records.count)
                    #expect(coarse.classCounts.count == 20)
                }
            }
            // The reptiles of the shared data: crocodile 27, dinosaur 29, lizard 44, snake 78,
            // turtle 93, superclass 15.
            #expect([27, 29, 44, 78, 93].map { cifar100FineNames[$0] } == ["crocodile", "dinosaur", "lizard", "snake", "turtle"])
            #expect(cifar100CoarseNames[15] == "reptiles")
        }
    }

    @Test("CIFAR-100 python as Python 3 writes it")
    func cifar100Python3() throws {
        try withTemporaryFolder { parent in
            let folder = try writeCIFAR100Python(in: parent, style: .python3)
            let dataset = try CIFAR100(root: folder, split: .train, labels: .coarse)
            let records = cifar100Records(split: .train)
            #expect(dataset.count == records.count)
            #expect((0..<dataset.count).map { dataset.label(at: $0) } == records.map { Int($0.coarse) })
            #expect(try dataset.image(at: 4) == records[4].image)
        }
    }

    // MARK: Damaged and missing files

    @Test("Binary: a file cut mid-record, an empty file, a label out of range, a missing file")
    func damagedBinary() throws {
        try withTemporaryFolder { parent in
            let folder = try writeCIFAR10Binary(in: parent)
            let batch2 = folder.appendingPathComponent("data_batch_2.bin")
            let bytes = try [UInt8](Data(contentsOf: batch2))
            try write(Array(bytes.prefix(3073 + 1500)), to: batch2)
            expectDataError(source: batch2.path, "4573 bytes", "3073-byte records", "truncated") { _ = try CIFAR10(root: folder, split: .train) }
            // The test split does not need that file.
            #expect(try CIFAR10(root: folder, split: .test).count == 4)
            try write([], to: batch2)
            expectDataError(source: batch2.path, "empty file") { _ = try CIFAR10(root: parent, split: .train) }
            var relabelled = bytes
            relabelled[3073] = 10
            try write(relabelled, to: batch2)
            expectDataError(source: batch2.path, "record 1", "label 10") { _ = try CIFAR10(root: folder, split: .train) }
            try FileManager.default.removeItem(at: batch2)
            expectDataError(source: batch2.path, "missing") { _ = try CIFAR10(root: folder, split: .train) }
            let meta = folder.appendingPathComponent("batches.meta.txt")
            try write(Array("airplane\nautomobile\n".utf8), to: meta)
            expectDataError(source: meta.path, "2 class names, not 10") { _ = try CIFAR10(root: folder, split: .test) }
            try FileManager.default.removeItem(at: meta)
            expectDataError(source: meta.path, "missing") { _ = try CIFAR10(root: folder, split: .test) }

            // CIFAR-100: 2 label bytes per record, and the fine label checked against 100 classes.
            let folder100 = try writeCIFAR100Binary(in: parent)
            let train = folder100.appendingPathComponent("train.bin")
            var bytes100 = try [UInt8](Data(contentsOf: train))
            try write(Array(bytes100.dropLast(1)), to: train)
            expectDataError(source: train.path, "3074-byte records") { _ = try CIFAR100(root: parent, split: .train) }
            bytes100[3074 * 2 + 1] = 100
            try write(bytes100, to: train)
            expectDataError(source: train.path, "record 2", "label 100", "0..<100") { _ = try CIFAR100(root: parent, split: .train) }
        }
    }

    @Test("Python: a pickle naming os.system, a wrong array, a label count or dtype that differs")
    func damagedPickles() throws {
        try withTemporaryFolder { folder in
            try writeCIFAR10Python(in: folder)
            let root = folder.appendingPathComponent("cifar-10-batches-py")
            let batch = root.appendingPathComponent("data_batch_4")
            let records = cifar10Records(batch: 4)
            let data = PyValue.uint8Array(records.map(\.planes))
            let labels = PyValue.list(records.map { .int(Int($0.label)) })
            func attempt(_ value: PyValue, _ fragments: String...) throws {
                try write(TestPickler.pickle(value), to: batch)
                let error = expectDataError(source: batch.path) { _ = try CIFAR10(root: root, split: .train) }
                for fragment in fragments {
                    #expect(error?.message.contains(fragment) == true, "'\(fragment)' not in \(error.map(String.init(describing:)) ?? "")")
                }
            }
            try attempt(
                .dict([("data", .call(module: "os", name: "system", arguments: [.text("touch /tmp/pwned")])), ("labels", labels)]),
                "'os.system' is not allowed")
            try attempt(
                .dict([("labels", labels), ("data", data), ("extra", .call(module: "builtins", name: "eval", arguments: [.text("1")]))]),
                "builtins.eval")
            func zeros(_ shape: [Int], _ dtype: String = "u1", bytes: Int) -> PyValue {
                .array(shape: shape, dtype: dtype, data: [UInt8](repeating: 0, count: bytes), module: "numpy.core.multiarray", fortran: false)
            }
            try attempt(.dict([("data", zeros([3, 3071], bytes: 3 * 3071)), ("labels", labels)]), "[3, 3071]", "not [N, 3072]")
            try attempt(.dict([("data", zeros([3, 3072], bytes: 3 * 3072 - 1)), ("labels", labels)]), "holds 9215 bytes")
            try attempt(.dict([("data", zeros([3, 3072], "<i2", bytes: 3 * 3072)), ("labels", labels)]), "dtype is '<i2', not uint8")
            try attempt(.dict([("data", zeros([Int(Int32.max), 3072], bytes: 3072)), ("labels", labels)]), "holds 3072 bytes")
            try attempt(.dict([("data", data), ("labels", .list([.int(1), .int(2)]))]), "2 labels for 3 images")
            try attempt(.dict([("data", data), ("labels", .list([.int(1), .int(2), .int(300)]))]), "'labels'[2] is 300")
            try attempt(.dict([("data", data)]), "no 'labels' entry")
            try attempt(.list([data]), "not the dict")
            try write(Array(TestPickler.pickle(.dict([("data", data), ("labels", labels)])).dropLast(40)), to: batch)
            expectDataError(source: batch.path, "truncated") { _ = try CIFAR10(root: root, split: .train) }
            try write(Array("garbage".utf8), to: batch)
            expectDataError(source: batch.path, "not a Python pickle") { _ = try CIFAR10(root: root, split: .train) }
            try write([], to: batch)
            expectDataError(source: batch.path, "empty file") { _ = try CIFAR10(root: root, split: .train) }

            // A Fortran-ordered array is transposed back.
            let transposed = (0..<3072).flatMap { column in records.map { $0.planes[column] } }
            let fortran = PyValue.array(shape: [3, 3072], dtype: "u1", data: transposed, module: "numpy.core.multiarray", fortran: true)
            try write(TestPickler.pickle(.dict([("data", fortran), ("labels", labels)])), to: batch)
            let dataset = try CIFAR10(root: root, split: .train)
            #expect(try dataset.image(at: 10) == records[1].image)

            // The meta pickle.
            let meta = root.appendingPathComponent("batches.meta")
            try write(cifar10MetaPickle(names: Array(cifar10Names.prefix(9))), to: meta)
            expectDataError(source: meta.path, "'label_names' holds 9 class names") { _ = try CIFAR10(root: root, split: .test) }
        }
    }

    @Test("A folder without CIFAR files, or no folder at all")
    func notCIFAR() throws {
        try withTemporaryFolder { folder in
            expectDataError(source: folder.path, "no CIFAR-10 files", "cifar-10-batches-bin") { _ = try CIFAR10(root: folder, split: .train) }
            expectDataError(source: folder.path, "no CIFAR-100 files", "cifar-100-python") { _ = try CIFAR100(root: folder, split: .test) }
            let missing = folder.appendingPathComponent("nothing")
            expectDataError(source: missing.path, "no such folder") { _ = try CIFAR10(root: missing, split: .train) }
            // CIFAR-10 files are not CIFAR-100 files.
            try writeCIFAR10Binary(in: folder)
            expectDataError(source: folder.path, "no CIFAR-100 files") { _ = try CIFAR100(root: folder, split: .train) }
        }
    }
}
