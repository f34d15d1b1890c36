import ZooKit

/// An architecture of this package's own, registered with zoo's registry: after
/// `ModelRegistry.register(TinyNet.architecture)`, zoo builds, summarizes, loads, fine-tunes and
/// extracts it by name like its own families. A 3x3 stride-2 convolution with batch norm and
/// ReLU, then the standard top.
final class TinyNet: ImageModel {
    let conv = Conv2D(inChannels: 3, outChannels: 16, kernel: [3, 3], options: Conv2DOptions(stride: 2, padding: .symmetric(1)), bias: false)
    let bn = BatchNorm(16)

    init(flavor: Flavor, top: Top) {
        super.init(name: "tinynet", flavor: flavor, featureChannels: 16, minimumInputSize: 8)
        appendLayer("input_layer", .inputLayer)
        appendLayer("conv", .conv2D, conv)
        appendLayer("bn", .batchNormalization, bn)
        appendLayer("relu", .activation)
        head = standardHead(top, classifier: [
            .init(.globalPool(.average), name: "avg_pool"),
            .init(.dense(units: top.classes, activation: nil), name: "predictions", key: "fc"),
        ])
    }

    override var stages: [Stage] {
        [Stage("stem", modules: [conv, bn]) { [conv, bn] x, context in
            var y = context.tap("input_layer", x)
            y = context.tap("conv", try conv(y, context))
            y = context.tap("bn", try bn(y, context))
            return context.tap("relu", try relu(y))
        }]
    }

    static let architecture = Architecture(name: "tinynet", summary: "TinyNet (LibraryClient's own)", defaultInputSize: 32,
                                           flavors: [.torchvision], preprocessing: [.torchvision: .torch]) {
        TinyNet(flavor: $0.flavor, top: $0.top)
    }
}
