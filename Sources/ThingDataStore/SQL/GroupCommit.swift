import Synchronization

/// Group commit: concurrent commits join one transaction.
///
/// SQLite has one writer, so commits queue anyway; what costs is each transaction's fixed
/// price (BEGIN, COMMIT, a WAL frame write, thread hops). The first committer to arrive leads:
/// it takes everything queued behind it, applies it in one transaction, and resumes the
/// others. If the group fails, each change set is retried alone, so one bad request never
/// fails another. The result is the same as committing one by one, in arrival order.
final class GroupCommit: Sendable {
    typealias Apply = @Sendable ([ChangeSet]) async throws -> Void

    private struct Waiter {
        var changes: ChangeSet
        var continuation: CheckedContinuation<Bool, any Error>
    }
    private struct State {
        var leading = false
        var queue: [Waiter] = []
    }
    private let state = Mutex(State())
    /// The most change sets one transaction takes.
    let maxGroup: Int

    init(maxGroup: Int = 256) { self.maxGroup = maxGroup }

    func commit(_ changes: ChangeSet, apply: Apply) async throws {
        // Either lead now, or wait in the queue until a leader has committed us (false) or
        // hands leadership over because it finished just as we arrived (true).
        let lead = try await withCheckedThrowingContinuation { (c: CheckedContinuation<Bool, any Error>) in
            let becameLeader = state.withLock { s -> Bool in
                if s.leading {
                    s.queue.append(Waiter(changes: changes, continuation: c))
                    return false
                }
                s.leading = true
                return true
            }
            if becameLeader { c.resume(returning: true) }
        }
        guard lead else { return }
        // Lead one group: ours and whoever queued behind us.
        let waiters = state.withLock { s -> [Waiter] in
            let take = Array(s.queue.prefix(maxGroup - 1))
            s.queue.removeFirst(take.count)
            return take
        }
        let results = await Self.run([changes] + waiters.map(\.changes), apply: apply)
        for (waiter, result) in zip(waiters, results.dropFirst()) {
            switch result {
            case .success: waiter.continuation.resume(returning: false)
            case .failure(let error): waiter.continuation.resume(throwing: error)
            }
        }
        // Hand over to the next in line, so no caller waits for more than the group ahead of it.
        let next = state.withLock { s -> Waiter? in
            if s.queue.isEmpty {
                s.leading = false
                return nil
            }
            return s.queue.removeFirst()
        }
        next?.continuation.resume(returning: true)
        try results[0].get()
    }

    /// Applies the group in one transaction, or each alone if the group fails.
    static func run(_ group: [ChangeSet], apply: Apply) async -> [Result<Void, any Error>] {
        do {
            try await apply(group)
            return group.map { _ in .success(()) }
        } catch {
            if group.count == 1 { return [.failure(error)] }
        }
        var results: [Result<Void, any Error>] = []
        for changes in group {
            do {
                try await apply([changes])
                results.append(.success(()))
            } catch {
                results.append(.failure(error))
            }
        }
        return results
    }
}
