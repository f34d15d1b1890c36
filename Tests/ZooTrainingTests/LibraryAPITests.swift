import Foundation
import Testing
import ZooTensor
import ZooNN
import ZooWeights
import ZooData
import ZooModels
import ZooTraining
import ZooCatalog
import ZooCommands

/// The library used the way a program does: values for the model, its head, its preprocessing
/// and its features, no command-line flags.
@Suite("Fine-tuning as a library", .serialized)
struct LibraryAPITests {
    func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("zoo-library-\(UUID().uuidString)")
    }

    func settings(epochs: Int = 1) -> FineTuneSettings {
        var settings = FineTuneSettings(architecture: "mobilenetv2", flavor: .torchvision, imageSize: 32)
        settings.classNames = SyntheticDemo.classNames
        settings.epochs = epochs
        settings.batchSize = 16
        settings.optimizer.learningRate = 0.05
        settings.seed = 3
        return settings
    }

    /// MobileNetV2 without a head: the tuner puts the settings' on.
    func base() throws -> ImageModel {
        Initialization.seed(21)
        return try Architecture.mobilenetv2.make(flavor: .torchvision, top: .features(pooling: nil))
    }

    func data() throws -> TrainingData {
        TrainingData(training: try patternDataset(count: 32, seed: 1), validation: try patternDataset(count: 16, seed: 2))
    }

    @Test("without a preprocessing setting the tuner takes the architecture's for its flavour, or the weights' checkpoint's, and records it")
    func preprocessing() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tuner = try FineTuner(settings: settings(), model: base(), data: data(), folder: folder)
        let expected = try Architecture(named: "mobilenetv2").defaultPreprocessing(.torchvision)
        #expect(expected != Preprocessing.none)
        #expect(tuner.settings.preprocessing == expected)
        let recorded = try JSONDecoder().decode(FineTuneSettings.self, from: Data(contentsOf: folder.appendingPathComponent("config.json")))
        #expect(recorded.preprocessing == expected)

        // Weights given as a zoo checkpoint: its preprocessing, as FineTuneJob takes it.
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let checkpoint = folder.appendingPathComponent("start.safetensors")
        let info = CheckpointInfo(architecture: "mobilenetv2", flavor: .torchvision, head: "gap,dense", classNames: SyntheticDemo.classNames,
                                  imageSize: 32, preprocessing: .caffe, epoch: 0, unfreeze: "none")
        let model = try base()
        model.head = try HeadSpecification(parsing: "gap,dense", classes: SyntheticDemo.classNames.count).head(inputFeatures: model.featureChannels)
        try Checkpoint.save(model, info: info, to: checkpoint)
        var fromCheckpoint = settings()
        fromCheckpoint.weights = checkpoint.path
        #expect(try FineTuneJob.defaultPreprocessing(fromCheckpoint) == .caffe)
        let second = folder.appendingPathComponent("second")
        #expect(try FineTuner(settings: fromCheckpoint, model: base(), data: data(), folder: second).settings.preprocessing == .caffe)
    }

    @Test("the model's head must be the settings' head; a tuner given a bare base puts it on, and its checkpoint reloads")
    func head() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let other = try base()
        other.head = try HeadSpecification(parsing: "gap,dense", classes: SyntheticDemo.classNames.count).head(inputFeatures: other.featureChannels)
        #expect {
            try FineTuner(settings: settings(), model: other, data: data(), folder: folder)
        } throws: { error in
            guard case let .headMismatch(model, settings)? = error as? TrainingError else { return false }
            return model.hasPrefix("gap,dense=\(SyntheticDemo.classNames.count),") && settings.hasPrefix("gap,dropout=0.5,dense for")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("config.json").path))

        var matching = settings()
        matching.head = HeadSpecification.Template(try HeadSpecification(parsing: "gap,dense", classes: SyntheticDemo.classNames.count))
        #expect(matching.head.text == "gap,dense")
        _ = try FineTuner(settings: matching, model: other, data: data(), folder: folder.appendingPathComponent("matching"))

        let tuner = try FineTuner(settings: settings(), model: base(), data: data(), folder: folder.appendingPathComponent("bare"))
        try tuner.run()
        let reloaded = try Checkpoint.load(folder.appendingPathComponent("bare/checkpoints/last.safetensors"))
        #expect(reloaded.info.head == "gap,dropout=0.5,dense")
        let x = try Tensor(shape: [2, 3, 32, 32], values: (0..<(2 * 3 * 32 * 32)).map { Float($0 % 13) / 13 })
        #expect(try reloaded.model(x, .inference()).array() == tuner.model(x, .inference()).array())
        #expect {
            try HeadSpecification.Template(parsing: "gap,relu")
        } throws: { error in
            guard case let .invalidHead(text, reason)? = error as? TrainingError else { return false }
            return text == "gap,relu" && reason.contains("'relu'")
        }
    }

    @Test("a head trains on features held in memory; features that do not fit the base are refused up front")
    func featuresInMemory() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var data = try data()
        var settings = settings(epochs: 2)
        settings.head = try HeadSpecification.Template(parsing: "gap,dense")
        settings.preprocessing = .torch
        let model = try base()
        data.savedFeatures = try SavedFeatures(extractingFrom: data, model: model, imageSize: 32, preprocessing: .torch)
        #expect(data.savedFeatures?.training.count == 32 && data.savedFeatures?.validation?.count == 16)
        let notes = NoteCollector()
        let result = try FineTuner(settings: settings, model: model, data: data, folder: folder).run(observer: notes)
        #expect(notes.notes.contains { $0.hasPrefix("training on saved features") }, "\(notes.notes)")
        #expect(result.history.epochs.count == 2)

        // Extracted at 64x64 for a run at 32x32: the maps are 2x2, the head's base gives 1x1.
        var other = try self.data()
        other.evaluationTransform = AugmentationSpecification.evaluationTransform(size: 64, resize: .bilinear(.tensorflow))
        other.savedFeatures = try SavedFeatures(extractingFrom: other, model: model, imageSize: 64, preprocessing: .torch)
        #expect {
            try FineTuner(settings: settings, model: base(), data: other, folder: folder.appendingPathComponent("wrong"))
        } throws: { error in
            guard case let .featuresDoNotFit(_, _, shape, expected, _, _, imageSize)? = error as? TrainingError else { return false }
            return shape == [2, 2, 1280] && expected == [1, 1, 1280] && imageSize == 32
        }
        // Pooled vectors are not the maps a head's pooling step takes.
        #expect(throws: TrainingError.featureMapsExpected(source: "the training features", shape: [4, 1280])) {
            try SavedFeatures(training: (values: [Float](repeating: 0, count: 4 * 1280), shape: [4, 1280]))
        }
        var unfrozen = settings
        unfrozen.unfreeze = .fraction(0.2)
        #expect(throws: TrainingError.featuresNeedFrozenBase(plan: "20%")) {
            try FineTuner(settings: unfrozen, model: base(), data: data, folder: folder.appendingPathComponent("unfrozen"))
        }
    }

    @Test("a feature file's header needs only what its caller knows; pooled features in a file are refused naming the file and shapes")
    func featureFiles() throws {
        let folder = temporaryFolder()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        Initialization.seed(4)
        let pooled = try Architecture(named: "cifar-resnet20").make(flavor: .torchvision, top: .features(pooling: .average), inputSize: 32)
        let weights = folder.appendingPathComponent("resnet20.safetensors")
        try WeightExport.safetensors(pooled, to: weights)
        let header = FeatureFileHeader(architecture: "cifar-resnet20", flavor: .torchvision, weights: weights.path, imageSize: 32, preprocessing: .torch)
        let file = folder.appendingPathComponent("pooled.npy")
        let dataset = try patternDataset(count: 12, seed: 5)
        let written = try FeatureExtraction.extract(pooled, from: .dataset(dataset, size: 32, transform: nil, workers: 1), layers: [FeatureExtraction.outputName],
                                                    to: file, batchSize: 4, header: header, preprocessing: .torch)
        #expect(written.count == 12 && written.classNames == SyntheticDemo.classNames && written.layers.map(\.shape) == [[64]])

        var settings = try FineTuneSettings(features: file)
        settings.epochs = 1
        settings.data.validationFraction = 0
        #expect {
            try FineTuneJob.start(settings, folder: folder.appendingPathComponent("run"))
        } throws: { error in
            guard case let .featuresDoNotFit(source, layer, shape, expected, _, architecture, _)? = error as? TrainingError else { return false }
            return source == file.path && layer == FeatureExtraction.outputName && shape == [64] && expected == [8, 8, 64] && architecture == "cifar-resnet20"
        }
    }

    @Test("random weights with a frozen base are refused, naming the weight sets, unless allowed or everything trains")
    func randomFrozen() throws {
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        for (index, label) in SyntheticDemo.classNames.enumerated() {
            let classFolder = images.appendingPathComponent(label)
            try FileManager.default.createDirectory(at: classFolder, withIntermediateDirectories: true)
            let samples = try patternDataset(count: 12, seed: 7)
            for sample in 0..<samples.count where samples.label(at: sample) == index {
                try ImageCodec.writePNG(try samples.image(at: sample), to: classFolder.appendingPathComponent("\(sample).png"))
            }
        }
        var settings = FineTuneSettings(architecture: "cifar-resnet20", flavor: .torchvision, imageSize: 32)
        settings.unfreeze = .fraction(0.2)
        settings.epochs = 1
        settings.batchSize = 8
        settings.data.sources = [images.path]
        settings.data.validationFraction = 0
        let sets = Catalog.weightSets.filter { $0.architecture == "cifar-resnet20" }.map(\.name)
        #expect(!sets.isEmpty)
        #expect(throws: TrainingError.frozenRandomWeights(architecture: "cifar-resnet20", plan: "20%", weightSets: sets)) {
            try FineTuneJob.start(settings, folder: folder.appendingPathComponent("refused"))
        }
        var staged = settings
        staged.unfreeze = .all
        staged.unfreezeSchedule = [.init(epoch: 1, plan: .headOnly)]
        #expect(throws: TrainingError.frozenRandomWeights(architecture: "cifar-resnet20", plan: "none", weightSets: sets)) {
            try FineTuneJob.start(staged, folder: folder.appendingPathComponent("staged"))
        }
        var allowed = settings
        allowed.allowRandomFrozenLayers = true
        try FineTuneJob.start(allowed, folder: folder.appendingPathComponent("allowed"))
        let recorded = try String(contentsOf: folder.appendingPathComponent("allowed/config.json"), encoding: .utf8)
        #expect(recorded.contains("\"allowRandomFrozenLayers\" : true"))
        var everything = settings
        everything.unfreeze = .all
        try FineTuneJob.start(everything, folder: folder.appendingPathComponent("all"))
        let plain = try String(contentsOf: folder.appendingPathComponent("all/config.json"), encoding: .utf8)
        #expect(!plain.contains("allowRandomFrozenLayers"))
    }

    @Test("typed settings write the strings they replaced")
    func typedSettings() throws {
        #expect(FreezePlan.fraction(0.2).text == "20%")
        #expect(FreezePlan.fraction(0.125).text == "12.5%")
        #expect(try FreezePlan(parsing: "33.3%").text == "33.3%")
        for text in ["20%", "12", "all", "none", "from:mixed9", "7.5%"] {
            #expect(try FreezePlan(parsing: text).text == text)
        }
        var settings = settings()
        settings.unfreeze = .fraction(0.2)
        settings.unfreezeSchedule = [.init(epoch: 4, plan: .all)]
        settings.schedule.kind = .step(milestones: [81, 122])
        settings.head = try HeadSpecification.Template(parsing: "gap,dense=64:relu,dense")
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(settings)) as? [String: Any])
        #expect(json["unfreeze"] as? String == "20%")
        #expect(json["head"] as? String == "gap,dense=64:relu,dense")
        #expect((json["schedule"] as? [String: Any])?["name"] as? String == "step:81,122")
        #expect((json["unfreezeSchedule"] as? [[String: Any]])?.first?["plan"] as? String == "all")
        #expect(try JSONDecoder().decode(FineTuneSettings.self, from: JSONEncoder().encode(settings)) == settings)
        #expect(throws: TrainingError.invalidSchedule("linear", reason: "unknown: constant, cosine, onecycle[:PEAK] or step:EPOCH,EPOCH...")) {
            try ScheduleSettings.Kind(parsing: "linear")
        }
        #expect(throws: TrainingError.unknownOptimizer("lion")) {
            var optimizer = OptimizerSettings()
            optimizer.name = "lion"
            return try optimizer.make()
        }
    }
}
