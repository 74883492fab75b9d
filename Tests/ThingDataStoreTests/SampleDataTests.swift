import Testing
import ThingDataCore
import ThingDataStore

@Suite struct SampleDataTests {
    @Test(arguments: [Backend.memory, .sqlite])
    func loadsValidMultilingualDataAndAReRunAddsNothing(_ backend: Backend) async throws {
        try await backend.withCatalog { catalog in
            let groups = SampleData.templateCount + 2  // wraps around the templates once
            #expect(try await SampleData.load(count: groups, into: catalog) == groups)
            let things = try await catalog.store.count(.thing)
            #expect(things == groups * 3)
            #expect(try await catalog.store.count(.story) == groups)
            #expect(try await catalog.store.count(.guide) == groups)
            #expect(try await catalog.store.count(.relationship) == groups * 3)
            // A re-run adds nothing twice.
            #expect(try await SampleData.load(count: groups, into: catalog) == 0)
            #expect(try await catalog.store.count(.thing) == things)
            // At least three languages, one of them in a non-Latin script, and all of it searchable.
            let all = try await catalog.list(ListQuery(kind: .thing, limit: 1000)).map(\.entity)
            let languages = Set(all.flatMap { $0.body["name"]?["translations"]?.objectValue?.keys ?? [] })
            #expect(languages.isSuperset(of: ["es", "de", "ja", "el"]))
            let hits = try await catalog.search("コーヒー", lang: "ja", kinds: [.thing], type: nil, category: nil, limit: 10, offset: 0)
            #expect((hits["count"]?.intValue ?? 0) >= 1)
        }
    }
}
