import ArgumentParser
import Foundation
import ZooKit

/// `--method`'s values.
enum CalibrationChoice: String, ExpressibleByArgument, CaseIterable {
    case minmax, percentile, entropy
}

extension ZooCommand {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Calibrate a classifier for int8 inference: one file, a checkpoint with its activation steps, that evaluate, predict, extract and bench run with --precision int8.",
            discussion: """
                zoo quantize runs/d201/checkpoints/best.safetensors --calibrate cifar10:~/cifar-10-batches-bin --images 512 --out d201-int8.safetensors
                zoo evaluate d201-int8.safetensors --data cifar10:~/cifar-10-batches-bin --precision int8
                zoo quantize resnet50 --weights resnet50-0676ba61.pth --calibrate ~/imagenet/val --out resnet50-int8.safetensors

                Calibration runs the model in f32 on --images images of the data's training split (never the test split, \
                which evaluation uses) and records what each convolution reads and writes. Each convolution then runs in \
                int8: its weight quantized per output channel (after folding its batch norm), its input and output per \
                tensor, uint8 after a ReLU, int8 otherwise; ReLU, the residual sum and the batch norm are fused into it. \
                The convolution that reads the image, the classifier and layers without int8 kernels (batch norms that \
                stand alone, concatenations of mixed types) stay bf16 where the CPU has it, else f32. The output file is \
                an ordinary checkpoint (it also runs in f32 and bf16) with the calibration in its metadata; a framework's \
                classifier (an architecture with --weights) is saved with that classifier.

                Each row gives the layer's own int8 error: how far its int8 output, computed from the f32 model's input to \
                it, lands from its f32 output (root-mean-square difference over root-mean-square output). --max-layer-error \
                keeps the layers above a bound in floating point; --keep-float names layers to keep.
                """)

        @Argument(help: "A zoo checkpoint (from zoo finetune, or a weight set zoo ships, such as cifar-resnet20.zoo_cifar10), or an architecture used with --weights.")
        var target: String
        @OptionGroup var weightFile: WeightFileOptions
        @Option(name: .customLong("calibrate"), help: "Calibration data, as zoo finetune's --data takes it (its training split is used); repeat to join sources.")
        var sources: [String] = []
        @Option(help: "Images to calibrate on.") var images = 512
        @Option(help: "minmax (the extremes seen), percentile (clip to the --percentile of magnitudes) or entropy (the clip losing the least information, TensorRT's entropy calibrator).")
        var method: CalibrationChoice = .percentile
        @Option(help: "The percentile for --method percentile.") var percentile = 99.99
        @Option(name: .customLong("keep-float"), help: "A convolution to keep in floating point, by its path in the rows printed (repeat for more).")
        var keepFloat: [String] = []
        @Option(help: "Keep in floating point each convolution whose own int8 error is above this many percent.")
        var maxLayerError: Double?
        @Option(help: "The file to write (.safetensors).") var out: String
        @Option(help: "Batch size.") var batch = 32
        @Flag(help: "Leave out images that cannot be read instead of stopping.") var skipDamaged = false
        @OptionGroup var engine: EngineOptions

        func validate() throws {
            if sources.isEmpty { throw ValidationError("--calibrate needs data, as zoo finetune's --data takes it") }
            if images < 1 { throw ValidationError("--images must be at least 1, got \(images)") }
            if !(percentile > 50 && percentile <= 100) { throw ValidationError("--percentile must be in (50, 100], got \(percentile)") }
            if let maxLayerError, !(maxLayerError > 0) { throw ValidationError("--max-layer-error must be above 0 (percent), got \(maxLayerError)") }
        }

        func run() throws {
            engine.apply()
            do {
                let loaded = try weightFile.load(target)
                let data = try DataSource(sources).training
                let classifier = try Classifier(loaded, classNames: loaded.classNames ?? data.classNames)
                let info = try loaded.checkpointInfo(classNames: classifier.classNames)
                let int8 = Precision.int8.resolved()
                if let note = int8.note { FileHandle.standardError.write(Data("zoo: precision: \(note)\n".utf8)) }
                let calibration: CalibrationMethod = switch method {
                case .minmax: .minMax
                case .percentile: .percentile(percentile)
                case .entropy: .entropy
                }
                let report = try classifier.calibrate(on: data, images: images, method: calibration, keepingFloat: Set(keepFloat),
                                                      maximumLayerError: maxLayerError.map { $0 / 100 }, batchSize: batch,
                                                      floatType: int8.activationType, skipDamaged: skipDamaged)
                let url = URL(fileURLWithPath: (out as NSString).expandingTildeInPath)
                try Checkpoint.save(classifier.model, info: info, quantization: report.plan, to: url)
                print("calibrated on \(report.images) images (\(report.plan.method)):")
                for layer in report.layers {
                    let error = layer.error.map { String(format: "error %5.2f%%", 100 * $0) } ?? "            "
                    let line: String
                    if let quantization = layer.quantization {
                        line = "int8   \(error)  in \(Self.describe(quantization.input))  out \(quantization.output.map(Self.describe) ?? "float")"
                    } else {
                        line = "float  \(error)  (\(layer.keptFloatBecause ?? "not calibrated"))"
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
