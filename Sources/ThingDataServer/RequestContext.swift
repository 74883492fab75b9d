public import Hummingbird
import ThingDataCore

/// The request context of every route: bodies up to 10 MB, as the original.
public struct NodeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { ContentRules.maxBodyBytes }
}
