//! Prometheus metrics, one registry per server instance.

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::time::Duration;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    runs: IntCounterVec,
    run_duration: HistogramVec,
    pub workers: IntGaugeVec,
    pub workers_restarted: IntCounter,
    target_calls: IntCounterVec,
    target_latency: HistogramVec,
    connector_calls: IntCounterVec,
    connector_latency: prometheus::Histogram,
    /// Open deliveries (pending or failed with a retry scheduled).
    pub queue_depth: IntGauge,
    /// Age in seconds of the oldest open delivery.
    pub queue_oldest_age: prometheus::Gauge,
    /// SQLite: write transactions committed, and the writers' transactions they held.
    pub db_commits: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

const LATENCY_BUCKETS: [f64; 15] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

impl Metrics {
    pub fn new() -> Self {
        let requests = IntCounterVec::new(
            Opts::new("actionsd_requests_total", "API requests by RPC and HTTP status"),
            &["rpc", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("actionsd_request_duration_seconds", "API request latency by RPC")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["rpc"],
        )
        .expect("valid metric");
        let runs = IntCounterVec::new(Opts::new("actionsd_action_runs_total", "Action runs by outcome"), &["outcome"])
            .expect("valid metric");
        let run_duration = HistogramVec::new(
            HistogramOpts::new("actionsd_action_run_duration_seconds", "Action run duration by outcome")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["outcome"],
        )
        .expect("valid metric");
        let workers =
            IntGaugeVec::new(Opts::new("actionsd_sandbox_workers", "Sandbox worker processes by state"), &["state"])
                .expect("valid metric");
        let workers_restarted = IntCounter::new(
            "actionsd_sandbox_workers_restarted_total",
            "Sandbox workers killed or crashed and replaced since start",
        )
        .expect("valid metric");
        let target_calls = IntCounterVec::new(
            Opts::new("actionsd_target_calls_total", "Actions v2 target calls by target type and outcome"),
            &["target_type", "outcome"],
        )
        .expect("valid metric");
        let target_latency = HistogramVec::new(
            HistogramOpts::new(
                "actionsd_target_call_duration_seconds",
                "Actions v2 target call latency by target type",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["target_type"],
        )
        .expect("valid metric");
        let queue_depth = IntGauge::new(
            "actionsd_delivery_queue_depth",
            "Open deliveries (pending, or failed with a retry scheduled)",
        )
        .expect("valid metric");
        let queue_oldest_age = prometheus::Gauge::new(
            "actionsd_delivery_oldest_pending_age_seconds",
            "Age of the oldest open delivery in seconds",
        )
        .expect("valid metric");
        let connector_calls = IntCounterVec::new(
            Opts::new("actionsd_connector_calls_total", "ZITADEL connector calls by condition kind and outcome"),
            &["condition", "outcome"],
        )
        .expect("valid metric");
        let connector_latency = prometheus::Histogram::with_opts(
            HistogramOpts::new("actionsd_connector_call_duration_seconds", "ZITADEL connector call latency")
                .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let db_commits = IntCounterVec::new(
            Opts::new(
                "actionsd_sqlite_group_commits_total",
                "SQLite group commit: commits made (kind=commits) and the writes they held (kind=writes)",
            ),
            &["kind"],
        )
        .expect("valid metric");
        let registry = Registry::new();
        let collectors: [Box<dyn Collector>; 13] = [
            Box::new(db_commits.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(runs.clone()),
            Box::new(run_duration.clone()),
            Box::new(workers.clone()),
            Box::new(workers_restarted.clone()),
            Box::new(target_calls.clone()),
            Box::new(target_latency.clone()),
            Box::new(queue_depth.clone()),
            Box::new(queue_oldest_age.clone()),
            Box::new(connector_calls.clone()),
            Box::new(connector_latency.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("register");
        }
        // The series of runs and target calls exist from the start (at 0), so dashboards and
        // alerts see them before the first run or call.
        for outcome in ["OUTCOME_SUCCEEDED", "OUTCOME_FAILED"] {
            runs.with_label_values(&[outcome]);
        }
        for kind in ["rest_webhook", "rest_call", "rest_async"] {
            for outcome in ["ok", "error", "timeout"] {
                target_calls.with_label_values(&[kind, outcome]);
            }
        }
        Metrics {
            registry,
            requests,
            latency,
            runs,
            run_duration,
            workers,
            workers_restarted,
            target_calls,
            target_latency,
            queue_depth,
            queue_oldest_age,
            connector_calls,
            connector_latency,
            db_commits,
        }
    }

    /// One connector call: its condition kind (`function`, `request`, `response`, `event`, `none`)
    /// and outcome (`succeeded`, `failed`, `passthrough`, `inactive`, `rejected`, `unavailable`).
    pub fn observe_connector_call(&self, condition: &str, outcome: &str, elapsed: Duration) {
        self.connector_calls.with_label_values(&[condition, outcome]).inc();
        self.connector_latency.observe(elapsed.as_secs_f64());
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn observe_request(&self, rpc: &str, status: u16, elapsed: Duration) {
        self.requests.with_label_values(&[rpc, &status.to_string()]).inc();
        self.latency.with_label_values(&[rpc]).observe(elapsed.as_secs_f64());
    }

    pub fn observe_run(&self, outcome: &str, elapsed: Duration) {
        self.runs.with_label_values(&[outcome]).inc();
        self.run_duration.with_label_values(&[outcome]).observe(elapsed.as_secs_f64());
    }

    pub fn observe_target_call(&self, target_type: &str, outcome: &str, elapsed: Duration) {
        self.target_calls.with_label_values(&[target_type, outcome]).inc();
        self.target_latency.with_label_values(&[target_type]).observe(elapsed.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
