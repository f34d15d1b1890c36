import ZooTensor
import ZooModels

extension HeadSpecification {
    /// A head before the number of classes is known, as fine-tuning settings hold it: the
    /// ``HeadSpecification`` text (`gap,dropout=0.5,dense`) whose final bare `dense` gets one
    /// unit per class. Checked when made; written to `config.json` as that text.
    public struct Template: Sendable, Equatable, TextCodable, CustomStringConvertible {
        /// The text as given (so a saved configuration reads back as it was written).
        public let text: String

        /// Global average pooling, dropout 0.5, a dense classifier: Keras users' usual head.
        public static let standard = Template(checked: "gap,dropout=0.5,dense")

        /// Reads `text` (see ``HeadSpecification/init(parsing:classes:)``).
        public init(parsing text: String) throws {
            do {
                _ = try HeadSpecification(parsing: text, classes: 1)
            } catch {
                throw TrainingError.invalidHead(text, reason: "\(error)")
            }
            self.text = text
        }

        /// The template of `specification`, whose last dense layer is the classifier (its units
        /// become the number of classes of the run).
        public init(_ specification: HeadSpecification) {
            var steps = specification.description.split(separator: ",").map(String.init)
            if let last = steps.last, last.hasPrefix("dense="), !last.contains(":") { steps[steps.count - 1] = "dense" }
            text = steps.joined(separator: ",")
        }

        private init(checked text: String) {
            self.text = text
        }

        /// The head for `classes` classes.
        public func specification(classes: Int) throws -> HeadSpecification {
            do {
                return try HeadSpecification(parsing: text, classes: classes)
            } catch {
                throw TrainingError.invalidHead(text, reason: "\(error)")
            }
        }

        public var description: String { text }
    }
}

extension HeadSpecification.Template {
    /// Checks that `head` (a model's) is the head this template builds for `classes` classes on
    /// a base with `featureChannels` channels at `imageSize`: the same steps, layer names and
    /// input width, so that a checkpoint rebuilt from the template loads its tensors.
    func check(_ head: ClassificationHead, classes: Int, featureChannels: Int, imageSize: Int) throws {
        let specification = try self.specification(classes: classes)
        let cells = HeadSpecification.flattenedSide(inputSize: imageSize)
        let namedSteps = specification.namedSteps
        // The dense layers' [out, in] shapes, worked out rather than built (a VGG-style head's
        // first layer alone holds 100M weights).
        var width = specification.steps.first == .flatten ? featureChannels * cells * cells : featureChannels
        var denseShapes: [[Int]] = []
        for case let .dense(units, _) in specification.steps {
            denseShapes.append([units, width])
            width = units
        }
        let modelSteps = head.steps.map(\.step)
        guard head.steps == namedSteps, head.denseLayers.map(\.weight.shape) == denseShapes else {
            let inputs = head.denseLayers.first.map { ", \($0.weight.shape[1]) inputs" } ?? ""
            let expectedInputs = denseShapes.first.map { ", \($0[1]) inputs" } ?? ""
            let keys = modelSteps == specification.steps && head.steps != namedSteps
                ? ", layers \(head.steps.map { $0.key ?? $0.name }) instead of \(namedSteps.map { $0.key ?? $0.name })" : ""
            let modelText = HeadSpecification(steps: modelSteps).description + inputs + keys
            throw TrainingError.headMismatch(model: modelText,
                                             settings: "\(text) for \(classes) classes: \(specification)\(expectedInputs)")
        }
    }
}
