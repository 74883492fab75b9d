public import ThingDataCore

extension Catalog {
    /// Digests of everything that must agree between nodes holding the same revisions: the set
    /// of revision ids, every current view (its v1 JSON), and the open conflicts (heads and
    /// conflicting fields). Two converged nodes answer identical digests.
    public func digest() async throws -> JSONValue {
        var ids: [String] = []
        var after: Int64 = 0
        while true {
            let page = try await store.revisions(afterSequence: after, limit: 2_000)
            guard let last = page.last else { break }
            for r in page { ids.append(try r.decoded().id) }
            after = last.sequence
        }
        var revisionHash = ContentHash.Stream()
        for id in ids.sorted() { revisionHash.update(Array(id.utf8)) }

        var views: [String] = []
        for kind in EntityKind.allCases {
            var cursor: Int64?
            while true {
                var q = ListQuery(kind: kind, limit: 1_000)
                q.afterSequence = cursor
                let page = try await store.list(q)
                guard let last = page.last else { break }
                for item in page { views.append(String(decoding: CanonicalJSON.encode(item.entity.rendered()), as: UTF8.self)) }
                cursor = last.sequence
            }
        }
        var viewHash = ContentHash.Stream()
        for v in views.sorted() { viewHash.update(Array(v.utf8)) }

        var conflicts: [String] = []
        var offset = 0
        while true {
            let page = try await store.conflicts(kind: nil, limit: 1_000, offset: offset)
            for h in page {
                let heads = h.heads.map(\.id).sorted().joined(separator: ",")
                conflicts.append("\(h.kind.rawValue)/\(h.entityID)/\(heads)/" + String(decoding: CanonicalJSON.encode(h.conflict?["fields"] ?? []), as: UTF8.self))
            }
            guard page.count == 1_000 else { break }
            offset += page.count
        }
        var conflictHash = ContentHash.Stream()
        for c in conflicts.sorted() { conflictHash.update(Array(c.utf8)) }
        return [
            "revisions": .int(Int64(ids.count)), "revision_digest": .string(revisionHash.finalizeHex()),
            "views": .int(Int64(views.count)), "view_digest": .string(viewHash.finalizeHex()),
            "conflicts": .int(Int64(conflicts.count)), "conflict_digest": .string(conflictHash.finalizeHex()),
        ]
    }
}
