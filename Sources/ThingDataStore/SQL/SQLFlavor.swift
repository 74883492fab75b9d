/// What differs between the two SQL backends: DDL, the body column's type, and full-text search.
public enum SQLFlavor: String, Sendable {
    case sqlite
    case postgres

    /// Versioned migrations, applied in order, each in its own transaction. Never edit a
    /// released migration: add the next one. (Version 1 is the first release's schema.)
    var migrations: [(version: Int, statements: [String])] {
        switch self {
        case .sqlite:
            return [
                (1, [
                    """
                    CREATE TABLE entities (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        type TEXT, thing_id TEXT, category TEXT, subcategory TEXT,
                        source_type TEXT, source_id TEXT, target_type TEXT, target_id TEXT, relationship_type TEXT,
                        dup_key TEXT,
                        body TEXT NOT NULL,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER,
                        search_doc TEXT NOT NULL DEFAULT ''
                    )
                    """,
                ] + Self.filterIndexes + [
                    // Full text: an external-content FTS5 index over the folded text the core
                    // computes (search_doc), with the filter columns inside the index so a
                    // filtered search is answered by the index alone. Triggers keep it in step.
                    // Ranking is the core's (SearchRanking), the same on every store.
                    """
                    CREATE VIRTUAL TABLE entity_search USING fts5(
                        kind, type, category, search_doc,
                        content='entities', content_rowid='seq',
                        tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
                    )
                    """,
                    """
                    CREATE TRIGGER entities_ai AFTER INSERT ON entities BEGIN
                        INSERT INTO entity_search(rowid, kind, type, category, search_doc) VALUES (new.seq, new.kind, new.type, new.category, new.search_doc);
                    END
                    """,
                    """
                    CREATE TRIGGER entities_ad AFTER DELETE ON entities BEGIN
                        INSERT INTO entity_search(entity_search, rowid, kind, type, category, search_doc) VALUES ('delete', old.seq, old.kind, old.type, old.category, old.search_doc);
                    END
                    """,
                    """
                    CREATE TRIGGER entities_au AFTER UPDATE ON entities BEGIN
                        INSERT INTO entity_search(entity_search, rowid, kind, type, category, search_doc) VALUES ('delete', old.seq, old.kind, old.type, old.category, old.search_doc);
                        INSERT INTO entity_search(rowid, kind, type, category, search_doc) VALUES (new.seq, new.kind, new.type, new.category, new.search_doc);
                    END
                    """,
                ]),
                (2, Self.revisionTables(sequence: "INTEGER PRIMARY KEY AUTOINCREMENT")),
                (3, Self.etagColumn),
                (4, Self.auditLog(sequence: "INTEGER PRIMARY KEY AUTOINCREMENT") + [
                    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
                    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
                ]),
                // FTS5 keeps this in the index's own config: the background merge (`SQLiteUpkeep`)
                // may then merge any two segments of one size level.
                (5, ["INSERT INTO entity_search(entity_search, rank) VALUES ('usermerge', 2)"]),
                // The index's vocabulary, so a search asks for terms instead of a prefix.
                (6, SQLiteSearchTerms.migration),
            ]
        case .postgres:
            return [
                (1, [
                    """
                    CREATE TABLE entities (
                        seq BIGSERIAL PRIMARY KEY,
                        id TEXT NOT NULL UNIQUE,
                        kind TEXT NOT NULL,
                        type TEXT, thing_id TEXT, category TEXT, subcategory TEXT,
                        source_type TEXT, source_id TEXT, target_type TEXT, target_id TEXT, relationship_type TEXT,
                        dup_key TEXT,
                        body JSONB NOT NULL,
                        created_at BIGINT NOT NULL,
                        updated_at BIGINT,
                        search_doc TEXT NOT NULL DEFAULT '',
                        search TSVECTOR NOT NULL
                    )
                    """,
                ] + Self.filterIndexes + [
                    // fastupdate off: new entries go straight into the index instead of a pending
                    // list that every search must scan until the next vacuum.
                    "CREATE INDEX entities_search ON entities USING GIN (search) WITH (fastupdate = off)",
                    "CREATE INDEX entities_body ON entities USING GIN (body jsonb_path_ops)",
                ]),
                (2, Self.revisionTables(sequence: "BIGSERIAL PRIMARY KEY")),
                (3, Self.etagColumn),
                (4, Self.auditLog(sequence: "BIGSERIAL PRIMARY KEY") + [
                    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
                    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
                ]),
            ]
        }
    }

    /// Version 2: signed revisions (append-only, verbatim bytes), each entity's heads and
    /// open conflict, and the node's small durable state (its actor id).
    static func revisionTables(sequence: String) -> [String] {
        [
            """
            CREATE TABLE revisions (
                seq \(sequence),
                id TEXT NOT NULL UNIQUE,
                kind TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                author TEXT NOT NULL,
                hlc_wall BIGINT NOT NULL,
                hlc_logical BIGINT NOT NULL,
                tombstone BOOLEAN NOT NULL,
                bytes TEXT NOT NULL,
                received_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX revisions_entity ON revisions(entity_id, seq)",
            """
            CREATE TABLE entity_heads (
                entity_id TEXT PRIMARY KEY,
                kind TEXT NOT NULL,
                heads TEXT NOT NULL,
                deleted BOOLEAN NOT NULL,
                conflict TEXT
            )
            """,
            "CREATE INDEX entity_heads_conflicts ON entity_heads(kind) WHERE conflict IS NOT NULL",
            "CREATE TABLE node_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ]
    }

    /// Version 4: the append-only audit log (triggers refuse updates and deletes).
    static func auditLog(sequence: String) -> [String] {
        [
            """
            CREATE TABLE audit_log (
                seq \(sequence),
                at BIGINT NOT NULL,
                actor TEXT NOT NULL,
                address TEXT,
                action TEXT NOT NULL,
                target TEXT,
                revision TEXT,
                detail TEXT
            )
            """,
            "CREATE INDEX audit_log_actor ON audit_log(actor, seq)",
            "CREATE INDEX audit_log_at ON audit_log(at)",
        ]
    }

    /// Version 3: each entity's ETag beside its heads, so a single GET reads it in the same query.
    static let etagColumn = ["ALTER TABLE entity_heads ADD COLUMN etag TEXT"]

    /// The filter columns' indexes, the same on both backends. Partial where a column is NULL
    /// for most kinds, so an insert that leaves it NULL costs nothing there.
    static let filterIndexes = [
        "CREATE INDEX entities_kind_seq ON entities(kind, seq)",
        "CREATE INDEX entities_kind_type ON entities(kind, type, seq)",
        "CREATE INDEX entities_kind_category ON entities(kind, category, seq) WHERE category IS NOT NULL",
        "CREATE INDEX entities_thing ON entities(thing_id) WHERE thing_id IS NOT NULL",
        "CREATE INDEX entities_source ON entities(source_id) WHERE source_id IS NOT NULL",
        "CREATE INDEX entities_target ON entities(target_id) WHERE target_id IS NOT NULL",
        "CREATE INDEX entities_dup ON entities(dup_key) WHERE dup_key IS NOT NULL",
    ]

    /// How the body is read back as text.
    var bodyColumn: String { self == .postgres ? "body::text AS body" : "body" }
}
