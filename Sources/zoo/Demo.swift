import ArgumentParser
import Foundation
import ZooKit

extension ZooCommand {
    struct Demo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a small CNN on generated images: a quick end-to-end check of the engine.")

        @OptionGroup var engine: EngineOptions
        @Option(help: "Epochs to train.") var epochs = 8
        @Option(help: "Random seed.") var seed: UInt64 = 1

        func run() throws {
            engine.apply()
            var options = SyntheticDemo.Options()
            options.epochs = epochs
            options.seed = seed
            print("zoo demo: a 2-block CNN on \(options.trainingImages) generated \(options.imageSize)x\(options.imageSize) images, "
                + "\(SyntheticDemo.classNames.count) classes (\(SyntheticDemo.classNames.joined(separator: ", "))), \(Threads.count) threads")
            let reports = try SyntheticDemo.run(options) { r in
                print(String(format: "epoch %2d/%d  %5.2fs  train loss %.4f acc %5.1f%%  val loss %.4f acc %5.1f%%", r.epoch, options.epochs,
                             r.seconds, r.trainingLoss, 100 * r.trainingAccuracy, r.validationLoss, 100 * r.validationAccuracy))
            }
            if let last = reports.last {
                print(String(format: "done: validation accuracy %.1f%% (chance %.1f%%)", 100 * last.validationAccuracy,
                             100.0 / Double(SyntheticDemo.classNames.count)))
            }
        }
    }
}
