import Foundation

/// Data named the way the command line names it:
///
/// - `DIR`: an image folder (`DIR/<class>/*.jpg|png`); when `DIR` holds `train/` and `test/`,
///   those are the two splits.
/// - `cifar10:PATH`, `cifar100:PATH`, `cifar100-coarse:PATH`: the official CIFAR files (binary or
///   python form) in `PATH`, with their own train and test splits.
///
/// Several sources form a ``Union``: the first one's classes keep their labels, later ones' new
/// classes follow (CIFAR-10 and the five reptiles: 15 classes, reptiles 10 to 14).
public struct DataSource: Sendable {
    public var training: any Dataset
    public var test: (any Dataset)?

    /// Opens one source.
    public init(_ specification: String) throws {
        let (kind, path) = Self.parse(specification)
        let root = URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
        switch kind {
        case "cifar10":
            training = try CIFAR10(root: root, split: .train)
            test = try CIFAR10(root: root, split: .test)
        case "cifar100", "cifar100-coarse":
            let labels: CIFAR100.LabelKind = kind == "cifar100" ? .fine : .coarse
            training = try CIFAR100(root: root, split: .train, labels: labels)
            test = try CIFAR100(root: root, split: .test, labels: labels)
        case nil:
            let manager = FileManager.default
            let train = root.appendingPathComponent("train"), testFolder = root.appendingPathComponent("test")
            var isFolder: ObjCBool = false
            if manager.fileExists(atPath: train.path, isDirectory: &isFolder), isFolder.boolValue,
               manager.fileExists(atPath: testFolder.path, isDirectory: &isFolder), isFolder.boolValue {
                training = try ImageFolder(root: train)
                test = try ImageFolder(root: testFolder)
            } else {
                training = try ImageFolder(root: root)
                test = nil
            }
        default:
            throw DataError(specification, "unknown data kind '\(kind!)': use a folder, cifar10:PATH, cifar100:PATH or cifar100-coarse:PATH")
        }
    }

    /// Opens several sources as one (a union of their training parts, and of their test parts
    /// when every source has one).
    public init(_ specifications: [String]) throws {
        guard !specifications.isEmpty else { throw DataError("data", "no data given") }
        let sources = try specifications.map { try DataSource($0) }
        if sources.count == 1 {
            self = sources[0]
            return
        }
        training = Union(sources.map(\.training))
        let tests = sources.compactMap(\.test)
        test = tests.count == sources.count ? Union(tests) : nil
    }

    private static func parse(_ specification: String) -> (kind: String?, path: String) {
        for kind in ["cifar100-coarse", "cifar100", "cifar10"] where specification.hasPrefix(kind + ":") {
            return (kind, String(specification.dropFirst(kind.count + 1)))
        }
        return (nil, specification)
    }
}

extension Dataset {
    /// Warnings its readers noted (empty class folders, stray files).
    public var warnings: [String] {
        switch self {
        case let folder as ImageFolder: return folder.warnings
        case let union as Union: return union.parts.flatMap(\.warnings)
        case let subset as Subset: return subset.base.warnings
        default: return []
        }
    }
}
