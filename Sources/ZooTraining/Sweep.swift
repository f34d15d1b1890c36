import Foundation
import ZooTensor
import ZooWeights
import ZooPlots

/// A value a search gives a hyperparameter: a number, a text (an optimizer's name, `20%`) or a
/// switch. In JSON it is the plain value (`0.01`, `"adam"`, `true`).
public enum SweepValue: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    case number(Double)
    case text(String)
    case flag(Bool)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let flag = try? container.decode(Bool.self) {
            self = .flag(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else {
            self = .text(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case let .number(value): try container.encode(value)
        case let .text(value): try container.encode(value)
        case let .flag(value): try container.encode(value)
        }
    }

    /// As a command line takes it: whole numbers without a fraction (`64`), others in Swift's
    /// shortest form (`0.0123`).
    public var description: String {
        switch self {
        case let .number(value):
            return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
        case let .text(value): return value
        case let .flag(value): return value ? "true" : "false"
        }
    }

    /// The number, for plots; nil for texts and switches.
    public var number: Double? {
        if case let .number(value) = self { return value }
        return nil
    }
}

/// Where a search draws a hyperparameter from, as Keras Tuner's `Choice`, `Float` (linear or
/// log sampling) and `Int`. In JSON: `{"choice": [32, 64]}`, `{"uniform": [0, 0.5]}`,
/// `{"log_uniform": [1e-4, 1e-1]}`, `{"int": [1, 4]}` (both ends included).
public enum SweepDistribution: Codable, Sendable, Equatable {
    case choice([SweepValue])
    case uniform(low: Double, high: Double)
    /// Uniform in the logarithm: as likely between 1e-4 and 1e-3 as between 1e-2 and 1e-1.
    case logUniform(low: Double, high: Double)
    case integer(low: Int, high: Int)

    enum CodingKeys: String, CodingKey {
        case choice, uniform, int
        case logUniform = "log_uniform"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard container.allKeys.count == 1, let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "give one of choice, uniform, log_uniform or int, as {\"log_uniform\": [1e-4, 0.1]}"))
        }
        func bounds() throws -> (Double, Double) {
            let values = try container.decode([Double].self, forKey: key)
            guard values.count == 2, values[0] <= values[1], values.allSatisfy(\.isFinite) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "give [low, high] with low <= high")
            }
            return (values[0], values[1])
        }
        switch key {
        case .choice:
            let values = try container.decode([SweepValue].self, forKey: key)
            guard !values.isEmpty else { throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "give at least one value") }
            self = .choice(values)
        case .uniform:
            let (low, high) = try bounds()
            self = .uniform(low: low, high: high)
        case .logUniform:
            let (low, high) = try bounds()
            guard low > 0 else { throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "log_uniform needs low > 0") }
            self = .logUniform(low: low, high: high)
        case .int:
            let (low, high) = try bounds()
            guard low == low.rounded(), high == high.rounded() else {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "int takes whole numbers")
            }
            self = .integer(low: Int(low), high: Int(high))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case let .choice(values): try container.encode(values, forKey: .choice)
        case let .uniform(low, high): try container.encode([low, high], forKey: .uniform)
        case let .logUniform(low, high): try container.encode([low, high], forKey: .logUniform)
        case let .integer(low, high): try container.encode([low, high], forKey: .int)
        }
    }

    /// A draw. Continuous values are rounded to four significant digits, so the value a trial
    /// ran with is the one its table row shows.
    func sample(_ generator: inout SeededGenerator) -> SweepValue {
        let unit = Double(generator.next() >> 11) * 0x1p-53
        func rounded(_ value: Double) -> Double {
            guard value != 0 else { return 0 }
            let scale = pow(10, 3 - floor(log10(abs(value))))
            return (value * scale).rounded() / scale
        }
        switch self {
        case let .choice(values): return values[min(Int(unit * Double(values.count)), values.count - 1)]
        case let .uniform(low, high): return .number(rounded(low + (high - low) * unit))
        case let .logUniform(low, high): return .number(rounded(exp(log(low) + (log(high) - log(low)) * unit)))
        case let .integer(low, high): return .number(Double(low + min(Int(unit * Double(high - low + 1)), high - low)))
        }
    }
}

/// What a search maximizes (or, for a loss, minimizes).
public enum SweepObjective: String, Codable, Sendable, CaseIterable {
    /// The best validation accuracy of a trial's epochs (Keras Tuner's `val_accuracy`).
    case validationAccuracy = "val_accuracy"
    /// The lowest validation loss of a trial's epochs.
    case validationLoss = "val_loss"
    /// Test accuracy at the end of the run. Choosing by the test split tunes to it; prefer a
    /// validation objective and read the test figures of the best trial.
    case testAccuracy = "test_accuracy"
    /// Macro F1 on the test split at the end of the run.
    case testF1 = "test_f1"

    var minimizes: Bool { self == .validationLoss }
    var needsValidation: Bool { self == .validationAccuracy || self == .validationLoss }
}

/// A search space as `SPACE.json` holds it: the hyperparameters and their distributions, the
/// objective, and for the `zoo` command the `zoo finetune` arguments every trial shares.
public struct SweepSpace: Codable, Sendable, Equatable {
    /// Distributions by parameter name. `zoo sweep` passes each as `--NAME VALUE` to `zoo
    /// finetune`, unless ``arguments`` use it as `{NAME}`.
    public var parameters: [String: SweepDistribution]
    public var objective = SweepObjective.validationAccuracy
    /// `zoo finetune` arguments for every trial (`zoo sweep`; library callers build settings
    /// themselves and can leave this empty). `{NAME}` in them becomes the parameter's value.
    public var arguments: [String] = []

    public init(parameters: [String: SweepDistribution], objective: SweepObjective = .validationAccuracy, arguments: [String] = []) {
        self.parameters = parameters
        self.objective = objective
        self.arguments = arguments
    }

    enum CodingKeys: String, CodingKey { case parameters, objective, arguments }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        parameters = try container.decode([String: SweepDistribution].self, forKey: .parameters)
        objective = try container.decodeIfPresent(SweepObjective.self, forKey: .objective) ?? .validationAccuracy
        arguments = try container.decodeIfPresent([String].self, forKey: .arguments) ?? []
    }

    /// Reads a `SPACE.json`; errors name the file and the place in it.
    public static func read(_ url: URL) throws -> SweepSpace {
        guard let data = try? Data(contentsOf: url) else { throw TrainingError.invalidSweep(path: url, reason: "cannot be read") }
        do {
            let space = try JSONDecoder().decode(SweepSpace.self, from: data)
            guard !space.parameters.isEmpty else { throw TrainingError.invalidSweep(path: url, reason: "has no parameters to search") }
            return space
        } catch let error as DecodingError {
            throw TrainingError.invalidSweep(path: url, reason: "does not read as a search space: \(Sweep.describe(error))")
        }
    }
}

/// One trial of a search: its number (from 1), the values drawn for it, and its run folder.
public struct SweepTrial: Sendable {
    public var number: Int
    public var values: [String: SweepValue]
    public var folder: URL
}

/// What a finished trial gave, as `trial.json` in its folder and a row of the results.
public struct SweepTrialResult: Codable, Sendable, Equatable {
    public var trial: Int
    public var values: [String: SweepValue]
    /// The objective's value; nil when the run did not give it (NaN losses count as nil).
    public var objective: Double?
    public var bestValidationAccuracy: Double?
    public var bestValidationLoss: Double?
    public var testAccuracy: Double?
    public var testF1: Double?
    public var epochs: Int
    /// Training time, the sum of the epochs' seconds (evaluation left out).
    public var seconds: Double
    /// The most tensor memory live at once during the trial; nil for a trial finished by an
    /// earlier process (a resumed trial reports the part this process ran).
    public var peakTensorMB: Double?

    enum CodingKeys: String, CodingKey {
        case trial, values, objective, epochs, seconds
        case bestValidationAccuracy = "best_val_accuracy"
        case bestValidationLoss = "best_val_loss"
        case testAccuracy = "test_accuracy"
        case testF1 = "test_f1"
        case peakTensorMB = "peak_tensor_mb"
    }
}

/// Random search over fine-tuning settings, as Keras Tuner's `RandomSearch`: each trial draws its
/// values from the space, runs as an ordinary run folder (`trial-001/`, ... inside the sweep's
/// folder) and is scored by the objective. Random trials cover a space better than a grid when
/// few parameters matter (Bergstra and Bengio, 2012).
///
/// The sweep folder holds `sweep.json` (the space, the trial count and the seed), the trials'
/// folders, and after each trial `results.csv`, `results.md`, `results.json` (the best trial
/// named) and `plots/` (the objective per trial and per parameter). Trial `n`'s values depend only
/// on the seed and `n`, so a sweep killed at any point continues with ``init(resuming:)``:
/// finished trials are read back, the interrupted one resumes from its last checkpoint, and a
/// resumed sweep may be given more trials.
public final class Sweep {
    public let space: SweepSpace
    public private(set) var trials: Int
    public let seed: UInt64
    public let folder: URL

    struct Record: Codable {
        var space: SweepSpace
        var trials: Int
        var seed: UInt64
    }

    /// Starts a sweep in `folder`, which must not hold one.
    public init(space: SweepSpace, trials: Int, seed: UInt64 = 0, folder: URL) throws {
        guard trials > 0 else { throw TrainingError.invalidSweep(path: folder, reason: "needs at least one trial") }
        guard !space.parameters.isEmpty else { throw TrainingError.invalidSweep(path: folder, reason: "has no parameters to search") }
        let file = folder.appendingPathComponent("sweep.json")
        if FileManager.default.fileExists(atPath: file.path) { throw TrainingError.sweepExists(folder: folder) }
        (self.space, self.trials, self.seed, self.folder) = (space, trials, seed, folder)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try save()
    }

    /// Continues the sweep in `folder`; with `trials`, runs that many in all (more than it had
    /// is fine: later trials' values do not depend on the count).
    public init(resuming folder: URL, trials: Int? = nil) throws {
        let file = folder.appendingPathComponent("sweep.json")
        guard let data = try? Data(contentsOf: file), let record = try? JSONDecoder().decode(Record.self, from: data) else {
            throw TrainingError.invalidSweep(path: folder, reason: "holds no sweep to resume (no readable sweep.json)")
        }
        (space, seed, self.folder) = (record.space, record.seed, folder)
        self.trials = trials ?? record.trials
        guard self.trials > 0 else { throw TrainingError.invalidSweep(path: folder, reason: "needs at least one trial") }
        if self.trials != record.trials { try save() }
    }

    private func save() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(Record(space: space, trials: trials, seed: seed)), to: folder.appendingPathComponent("sweep.json"))
    }

    /// The parameters in the order they are drawn and tabulated.
    public var parameterNames: [String] { space.parameters.keys.sorted() }

    /// Trial `number`'s values (numbers count from 1): drawn from a generator of the seed and
    /// the number alone.
    public func trial(_ number: Int) -> SweepTrial {
        var generator = SeededGenerator(seed: seed ^ (UInt64(number) &* 0x9E37_79B9_7F4A_7C15))
        var values: [String: SweepValue] = [:]
        for name in parameterNames { values[name] = space.parameters[name]!.sample(&generator) }
        return SweepTrial(number: number, values: values, folder: folder.appendingPathComponent(String(format: "trial-%03d", number)))
    }

    /// Runs the trials not yet finished, each with the settings `settings` makes of it (which
    /// must leave part of the training data for validation when the objective is a validation
    /// one), and writes the results after each. Returns every trial's result, the best first
    /// named in `results.md`.
    @discardableResult
    public func run(observer: TrainingObserver? = nil, settings: (SweepTrial) throws -> FineTuneSettings) throws -> [SweepTrialResult] {
        var results: [SweepTrialResult] = []
        // Whether results read back since the last write are not yet in the files.
        var unwritten = false
        for number in 1...trials {
            let trial = trial(number)
            let record = trial.folder.appendingPathComponent("trial.json")
            if let data = try? Data(contentsOf: record), let result = try? JSONDecoder().decode(SweepTrialResult.self, from: data) {
                results.append(result)
                unwritten = true
                continue
            }
            observer?.note("trial \(number) of \(trials): " + parameterNames.map { "\($0)=\(trial.values[$0]!)" }.joined(separator: " "))
            Memory.resetPeak()
            let fileManager = FileManager.default
            let finished = fileManager.fileExists(atPath: trial.folder.appendingPathComponent("metrics.json").path)
            if !finished, fileManager.fileExists(atPath: trial.folder.appendingPathComponent("config.json").path) {
                do {
                    try FineTuneJob.resume(trial.folder, observer: observer)
                } catch TrainingError.noCheckpointYet {
                    // Killed in its first epoch: nothing was saved, so it starts again.
                    try fileManager.removeItem(at: trial.folder)
                    try start(trial, settings: settings, observer: observer)
                }
            } else if !finished {
                try start(trial, settings: settings, observer: observer)
            }
            var result = try Self.result(of: trial, objective: space.objective)
            if !finished { result.peakTensorMB = Double(Memory.stats.peakLiveBytes) / 1_048_576 }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicFile.write(try encoder.encode(result), to: record)
            results.append(result)
            try writeResults(results)
            unwritten = false
        }
        if unwritten { try writeResults(results) }
        if let best = Self.best(results, objective: space.objective) {
            observer?.note("best: trial \(best.trial) (\(trial(best.trial).folder.path)), \(space.objective.rawValue) \(best.objective.map { String(format: "%.4f", $0) } ?? "-")")
        }
        return results
    }

    private func start(_ trial: SweepTrial, settings: (SweepTrial) throws -> FineTuneSettings, observer: TrainingObserver?) throws {
        let made = try settings(trial)
        if space.objective.needsValidation, made.data.validationFraction <= 0, made.features == nil {
            throw TrainingError.invalidSweep(path: folder, reason: "its objective \(space.objective.rawValue) needs validation data, but the trials hold none out (give a validation share)")
        }
        try FineTuneJob.start(made, folder: trial.folder, observer: observer)
    }

    /// A finished trial's result, from its run folder's `history.json` and `metrics.json`.
    static func result(of trial: SweepTrial, objective: SweepObjective) throws -> SweepTrialResult {
        guard let data = try? Data(contentsOf: trial.folder.appendingPathComponent("history.json")),
              let history = try? JSONDecoder().decode(TrainingHistory.self, from: data) else {
            throw TrainingError.invalidSweep(path: trial.folder, reason: "the trial's run folder has no readable history.json")
        }
        let metrics = (try? Data(contentsOf: trial.folder.appendingPathComponent("metrics.json")))
            .flatMap { try? JSONDecoder().decode(MetricsSummary.self, from: $0) }
        func finite(_ value: Float?) -> Double? { value.flatMap { $0.isFinite ? Double($0) : nil } }
        let accuracy = history.epochs.compactMap { finite($0.validationAccuracy) }.max()
        let loss = history.epochs.compactMap { finite($0.validationLoss) }.min()
        var result = SweepTrialResult(trial: trial.number, values: trial.values, objective: nil, bestValidationAccuracy: accuracy,
                                      bestValidationLoss: loss, testAccuracy: finite(metrics?.accuracy), testF1: finite(metrics?.f1),
                                      epochs: history.epochs.count, seconds: history.epochs.reduce(0) { $0 + $1.seconds }, peakTensorMB: nil)
        switch objective {
        case .validationAccuracy: result.objective = accuracy
        case .validationLoss: result.objective = loss
        case .testAccuracy: result.objective = result.testAccuracy
        case .testF1: result.objective = result.testF1
        }
        return result
    }

    /// The trial with the best objective (ties: the earlier trial).
    public static func best(_ results: [SweepTrialResult], objective: SweepObjective) -> SweepTrialResult? {
        results.filter { $0.objective != nil }.min { a, b in
            objective.minimizes ? a.objective! < b.objective! : a.objective! > b.objective!
        }
    }

    /// `results.csv`, `results.md`, `results.json` and the plots, for the trials so far.
    func writeResults(_ results: [SweepTrialResult]) throws {
        let names = parameterNames
        let objective = space.objective
        let best = Self.best(results, objective: objective)
        func number(_ value: Double?, _ format: String = "%.4f") -> String { value.map { String(format: format, $0) } ?? "" }
        func csvField(_ text: String) -> String {
            text.contains(where: { ",\"\n".contains($0) }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let header = ["trial"] + names + ["objective", "best_val_accuracy", "best_val_loss", "test_accuracy", "test_f1", "epochs", "seconds", "peak_tensor_mb", "folder"]
        var csv = [header.map(csvField).joined(separator: ",")]
        var markdown = [
            "# Sweep", "",
            "Random search, \(results.count) of \(trials) trials, seed \(seed); objective `\(objective.rawValue)` (\(objective.minimizes ? "lowest" : "highest") is best).", "",
        ]
        if let best {
            markdown += ["**Best: trial \(best.trial)** (`\(trial(best.trial).folder.lastPathComponent)`), \(objective.rawValue) \(number(best.objective)): "
                + names.map { "\($0) = \(best.values[$0].map(String.init(describing:)) ?? "-")" }.joined(separator: ", ") + ".", ""]
        }
        markdown += ["| trial | " + names.joined(separator: " | ") + " | \(objective.rawValue) | val acc | val loss | test acc | test F1 | epochs | seconds | tensors (MB) |",
                     "|---:|" + names.map { _ in "---|" }.joined() + "---:|---:|---:|---:|---:|---:|---:|---:|"]
        for result in results {
            let values = names.map { result.values[$0].map(String.init(describing:)) ?? "" }
            csv.append(([String(result.trial)] + values + [number(result.objective, "%.6g"), number(result.bestValidationAccuracy, "%.6g"),
                                                            number(result.bestValidationLoss, "%.6g"), number(result.testAccuracy, "%.6g"),
                                                            number(result.testF1, "%.6g"), String(result.epochs), number(result.seconds, "%.1f"),
                                                            number(result.peakTensorMB, "%.1f"), trial(result.trial).folder.lastPathComponent]).map(csvField).joined(separator: ","))
            let mark = result.trial == best?.trial ? "**\(result.trial)**" : String(result.trial)
            markdown.append("| \(mark) | " + values.joined(separator: " | ") + " | \(number(result.objective)) | \(number(result.bestValidationAccuracy)) | "
                + "\(number(result.bestValidationLoss)) | \(number(result.testAccuracy)) | \(number(result.testF1)) | \(result.epochs) | "
                + "\(number(result.seconds, "%.0f")) | \(number(result.peakTensorMB, "%.0f")) |")
        }
        let plots = folder.appendingPathComponent("plots")
        try FileManager.default.createDirectory(at: plots, withIntermediateDirectories: true)
        markdown += ["", "![objective per trial](plots/objective.png)", ""]
        var bestSoFar: [(x: Double, y: Double)] = []
        for result in results {
            guard let value = result.objective else { continue }
            let previous = bestSoFar.last?.y ?? value
            bestSoFar.append((Double(result.trial), objective.minimizes ? min(previous, value) : max(previous, value)))
        }
        try LineChart(title: "Objective per trial", xLabel: "trial", yLabel: objective.rawValue,
                      series: [.init(name: "trial", points: results.compactMap { r in r.objective.map { (Double(r.trial), $0) } }),
                               .init(name: "best so far", points: bestSoFar, dashed: true)])
            .write(to: plots.appendingPathComponent("objective.png"))
        for name in names {
            let points: [(x: Double, y: Double)]
            let axis: ScatterChart.XAxis
            switch space.parameters[name]! {
            case let .choice(choices) where choices.contains(where: { $0.number == nil }):
                axis = .categories(choices.map(\.description))
                points = results.map { (Double(choices.firstIndex(of: $0.values[name] ?? .text("")) ?? -1), $0.objective ?? .nan) }
            case .logUniform:
                axis = .logarithmic
                points = results.map { ($0.values[name]?.number ?? .nan, $0.objective ?? .nan) }
            default:
                axis = .linear
                points = results.map { ($0.values[name]?.number ?? .nan, $0.objective ?? .nan) }
            }
            let file = "parameter-\(Self.fileName(name)).png"
            try ScatterChart(title: "\(objective.rawValue) against \(name)", xLabel: name, yLabel: objective.rawValue, points: points, xAxis: axis,
                             marked: best.flatMap { best in results.firstIndex { $0.trial == best.trial } })
                .write(to: plots.appendingPathComponent(file))
            markdown += ["![\(objective.rawValue) against \(name)](plots/\(file))", ""]
        }
        try AtomicFile.write(Data((csv.joined(separator: "\n") + "\n").utf8), to: folder.appendingPathComponent("results.csv"))
        try AtomicFile.write(Data(markdown.joined(separator: "\n").utf8), to: folder.appendingPathComponent("results.md"))
        struct Summary: Encodable {
            var objective: SweepObjective
            var best: Int?
            var bestFolder: String?
            var trials: [SweepTrialResult]
            enum CodingKeys: String, CodingKey {
                case objective, best, trials
                case bestFolder = "best_folder"
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let summary = Summary(objective: objective, best: best?.trial, bestFolder: best.map { trial($0.trial).folder.lastPathComponent }, trials: results)
        try AtomicFile.write(try encoder.encode(summary), to: folder.appendingPathComponent("results.json"))
    }

    /// A parameter's name as part of a file name.
    static func fileName(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }

    /// A decoding error as a place in the file and what was wrong.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return keys.isEmpty ? context.debugDescription : "\(keys): \(context.debugDescription)"
        }
        switch error {
        case let .dataCorrupted(context): return path(context)
        case let .keyNotFound(key, _): return "\"\(key.stringValue)\" is missing"
        case let .typeMismatch(_, context), let .valueNotFound(_, context): return path(context)
        @unknown default: return "\(error)"
        }
    }
}
