import Foundation

/// What can go wrong finding, fetching or checking a weight set. Each case names the weight set
/// or file it is about and what was expected; `description` is the sentence `zoo` prints.
public enum CatalogError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No weight set of that name; `suggestions` are names that share its architecture.
    case unknownWeightSet(name: String, suggestions: [String])
    /// A manifest that does not decode as a ``WeightSet``.
    case invalidManifest(file: String, reason: String)
    /// The manifest names an architecture that no one has registered.
    case unknownArchitecture(weightSet: String, architecture: String, reason: String)
    /// The weight set's file does not ship with zoo.
    case notBundled(weightSet: String)
    /// The weight set's file should ship with zoo but is neither built in nor in the catalog folder.
    case bundledFileMissing(weightSet: String, path: String)
    /// A file whose digest is not the one its weight set states.
    case checksumMismatch(file: String, weightSet: String, algorithm: WeightSet.Checksum.Algorithm, expected: String, actual: String)
    /// A downloadable weight set that has not been pulled into the cache yet.
    case notCached(weightSet: String, file: String)
    /// An argument that is neither a file nor a weight set.
    case noSuchFileOrWeightSet(String)
    /// A manifest URL that cannot be downloaded with HTTP.
    case notHTTP(weightSet: String, url: String?)
    /// A download that failed or stopped early.
    case download(url: String, reason: String)
    /// A sample of the catalog that does not exist.
    case unknownSample(name: String, known: [String])
    /// A file that could not be read.
    case unreadable(path: String, reason: String)
    /// A file or folder that could not be written.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownWeightSet(name, suggestions):
            return "no weight set named '\(name)'" + (suggestions.isEmpty ? "; `zoo models` lists them" : "; did you mean \(suggestions.joined(separator: ", "))?")
        case let .invalidManifest(file, reason):
            return "\(file): not a valid weight-set manifest: \(reason)"
        case let .unknownArchitecture(weightSet, architecture, reason):
            return "\(weightSet): its architecture '\(architecture)' is not registered (\(reason))"
        case let .notBundled(weightSet):
            return "\(weightSet) does not ship with zoo; `zoo pull \(weightSet)` downloads it"
        case let .bundledFileMissing(weightSet, path):
            return "\(weightSet): \(path) is missing from the catalog folder"
        case let .checksumMismatch(file, weightSet, algorithm, expected, actual):
            return "\(file): \(algorithm.rawValue) is \(actual), but \(weightSet) states \(expected); the file is damaged or not the published one"
        case let .notCached(weightSet, file):
            return "weight set \(weightSet) is not in the cache (\(file)); run `zoo pull \(weightSet)` first"
        case let .noSuchFileOrWeightSet(argument):
            return "\(argument): no such file, and no weight set of that name (zoo models lists them)"
        case let .notHTTP(weightSet, url):
            return "\(weightSet): the manifest's URL '\(url ?? "none")' is not an http(s) URL"
        case let .download(url, reason):
            return "\(url): \(reason)"
        case let .unknownSample(name, known):
            return "no sample named '\(name)' in zoo's catalog; known: \(known.joined(separator: ", "))"
        case let .unreadable(path, reason):
            return "\(path): could not be read: \(reason)"
        case let .unwritable(path, reason):
            return "\(path): could not be written (\(reason)); set ZOO_HOME to a writable folder"
        }
    }
}
