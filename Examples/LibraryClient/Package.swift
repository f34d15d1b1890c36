// swift-tools-version: 6.0
// Programs outside zoo that use zoo as a library, through its public API only: it depends
// on the zoo package by path, as any other Swift package would by URL.
import PackageDescription

let package = Package(
    name: "LibraryClient",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "zoo", path: "../..")],
    targets: [
        .executableTarget(name: "LibraryClient", dependencies: [.product(name: "ZooKit", package: "zoo")]),
        // EXPERIMENTS.md's experiment 5: a small CNN of its own, trained from scratch.
        .executableTarget(name: "FromScratch", dependencies: [.product(name: "ZooKit", package: "zoo")]),
    ],
    swiftLanguageModes: [.v6]
)
