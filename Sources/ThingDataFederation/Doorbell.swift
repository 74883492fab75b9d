import Synchronization

/// Wakes one waiting task: rings are remembered until the next wait, so none is lost; many
/// rings before a wait count as one.
public final class Doorbell: Sendable {
    public init() {}
    struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }
    let state = Mutex(State())

    public func ring() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let w = s.waiter {
                s.waiter = nil
                return w
            }
            s.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns at the next ring (or at once if one came since the last wait), or after
    /// `milliseconds`, or on cancellation.
    public func wait(milliseconds: Int64) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: .milliseconds(max(0, milliseconds))) }
            group.addTask { await self.waitForRing() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.rung || Task.isCancelled {
                        s.rung = false
                        return true
                    }
                    s.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}
