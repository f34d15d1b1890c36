import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure zoo's speed.",
            subcommands: [Operations.self])
    }
}

extension ZooCommand.Bench {
    struct Operations: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ops",
            abstract: "GFLOP/s of convolution forward, backward-data and backward-weights: zoo's operations vs bare oneDNN primitives.")

        @OptionGroup var engine: EngineOptions
        @Option(help: "Timed rounds per case and pass (the median is reported).") var rounds = 7
        @Flag(help: "Print a JSON array instead of a table.") var json = false

        func run() throws {
            engine.apply()
            let monitor = CPUMonitor()
            let results = try OperationBenchmark.run(rounds: rounds)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
            } else {
                print("zoo bench ops: batch 32, \(Threads.count) threads, oneDNN \(Engine.oneDNNVersion), median of \(rounds) rounds")
                print("case                 pass              zoo GFLOP/s  oneDNN GFLOP/s  ratio")
                for r in results {
                    let label = r.caseName.padding(toLength: 20, withPad: " ", startingAt: 0) + " "
                        + r.pass.rawValue.padding(toLength: 17, withPad: " ", startingAt: 0)
                    print(label + String(format: " %11.1f  %14.1f  %5.2f", r.zooGFlops, r.oneDNNGFlops, r.ratio))
                }
            }
            if let warning = monitor.contentionWarning() {
                FileHandle.standardError.write(Data((warning + "\n").utf8))
            }
        }

    }
}
