import Logging
import Synchronization
import Testing
import ThingDataServer

/// The node's log handler keeps metadata to itself until a message is emitted.
@Suite struct LogHandlerTests {
    /// Records what reaches it: the events, and every metadata write made on it.
    struct Recording: LogHandler {
        final class Box: Sendable {
            let events = Mutex<[LogEvent]>([])
            let metadataWrites = Atomic<Int>(0)
        }
        let box: Box
        var logLevel: Logger.Level = .info
        var metadataProvider: Logger.MetadataProvider?
        var metadata: Logger.Metadata = [:] {
            didSet { box.metadataWrites.add(1, ordering: .relaxed) }
        }
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { box.events.withLock { $0.append(event) } }
    }

    @Test func metadataReachesTheInnerHandlerOnlyWithEmittedMessages() {
        let box = Recording.Box()
        var logger = Logger(label: "test") { _ in DeferredMetadataLogHandler(Recording(box: box)) }
        logger.logLevel = .info
        logger[metadataKey: "request"] = "r1"
        logger[metadataKey: "peer"] = "p1"
        logger.debug("below the level")
        #expect(box.events.withLock { $0.isEmpty })
        logger.info("hello", metadata: ["peer": "p2", "extra": "x"])
        let events = box.events.withLock { $0 }
        #expect(events.count == 1)
        #expect(events.first?.level == .info)
        #expect(events.first?.message.description == "hello")
        // The logger's metadata, with the message's own winning where both name a key.
        #expect(events.first?.metadata == ["request": "r1", "peer": "p2", "extra": "x"])
        // Setting metadata never touched the inner handler.
        #expect(box.metadataWrites.load(ordering: .relaxed) == 0)
        #expect(logger[metadataKey: "request"] == "r1")
    }
}
