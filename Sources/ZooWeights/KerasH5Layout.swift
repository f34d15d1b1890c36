/// Lists Keras legacy HDF5 weights: `save_weights("x.h5")` files (weights at the root) and
/// `model.save("x.h5")` files (weights under `/model_weights`), from Keras 2.x, tf.keras and
/// Keras 3's legacy `.h5` writer. Runs inside the `HDF5Sandbox` child.
///
/// The layer order comes from the `layer_names` attribute (chunked into `layer_names0`,
/// `layer_names1`, ... when large) and each layer's datasets from its `weight_names`
/// attribute, never from group iteration order or from the layer name: old files store
/// `predictions_1/kernel:0` inside group `predictions`, and nested models list all their
/// inner weights under the outer layer. A tensor is named by its weight name when that starts
/// with `<layer>/` (Keras 2: `conv1/kernel:0`), and `<layer>/<weight name>` otherwise, so names
/// are unique and always say which layer they belong to. Optimizer weights are not listed.
enum KerasH5Layout {
    /// True when the HDF5 file has the attributes of a Keras legacy weights file.
    static func matches(_ file: HDF5File) -> Bool {
        weightsGroup(file) != nil
    }

    /// The group holding `layer_names`: the root for weights-only files, `/model_weights` for full models.
    private static func weightsGroup(_ file: HDF5File) -> String? {
        if file.kind(of: "/model_weights") == .group, hasChunkedAttribute(file, "layer_names", at: "/model_weights") {
            return "/model_weights"
        }
        if hasChunkedAttribute(file, "layer_names", at: "/") { return "/" }
        return nil
    }

    private static func hasChunkedAttribute(_ file: HDF5File, _ name: String, at path: String) -> Bool {
        file.hasAttribute(name, at: path) || file.hasAttribute(name + "0", at: path)
    }

    /// A list attribute that Keras may have split into `<name>0`, `<name>1`, ... because HDF5
    /// object headers hold at most 64 KiB; the chunks are concatenated in index order.
    private static func chunkedStrings(_ file: HDF5File, _ name: String, at path: String) throws -> [String]? {
        if file.hasAttribute(name, at: path) { return try file.stringAttribute(name, at: path) }
        var strings: [String] = []
        var chunk = 0
        while file.hasAttribute("\(name)\(chunk)", at: path) {
            strings += try file.stringAttribute("\(name)\(chunk)", at: path)
            chunk += 1
        }
        return chunk == 0 ? nil : strings
    }

    private static func optionalString(_ file: HDF5File, _ name: String, at path: String) throws -> String? {
        guard file.hasAttribute(name, at: path) else { return nil }
        return try file.stringAttribute(name, at: path).first
    }

    static func list(_ file: HDF5File) throws -> HDF5Listing {
        guard let group = weightsGroup(file) else {
            throw ParseError.malformed("HDF5 file has no layer_names attribute, so it is not a Keras weights file")
        }
        let base = group == "/" ? "" : group
        guard let layerNames = try chunkedStrings(file, "layer_names", at: group) else {
            throw ParseError.malformed("no layer_names attribute")
        }

        var metadata = WeightMetadata(kerasLayerNames: layerNames)
        for path in Set(["/", group]).sorted() {
            for key in ["keras_version", "backend"] {
                if let value = try optionalString(file, key, at: path) { metadata.writerVersions[key] = value }
            }
        }
        metadata.kerasModelConfig = try optionalString(file, "model_config", at: "/")
        if let training = try optionalString(file, "training_config", at: "/") { metadata.extra["training_config"] = training }

        var tensors: [HDF5Listing.Tensor] = []
        var names = Set<String>()
        for layer in layerNames {
            try withContext("layer \(quoted(layer))") {
                let layerPath = base + "/" + layer
                guard file.kind(of: layerPath) == .group else {
                    throw ParseError.malformed("listed in layer_names but the file has no group \(quoted(layerPath))")
                }
                guard let weightNames = try chunkedStrings(file, "weight_names", at: layerPath) else {
                    throw ParseError.malformed("group \(quoted(layerPath)) has no weight_names attribute")
                }
                for weight in weightNames {
                    // Keras 2 weight names already start with the layer name ("conv1/kernel:0");
                    // others ("predictions_1/kernel:0" in group "predictions", nested models'
                    // inner names, Keras 3's paths) get the layer name in front.
                    let name = weight.hasPrefix(layer + "/") ? weight : layer + "/" + weight
                    let datasetPath = layerPath + "/" + weight
                    guard file.kind(of: datasetPath) == .dataset else {
                        throw ParseError.malformed("weight \(quoted(weight)) is listed in weight_names but \(quoted(datasetPath)) is not a dataset")
                    }
                    guard names.insert(name).inserted else {
                        throw ParseError(.duplicateName, "tensor \(quoted(name)) is listed twice")
                    }
                    tensors.append(try file.listingEntry(name: name, datasetPath: datasetPath))
                }
            }
        }
        return HDF5Listing(format: .kerasH5, metadata: metadata, tensors: tensors)
    }
}
