import Foundation

/// Images in one folder per class: `root/<class>/<image>.jpg|jpeg|png` (torchvision's
/// `ImageFolder` layout).
///
/// Classes are the sub-folders of `root` in byte-wise sorted order of their names, so label
/// numbers do not depend on the file system or the locale; within a class, files are in sorted
/// order too. Names starting with `.` (hidden files and folders) are ignored. Images must lie
/// directly in their class folder.
///
/// Listing does not open the images; ``image(at:)`` reads and decodes one file (JPEG or PNG,
/// recognized by its content, whatever its extension), and its errors name that file.
///
/// Nothing is dropped silently: a class folder without images stays in ``classNames`` with no
/// samples and is reported in ``warnings``, as are files with other extensions and sub-folders
/// inside class folders.
public struct ImageFolder: Dataset {
    /// The folder holding the class folders.
    public let root: URL
    /// The class names: the class folders' names, sorted byte-wise.
    public let classNames: [String]
    /// The extensions listed (lowercase, without the dot); matching ignores case.
    public let extensions: [String]
    /// What the listing found odd: `"<folder>: empty class folder"`, ignored files and folders.
    public let warnings: [String]

    private let files: [String]
    private let labels: [Int32]

    /// Lists `root`. Throws ``DataError`` naming `root` when it cannot be read, holds no class
    /// folders, or no class folder holds an image with one of `extensions`.
    public init(root: URL, extensions: [String] = ["jpg", "jpeg", "png"]) throws {
        let rootPath = root.path
        let wanted = Set(extensions.map { ext in ext.hasPrefix(".") ? String(ext.dropFirst()).lowercased() : ext.lowercased() })
        guard !wanted.isEmpty else { throw DataError(rootPath, "no image extensions given") }
        let sortedExtensions = wanted.sorted()
        let folders = try FileReading.entries(ofFolder: rootPath)
            .filter { $0.kind == .folder && !$0.name.hasPrefix(".") }
            .map(\.name)
            .sorted(by: ImageFolder.precedes)
        guard !folders.isEmpty else {
            throw DataError(rootPath, "no class folders: expected images in \(rootPath)/<class>/*.{\(sortedExtensions.joined(separator: ","))}")
        }

        var files: [String] = []
        var labels: [Int32] = []
        var warnings: [String] = []
        let listed = sortedExtensions.map { "." + $0 }.joined(separator: ", ")
        for (label, name) in folders.enumerated() {
            let folder = rootPath + "/" + name
            var images: [String] = []
            var otherFiles = 0
            var subfolders = 0
            for entry in try FileReading.entries(ofFolder: folder) where !entry.name.hasPrefix(".") {
                switch entry.kind {
                case .file:
                    if wanted.contains(ImageFolder.fileExtension(entry.name)) {
                        images.append(entry.name)
                    } else {
                        otherFiles += 1
                    }
                case .folder: subfolders += 1
                case .other: otherFiles += 1
                }
            }
            if images.isEmpty { warnings.append("\(folder): empty class folder") }
            if otherFiles > 0 {
                warnings.append("\(folder): \(otherFiles) \(otherFiles == 1 ? "file" : "files") ignored (not \(listed))")
            }
            if subfolders > 0 {
                warnings.append(
                    "\(folder): \(subfolders) \(subfolders == 1 ? "sub-folder" : "sub-folders") ignored (images must be directly in the class folder)")
            }
            images.sort(by: ImageFolder.precedes)
            files.reserveCapacity(files.count + images.count)
            for image in images { files.append(folder + "/" + image) }
            labels.append(contentsOf: repeatElement(Int32(label), count: images.count))
        }
        guard !files.isEmpty else {
            throw DataError(rootPath, "none of the \(folders.count) class folders holds an image (\(listed))")
        }
        self.root = root
        self.classNames = folders
        self.extensions = sortedExtensions
        self.warnings = warnings
        self.files = files
        self.labels = labels
    }

    public var count: Int { files.count }

    public func label(at index: Int) -> Int { Int(labels[index]) }

    /// The image file's path.
    public func sampleID(at index: Int) -> String { files[index] }

    /// The image file of sample `index`.
    public func fileURL(at index: Int) -> URL { URL(fileURLWithPath: files[index]) }

    public func image(at index: Int) throws -> Image {
        let path = files[index]
        return try ImageCodec.decode(try FileReading.bytes(atPath: path), source: path)
    }

    // MARK: Names

    /// Byte-wise order of UTF-8 names (what `sorted()` in Python and `ls` in the C locale give).
    static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// The lowercased extension of a file name (`"IMG.JPG"` → `"jpg"`), empty if there is none.
    static func fileExtension(_ name: String) -> String {
        guard let dot = name.utf8.lastIndex(of: UInt8(ascii: ".")), dot != name.utf8.startIndex else { return "" }
        return String(name[name.index(after: dot)...]).lowercased()
    }
}
