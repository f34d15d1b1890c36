import Foundation

/// `zoo/` of the source tree these tests were built from.
let catalogFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("zoo")

/// The paths inside `zoo/` that scripts/embed-catalog builds in: the manifests (not the schema),
/// the class lists, the bundled weights and the samples.
func catalogFilesToBuildIn() throws -> [String] {
    let manager = FileManager.default
    var paths = try manager.contentsOfDirectory(atPath: catalogFolder.path).filter { $0.hasSuffix(".json") && $0 != "schema.json" }
    for folder in ["classes", "weights", "samples"] {
        guard let walker = manager.enumerator(atPath: catalogFolder.appendingPathComponent(folder).path) else { continue }
        for case let path as String in walker {
            var isFolder: ObjCBool = false
            if manager.fileExists(atPath: catalogFolder.appendingPathComponent(folder).appendingPathComponent(path).path, isDirectory: &isFolder),
               !isFolder.boolValue {
                paths.append(folder + "/" + path)
            }
        }
    }
    return paths.sorted()
}

/// A JSON value as the file spells it, for comparing documents key for key and validating them.
indirect enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    static func parse(_ data: Data) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: data) }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return "\(value)"
        case .number(let value): return value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
        case .string(let value): return "\"\(value)\""
        case .array(let values): return "[" + values.map(\.description).joined(separator: ", ") + "]"
        case .object(let members): return "{" + members.keys.sorted().map { "\"\($0)\": \(members[$0]!)" }.joined(separator: ", ") + "}"
        }
    }
}
