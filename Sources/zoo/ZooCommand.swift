import ArgumentParser
import ZooKit

/// The `zoo` command: a thin layer that parses arguments and calls ZooKit.
@main
struct ZooCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zoo",
        abstract: "ImageNet-class CNNs in Swift: weight import, fine-tuning and feature extraction.",
        version: ZooVersion.description,
        subcommands: []
    )
}
