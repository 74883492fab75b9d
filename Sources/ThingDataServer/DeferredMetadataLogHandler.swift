public import Logging

/// A log handler that keeps its metadata as a dictionary and hands it to `inner` only with a
/// message that is emitted.
///
/// `StreamLogHandler` renders its metadata as text each time a key is set, and Hummingbird
/// sets a request id on every request's logger, so each request paid for that text (1 % of the
/// node's CPU under POST load) whether anything was logged or not. Wrapped in this, the stream
/// handler's own metadata stays empty and it renders the merged metadata of each message it
/// writes, in the same format.
public struct DeferredMetadataLogHandler<Inner: LogHandler>: LogHandler {
    private var inner: Inner
    public var metadata: Logger.Metadata = [:]

    public init(_ inner: Inner) {
        self.inner = inner
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // The message's own metadata wins over the logger's, as in StreamLogHandler.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        inner.log(event: event)
    }
}
