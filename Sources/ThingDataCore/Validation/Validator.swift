/// Checks a JSON value against a `Schema` and returns it normalized: defaults filled in,
/// ignored keys dropped, unknown keys kept. Reports every issue with its path.
public struct Validator: Sendable {
    public init() {}

    public func validate(_ value: JSONValue, against schema: Schema, at path: [ValidationIssue.PathElement] = []) throws(ValidationFailure) -> JSONValue {
        var issues: [ValidationIssue] = []
        var path = path
        let result = check(value, schema, &path, &issues)
        if !issues.isEmpty { throw ValidationFailure(issues) }
        return result
    }

    /// `path` is where `value` sits: a stack, each level pushing its key or index while it
    /// checks below and popping it after, so a path is copied only into an issue.
    func check(_ value: JSONValue, _ schema: Schema, _ path: inout [ValidationIssue.PathElement], _ issues: inout [ValidationIssue]) -> JSONValue {
        switch schema {
        case .nullable(let inner):
            return value == .null ? .null : check(value, inner, &path, &issues)
        case .any:
            return value
        case .boolean:
            guard case .bool = value else {
                issues.append(.init(loc: path, msg: "Input should be a valid boolean", type: "bool_type"))
                return value
            }
            return value
        case .integer(let min, let max):
            guard let i = value.intValue, value.typeName == "integer" || value.doubleValue == Double(i) else {
                issues.append(.init(loc: path, msg: "Input should be a valid integer", type: "int_type"))
                return value
            }
            if let min, i < min {
                issues.append(.init(loc: path, msg: "Input should be greater than or equal to \(min)", type: "greater_than_equal"))
            }
            if let max, i > max {
                issues.append(.init(loc: path, msg: "Input should be less than or equal to \(max)", type: "less_than_equal"))
            }
            return .int(i)
        case .number(let min, let max):
            guard let d = value.doubleValue else {
                issues.append(.init(loc: path, msg: "Input should be a valid number", type: "float_type"))
                return value
            }
            if let min, d < min {
                issues.append(.init(loc: path, msg: "Input should be greater than or equal to \(min)", type: "greater_than_equal"))
            }
            if let max, d > max {
                issues.append(.init(loc: path, msg: "Input should be less than or equal to \(max)", type: "less_than_equal"))
            }
            // A float field holds a float, as the original's (pydantic) do: 24 is stored as 24.0.
            return .double(d)
        case .string(let rule):
            guard case .string(let s) = value else {
                issues.append(.init(loc: path, msg: "Input should be a valid string", type: "string_type"))
                return value
            }
            checkString(s, rule, path, &issues)
            return value
        case .array(let element, let maxItems):
            guard case .array(let items) = value else {
                issues.append(.init(loc: path, msg: "Input should be a valid list", type: "list_type"))
                return value
            }
            if items.count > maxItems {
                issues.append(.init(loc: path, msg: "List should have at most \(maxItems) items, not \(items.count)", type: "too_long"))
                return value
            }
            var out: [JSONValue] = []
            out.reserveCapacity(items.count)
            for (i, item) in items.enumerated() {
                path.append(.index(i))
                out.append(check(item, element, &path, &issues))
                path.removeLast()
            }
            return .array(out)
        case .map(let keyRule, let valueSchema, let maxEntries):
            guard case .object(let object) = value else {
                issues.append(.init(loc: path, msg: "Input should be a valid dictionary", type: "dict_type"))
                return value
            }
            if object.count > maxEntries {
                issues.append(.init(loc: path, msg: "Dictionary should have at most \(maxEntries) entries, not \(object.count)", type: "too_long"))
                return value
            }
            var out = JSONObject()
            out.reserve(object.count)
            for (k, v) in object {
                path.append(.key(k))
                var keyIssues: [ValidationIssue] = []
                checkString(k, keyRule, path, &keyIssues)
                issues.append(contentsOf: keyIssues.map { ValidationIssue(loc: $0.loc, msg: "Key: " + $0.msg, type: $0.type) })
                out.appendNew(k, check(v, valueSchema, &path, &issues))
                path.removeLast()
            }
            return .object(out)
        case .anyOf(let options):
            var firstIssues: [ValidationIssue]?
            for option in options {
                var local: [ValidationIssue] = []
                let result = check(value, option, &path, &local)
                if local.isEmpty { return result }
                if firstIssues == nil || local.count < firstIssues!.count { firstIssues = local }
            }
            issues.append(contentsOf: firstIssues ?? [])
            return value
        case .object(let rule):
            guard case .object(let object) = value else {
                issues.append(.init(loc: path, msg: "Input should be a valid dictionary or object", type: "dict_type"))
                return value
            }
            if object.count > rule.maxProperties {
                issues.append(.init(loc: path, msg: "Object should have at most \(rule.maxProperties) properties", type: "too_long"))
                return value
            }
            // The rule's fields, then unknown keys: each key once, so each is appended as new.
            var out = JSONObject()
            out.reserve(rule.fields.count + object.count)
            for field in rule.fields {
                if let v = object[field.name] {
                    path.append(.key(field.name))
                    out.appendNew(field.name, check(v, field.schema, &path, &issues))
                    path.removeLast()
                } else {
                    switch field.presence {
                    case .required:
                        issues.append(.init(loc: path + [.key(field.name)], msg: "Field required", type: "missing"))
                    case .optional(let d):
                        out.appendNew(field.name, d)
                    case .omittable:
                        break
                    }
                }
            }
            for (k, v) in object where !rule.fields.contains(where: { $0.name == k }) {
                if rule.ignored.contains(k) { continue }
                if rule.keepsUnknown {
                    out.appendNew(k, v)
                } else {
                    issues.append(.init(loc: path + [.key(k)], msg: "Extra inputs are not permitted", type: "extra_forbidden"))
                }
            }
            return .object(out)
        }
    }

    func checkString(_ s: String, _ rule: StringRule, _ path: [ValidationIssue.PathElement], _ issues: inout [ValidationIssue]) {
        if let allowed = rule.allowed {
            if !allowed.contains(s) {
                let list = allowed.map { "'\($0)'" }
                let text = list.count > 1 ? list.dropLast().joined(separator: ", ") + " or " + list.last! : list.joined()
                issues.append(.init(loc: path, msg: "Input should be \(text)", type: "enum"))
            }
            return
        }
        let count = s.count
        if count < rule.minLength {
            issues.append(.init(loc: path, msg: "String should have at least \(rule.minLength) character\(rule.minLength == 1 ? "" : "s")", type: "string_too_short"))
            return
        }
        if count > rule.maxLength {
            issues.append(.init(loc: path, msg: "String should have at most \(rule.maxLength) characters", type: "string_too_long"))
            return
        }
        guard let format = rule.format else { return }
        switch format {
        case .url:
            if !Formats.isURL(s) {
                issues.append(.init(loc: path, msg: "Input should be a valid URL (http or https, with a host)", type: "url_parsing"))
            }
        case .email:
            if !Formats.isEmail(s) {
                issues.append(.init(loc: path, msg: "Input should be a valid email address", type: "value_error"))
            }
        case .date:
            if !Formats.isDateOrDateTime(s) {
                issues.append(.init(loc: path, msg: "Input should be an ISO 8601 date (YYYY-MM-DD) or date-time", type: "date_parsing"))
            }
        case .languageTag:
            if !Formats.isLanguageTag(s) {
                issues.append(.init(loc: path, msg: "Input should be a BCP 47 language tag such as 'en', 'pt-BR' or 'zh-Hant'", type: "value_error"))
            }
        case .uuid:
            if !Formats.isUUID(s) {
                issues.append(.init(loc: path, msg: "Input should be a valid UUID", type: "uuid_parsing"))
            }
        }
    }
}
