import Foundation

/// Renders what `zoo inspect` prints: a table for people, or JSON for programs.
public enum WeightInspector {
    /// Opens `url` and renders it as a table, or as JSON when `json` is true.
    public static func report(for url: URL, json: Bool) throws -> String {
        let reader = try WeightFiles.open(url)
        return json ? self.json(reader) : table(reader)
    }

    /// The total number of elements of all tensors (saturating, never trapping).
    public static func parameterCount(_ reader: any WeightReader) -> Int {
        reader.tensors.reduce(0) { total, tensor in
            let (sum, overflow) = total.addingReportingOverflow(tensor.elementCount)
            return overflow ? Int.max : sum
        }
    }

    /// Format, writer versions, then one aligned row per tensor (name, dtype, shape) and totals.
    public static func table(_ reader: any WeightReader) -> String {
        var lines: [String] = []
        lines.append("File:    \(reader.url.path)")
        lines.append("Format:  \(reader.format.rawValue)")
        let metadata = reader.metadata
        if !metadata.writerVersions.isEmpty {
            let versions = metadata.writerVersions.keys.sorted().map { "\($0) \(metadata.writerVersions[$0] ?? "")" }
            lines.append("Writer:  \(versions.joined(separator: ", "))")
        }
        if let layers = metadata.kerasLayerNames {
            lines.append("Layers:  \(layers.count) in layer_names")
        }
        if let config = metadata.kerasModelConfig {
            lines.append("Config:  Keras model configuration (\(config.utf8.count) bytes of JSON)")
        }
        for key in metadata.extra.keys.sorted() {
            lines.append("Meta:    \(key) = \(abbreviated(metadata.extra[key] ?? "", limit: 80))")
        }
        lines.append("")

        let rows = reader.tensors.map { tensor in
            (printable(tensor.name), tensor.dtype.rawValue, "[" + tensor.shape.map(String.init).joined(separator: ", ") + "]")
        }
        let nameWidth = max(4, rows.map(\.0.count).max() ?? 0)
        let dtypeWidth = max(5, rows.map(\.1.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String {
            text + String(repeating: " ", count: max(0, width - text.count))
        }
        lines.append("\(pad("NAME", nameWidth))  \(pad("DTYPE", dtypeWidth))  SHAPE")
        for (name, dtype, shape) in rows {
            lines.append("\(pad(name, nameWidth))  \(pad(dtype, dtypeWidth))  \(shape)")
        }
        lines.append("")
        let count = reader.tensors.count
        lines.append("\(count) tensor\(count == 1 ? "" : "s"), \(grouped(parameterCount(reader))) parameters")
        return lines.joined(separator: "\n")
    }

    /// `{"format": ..., "tensors": [{"name": ..., "dtype": ..., "shape": [...]}, ...], "metadata": {...}}`,
    /// with names exactly as the file spells them.
    public static func json(_ reader: any WeightReader) -> String {
        var text = "{\"format\": \(JSONText.quote(reader.format.rawValue)), \"tensors\": ["
        for (position, tensor) in reader.tensors.enumerated() {
            text += position == 0 ? "\n  " : ",\n  "
            let shape = tensor.shape.map(String.init).joined(separator: ", ")
            text += "{\"name\": \(JSONText.quote(tensor.name)), \"dtype\": \"\(tensor.dtype.rawValue)\", \"shape\": [\(shape)]}"
        }
        text += reader.tensors.isEmpty ? "]" : "\n]"
        let metadata = reader.metadata
        var fields: [String] = []
        fields.append("\"writer_versions\": \(object(metadata.writerVersions))")
        if let layers = metadata.kerasLayerNames {
            fields.append("\"keras_layer_names\": [\(layers.map(JSONText.quote).joined(separator: ", "))]")
        }
        if !metadata.kerasLayerNamesByPath.isEmpty {
            fields.append("\"keras_layer_names_by_path\": \(object(metadata.kerasLayerNamesByPath))")
        }
        fields.append("\"has_keras_model_config\": \(metadata.kerasModelConfig != nil)")
        fields.append("\"extra\": \(object(metadata.extra))")
        text += ", \"parameter_count\": \(parameterCount(reader))"
        text += ", \"metadata\": {\(fields.joined(separator: ", "))}}"
        return text
    }

    private static func object(_ dictionary: [String: String]) -> String {
        "{" + dictionary.keys.sorted().map { "\(JSONText.quote($0)): \(JSONText.quote(dictionary[$0] ?? ""))" }
            .joined(separator: ", ") + "}"
    }

    /// Control characters in a name would garble the table; show them escaped.
    private static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
        let quotedText = quoted(text, limit: Int.max)
        return String(quotedText.dropFirst().dropLast())
    }

    private static func abbreviated(_ text: String, limit: Int) -> String {
        let flat = printable(text)
        return flat.count <= limit ? flat : String(flat.prefix(limit)) + "... (\(text.utf8.count) bytes)"
    }

    private static func grouped(_ number: Int) -> String {
        let digits = Array(String(number))
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }
}
