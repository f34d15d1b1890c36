import Testing
import ZooData
import ZooModels
import ZooTraining
import ZooCommands

@Suite("Test-time augmentation")
struct TestTimeAugmentationTests {
    @Test("averaged views (weights summing to one) change nothing on images every view leaves alone, and change the confidence of others")
    func evaluation() throws {
        let model = try Architecture(named: "cifar-resnet20").make(flavor: .torchvision, top: .classifier(classes: SyntheticDemo.classNames.count))
        func metrics(_ dataset: ArrayDataset, _ augmentation: TestTimeAugmentation) throws -> ClassificationMetrics {
            try Evaluation.run(model, on: dataset, size: 16, batchSize: 4, preprocessing: .torch, workers: 1, testTimeAugmentation: augmentation)
        }
        let patterns = try patternDataset(count: 6, size: 16, seed: 3)
        // One colour per image: mirrored and moved, it is the same image.
        let flat = try ArrayDataset(images: patterns.images.indices.map { Image(width: 16, height: 16, pixels: [UInt8](repeating: UInt8(40 * $0), count: 16 * 16 * 3)) },
                                    labels: patterns.labels, classNames: patterns.classNames)
        let plain = try metrics(flat, .none)
        for augmentation in [TestTimeAugmentation.mirror, .mirrorTranslate] {
            let averaged = try metrics(flat, augmentation)
            #expect(averaged.confusion == plain.confusion && abs(averaged.meanConfidence - plain.meanConfidence) < 1e-5, "\(augmentation)")
        }
        let confidences = try TestTimeAugmentation.allCases.map { try metrics(patterns, $0).meanConfidence }
        #expect(Set(confidences).count == 3, "\(confidences)")
    }
}
