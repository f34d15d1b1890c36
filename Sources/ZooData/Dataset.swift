/// A labelled collection of images, read on demand.
///
/// Datasets are values that describe where images are (files, records in a CIFAR batch); the
/// pixels are decoded only by ``image(at:)``, so a dataset of 50,000 files costs little until a
/// loader reads it, on as many threads as it likes.
public protocol Dataset: Sendable {
    /// Class names; labels index into this list.
    var classNames: [String] { get }
    /// Number of samples.
    var count: Int { get }
    /// The label of sample `index`, without decoding the image.
    func label(at index: Int) -> Int
    /// A stable identifier of sample `index` (a file path, or `<batch file>#17` for a record of a CIFAR batch).
    func sampleID(at index: Int) -> String
    /// Decodes sample `index`. Throws ``DataError`` naming the file or record when it is damaged.
    func image(at index: Int) throws -> Image
}

extension Dataset {
    /// Samples per class, in class order.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classNames.count)
        for index in 0..<count { counts[label(at: index)] += 1 }
        return counts
    }
}

/// An error reading data: it names the file or record and says what was wrong.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file, folder or record concerned.
    public var source: String
    public var message: String

    public init(_ source: String, _ message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}
