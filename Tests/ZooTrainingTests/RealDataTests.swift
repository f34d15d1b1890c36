import Foundation
import Testing
import ZooData
import ZooModels
import ZooTraining
import ZooCatalog
import ZooTensor
import ZooTestSupport

/// The real images in `../shared/data` (`$ZOO_SHARED_DATA` elsewhere), each archive unpacked
/// once per test run into a temporary folder; nil where the archive is absent.
enum SharedArchive {
    static let cifar10 = unpack("cifar10-jpg.tar.gz")
    static let tinyImageNet = unpack("tinyimagenet32-jpg.tar.gz")

    /// The test data of zoo's own weight sets, by the tag their names end with
    /// (`cifar-airbench.zoo_cifar10`). A shipped set whose tag is not here fails
    /// `RealDataTests.shippedWeights`, so none goes unchecked.
    static let forTag: [String: @Sendable () -> URL?] = [
        "zoo_cifar10": { cifar10 },
        "zoo_tinyimagenet32": { tinyImageNet },
    ]

    private static func unpack(_ name: String) -> URL? {
        guard let archive = SharedData.archive(name) else { return nil }
        let target = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-shared-\(UUID().uuidString)")
        guard (try? FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)) != nil,
              (try? SharedData.unpack(archive, into: target)) != nil else { return nil }
        return target
    }
}

@Suite("Training on real images", .serialized)
struct RealDataTests {
    @Test("a CIFAR ResNet-20 learns three CIFAR-10 classes at 32x32 well above chance",
          .enabled(if: SharedArchive.cifar10 != nil, "the shared CIFAR-10 archive is not here"))
    func threeClasses() throws {
        let data = try #require(SharedArchive.cifar10)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-real-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        var settings = FineTuneSettings(architecture: "cifar-resnet20", flavor: .torchvision, imageSize: 32)
        settings.head = try HeadSpecification.Template(parsing: "gap,dense")
        settings.unfreeze = .all
        settings.epochs = 6
        settings.batchSize = 64
        settings.optimizer.learningRate = 0.1
        settings.optimizer.weightDecay = 1e-4
        settings.schedule.kind = .cosine
        settings.seed = 1
        settings.data.sources = [data.path]
        settings.data.classes = ["airplane", "automobile", "frog"]
        settings.data.limitPerClass = 500
        settings.data.augmentation = "flip,padcrop=4"
        let result = try FineTuneJob.start(settings, folder: folder)
        let test = try #require(result.test)
        // Chance is 33%; 3 x 500 images for 6 epochs reach about 80%.
        #expect(test.accuracy > 0.65, "test accuracy \(test.accuracy)")
        #expect(test.perClassAccuracy.allSatisfy { $0 > 0.4 })
    }

    /// Every weight set zoo trained and ships, by its name.
    static let shippedSets = Catalog.weightSets.filter { $0.publisher == "zoo" }.map(\.name)

    @Test("each weight set zoo ships scores on its test split what its manifest states", arguments: shippedSets)
    func shippedWeights(_ name: String) throws {
        let set = try Catalog.weightSet(named: name)
        let tag = String(name.split(separator: ".").last ?? "")
        let unpacked = try #require(SharedArchive.forTag[tag], "\(name): no test data is known for the tag '\(tag)'; add it to SharedArchive.forTag")
        guard let data = unpacked() else {
            print("skipped: \(name) needs the shared archive for '\(tag)' (../shared/data or $ZOO_SHARED_DATA), which is not here")
            return
        }
        let classifier = try Classifier(checkpoint: try Catalog.bundledFile(set))
        let test = try #require(try DataSource([data.path]).test)
        #expect(test.count == 10_000)
        let summary = try classifier.evaluate(test)
        let stated = try #require(set.metrics?.top1)
        #expect(abs(Double(summary.accuracy) * 100 - stated) < 0.005, "\(name): measured \(summary.accuracy), stated \(stated)")
    }

    @Test("calibrated on 512 CIFAR-10 training images, the shipped model's int8 test accuracy is within 0.5 points of f32's, and the quantized checkpoint reloads with its calibration",
          .enabled(if: SharedArchive.cifar10 != nil, "the shared CIFAR-10 archive is not here"))
    func shippedModelInInt8() throws {
        let data = try #require(SharedArchive.cifar10)
        let set = try Catalog.weightSet(named: "cifar-resnet20.zoo_cifar10")
        let loaded = try LoadedWeights.load(set.name)
        let sources = try DataSource([data.path])
        let report = try Classifier(loaded).calibrate(on: sources.training, images: 512)
        #expect(report.images == 512 && report.plan.layers.count == 18 && report.plan.keptFloat.keys.sorted() == ["conv1"])
        #expect(report.topOneAgreement > 0.97, "\(report.topOneAgreement)")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-int8-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("int8.safetensors")
        try Checkpoint.save(loaded.model, info: try #require(loaded.checkpoint), quantization: report.plan, to: file)

        let reloaded = try LoadedWeights.load(file.path)
        #expect(reloaded.quantization == report.plan)
        let test = try #require(sources.test)
        var classifier = try Classifier(reloaded)
        let int8 = Precision.int8.resolved()
        try reloaded.prepare(for: int8)
        #expect(reloaded.model.isQuantized == int8.quantized)
        classifier.precision = int8.activationType
        let quantized = try classifier.evaluate(test)
        try reloaded.prepare(for: Precision.f32.resolved())
        #expect(!reloaded.model.isQuantized)
        classifier.precision = .float32
        let float = try classifier.evaluate(test)
        #expect(abs(quantized.accuracy - float.accuracy) <= 0.005, "int8 \(quantized.accuracy), f32 \(float.accuracy)")
        // An ordinary checkpoint has no calibration to run int8 with.
        #expect(throws: TrainingError.self) {
            try loaded.prepare(for: ResolvedPrecision(requested: .int8, activationType: .float32, quantized: true, note: nil))
        }
    }
}
