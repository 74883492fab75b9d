import CAvahi
import Glibc
import Logging
import ThingDataCore

/// What the mDNS side sees, in order.
public enum MDNSEvent: Sendable, Equatable {
    /// A service instance resolved (again: a TXT or address change resolves it anew).
    case found(instance: String, host: String, address: String, port: Int, txt: [String])
    /// The instance left (its goodbye, or its records expired).
    case removed(instance: String)
    /// The link to avahi-daemon: `running`, `connecting`, `unavailable` (with the reason).
    case daemon(state: String, detail: String)
    /// This node's service is published under `name` (after any rename).
    case published(name: String)
}

/// One connection to avahi-daemon (libavahi-client over D-Bus) on Avahi's threaded poll: it
/// publishes this node's `_thingdata._tcp` service and browses and resolves the others.
///
/// Threading: every callback runs on Avahi's poll thread while it holds the poll lock; other
/// threads touch the state only under `avahi_threaded_poll_lock` — that lock is this class's
/// mutex, hence `@unchecked Sendable`. The C callbacks are closures made inside methods (not
/// in top-level code, whose main-actor isolation makes Swift 6 trap when Avahi calls them from
/// its thread). After the daemon goes away the client is dead; the owner makes a new session.
final class AvahiSession: @unchecked Sendable {
    private let poll: OpaquePointer
    private var client: OpaquePointer?
    private var group: OpaquePointer?
    private var browser: OpaquePointer?
    private var resolvers: [String: OpaquePointer] = [:]
    private var serviceName: String
    private let port: UInt16
    private let txt: [String]
    private let events: AsyncStream<MDNSEvent>.Continuation
    private var renames = 0
    private(set) var lost = false
    static let maxRenames = 12

    init?(name: String, port: Int, txt: [String], events: AsyncStream<MDNSEvent>.Continuation) {
        guard let poll = avahi_threaded_poll_new() else { return nil }
        self.poll = poll
        self.serviceName = String(name.utf8.prefix(63)) ?? "thingdata"
        self.port = UInt16(clamping: port)
        self.txt = txt
        self.events = events
    }

    private var context: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }
    private static func from(_ p: UnsafeMutableRawPointer?) -> AvahiSession { Unmanaged<AvahiSession>.fromOpaque(p!).takeUnretainedValue() }

    /// Connects (waiting for the daemon if the bus is there but the daemon is not yet) and
    /// starts the poll thread. Nil on success; otherwise Avahi's reason.
    func start() -> String? {
        var error: Int32 = 0
        // The state callback runs inside avahi_client_new already, before it returns.
        let c = avahi_client_new(avahi_threaded_poll_get(poll), AVAHI_CLIENT_NO_FAIL, { c, state, ud in
            AvahiSession.from(ud).clientChanged(c!, state)
        }, context, &error)
        guard let c else {
            avahi_threaded_poll_free(poll)
            return String(cString: avahi_strerror(error))
        }
        client = c
        guard avahi_threaded_poll_start(poll) >= 0 else {
            avahi_client_free(c)
            avahi_threaded_poll_free(poll)
            return "cannot start Avahi's poll thread"
        }
        return nil
    }

    /// Stops the poll thread, then frees the client (the daemon withdraws our service and
    /// sends goodbyes) and the poll. Never from a callback.
    func stop() {
        avahi_threaded_poll_stop(poll)
        if let c = client { avahi_client_free(c) }
        client = nil
        group = nil
        browser = nil
        resolvers.removeAll()
        avahi_threaded_poll_free(poll)
    }

    /// Whether the daemon went away (the client is dead; make a new session).
    var isLost: Bool {
        avahi_threaded_poll_lock(poll)
        defer { avahi_threaded_poll_unlock(poll) }
        return lost
    }

    // MARK: Callbacks (poll thread, lock held)

    private func clientChanged(_ c: OpaquePointer, _ state: AvahiClientState) {
        switch state {
        case AVAHI_CLIENT_S_RUNNING:
            events.yield(.daemon(state: "running", detail: String(cString: avahi_client_get_version_string(c))))
            register(c)
            if browser == nil { browse(c) }
        case AVAHI_CLIENT_S_REGISTERING, AVAHI_CLIENT_S_COLLISION:
            // The host name is being (re)registered: our records must wait for S_RUNNING.
            if let g = group { avahi_entry_group_reset(g) }
        case AVAHI_CLIENT_CONNECTING:
            events.yield(.daemon(state: "connecting", detail: "waiting for avahi-daemon to appear on the system D-Bus"))
            dropObjects()
        case AVAHI_CLIENT_FAILURE:
            let e = avahi_client_errno(c)
            dropObjects()
            lost = true
            events.yield(.daemon(state: "unavailable", detail: String(cString: avahi_strerror(e))))
        default:
            break
        }
    }

    private func dropObjects() {
        for (_, r) in resolvers { avahi_service_resolver_free(r) }
        resolvers.removeAll()
        if let b = browser { avahi_service_browser_free(b) }
        browser = nil
        if let g = group { avahi_entry_group_free(g) }
        group = nil
    }

    private func register(_ c: OpaquePointer) {
        if group == nil {
            group = avahi_entry_group_new(c, { g, state, ud in AvahiSession.from(ud).groupChanged(g!, state) }, context)
        }
        guard let g = group, avahi_entry_group_is_empty(g) != 0 else { return }
        while renames <= Self.maxRenames {
            var list: UnsafeMutablePointer<AvahiStringList>? = nil
            // avahi_string_list_add prepends and serializing reverses: natural order on the wire.
            for t in txt { list = avahi_string_list_add(list, t) }
            defer { avahi_string_list_free(list) }
            let r = avahi_entry_group_add_service_strlst(
                g, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), AvahiPublishFlags(0),
                serviceName, ThingDataService.type, nil, nil, port, list)
            if Int(r) == Int(AVAHI_ERR_COLLISION) {
                // Another client of this daemon holds the name.
                rename()
                avahi_entry_group_reset(g)
                continue
            }
            if r < 0 {
                events.yield(.daemon(state: "running", detail: "cannot publish: \(String(cString: avahi_strerror(r)))"))
                return
            }
            avahi_entry_group_commit(g)
            return
        }
        events.yield(.daemon(state: "running", detail: "not published: \(Self.maxRenames) names collided"))
    }

    private func rename() {
        renames += 1
        if let n = avahi_alternative_service_name(serviceName) {
            serviceName = String(cString: n)
            avahi_free(n)
        }
    }

    private func groupChanged(_ g: OpaquePointer, _ state: AvahiEntryGroupState) {
        switch state {
        case AVAHI_ENTRY_GROUP_ESTABLISHED:
            events.yield(.published(name: serviceName))
        case AVAHI_ENTRY_GROUP_COLLISION:
            // Another host on the link owns the name: take the next alternative, a bounded
            // number of times (no rename loops).
            guard renames < Self.maxRenames else {
                events.yield(.daemon(state: "running", detail: "not published: \(Self.maxRenames) names collided"))
                return
            }
            rename()
            avahi_entry_group_reset(g)
            register(avahi_entry_group_get_client(g))
        default:
            break
        }
    }

    private func browse(_ c: OpaquePointer) {
        browser = avahi_service_browser_new(
            c, AvahiIfIndex(AVAHI_IF_UNSPEC), AvahiProtocol(AVAHI_PROTO_UNSPEC), ThingDataService.type, nil, AvahiLookupFlags(0),
            { b, iface, proto, event, name, type, domain, _, ud in
                AvahiSession.from(ud).browsed(b!, iface, proto, event, name, type, domain)
            }, context)
    }

    private func browsed(_ b: OpaquePointer, _ iface: AvahiIfIndex, _ proto: AvahiProtocol, _ event: AvahiBrowserEvent,
                         _ name: UnsafePointer<CChar>?, _ type: UnsafePointer<CChar>?, _ domain: UnsafePointer<CChar>?) {
        let instance = name.map { String(cString: $0) } ?? ""
        let key = "\(iface)/\(proto)/\(instance)"
        switch event {
        case AVAHI_BROWSER_NEW:
            // Kept alive while the service is listed: it reports again when TXT or SRV change.
            guard resolvers[key] == nil else { return }
            let r = avahi_service_resolver_new(
                avahi_service_browser_get_client(b), iface, proto, name, type, domain, AvahiProtocol(AVAHI_PROTO_INET), AvahiLookupFlags(0),
                { r, _, _, event, name, _, _, host, address, port, txt, _, ud in
                    AvahiSession.from(ud).resolved(r!, event, name, host, address, port, txt)
                }, context)
            if let r { resolvers[key] = r }
        case AVAHI_BROWSER_REMOVE:
            if let r = resolvers.removeValue(forKey: key) { avahi_service_resolver_free(r) }
            events.yield(.removed(instance: instance))
        default:
            break
        }
    }

    private func resolved(_ r: OpaquePointer, _ event: AvahiResolverEvent, _ name: UnsafePointer<CChar>?, _ host: UnsafePointer<CChar>?,
                          _ address: UnsafePointer<AvahiAddress>?, _ port: UInt16, _ txt: UnsafeMutablePointer<AvahiStringList>?) {
        // A resolver that times out (a crashed host's records linger) stays: it reports again
        // if the service comes back. Liveness is the node's own probes' business.
        guard event == AVAHI_RESOLVER_FOUND, let address else { return }
        var text = [CChar](repeating: 0, count: Int(AVAHI_ADDRESS_STR_MAX))
        avahi_address_snprint(&text, text.count, address)
        var strings: [String] = []
        var node = txt
        while let n = node {
            strings.append(String(decoding: UnsafeBufferPointer(start: avahi_string_list_get_text(n), count: avahi_string_list_get_size(n)), as: UTF8.self))
            node = avahi_string_list_get_next(n)
        }
        events.yield(.found(
            instance: name.map { String(cString: $0) } ?? "", host: host.map { String(cString: $0) } ?? "",
            address: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self), port: Int(port), txt: strings))
    }
}

/// mDNS for a node: keeps one `AvahiSession` alive for as long as it runs. No daemon at start:
/// one warning, then retries with backoff, the rest of the node unaffected. The daemon going
/// away: a new session at once, which waits for the daemon to come back.
struct MDNSRunner: Sendable {
    var name: String
    var port: Int
    var txt: [String]
    var logger: Logger

    func run(_ events: AsyncStream<MDNSEvent>.Continuation) async {
        var backoff: Duration = .seconds(2)
        while !Task.isCancelled {
            guard let session = AvahiSession(name: name, port: port, txt: txt, events: events) else { return }
            if let failure = session.start() {
                // No bus or no daemon: the owner warns once; retry with backoff.
                events.yield(.daemon(state: "unavailable", detail: "\(failure); retrying in \(backoff)"))
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(300))
                continue
            }
            backoff = .seconds(2)
            while !Task.isCancelled && !session.isLost {
                try? await Task.sleep(for: .milliseconds(250))
            }
            let lost = session.isLost
            session.stop()
            if lost { logger.debug("mDNS: the avahi-daemon connection was lost; connecting again") }
        }
    }
}
