@_exported import ZooCatalog
@_exported import ZooCommands
@_exported import ZooData
@_exported import ZooModels
@_exported import ZooNN
@_exported import ZooPlots
@_exported import ZooTensor
@_exported import ZooTraining
@_exported import ZooWeights

/// zoo's version and the versions of the libraries it runs on.
public enum ZooVersion {
    /// zoo's own version.
    public static let zoo = "0.1.0"

    /// One line: zoo's version and oneDNN's.
    public static var description: String { "\(zoo) (oneDNN \(Engine.oneDNNVersion))" }
}
