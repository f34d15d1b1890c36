import Foundation
import Testing
import ZooCatalog
import ZooKit

@Suite("a zoo binary on its own", .serialized)
struct StandaloneTests {
    @Test("a zoo copied into an empty folder, run from another with ZOO_CATALOG unset, finds its sample and bundled weights")
    func copiedBinary() throws {
        let manager = FileManager.default
        let root = manager.temporaryDirectory.appendingPathComponent("zoo-standalone-\(UUID().uuidString)")
        defer { try? manager.removeItem(at: root) }
        let bin = root.appendingPathComponent("bin"), elsewhere = root.appendingPathComponent("elsewhere")
        let home = root.appendingPathComponent("home")
        for folder in [bin, elsewhere, home] { try manager.createDirectory(at: folder, withIntermediateDirectories: true) }
        let zoo = bin.appendingPathComponent("zoo")
        try manager.copyItem(at: Zoo.executable, to: zoo)
        // The cache in a fresh folder, so the built-in files are written out by this run.
        let environment = ["ZOO_HOME": home.path, "HOME": home.path]
        func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
            try Zoo.run(zoo, arguments, in: elsewhere, environment: environment, removing: ["ZOO_CATALOG", "XDG_CACHE_HOME"])
        }

        let demo = try run(["demo", "--epochs", "1", "--out", "run"])
        #expect(demo.status == 0, "\(demo.error)")
        #expect(demo.output.split(separator: "\n").contains { $0.hasPrefix("test: 300 images") }, "\(demo.output)")
        #expect(manager.fileExists(atPath: elsewhere.appendingPathComponent("run/checkpoints/best.safetensors").path))

        let written = try manager.contentsOfDirectory(atPath: home.appendingPathComponent("catalog").path)
        let sampleName = try #require(written.first { $0.hasPrefix("cifar15-") }, "\(written)")
        let sample = home.appendingPathComponent("catalog").appendingPathComponent(sampleName)
        let evaluation = try run(["evaluate", "cifar-resnet20.zoo_cifar10", "--data", sample.path, "--classes", "airplane,cat,ship",
                                  "--limit-per-class", "5", "--json"])
        #expect(evaluation.status == 0, "\(evaluation.error)")
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(evaluation.output.utf8)) as? [String: Any])
        #expect(metrics["accuracy"] != nil)

        let image = sample.appendingPathComponent("test/cat").appendingPathComponent(
            try #require(try manager.contentsOfDirectory(atPath: sample.appendingPathComponent("test/cat").path).sorted().first))
        let prediction = try run(["predict", "cifar-resnet20.zoo_cifar10", image.path, "--top", "3", "--json"])
        #expect(prediction.status == 0, "\(prediction.error)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(prediction.output.utf8)) as? [[String: Any]])
        let top = try #require(rows.first?["top"] as? [[String: Any]])
        let cifar10 = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        #expect(top.count == 3 && top.allSatisfy { cifar10.contains($0["class"] as? String ?? "") }, "\(top)")
    }
}
