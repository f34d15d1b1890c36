import Foundation
import ZooTensor
import ZooWeights

/// A user's renaming rule for checkpoints from elsewhere: every match of the regular expression
/// `pattern` in a source tensor name is replaced by `replacement` (`$1` refers to groups).
/// A list of rules is read from JSON: `[{"pattern": "^backbone\\.", "replacement": ""}]`.
public struct RenameRule: Codable, Sendable, Equatable {
    public var pattern: String
    public var replacement: String

    public init(pattern: String, replacement: String) {
        self.pattern = pattern
        self.replacement = replacement
    }

    /// Reads a JSON list of rules.
    public static func load(_ url: URL) throws -> [RenameRule] {
        do {
            return try JSONDecoder().decode([RenameRule].self, from: Data(contentsOf: url))
        } catch {
            throw ModelError.invalidRenameRules(source: url.path,
                                                reason: "\(url.path): expected a JSON list of {\"pattern\": ..., \"replacement\": ...} rules (\(error))")
        }
    }

    func apply(_ name: String) throws -> String {
        let expression: NSRegularExpression
        do {
            expression = try NSRegularExpression(pattern: pattern)
        } catch {
            throw ModelError.invalidRenameRules(source: pattern, reason: "renaming rule '\(pattern)' is not a valid regular expression")
        }
        return expression.stringByReplacingMatches(in: name, range: NSRange(name.startIndex..., in: name), withTemplate: replacement)
    }
}

/// Where one source tensor goes.
public struct WeightAssignment: Sendable, Equatable {
    /// The tensor's name in the file.
    public var source: String
    /// The parameter's name in the model (`layer1.0.conv1.weight`).
    public var target: String
    public var transform: LayoutTransform
}

/// What loading a weight file did, tensor by tensor.
public struct LoadReport: Sendable, CustomStringConvertible {
    /// The file the weights came from.
    public var file: String
    /// Parameters set from the file.
    public var loaded: [String] = []
    /// Parameters of the model that the file does not provide, with the shape they have.
    public var missing: [(name: String, shape: [Int])] = []
    /// Tensors of the file that nothing in the model takes, with their shape.
    public var unexpected: [(name: String, shape: [Int])] = []
    /// Tensors whose shape does not fit the parameter they map to (skipped).
    public var mismatched: [(source: String, target: String, expected: [Int], actual: [Int])] = []
    /// Tensors deliberately not loaded (`num_batches_tracked`, optimizer state).
    public var ignored: [String] = []
    /// Optional parts of the model (``ImageModel/optionalParts``) the file does not hold, which
    /// were removed from the model.
    public var removedParts: [String] = []

    /// Whether every parameter came from the file and every tensor went somewhere.
    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && mismatched.isEmpty }

    public var description: String {
        var lines = ["\(file): loaded \(loaded.count) tensors"
            + (ignored.isEmpty ? "" : ", ignored \(ignored.count) (\(Set(ignored.map { $0.split(separator: ".").last.map(String.init) ?? $0 }).sorted().joined(separator: ", ")))")]
        for part in removedParts { lines.append("  not in the file, removed from the model: \(part) (optional)") }
        for (name, shape) in missing { lines.append("  missing in the file: \(name) \(shape)") }
        for (name, shape) in unexpected { lines.append("  unexpected in the file: \(name) \(shape)") }
        for m in mismatched { lines.append("  shape mismatch: \(m.source) \(m.actual) -> \(m.target) expects \(m.expected)") }
        return lines.joined(separator: "\n")
    }
}

/// Loads weight files into models, by name, through explicit key maps with shape checks.
///
/// PyTorch-style files (`torch.save`, safetensors, npz) name tensors as state dictionaries do;
/// zoo's parameter names are torchvision's, so their map is the identity after a few
/// normalizations: a DataParallel `module.` prefix is dropped, the old DenseNet spelling
/// `denselayer1.norm.1.weight` becomes `denselayer1.norm1.weight`, `num_batches_tracked` is
/// ignored. Keras files are mapped layer by layer: the model's layer list names each Keras
/// layer and the module holding its weights; a layer's weights are taken in Keras's stored
/// order (`kernel`, `bias`; `gamma`, `beta`, `moving_mean`, `moving_variance`) and moved into
/// PyTorch's layouts. Keras's auto-named layers (`conv2d_N` in InceptionV3) are matched by
/// numeric order.
public enum WeightImport {
    /// Opens `url` and loads it into `model`.
    ///
    /// - Parameters:
    ///   - strict: throw when anything is missing, unexpected or mismatched. When false,
    ///     mismatched tensors (a classifier for another number of classes) are skipped and
    ///     reported, and the parameters they would have set keep their values.
    ///   - rules: renaming rules applied to source names first.
    @discardableResult
    public static func load(_ url: URL, into model: ImageModel, strict: Bool = true, rules: [RenameRule] = []) throws -> LoadReport {
        try load(try WeightFiles.open(url), into: model, strict: strict, rules: rules)
    }

    /// Loads an open weight file into `model`.
    @discardableResult
    public static func load(_ reader: any WeightReader, into model: ImageModel, strict: Bool = true,
                            rules: [RenameRule] = []) throws -> LoadReport {
        var report = LoadReport(file: reader.url.path)
        report.removedParts = try removeAbsentOptionalParts(of: model, reader: reader, rules: rules)
        let assignments = try mapping(for: reader, into: model, rules: rules, report: &report)
        let parameters = Dictionary(model.namedParameters().map { ($0.name, $0.parameter) }, uniquingKeysWith: { first, _ in first })
        var assigned = Set<String>()
        for assignment in assignments {
            guard let parameter = parameters[assignment.target], let info = reader.info(assignment.source) else { continue }
            guard let shape = assignment.transform.shape(from: info.shape), shape == parameter.shape else {
                report.mismatched.append((assignment.source, assignment.target, parameter.shape, info.shape))
                continue
            }
            let values = assignment.transform.apply(try reader.floats(assignment.source), from: info.shape)
            parameter.value = try Tensor(shape: shape, values: values)
            report.loaded.append(assignment.target)
            assigned.insert(assignment.target)
        }
        let mappedTargets = Set(assignments.map(\.target))
        report.missing = model.namedParameters().filter { !mappedTargets.contains($0.name) }.map { ($0.name, $0.parameter.shape) }
        if strict, !report.isComplete {
            throw ModelError.weightsDoNotFit(file: reader.url.path, model: model.name, flavor: model.flavor, report: report.description)
        }
        return report
    }

    /// Where every tensor of `reader` goes in `model`.
    public static func mapping(for reader: any WeightReader, into model: ImageModel, rules: [RenameRule] = []) throws -> [WeightAssignment] {
        var report = LoadReport(file: reader.url.path)
        return try mapping(for: reader, into: model, rules: rules, report: &report)
    }

    static func mapping(for reader: any WeightReader, into model: ImageModel, rules: [RenameRule],
                        report: inout LoadReport) throws -> [WeightAssignment] {
        switch reader.format {
        case .kerasH5, .kerasWeightsH5, .kerasArchive:
            return try KerasWeightMap(reader: reader, model: model, rules: rules).assignments(report: &report)
        case .torchZip, .torchLegacy, .safetensors, .npz, .npy:
            return try stateDictionaryMapping(reader, model: model, rules: rules, report: &report)
        case .zooFeaturesH5:
            throw ModelError.notWeights(file: reader.url.path, reason: "is a zoo feature file (zoo extract wrote it), not weights")
        }
    }

    /// Removes the model's optional parts of which a PyTorch-style file holds no tensor
    /// (InceptionV3's `AuxLogits` in a state dict saved with `aux_logits=False`); returns their keys.
    static func removeAbsentOptionalParts(of model: ImageModel, reader: any WeightReader, rules: [RenameRule]) throws -> [String] {
        guard !model.optionalParts.isEmpty, [.torchZip, .torchLegacy, .safetensors, .npz, .npy].contains(reader.format) else { return [] }
        let aliases = model.stateDictionaryAliases.map { RenameRule(pattern: $0.pattern, replacement: $0.replacement) }
        let names = try reader.tensors.map { info in
            var name = info.name
            for rule in rules { name = try rule.apply(name) }
            name = normalizedStateDictionaryName(name)
            for alias in aliases { name = try alias.apply(name) }
            return name
        }
        let absent = model.optionalParts.filter { part in !names.contains { $0.hasPrefix(part + ".") } }
        absent.forEach(model.removeOptionalPart)
        return absent
    }

    /// The map for PyTorch-style names.
    static func stateDictionaryMapping(_ reader: any WeightReader, model: ImageModel, rules: [RenameRule],
                                       report: inout LoadReport) throws -> [WeightAssignment] {
        let targets = Set(model.namedParameters().map(\.name))
        let stateDictionaryKey = reader.metadata.extra["state_dict_key"]
        var assignments: [WeightAssignment] = []
        var taken: [String: String] = [:]
        let aliases = model.stateDictionaryAliases.map { RenameRule(pattern: $0.pattern, replacement: $0.replacement) }
        for info in reader.tensors {
            var name = info.name
            for rule in rules { name = try rule.apply(name) }
            name = normalizedStateDictionaryName(name)
            for alias in aliases { name = try alias.apply(name) }
            if name.hasSuffix("num_batches_tracked") {
                report.ignored.append(info.name)
                continue
            }
            guard targets.contains(name) else {
                // Tensors outside the state dict of a checkpoint (optimizer state, ...) are not weights.
                if stateDictionaryKey != nil, !targets.contains(where: { $0.hasPrefix(name.split(separator: ".").first.map { $0 + "." } ?? name) }) {
                    report.ignored.append(info.name)
                } else {
                    report.unexpected.append((info.name, info.shape))
                }
                continue
            }
            if let earlier = taken[name] {
                throw ModelError.duplicateTarget(file: reader.url.path, tensors: [earlier, info.name], target: name)
            }
            taken[name] = info.name
            assignments.append(WeightAssignment(source: info.name, target: name, transform: .identity))
        }
        return assignments
    }

    /// A state-dict key with DataParallel's `module.` prefix dropped and torchvision's old
    /// DenseNet spelling (`denselayer1.norm.1.weight`) modernized.
    static func normalizedStateDictionaryName(_ name: String) -> String {
        var result = name
        while result.hasPrefix("module.") { result.removeFirst("module.".count) }
        result = oldDenseNetKey.stringByReplacingMatches(in: result, range: NSRange(result.startIndex..., in: result), withTemplate: "$1$2")
        return result
    }

    private static let oldDenseNetKey = try! NSRegularExpression(
        pattern: #"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"#)
}
