//! `/metrics`: counters and histograms in the Prometheus (OpenMetrics) text format. Requests and
//! their latency by route and status, bytes in and out, rejections by error code, the key
//! store's size, evictions and parsed key sets, batch jobs by state, waits for a compute slot, and connections
//! refused at the per-address cap. Labels carry route templates and error codes
//! only: never a key id, a model's input or a ciphertext.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Route template and status of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: String,
    status: u16,
}

/// Route template.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: String,
}

/// State of a batch job.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobState {
    state: String,
}

/// Error code of a rejected request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    code: String,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    latency: Family<Route, Histogram>,
    bytes_in: Counter,
    bytes_out: Counter,
    rejections: Family<Reason, Counter>,
    key_store_bytes: Gauge,
    key_store_evictions: Gauge,
    loaded_key_sets: Gauge,
    jobs: Family<JobState, Gauge>,
    queue_wait: Histogram,
    refused_connections: Counter,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 65 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("unseen");
        let requests = Family::<RouteStatus, Counter>::default();
        let latency = Family::<Route, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let (bytes_in, bytes_out) = (Counter::default(), Counter::default());
        let rejections = Family::<Reason, Counter>::default();
        let (key_store_bytes, key_store_evictions, loaded_key_sets) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "http_requests",
            "HTTP requests by route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route template",
            latency.clone(),
        );
        registry.register(
            "http_received_bytes",
            "Request body bytes declared by Content-Length",
            bytes_in.clone(),
        );
        registry.register(
            "http_sent_bytes",
            "Response body bytes declared by Content-Length",
            bytes_out.clone(),
        );
        registry.register(
            "http_rejections",
            "Requests answered with an error, by error code",
            rejections.clone(),
        );
        registry.register(
            "key_store_bytes",
            "Bytes of stored evaluation-key bundles",
            key_store_bytes.clone(),
        );
        registry.register(
            "key_store_evictions",
            "Evaluation-key bundles evicted since the start",
            key_store_evictions.clone(),
        );
        registry.register(
            "loaded_key_sets",
            "Evaluation-key sets parsed in memory",
            loaded_key_sets.clone(),
        );
        let jobs = Family::<JobState, Gauge>::default();
        registry.register(
            "jobs",
            "Batch jobs in the shared database by state (all replicas' and workers')",
            jobs.clone(),
        );
        let queue_wait = latency_histogram();
        registry.register(
            "compute_queue_wait_seconds",
            "Time a request waited for a compute slot (one per core)",
            queue_wait.clone(),
        );
        let refused_connections = Counter::default();
        registry.register(
            "refused_connections",
            "HTTP connections answered 429 at once: their address held --max-connections-per-client",
            refused_connections.clone(),
        );
        Self {
            registry,
            queue_wait,
            refused_connections,
            requests,
            latency,
            bytes_in,
            bytes_out,
            rejections,
            key_store_bytes,
            key_store_evictions,
            loaded_key_sets,
            jobs,
        }
    }
}

impl Metrics {
    /// Records the wait for a compute slot.
    pub(crate) fn queue_waited(&self, seconds: f64) {
        self.queue_wait.observe(seconds);
    }

    /// Counts a connection refused at the per-address cap.
    pub(crate) fn refused_connection(&self) {
        self.refused_connections.inc();
    }

    /// Records one finished request.
    pub(crate) fn record(
        &self,
        route: &str,
        status: u16,
        seconds: f64,
        bytes_in: u64,
        bytes_out: u64,
        error_code: Option<&str>,
    ) {
        self.requests
            .get_or_create(&RouteStatus {
                route: route.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&Route {
                route: route.to_string(),
            })
            .observe(seconds);
        self.bytes_in.inc_by(bytes_in);
        self.bytes_out.inc_by(bytes_out);
        if let Some(code) = error_code {
            self.rejections
                .get_or_create(&Reason {
                    code: code.to_string(),
                })
                .inc();
        }
    }

    /// The text exposition, after refreshing the key store's gauges.
    /// Blocking: with a database, asks it for the store's size and the jobs per state.
    pub(crate) fn render(
        &self,
        store: Option<&crate::keystore::KeyStore>,
        jobs: Option<&crate::jobs::JobQueue>,
    ) -> String {
        if let Some(jobs) = jobs {
            if let Ok(counts) = jobs.counts() {
                for state in ["queued", "running", "done", "failed"] {
                    let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
                    self.jobs
                        .get_or_create(&JobState {
                            state: state.into(),
                        })
                        .set(n);
                }
            }
        }
        if let Some(store) = store {
            store.refresh_usage();
            let (bytes, evictions) = store.usage();
            self.key_store_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
            self.key_store_evictions
                .set(i64::try_from(evictions).unwrap_or(i64::MAX));
            self.loaded_key_sets
                .set(i64::try_from(store.loaded_sets()).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        match prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            Ok(()) => out,
            Err(_) => "# EOF\n".into(),
        }
    }
}
