import Foundation

/// Where the files of one CIFAR dataset are, in one of its two published forms.
struct CIFARLayout: Sendable {
    /// The folder names in the official archives, binary then python.
    let binaryFolder: String
    let pythonFolder: String
    /// Data files per split, binary form.
    let binaryTrain: [String]
    let binaryTest: [String]
    /// Data files per split, python form.
    let pythonTrain: [String]
    let pythonTest: [String]
    /// Name files: binary (text, one name a line) and python (one pickle).
    let binaryMeta: [String]
    let pythonMeta: String
    /// Label bytes before each binary record's pixels.
    let labelBytes: Int
    let datasetName: String

    static let cifar10 = CIFARLayout(
        binaryFolder: "cifar-10-batches-bin", pythonFolder: "cifar-10-batches-py",
        binaryTrain: (1...5).map { "data_batch_\($0).bin" }, binaryTest: ["test_batch.bin"],
        pythonTrain: (1...5).map { "data_batch_\($0)" }, pythonTest: ["test_batch"],
        binaryMeta: ["batches.meta.txt"], pythonMeta: "batches.meta", labelBytes: 1, datasetName: "CIFAR-10")

    static let cifar100 = CIFARLayout(
        binaryFolder: "cifar-100-binary", pythonFolder: "cifar-100-python",
        binaryTrain: ["train.bin"], binaryTest: ["test.bin"], pythonTrain: ["train"], pythonTest: ["test"],
        binaryMeta: ["fine_label_names.txt", "coarse_label_names.txt"], pythonMeta: "meta", labelBytes: 2,
        datasetName: "CIFAR-100")

    func dataFiles(_ form: CIFARForm, _ split: CIFARSplit) -> [String] {
        switch (form, split) {
        case (.binary, .train): binaryTrain
        case (.binary, .test): binaryTest
        case (.python, .train): pythonTrain
        case (.python, .test): pythonTest
        }
    }

    private func markers(_ form: CIFARForm) -> [String] {
        switch form {
        case .binary: binaryMeta + binaryTrain + binaryTest
        case .python: [pythonMeta] + pythonTrain + pythonTest
        }
    }

    /// The folder and form of the dataset at `root`: the folder holding the files, or a folder
    /// holding the official folder (`cifar-10-batches-bin`, ...). The binary form wins when
    /// both are present.
    func locate(_ root: URL) throws -> (folder: String, form: CIFARForm) {
        let path = root.path
        guard FileReading.isFolder(path) else {
            throw DataError(path, FileManager.default.fileExists(atPath: path) ? "not a folder" : "no such folder")
        }
        for form in CIFARForm.allCases where markers(form).contains(where: { FileReading.isFile(path + "/" + $0) }) {
            return (path, form)
        }
        for (form, name) in [(CIFARForm.binary, binaryFolder), (.python, pythonFolder)] {
            let folder = path + "/" + name
            if FileReading.isFolder(folder), markers(form).contains(where: { FileReading.isFile(folder + "/" + $0) }) {
                return (folder, form)
            }
        }
        throw DataError(
            path,
            "no \(datasetName) files here: expected the binary form (\((binaryTrain + binaryTest + binaryMeta).joined(separator: ", "))) "
                + "or the python form (\((pythonTrain + pythonTest + [pythonMeta]).joined(separator: ", "))), "
                + "or a folder holding \(binaryFolder) or \(pythonFolder)")
    }

    /// The path of a file the form needs, or an error naming it when it is missing.
    func require(_ name: String, in folder: String, form: CIFARForm) throws -> String {
        let path = folder + "/" + name
        guard FileReading.isFile(path) else {
            throw DataError(path, "missing: the \(datasetName) \(form.rawValue) form needs this file")
        }
        return path
    }
}

/// The records of one batch file: mapped (binary form) or unpickled (python form).
struct CIFARBatch: Sendable {
    enum Pixels: Sendable {
        /// Records of `labelBytes` label bytes and 3072 pixel bytes in a mapped file.
        case mapped(MappedFile, labelBytes: Int)
        /// Rows of 3072 bytes (the pickled array).
        case rows([UInt8])
    }

    let path: String
    let count: Int
    let pixels: Pixels

    /// Calls `body` with the 3072 planar bytes of `record` (1024 red, 1024 green, 1024 blue).
    func withPlanes<T>(_ record: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        switch pixels {
        case .mapped(let file, let labelBytes):
            let start = record * (labelBytes + CIFAR.pixelBytes) + labelBytes
            return body(UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + CIFAR.pixelBytes)]))
        case .rows(let bytes):
            return bytes.withUnsafeBytes { raw in
                let start = record * CIFAR.pixelBytes
                return body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + CIFAR.pixelBytes)]))
            }
        }
    }
}

/// All records of a split, in file order, with their labels.
struct CIFARRecords: Sendable {
    let batches: [CIFARBatch]
    /// The index of each batch's first record.
    let starts: [Int]
    /// CIFAR-10 labels, or CIFAR-100 fine labels.
    let labels: [UInt8]
    /// CIFAR-100 coarse labels; empty for CIFAR-10.
    let coarseLabels: [UInt8]

    init(batches: [CIFARBatch], labels: [UInt8], coarseLabels: [UInt8]) {
        self.batches = batches
        var starts: [Int] = []
        var total = 0
        for batch in batches {
            starts.append(total)
            total += batch.count
        }
        self.starts = starts
        self.labels = labels
        self.coarseLabels = coarseLabels
    }

    var count: Int { labels.count }

    func locate(_ index: Int) -> (batch: Int, record: Int) {
        precondition(index >= 0 && index < count, "sample index \(index) out of range 0..<\(count)")
        var batch = starts.count - 1
        while starts[batch] > index { batch -= 1 }
        return (batch, index - starts[batch])
    }

    func sampleID(at index: Int) -> String {
        let (batch, record) = locate(index)
        return "\(batches[batch].path)#\(record)"
    }

    func image(at index: Int) -> Image {
        let (batch, record) = locate(index)
        let pixels = batches[batch].withPlanes(record) { planes in
            [UInt8](unsafeUninitializedCapacity: CIFAR.pixelBytes) { buffer, count in
                let area = CIFAR.side * CIFAR.side
                for pixel in 0..<area {
                    buffer[3 * pixel] = planes[pixel]
                    buffer[3 * pixel + 1] = planes[area + pixel]
                    buffer[3 * pixel + 2] = planes[2 * area + pixel]
                }
                count = CIFAR.pixelBytes
            }
        }
        return Image(width: CIFAR.side, height: CIFAR.side, pixels: pixels)
    }

    // MARK: Reading

    /// Maps binary batch files and reads their labels. `classCounts` are the label limits in
    /// record order (CIFAR-10: `[10]`; CIFAR-100: coarse `[20]` then fine `[100]`).
    static func binary(paths: [String], classCounts: [Int]) throws -> [(batch: CIFARBatch, labels: [[UInt8]])] {
        let labelBytes = classCounts.count
        let recordSize = labelBytes + CIFAR.pixelBytes
        return try paths.map { path in
            let file = try MappedFile(path: path)
            let size = file.bytes.count
            guard size > 0 else { throw DataError(path, "empty file (0 bytes): no records") }
            guard size % recordSize == 0 else {
                throw DataError(
                    path,
                    "\(size) bytes are not a whole number of \(recordSize)-byte records (\(size / recordSize) records "
                        + "and \(size % recordSize) bytes more): the file is truncated or not a CIFAR binary batch")
            }
            let count = size / recordSize
            var labels = [[UInt8]](repeating: [], count: labelBytes)
            for kind in 0..<labelBytes {
                labels[kind] = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                    for record in 0..<count {
                        let label = file.bytes[record * recordSize + kind]
                        guard Int(label) < classCounts[kind] else {
                            throw DataError(
                                path, "record \(record): label \(label) is outside 0..<\(classCounts[kind]) (not a CIFAR binary batch?)")
                        }
                        buffer[record] = label
                        initialized = record + 1
                    }
                }
            }
            return (CIFARBatch(path: path, count: count, pixels: .mapped(file, labelBytes: labelBytes)), labels)
        }
    }

    /// Unpickles python-form batch files: the `data` array and the label lists under
    /// `labelKeys`, with their class counts.
    static func python(paths: [String], labelKeys: [(key: String, classCount: Int)]) throws -> [(batch: CIFARBatch, labels: [[UInt8]])] {
        try paths.map { path in
            let dictionary = try NumpyPickle.load(path: path)
            let data = try NumpyPickle.required(dictionary, "data", path: path)
            let (bytes, rows) = try NumpyPickle.uint8Matrix(data, key: "data", columns: CIFAR.pixelBytes, path: path)
            let labels = try labelKeys.map { key, classCount in
                let labels = try NumpyPickle.labels(
                    try NumpyPickle.required(dictionary, key, path: path), key: key, classCount: classCount, path: path)
                guard labels.count == rows else {
                    throw DataError(path, "'\(key)' has \(labels.count) labels for \(rows) images")
                }
                return labels
            }
            return (CIFARBatch(path: path, count: rows, pixels: .rows(bytes)), labels)
        }
    }

    /// Class names from a text file, one a line (blank lines and surrounding spaces dropped).
    static func namesFromText(path: String, expected: Int) throws -> [String] {
        let bytes = try FileReading.bytes(atPath: path)
        let names = NumpyPickle.text(bytes).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        guard names.count == expected else { throw DataError(path, "holds \(names.count) class names, not \(expected)") }
        return names
    }

    /// Class names from a python-form meta pickle.
    static func namesFromPickle(path: String, keys: [(key: String, expected: Int)]) throws -> [[String]] {
        let dictionary = try NumpyPickle.load(path: path)
        return try keys.map { key, expected in
            let names = try NumpyPickle.names(try NumpyPickle.required(dictionary, key, path: path), key: key, path: path)
            guard names.count == expected else { throw DataError(path, "'\(key)' holds \(names.count) class names, not \(expected)") }
            return names
        }
    }
}
