import CResolv
import Glibc
import ThingDataCore

/// DNS lookups through glibc's libresolv (`res_n*`, thread-safe): PTR, SRV, TXT and A, from
/// the system's resolver configuration or from one given nameserver (address and port: tests
/// and private zones). Blocking: run it off the event loops.
final class UnicastDNS {
    private let state: UnsafeMutablePointer<__res_state>

    struct Failure: Error, CustomStringConvertible {
        var code: Int32
        var name: String
        var description: String {
            switch code {
            case 1: "\(name): no such name (NXDOMAIN)"
            case 2: "\(name): the nameserver did not answer or refused (SERVFAIL/REFUSED/timeout)"
            case 4: "\(name): no record of that type"
            default: "\(name): lookup failed (h_errno \(code))"
            }
        }
    }

    struct Answer<T> {
        var records: [T]
        var ttl: UInt32
    }

    /// `nameserver`: an IPv4 or IPv6 address; nil uses /etc/resolv.conf.
    init?(nameserver: String?, port: Int) {
        // The struct can only be reached as a type (`__res_state()` calls glibc's function of
        // that name): a zeroed allocation.
        state = calloc(1, MemoryLayout<__res_state>.size)!.bindMemory(to: __res_state.self, capacity: 1)
        guard __res_ninit(state) == 0 else {
            free(state)
            return nil
        }
        state.pointee.retrans = 2
        state.pointee.retry = 2
        state.pointee.options &= ~UInt(RES_DNSRCH | RES_DEFNAMES)
        if let nameserver {
            // Replace resolv.conf's servers before the first query.
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = UInt16(clamping: port).bigEndian
            guard inet_pton(AF_INET, nameserver, &sin.sin_addr) == 1 else {
                __res_nclose(state)
                free(state)
                return nil
            }
            state.pointee.nscount = 1
            state.pointee.nsaddr_list.0 = sin
        }
    }

    deinit {
        __res_nclose(state)
        free(state)
    }

    private func query<T>(_ name: String, _ type: ns_type, _ each: (ns_msg, ns_rr) -> T?) throws(Failure) -> Answer<T> {
        var buffer = [UInt8](repeating: 0, count: 8192)
        let n = res_nquery(state, name, Int32(ns_c_in.rawValue), Int32(type.rawValue), &buffer, Int32(buffer.count))
        if n < 0 { throw Failure(code: state.pointee.res_h_errno, name: name) }
        return try buffer.withUnsafeBufferPointer { b throws(Failure) -> Answer<T> in
            var msg = ns_msg()
            guard ns_initparse(b.baseAddress, n, &msg) == 0 else { throw Failure(code: -1, name: name) }
            var out: [T] = []
            var ttl = UInt32.max
            for i in 0..<Int(msg._counts.1) {
                var rr = ns_rr()
                guard ns_parserr(&msg, ns_s_an, Int32(i), &rr) == 0, rr.type == UInt16(type.rawValue) else { continue }
                if let v = each(msg, rr) {
                    out.append(v)
                    ttl = min(ttl, rr.ttl)
                }
            }
            return Answer(records: out, ttl: out.isEmpty ? 0 : ttl)
        }
    }

    private static func name(_ msg: ns_msg, _ p: UnsafePointer<UInt8>) -> String? {
        var text = [CChar](repeating: 0, count: Int(NS_MAXDNAME))
        guard ns_name_uncompress(msg._msg, msg._eom, p, &text, text.count) >= 0 else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    func ptr(_ name: String) throws(Failure) -> Answer<String> { try query(name, ns_t_ptr) { m, rr in Self.name(m, rr.rdata) } }

    func srv(_ name: String) throws(Failure) -> Answer<ServiceTarget> {
        try query(name, ns_t_srv) { m, rr in
            guard rr.rdlength >= 7, let d = rr.rdata, let target = Self.name(m, d + 6) else { return nil }
            return ServiceTarget(priority: Int(ns_get16(d)), weight: Int(ns_get16(d + 2)), port: Int(ns_get16(d + 4)), host: target)
        }
    }

    func txt(_ name: String) throws(Failure) -> Answer<[String]> {
        try query(name, ns_t_txt) { _, rr in
            var out: [String] = []
            let b = UnsafeBufferPointer(start: rr.rdata, count: Int(rr.rdlength))
            var i = 0
            while i < b.count {
                let length = Int(b[i])
                i += 1
                guard i + length <= b.count else { break }
                out.append(String(decoding: b[i..<(i + length)], as: UTF8.self))
                i += length
            }
            return out
        }
    }

    func a(_ name: String) throws(Failure) -> Answer<String> {
        try query(name, ns_t_a) { _, rr in
            guard rr.rdlength == 4, let d = rr.rdata else { return nil }
            return IPAddress(bytes: Array(UnsafeBufferPointer(start: d, count: 4))).description
        }
    }
}
