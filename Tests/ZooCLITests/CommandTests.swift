import Foundation
import Testing
import ZooKit

/// Runs the built `zoo` executable, which sits beside the test bundle in the build folder.
struct Zoo {
    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("zoo")
    }

    /// Runs `zoo arguments` and returns its exit status, standard output and standard error.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, error: String) {
        try run(executable, arguments, environment: environment)
    }

    /// Runs `executable arguments` (in `directory` when given), with `environment` set and
    /// `removing` unset.
    static func run(_ executable: URL, _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
                    removing: [String] = []) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        for name in removing { variables.removeValue(forKey: name) }
        process.environment = variables
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}

@Suite("zoo command", .serialized)
struct CommandTests {
    @Test("the executable was built beside the tests")
    func executableExists() {
        #expect(FileManager.default.isExecutableFile(atPath: Zoo.executable.path), "build with `swift build --build-tests` first")
    }

    @Test("--version names zoo's and oneDNN's versions")
    func version() throws {
        let result = try Zoo.run(["--version"])
        #expect(result.status == 0)
        #expect(result.output.contains("oneDNN 2."))
    }

    @Test("demo --synthetic trains and prints one line per epoch")
    func syntheticDemo() throws {
        let result = try Zoo.run(["demo", "--synthetic", "--epochs", "2", "--threads", "1"])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 2)
        #expect(lines.last?.hasPrefix("done: validation accuracy") == true)
    }

    @Test("the main job extends the shipped CIFAR-10 model to the reptiles, well above chance on old and new classes")
    func mainJob() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Zoo.run(["demo", "--out", folder.path])
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("epoch ") }.count == 60)
        #expect(lines.contains { $0.hasPrefix("test: 300 images") }, "\(result.output)")
        for file in ["report.md", "metrics.json", "history.csv", "checkpoints/best.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(file).path), "\(file)")
        }
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("metrics.json"))) as? [String: Any])
        let names = try #require(metrics["class_names"] as? [String]), confusion = try #require(metrics["confusion"] as? [[Int]])
        #expect(names.count == 15)
        let reptiles: Set = ["crocodile", "dinosaur", "lizard", "snake", "turtle"]
        func accuracy(_ isNew: Bool) -> Double {
            let rows = names.indices.filter { reptiles.contains(names[$0]) == isNew }
            return Double(rows.reduce(0) { $0 + confusion[$1][$1] }) / Double(rows.reduce(0) { $0 + confusion[$1].reduce(0, +) })
        }
        // Chance is 1/15; the sample's test images are 20 per class.
        #expect(accuracy(false) > 0.5, "old classes")
        #expect(accuracy(true) > 0.2, "new classes")
    }

    @Test("demo --json prints one JSON object with the contract's fractions on standard output, the epoch lines on standard error")
    func mainJobJSON() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-demo-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try Zoo.run(["demo", "--epochs", "4", "--json", "--out", folder.path])
        #expect(result.status == 0, "\(result.error)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any], "\(result.output)")
        for key in ["accuracy", "old_accuracy", "new_accuracy", "f1", "precision", "recall"] {
            let value = try #require(object[key] as? Double, "\(key)")
            #expect(value > 0 && value <= 1, "\(key) \(value)")
        }
        #expect(object["test_images"] as? Int == 300 && object["base"] as? String == TransferDemo.Recipe.sample.base)
        #expect(result.error.split(separator: "\n").filter { $0.hasPrefix("epoch ") }.count == 4, "\(result.error)")
        // What --json reports is what the run folder's metrics say.
        let test = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("metrics.json"))) as? [String: Any])
        for key in ["accuracy", "f1"] {
            #expect(abs((test[key] as? Double ?? -1) - (object[key] as? Double ?? -2)) < 1e-5, "\(key): \(test)")
        }
    }

    @Test("bench ops --json gives every case and pass with the contract's keys")
    func benchOperationsJSON() throws {
        let result = try Zoo.run(["bench", "ops", "--json", "--rounds", "1"])
        #expect(result.status == 0, "\(result.error)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        #expect(rows.count == 9)
        for row in rows {
            #expect(Set(row.keys) == ["case", "pass", "zoo_gflops", "onednn_gflops", "ratio"])
            #expect(["forward", "backward_data", "backward_weights"].contains(row["pass"] as? String ?? ""))
            let zoo = row["zoo_gflops"] as? Double ?? 0, bare = row["onednn_gflops"] as? Double ?? 0
            #expect(zoo > 0 && bare > 0)
            #expect(abs((row["ratio"] as? Double ?? 0) - zoo / bare) < 1e-9)
        }
    }

    @Test("bench models --json gives each case of each model with the contract's keys")
    func benchModelsJSON() throws {
        let result = try Zoo.run(["bench", "models", "--models", "mobilenetv2,resnet50", "--size", "32", "--batch", "2", "--steps", "1", "--threads", "1", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
        #expect(rows.map { "\($0["model"] ?? "") \($0["case"] ?? "")" } == [
            "mobilenetv2 infer", "mobilenetv2 train", "mobilenetv2 train_frozen80", "resnet50 infer", "resnet50 train", "resnet50 train_frozen80"])
        for row in rows {
            let isInference = row["case"] as? String == "infer"
            #expect(Set(row.keys) == Set(["model", "size", "batch", "case", "precision", "images_per_s", "peak_rss_mb", "peak_tensor_mb"]
                + (isInference ? ["gflop_per_s"] : [])))
            #expect(row["size"] as? Int == 32 && row["batch"] as? Int == 2 && row["precision"] as? String == "f32")
            #expect((row["images_per_s"] as? Double ?? 0) > 0 && (row["peak_rss_mb"] as? Double ?? 0) > 10)
            // The tensors alone: more than the weights (ResNet50's 24 million parameters are 94 MiB),
            // less than the whole process.
            let tensors = row["peak_tensor_mb"] as? Double ?? 0, process = row["peak_rss_mb"] as? Double ?? 0
            #expect(tensors < process && (row["model"] as? String != "resnet50" || tensors > 90), "tensors \(tensors) MB, process \(process) MB")
            if isInference {
                // The model's multiply-adds at 32x32 (ResNet50: 0.08 billion) times two times the rate.
                let gflops = try #require(row["gflop_per_s"] as? Double), rate = try #require(row["images_per_s"] as? Double)
                let perImage = gflops / rate
                #expect(perImage > 0.01 && perImage < 1, "\(perImage) GFLOP per 32x32 image")
            }
        }
    }

    @Test("--precision bf16 runs bf16 where the CPU has it natively, and where oneDNN is capped below it says so and runs f32")
    func precisionFallback() throws {
        let arguments = ["bench", "models", "--models", "resnet50", "--cases", "infer", "--size", "32", "--batch", "2", "--steps", "1",
                         "--threads", "1", "--json"]
        func precision(of result: (status: Int32, output: String, error: String)) throws -> String? {
            #expect(result.status == 0, "\(result.error)")
            let rows = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[String: Any]])
            return rows.first?["precision"] as? String
        }
        let capped = try Zoo.run(arguments + ["--precision", "bf16"], environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"])
        #expect(try precision(of: capped) == "f32")
        #expect(capped.error.contains("zoo: precision: bf16 is not native here, running f32: oneDNN runs avx2, without AVX512_BF16 or AMX"),
                "\(capped.error)")
        let automatic = try Zoo.run(arguments + ["--precision", "auto"])
        #expect(try precision(of: automatic) == (CPUCapabilities.hasNativeBFloat16 ? "bf16" : "f32"))
        #expect(automatic.error.contains("zoo: precision: auto chose"), "\(automatic.error)")
    }

    @Test("bad arguments are reported, not crashed on")
    func badArguments() throws {
        let result = try Zoo.run(["demo", "--threads", "0"])
        #expect(result.status != 0)
        #expect(result.error.contains("--threads must be at least 1"))
    }
}

@Suite("zoo model commands", .serialized)
struct ModelCommandTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-cli-\(UUID().uuidString)")

    @Test("models lists every architecture and the catalog")
    func models() throws {
        let result = try Zoo.run(["models", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        let names = (listing["architectures"] as? [[String: String]])?.compactMap { $0["name"] }
        #expect(names == Architecture.allCases.map(\.name))
        #expect(names?.filter(["vgg16", "resnet50", "googlenet", "densenet201", "inceptionv3", "mobilenetv2"].contains)
            == ["vgg16", "googlenet", "resnet50", "densenet201", "inceptionv3", "mobilenetv2"])
        #expect(names?.contains("cifar-resnet20") == true && names?.contains("cifar-preresnet110") == true)
        #expect(((listing["weight_sets"] as? [Any])?.count ?? 0) >= 30)
    }

    @Test("summary gives Keras's counts for a base with a new head")
    func summary() throws {
        let result = try Zoo.run(["summary", "densenet201", "--size", "96", "--head", "gap,dropout=0.5,dense", "--classes", "100", "--json"])
        #expect(result.status == 0, "\(result.error)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(json["total"] as? Int == 18_514_084)
        #expect(json["trainable"] as? Int == 18_285_028)
        #expect(json["non_trainable"] as? Int == 229_056)
        #expect((json["layers"] as? [Any])?.count == 707 + 3)
        let bad = try Zoo.run(["summary", "densenet201", "--head", "dropout=2,dense"])
        #expect(bad.status != 0)
        #expect(bad.error.contains("dropout"))
    }

    @Test("extract follows the file's top and writes logits or a named layer")
    func extract() throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        Initialization.seed(11)
        let model = MobileNetV2(flavor: .torchvision, top: .classifier(classes: 7))
        let weights = folder.appendingPathComponent("mobilenet.safetensors")
        try WeightExport.safetensors(model, to: weights)
        var generator = SeededGenerator(seed: 2)
        let images = (0..<(2 * 64 * 64 * 3)).map { _ in generator.nextUnitFloat() * 255 }
        let input = folder.appendingPathComponent("images.npy")
        try NPYFile.write(images, shape: [2, 64, 64, 3], to: input)

        let logitsFile = folder.appendingPathComponent("logits.npy")
        let result = try Zoo.run(["extract", "mobilenetv2", "--weights", weights.path, "--input", input.path, "--out", logitsFile.path,
                                  "--preprocess", "torch"])
        #expect(result.status == 0, "\(result.error)")
        let logits = try WeightFiles.open(logitsFile)
        #expect(logits.tensors.first?.shape == [2, 7])
        var preprocessed = images
        Preprocessing.torch.apply(nhwc: &preprocessed)
        let expected = try model(Tensor(nhwc: preprocessed, shape: [2, 64, 64, 3]), .inference()).array()
        let actual = try logits.floats("")
        #expect(zip(actual, expected).allSatisfy { abs($0 - $1) <= 1e-5 * (1 + abs($1)) })

        let mapFile = folder.appendingPathComponent("block.npy")
        let layer = try Zoo.run(["extract", "mobilenetv2", "--weights", weights.path, "--input", input.path, "--out", mapFile.path,
                                 "--layer", "block_3_expand_relu"])
        #expect(layer.status == 0, "\(layer.error)")
        #expect(try WeightFiles.open(mapFile).tensors.first?.shape == [2, 16, 16, 144])

        let unknown = try Zoo.run(["extract", "mobilenetv2", "--weights", weights.path, "--input", input.path, "--out", mapFile.path,
                                   "--layer", "block_3_nonsense"])
        #expect(unknown.status != 0)
        #expect(unknown.error.contains("no layer 'block_3_nonsense'"))
    }
}

/// A folder of PNG images in class folders, made for the test: stripes and squares.
func makeImageFolder(_ root: URL, perClass: Int, size: Int = 32) throws {
    var generator = SeededGenerator(seed: 5)
    let (values, labels) = SyntheticDemo.images(count: perClass * 4, size: size, generator: &generator)
    let plane = size * size
    for index in labels.indices where labels[index] < 3 {
        let folder = root.appendingPathComponent(SyntheticDemo.classNames[labels[index]])
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        for channel in 0..<3 {
            for pixel in 0..<plane {
                pixels[pixel * 3 + channel] = UInt8(min(max(values[(index * 3 + channel) * plane + pixel] * 60 + 128, 0), 255))
            }
        }
        try ImageCodec.writePNG(Image(width: size, height: size, pixels: pixels), to: folder.appendingPathComponent(String(format: "%04d.png", index)))
    }
}

@Suite("zoo finetune, evaluate, predict and data", .serialized)
struct TrainingCommandTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-train-cli-\(UUID().uuidString)")

    func finetune(_ out: URL) -> [String] {
        ["finetune", "mobilenetv2", "--flavor", "torchvision", "--data", folder.appendingPathComponent("images").path, "--size", "32",
         "--epochs", "4", "--batch", "8", "--unfreeze", "all", "--lr", "0.02", "--augment", "flip,padcrop=2", "--seed", "3",
         "--threads", "1", "--workers", "1", "--out", out.path]
    }

    /// The model tensors of a checkpoint.
    func weights(_ run: URL) throws -> [String: [Float]] {
        let reader = try WeightFiles.open(run.appendingPathComponent("checkpoints/last.safetensors"))
        return try Dictionary(uniqueKeysWithValues: reader.tensors.filter { $0.name.hasPrefix("model.") }.map { ($0.name, try reader.floats($0.name)) })
    }

    @Test("a run killed with SIGKILL and resumed ends with the weights of a run that was not interrupted")
    func killAndResume() throws {
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 24)
        defer { try? FileManager.default.removeItem(at: folder) }
        let straight = folder.appendingPathComponent("straight"), killed = folder.appendingPathComponent("killed")
        let whole = try Zoo.run(finetune(straight))
        #expect(whole.status == 0, "\(whole.error)")
        #expect(whole.output.split(separator: "\n").filter { $0.hasPrefix("epoch ") }.count == 4)

        let process = Process()
        process.executableURL = Zoo.executable
        process.arguments = finetune(killed)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Kill it once the first epoch's checkpoint is on disk (during the second epoch).
        let marker = killed.appendingPathComponent("checkpoints/last.json")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: marker.path), Date() < deadline, process.isRunning { usleep(20_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the run finished before it could be killed")
        let resumed = try Zoo.run(["finetune", "--resume", killed.path, "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.output.contains("resuming"))
        #expect(try weights(killed) == weights(straight))

        let evaluation = try Zoo.run(["evaluate", straight.appendingPathComponent("checkpoints/best.safetensors").path,
                                      "--data", folder.appendingPathComponent("images").path, "--json"])
        #expect(evaluation.status == 0, "\(evaluation.error)")
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(evaluation.output.utf8)) as? [String: Any])
        for key in ["accuracy", "top5", "per_class", "precision", "recall", "f1", "confusion"] { #expect(metrics[key] != nil, "\(key)") }
        #expect((metrics["confusion"] as? [[Int]])?.count == 3)

        let image = folder.appendingPathComponent("images/horizontal/0000.png")
        let prediction = try Zoo.run(["predict", straight.appendingPathComponent("checkpoints/best.safetensors").path, image.path, "--top", "2"])
        #expect(prediction.status == 0, "\(prediction.error)")
        #expect(["diagonal", "horizontal", "vertical"].contains { prediction.output.contains($0) }, "\(prediction.output)")
        #expect(prediction.output.split(separator: "\n").count == 3)

        let listing = try Zoo.run(["data", folder.appendingPathComponent("images").path, "--json"])
        let data = try #require(try JSONSerialization.jsonObject(with: Data(listing.output.utf8)) as? [String: Any])
        #expect(data["total"] as? Int == 72)
        #expect((data["classes"] as? [[String: Any]])?.map { $0["name"] as? String } == ["diagonal", "horizontal", "vertical"])
    }

    @Test("zoo quantize writes a checkpoint that evaluate and predict run in int8; int8 of a plain checkpoint, and in finetune, is refused")
    func quantize() throws {
        let images = folder.appendingPathComponent("images")
        try makeImageFolder(images, perClass: 8)
        defer { try? FileManager.default.removeItem(at: folder) }
        // The shipped CIFAR-10 model's classes, so that it can be evaluated on these images.
        for (old, new) in zip(["diagonal", "horizontal", "vertical"], ["airplane", "automobile", "bird"]) {
            try FileManager.default.moveItem(at: images.appendingPathComponent(old), to: images.appendingPathComponent(new))
        }
        let out = folder.appendingPathComponent("r20-int8.safetensors")
        let quantized = try Zoo.run(["quantize", "cifar-resnet20.zoo_cifar10", "--calibrate", images.path, "--images", "16", "--batch", "8",
                                     "--method", "minmax", "--out", out.path, "--threads", "1"])
        #expect(quantized.status == 0, "\(quantized.error)")
        #expect(quantized.output.contains("calibrated on 16 images (minmax)"), "\(quantized.output)")
        #expect(quantized.output.contains("conv1                       float                (reads the image (3 channels))"), "\(quantized.output)")
        #expect(quantized.output.range(of: #"layer3\.2\.conv2              int8   error  \d\.\d\d%  in u8"#, options: .regularExpression) != nil,
                "\(quantized.output)")
        #expect(quantized.output.contains("18 of 19 convolutions in int8"), "\(quantized.output)")
        let metadata = try WeightFiles.open(out).metadata.extra
        #expect(metadata["zoo.quantization"]?.contains("\"calibration_images\":16") == true)

        let evaluate = ["evaluate", out.path, "--data", images.path, "--json", "--threads", "1"]
        let int8 = try Zoo.run(evaluate + ["--precision", "int8"])
        #expect(int8.status == 0, "\(int8.error)")
        let float = try Zoo.run(evaluate)
        #expect(float.status == 0, "\(float.error)")
        for result in [int8, float] {
            let metrics = try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
            #expect((metrics["accuracy"] as? Double).map { (0...1).contains($0) } == true)
        }
        let bird = try #require(try FileManager.default.contentsOfDirectory(atPath: images.appendingPathComponent("bird").path).sorted().first)
        let prediction = try Zoo.run(["predict", out.path, images.appendingPathComponent("bird/" + bird).path, "--precision", "int8"])
        #expect(prediction.status == 0 && prediction.output.contains("%"), "\(prediction.error)")

        let features = folder.appendingPathComponent("features.npy")
        let extracted = try Zoo.run(["extract", "cifar-resnet20", "--weights", out.path, "--data", images.path, "--layer", "layer3.2.relu2",
                                     "--precision", "int8", "--threads", "1", "--out", features.path])
        #expect(extracted.status == 0, "\(extracted.error)")
        #expect(try WeightFiles.open(features).tensors.first?.shape == [24, 8, 8, 64])

        let plain = try Zoo.run(["evaluate", "cifar-resnet20.zoo_cifar10", "--data", images.path, "--precision", "int8"])
        if CPUCapabilities.hasNativeInt8 {
            #expect(plain.status != 0 && plain.error.contains("has no int8 calibration: make one with zoo quantize"), "\(plain.error)")
        }
        let capped = try Zoo.run(evaluate + ["--precision", "int8"], environment: ["ONEDNN_MAX_CPU_ISA": "AVX2"])
        #expect(capped.status == 0 && capped.error.contains("zoo: precision: int8 is not native here, running f32"), "\(capped.error)")
        let training = try Zoo.run(["finetune", "cifar-resnet20", "--weights", out.path, "--data", images.path, "--epochs", "1",
                                    "--precision", "int8", "--out", folder.appendingPathComponent("run").path])
        #expect(training.status != 0 && training.error.contains("--precision int8 is for inference"), "\(training.error)")
        let missing = try Zoo.run(["quantize", "cifar-resnet20.zoo_cifar10", "--out", out.path])
        #expect(missing.status != 0 && missing.error.contains("--calibrate needs data"), "\(missing.error)")
    }

    @Test("zoo quantize takes an architecture with a framework's weight file, and --keep-float, --max-layer-error, --method entropy")
    func quantizeFrameworkFile() throws {
        let images = folder.appendingPathComponent("images")
        try makeImageFolder(images, perClass: 8)
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = try Architecture(named: "cifar-resnet20").make(flavor: .torchvision, top: .classifier(classes: 3))
        let weights = folder.appendingPathComponent("r20-torch.safetensors")
        try SafetensorsFile.write(try model.namedParameters().map { (name: $0.name, shape: $0.parameter.shape, values: try $0.parameter.value.array()) },
                                  to: weights)
        let out = folder.appendingPathComponent("r20-int8.safetensors")
        let base = ["quantize", "cifar-resnet20", "--weights", weights.path, "--calibrate", images.path, "--images", "16", "--batch", "8",
                    "--threads", "1", "--out", out.path]
        let quantized = try Zoo.run(base + ["--method", "entropy", "--keep-float", "layer1.0.conv1", "--max-layer-error", "90"])
        #expect(quantized.status == 0, "\(quantized.error)")
        #expect(quantized.output.contains("calibrated on 16 images (entropy)"), "\(quantized.output)")
        #expect(quantized.output.range(of: #"layer1\.0\.conv1 +float  error  \d\.\d\d%  \(asked for\)"#, options: .regularExpression) != nil,
                "\(quantized.output)")
        #expect(quantized.output.contains("17 of 19 convolutions in int8"), "\(quantized.output)")
        let info = try Checkpoint.info(of: out)
        #expect(info.head == CheckpointInfo.frameworkClassifier && info.classNames == ["diagonal", "horizontal", "vertical"])

        let evaluated = try Zoo.run(["evaluate", out.path, "--data", images.path, "--precision", "int8", "--threads", "1"])
        #expect(evaluated.status == 0 && evaluated.output.contains("24 images: accuracy"), "\(evaluated.error)")
        let strict = try Zoo.run(base + ["--max-layer-error", "0.0001"])
        #expect(strict.status == 0 && strict.output.contains("0 of 19 convolutions in int8"), "\(strict.output)\(strict.error)")
        let unknown = try Zoo.run(base + ["--keep-float", "layer9.conv1"])
        #expect(unknown.status != 0 && unknown.error.contains("has no layer 'layer9.conv1'"), "\(unknown.error)")
    }

    @Test("a run's config stores the precision it resolved to, the run says it, and resuming keeps it (--precision is refused)")
    func precisionIsStored() throws {
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 8)
        defer { try? FileManager.default.removeItem(at: folder) }
        let run = folder.appendingPathComponent("mixed")
        var arguments = finetune(run) + ["--precision", "auto"]
        arguments[arguments.firstIndex(of: "--epochs")! + 1] = "1"
        let result = try Zoo.run(arguments)
        #expect(result.status == 0, "\(result.error)")
        let expected = CPUCapabilities.hasNativeBFloat16 ? "bf16" : "f32"
        #expect(result.output.contains("precision: \(expected) (auto chose \(expected)"), "\(result.output)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("config.json"))) as? [String: Any])
        #expect(config["precision"] as? String == expected)
        let refused = try Zoo.run(["finetune", "--resume", run.path, "--precision", "f32"])
        #expect(refused.status != 0 && refused.error.contains("a resumed run keeps the precision it started with"), "\(refused.error)")
    }

    @Test("without --weights, freezing random layers is refused with the weight sets to pull, unless --allow-random-frozen")
    func randomFrozen() throws {
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        func run(_ extra: [String], _ out: String) throws -> (status: Int32, output: String, error: String) {
            try Zoo.run(["finetune", "cifar-resnet20", "--flavor", "torchvision", "--data", folder.appendingPathComponent("images").path, "--size", "32",
                         "--epochs", "1", "--batch", "4", "--validation", "0", "--threads", "1", "--workers", "1",
                         "--out", folder.appendingPathComponent(out).path] + extra)
        }
        let refused = try run(["--unfreeze", "20%"], "refused")
        #expect(refused.status != 0)
        #expect(refused.error.contains("--unfreeze 20% keeps part of its base frozen"), "\(refused.error)")
        #expect(refused.error.contains("zoo pull cifar-resnet20.") && refused.error.contains("--allow-random-frozen"), "\(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("refused").path))
        let allowed = try run(["--unfreeze", "20%", "--allow-random-frozen"], "allowed")
        #expect(allowed.status == 0, "\(allowed.error)")
        let again = try run(["--unfreeze", "all"], "allowed")
        #expect(again.status != 0)
        #expect(again.error.contains("zoo finetune --resume \(folder.appendingPathComponent("allowed").path)"), "\(again.error)")
    }

    @Test("--class-weight, --sampler and --schedule onecycle reach config.json; a class-weight file naming an unknown class is refused, naming it")
    func classWeightsAndSampler() throws {
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        func run(_ extra: [String], _ out: String) throws -> (status: Int32, output: String, error: String) {
            try Zoo.run(["finetune", "cifar-resnet20", "--flavor", "torchvision", "--data", folder.appendingPathComponent("images").path, "--size", "32",
                         "--unfreeze", "all", "--epochs", "1", "--batch", "4", "--validation", "0", "--threads", "1", "--workers", "1",
                         "--out", folder.appendingPathComponent(out).path] + extra)
        }
        let trained = try run(["--class-weight", "balanced", "--sampler", "balanced", "--schedule", "onecycle:0.25"], "balanced")
        #expect(trained.status == 0, "\(trained.error)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("balanced/config.json"))) as? [String: Any])
        #expect(config["classWeighting"] as? String == "balanced")
        #expect((config["classWeights"] as? [Double])?.count == (config["classNames"] as? [String])?.count)
        #expect((config["data"] as? [String: Any])?["sampler"] as? String == "balanced")
        #expect((config["schedule"] as? [String: Any])?["name"] as? String == "onecycle:0.25")

        let file = folder.appendingPathComponent("weights.json")
        try Data(#"{"zebra": 3}"#.utf8).write(to: file)
        let refused = try run(["--class-weight", file.path], "refused")
        #expect(refused.status != 0 && refused.error.contains(file.path) && refused.error.contains("'zebra'"), "\(refused.error)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("refused/config.json").path))
        let sampler = try run(["--sampler", "weighted"], "sampler")
        #expect(sampler.status != 0 && sampler.error.contains("uniform"), "\(sampler.error)")
    }

    @Test("zoo sweep runs trials as zoo finetune runs ({NAME} filled in, other parameters as flags), resumes with more trials, and names a bad space file")
    func sweep() throws {
        try makeImageFolder(folder.appendingPathComponent("images"), perClass: 4)
        defer { try? FileManager.default.removeItem(at: folder) }
        let space: [String: Any] = [
            "arguments": ["cifar-resnet20", "--flavor", "torchvision", "--data", folder.appendingPathComponent("images").path, "--size", "32",
                          "--unfreeze", "all", "--epochs", "1", "--batch", "4", "--validation", "0.25", "--workers", "1",
                          "--head", "gap,dropout={dropout},dense"],
            "parameters": ["lr": ["log_uniform": [0.001, 0.1]], "dropout": ["uniform": [0, 0.5]], "optimizer": ["choice": ["sgd", "adam"]],
                           "decoupled-weight-decay": ["choice": [true, false]]],
        ]
        let file = folder.appendingPathComponent("space.json")
        try JSONSerialization.data(withJSONObject: space).write(to: file)
        let out = folder.appendingPathComponent("sweep")
        let first = try Zoo.run(["sweep", file.path, "--trials", "2", "--out", out.path, "--seed", "3", "--threads", "1"])
        #expect(first.status == 0, "\(first.error)")
        #expect(first.output.contains("trial 2 of 2: decoupled-weight-decay=") && first.output.contains("best: trial "), "\(first.output)")
        let config = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("trial-001/config.json"))) as? [String: Any])
        let results = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("results.json"))) as? [String: Any])
        let trials = try #require(results["trials"] as? [[String: Any]])
        let values = try #require(trials.first?["values"] as? [String: Any])
        #expect(config["head"] as? String == "gap,dropout=\(try #require(values["dropout"] as? Double)),dense")
        let optimizer = try #require(config["optimizer"] as? [String: Any])
        #expect(optimizer["name"] as? String == values["optimizer"] as? String)
        #expect(optimizer["decoupled"] as? Bool == values["decoupled-weight-decay"] as? Bool)
        #expect(abs((optimizer["learningRate"] as? Double ?? 0) - (values["lr"] as? Double ?? 1)) < 1e-6)

        let more = try Zoo.run(["sweep", "--resume", out.path, "--trials", "3", "--threads", "1"])
        #expect(more.status == 0, "\(more.error)")
        #expect(!more.output.contains("trial 1 of 3") && more.output.contains("trial 3 of 3"), "\(more.output)")
        #expect(try String(contentsOf: out.appendingPathComponent("results.csv"), encoding: .utf8).split(separator: "\n").count == 4)

        let again = try Zoo.run(["sweep", file.path, "--trials", "2", "--out", out.path])
        #expect(again.status != 0 && again.error.contains("zoo sweep --resume \(out.path)"), "\(again.error)")
        try Data(#"{"parameters": {"lr": {"log_uniform": [0, 1]}}}"#.utf8).write(to: file)
        let bad = try Zoo.run(["sweep", file.path, "--trials", "2", "--out", folder.appendingPathComponent("bad").path])
        #expect(bad.status != 0 && bad.error.contains(file.path) && bad.error.contains("log_uniform needs low > 0"), "\(bad.error)")
    }
}

@Suite("zoo extract and training on saved features", .serialized)
struct FeatureCommandTests {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("zoo-features-cli-\(UUID().uuidString)")

    /// A randomly initialized CIFAR ResNet-20 without a classifier, saved as safetensors.
    func makeWeights() throws -> URL {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        Initialization.seed(4)
        let model = try Architecture(named: "cifar-resnet20").make(flavor: .torchvision, top: .features(pooling: nil), inputSize: 32)
        let url = folder.appendingPathComponent("resnet20.safetensors")
        try WeightExport.safetensors(model, to: url)
        return url
    }

    @Test("features of a dataset equal those of the same images given as an array")
    func dataEqualsInput() throws {
        let weights = try makeWeights()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        try makeImageFolder(images, perClass: 5)
        let common = ["extract", "cifar-resnet20", "--weights", weights.path, "--layer", "layer2.0.relu1,output", "--preprocess", "torch", "--batch", "4"]
        let fromData = folder.appendingPathComponent("data.h5")
        let data = try Zoo.run(common + ["--data", images.path, "--size", "32", "--out", fromData.path])
        #expect(data.status == 0, "\(data.error)")
        let dataFile = try FeatureFile.open(fromData)
        #expect(dataFile.header.classNames == ["diagonal", "horizontal", "vertical"])
        #expect(dataFile.header.layers.map(\.shape) == [[16, 16, 32], [8, 8, 64]])

        // The same images, decoded in the file's sample order, as one array.
        var pixels: [Float] = []
        for id in dataFile.sampleIDs { pixels += try ImageCodec.decode(contentsOf: URL(fileURLWithPath: id)).floatImage.values }
        let array = folder.appendingPathComponent("images.npy")
        try NPYFile.write(pixels, shape: [dataFile.sampleIDs.count, 32, 32, 3], to: array)
        let fromInput = folder.appendingPathComponent("input.safetensors")
        let input = try Zoo.run(common + ["--input", array.path, "--out", fromInput.path])
        #expect(input.status == 0, "\(input.error)")
        let inputFile = try FeatureFile.open(fromInput)
        #expect(inputFile.labels.allSatisfy { $0 == -1 })
        for layer in ["layer2.0.relu1", "output"] {
            let (a, shapeA) = try dataFile.features(layer), (b, shapeB) = try inputFile.features(layer)
            #expect(shapeA == shapeB)
            #expect(a == b, "\(layer)")
            #expect(a.contains { $0 != 0 })
        }
    }

    @Test("an extraction killed with SIGKILL continues with the same command and ends with the file of one that was not")
    func killAndResume() throws {
        let weights = try makeWeights()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        try makeImageFolder(images, perClass: 40)
        func command(_ out: URL) -> [String] {
            ["extract", "cifar-resnet20", "--weights", weights.path, "--data", images.path, "--size", "32", "--layer", "layer3.2.relu2",
             "--batch", "2", "--threads", "1", "--workers", "1", "--out", out.path]
        }
        let straight = folder.appendingPathComponent("straight.h5"), killed = folder.appendingPathComponent("killed.h5")
        let whole = try Zoo.run(command(straight))
        #expect(whole.status == 0, "\(whole.error)")

        let process = Process()
        process.executableURL = Zoo.executable
        process.arguments = command(killed)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let progress = URL(fileURLWithPath: killed.path + ".progress")
        let deadline = Date().addingTimeInterval(120)
        while !FileManager.default.fileExists(atPath: progress.path), Date() < deadline, process.isRunning { usleep(5_000) }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal, "the extraction finished before it could be killed")
        #expect(!FileManager.default.fileExists(atPath: killed.path))
        #expect(FileManager.default.fileExists(atPath: killed.path + ".partial"))

        let other = try Zoo.run(command(killed).map { $0 == "2" ? "3" : $0 })
        #expect(other.status != 0)
        #expect(other.error.contains("batch was 2, now 3"), "\(other.error)")
        let resumed = try Zoo.run(command(killed))
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("continuing an unfinished extraction"))
        #expect(try Data(contentsOf: killed) == Data(contentsOf: straight))
        #expect(!FileManager.default.fileExists(atPath: progress.path))
        let again = try Zoo.run(command(killed))
        #expect(again.status != 0)
        #expect(again.error.contains("already exists"))
    }

    @Test("a head trained on saved features is one checkpoint that evaluates and predicts on images as it did on the features")
    func trainOnFeatures() throws {
        let weights = try makeWeights()
        defer { try? FileManager.default.removeItem(at: folder) }
        let images = folder.appendingPathComponent("images")
        try makeImageFolder(images.appendingPathComponent("train"), perClass: 16)
        try makeImageFolder(images.appendingPathComponent("test"), perClass: 6)
        for split in ["train", "test"] {
            let result = try Zoo.run(["extract", "cifar-resnet20", "--weights", weights.path, "--data", images.path, "--split", split,
                                      "--size", "32", "--out", folder.appendingPathComponent("\(split).npy").path])
            #expect(result.status == 0, "\(result.error)")
        }
        let run = folder.appendingPathComponent("run")
        let train = try Zoo.run(["finetune", "--features", folder.appendingPathComponent("train.npy").path,
                                 "--test-features", folder.appendingPathComponent("test.npy").path, "--head", "gap,dense",
                                 "--optimizer", "adam", "--lr", "0.01", "--epochs", "20", "--batch", "8", "--validation", "0", "--out", run.path])
        #expect(train.status == 0, "\(train.error)")
        #expect(train.output.contains("training on saved features"))
        let metrics = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("metrics.json"))) as? [String: Any])
        let checkpoint = run.appendingPathComponent("checkpoints/best.safetensors")
        let evaluation = try Zoo.run(["evaluate", checkpoint.path, "--data", images.path, "--json"])
        #expect(evaluation.status == 0, "\(evaluation.error)")
        let onImages = try #require(try JSONSerialization.jsonObject(with: Data(evaluation.output.utf8)) as? [String: Any])
        #expect(onImages["accuracy"] as? Double == metrics["accuracy"] as? Double)
        let loss = try #require(onImages["loss"] as? Double), featureLoss = try #require(metrics["loss"] as? Double)
        #expect(abs(loss - featureLoss) < 1e-4 * max(1, loss))
        // The head learns: the training loss falls well below that of the first epoch.
        let history = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("history.json"))) as? [String: Any])
        let losses = try #require(history["epochs"] as? [[String: Any]]).compactMap { $0["train_loss"] as? Double }
        #expect(losses.count == 20 && losses.last! < 0.8 * losses.first!, "\(losses)")
        let prediction = try Zoo.run(["predict", checkpoint.path, images.appendingPathComponent("test/diagonal/0002.png").path])
        #expect(prediction.status == 0, "\(prediction.error)")
        #expect(["diagonal", "horizontal", "vertical"].contains { prediction.output.contains($0) }, "\(prediction.output)")

        let unfreeze = try Zoo.run(["finetune", "--features", folder.appendingPathComponent("train.npy").path, "--unfreeze", "20%",
                                    "--out", folder.appendingPathComponent("run2").path])
        #expect(unfreeze.status != 0)
        #expect(unfreeze.error.contains("whole base frozen"))
    }
}
