// Fine-tunes MobileNetV2 on a tiny made-up task through zoo's public API: build the base,
// give it a new head, freeze the bottom 80% of its Keras layer list, and train a few steps.
import Foundation
import ZooKit

let classes = ["stripes", "squares"]
Initialization.seed(7)
let model = try Architecture.mobilenetv2.make(flavor: .torchvision, top: .features(pooling: nil))
model.head = try HeadSpecification(parsing: "gap,dropout=0.2,dense", classes: classes.count).head(inputFeatures: model.featureChannels)
let (trainable, frozen) = try FreezePlan.fraction(0.2).apply(to: model)
print("MobileNetV2: \(trainable) layers train, \(frozen) frozen, \(model.trainableParameters.count) trainable tensors")

// Sixteen 32x32 images: horizontal stripes (class 0) and centred squares (class 1).
var generator = SeededGenerator(seed: 1)
var pixels: [Float] = []
var labels: [Int] = []
for index in 0..<16 {
    let label = index % 2
    labels.append(label)
    for row in 0..<32 {
        for column in 0..<32 {
            let on = label == 0 ? row % 4 < 2 : (8..<24).contains(row) && (8..<24).contains(column)
            for _ in 0..<3 { pixels.append((on ? 1 : -1) + 0.2 * generator.nextNormal()) }
        }
    }
}
let images = try Tensor(nhwc: pixels, shape: [16, 32, 32, 3])

let optimizer = GradientDescent(.sgd(momentum: 0.9), learningRate: 0.05)
var losses: [Float] = []
for step in 0..<12 {
    let tape = GradientTape()
    let logits = try model(images, ForwardContext(training: true, tape: tape, seed: UInt64(step)))
    let loss = try softmaxCrossEntropy(logits: logits, labels: labels)
    try tape.backward(loss)
    try optimizer.step(model.namedParameters())
    losses.append(try loss.scalar())
}
print("loss: " + losses.map { String(format: "%.3f", $0) }.joined(separator: " "))
guard let first = losses.first, let last = losses.last, last < first * 0.8 else {
    fatalError("the loss did not fall: \(losses)")
}
print("ok: the loss fell from \(first) to \(last)")

// The same task through FineTuner, with values instead of flags: the base without a head (the
// tuner puts the settings' head on, so its checkpoints reload), a typed freeze plan, and no
// preprocessing setting (the tuner takes the architecture's own for its flavour and records it).
let pictures = (0..<16).map { index -> Image in
    var bytes = [UInt8](repeating: 0, count: 32 * 32 * 3)
    for position in 0..<(32 * 32 * 3) {
        bytes[position] = UInt8(min(max((pixels[index * 32 * 32 * 3 + position] + 1) * 127.5, 0), 255))
    }
    return Image(width: 32, height: 32, pixels: bytes)
}
let dataset = try ArrayDataset(images: pictures, labels: labels, classNames: classes)
var settings = FineTuneSettings(architecture: "mobilenetv2", flavor: .torchvision, imageSize: 32)
settings.classNames = classes
settings.head = try HeadSpecification.Template(parsing: "gap,dropout=0.2,dense")
settings.unfreeze = .fraction(0.2)
settings.epochs = 2
settings.batchSize = 8
settings.optimizer.learningRate = 0.05
settings.seed = 7
Initialization.seed(7)
let base = try Architecture.mobilenetv2.make(flavor: .torchvision, top: .features(pooling: nil))
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("library-client-\(ProcessInfo.processInfo.processIdentifier)")
let tuner = try FineTuner(settings: settings, model: base, data: TrainingData(training: dataset), folder: folder)
let result = try tuner.run(observer: ConsoleObserver())
let reloaded = try Checkpoint.load(folder.appendingPathComponent("checkpoints/last.safetensors"))
print("FineTuner: \(result.history.epochs.count) epochs, preprocessing \(tuner.settings.preprocessing?.rawValue ?? "none"), "
    + "checkpoint reloads with head \(reloaded.info.head)")
try? FileManager.default.removeItem(at: folder)

// An architecture of this package's own, registered, then used by name like zoo's families:
// summary, fine-tuning through the same FineTuner, and its checkpoint reloaded by name.
try ModelRegistry.register(TinyNet.architecture)
let tiny = try Architecture(named: "tinynet")
print("registered: \(tiny.summary), \(try ModelSummary(try tiny.make(flavor: .torchvision, top: .classifier(classes: 2)), inputSize: 32).total) parameters")
var tinySettings = settings
tinySettings.architecture = "tinynet"
tinySettings.unfreeze = .all
tinySettings.preprocessing = nil
let tinyFolder = folder.appendingPathExtension("tinynet")
let tinyResult = try FineTuner(settings: tinySettings, model: try tiny.make(flavor: .torchvision, top: .features(pooling: nil)),
                               data: TrainingData(training: dataset), folder: tinyFolder).run()
let tinyCheckpoint = try Checkpoint.load(tinyFolder.appendingPathComponent("checkpoints/last.safetensors"))
print("TinyNet: \(tinyResult.history.epochs.count) epochs; checkpoint reloads as \(tinyCheckpoint.model.name) with \(tinyCheckpoint.info.classNames)")
try? FileManager.default.removeItem(at: tinyFolder)
