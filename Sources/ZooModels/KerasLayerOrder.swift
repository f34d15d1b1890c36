/// Keras's order of a functional model's layers (`model.layers`, and `layer_names` in HDF5
/// files), computed the way Keras computes it from the graph.
///
/// Keras walks the graph depth first from the output, numbering each layer when first reached
/// (inputs in order), gives every layer the longest distance to the output as its depth, and
/// lists layers by decreasing depth, ties by that number. Branching models (InceptionV3) list
/// their layers in an order that is neither creation order nor execution order; building the
/// list from the graph is the only way to get it right.
import ZooTensor

struct KerasGraph {
    /// A layer and the layers whose outputs it takes, in call order.
    struct Node {
        var layer: NamedLayer
        var inputs: [String]
    }

    private(set) var nodes: [Node] = []
    private var counters: [String: Int] = [:]

    /// Keras's automatic name for the next layer of a class: `conv2d`, `conv2d_1`, ...
    mutating func autoName(_ kind: LayerKind) -> String {
        let base = kind.kerasFileKey
        let count = counters[base, default: 0]
        counters[base] = count + 1
        return count == 0 ? base : "\(base)_\(count)"
    }

    /// Adds a layer that takes `inputs`; returns its name.
    @discardableResult
    mutating func add(_ layer: NamedLayer, inputs: [String]) -> String {
        nodes.append(Node(layer: layer, inputs: inputs))
        return layer.name
    }

    /// The layers in Keras's `model.layers` order for the model whose output is `output`.
    func kerasOrder(output: String) -> [NamedLayer] {
        let byName = Dictionary(nodes.map { ($0.layer.name, $0) }, uniquingKeysWith: { first, _ in first })
        var index: [String: Int] = [:]
        var finished = Set<String>()
        var postOrder: [String] = []
        // Depth-first from the output; a layer is numbered when first reached.
        func visit(_ name: String) {
            guard !finished.contains(name), let node = byName[name] else { return }
            if index[name] == nil { index[name] = index.count }
            for input in node.inputs { visit(input) }
            finished.insert(name)
            postOrder.append(name)
        }
        visit(output)
        var depth: [String: Int] = [:]
        for name in postOrder.reversed() {
            let own = depth[name, default: 0]
            for input in byName[name]!.inputs { depth[input] = max(depth[input, default: 0], own + 1) }
        }
        return postOrder.sorted { (depth[$0, default: 0], -index[$0]!) > (depth[$1, default: 0], -index[$1]!) }
            .map { byName[$0]!.layer }
    }
}
