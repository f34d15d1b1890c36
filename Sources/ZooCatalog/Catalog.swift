import Foundation

/// The weight sets zoo knows, the files that ship with it, and where to find them: the
/// manifests, class lists, bundled weights and demo samples of `zoo/` are built into the
/// library, so nothing here needs the source tree.
public enum Catalog {
    /// Every weight set, sorted by name.
    ///
    /// The manifests are zoo's own, built in, and a test decodes and validates every one, so a
    /// manifest that does not decode here is a build of zoo that skipped its tests: it stops
    /// the program with the file's name and the reason rather than drop the weight set quietly.
    public static let weightSets: [WeightSet] = {
        EmbeddedFiles.byPath.keys.filter { !$0.contains("/") && $0.hasSuffix(".json") }.sorted().map { file in
            do {
                return try manifest(Data(EmbeddedFiles.bytes(file)!), file: file)
            } catch {
                preconditionFailure("zoo's built-in manifest \(error)")
            }
        }.sorted { $0.name < $1.name }
    }()

    /// Decodes the manifest `data`, read from `file`; throws naming the file and the field that
    /// did not decode.
    public static func manifest(_ data: Data, file: String) throws -> WeightSet {
        do {
            return try JSONDecoder().decode(WeightSet.self, from: data)
        } catch let error as DecodingError {
            throw CatalogError.invalidManifest(file: file, reason: describe(error))
        } catch {
            throw CatalogError.invalidManifest(file: file, reason: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [CodingKey]) -> String { keys.isEmpty ? "the top level" : keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case let .keyNotFound(key, context): return "\(path(context.codingPath + [key])) is missing"
        case let .typeMismatch(_, context), let .valueNotFound(_, context), let .dataCorrupted(context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }

    /// `$ZOO_CATALOG`: a catalog folder (a `zoo/` folder of zoo's repository) to take bundled
    /// weights and samples from instead of the built-in copies; `nil` when unset.
    public static var overrideFolder: URL? {
        guard let path = ProcessInfo.processInfo.environment["ZOO_CATALOG"], !path.isEmpty else { return nil }
        return URL(fileURLWithPath: (path as NSString).expandingTildeInPath)
    }

    /// The verified file of a weight set that ships with zoo: from `folder` when one is given
    /// (default: ``overrideFolder``), else the built-in copy, written once into `cache`.
    /// Either way the file is checked against the manifest's checksum before it is returned.
    public static func bundledFile(_ set: WeightSet, in folder: URL? = Catalog.overrideFolder, cache: WeightCache = WeightCache()) throws -> URL {
        guard let path = set.bundled else { throw CatalogError.notBundled(weightSet: set.name) }
        guard let folder else { return try extractBundledFile(set, path: path, cache: cache) }
        let file = folder.appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: file.path) else {
            throw CatalogError.bundledFileMissing(weightSet: set.name, path: file.path)
        }
        try set.verify(file)
        return file
    }

    /// The names of the samples that ship with zoo (`cifar15`).
    public static var sampleNames: [String] {
        Set(EmbeddedFiles.paths(under: "samples").compactMap { $0.split(separator: "/").dropFirst().first.map(String.init) }).sorted()
    }

    /// The folder of the sample `name` (`samples/<name>/` of the catalog: `train/` and `test/`
    /// class folders): in `folder` when one is given (default: ``overrideFolder``), else the
    /// built-in copy written out once into `cache`.
    public static func sampleFolder(_ name: String, in folder: URL? = Catalog.overrideFolder, cache: WeightCache = WeightCache()) throws -> URL {
        if let folder {
            let sample = folder.appendingPathComponent("samples").appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: sample.path, isDirectory: &isFolder), isFolder.boolValue else {
                throw CatalogError.unknownSample(name: "\(name) (looked for \(sample.path))", known: sampleNames)
            }
            return sample
        }
        guard let extracted = try extractFolder("samples/\(name)", cache: cache) else {
            throw CatalogError.unknownSample(name: name, known: sampleNames)
        }
        return extracted
    }

    /// The weight set called `name` (`resnet50.keras_imagenet`).
    public static func weightSet(named name: String) throws -> WeightSet {
        guard let set = weightSets.first(where: { $0.name == name }) else {
            let stem = name.split(separator: ".").first.map(String.init) ?? name
            throw CatalogError.unknownWeightSet(name: name, suggestions: weightSets.map(\.name).filter { $0.hasPrefix(stem) })
        }
        return set
    }

    /// A weight file named by its path, or by a weight set that ships with zoo or was already
    /// pulled into `cache`, with that weight set.
    public static func localFile(_ argument: String, cache: WeightCache = WeightCache()) throws -> (URL, WeightSet?) {
        let path = (argument as NSString).expandingTildeInPath
        if FileManager.default.fileExists(atPath: path) { return (URL(fileURLWithPath: path), nil) }
        guard let set = weightSets.first(where: { $0.name == argument }) else { throw CatalogError.noSuchFileOrWeightSet(argument) }
        if set.bundled != nil { return (try bundledFile(set, cache: cache), set) }
        let file = cache.file(for: set)
        guard FileManager.default.fileExists(atPath: file.path) else { throw CatalogError.notCached(weightSet: set.name, file: file.path) }
        return (file, set)
    }
}
