/// How pixel values are prepared for a weight set, from RGB values in `[0, 255]`.
///
/// The modes are Keras's `preprocess_input` modes; torchvision's ImageNet normalization is the
/// `torch` mode. Preprocessing belongs to the weight set, not the architecture: the manifest
/// of each weight set names its mode.
public enum Preprocessing: String, CaseIterable, Sendable, Codable {
    /// Values unchanged.
    case none
    /// RGB to BGR, then subtract the ImageNet mean pixel `[103.939, 116.779, 123.68]` (BGR);
    /// no scaling. Keras VGG16 and ResNet.
    case caffe
    /// `x / 127.5 - 1`, to `[-1, 1]`. Keras InceptionV3 and MobileNetV2.
    case tf
    /// `x / 255`, then `(x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]` per RGB channel.
    /// Keras DenseNet and every torchvision weight set.
    case torch

    /// The mode of a manifest's `preprocessing` field (`torchvision` is `torch`).
    public init(manifest value: String) throws {
        if value == "torchvision" {
            self = .torch
        } else if let mode = Preprocessing(rawValue: value) {
            self = mode
        } else {
            throw TensorError.invalidArgument(operation: "preprocessing",
                                              message: "unknown preprocessing mode '\(value)'; known: \(Preprocessing.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// Per-channel `scale` and `offset` in zoo's channel order (the model's input channels):
    /// `output[c] = input[source(c)] * scale[c] + offset[c]`.
    public var channelAffine: (scale: [Float], offset: [Float], swapsRedAndBlue: Bool) {
        switch self {
        case .none: return ([1, 1, 1], [0, 0, 0], false)
        case .caffe: return ([1, 1, 1], [-103.939, -116.779, -123.68], true)
        case .tf: return ([1 / 127.5, 1 / 127.5, 1 / 127.5], [-1, -1, -1], false)
        case .torch:
            let mean: [Float] = [0.485, 0.456, 0.406], std: [Float] = [0.229, 0.224, 0.225]
            return ((0..<3).map { 1 / (255 * std[$0]) }, (0..<3).map { -mean[$0] / std[$0] }, false)
        }
    }

    /// Applies the mode to channels-last values `[..., 3]` in place.
    public func apply(nhwc values: inout [Float]) {
        let (scale, offset, swaps) = channelAffine
        guard self != .none else { return }
        for pixel in stride(from: 0, to: values.count - 2, by: 3) {
            let (r, g, b) = (values[pixel], values[pixel + 1], values[pixel + 2])
            let source = swaps ? [b, g, r] : [r, g, b]
            for channel in 0..<3 { values[pixel + channel] = source[channel] * scale[channel] + offset[channel] }
        }
    }
}
