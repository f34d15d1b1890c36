import Foundation
import ZooTensor
import ZooWeights

/// The map from a Keras weight file's tensors to a model's parameters, built from the model's
/// layer list.
///
/// A Keras file stores weights per layer: legacy HDF5 under `layer_names` groups whose tensors
/// the reader lists as `layer/weight`, Keras 3 `.weights.h5` under `layers/<key>/vars/<i>` with
/// the layer's name in an attribute (or, in older Keras 3 files, only the key: the class name in
/// snake case with a per-class counter in `model.layers` order). Within a layer, weights are in
/// Keras's order, which is the order of the layer's ``NamedLayer/kerasWeightNames``.
struct KerasWeightMap {
    let reader: any WeightReader
    let model: ImageModel
    let rules: [RenameRule]
    private let autoNamePrefixes: [String]

    init(reader: any WeightReader, model: ImageModel, rules: [RenameRule]) {
        self.reader = reader
        self.model = model
        self.rules = rules
        autoNamePrefixes = Self.autoNamePrefixes(of: model)
    }

    /// A layer's weights as the file holds them, in stored order.
    struct FileLayer {
        var name: String
        var tensors: [TensorInfo]
    }

    func assignments(report: inout LoadReport) throws -> [WeightAssignment] {
        var fileLayers = try self.fileLayers()
        renumberAutoNamedLayers(&fileLayers)
        let byName = Dictionary(fileLayers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let modulePaths = Dictionary(model.namedModules().map { (ObjectIdentifier($0.module), $0.name) }, uniquingKeysWith: { first, _ in first })
        var used = Set<String>()
        var assignments: [WeightAssignment] = []
        for layer in model.layers {
            guard let module = layer.module, let path = modulePaths[ObjectIdentifier(module)] else { continue }
            guard let fileLayer = byName[layer.name] else { continue }
            used.insert(layer.name)
            let expected = layer.kind.kerasWeights(of: module)
            // A layer's module may hold its weights in children (a SeparableConv2D's two convolutions).
            let targets = module.namedParameters().map(\.name)
            guard fileLayer.tensors.count == expected.count else {
                for tensor in fileLayer.tensors { report.unexpected.append((tensor.name, tensor.shape)) }
                report.mismatched.append((fileLayer.tensors.map(\.name).joined(separator: ", "), layer.name,
                                          [expected.count], [fileLayer.tensors.count]))
                continue
            }
            for (tensor, (weight, target)) in zip(fileLayer.tensors, zip(expected, targets)) {
                assignments.append(WeightAssignment(source: tensor.name, target: path.isEmpty ? target : "\(path).\(target)",
                                                    transform: transform(weight, of: layer, source: tensor.shape)))
            }
        }
        for fileLayer in fileLayers where !used.contains(fileLayer.name) {
            for tensor in fileLayer.tensors { report.unexpected.append((tensor.name, tensor.shape)) }
        }
        return assignments
    }

    /// The layout change for one weight: the layer class's, except for a dense layer right
    /// after Keras's channels-last flatten of a spatial map (VGG's fc1), whose rows are reordered
    /// into zoo's channel-major flatten.
    private func transform(_ weight: KerasWeight, of layer: NamedLayer, source: [Int]) -> LayoutTransform {
        guard weight.transform == .kerasDense, isAfterFlatten(layer) else { return weight.transform }
        let channels = model.featureChannels
        if source.count == 2, source[0] > channels, source[0] % channels == 0 {
            let cells = source[0] / channels
            let side = Int(Double(cells).squareRoot().rounded())
            if side * side == cells { return .kerasDenseAfterFlatten(height: side, width: side, channels: channels) }
        }
        return weight.transform
    }

    private func isAfterFlatten(_ layer: NamedLayer) -> Bool {
        let layers = model.layers
        guard let index = layers.firstIndex(where: { $0.name == layer.name }), index > 0 else { return false }
        return layers[index - 1].kind == .flatten
    }

    /// The file's layers with their tensors in stored order.
    private func fileLayers() throws -> [FileLayer] {
        let tensors = try reader.tensors.map { info -> TensorInfo in
            var renamed = info
            for rule in rules { renamed.name = try rule.apply(renamed.name) }
            return renamed
        }
        switch reader.format {
        case .kerasH5:
            return try legacyLayers(tensors)
        default:
            return keras3Layers(tensors)
        }
    }

    /// Legacy HDF5: a layer's tensors are listed as `layer/weight` for each layer of
    /// `layer_names` (the longest layer name that prefixes a tensor's name owns it). A nested
    /// model's layer holds `model/inner/...`, split into its inner layers. Old Keras named some
    /// layers with a slash (`conv1/conv` in DenseNet, now `conv1_conv`); slashes in layer names
    /// become underscores.
    private func legacyLayers(_ tensors: [TensorInfo]) throws -> [FileLayer] {
        let known = Set(model.layers.map(\.name))
        let aliases = model.legacyKerasLayerAliases.map { RenameRule(pattern: $0.pattern, replacement: $0.replacement) }
        let fileLayerNames = (reader.metadata.kerasLayerNames ?? []).sorted { $0.count > $1.count }
        var layers: [String: [TensorInfo]] = [:]
        var sequence: [String] = []
        for tensor in tensors {
            var name: String
            var rest: Substring
            if let owner = fileLayerNames.first(where: { tensor.name.hasPrefix($0 + "/") }) {
                name = owner
                rest = tensor.name.dropFirst(owner.count + 1)
            } else {
                name = String(tensor.name.split(separator: "/").first ?? "")
                rest = tensor.name.dropFirst(min(name.count + 1, tensor.name.count))
            }
            name = name.replacingOccurrences(of: "/", with: "_")
            if !known.contains(name) {
                for alias in aliases { name = try alias.apply(name) }
            }
            let inner = rest.split(separator: "/")
            if !known.contains(name), !isAutoNamed(name), inner.count >= 2 {
                name = String(inner[0])
            }
            if layers[name] == nil { sequence.append(name) }
            layers[name, default: []].append(tensor)
        }
        return sequence.map { FileLayer(name: $0, tensors: layers[$0]!) }
    }

    /// Keras 3: `layers/<key>/vars/<i>`, possibly nested under `layers/<model>/layers/...`.
    private func keras3Layers(_ tensors: [TensorInfo]) -> [FileLayer] {
        let counterNames = keras3KeyNames()
        var layers: [String: [(index: Int, info: TensorInfo)]] = [:]
        var sequence: [String] = []
        for tensor in tensors {
            guard let range = tensor.name.range(of: "/vars/", options: .backwards),
                  let index = Int(tensor.name[range.upperBound...]) else { continue }
            let path = String(tensor.name[..<range.lowerBound])
            guard path.hasPrefix("layers/") else { continue }
            let key = path.split(separator: "/").last.map(String.init) ?? path
            let name = reader.metadata.kerasLayerNamesByPath[path] ?? counterNames[key] ?? key
            if layers[name] == nil { sequence.append(name) }
            layers[name, default: []].append((index, tensor))
        }
        return sequence.map { name in FileLayer(name: name, tensors: layers[name]!.sorted { $0.index < $1.index }.map(\.info)) }
    }

    /// The keys Keras 3 gives the model's layers when it writes no names: the class name in
    /// snake case, then `_1`, `_2`, ... per class, in layer-list order.
    private func keras3KeyNames() -> [String: String] {
        var counts: [String: Int] = [:]
        var names: [String: String] = [:]
        for layer in model.layers {
            let base = layer.kind.kerasFileKey
            let count = counts[base, default: 0]
            counts[base] = count + 1
            names[count == 0 ? base : "\(base)_\(count)"] = layer.name
        }
        return names
    }

    /// Keras's automatic layer names (`conv2d`, `conv2d_7`) depend on the session that built
    /// the model. When the file's auto-named layers of a class are not exactly the model's,
    /// they are matched in numeric order (a missing suffix counts as 0); shapes then confirm
    /// the match.
    private func renumberAutoNamedLayers(_ layers: inout [FileLayer]) {
        for prefix in autoNamePrefixes {
            let ours = model.layers.map(\.name).filter { autoNameNumber($0, prefix) != nil }
            let theirs = layers.indices.filter { autoNameNumber(layers[$0].name, prefix) != nil }
            guard !ours.isEmpty, ours.count == theirs.count, Set(ours) != Set(theirs.map { layers[$0].name }) else { continue }
            let sortedOurs = ours.sorted { autoNameNumber($0, prefix)! < autoNameNumber($1, prefix)! }
            let sortedTheirs = theirs.sorted { autoNameNumber(layers[$0].name, prefix)! < autoNameNumber(layers[$1].name, prefix)! }
            for (index, name) in zip(sortedTheirs, sortedOurs) { layers[index].name = name }
        }
    }

    /// The Keras 3 file keys of the model's layer classes that hold weights: the prefixes of
    /// Keras's automatic names that weight files can carry.
    private static func autoNamePrefixes(of model: ImageModel) -> [String] {
        var seen = Set<String>()
        return model.layers.filter { !$0.kerasWeightNames.isEmpty }.map(\.kind.kerasFileKey).filter { seen.insert($0).inserted }
    }

    private func isAutoNamed(_ name: String) -> Bool {
        autoNamePrefixes.contains { autoNameNumber(name, $0) != nil }
    }

    /// `prefix` → 0, `prefix_12` → 12, anything else → nil.
    private func autoNameNumber(_ name: String, _ prefix: String) -> Int? {
        if name == prefix { return 0 }
        guard name.hasPrefix(prefix + "_") else { return nil }
        return Int(name.dropFirst(prefix.count + 1))
    }
}
