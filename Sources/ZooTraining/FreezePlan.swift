import ZooModels

/// Which part of a model's base trains, counted on its layer list the way Keras users count:
/// every layer Keras lists, weightless ones included (input, padding, activations, pooling,
/// concatenations, additions). The head always trains.
///
/// `--unfreeze 20%` keeps the top `ceil(n * 0.2)` of the base's `n` layers trainable and freezes
/// the rest, as `for layer in base.layers[:n - k]: layer.trainable = False` does in Keras. The
/// torchvision flavour applies the same rule to the same list (its layers under Keras's names).
/// A frozen batch norm runs in inference mode with its moving statistics, as in Keras.
public enum FreezePlan: Sendable, Equatable, CustomStringConvertible {
    /// Freeze the whole base: only the head trains.
    case headOnly
    /// Everything trains.
    case all
    /// The top fraction of the base's layers train (`--unfreeze 20%`).
    case fraction(Double)
    /// The top `count` layers of the base train (`--unfreeze 12`).
    case layers(Int)
    /// The layers from `name` to the end of the base train (`--unfreeze-from mixed9`).
    case from(String)

    /// Parses `20%`, `12`, `all`, `none` or `from:LAYER`.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("from:") {
            self = .from(String(trimmed.dropFirst(5)))
            return
        }
        switch trimmed {
        case "all": self = .all
        case "none", "0", "0%": self = .headOnly
        default:
            if trimmed.hasSuffix("%"), let percent = Double(trimmed.dropLast()), percent >= 0, percent <= 100 {
                self = .fraction(percent / 100)
            } else if let count = Int(trimmed), count >= 0 {
                self = .layers(count)
            } else {
                throw TrainingError.invalidFreezePlan(text)
            }
        }
    }

    /// The plan as settings and `config.json` write it, and as ``init(parsing:)`` reads it:
    /// `20%`, `12`, `all`, `none` or `from:LAYER`. (``description`` is the form notes and
    /// checkpoints show, `20.0%`.)
    public var text: String {
        switch self {
        case let .fraction(value):
            // 0.2 * 100 is 20.000000000000004 in binary: round to the decimals people type.
            let percent = (value * 100 * 1e9).rounded() / 1e9
            return percent == percent.rounded() && abs(percent) < 1e15 ? "\(Int(percent))%" : "\(percent)%"
        default: return description
        }
    }

    public var description: String {
        switch self {
        case .headOnly: return "none"
        case .all: return "all"
        case let .fraction(value): return "\(value * 100)%"
        case let .layers(count): return "\(count)"
        case let .from(name): return "from:\(name)"
        }
    }

    /// How many of the base's `layerCount` layers, counted from the top, train.
    public func trainableLayerCount(in layers: [NamedLayer]) throws -> Int {
        switch self {
        case .headOnly: return 0
        case .all: return layers.count
        case let .fraction(value):
            // ceil in exact decimal arithmetic: 707 * 0.2 is 141.4 and must give 142, not 142.00000000000003 -> 143.
            let scaled = (Double(layers.count) * value * 1e9).rounded() / 1e9
            return min(layers.count, Int(scaled.rounded(.up)))
        case let .layers(count): return min(count, layers.count)
        case let .from(name):
            guard let index = layers.firstIndex(where: { $0.name == name }) else {
                throw TrainingError.unknownLayer(name)
            }
            return layers.count - index
        }
    }

    /// Freezes the base's bottom layers and makes the top ones and the head trainable.
    @discardableResult
    public func apply(to model: ImageModel) throws -> (trainableLayers: Int, frozenLayers: Int) {
        let layers = model.baseLayers
        let trainable = try trainableLayerCount(in: layers)
        for (index, layer) in layers.enumerated() {
            if index < layers.count - trainable { layer.module?.freeze() } else { layer.module?.unfreeze() }
        }
        model.head?.unfreeze()
        return (trainable, layers.count - trainable)
    }
}

/// Written as its ``FreezePlan/text`` (`"20%"`, `"all"`), the string settings held before they
/// were typed, so `config.json` files of either version read in both.
extension FreezePlan: TextCodable {}
