import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct SweepCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sweep",
            abstract: "Random search over zoo finetune's options: each trial a run folder, the sweep resumable, a results table and plots.",
            discussion: """
                SPACE.json names the parameters and where to draw them from, the objective, and the \
                zoo finetune arguments every trial shares:

                  {"arguments": ["cifar-resnet20", "--weights", "cifar-resnet20.zoo_cifar10", "--data", "~/data/c15",
                                 "--size", "32", "--epochs", "5", "--head", "gap,dropout={dropout},dense"],
                   "parameters": {"lr": {"log_uniform": [1e-4, 0.1]}, "batch": {"choice": [32, 64, 128]},
                                  "optimizer": {"choice": ["sgd", "adam", "adamax", "rmsprop"]},
                                  "unfreeze": {"choice": ["none", "10%", "20%", "all"]}, "dropout": {"uniform": [0, 0.6]}},
                   "objective": "val_accuracy"}

                Distributions: choice, uniform, log_uniform, int (both ends included). A parameter \
                becomes --NAME VALUE (true/false choices: the flag or nothing), unless the arguments \
                use it as {NAME}. Objectives: val_accuracy (the default; the best epoch's), val_loss, \
                test_accuracy, test_f1. Trial N's values depend only on --seed and N, so \
                `zoo sweep --resume DIR` after a kill reads the finished trials, resumes the \
                interrupted one from its checkpoint, and with --trials runs more.
                """)

        @Argument(help: "The search space, a JSON file (see above).") var space: String?
        @Option(help: "Trials to run (with --resume: in all; more than before extends the sweep).") var trials: Int?
        @Option(help: "The sweep folder to create.") var out: String?
        @Option(help: "Continue the sweep in this folder.") var resume: String?
        @Option(help: "Seed of the trials' draws (each trial's own --seed comes from its arguments).") var seed: UInt64 = 0
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            if resume == nil {
                guard space != nil else { throw ValidationError("give the search space (SPACE.json), or --resume a sweep") }
                guard trials != nil else { throw ValidationError("give the number of trials with --trials") }
                guard out != nil else { throw ValidationError("give the sweep folder with --out") }
            } else if space != nil || out != nil {
                throw ValidationError("a resumed sweep keeps its space and folder: give --resume DIR, and --trials to run more")
            }
            if let trials, trials < 1 { throw ValidationError("--trials must be at least 1") }
        }

        func run() throws {
            engine.apply()
            let observer = ConsoleObserver()
            do {
                let sweep = try resume.map { try Sweep(resuming: URL(fileURLWithPath: $0), trials: trials) }
                    ?? Sweep(space: try SweepSpace.read(URL(fileURLWithPath: space!)), trials: trials!, seed: seed, folder: URL(fileURLWithPath: out!))
                try sweep.run(observer: observer) { trial in try Self.settings(for: trial, sweep: sweep) }
                observer.note("sweep folder: \(sweep.folder.path) (results.md, results.csv, results.json, plots/)")
            } catch {
                throw fail("sweep", error)
            }
        }

        /// The `zoo finetune` arguments of a trial: the space's, with `{NAME}` filled in, then
        /// `--NAME VALUE` for the parameters they do not use, then the trial's run folder.
        static func arguments(for trial: SweepTrial, shared: [String]) -> [String] {
            var used = Set<String>()
            var arguments = shared.map { argument in
                var text = argument
                for (name, value) in trial.values where text.contains("{\(name)}") {
                    text = text.replacingOccurrences(of: "{\(name)}", with: value.description)
                    used.insert(name)
                }
                return text
            }
            for name in trial.values.keys.sorted() where !used.contains(name) {
                switch trial.values[name]! {
                case .flag(true): arguments.append("--\(name)")
                case .flag(false): break
                case let value: arguments += ["--\(name)", value.description]
                }
            }
            return arguments + ["--out", trial.folder.path]
        }

        /// A trial's settings, parsed as `zoo finetune` parses its arguments.
        static func settings(for trial: SweepTrial, sweep: Sweep) throws -> FineTuneSettings {
            let arguments = arguments(for: trial, shared: sweep.space.arguments)
            do {
                let command = try Finetune.parse(arguments)
                command.engine.apply()
                return try command.settings()
            } catch let error as TrainingError {
                throw error
            } catch {
                throw TrainingError.invalidSweep(path: sweep.folder, reason: "trial \(trial.number): zoo finetune "
                    + arguments.joined(separator: " ") + ": " + Finetune.message(for: error))
            }
        }
    }
}
