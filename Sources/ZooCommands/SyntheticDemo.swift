import Foundation
import ZooTensor
import ZooNN
import ZooTraining

/// A small end-to-end training run on generated images: the engine, autograd, layers and
/// optimizer working together, on any machine, in seconds.
///
/// The images are 3-channel, `size` x `size`, in four classes: horizontal stripes, vertical
/// stripes, diagonal stripes and a bright square, each with a random phase, colour and noise.
public enum SyntheticDemo {
    /// The settings of a run.
    public struct Options: Sendable {
        public var epochs = 8
        public var trainingImages = 512
        public var validationImages = 256
        public var batchSize = 32
        public var imageSize = 16
        public var learningRate: Float = 0.05
        public var seed: UInt64 = 1

        public init() {}
    }

    /// What one epoch achieved.
    public struct EpochReport: Sendable {
        public var epoch: Int
        public var seconds: Double
        public var trainingLoss: Float
        public var trainingAccuracy: Float
        public var validationLoss: Float
        public var validationAccuracy: Float
    }

    public static let classNames = ["horizontal", "vertical", "diagonal", "square"]

    /// A batch of generated images `[N, 3, size, size]` (row-major values) and their labels.
    public static func images(count: Int, size: Int, generator: inout SeededGenerator) -> (values: [Float], labels: [Int]) {
        var values: [Float] = []
        values.reserveCapacity(count * 3 * size * size)
        var labels: [Int] = []
        for index in 0..<count {
            let label = index % classNames.count
            labels.append(label)
            let phase = Int(generator.next() % 4)
            let colour = (0..<3).map { _ in 0.5 + generator.nextUnitFloat() }
            let (low, high) = (size / 4 + Int(generator.next() % 2), 3 * size / 4 - Int(generator.next() % 2))
            for channel in 0..<3 {
                for row in 0..<size {
                    for column in 0..<size {
                        let on: Bool
                        switch label {
                        case 0: on = (row + phase) % 4 < 2
                        case 1: on = (column + phase) % 4 < 2
                        case 2: on = (row + column + phase) % 4 < 2
                        default: on = (low..<high).contains(row) && (low..<high).contains(column)
                        }
                        values.append((on ? colour[channel] : -colour[channel]) * 0.5 + generator.nextNormal())
                    }
                }
            }
        }
        return (values, labels)
    }

    /// The demo's network: two convolution blocks, global average pooling and a classifier.
    public static func model(imageChannels: Int = 3, classes: Int = classNames.count) -> Sequential {
        Sequential {
            Conv2D(imageChannels, 16, kernel: 3, padding: .symmetric(1), bias: false)
            BatchNorm(16)
            ActivationLayer(.relu)
            Pool2D(.max, Pool2DOptions(kernel: 2))
            Conv2D(16, 32, kernel: 3, padding: .symmetric(1), bias: false)
            BatchNorm(32)
            ActivationLayer(.relu)
            GlobalPool2D(.average)
            Dense(32, classes)
        }
    }

    /// Trains the demo network, calling `report` after every epoch.
    @discardableResult
    public static func run(_ options: Options = Options(), report: (EpochReport) -> Void = { _ in }) throws -> [EpochReport] {
        Initialization.seed(options.seed)
        var generator = SeededGenerator(seed: options.seed)
        let training = images(count: options.trainingImages, size: options.imageSize, generator: &generator)
        let validation = images(count: options.validationImages, size: options.imageSize, generator: &generator)
        let network = model()
        let optimizer = GradientDescent(.sgd(momentum: 0.9), learningRate: options.learningRate, weightDecay: .l2(1e-4))
        let imageValues = 3 * options.imageSize * options.imageSize
        var reports: [EpochReport] = []
        for epoch in 1...max(options.epochs, 1) {
            let start = Date()
            var order = Array(0..<options.trainingImages)
            order.shuffle(using: &generator)
            var totals = Totals()
            for batchStart in stride(from: 0, to: order.count, by: options.batchSize) {
                let indices = Array(order[batchStart..<min(batchStart + options.batchSize, order.count)])
                let batch = try Tensor(shape: [indices.count, 3, options.imageSize, options.imageSize],
                                       values: indices.flatMap { training.values[$0 * imageValues..<($0 + 1) * imageValues] })
                let labels = indices.map { training.labels[$0] }
                let tape = GradientTape()
                let context = ForwardContext(training: true, tape: tape, seed: generator.next())
                let logits = try network(batch, context)
                let loss = try softmaxCrossEntropy(logits: logits, labels: labels)
                try tape.backward(loss)
                try optimizer.step(network.namedParameters())
                try totals.add(loss: loss, logits: logits, labels: labels)
            }
            let (validationLoss, validationAccuracy) = try evaluate(network, validation.values, validation.labels,
                                                                    size: options.imageSize, batchSize: options.batchSize)
            let epochReport = EpochReport(epoch: epoch, seconds: Date().timeIntervalSince(start), trainingLoss: totals.meanLoss,
                                          trainingAccuracy: totals.accuracy, validationLoss: validationLoss,
                                          validationAccuracy: validationAccuracy)
            reports.append(epochReport)
            report(epochReport)
        }
        return reports
    }

    /// Mean loss and accuracy of `network` in inference mode.
    static func evaluate(_ network: Sequential, _ values: [Float], _ labels: [Int], size: Int, batchSize: Int) throws -> (Float, Float) {
        var totals = Totals()
        let imageValues = 3 * size * size
        for start in stride(from: 0, to: labels.count, by: batchSize) {
            let end = min(start + batchSize, labels.count)
            let batch = try Tensor(shape: [end - start, 3, size, size], values: Array(values[start * imageValues..<end * imageValues]))
            let logits = try network(batch, .inference())
            try totals.add(loss: try softmaxCrossEntropy(logits: logits, labels: Array(labels[start..<end])), logits: logits,
                           labels: Array(labels[start..<end]))
        }
        return (totals.meanLoss, totals.accuracy)
    }

    /// Running sums of loss and correct predictions over an epoch.
    struct Totals {
        var lossSum: Double = 0, correct = 0, count = 0

        mutating func add(loss: Tensor, logits: Tensor, labels: [Int]) throws {
            lossSum += Double(try loss.scalar()) * Double(labels.count)
            let values = try logits.array()
            let classes = logits.shape[1]
            for (row, label) in labels.enumerated() {
                let scores = values[row * classes..<(row + 1) * classes]
                if scores.indices.max(by: { scores[$0] < scores[$1] }).map({ $0 - row * classes }) == label { correct += 1 }
            }
            count += labels.count
        }

        var meanLoss: Float { count == 0 ? 0 : Float(lossSum / Double(count)) }
        var accuracy: Float { count == 0 ? 0 : Float(correct) / Float(count) }
    }
}
