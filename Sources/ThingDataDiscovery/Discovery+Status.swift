public import ThingDataCore
import Synchronization

extension Discovery {
    /// What each mechanism sees now, for `thingdata-admin discovery status`.
    public func statusJSON() -> JSONValue {
        let now = Self.now()
        let (s, t) = (status.withLock { $0 }, table.withLock { $0 })
        func time(_ ms: Int64) -> JSONValue { ms > 0 ? .string(Timestamp(microsecondsSinceEpoch: ms * 1000).description) : .null }
        let services: [JSONValue] = s.services.values.sorted { $0.instance < $1.instance }.map { v in
            ["instance": .string(v.instance), "host": .string(v.host), "address": .string(v.address), "port": .int(Int64(v.port)),
             "node_id": v.nodeID.map { .string($0) } ?? .null, "url": .string(v.url), "own": .bool(v.own), "seen": time(v.seen)]
        }
        let domains: [JSONValue] = settings.domains.map { d in
            let a = s.domains[d]
            return ["domain": .string(d), "error": a?.error.map { .string($0) } ?? .null, "checked": time(a?.checked ?? 0), "next_refresh": time(a?.next ?? 0),
                    "answers": .array((a?.records ?? []).map { r in
                        ["url": .string(r.url), "node_id": r.nodeID.map { .string($0) } ?? .null, "ttl": .int(Int64(r.ttl)), "via": .string(r.via)]
                    })]
        }
        let exchanges: [JSONValue] = s.exchanges.sorted { $0.key < $1.key }.map { id, e in
            ["peer": .string(id), "at": time(e.at), "received": .int(Int64(e.received)), "accepted": .int(Int64(e.accepted)),
             "rejected": .int(Int64(e.rejected)), "ignored": .int(Int64(e.ignored)), "error": e.error.map { .string($0) } ?? .null]
        }
        let counts = t.entries.values.reduce(into: [String: Int]()) { $0[$1.state.rawValue, default: 0] += 1 }
        let bySupplier = t.dialsBySupplier(now: now)
        let candidates: [JSONValue] = t.entries.values.sorted { ($0.state.rawValue, $0.url) < ($1.state.rawValue, $1.url) }.prefix(200).map { c in
            ["url": .string(c.url), "state": .string(c.state.rawValue), "sources": .array(c.suppliers.map { .string($0) }),
             "expected_node_id": c.expectedNodeID.map { .string($0) } ?? .null, "node_id": c.nodeID.map { .string($0) } ?? .null,
             "failures": .int(Int64(c.failures)), "next_attempt": c.state == .backoff || c.state == .retired || c.state == .candidate ? time(c.due) : .null,
             "last_error": c.lastError.map { .string($0) } ?? .null]
        }
        return [
            "mdns": ["enabled": .bool(settings.mdns), "state": .string(settings.mdns ? s.mdnsState : "off"), "detail": .string(s.mdnsDetail),
                     "published_as": s.published.map { .string($0) } ?? .null, "services": .array(services)],
            "dns": ["domains": .array(domains), "nameserver": settings.nameserver.map { .string("\($0):\(settings.nameserverPort)") } ?? "system resolver"],
            "pex": ["enabled": .bool(settings.pex), "interval_seconds": .int(max(60_000, settings.pexInterval) / 1000), "exchanges": .array(exchanges),
                    "records_rejected": .int(Int64(s.rejectedRecords)), "addresses_filtered": .int(Int64(s.filtered)),
                    "allowed_ranges": .array(settings.filter.ranges.map { .string($0.description) })],
            "seeds": .array(settings.seeds.map { .string($0) }),
            "budget": ["window_seconds": .int(t.limits.window / 1000), "dials_per_window": .int(Int64(t.limits.dialsPerMinute)),
                       "per_hearsay_source": .int(Int64(t.limits.perSupplier)), "dials_in_window": .int(Int64(bySupplier.values.reduce(0, +))),
                       "by_source": .object(JSONObject(bySupplier.map { ($0.key, JSONValue.int(Int64($0.value))) }))],
            "candidates": ["total": .int(Int64(t.entries.count)), "dropped_table_full": .int(Int64(t.dropped)),
                           "by_state": .object(JSONObject(counts.map { ($0.key, JSONValue.int(Int64($0.value))) })), "entries": .array(candidates)],
        ]
    }
}
