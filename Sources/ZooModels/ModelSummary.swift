import Foundation
import ZooTensor
import ZooNN

/// A Keras-style summary of a model: every layer of its layer list with its output shape and
/// parameter count, and the totals.
public struct ModelSummary: Sendable, Encodable {
    public struct Row: Sendable, Encodable {
        public var name: String
        public var type: String
        /// Channels-last, without the batch: `[112, 112, 64]`, or `[2048]` for vectors.
        public var outputShape: [Int]
        public var parameters: Int
        /// Multiply-adds for one image: a convolution's output positions times its weight's
        /// size, a dense layer's weight size, 0 for other layers.
        public var multiplyAdds: Int
        /// Where the layer's parameters live in the model (`layer1.0.conv1`); empty for
        /// weightless layers.
        public var module: String

        enum CodingKeys: String, CodingKey {
            case name, type, parameters, module
            case outputShape = "output_shape"
            case multiplyAdds = "multiply_adds"
        }
    }

    public var model: String
    public var flavor: String
    public var inputSize: Int
    public var total: Int
    public var trainable: Int
    public var nonTrainable: Int
    /// Multiply-adds of the whole model for one image (convolutions and dense layers).
    public var multiplyAdds: Int
    public var layers: [Row]

    enum CodingKeys: String, CodingKey {
        case model, flavor, total, trainable, layers
        case inputSize = "input_size"
        case nonTrainable = "non_trainable"
        case multiplyAdds = "multiply_adds"
    }

    /// Runs one image of `inputSize` through `model` in inference mode to learn every layer's
    /// output shape.
    public init(_ model: ImageModel, inputSize: Int) throws {
        var shapes: [String: [Int]] = [:]
        let context = ForwardContext.inference()
        context.observer = { name, tensor in shapes[name] = tensor.shape }
        _ = try model(Tensor.zeros([1, 3, inputSize, inputSize]), context)
        let paths = Dictionary(model.namedModules().map { (ObjectIdentifier($0.module), $0.name) }, uniquingKeysWith: { first, _ in first })
        layers = model.layers.map { layer in
            let shape = shapes[layer.name].map { Array($0.dropFirst()) } ?? []
            let channelsLast = shape.count == 3 ? [shape[1], shape[2], shape[0]] : shape
            return Row(name: layer.name, type: layer.kind.className, outputShape: channelsLast,
                       parameters: layer.module?.parameterCount ?? 0,
                       multiplyAdds: layer.kind.multiplyAdds(of: layer.module, outputShape: shape),
                       module: layer.module.flatMap { paths[ObjectIdentifier($0)] } ?? "")
        }
        self.model = model.name
        flavor = model.flavor.rawValue
        self.inputSize = inputSize
        total = model.parameterCount
        trainable = model.trainableParameters.reduce(0) { $0 + $1.value.elementCount }
        nonTrainable = total - trainable
        multiplyAdds = layers.reduce(0) { $0 + $1.multiplyAdds }
    }

    /// The table Keras prints, with a module column.
    public var table: String {
        func shape(_ dims: [Int]) -> String { "(None" + dims.map { ", \($0)" }.joined() + ")" }
        let header = ("Layer (type)", "Output Shape", "Param #", "Module")
        let cells = layers.map { ("\($0.name) (\($0.type))", shape($0.outputShape), grouped($0.parameters), $0.module) }
        let widths = (
            max(header.0.count, cells.map(\.0.count).max() ?? 0), max(header.1.count, cells.map(\.1.count).max() ?? 0),
            max(header.2.count, cells.map(\.2.count).max() ?? 0)
        )
        func line(_ row: (String, String, String, String)) -> String {
            row.0.padding(toLength: widths.0 + 2, withPad: " ", startingAt: 0) + row.1.padding(toLength: widths.1 + 2, withPad: " ", startingAt: 0)
                + String(repeating: " ", count: widths.2 - row.2.count) + row.2 + "  " + row.3
        }
        let rule = String(repeating: "=", count: widths.0 + widths.1 + widths.2 + 6 + 24)
        var lines = ["Model: \(model) (\(flavor) flavour), input \(inputSize)x\(inputSize)x3", rule, line(header), rule]
        lines += cells.map(line)
        lines += [rule, "Total params: \(grouped(total))", "Trainable params: \(grouped(trainable))",
                  "Non-trainable params: \(grouped(nonTrainable))",
                  "Multiply-adds per image: \(grouped(multiplyAdds)) (\(String(format: "%.2f", Double(2 * multiplyAdds) / 1e9)) GFLOP)", rule]
        return lines.joined(separator: "\n")
    }

    /// JSON: `{"total", "trainable", "non_trainable", "layers": [...], ...}`.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

extension ModelSummary {
    /// Several models side by side, one row each (Markdown): total, trainable and
    /// non-trainable parameters and multiply-adds per image.
    public static func comparison(_ summaries: [ModelSummary]) -> String {
        var lines = ["| model | flavour | input | total | trainable | non-trainable | multiply-adds |", "|---|---|---:|---:|---:|---:|---:|"]
        for summary in summaries {
            lines.append("| \(summary.model) | \(summary.flavor) | \(summary.inputSize) | \(grouped(summary.total)) | \(grouped(summary.trainable)) | "
                + "\(grouped(summary.nonTrainable)) | \(grouped(summary.multiplyAdds)) |")
        }
        return lines.joined(separator: "\n")
    }
}

/// `1234567` as `1,234,567`.
func grouped(_ value: Int) -> String {
    let digits = String(value)
    var result = ""
    for (index, character) in digits.enumerated() {
        if index > 0, (digits.count - index) % 3 == 0 { result.append(",") }
        result.append(character)
    }
    return result
}
