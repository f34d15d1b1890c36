import ArgumentParser
import Foundation
import ZooKit

/// `zoo inspect FILE [--json]`: lists the tensors of a weight file.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tensors of a weight file: format, writer versions, and each tensor's name, dtype and shape.",
        discussion: """
            Reads Keras HDF5 (.h5), Keras 3 .weights.h5 and .keras archives, torch.save files \
            (.pt/.pth, zip and legacy), safetensors, .npy and .npz. The format is detected from \
            the file's content. Nothing in the file is executed.
            """
    )

    @Argument(help: "The weight file to inspect.")
    var file: String

    @Flag(help: "Print JSON: {\"format\": ..., \"tensors\": [{\"name\": ..., \"dtype\": ..., \"shape\": [...]}, ...]}.")
    var json = false

    func run() throws {
        let report: String
        do {
            report = try WeightInspector.report(for: URL(fileURLWithPath: file), json: json)
        } catch {
            FileHandle.standardError.write(Data("zoo inspect: \(error)\n".utf8))
            throw ExitCode.failure
        }
        print(report)
    }
}
