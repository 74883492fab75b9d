public import ThingDataCore
import Synchronization

/// Makes this node's revisions: picks the HLC, computes the version vector from the parents'
/// vectors, and signs. One per node incarnation (`actor`).
public final class RevisionSigner: Sendable {
    public let key: NodeKey
    /// This incarnation's actor id in version vectors.
    public let actor: String
    let clock: Mutex<HLC>
    let wallClock: @Sendable () -> Int64

    public init(key: NodeKey, actor: String, lastHLC: HLC = HLC(wall: 0), wallClock: @escaping @Sendable () -> Int64) {
        self.key = key
        self.actor = actor
        self.clock = Mutex(lastHLC)
        self.wallClock = wallClock
    }

    /// The next HLC reading.
    public func tick() -> HLC {
        let now = wallClock()
        return clock.withLock { last in
            last = HLC.tick(last: last, now: now)
            return last
        }
    }

    /// Moves the clock past a reading seen in someone else's revision.
    public func observe(_ hlc: HLC) {
        clock.withLock { last in if hlc > last { last = hlc } }
    }

    /// A signed revision of `entityID` on top of `parents` (id and vector of each).
    public func revision(kind: EntityKind, entityID: String, parents: [(id: RevisionID, vector: VersionVector)], body: JSONObject?) -> SignedRevision {
        let r = Revision(
            kind: kind, entityID: entityID, parents: parents.map(\.id),
            versionVector: VersionVector.next(actor: actor, parents: parents.map(\.vector)),
            author: key.author, hlc: tick(), body: body)
        let bytes = r.signingBytes
        return r.signed(signature: key.sign(bytes), signingBytes: bytes)
    }
}
