import Metrics
public import Prometheus
import Synchronization

/// The process's Prometheus registry, bootstrapped into swift-metrics once per process, so
/// Hummingbird's request metrics and ours land in one `/metrics` page.
public enum NodeMetrics {
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Requests being served now (the health page's `active_connections`).
    static let inFlight = Atomic<Int>(0)
}
