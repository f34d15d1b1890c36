// Experiment 5 of EXPERIMENTS.md, through zoo's library alone: a small VGG-style CNN defined
// here, trained from scratch on CIFAR-10 with a training loop of its own, in variants that
// change one thing at a time against a baseline:
//   preprocessing: the training set's mean pixel (per channel) or its mean image (per pixel
//     position and channel) subtracted, both divided by the pixels' standard deviation;
//   augmentation: none, flips, flips and 4-pixel pad-and-crop;
//   normalization: batch norm after each convolution, none, or SELU without batch norm
//     (LeCun-normal weights, the self-normalizing network's recipe).
//
//   swift run -c release --package-path Examples/LibraryClient FromScratch \
//       --data ~/data/cifar10 --per-class 2000 --epochs 12 [--variants baseline,selu] [--json]
//
// Without --data it trains on zoo's embedded 15-class sample (a few seconds: a smoke test).
import Foundation
import ZooKit

enum Centering: String { case meanPixel = "mean pixel", meanImage = "mean image" }
enum Normalization: String { case batchNorm = "batch norm", plain = "none", selu = "SELU" }

struct Variant {
    var name: String
    var centering = Centering.meanPixel
    var augmentation = "flip,padcrop=4"
    var normalization = Normalization.batchNorm
}

let variants: [Variant] = [
    Variant(name: "baseline"),
    Variant(name: "mean-image", centering: .meanImage),
    Variant(name: "no-augmentation", augmentation: "none"),
    Variant(name: "flip-only", augmentation: "flip"),
    Variant(name: "no-batchnorm", normalization: .plain),
    Variant(name: "selu", normalization: .selu),
]

/// conv-conv-pool three times (32, 64, 128 channels), global average pooling, a classifier.
func network(_ normalization: Normalization, classes: Int) -> Sequential {
    var layers: [any Layer] = []
    var channels = 3
    for (stage, width) in [32, 64, 128].enumerated() {
        for _ in 0..<2 {
            switch normalization {
            case .batchNorm:
                layers += [Conv2D(channels, width, kernel: 3, padding: .symmetric(1), bias: false), BatchNorm(width), ActivationLayer(.relu)]
            case .plain:
                layers += [Conv2D(channels, width, kernel: 3, padding: .symmetric(1)), ActivationLayer(.relu)]
            case .selu:
                layers += [Conv2D(channels, width, kernel: 3, padding: .symmetric(1), initializer: .lecunNormal), ActivationLayer(.selu)]
            }
            channels = width
        }
        if stage < 2 { layers.append(Pool2D(.max, Pool2DOptions(kernel: 2))) }
    }
    layers += [GlobalPool2D(.average), Dense(channels, classes, initializer: normalization == .selu ? .lecunNormal : .glorotUniform)]
    return Sequential(layers)
}

/// The training images' mean image (32x32x3, interleaved as the loader's images) and the
/// standard deviation of all their values.
func statistics(_ dataset: any Dataset) throws -> (meanImage: [Float], deviation: Float) {
    var sums = [Double](repeating: 0, count: 32 * 32 * 3), squares = 0.0
    for index in 0..<dataset.count {
        let values = try dataset.image(at: index).floatImage.values
        guard values.count == sums.count else { throw DataError(dataset.sampleID(at: index), "expected a 32x32 RGB image") }
        for position in values.indices {
            sums[position] += Double(values[position])
            squares += Double(values[position] * values[position])
        }
    }
    let count = Double(dataset.count)
    let mean = sums.map { $0 / count }
    let overall = mean.reduce(0, +) / Double(mean.count)
    let variance = squares / (count * Double(mean.count)) - overall * overall
    return (mean.map(Float.init), Float(variance.squareRoot()))
}

/// Subtracts `center` (a mean image, or a mean pixel repeated over it) and divides by
/// `deviation`, before the augmentation: padding then fills with the mean.
func transform(center: [Float], deviation: Float, augmentation: String) throws -> DataLoader.SampleTransform {
    let augment = try AugmentationSpecification(parsing: augmentation).sampleTransform(size: 32, resize: .bilinear(.torchvision))
    return { image, generator in
        var centered = image
        for position in centered.values.indices { centered.values[position] = (centered.values[position] - center[position]) / deviation }
        return try augment(centered, &generator)
    }
}

func evaluate(_ model: Sequential, _ dataset: any Dataset, center: [Float], deviation: Float, classes: Int) throws -> ClassificationMetrics {
    var options = DataLoader.Options(size: 32, batchSize: 200)
    options.shuffle = false
    options.transform = try transform(center: center, deviation: deviation, augmentation: "none")
    let loader = try DataLoader(dataset, options: options)
    var metrics = ClassificationMetrics(classes: classes)
    let batches = loader.epoch(0)
    while let batch = try batches.next() {
        let logits = try model(batch.images, .inference())
        let loss = try softmaxCrossEntropy(logits: logits, labels: batch.labels)
        metrics.add(scores: try logits.array(), labels: batch.labels, meanLoss: try loss.scalar())
    }
    return metrics
}

// Arguments.
let arguments = Array(CommandLine.arguments.dropFirst())
@MainActor func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}
let dataPath = option("--data")
let perClass = option("--per-class").flatMap(Int.init)
let epochs = option("--epochs").flatMap(Int.init) ?? (dataPath == nil ? 2 : 12)
let chosen = option("--variants")?.split(separator: ",").map(String.init) ?? variants.map(\.name)
let printJSON = arguments.contains("--json")
for name in chosen where !variants.contains(where: { $0.name == name }) {
    FileHandle.standardError.write(Data("FromScratch: unknown variant '\(name)'; known: \(variants.map(\.name).joined(separator: ", "))\n".utf8))
    exit(2)
}

let source = try DataSource([dataPath ?? TransferDemo.embeddedSample().path])
let training: any Dataset = perClass.map { source.training.limitPerClass($0) } ?? source.training
guard let test = source.test else { fatalError("the data needs a test/ split") }
let classes = training.classNames.count
let (meanImage, deviation) = try statistics(training)
var meanPixel = [Float](repeating: 0, count: meanImage.count)
for channel in 0..<3 {
    let mean = stride(from: channel, to: meanImage.count, by: 3).map { meanImage[$0] }.reduce(0, +) / Float(32 * 32)
    for position in stride(from: channel, to: meanImage.count, by: 3) { meanPixel[position] = mean }
}
print("FromScratch: \(training.count) training and \(test.count) test images in \(classes) classes, \(epochs) epochs, "
    + "pixel deviation \(String(format: "%.1f", deviation)), \(Threads.count) threads")

var rows: [[String: Any]] = []
for variant in variants where chosen.contains(variant.name) {
    Initialization.seed(1)
    let model = network(variant.normalization, classes: classes)
    let center = variant.centering == .meanImage ? meanImage : meanPixel
    var options = DataLoader.Options(size: 32, batchSize: 128)
    options.seed = 1
    options.workers = 1
    options.transform = try transform(center: center, deviation: deviation, augmentation: variant.augmentation)
    let loader = try DataLoader(training, options: options)
    // SGD with Nesterov momentum, one-cycle to 0.05 (a rate every variant trains at; the plain
    // network diverges at 0.1), weight decay 5e-4.
    let schedule = LearningRateSchedule.oneCycle(peakFraction: 0.3, startDivisor: 25, endDivisor: 1e4)
    let optimizer = GradientDescent(.sgd(momentum: 0.9, nesterov: true), learningRate: 0.05, weightDecay: .l2(5e-4))
    let started = Date()
    var finalLoss: Float = 0
    for epoch in 0..<epochs {
        let batches = loader.epoch(epoch)
        var step = 0, lossSum: Float = 0
        while let batch = try batches.next() {
            optimizer.learningRate = schedule.rate(base: 0.05, epoch: Double(epoch) + Double(step) / Double(loader.batchesPerEpoch), totalEpochs: epochs)
            let tape = GradientTape()
            let logits = try model(batch.images, ForwardContext(training: true, tape: tape, seed: UInt64(epoch * 100_000 + step)))
            let loss = try softmaxCrossEntropy(logits: logits, labels: batch.labels)
            try tape.backward(loss)
            try optimizer.step(model.namedParameters())
            lossSum += try loss.scalar()
            step += 1
        }
        finalLoss = lossSum / Float(max(step, 1))
        guard finalLoss.isFinite else { print("\(variant.name): the loss diverged in epoch \(epoch + 1)"); break }
    }
    let seconds = Date().timeIntervalSince(started)
    let metrics = try evaluate(model, test, center: center, deviation: deviation, classes: classes)
    let columns = [(variant.name, 16), (variant.centering.rawValue, 11), (variant.augmentation, 15), (variant.normalization.rawValue, 11)]
    print(columns.map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined()
        + String(format: "train loss %.3f  test accuracy %.2f%%  macro F1 %.3f  %.0f s", finalLoss, 100 * metrics.accuracy, metrics.macroF1, seconds))
    rows.append(["variant": variant.name, "centering": variant.centering.rawValue, "augmentation": variant.augmentation,
                 "normalization": variant.normalization.rawValue, "train_loss": Double(finalLoss), "accuracy": Double(metrics.accuracy),
                 "f1": Double(metrics.macroF1), "per_class": metrics.perClassAccuracy.map(Double.init), "seconds": seconds.rounded()])
}
if printJSON {
    print(String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
}
