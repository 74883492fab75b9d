import Synchronization

/// Group commit: concurrent commits join one transaction.
///
/// SQLite has one writer, so commits queue anyway; what costs is each transaction's fixed
/// price (BEGIN, COMMIT, a WAL frame write, thread hops). Callers queue their items; one drain
/// task at a time takes everything queued (up to `maxGroup`), applies it in one transaction,
/// resumes those callers, and goes on while anything is queued. If a group fails, each item is
/// retried alone, so one bad request never fails another. The result is the same as committing
/// one by one, in arrival order.
///
/// The drain task runs on `executor` when given (SQLite: the writer's own thread), so one
/// group follows the next without passing through the shared cooperative threads, where
/// request handlers queue.
final class GroupCommit<Item: Sendable>: Sendable {
    typealias Apply = @Sendable ([Item]) async throws -> Void

    private struct Waiter {
        var item: Item
        var continuation: CheckedContinuation<Void, any Error>
    }
    private struct State {
        var draining = false
        var queue: [Waiter] = []
    }
    private let state = Mutex(State())
    /// The most items one transaction takes.
    let maxGroup: Int
    let executor: (any TaskExecutor)?

    init(maxGroup: Int = 256, executor: (any TaskExecutor)? = nil) {
        self.maxGroup = maxGroup
        self.executor = executor
    }

    /// Commits `item` with the others queued beside it. The drain task is not the caller's:
    /// a caller's cancellation cannot cut a group (which carries other callers' items) short.
    func commit(_ item: Item, apply: @escaping Apply) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let start = state.withLock { s -> Bool in
                s.queue.append(Waiter(item: item, continuation: c))
                if s.draining { return false }
                s.draining = true
                return true
            }
            if start { Task(executorPreference: executor) { await self.drain(apply) } }
        }
    }

    private func drain(_ apply: Apply) async {
        while true {
            let group = state.withLock { s -> [Waiter] in
                let take = Array(s.queue.prefix(maxGroup))
                s.queue.removeFirst(take.count)
                if take.isEmpty { s.draining = false }
                return take
            }
            guard !group.isEmpty else { return }
            let results = await Self.run(group.map(\.item), apply: apply)
            for (waiter, result) in zip(group, results) {
                switch result {
                case .success: waiter.continuation.resume()
                case .failure(let error): waiter.continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Applies the group in one transaction, or each alone if the group fails.
    static func run(_ group: [Item], apply: Apply) async -> [Result<Void, any Error>] {
        do {
            try await apply(group)
            return group.map { _ in .success(()) }
        } catch {
            if group.count == 1 { return [.failure(error)] }
        }
        var results: [Result<Void, any Error>] = []
        for item in group {
            do {
                try await apply([item])
                results.append(.success(()))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}
