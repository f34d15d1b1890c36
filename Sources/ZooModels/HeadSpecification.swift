import ZooTensor

/// A head written as text, as the command line takes it: comma-separated steps
/// `gap` (global average pooling), `gmp` (global max pooling), `flatten`, `dropout=RATE`,
/// `dense=UNITS` or `dense=UNITS:ACTIVATION` (relu, relu6, silu, sigmoid, hardSwish, hardSigmoid, gelu) for a hidden layer, and a final `dense` whose units are
/// the number of classes. Example: `gap,dropout=0.5,dense` (Keras users' usual head).
public struct HeadSpecification: Sendable, Equatable, CustomStringConvertible {
    public var steps: [ClassificationHead.Step]

    /// The default head for fine-tuning: global average pooling, dropout 0.5, a dense classifier.
    public static func standard(classes: Int) -> HeadSpecification {
        HeadSpecification(steps: [.globalPool(.average), .dropout(0.5), .dense(units: classes, activation: nil)])
    }

    public init(steps: [ClassificationHead.Step]) {
        self.steps = steps
    }

    /// Parses `text`; a bare `dense` takes `classes` units.
    public init(parsing text: String, classes: Int) throws {
        var steps: [ClassificationHead.Step] = []
        for part in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let pieces = part.split(separator: "=", maxSplits: 1).map(String.init)
            let argument = pieces.count > 1 ? pieces[1] : nil
            switch pieces[0] {
            case "gap" where argument == nil: steps.append(.globalPool(.average))
            case "gmp" where argument == nil: steps.append(.globalPool(.max))
            case "flatten" where argument == nil: steps.append(.flatten)
            case "dropout":
                guard let argument, let rate = Float(argument), rate >= 0, rate < 1 else {
                    throw ModelError.invalidHead(specification: text, reason: "head step '\(part)': dropout needs a rate in [0, 1), as in dropout=0.5")
                }
                steps.append(.dropout(rate))
            case "dense":
                guard let argument else {
                    steps.append(.dense(units: classes, activation: nil))
                    continue
                }
                let unitsAndActivation = argument.split(separator: ":").map(String.init)
                let activation = unitsAndActivation.count == 2
                    ? Activation.allCases.first { $0.name.lowercased() == unitsAndActivation[1].lowercased() } : nil
                guard let units = Int(unitsAndActivation[0]), units > 0, unitsAndActivation.count == 1 || activation != nil else {
                    throw ModelError.invalidHead(specification: text, reason: "head step '\(part)': expected dense, dense=UNITS or dense=UNITS:ACTIVATION "
                        + "(\(Activation.allCases.map(\.name).joined(separator: ", ")))")
                }
                steps.append(.dense(units: units, activation: activation))
            default:
                throw ModelError.invalidHead(specification: text, reason: "head step '\(part)' is not one of gap, gmp, flatten, dropout=RATE, dense, dense=UNITS[:ACTIVATION]")
            }
        }
        guard let last = steps.last, case .dense = last else {
            throw ModelError.invalidHead(specification: text, reason: "head '\(text)' must end with a dense layer")
        }
        guard let first = steps.first, [.globalPool(.average), .globalPool(.max), .flatten].contains(first) else {
            throw ModelError.invalidHead(specification: text, reason: "head '\(text)' must start with gap, gmp or flatten to turn feature maps into vectors")
        }
        self.steps = steps
    }

    public var description: String {
        steps.map { step in
            switch step {
            case let .globalPool(kind): return kind == .average ? "gap" : "gmp"
            case .adaptiveAveragePool(let h, let w): return "adaptive\(h)x\(w)"
            case .flatten: return "flatten"
            case let .dropout(rate): return "dropout=\(rate)"
            case let .dense(units, activation): return "dense=\(units)" + (activation.map { ":\($0.name)" } ?? "")
            // Not a step a specification parses (only framework tops have it); named for listings.
            case let .pointwiseDense(units, _): return "pointwise=\(units)"
            case .identity: return "identity"
            case let .activation(activation): return activation.name
            }
        }.joined(separator: ",")
    }

    /// Builds the head for `model`'s base at `inputSize`: a head that flattens the last feature
    /// map is as wide as that map at ``flattenedSide(inputSize:)``.
    public func head(for model: ImageModel, inputSize: Int) -> ClassificationHead {
        let side = Self.flattenedSide(inputSize: inputSize)
        return head(inputFeatures: model.featureChannels, featureSize: (side, side))
    }

    /// The side of the last feature map a flattening head is sized for at `inputSize`: the
    /// input's 32nd, the total stride of the ImageNet families (InceptionV3's valid convolutions
    /// give 8 at 299, not 9: a flattening head on it is sized wrong, see the issue notes).
    public static func flattenedSide(inputSize: Int) -> Int { max(1, inputSize / 32) }

    /// Builds the head for a model's features. Layers get Keras's automatic names (`dense`,
    /// `dense_1`, ...) and parameters the key `head.<name>` (see ``namedSteps``).
    public func head(inputFeatures: Int, featureSize: (height: Int, width: Int) = (1, 1)) -> ClassificationHead {
        let flattened = steps.first == .flatten ? inputFeatures * featureSize.height * featureSize.width : inputFeatures
        return ClassificationHead(namedSteps, inputFeatures: flattened)
    }

    /// The steps with the names ``head(inputFeatures:featureSize:)`` gives them, known without
    /// building the layers (to compare a built head with a specification).
    public var namedSteps: [ClassificationHead.NamedStep] {
        var graph = KerasGraph()
        return steps.map { step -> ClassificationHead.NamedStep in
            let kind: LayerKind
            switch step {
            case let .globalPool(pooling): kind = pooling == .average ? .globalAveragePooling2D : .globalMaxPooling2D
            case .adaptiveAveragePool: kind = .averagePooling2D
            case .flatten: kind = .flatten
            case .dropout: kind = .dropout
            case .dense, .pointwiseDense: kind = .dense
            case .identity, .activation: kind = .activation
            }
            let name = graph.autoName(kind)
            return ClassificationHead.NamedStep(step, name: name, key: kind == .dense ? "head.\(name)" : nil)
        }
    }
}
