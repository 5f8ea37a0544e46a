//! Health, readiness, metrics and the instance's JWKS (no authentication).

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/debug/healthz", get(healthz))
        .route("/debug/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/oauth/v2/keys", get(jwks))
}

/// The public keys that verify JWT payloads (Actions v2 `PAYLOAD_TYPE_JWT`/`_JWE`), as a JWKS.
async fn jwks(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "public, max-age=300")],
        s.v2.keys.jwks().to_string(),
    )
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok")
}

/// 200 while the database answers and every background job (run writer, pruning, delivery queue,
/// leases) is running; they all run until shutdown, so one that has ended has failed.
async fn ready(State(s): State<AppState>) -> impl IntoResponse {
    if let Some(job) = s.stopped_background_job() {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("background job stopped: {job} (see the log)"));
    }
    if s.store.ping().await {
        (StatusCode::OK, "ok".to_string())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable".to_string())
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    use std::sync::atomic::Ordering;
    let busy = s.sandbox.stats.busy.load(Ordering::Relaxed);
    s.metrics.workers.with_label_values(&["busy"]).set(busy);
    s.metrics.workers.with_label_values(&["idle"]).set(i64::try_from(s.sandbox.idle_count()).unwrap_or(i64::MAX));
    // Counters kept elsewhere, brought up to date (they only grow).
    let catch_up = |counter: &prometheus::IntCounter, total: u64| counter.inc_by(total.saturating_sub(counter.get()));
    catch_up(&s.metrics.workers_restarted, s.sandbox.stats.restarted.load(Ordering::Relaxed));
    if let Some(group) = s.store.group_commits() {
        for (kind, n) in [("commits", &group.commits), ("writes", &group.writes)] {
            catch_up(&s.metrics.db_commits.with_label_values(&[kind]), n.load(Ordering::Relaxed));
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}
