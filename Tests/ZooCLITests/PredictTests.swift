import Foundation
import Testing
import ZooCatalog
import ZooKit

@Suite("zoo predict with ImageNet class names", .serialized)
struct ImageNetPredictTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-predict-\(UUID().uuidString)")

    /// A MobileNetV2 of torchvision's graph and key names with random weights and 1000 outputs.
    func makeWeights(_ url: URL) throws -> MobileNetV2 {
        Initialization.seed(21)
        let model = MobileNetV2(flavor: .torchvision, top: .classifier(classes: 1000))
        try WeightExport.safetensors(model, to: url)
        return model
    }

    /// The rows of `zoo predict --json`.
    func rows(_ output: String) throws -> [(image: String, top: [(rank: Int, index: Int, name: String, probability: Double)])] {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])
        return try json.map { row in
            let top = try #require(row["top"] as? [[String: Any]])
            return (row["image"] as? String ?? "", top.map { ($0["rank"] as? Int ?? 0, $0["index"] as? Int ?? -1, $0["class"] as? String ?? "",
                                                              $0["probability"] as? Double ?? -1) })
        }
    }

    @Test("an architecture with a 1000-output weight file names its top classes from ImageNet-1k, most probable first")
    func withWeightFile() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let weights = folder.appendingPathComponent("mobilenet.safetensors")
        let model = try makeWeights(weights)
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 2)
        let images = try ["diagonal", "vertical"].map { name in
            let classFolder = folder.appendingPathComponent("images/\(name)").path
            return classFolder + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first))
        }
        let names = ClassList.imagenet1k.names

        let result = try Zoo.run(["predict", "mobilenetv2", "--weights", weights.path, "--flavor", "torchvision", "--size", "32",
                                  "--preprocess", "torch", "--json"] + images)
        #expect(result.status == 0, "\(result.error)")
        let predicted = try rows(result.output)
        #expect(predicted.map { $0.image } == images)
        // The same classifier in this process gives the same classes and probabilities.
        let classifier = Classifier(model: model, classNames: names, imageSize: 32, preprocessing: .torch)
        let expected = try classifier.predict(try images.map { try ImageCodec.decode(contentsOf: URL(fileURLWithPath: $0)) }, top: 5)
        for (row, reference) in zip(predicted, expected) {
            #expect(row.top.count == 5)
            #expect(row.top.map { $0.rank } == [1, 2, 3, 4, 5])
            #expect(row.top.map { $0.index } == reference.map { $0.index })
            #expect(row.top.allSatisfy { names[$0.index] == $0.name })
            #expect(zip(row.top, reference).allSatisfy { abs($0.probability - Double($1.probability)) < 1e-5 })
            #expect(zip(row.top, row.top.dropFirst()).allSatisfy { $0.probability >= $1.probability })
            #expect(row.top.allSatisfy { $0.probability > 0 } && row.top.map { $0.probability }.reduce(0, +) <= 1 + 1e-5)
        }

        // All 1000: the probabilities sum to one; the table shows the same first class.
        let all = try Zoo.run(["predict", "mobilenetv2", "--weights", weights.path, "--flavor", "torchvision", "--size", "32", "--top", "1000",
                               "--json", images[0]])
        #expect(all.status == 0, "\(all.error)")
        let every = try #require(try rows(all.output).first)
        #expect(Set(every.top.map { $0.index }).count == 1000)
        #expect(abs(every.top.map { $0.probability }.reduce(0, +) - 1) < 1e-3)
        let table = try Zoo.run(["predict", "mobilenetv2", "--weights", weights.path, "--flavor", "torchvision", "--size", "32", "--top", "2", images[0]])
        #expect(table.status == 0, "\(table.error)")
        let lines = table.output.split(separator: "\n")
        #expect(lines.count == 3 && lines[0] == images[0])
        #expect(lines[1].contains(every.top[0].name) && lines[1].hasPrefix("   1  "), "\(table.output)")
    }

    @Test("a catalog weight set pulled into the cache predicts with its manifest's class list, input size and preprocessing")
    func withWeightSet() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        // Real ImageNet weights cannot be downloaded here: random weights stand in for the
        // pulled file (a cached file is not checked again).
        let set = try Catalog.weightSet(named: "mobilenetv2.tv_in1k")
        let cache = WeightCache(root: folder.appendingPathComponent("cache"))
        try FileManager.default.createDirectory(at: cache.file(for: set).deletingLastPathComponent(), withIntermediateDirectories: true)
        let model = try makeWeights(cache.file(for: set))
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 1)
        let classFolder = folder.appendingPathComponent("images/horizontal").path
        let image = classFolder + "/" + (try #require(try FileManager.default.contentsOfDirectory(atPath: classFolder).sorted().first))

        let result = try Zoo.run(["predict", set.name, image, "--top", "3", "--json"], environment: ["ZOO_HOME": cache.root.path])
        #expect(result.status == 0, "\(result.error)")
        let row = try #require(try rows(result.output).first)
        let classifier = Classifier(model: model, classNames: ClassList.imagenet1k.names, imageSize: set.inputSize, preprocessing: .torch)
        let reference = try #require(try classifier.predict([try ImageCodec.decode(contentsOf: URL(fileURLWithPath: image))], top: 3).first)
        #expect(row.top.map { $0.name } == reference.map { $0.className })
        #expect(zip(row.top, reference).allSatisfy { abs($0.probability - Double($1.probability)) < 1e-5 })

        let notop = try Zoo.run(["predict", "mobilenetv2.keras_imagenet_a100_r96_notop", image], environment: ["ZOO_HOME": cache.root.path])
        #expect(notop.status != 0)
        #expect(notop.error.contains("not in the cache"), "\(notop.error)")
        let noImages = try Zoo.run(["predict", set.name])
        #expect(noImages.status != 0)
    }
}
