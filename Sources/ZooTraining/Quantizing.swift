import Foundation
import ZooTensor
import ZooNN
import ZooData
import ZooModels

/// What calibrating a classifier for int8 found: the plan, and how the int8 model agrees with
/// the floating-point one on the calibration images.
public struct QuantizationReport: Sendable {
    /// One convolution: how it runs, and the ranges it saw.
    public struct Layer: Sendable {
        /// The parameter path (`layer1.0.conv1`).
        public var path: String
        /// Its int8 quantization; nil when it stays floating point.
        public var quantization: ConvolutionQuantization?
        /// Why it stays floating point.
        public var keptFloatBecause: String?
        /// The smallest and largest input and output values seen (before any clipping).
        public var input: ClosedRange<Float>?
        public var output: ClosedRange<Float>?
        /// The layer's own int8 error: the root-mean-square difference between its int8 and
        /// floating-point outputs, both computed from the floating-point model's input to it, over
        /// the root-mean-square floating-point output (0.01 is 1%). Measured for every
        /// convolution the calibration quantized, those then kept in floating point included.
        public var error: Double?
    }

    public var plan: QuantizationPlan
    /// Every convolution, in parameter order.
    public var layers: [Layer]
    /// Calibration images whose most probable class is the same in int8 as in floating point.
    public var topOneAgreement: Double
    /// The largest difference between int8 and floating-point logits over the largest
    /// floating-point logit magnitude, averaged over the calibration images.
    public var meanLogitError: Double
    /// Images compared.
    public var images: Int
}

extension Classifier {
    /// Calibrates the classifier's convolutions for int8 on `images` images of `dataset` (drawn
    /// in a fixed shuffled order, so spread over the classes), and leaves its model quantized
    /// (``ZooModels/ImageModel/quantize(_:)``). Ranges are recorded in f32; the comparison runs
    /// the layers that stay floating point in `floatType`.
    ///
    /// Calibration needs no labels; a few hundred images of the kind the model will see are the
    /// usual amount (NNCF's default is 300).
    ///
    /// - Parameters:
    ///   - keepingFloat: convolutions (by parameter path) to run in floating point regardless
    ///     (their int8 error is still measured and reported).
    ///   - maximumLayerError: keep in floating point each convolution whose own int8 error
    ///     (``QuantizationReport/Layer/error``) exceeds this (0.05 is 5%).
    public func calibrate(on dataset: any Dataset, images: Int = 512, method: CalibrationMethod = .percentile(99.99),
                          keepingFloat: Set<String> = [], maximumLayerError: Double? = nil,
                          batchSize: Int = 32, floatType: ElementType = .float32, workers: Int = 2,
                          skipDamaged: Bool = false) throws -> QuantizationReport {
        guard images > 0, dataset.count > 0 else {
            throw TrainingError.noCalibrationImages(requested: images, available: dataset.count)
        }
        let paths = model.convolutions.map(\.path)
        if let unknown = keepingFloat.sorted().first(where: { !paths.contains($0) }) {
            throw ModelError.noSuchLayer(model: model.name, layer: unknown,
                                         similar: Array(paths.filter { $0.hasPrefix(String(unknown.prefix(4))) }.prefix(8)))
        }
        var options = DataLoader.Options(size: imageSize, batchSize: min(batchSize, images))
        options.preprocessing = preprocessing
        options.transform = AugmentationSpecification.evaluationTransform(size: imageSize, resize: resize)
        options.workers = workers
        options.skipDamaged = skipDamaged
        options.seed = 17
        func batches(_ body: (Tensor) throws -> Void) throws -> Int {
            let loader = try DataLoader(dataset, options: options).epoch(0)
            var seen = 0
            while seen < images, let batch = try loader.next() {
                try body(batch.images)
                seen += batch.labels.count
            }
            return seen
        }
        model.removeQuantization()
        let calibration = ActivationCalibration()
        let seen = try batches { images in
            let context = ForwardContext.inference()
            context.calibration = calibration
            _ = try model(images, context)
        }
        var plan = model.quantizationPlan(calibration, method: method, images: seen)
        // The floating-point reference pass measures each layer's own int8 error on the way (a
        // calibration pass runs floating point throughout) and keeps the logits to compare with.
        try model.quantize(plan)
        let errors = ActivationCalibration(measuringError: true)
        var references: [[Float]] = []
        _ = try batches { images in
            let context = ForwardContext.inference(floatType)
            context.calibration = errors
            references.append(try model(images, context).array())
        }
        for (path, convolution) in model.convolutions where plan.layers[path] != nil {
            if keepingFloat.contains(path) {
                plan.keepFloat(path, because: "asked for")
            } else if let maximumLayerError, let error = errors.error(of: convolution), error > maximumLayerError {
                plan.keepFloat(path, because: String(format: "its int8 error %.2f%% is above %.2f%%", 100 * error, 100 * maximumLayerError))
            }
        }
        try model.quantize(plan)
        var agreeing = 0, logitError = 0.0, batch = 0
        _ = try batches { images in
            let reference = references[batch]
            batch += 1
            let quantized = try model(images, .inference(floatType)).array()
            let classes = reference.count / images.shape[0]
            for row in 0..<images.shape[0] {
                let expected = reference[row * classes..<(row + 1) * classes], actual = quantized[row * classes..<(row + 1) * classes]
                if expected.indices.max(by: { expected[$0] < expected[$1] }) == actual.indices.max(by: { actual[$0] < actual[$1] }) {
                    agreeing += 1
                }
                let scale = max(expected.map(abs).max() ?? 0, .leastNormalMagnitude)
                let largest = zip(expected, actual).map { abs($0 - $1) }.max() ?? 0
                logitError += Double(largest / scale)
            }
        }
        let layers = model.convolutions.map { path, convolution -> QuantizationReport.Layer in
            let observation = calibration.observation(of: convolution)
            func range(_ statistics: ValueStatistics?) -> ClosedRange<Float>? {
                guard let statistics, statistics.count > 0 else { return nil }
                return statistics.minimum...statistics.maximum
            }
            return QuantizationReport.Layer(path: path, quantization: plan.layers[path], keptFloatBecause: plan.keptFloat[path],
                                            input: range(observation?.input), output: range(observation?.output),
                                            error: errors.error(of: convolution))
        }
        return QuantizationReport(plan: plan, layers: layers, topOneAgreement: Double(agreeing) / Double(seen),
                                  meanLogitError: logitError / Double(seen), images: seen)
    }
}
