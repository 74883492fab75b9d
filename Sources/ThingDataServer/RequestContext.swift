public import Hummingbird
public import NIOCore
import ThingDataCore

/// The request context of every route: bodies up to 10 MB, as the original; the client's
/// address; and who it is, once the access middleware has looked.
public struct NodeRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public var identity: ClientIdentity?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    public var maxUploadSize: Int { ContentRules.maxBodyBytes }

    /// The client's IP address as text, and whether it is loopback.
    public var client: (address: String?, loopback: Bool) {
        guard let a = remoteAddress else { return (nil, false) }
        let ip = a.ipAddress
        switch a {
        case .v4: return (ip, ip?.hasPrefix("127.") ?? false)
        case .v6: return (ip, ip == "::1" || (ip?.hasPrefix("::ffff:127.") ?? false))
        default: return (ip, false)
        }
    }
}
