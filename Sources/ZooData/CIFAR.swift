import Foundation

/// The official split of a CIFAR dataset.
public enum CIFARSplit: String, Sendable, CaseIterable {
    /// 50,000 images (CIFAR-10: `data_batch_1` ... `data_batch_5`; CIFAR-100: `train`).
    case train
    /// 10,000 images (`test_batch`, `test`).
    case test
}

/// The two forms in which the CIFAR datasets are published.
public enum CIFARForm: String, Sendable, CaseIterable {
    /// `cifar-10-batches-bin`, `cifar-100-binary`: records of label bytes and 3072 pixel bytes,
    /// class names in text files.
    case binary
    /// `cifar-10-batches-py`, `cifar-100-python`: Python 2 pickles of dicts holding a NumPy
    /// `uint8` array `[N, 3072]` and label lists, read with zoo's safe unpickler.
    case python
}

/// Sizes shared by both CIFAR datasets.
enum CIFAR {
    static let side = 32
    /// 1024 red, 1024 green, then 1024 blue bytes, each plane row-major.
    static let pixelBytes = 3 * side * side
}

/// CIFAR-10 from the official files: 32x32 RGB images in 10 classes.
///
/// `root` is the folder holding the files (`cifar-10-batches-bin` or `cifar-10-batches-py` as
/// unpacked from the official archives), or a folder that holds one of those; the form is
/// recognized from the file names (the binary form when both are present). The binary files
/// are memory-mapped and the pickles unpickled when the dataset is opened, which also reads and
/// checks every label; ``image(at:)`` only rearranges a record's bytes.
///
/// Errors name the file: a missing file, a binary batch that is not a whole number of records,
/// a label out of range, a pickle whose array is not `uint8` `[N, 3072]`, whose label count
/// differs from its image count, or that names anything but the NumPy array globals.
public struct CIFAR10: Dataset {
    public typealias Split = CIFARSplit

    /// The folder holding the files.
    public let folder: URL
    /// The form of the files read.
    public let form: CIFARForm
    public let split: Split
    /// The 10 class names, from `batches.meta.txt` or `batches.meta` (airplane ... truck).
    public let classNames: [String]

    private let records: CIFARRecords

    /// Opens the `split` of the CIFAR-10 files at `root`.
    public init(root: URL, split: Split) throws {
        let layout = CIFARLayout.cifar10
        let (folder, form) = try layout.locate(root)
        let paths = try layout.dataFiles(form, split).map { try layout.require($0, in: folder, form: form) }
        let batches: [(batch: CIFARBatch, labels: [[UInt8]])]
        switch form {
        case .binary:
            classNames = try CIFARRecords.namesFromText(path: try layout.require("batches.meta.txt", in: folder, form: form), expected: 10)
            batches = try CIFARRecords.binary(paths: paths, classCounts: [10])
        case .python:
            classNames = try CIFARRecords.namesFromPickle(
                path: try layout.require("batches.meta", in: folder, form: form), keys: [("label_names", 10)])[0]
            batches = try CIFARRecords.python(paths: paths, labelKeys: [("labels", 10)])
        }
        self.folder = URL(fileURLWithPath: folder)
        self.form = form
        self.split = split
        self.records = CIFARRecords(batches: batches.map(\.batch), labels: batches.flatMap { $0.labels[0] }, coarseLabels: [])
    }

    public var count: Int { records.count }

    public func label(at index: Int) -> Int { Int(records.labels[index]) }

    /// `<batch file path>#<record number in the file>`.
    public func sampleID(at index: Int) -> String { records.sampleID(at: index) }

    public func image(at index: Int) throws -> Image { records.image(at: index) }
}

/// CIFAR-100 from the official files: 32x32 RGB images with a fine label (100 classes) and a
/// coarse label (20 superclasses).
///
/// `root` is `cifar-100-binary` or `cifar-100-python`, or a folder holding one of them; see
/// ``CIFAR10`` for how the files are read and checked. ``label(at:)`` and ``classNames`` follow
/// the label kind chosen; both kinds are always available through ``fineLabel(at:)``,
/// ``coarseLabel(at:)``, ``fineClassNames`` and ``coarseClassNames``.
public struct CIFAR100: Dataset {
    public typealias Split = CIFARSplit

    /// Which of the two labels ``label(at:)`` gives.
    public enum LabelKind: String, Sendable, CaseIterable {
        /// The 100 classes (apple ... worm).
        case fine
        /// The 20 superclasses (aquatic_mammals ... vehicles_2).
        case coarse
    }

    /// The folder holding the files.
    public let folder: URL
    /// The form of the files read.
    public let form: CIFARForm
    public let split: Split
    public let labelKind: LabelKind
    /// The 100 fine class names (`fine_label_names`).
    public let fineClassNames: [String]
    /// The 20 coarse class names (`coarse_label_names`).
    public let coarseClassNames: [String]

    private let records: CIFARRecords

    /// Opens the `split` of the CIFAR-100 files at `root`, labelled with `labels`.
    public init(root: URL, split: Split, labels: LabelKind = .fine) throws {
        let layout = CIFARLayout.cifar100
        let (folder, form) = try layout.locate(root)
        let paths = try layout.dataFiles(form, split).map { try layout.require($0, in: folder, form: form) }
        let batches: [(batch: CIFARBatch, labels: [[UInt8]])]
        let coarse: [UInt8], fine: [UInt8]
        switch form {
        case .binary:
            fineClassNames = try CIFARRecords.namesFromText(
                path: try layout.require("fine_label_names.txt", in: folder, form: form), expected: 100)
            coarseClassNames = try CIFARRecords.namesFromText(
                path: try layout.require("coarse_label_names.txt", in: folder, form: form), expected: 20)
            // Each record starts with the coarse label, then the fine label.
            batches = try CIFARRecords.binary(paths: paths, classCounts: [20, 100])
            coarse = batches.flatMap { $0.labels[0] }
            fine = batches.flatMap { $0.labels[1] }
        case .python:
            let names = try CIFARRecords.namesFromPickle(
                path: try layout.require("meta", in: folder, form: form), keys: [("fine_label_names", 100), ("coarse_label_names", 20)])
            fineClassNames = names[0]
            coarseClassNames = names[1]
            batches = try CIFARRecords.python(paths: paths, labelKeys: [("fine_labels", 100), ("coarse_labels", 20)])
            fine = batches.flatMap { $0.labels[0] }
            coarse = batches.flatMap { $0.labels[1] }
        }
        self.folder = URL(fileURLWithPath: folder)
        self.form = form
        self.split = split
        self.labelKind = labels
        self.records = CIFARRecords(batches: batches.map(\.batch), labels: fine, coarseLabels: coarse)
    }

    /// The class names of the chosen label kind.
    public var classNames: [String] { labelKind == .fine ? fineClassNames : coarseClassNames }

    public var count: Int { records.count }

    /// The label of the chosen kind.
    public func label(at index: Int) -> Int { labelKind == .fine ? fineLabel(at: index) : coarseLabel(at: index) }

    /// The fine label (0..<100), whatever the chosen kind.
    public func fineLabel(at index: Int) -> Int { Int(records.labels[index]) }

    /// The coarse label (0..<20), whatever the chosen kind.
    public func coarseLabel(at index: Int) -> Int { Int(records.coarseLabels[index]) }

    /// `<batch file path>#<record number in the file>`.
    public func sampleID(at index: Int) -> String { records.sampleID(at: index) }

    public func image(at index: Int) throws -> Image { records.image(at: index) }
}
