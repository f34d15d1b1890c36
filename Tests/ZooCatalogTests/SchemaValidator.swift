import Foundation

/// Validates JSON against the part of JSON Schema (draft 2020-12) that `zoo/schema.json` uses:
/// type, enum, const, required, properties, additionalProperties: false, pattern, minLength,
/// minimum, maximum, exclusiveMinimum, items, minItems, maxItems, oneOf, allOf and if/then/else.
/// A keyword outside that part is reported as an error, so a schema the validator does not
/// understand can never pass for one it checked.
struct SchemaValidator {
    let schema: JSONValue

    /// Keywords that only annotate.
    static let annotations: Set = ["$schema", "$id", "title", "description"]
    static let understood: Set = ["type", "enum", "const", "required", "properties", "additionalProperties", "pattern", "minLength",
                                  "minimum", "maximum", "exclusiveMinimum", "items", "minItems", "maxItems", "oneOf", "allOf",
                                  "if", "then", "else"]

    /// Every way `value` breaks the schema, each with the path of the offending value.
    func errors(_ value: JSONValue) -> [String] {
        var errors: [String] = []
        validate(value, against: schema, at: "$", into: &errors)
        return errors
    }

    private func validate(_ value: JSONValue, against schema: JSONValue, at path: String, into errors: inout [String]) {
        guard case .object(let rules) = schema else { return errors.append("\(path): the schema here is not an object") }
        for keyword in rules.keys where !Self.annotations.contains(keyword) && !Self.understood.contains(keyword) {
            errors.append("\(path): the schema uses '\(keyword)', which this validator does not implement")
        }
        if let type = rules["type"] {
            let allowed: [String]
            switch type {
            case .string(let name): allowed = [name]
            case .array(let names): allowed = names.compactMap { name -> String? in
                guard case .string(let text) = name else { return nil }
                return text
            }
            default: allowed = []
            }
            if !allowed.contains(where: { Self.has(value, type: $0) }) {
                errors.append("\(path): \(value) is not of type \(allowed.joined(separator: " or "))")
            }
        }
        if case .array(let options) = rules["enum"], !options.contains(value) {
            errors.append("\(path): \(value) is not one of \(JSONValue.array(options))")
        }
        if let constant = rules["const"], constant != value { errors.append("\(path): \(value) is not \(constant)") }
        if let additional = rules["additionalProperties"], additional != .bool(false) {
            errors.append("\(path): the schema's additionalProperties is \(additional); this validator implements only false")
        }
        if case .object(let members) = value { validateObject(members, rules, at: path, into: &errors) }
        if case .string(let text) = value {
            if case .string(let pattern) = rules["pattern"] {
                if let expression = try? NSRegularExpression(pattern: pattern) {
                    if expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                        errors.append("\(path): \(value) does not match /\(pattern)/")
                    }
                } else {
                    errors.append("\(path): the schema's pattern /\(pattern)/ does not compile")
                }
            }
            if case .number(let length) = rules["minLength"], Double(text.count) < length {
                errors.append("\(path): \(value) is shorter than \(Int(length))")
            }
        }
        if case .number(let number) = value {
            if case .number(let bound) = rules["minimum"], number < bound { errors.append("\(path): \(value) is below \(bound)") }
            if case .number(let bound) = rules["maximum"], number > bound { errors.append("\(path): \(value) is above \(bound)") }
            if case .number(let bound) = rules["exclusiveMinimum"], number <= bound { errors.append("\(path): \(value) is not above \(bound)") }
        }
        if case .array(let items) = value {
            if let itemSchema = rules["items"] {
                for (index, item) in items.enumerated() { validate(item, against: itemSchema, at: "\(path)[\(index)]", into: &errors) }
            }
            if case .number(let count) = rules["minItems"], Double(items.count) < count { errors.append("\(path): fewer than \(Int(count)) items") }
            if case .number(let count) = rules["maxItems"], Double(items.count) > count { errors.append("\(path): more than \(Int(count)) items") }
        }
        if case .array(let options) = rules["oneOf"] {
            let passing = options.filter { option in
                var optionErrors: [String] = []
                validate(value, against: option, at: path, into: &optionErrors)
                return optionErrors.isEmpty
            }.count
            if passing != 1 { errors.append("\(path): \(value) matches \(passing) of the oneOf schemas, not exactly one") }
        }
        if case .array(let parts) = rules["allOf"] {
            for (index, part) in parts.enumerated() { validate(value, against: part, at: "\(path) (allOf[\(index)])", into: &errors) }
        }
        if let condition = rules["if"] {
            var conditionErrors: [String] = []
            validate(value, against: condition, at: path, into: &conditionErrors)
            if conditionErrors.isEmpty {
                if let then = rules["then"] { validate(value, against: then, at: path, into: &errors) }
            } else if let otherwise = rules["else"] {
                validate(value, against: otherwise, at: path, into: &errors)
            }
        }
    }

    private func validateObject(_ members: [String: JSONValue], _ rules: [String: JSONValue], at path: String, into errors: inout [String]) {
        if case .array(let required) = rules["required"] {
            for case .string(let key) in required where members[key] == nil { errors.append("\(path): '\(key)' is required") }
        }
        var properties: [String: JSONValue] = [:]
        if case .object(let declared) = rules["properties"] { properties = declared }
        for (key, member) in members.sorted(by: { $0.key < $1.key }) {
            if let propertySchema = properties[key] {
                validate(member, against: propertySchema, at: "\(path).\(key)", into: &errors)
            } else if rules["additionalProperties"] == .bool(false) {
                errors.append("\(path): '\(key)' is not a property the schema allows")
            }
        }
    }

    static func has(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object): return true
        case ("integer", .number(let number)): return number == number.rounded()
        default: return false
        }
    }
}
