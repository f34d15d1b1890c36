// Fine-tunes MobileNetV2 on a tiny made-up task through zoo's public API: build the base,
// give it a new head, freeze the bottom 80% of its Keras layer list, and train a few steps.
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
