import Foundation
import ZooTensor
import ZooNN
import ZooWeights
import ZooData
import ZooModels

/// Runs images through a model in inference mode and returns, or writes to disk, the outputs
/// of named layers. Arrays and datasets go through the same steps: batches of preprocessed
/// images, one forward pass each, the named layers' outputs channels-last.
public enum FeatureExtraction {
    /// The name under which the model's own output (its logits, or its last feature map when
    /// it has no classifier) is extracted when no layer is named.
    public static let outputName = "output"

    /// The name under which the base's last feature map, averaged globally to one vector per
    /// image, is extracted from any model, whatever its top (``ZooModels/ImageModel/pooledFeatures(_:_:pooling:)``).
    /// The frameworks' names for that layer (Keras's `avg_pool` and `global_average_pooling2d`,
    /// torchvision's `avgpool`) mean the same where the model has no layer of that name.
    public static let pooledName = "pooled"
    static let pooledAliases: Set<String> = [pooledName, "avg_pool", "avgpool", "global_average_pooling2d"]

    /// Whether `layer` names the pooled base output in `model`: `pooled`, or an alias that is
    /// not one of the model's own layers.
    static func isPooled(_ layer: String, in model: ImageModel) -> Bool {
        pooledAliases.contains(layer) && !model.layers.contains { $0.name == layer }
    }

    /// The output of `layer` (the model's output when nil: logits, before any softmax) for
    /// images given channels-last, `[N, H, W, 3]`, after `preprocessing`.
    ///
    /// Images go through in batches of `batchSize`, so memory stays bounded. The result is
    /// channels-last `[N, H, W, C]` for feature maps and `[N, C]` for vectors, in f32 whatever
    /// the activations' `precision`.
    public static func run(_ model: ImageModel, nhwc values: [Float], shape: [Int], layer: String? = nil,
                           preprocessing: Preprocessing = .none, batchSize: Int = 32,
                           precision: ElementType = .float32) throws -> (values: [Float], shape: [Int]) {
        let layers = [layer ?? outputName]
        try check(layers, in: model)
        var output: [Float] = []
        var rowShape: [Int] = []
        try forEachArrayBatch(nhwc: values, shape: shape, preprocessing: preprocessing, batchSize: batchSize, from: 0) { batch, _ in
            let result = try outputs(of: model, for: batch, layers: layers, precision: precision)[0]
            output += result.values
            rowShape = result.rowShape
        }
        return (output, [shape[0]] + rowShape)
    }

    /// Where images come from for ``extract(_:from:layers:to:batchSize:header:progress:)``.
    public enum Source {
        /// An array of images, channels-last `[N, H, W, 3]`, used at the size it has
        /// (`name` identifies it in sample ids: `name#17`).
        case array(values: [Float], shape: [Int], name: String)
        /// A dataset, each image resized to `size`: by `transform`, or, when it is nil, by the
        /// evaluation transform with torchvision's bilinear resizing (no augmentation).
        case dataset(any Dataset, size: Int, transform: DataLoader.SampleTransform?, workers: Int)

        var count: Int {
            switch self {
            case let .array(_, shape, _): shape.first ?? 0
            case let .dataset(dataset, _, _, _): dataset.count
            }
        }
    }

    /// Writes the outputs of `layers` (``outputName`` for the model's output) for every image
    /// of `source` to the feature file at `file`, with labels, class names and sample ids.
    ///
    /// Memory stays bounded: a batch is written as soon as it is computed. Progress is
    /// committed after the first batch and then every two seconds; when a run was killed, the same call continues after the
    /// last committed batch, and the finished file equals an uninterrupted run's (batches keep
    /// their boundaries). `header` describes the run (model, weights, data); its layers,
    /// count and class names are filled in here. `progress` hears (done, total) after each batch.
    /// Activations are of `precision`; the file holds f32.
    @discardableResult
    public static func extract(_ model: ImageModel, from source: Source, layers: [String], to file: URL, batchSize: Int,
                               header: FeatureFileHeader, preprocessing: Preprocessing, precision: ElementType = .float32,
                               progress: ((Int, Int) -> Void)? = nil) throws -> FeatureFileHeader {
        try check(layers, in: model)
        guard batchSize > 0 else { throw ModelError.invalidArgument("the batch size must be positive, got \(batchSize)") }
        var header = header
        header.count = source.count
        header.batchSize = batchSize
        let labels: [Int]
        let sampleIDs: [String]
        let probe: Tensor
        switch source {
        case let .array(values, shape, name):
            try checkArray(values, shape: shape)
            header.classNames = []
            labels = Array(repeating: -1, count: shape[0])
            sampleIDs = (0..<shape[0]).map { "\(name)#\($0)" }
            probe = try Tensor(nhwc: [Float](repeating: 0, count: shape[1] * shape[2] * 3), shape: [1, shape[1], shape[2], 3])
        case let .dataset(dataset, size, _, _):
            header.classNames = dataset.classNames
            labels = (0..<dataset.count).map(dataset.label(at:))
            sampleIDs = (0..<dataset.count).map(dataset.sampleID(at:))
            probe = try Tensor(nhwc: [Float](repeating: 0, count: size * size * 3), shape: [1, size, size, 3])
        }
        // One blank image gives every layer's per-sample shape before any file is made.
        header.layers = try zip(layers, outputs(of: model, for: probe, layers: layers, precision: precision)).map { .init(name: $0, shape: $1.rowShape) }

        let writer = try FeatureFileWriter(url: file, header: header, labels: labels, sampleIDs: sampleIDs)
        let total = source.count
        var lastCommit = Date()
        var done = writer.rowsDone
        progress?(done, total)
        let write: (Tensor, Int) throws -> Void = { batch, start in
            let results = try outputs(of: model, for: batch, layers: layers, precision: precision)
            for (index, result) in results.enumerated() {
                try writer.write(layer: index, start: start, rows: batch.shape[0], values: result.values)
            }
            done = start + batch.shape[0]
            // The first batch is committed at once (a run is resumable from then on), later
            // ones every two seconds: each commit waits for the disk.
            if writer.rowsDone == 0 || Date().timeIntervalSince(lastCommit) > 2 || done == total {
                try writer.commit(rows: done)
                lastCommit = Date()
            }
            progress?(done, total)
        }
        switch source {
        case let .array(values, shape, _):
            try forEachArrayBatch(nhwc: values, shape: shape, preprocessing: preprocessing, batchSize: batchSize, from: writer.rowsDone, write)
        case let .dataset(dataset, size, transform, workers):
            let remaining = dataset.dropFirst(writer.rowsDone)
            var options = DataLoader.Options(size: size, batchSize: batchSize)
            options.shuffle = false
            options.preprocessing = preprocessing
            options.transform = transform ?? AugmentationSpecification.evaluationTransform(size: size, resize: .torchvision)
            options.workers = workers
            let loader = try DataLoader(remaining, options: options)
            let batches = loader.epoch(0)
            var start = writer.rowsDone
            while let batch = try batches.next() {
                try write(batch.images, start)
                start += batch.labels.count
            }
        }
        if total == 0 { try writer.commit(rows: 0) }
        try writer.finish()
        return header
    }

    // MARK: The shared steps

    private static func check(_ layers: [String], in model: ImageModel) throws {
        guard !layers.isEmpty else { throw ModelError.invalidArgument("name at least one layer to extract") }
        for layer in layers where layer != outputName && !isPooled(layer, in: model) && !model.layers.contains(where: { $0.name == layer }) {
            let close = model.layers.map(\.name).filter { $0.hasPrefix(String(layer.prefix(4))) }.prefix(8)
            throw ModelError.noSuchLayer(model: model.name, layer: layer, similar: Array(close))
        }
    }

    private static func checkArray(_ values: [Float], shape: [Int]) throws {
        guard shape.count == 4, shape[3] == 3, values.count == shape.reduce(1, *) else {
            throw ModelError.invalidArgument("expected images as a float32 array [N, H, W, 3], got shape \(shape)")
        }
    }

    /// Batches of an image array from image `start` on, preprocessed, with their first row.
    private static func forEachArrayBatch(nhwc values: [Float], shape: [Int], preprocessing: Preprocessing, batchSize: Int, from start: Int,
                                          _ body: (Tensor, Int) throws -> Void) throws {
        try checkArray(values, shape: shape)
        let imageSize = shape[1] * shape[2] * 3
        for first in stride(from: start, to: shape[0], by: max(batchSize, 1)) {
            let count = min(batchSize, shape[0] - first)
            var batch = Array(values[first * imageSize..<(first + count) * imageSize])
            preprocessing.apply(nhwc: &batch)
            try body(try Tensor(nhwc: batch, shape: [count, shape[1], shape[2], 3]), first)
        }
    }

    /// One forward pass: each layer's output for the batch, channels-last, with the shape of
    /// one sample's part.
    private static func outputs(of model: ImageModel, for batch: Tensor, layers: [String],
                                precision: ElementType) throws -> [(values: [Float], rowShape: [Int])] {
        let context = ForwardContext.inference(precision)
        context.capturing = Set(layers.filter { $0 != outputName && !isPooled($0, in: model) })
        // The model's own call, in its parts, so that the base's output is at hand for `pooled`.
        try model.checkInput(batch)
        let base = try model.features(batch, context)
        let output = try model.head.map { try $0(base, context) } ?? base
        let pooled = try layers.contains { isPooled($0, in: model) } ? globalAvgPool2d(base) : nil
        return try layers.map { layer in
            let tensor: Tensor
            if layer == outputName {
                tensor = output
            } else if isPooled(layer, in: model), let pooled {
                tensor = pooled
            } else {
                guard let captured = context.captured[layer] else { throw ModelError.noLayerOutput(model: model.name, layer: layer) }
                tensor = captured
            }
            let rowShape = tensor.shape.count == 4 ? [tensor.shape[2], tensor.shape[3], tensor.shape[1]] : Array(tensor.shape.dropFirst())
            return (tensor.shape.count == 4 ? try tensor.nhwcArray() : try tensor.array(), rowShape)
        }
    }
}
