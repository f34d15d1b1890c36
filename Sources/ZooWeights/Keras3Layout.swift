import Foundation

/// Lists Keras 3 `.weights.h5` files (also the `model.weights.h5` of a `.keras` archive).
/// Runs inside the `HDF5Sandbox` child.
///
/// A `.weights.h5` file stores each layer's variables as datasets `0`, `1`, ... under
/// `layers/<key>/vars`, where `<key>` is a class-name counter (`conv2d_3`), not the layer's
/// name; recent Keras records the layer name as the `vars` group's `name` attribute, reported
/// in ``WeightMetadata/kerasLayerNamesByPath``. Every dataset in the file is listed, named by
/// its path (`layers/conv2d/vars/0`), groups in name order with numeric names in numeric order,
/// except the optimizer's and the metrics' state under `/optimizer` and `/metrics`.
///
/// Keras 3 on Windows builds the group path with `os.path.join`, so its files hold top-level
/// groups named `layers\conv2d` or `layers\functional\layers\conv2d` (one group, backslash
/// and all). A backslash in a group name is read as the separator it was meant to be: such a
/// file lists, sorts and filters exactly like the same file written on Linux.
enum Keras3Layout {
    /// Groups that mark a Keras 3 weights file (`_layer_checkpoint_dependencies` in Keras 2.13 `.keras` files).
    static let markers = ["/layers", "/vars", "/_layer_checkpoint_dependencies"]

    /// Top-level groups that hold training state, not model weights.
    static let trainingStateGroups: Set<Substring> = ["optimizer", "metrics"]

    static func matches(_ file: HDF5File) -> Bool {
        markers.contains { file.kind(of: $0) == .group }
            || ((try? file.members(of: "/")) ?? []).contains { $0.hasPrefix("layers\\") }
    }

    static func list(_ file: HDF5File, format: WeightFormat, metadata: WeightMetadata) throws -> HDF5Listing {
        var tensors: [HDF5Listing.Tensor] = []
        var layerNames: [String: String] = [:]
        var visitedObjects = 0
        // Hard links can make a group its own descendant: visit each object once.
        var visitedAddresses = Set<UInt64>()

        /// `path` is where the object is in the file; `name` the path as listed, with `/` for `\`.
        func walk(_ path: String, name: String, depth: Int) throws {
            guard depth <= 64 else { throw ParseError.malformed("groups nest deeper than 64 levels at \(quoted(path))") }
            let members = try file.members(of: path.isEmpty ? "/" : path).sorted(by: naturalOrder)
            for member in members {
                let memberName = String(member.map { $0 == "\\" ? "/" : $0 })
                if path.isEmpty, let first = memberName.split(separator: "/").first, trainingStateGroups.contains(first) {
                    continue
                }
                visitedObjects += 1
                guard visitedObjects <= file.size else { throw ParseError.malformed("more objects than the file can hold") }
                let child = path + "/" + member
                let childName = name + "/" + memberName
                if let address = file.address(of: child), !visitedAddresses.insert(address).inserted { continue }
                switch file.kind(of: child) {
                case .group?:
                    if member == "vars", file.hasAttribute("name", at: child),
                        let layerName = try? file.stringAttribute("name", at: child).first
                    {
                        layerNames[String(name.dropFirst())] = layerName
                    }
                    try walk(child, name: childName, depth: depth + 1)
                case .dataset?:
                    tensors.append(try file.listingEntry(name: String(childName.dropFirst()), datasetPath: child))
                default:
                    // Committed datatypes or dangling links hold no weights.
                    continue
                }
            }
        }
        try walk("", name: "", depth: 0)
        // Depth-first in name order is the same as ordering whole paths component by component,
        // which also puts a Windows file's flat `layers\...` groups where Linux nests them.
        tensors.sort { pathOrder($0.info.name, $1.info.name) }

        var metadata = metadata
        metadata.kerasLayerNamesByPath = layerNames
        return HDF5Listing(format: format, metadata: metadata, tensors: tensors)
    }

    /// Orders `/`-separated paths component by component in ``naturalOrder``, a path before
    /// its descendants.
    static func pathOrder(_ left: String, _ right: String) -> Bool {
        let leftParts = left.split(separator: "/", omittingEmptySubsequences: false)
        let rightParts = right.split(separator: "/", omittingEmptySubsequences: false)
        for (leftPart, rightPart) in zip(leftParts, rightParts) where leftPart != rightPart {
            return naturalOrder(String(leftPart), String(rightPart))
        }
        return leftParts.count < rightParts.count
    }

    /// Name order, except that all-digit names come first, in numeric order (`vars/2` before
    /// `vars/10`). A total order, so sorting is deterministic whatever the names are.
    static func naturalOrder(_ left: String, _ right: String) -> Bool {
        let leftDigits = !left.isEmpty && left.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        let rightDigits = !right.isEmpty && right.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        if leftDigits != rightDigits { return leftDigits }
        if leftDigits && left.utf8.count != right.utf8.count { return left.utf8.count < right.utf8.count }
        return Array(left.utf8).lexicographicallyPrecedes(Array(right.utf8))
    }
}
