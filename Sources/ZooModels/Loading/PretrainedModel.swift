import Foundation
import ZooTensor
import ZooNN
import ZooWeights

extension Architecture {
    /// Builds the model a weight file describes and loads the file into it.
    ///
    /// The top follows the file: a file with the framework's classifier gives the model with
    /// that classifier and its number of classes (and, for Keras VGG16, the input size its `fc1`
    /// was built for), a file without one gives the base alone. Loading is strict unless
    /// `strict` is false; then parameters the file does not set keep their random initial values.
    public func load(flavor: Flavor, weights url: URL, strict: Bool = true, rules: [RenameRule] = []) throws
        -> (model: ImageModel, report: LoadReport) {
        let reader = try WeightFiles.open(url)
        let top = try classifierTop(in: reader, flavor: flavor, rules: rules)
        // Strict loading sets every parameter, so random initial values would be thrown away.
        let build = { try make(flavor: flavor, top: top.top, inputSize: top.inputSize) }
        let model = strict ? try Initialization.skippingRandomness(build) : try build()
        let report = try WeightImport.load(reader, into: model, strict: strict, rules: rules)
        return (model, report)
    }

    /// The top a file's tensors imply: the framework classifier with the file's class count
    /// when the file holds its final dense layer, otherwise no top.
    func classifierTop(in reader: any WeightReader, flavor: Flavor, rules: [RenameRule]) throws -> (top: Top, inputSize: Int?) {
        let probe = try Initialization.skippingRandomness { try make(flavor: flavor, top: .imagenet) }
        guard let classifier = probe.head?.denseLayers.last,
              let path = probe.namedModules().first(where: { $0.module === classifier })?.name else {
            return (.features(pooling: nil), nil)
        }
        let assignments = try WeightImport.mapping(for: reader, into: probe, rules: rules)
        guard let weight = assignments.first(where: { $0.target == "\(path).weight" }),
              let info = reader.info(weight.source),
              let shape = weight.transform.shape(from: info.shape), shape.count == classifier.weight.shape.count else {
            return (.features(pooling: nil), nil)
        }
        var inputSize: Int?
        // A top that flattens the last feature map (Keras VGG16) fixes the input size: the first
        // dense layer's width, against the probe's at the default size, gives it.
        if probe.head?.steps.first?.step == .flatten, let first = probe.head?.denseLayers.first,
           let firstPath = probe.namedModules().first(where: { $0.module === first })?.name,
           let fc1 = assignments.first(where: { $0.target == "\(firstPath).weight" }), let fc1Info = reader.info(fc1.source),
           let fileWidth = fc1.transform.shape(from: fc1Info.shape)?.last {
            let channels = probe.featureChannels
            let defaultSide = Int(Double(first.weight.value.shape[1] / channels).squareRoot().rounded())
            let side = Int(Double(fileWidth / channels).squareRoot().rounded())
            inputSize = defaultSide > 0 ? side * (defaultInputSize / defaultSide) : nil
        }
        return (.classifier(classes: shape[0]), inputSize)
    }
}
