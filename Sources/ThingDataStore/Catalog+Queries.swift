public import ThingDataCore

extension Catalog {
    // MARK: Pre-flight

    /// Runs every check a write would run, plus duplicate detection, and writes nothing.
    public func preflight(_ operations: [Operation], path: @escaping @Sendable (Int) -> [ValidationIssue.PathElement]) async throws -> JSONValue {
        let plan = try await plan(operations, path: path)
        var issues: [JSONValue] = plan.issues.map { issue in
            var o = issue.json.objectValue ?? [:]
            o["check"] = .string(Self.check(for: issue.type))
            o["severity"] = "error"
            return .object(o)
        }
        // Likely duplicates: the same type, manufacturer and default name as another thing.
        var seen: [String: String] = [:]
        for (i, entity) in plan.entities.enumerated() {
            guard let entity, entity.kind == .thing, let key = EntityIndex(entity).duplicateKey else { continue }
            var others = try await store.things(withDuplicateKey: key, limit: 5).map(\.id).filter { $0 != entity.id }
            if let earlier = seen[key] { others.insert(earlier, at: 0) }
            seen[key] = seen[key] ?? entity.id
            if let other = others.first {
                issues.append([
                    "loc": .array((path(i) + [.key("body"), .key("name"), .key("default")]).map(\.json)),
                    "msg": .string("Likely duplicate of thing \(other): same type, manufacturer and name"),
                    "type": "duplicate", "check": "duplicates", "severity": "warning",
                    "duplicate_of": .string(other),
                ])
            }
        }
        let errors = plan.issues.count
        return [
            "ok": .bool(errors == 0),
            "operations": .int(Int64(operations.count)),
            "errors": .int(Int64(errors)),
            "warnings": .int(Int64(issues.count - errors)),
            "checks": ["schema", "references", "duplicates", "limits"],
            "issues": .array(issues),
            // Without entities: ids are not final, nothing was written.
            "results": .array(plan.outcomes.map { outcome in
                var o = outcome
                o["id"] = o["op"] == "create" ? nil : o["id"]
                return .object(o)
            }),
        ]
    }

    static func check(for type: String) -> String {
        switch type {
        case "not_found", "ref_unknown": "references"
        case "too_long", "too_large", "string_too_long": "limits"
        default: "schema"
        }
    }

    // MARK: Search

    /// Ranked full-text search over every multilingual text, with snippets. `lang` prefers
    /// matches and titles in that language; it does not exclude others.
    public func search(_ text: String, lang: String?, kinds: [EntityKind], type: String?, category: String?, limit: Int, offset: Int) async throws -> JSONValue {
        let terms = SearchText.terms(text)
        // A filter with nothing searchable in it matches nothing (and must not reach the index syntax).
        let filtersSearchable = [type, category].allSatisfy { $0 == nil || !SearchText.tokens($0!).isEmpty }
        guard !terms.isEmpty, filtersSearchable else {
            return ["query": .string(text), "count": 0, "results": []]
        }
        let fetch = lang == nil ? limit : min(limit * 3, 300)
        var hits = try await store.search(SearchQuery(terms: terms, kinds: kinds, type: type, category: category, limit: fetch, offset: offset))
        if let lang {
            // Stable re-rank: hits with a match in the wanted language first.
            let wanted = lang.lowercased()
            func inLanguage(_ h: SearchHit) -> Bool {
                let fields = SearchText.fields(of: h.entity)
                let stored = h.document.flatMap { SearchText.fieldMatches(of: $0, count: fields.count, terms: terms) }
                return fields.indices.contains { i in
                    guard let l = fields[i].language?.lowercased(), l == wanted || l.hasPrefix(wanted + "-") || wanted.hasPrefix(l + "-") else { return false }
                    return stored.map { $0[i] == terms.count } ?? SearchText.matches(fields[i].text, terms: terms)
                }
            }
            let (first, rest) = hits.reduce(into: ([SearchHit](), [SearchHit]())) { acc, h in
                if inLanguage(h) { acc.0.append(h) } else { acc.1.append(h) }
            }
            hits = Array((first + rest).prefix(limit))
        }
        let results: [JSONValue] = hits.map { hit in
            let e = hit.entity
            let snippet = Snippet.make(for: e, terms: terms, language: lang, document: hit.document)
            return [
                "kind": .string(e.kind.rawValue),
                "id": .string(e.id),
                "type": EntityIndex.type(of: e).map(JSONValue.string) ?? .null,
                "title": .string(Self.title(of: e, lang: lang)),
                "snippet": snippet.map { .string($0.html) } ?? .null,
                "field": snippet.map { .string($0.field) } ?? .null,
                "language": snippet?.language.map(JSONValue.string) ?? .null,
                "score": .double((hit.score * 1000).rounded() / 1000),
                "url": .string("/api/v1/\(e.kind.collection)/\(e.id)"),
            ]
        }
        return ["query": .string(text), "count": .int(Int64(results.count)), "results": .array(results)]
    }

    /// A human title: a thing's name, a guide's title, a story's first step, a relationship's type.
    static func title(of e: Entity, lang: String?) -> String {
        func ml(_ v: JSONValue?) -> String? {
            guard let v else { return nil }
            if let lang, let t = v["translations"]?.objectValue {
                if let exact = t.first(where: { $0.key.lowercased() == lang.lowercased() })?.value.stringValue { return exact }
            }
            return v["default"]?.stringValue
        }
        switch e.kind {
        case .thing: return ml(e.body["name"]) ?? e.id
        case .guide: return ml(e.body["content"]?["title"]) ?? e.id
        case .story:
            let first = ml(e.body["procedure"]?.arrayValue?.first?["description"])
            return [e.body["type"]?.stringValue, first].compactMap { $0 }.joined(separator: ": ")
        case .relationship: return e.body["relationship_type"]?.stringValue ?? e.id
        }
    }

    // MARK: Graph

    /// The neighbourhood of a thing up to `depth` relationship hops: nodes and edges, including
    /// the stories and guides that point at each thing. At most `maxNodes` nodes.
    public func graph(thingID: String, depth: Int, maxNodes: Int = 500) async throws -> JSONValue {
        guard let root = try await store.entity(.thing, id: thingID) else { throw Self.notFound(.thing, thingID) }
        var nodes: [String: Entity] = [root.id: root]
        var order: [String] = [root.id]
        var edges: [JSONValue] = []
        var edgeIDs: Set<String> = []
        var frontier = [root.id]
        var truncated = false
        func add(_ e: Entity) -> Bool {
            if nodes[e.id] != nil { return false }
            if nodes.count >= maxNodes {
                truncated = true
                return false
            }
            nodes[e.id] = e
            order.append(e.id)
            return true
        }
        for _ in 0..<depth where !frontier.isEmpty {
            var next: [String] = []
            for id in frontier where nodes[id]?.kind == .thing {
                for r in try await store.referrers(ofThing: id, limit: 200) {
                    if add(r) { next.append(r.id) }
                    let edgeID = "\(r.id)->\(id)"
                    if edgeIDs.insert(edgeID).inserted {
                        edges.append(["id": .string(edgeID), "source": .string(r.id), "target": .string(id), "relationship_type": "about", "direction": "unidirectional", "via": "thing_id"])
                    }
                }
            }
            for rel in try await store.relationships(touching: frontier, direction: .both) {
                guard edgeIDs.insert(rel.id).inserted else { continue }
                let b = rel.body
                guard let s = b["source_id"]?.stringValue, let t = b["target_id"]?.stringValue,
                    let sk = b["source_type"]?.stringValue.flatMap(EntityKind.init(rawValue:)),
                    let tk = b["target_type"]?.stringValue.flatMap(EntityKind.init(rawValue:))
                else { continue }
                for (kind, id) in [(sk, s), (tk, t)] where nodes[id] == nil {
                    if let e = try await store.entity(kind, id: id), add(e) { next.append(id) }
                }
                guard nodes[s] != nil, nodes[t] != nil else { continue }
                edges.append([
                    "id": .string(rel.id), "source": .string(s), "target": .string(t),
                    "relationship_type": b["relationship_type"] ?? .null, "direction": b["direction"] ?? .null, "via": "relationship",
                ])
            }
            frontier = next
        }
        let nodeList: [JSONValue] = order.compactMap { nodes[$0] }.map { e in
            ["id": .string(e.id), "kind": .string(e.kind.rawValue), "type": EntityIndex.type(of: e).map(JSONValue.string) ?? .null, "label": .string(Self.title(of: e, lang: nil))]
        }
        return ["root": .string(root.id), "depth": .int(Int64(depth)), "truncated": .bool(truncated), "nodes": .array(nodeList), "edges": .array(edges)]
    }
}
