import Foundation
import Testing
import ZooModels
import ZooTraining
import ZooCommands

/// `config.json` files as zoo wrote them before its settings were typed (commit c22c032), kept
/// byte for byte: a run folder of that version must still read, write back the same text and
/// resume. `demo` is from `zoo demo --epochs 2 --out /tmp/demo-old` (its sample under
/// `/tmp/zoo-old`, the checkout it was built from); `finetune` from `zoo finetune cifar-resnet20
/// --flavor torchvision --data .../samples/cifar15 --size 32 --unfreeze 20% --unfreeze-at 2:all
/// --schedule step:1 --step-factors 0.1 --epochs 2 --limit-per-class 2 --batch 8`.
enum OlderConfigurations {
    static let demoSample = "\\/tmp\\/zoo-old\\/zoo\\/samples\\/cifar15"

    static let demo = #"""
{
  "architecture" : "cifar-resnet20",
  "batchSize" : 64,
  "classNames" : [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "crocodile",
    "deer",
    "dinosaur",
    "dog",
    "frog",
    "horse",
    "lizard",
    "ship",
    "snake",
    "truck",
    "turtle"
  ],
  "data" : {
    "augmentation" : "flip",
    "resize" : "bilinear",
    "resizeConvention" : "tensorflow",
    "skipDamaged" : false,
    "sources" : [
      "\/tmp\/zoo-old\/zoo\/samples\/cifar15"
    ],
    "validationFraction" : 0,
    "workers" : 2
  },
  "epochs" : 2,
  "extendFrom" : "cifar-resnet20.zoo_cifar10",
  "flavor" : "torchvision",
  "freezeOldRows" : false,
  "head" : "gap,dense",
  "imageSize" : 32,
  "labelSmoothing" : 0,
  "optimizer" : {
    "decoupled" : false,
    "learningRate" : 0.05,
    "momentum" : 0.9,
    "name" : "sgd",
    "weightDecay" : 0.0005
  },
  "preprocessing" : "torch",
  "schedule" : {
    "factors" : [
      0.1,
      0.01
    ],
    "name" : "cosine",
    "warmupEpochs" : 0
  },
  "seed" : 1,
  "testTimeAugmentation" : true,
  "trunkCache" : {
    "augmentedCopies" : {
      "_0" : 2
    }
  },
  "unfreeze" : "none",
  "unfreezeSchedule" : [

  ],
  "weights" : "cifar-resnet20.zoo_cifar10"
}
"""#

    static let finetune = #"""
{
  "architecture" : "cifar-resnet20",
  "batchSize" : 8,
  "classNames" : [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "crocodile",
    "deer",
    "dinosaur",
    "dog",
    "frog",
    "horse",
    "lizard",
    "ship",
    "snake",
    "truck",
    "turtle"
  ],
  "data" : {
    "augmentation" : "flip",
    "limitPerClass" : 2,
    "resize" : "bilinear",
    "resizeConvention" : "tensorflow",
    "skipDamaged" : false,
    "sources" : [
      "\/tmp\/zoo-old\/zoo\/samples\/cifar15"
    ],
    "validationFraction" : 0.2,
    "workers" : 2
  },
  "epochs" : 2,
  "flavor" : "torchvision",
  "freezeOldRows" : false,
  "head" : "gap,dropout=0.5,dense",
  "imageSize" : 32,
  "labelSmoothing" : 0,
  "optimizer" : {
    "decoupled" : false,
    "learningRate" : 0.01,
    "momentum" : 0.9,
    "name" : "sgd",
    "weightDecay" : 0
  },
  "preprocessing" : "torch",
  "schedule" : {
    "factors" : [
      0.1
    ],
    "name" : "step:1",
    "warmupEpochs" : 0
  },
  "seed" : 0,
  "testTimeAugmentation" : true,
  "trunkCache" : {
    "automatic" : {

    }
  },
  "unfreeze" : "20%",
  "unfreezeSchedule" : [
    {
      "epoch" : 1,
      "plan" : "all"
    }
  ]
}
"""#
}

@Suite("Configurations of older runs", .serialized)
struct OlderConfigurationTests {
    /// The settings encoded as a run folder's `config.json` is.
    func encoded(_ settings: FineTuneSettings) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(settings), as: UTF8.self)
    }

    @Test("config.json files of runs before typed settings decode to the typed values and encode to the same text, plus the precision they ran in (f32)",
          arguments: [OlderConfigurations.demo, OlderConfigurations.finetune])
    func sameText(_ text: String) throws {
        let settings = try JSONDecoder().decode(FineTuneSettings.self, from: Data(text.utf8))
        #expect(settings.precision == .f32)
        let withPrecision = text.replacingOccurrences(of: "\n  \"preprocessing\"", with: "\n  \"precision\" : \"f32\",\n  \"preprocessing\"")
        #expect(try encoded(settings) == withPrecision.trimmingCharacters(in: .newlines))
    }

    @Test("the typed values are those the strings said")
    func typedValues() throws {
        let demo = try JSONDecoder().decode(FineTuneSettings.self, from: Data(OlderConfigurations.demo.utf8))
        #expect(demo.head == (try HeadSpecification.Template(parsing: "gap,dense")) && demo.unfreeze == .headOnly && demo.schedule.kind == .cosine)
        #expect(!demo.allowRandomFrozenLayers)
        let finetune = try JSONDecoder().decode(FineTuneSettings.self, from: Data(OlderConfigurations.finetune.utf8))
        #expect(finetune.head == .standard && finetune.unfreeze == .fraction(0.2))
        #expect(finetune.unfreezeSchedule == [.init(epoch: 1, plan: .all)] && finetune.schedule.kind == .step(milestones: [1]))
    }

    @Test("a run whose config.json an older zoo wrote resumes")
    func resumes() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-older-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let sample = try TransferDemo.embeddedSample().path
        let text = OlderConfigurations.demo.replacingOccurrences(of: OlderConfigurations.demoSample, with: sample.replacingOccurrences(of: "/", with: "\\/"))
        var first = try JSONDecoder().decode(FineTuneSettings.self, from: Data(text.utf8))
        #expect(first.data.sources == [sample])
        // The first epoch by this version, then the older file (two epochs) in its place.
        first.epochs = 1
        try FineTuneJob.start(first, folder: folder)
        try Data(text.utf8).write(to: folder.appendingPathComponent("config.json"))
        let notes = NoteCollector()
        let result = try FineTuneJob.resume(folder, observer: notes)
        #expect(notes.notes.contains { $0.hasPrefix("resuming") && $0.hasSuffix("after epoch 1 of 2") }, "\(notes.notes)")
        #expect(result.history.epochs.count == 2)
        #expect(result.test != nil)
    }
}
