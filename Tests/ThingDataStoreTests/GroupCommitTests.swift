import Synchronization
import Testing
import ThingDataCore
@testable import ThingDataStore

@Suite struct GroupCommitTests {
    /// A failing change set fails alone; the others in its group are committed; every caller
    /// hears about its own change set.
    @Test func oneBadChangeSetFailsAloneAndGroupsForm() async throws {
        let group = GroupCommit<ChangeSet>(maxGroup: 8)
        let committed = Mutex<[String]>([])
        let largestGroup = Mutex(0)
        let apply: GroupCommit<ChangeSet>.Apply = { sets in
            largestGroup.withLock { $0 = max($0, sets.count) }
            try await Task.sleep(for: .milliseconds(2))  // a slow writer, so callers pile up
            let ids = sets.flatMap { $0.requirements.compactMap { if case .exists(let r) = $0 { r.id } else { nil } } }
            if ids.contains("bad") { throw StoreError.missingReference(Reference(kind: .thing, id: "bad", field: "thing_id")) }
            committed.withLock { $0 += ids }
        }
        let outcomes = await withTaskGroup(of: (String, Bool).self) { tasks in
            for i in 0..<40 {
                let id = i == 17 ? "bad" : "ok\(i)"
                tasks.addTask {
                    let changes = ChangeSet(requirements: [.exists(Reference(kind: .thing, id: id, field: "x"))])
                    do {
                        try await group.commit(changes, apply: apply)
                        return (id, true)
                    } catch {
                        return (id, false)
                    }
                }
            }
            var all: [String: Bool] = [:]
            for await (id, ok) in tasks { all[id] = ok }
            return all
        }
        #expect(outcomes.count == 40)
        #expect(outcomes["bad"] == false)
        #expect(outcomes.filter { $0.value }.count == 39)
        #expect(Set(committed.withLock { $0 }) == Set((0..<40).filter { $0 != 17 }.map { "ok\($0)" }))
        #expect(committed.withLock { $0.count } == 39)  // nothing committed twice
        #expect(largestGroup.withLock { $0 } > 1)
        #expect(largestGroup.withLock { $0 } <= 8)
    }

    /// Through a real SQLite store: concurrent creates share transactions, a bad one is refused
    /// with its own error, and nothing else is lost.
    @Test func concurrentWritesOnSQLite() async throws {
        try await Backend.sqlite.withCatalog { catalog in
            let results = try await withThrowingTaskGroup(of: Bool.self) { tasks in
                for i in 0..<60 {
                    tasks.addTask {
                        do {
                            if i == 30 {
                                try await catalog.apply(Operation(.create, .story, body: Sample.story(thing: "00000000-0000-0000-0000-000000000000")))
                            } else {
                                try await catalog.apply(Operation(.create, .thing, body: Sample.thing("Thing \(i)")))
                            }
                            return true
                        } catch let error as CatalogError {
                            #expect(error.status == .notFound)
                            return false
                        }
                    }
                }
                return try await tasks.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 59)
            #expect(try await catalog.store.count(.thing) == 59)
            #expect(try await catalog.store.count(.story) == 0)
            #expect(try await catalog.search("thing", lang: nil, kinds: [.thing], type: nil, category: nil, limit: 100, offset: 0)["count"] == 59)
        }
    }
}
