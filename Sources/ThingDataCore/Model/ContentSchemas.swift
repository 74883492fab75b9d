/// The v1 content model as schemas: the original's field names and shapes, with limits.
///
/// Server-managed fields (`id`, `uri`, timestamps, a story's `version`, embedded
/// `relationships`) are ignored when a client sends them back, so a GET body can be PUT again.
public enum ContentSchemas {
    public static let maxText = 10_000
    public static let maxShortText = 500
    public static let maxItems = 500
    public static let maxTranslations = 200

    static let serverManaged = ["id", "uri", "created_at", "updated_at", "relationships", "version", "kind"]

    /// `{default, translations {lang: text}}`.
    public static let multilingual: Schema = .object([
        Field("default", .string(max: maxText, min: 1), .required, "Text in the content's main language."),
        Field(
            "translations",
            .map(key: StringRule(minLength: 1, maxLength: 64, format: .languageTag), value: .string(max: maxText), maxEntries: maxTranslations),
            .optional(default: [:]), "BCP 47 language tag to text."),
    ])

    public static let thingCategory: Schema = .object([
        Field("category", .string(max: maxShortText, min: 1), .required),
        Field("subcategory", .nullable(.string(max: maxShortText)), .optional(default: .null)),
        Field("attributes", .object([]), .optional(default: [:])),
    ])

    static let shortList: Schema = .array(.string(max: maxShortText), maxItems: maxItems)

    static let stepWarning: Schema = .anyOf([
        .string(max: maxText),
        .object([
            Field("severity", .oneOf(Vocabulary.severities), .required),
            Field("message", multilingual, .required),
        ]),
    ])

    static let step: Schema = .object([
        Field("order", .integer(min: 0, max: 100_000), .required),
        Field("description", multilingual, .required),
        Field("warnings", .array(stepWarning, maxItems: maxItems), .optional(default: [])),
        Field("tools", shortList, .optional(default: [])),
        Field("media", .array(.string(max: 2048), maxItems: maxItems), .optional(default: [])),
    ])

    public static let thing: Schema = .object(
        [
            Field("type", .oneOf(Vocabulary.thingTypes), .required),
            Field("name", multilingual, .required),
            Field(
                "manufacturer",
                .object([
                    Field("name", .string(max: maxShortText, min: 1), .required),
                    Field(
                        "website",
                        .nullable(.anyOf([
                            .string(max: 2048, format: .url),
                            .object([Field("primary", .string(max: 2048, format: .url), .required)]),
                        ])), .optional(default: .null)),
                    Field("contact", .nullable(.string(max: 320, format: .email)), .optional(default: .null)),
                ]), .required),
            Field(
                "properties",
                .object([
                    Field(
                        "dimensions",
                        .nullable(.object([
                            Field("length", .nullable(.number(min: 0)), .optional(default: .null)),
                            Field("width", .nullable(.number(min: 0)), .optional(default: .null)),
                            Field("height", .nullable(.number(min: 0)), .optional(default: .null)),
                        ])), .optional(default: .null)),
                    Field("materials", shortList, .optional(default: [])),
                    Field("manufacturing_date", .nullable(.string(max: 40, format: .date)), .optional(default: .null)),
                    Field("serial_number", .nullable(.string(max: maxShortText)), .optional(default: .null)),
                ]), .optional(default: ["dimensions": nil, "materials": [], "manufacturing_date": nil, "serial_number": nil])),
            Field("tags", .array(.string(max: 100, min: 1), maxItems: 100), .omittable, "Free tags; optional extra."),
            Field(
                "ords_category",
                .object([
                    Field("id", .integer(min: 1, max: 100), .required),
                    Field("label", .nullable(.string(max: maxShortText)), .optional(default: .null)),
                ]), .omittable, "Open Repair Data Standard product category; optional extra."),
        ], ignored: serverManaged)

    public static let story: Schema = .object(
        [
            Field("thing_id", .nullable(.string(max: 36, format: .uuid)), .optional(default: .null)),
            Field("thing_category", .nullable(thingCategory), .optional(default: .null)),
            Field("type", .oneOf(Vocabulary.storyTypes), .required),
            Field("procedure", .array(step, maxItems: maxItems), .required),
            Field("tags", .array(.string(max: 100, min: 1), maxItems: 100), .omittable),
        ], ignored: serverManaged)

    public static let guide: Schema = .object(
        [
            Field("thing_id", .nullable(.string(max: 36, format: .uuid)), .optional(default: .null)),
            Field("thing_category", .nullable(thingCategory), .optional(default: .null)),
            Field(
                "type",
                .object([
                    Field("primary", .oneOf(Vocabulary.guidePrimaryTypes), .required),
                    Field("secondary", .nullable(.oneOf(Vocabulary.guideSecondaryTypes)), .optional(default: .null)),
                ]), .required),
            Field(
                "content",
                .object([
                    Field("title", multilingual, .required),
                    Field("summary", .nullable(multilingual), .optional(default: .null)),
                    Field(
                        "requirements",
                        .nullable(.object([
                            Field("skills", shortList, .optional(default: [])),
                            Field("tools", shortList, .optional(default: [])),
                            Field("materials", shortList, .optional(default: [])),
                            Field("certifications", shortList, .optional(default: [])),
                        ])), .optional(default: .null)),
                    Field(
                        "warnings",
                        .nullable(.array(
                            .object([
                                Field("severity", .oneOf(Vocabulary.severities), .required),
                                Field("message", multilingual, .required),
                            ]), maxItems: maxItems)), .optional(default: .null)),
                    Field("procedure", .nullable(.array(.object([]), maxItems: maxItems)), .optional(default: .null)),
                ]), .required),
            Field("tags", .array(.string(max: 100, min: 1), maxItems: 100), .omittable),
        ], ignored: serverManaged)

    public static let relationship: Schema = .object(
        [
            Field("source_type", .oneOf(Vocabulary.endpointTypes), .required),
            Field("source_id", .string(max: 36, format: .uuid), .required),
            Field("target_type", .oneOf(Vocabulary.endpointTypes), .required),
            Field("target_id", .string(max: 36, format: .uuid), .required),
            Field("relationship_type", .string(max: 100, min: 1), .required, "Free text: has_component, implements, references, alternative, ..."),
            Field("direction", .oneOf(Vocabulary.directions), .optional(default: "unidirectional")),
            Field("metadata", .object([]), .optional(default: [:])),
        ], ignored: serverManaged)

    public static func schema(for kind: EntityKind) -> Schema {
        switch kind {
        case .thing: thing
        case .story: story
        case .guide: guide
        case .relationship: relationship
        }
    }
}
