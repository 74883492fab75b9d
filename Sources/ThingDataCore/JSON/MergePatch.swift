/// JSON Merge Patch (RFC 7396): how PATCH changes an entity.
public enum MergePatch {
    /// Applies `patch` to `target` exactly as RFC 7396 section 2 describes.
    public static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let patchObject) = patch else { return patch }
        var result = target.objectValue ?? JSONObject()
        for (key, value) in patchObject {
            if value == .null {
                result[key] = nil
            } else {
                result[key] = apply(value, to: result[key] ?? .null)
            }
        }
        return .object(result)
    }
}
