// swift-tools-version: 6.0
// zoo: ImageNet-class CNNs in Swift on Linux, with weight import and transfer learning.
//
// The dependency direction is strictly downward (docs/ARCHITECTURE.md has the rules):
//   ZooTensor (tensors, oneDNN operations, autograd, pixel preprocessing)
//     <- ZooNN (modules with hierarchical parameter names, layers)
//     <- ZooModels (the model families, the registry, Keras layer classes, weight maps; no data)
//     <- ZooCatalog (the weight-set manifests, downloads and checksums, and the files zoo
//        ships, built into the binary through CZooCatalogFiles)
//     <- ZooTraining (optimizers, the fine-tuning loop, checkpoints, extraction, evaluation)
//     <- ZooCommands (what the `zoo` command does: jobs, console progress, demos, benchmarks)
//   ZooWeights (weight-file readers and writers) stands beside them, and ZooData (datasets,
//   image decoding, transforms, the loader) builds on ZooTensor and ZooWeights.
//   ZooKit re-exports everything (the only @_exported imports); `zoo` is a thin command line
//   over ZooKit.
import PackageDescription

let package = Package(
    name: "zoo",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "ZooKit", targets: ["ZooKit"]),
        .library(name: "ZooTensor", targets: ["ZooTensor"]),
        .library(name: "ZooNN", targets: ["ZooNN"]),
        .library(name: "ZooWeights", targets: ["ZooWeights"]),
        .library(name: "ZooData", targets: ["ZooData"]),
        .library(name: "ZooModels", targets: ["ZooModels"]),
        .library(name: "ZooCatalog", targets: ["ZooCatalog"]),
        .library(name: "ZooPlots", targets: ["ZooPlots"]),
        .library(name: "ZooTraining", targets: ["ZooTraining"]),
        .executable(name: "zoo", targets: ["zoo"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // SHA-256 and MD5 for checking weight files.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // System libraries from Debian packages (installed by scripts/bootstrap).
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CCairo", path: "Sources/CCairo"),

        // JPEG and PNG through libjpeg-turbo and libpng, in C: both report errors by longjmp.
        .target(name: "CImageIO", linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]),

        .target(name: "ZooTensor", dependencies: ["CDNNL"]),
        .target(name: "ZooNN", dependencies: ["ZooTensor"]),
        .target(name: "ZooWeights", dependencies: ["CHDF5", "CZlib"]),
        .target(name: "ZooData", dependencies: ["ZooTensor", "ZooWeights", "CImageIO"]),
        .target(name: "ZooModels", dependencies: ["ZooTensor", "ZooNN", "ZooWeights"]),
        // The files of zoo/ that a binary needs (manifests, class lists, bundled weights, the demo
        // sample), compiled in with C23 #embed; scripts/embed-catalog lists them.
        .target(name: "CZooCatalogFiles"),
        .target(name: "ZooCatalog", dependencies: ["ZooTensor", "ZooModels", "CZooCatalogFiles", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "ZooPlots", dependencies: ["CCairo"]),
        .target(name: "ZooTraining", dependencies: ["ZooTensor", "ZooNN", "ZooData", "ZooModels", "ZooCatalog", "ZooWeights", "ZooPlots"]),
        // What the `zoo` command does, as library calls: extraction jobs, console progress, demos,
        // benchmarks.
        .target(name: "ZooCommands", dependencies: ["ZooTensor", "ZooNN", "ZooWeights", "ZooData", "ZooModels", "ZooCatalog", "ZooPlots", "ZooTraining"]),
        .target(name: "ZooKit", dependencies: ["ZooTensor", "ZooNN", "ZooWeights", "ZooData", "ZooModels", "ZooCatalog", "ZooPlots", "ZooTraining",
                                               "ZooCommands"]),
        .executableTarget(
            name: "zoo",
            dependencies: ["ZooKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // What two test targets share: the converters' parity formula.
        .target(name: "ZooTestSupport", path: "Tests/ZooTestSupport"),
        .testTarget(name: "ZooTensorTests", dependencies: ["ZooTensor"]),
        .testTarget(name: "ZooNNTests", dependencies: ["ZooTensor", "ZooNN"]),
        // ZooCommands for the synthetic demo's images, which several training tests train on.
        .testTarget(name: "ZooTrainingTests",
                    dependencies: ["ZooTensor", "ZooNN", "ZooWeights", "ZooData", "ZooModels", "ZooCatalog", "ZooTraining", "ZooCommands",
                                   "ZooTestSupport"],
                    resources: [.copy("StepReferences")]),
        .testTarget(name: "ZooModelsTests", dependencies: ["ZooTensor", "ZooNN", "ZooWeights", "ZooModels", "ZooTestSupport"],
                    resources: [.copy("References")]),
        .testTarget(name: "ZooCatalogTests", dependencies: ["ZooNN", "ZooModels", "ZooCatalog"]),
        .testTarget(name: "ZooDataTests", dependencies: ["ZooTensor", "ZooWeights", "ZooData", "ZooTestSupport"], resources: [.copy("ResizeReferences")]),
        .testTarget(name: "ZooPlotsTests", dependencies: ["ZooPlots"]),
        .testTarget(
            name: "ZooWeightsTests",
            dependencies: ["ZooWeights"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "ZooCLITests", dependencies: ["ZooKit"]),
    ],
    swiftLanguageModes: [.v6]
)
