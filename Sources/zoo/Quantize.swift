import ArgumentParser
import Foundation
import ZooKit

/// `--method`'s values.
enum CalibrationChoice: String, ExpressibleByArgument, CaseIterable {
    case minmax, percentile
}

extension ZooCommand {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Calibrate a checkpoint for int8 inference: one file, the checkpoint with its activation steps, that evaluate, predict, extract and bench run with --precision int8.",
            discussion: """
                zoo quantize runs/d201/checkpoints/best.safetensors --calibrate cifar10:~/cifar-10-batches-bin --images 512 --out d201-int8.safetensors
                zoo evaluate d201-int8.safetensors --data cifar10:~/cifar-10-batches-bin --precision int8

                Calibration runs the model in f32 on --images images of the data's training split (never the test split, \
                which evaluation uses) and records what each convolution reads and writes. Each convolution then runs in \
                int8: its weight quantized per output channel (after folding its batch norm), its input and output per \
                tensor, uint8 after a ReLU, int8 otherwise; ReLU, the residual sum and the batch norm are fused into it. \
                The convolution that reads the image, the classifier and layers without int8 kernels (batch norms that \
                stand alone, concatenations of mixed types) stay bf16 where the CPU has it, else f32. The output file is \
                an ordinary checkpoint (it also runs in f32 and bf16) with the calibration in its metadata.
                """)

        @Argument(help: "A zoo checkpoint (from zoo finetune, or a weight set zoo ships, such as cifar-resnet20.zoo_cifar10).")
        var checkpoint: String
        @Option(name: .customLong("calibrate"), help: "Calibration data, as zoo finetune's --data takes it (its training split is used); repeat to join sources.")
        var sources: [String] = []
        @Option(help: "Images to calibrate on.") var images = 512
        @Option(help: "minmax (the extremes seen) or percentile (clip to the --percentile of magnitudes).") var method: CalibrationChoice = .percentile
        @Option(help: "The percentile for --method percentile.") var percentile = 99.99
        @Option(help: "The file to write (.safetensors).") var out: String
        @Option(help: "Batch size.") var batch = 32
        @Flag(help: "Leave out images that cannot be read instead of stopping.") var skipDamaged = false
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            if sources.isEmpty { throw ValidationError("--calibrate needs data, as zoo finetune's --data takes it") }
            if images < 1 { throw ValidationError("--images must be at least 1, got \(images)") }
            if !(percentile > 50 && percentile <= 100) { throw ValidationError("--percentile must be in (50, 100], got \(percentile)") }
        }

        func run() throws {
            engine.apply()
            do {
                let loaded = try LoadedWeights.load(checkpoint)
                guard let info = loaded.checkpoint else { throw TrainingError.notACheckpoint(file: loaded.file) }
                let classifier = try Classifier(loaded)
                let int8 = Precision.int8.resolved()
                if let note = int8.note { FileHandle.standardError.write(Data("zoo: precision: \(note)\n".utf8)) }
                let report = try classifier.calibrate(on: try DataSource(sources).training, images: images,
                                                      method: method == .minmax ? .minMax : .percentile(percentile), batchSize: batch,
                                                      floatType: int8.activationType, skipDamaged: skipDamaged)
                let url = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
                try Checkpoint.save(classifier.model, info: info, quantization: report.plan, to: url)
                print("calibrated on \(report.images) images (\(report.plan.method)):")
                for layer in report.layers {
                    let line: String
                    if let quantization = layer.quantization {
                        line = "int8  in \(Self.describe(quantization.input))  out \(quantization.output.map(Self.describe) ?? "float")"
                    } else {
                        line = "float (\(layer.keptFloatBecause ?? "not calibrated"))"
                    }
                    print("  " + layer.path.padding(toLength: max(28, layer.path.count + 1), withPad: " ", startingAt: 0) + line)
                }
                print(String(format: "%d of %d convolutions in int8; on the calibration images int8 and %@ agree on the top class for %.1f%%, mean logit error %.2f%% of the largest logit",
                             report.plan.layers.count, report.layers.count, int8.activationType.description, 100 * report.topOneAgreement,
                             100 * report.meanLogitError))
                print("wrote \(url.path)")
            } catch {
                throw fail("quantize", error)
            }
        }

        static func describe(_ quantization: ActivationQuantization) -> String {
            let range = quantization.step * (quantization.type == .uint8 ? 255 : 127)
            return "\(quantization.type) step \(String(format: "%.3g", quantization.step)) (\(quantization.type == .uint8 ? "0" : String(format: "-%.3g", range))..\(String(format: "%.3g", range)))"
        }
    }
}
