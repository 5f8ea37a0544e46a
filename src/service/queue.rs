//! The delivery worker: claims due deliveries, calls their targets with bounded concurrency,
//! records every attempt (batched) and schedules retries. One per server process; replicas on one
//! PostgreSQL share the rows through leases.

use super::targets::Targets;
use super::zitadel_api::EffectVerdict;
use crate::domain::time::now_micros;
use crate::store::deliveries::{self, AttemptResult, DeliveryState};
use crate::v2::call::CallFailure;
use entity::delivery;
use rand::Rng;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

/// The queue's settings (from the server configuration).
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// How often the queue looks for due deliveries when nothing woke it.
    pub poll_interval: Duration,
    /// The wait after the n-th failed attempt (the last step repeats).
    pub retry_schedule: Vec<Duration>,
    /// A delivery still failing this long after its creation is dead.
    pub max_age: Duration,
    /// Finished deliveries older than this are pruned.
    pub retention: Duration,
}

impl QueueConfig {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            concurrency: config.delivery_concurrency.max(1),
            poll_interval: config.delivery_poll_interval.as_std().max(Duration::from_millis(10)),
            retry_schedule: config.delivery_retry_schedule.0.clone(),
            max_age: config.delivery_max_age.as_std(),
            retention: config.run_retention.as_std(),
        }
    }
}

/// What every task of the queue shares.
struct Queue {
    targets: Arc<Targets>,
    config: QueueConfig,
}

/// How long a claim is held without renewal; renewed every third of it while the call runs.
const LEASE: Duration = Duration::from_secs(30);
/// Most rows claimed in one statement.
const CLAIM_BATCH: usize = 256;
/// How long the shutdown waits for attempts in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often succeeded and dead deliveries past the retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// When the next attempt after `attempts` failed ones is due (None: give up, the delivery is dead).
pub fn next_attempt(
    schedule: &[Duration],
    attempts: i32,
    retry_after: Option<u64>,
    now: i64,
    created_at: i64,
    max_age: Duration,
) -> Option<i64> {
    let step =
        schedule.get((attempts.max(1) - 1) as usize).or(schedule.last()).copied().unwrap_or(Duration::from_secs(5));
    let last = last_moment(created_at, max_age);
    // The receiver's own wait wins (actions-v2 §6: honoured), also past the schedule's longest
    // step. A wait that ends after the delivery's max age cannot be honoured (no attempt is made
    // after it): the schedule's step applies instead, so the delivery is not given up early.
    if let Some(secs) = retry_after {
        let at = now.saturating_add(micros(Duration::from_secs(secs.max(1))));
        if at <= last {
            return Some(at);
        }
    }
    let at = now + micros(step.mul_f64(rand::thread_rng().gen_range(0.8..1.2)));
    (at <= last).then_some(at)
}

/// The last moment a delivery created at `created_at` may be attempted (actions-v2 §6).
fn last_moment(created_at: i64, max_age: Duration) -> i64 {
    created_at.saturating_add(micros(max_age))
}

/// One attempt of one delivery.
async fn attempt(q: &Queue, row: &delivery::Model) -> AttemptResult {
    let started = Instant::now();
    let config = &q.config;
    let fail = |status: i32, error: String, retry_after: Option<u64>| failed(config, row, status, error, retry_after);
    // An attempt scheduled within the delivery's max age but taken up past it (the server was
    // down, the queue behind) is not made: actions-v2 §6, no attempt after creationDate + max age.
    // A RetryDelivery sets its attempt past the age on purpose, and that one is made.
    let deadline = last_moment(row.created_at, config.max_age);
    let now = now_micros();
    if row.next_attempt_at <= deadline && now > deadline {
        let error = format!(
            "not sent: taken up {}s after its creation, past ACTIONSD_DELIVERY_MAX_AGE ({}s); {}",
            (now - row.created_at) / 1_000_000,
            config.max_age.as_secs(),
            if row.last_error.is_empty() {
                "no earlier attempt".to_string()
            } else {
                format!("last error: {}", row.last_error)
            }
        );
        return AttemptResult { sent: false, ..dead(row, row.last_status, error) };
    }
    if let Some(connection_id) = row.connection_id {
        return attempt_api_effect(q, row, connection_id, fail).await;
    }
    // The cached snapshot may predate a target another replica created just before the event: a
    // miss is looked up again in a snapshot loaded after this attempt began. A target removed
    // since has its deliveries given up in the removal's own transaction; one still missing here
    // went in between, and this attempt is not made.
    let registry = &q.targets.v2.registry;
    let store = &q.targets.store;
    let found = match registry.snapshot(store).await.map(|snap| snap.target(row.target_id)) {
        Ok(None) => registry.snapshot_after(store, started).await.map(|snap| snap.target(row.target_id)),
        other => other,
    };
    let t = match found {
        Ok(Some(t)) => t,
        Ok(None) => return AttemptResult { sent: false, ..dead(row, 0, "the target was removed".into()) },
        Err(e) => return fail(0, format!("loading the target failed: {}", e.message), None),
    };
    let timeout = Duration::from_nanos(t.timeout_nanos.max(1) as u64);
    let body = match q.targets.delivery_body(&row.payload) {
        Ok(body) => body,
        Err(e) => return dead(row, 0, format!("the stored body cannot be read: {e}")),
    };
    let result = q.targets.send(&t, &row.id.to_string(), body, timeout).await;
    // A target's answer: 2xx done, anything else retried.
    let verdict = |status: u16| if (200..300).contains(&status) { EffectVerdict::Done } else { EffectVerdict::Retry };
    let (outcome, result) = judge(row, result, verdict, &fail);
    q.targets.metrics.observe_target_call(t.target_type.as_str(), outcome, started.elapsed());
    result
}

/// An attempt's result from what the call came to; `verdict` says how an answer's status counts.
fn judge(
    row: &delivery::Model,
    result: Result<crate::v2::call::Answer, CallFailure>,
    verdict: impl Fn(u16) -> EffectVerdict,
    fail: &impl Fn(i32, String, Option<u64>) -> AttemptResult,
) -> (&'static str, AttemptResult) {
    let answer = match result {
        Ok(answer) => answer,
        Err(CallFailure::Timeout) => return ("timeout", fail(0, CallFailure::Timeout.describe(), None)),
        Err(e) => return ("error", fail(0, e.describe(), None)),
    };
    let status = answer.status as i32;
    let verdict = verdict(answer.status);
    if verdict == EffectVerdict::Done {
        let ok = AttemptResult {
            id: row.id,
            state: DeliveryState::Succeeded,
            status,
            error: String::new(),
            next_attempt_at: 0,
            sent: true,
        };
        return ("ok", ok);
    }
    let snippet: String = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
    let error =
        format!("HTTP {}{}", answer.status, if snippet.is_empty() { String::new() } else { format!(": {snippet}") });
    match verdict {
        EffectVerdict::Retry => ("error", fail(status, error, answer.retry_after)),
        _ => ("error", dead(row, status, error)),
    }
}

/// A delivery given up on.
/// A failed attempt: retried on the schedule, or dead once its next attempt would fall past the
/// delivery's max age.
fn failed(
    config: &QueueConfig,
    row: &delivery::Model,
    status: i32,
    error: String,
    retry_after: Option<u64>,
) -> AttemptResult {
    let now = now_micros();
    match next_attempt(&config.retry_schedule, row.attempts + 1, retry_after, now, row.created_at, config.max_age) {
        Some(at) => {
            AttemptResult { id: row.id, state: DeliveryState::Failed, status, error, next_attempt_at: at, sent: true }
        }
        None => dead(row, status, error),
    }
}

/// An attempt whose panic (a bug) counts as a failed attempt, retried on the schedule like any
/// other: without it, the delivery would stay in this node's in-flight set, its lease renewed for
/// the rest of the process's life, and never be attempted again.
async fn guarded(
    attempt: impl std::future::Future<Output = AttemptResult>,
    config: &QueueConfig,
    row: &delivery::Model,
) -> AttemptResult {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(attempt).catch_unwind().await {
        Ok(result) => result,
        Err(_) => {
            tracing::error!(delivery = row.id, "a delivery attempt panicked; counted as a failed attempt");
            failed(
                config,
                row,
                0,
                "the attempt failed inside actionsd (see its log); retried on the schedule".into(),
                None,
            )
        }
    }
}

fn dead(row: &delivery::Model, status: i32, error: String) -> AttemptResult {
    AttemptResult { id: row.id, state: DeliveryState::Dead, status, error, next_attempt_at: 0, sent: true }
}

/// One attempt of an effect a connector call applies through ZITADEL's API: the connection's
/// current `baseUrl` and token, 409 counted as done, other client errors (but 408 and 429) dead
/// at once.
async fn attempt_api_effect(
    q: &Queue,
    row: &delivery::Model,
    connection_id: i64,
    fail: impl Fn(i32, String, Option<u64>) -> AttemptResult,
) -> AttemptResult {
    use super::zitadel_api::{verdict, ApiEffect};
    let started = Instant::now();
    let Some(effect) = ApiEffect::from_payload(&row.payload) else {
        return dead(row, 0, "the delivery's payload is not an API effect".into());
    };
    let connection = match crate::store::connections::get(&q.targets.store.db, connection_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return dead(row, 0, "the connection was removed".into()),
        Err(e) => return fail(0, format!("loading the connection failed: {}", e.message), None),
    };
    let Some(access) = q.targets.zitadel_access(&connection) else {
        return dead(row, 0, "the connection has no zitadelApi".into());
    };
    let result = q.targets.zitadel.send_effect(&access, &effect).await;
    let (outcome, result) = judge(row, result, verdict, &fail);
    q.targets.metrics.observe_target_call("zitadelApi", outcome, started.elapsed());
    result
}

/// Starts the worker; it stops when `stop` turns true (after draining in-flight attempts).
pub fn start(
    targets: Arc<Targets>,
    config: QueueConfig,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let state = Arc::new(Queue { targets, config });
    tokio::spawn(async move {
        let concurrency = state.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let inflight: Arc<Mutex<HashSet<i64>>> = Default::default();
        // Bounded: while results cannot be recorded, finished attempts wait holding their permits,
        // so no new deliveries are claimed and memory stays bounded.
        let (tx, rx) = mpsc::channel::<AttemptResult>(concurrency);
        let recorder = tokio::spawn(record_results(state.clone(), rx, inflight.clone()));
        let (aux_stop_tx, aux_stop) = watch::channel(false);
        let renewer = tokio::spawn(renew_leases(state.clone(), inflight.clone(), aux_stop.clone()));
        let stats = tokio::spawn(queue_stats(state.clone(), aux_stop.clone()));
        let listener = (state.targets.store.backend == sea_orm::DatabaseBackend::Postgres)
            .then(|| tokio::spawn(listen_for_commits(state.clone(), aux_stop)));
        let poll = state.config.poll_interval.max(Duration::from_millis(10));
        // Turns true when the drain at shutdown is over: attempts still running are given up.
        let (abandon_tx, abandon) = watch::channel(false);
        let mut backlog = false;
        loop {
            if *stop.borrow() {
                break;
            }
            // Its helpers run until the stop signal: one that ended (a bug) ends the queue too, so
            // that readiness reports it instead of a queue that claims but never records.
            if recorder.is_finished() || renewer.is_finished() || stats.is_finished() {
                tracing::error!("a job of the delivery queue ended; the queue stops (readiness reports it)");
                break;
            }
            // Wait for a free slot before claiming; with a backlog, for a quarter of them, so that
            // claims stay batched instead of one row per finished attempt.
            let need = if backlog { (concurrency / 4).max(1) as u32 } else { 1 };
            let first = tokio::select! {
                p = permits.clone().acquire_many_owned(need) => p.ok(),
                _ = stop.changed() => None,
            };
            let Some(mut first) = first else { break };
            let want = (permits.available_permits() + need as usize).min(CLAIM_BATCH);
            let lease_until = now_micros() + micros(LEASE);
            let rows = match deliveries::claim(&state.targets.store, want as u64, lease_until).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e.message, "claiming deliveries failed");
                    Vec::new()
                }
            };
            let claimed = rows.len();
            backlog = claimed == want;
            for row in rows {
                let permit = if first.num_permits() > 1 {
                    first.split(1).expect("more than one permit held")
                } else if first.num_permits() == 1 {
                    std::mem::replace(&mut first, permits.clone().acquire_many_owned(0).await.expect("open semaphore"))
                } else {
                    match permits.clone().acquire_owned().await {
                        Ok(p) => p,
                        Err(_) => break,
                    }
                };
                inflight.lock().unwrap_or_else(|e| e.into_inner()).insert(row.id);
                let (state, tx, mut abandon) = (state.clone(), tx.clone(), abandon.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        result = guarded(attempt(&state, &row), &state.config, &row) => {
                            let _ = tx.send(result).await;
                        }
                        // Its lease is released below; another replica (or this one after a
                        // restart) makes the attempt again.
                        _ = abandon.changed() => {}
                    }
                    drop(permit);
                });
            }
            drop(first);
            if claimed < want {
                tokio::select! {
                    _ = state.targets.store.changes.deliveries_waker().notified() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        // Shutdown: let attempts in flight finish (bounded), then give back what is left.
        let drained =
            tokio::time::timeout(DRAIN_TIMEOUT, permits.clone().acquire_many_owned(concurrency as u32)).await.is_ok();
        let _ = abandon_tx.send(true);
        drop(tx);
        let _ = recorder.await;
        let left: Vec<i64> = inflight.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        if !drained || !left.is_empty() {
            if let Err(e) = deliveries::release(&state.targets.store, &left).await {
                tracing::warn!(error = %e.message, "releasing deliveries at shutdown failed");
            }
        }
        let _ = aux_stop_tx.send(true);
        let _ = renewer.await;
        let _ = stats.await;
        if let Some(listener) = listener {
            let _ = listener.await;
        }
    })
}

/// Writes attempt results in batches (what arrived within a few milliseconds of each other).
async fn record_results(state: Arc<Queue>, mut rx: mpsc::Receiver<AttemptResult>, inflight: Arc<Mutex<HashSet<i64>>>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + Duration::from_millis(5);
        while batch.len() < 512 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                _ => break,
            }
        }
        let ids: Vec<i64> = batch.iter().map(|r| r.id).collect();
        let mut tries = 0;
        loop {
            match deliveries::record(&state.targets.store, batch.clone()).await {
                Ok(()) => break,
                Err(e) if tries < 3 => {
                    tries += 1;
                    tracing::warn!(error = %e.message, "recording delivery attempts failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => {
                    // The leases run out and the deliveries are attempted again (at-least-once).
                    // A full or unreachable database is the environment's (WARN, as elsewhere).
                    if e.kind == crate::error::Kind::Unavailable {
                        tracing::warn!(error = %e.message, "recording delivery attempts failed");
                    } else {
                        tracing::error!(error = %e.message, "recording delivery attempts failed");
                    }
                    break;
                }
            }
        }
        let mut set = inflight.lock().unwrap_or_else(|e| e.into_inner());
        for id in ids {
            set.remove(&id);
        }
        drop(set);
        // A success may unblock the next delivery of the same aggregate.
        state.targets.store.changes.wake_deliveries();
    }
}

/// PostgreSQL: wakes the worker when any replica commits deliveries (`NOTIFY` in the inserting
/// transaction), so work queued through another replica does not wait for the poll interval.
async fn listen_for_commits(state: Arc<Queue>, mut stop: watch::Receiver<bool>) {
    use sea_orm::sqlx::postgres::PgListener;
    let pool = state.targets.store.db.get_postgres_connection_pool().clone();
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(deliveries::NOTIFY_CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::warn!(error = %e, "LISTEN for deliveries failed; polling only"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting the delivery listener failed; polling only"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    };
    loop {
        tokio::select! {
            n = listener.recv() => match n {
                Ok(_) => state.targets.store.changes.wake_deliveries(),
                Err(e) => {
                    // The listener reconnects on the next recv; the poll covers the gap.
                    tracing::warn!(error = %e, "delivery listener lost its connection");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        }
    }
}

async fn renew_leases(state: Arc<Queue>, inflight: Arc<Mutex<HashSet<i64>>>, stop: watch::Receiver<bool>) {
    super::every(LEASE / 3, true, stop, || {
        let ids: Vec<i64> = inflight.lock().unwrap_or_else(|e| e.into_inner()).iter().copied().collect();
        let state = state.clone();
        async move {
            if let Err(e) = deliveries::renew(&state.targets.store, &ids, now_micros() + micros(LEASE)).await {
                tracing::warn!(error = %e.message, "renewing delivery leases failed");
            }
        }
    })
    .await
}

/// Most deliveries one round of [`queue_stats`] gives up for their age (one transaction).
const EXPIRE_BATCH: u64 = 10_000;

/// Every 2 s: gives up the deliveries still queued past their max age, then the queue depth and
/// oldest open delivery for /metrics; prunes finished deliveries (at start, then every
/// [`PRUNE_EVERY`]).
async fn queue_stats(state: Arc<Queue>, stop: watch::Receiver<bool>) {
    let mut last_prune: Option<Instant> = None;
    super::every(Duration::from_secs(2), true, stop, || {
        let prune = last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
        if prune {
            last_prune = Some(Instant::now());
        }
        let state = state.clone();
        async move {
            match deliveries::expire(&state.targets.store, state.config.max_age, EXPIRE_BATCH).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deliveries = n, "gave up deliveries still queued past their max age"),
                Err(e) => tracing::warn!(error = %e.message, "giving up deliveries past their max age failed"),
            }
            match deliveries::open_stats(&state.targets.store.db, state.targets.store.backend).await {
                Ok((n, oldest)) => {
                    state.targets.metrics.queue_depth.set(n);
                    let age = oldest.map(|o| (now_micros() - o).max(0) as f64 / 1e6).unwrap_or(0.0);
                    state.targets.metrics.queue_oldest_age.set(age);
                }
                Err(e) => tracing::warn!(error = %e.message, "reading queue stats failed"),
            }
            if prune {
                let before = now_micros() - micros(state.config.retention);
                if let Err(e) = deliveries::prune(&state.targets.store, before).await {
                    tracing::warn!(error = %e.message, "pruning deliveries failed");
                }
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_repeat_the_last_and_stop_at_max_age() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(30)];
        let day = Duration::from_secs(86_400);
        let at = next_attempt(&schedule, 1, None, 0, 0, day).unwrap();
        assert!((4_000_000..=6_000_000).contains(&at), "{at}");
        let at = next_attempt(&schedule, 7, None, 0, 0, day).unwrap();
        assert!((24_000_000..=36_000_000).contains(&at), "{at}");
        assert_eq!(next_attempt(&schedule, 1, Some(20), 0, 0, day), Some(20_000_000));
        assert_eq!(next_attempt(&schedule, 1, None, 0, 0, Duration::from_secs(1)), None);
        // Retry-After is honoured past the schedule's longest step, within the max age; a wait
        // past the max age cannot be, and the schedule's step applies (nothing once that is past).
        assert_eq!(next_attempt(&schedule, 1, Some(3_600), 0, 0, day), Some(3_600_000_000));
        for too_long in [2 * 86_400, u64::MAX] {
            let at = next_attempt(&schedule, 2, Some(too_long), 1_000_000, 0, day).unwrap();
            assert!((1_000_000 + 24_000_000..=1_000_000 + 36_000_000).contains(&at), "{too_long}: {at}");
        }
        assert_eq!(next_attempt(&schedule, 1, Some(5), 86_400_000_000 - 1_000_000, 0, day), None);
    }

    /// A panicking attempt becomes a failed attempt on the schedule (not a delivery held forever),
    /// and a dead one once the schedule runs past the max age; a finished attempt passes through.
    #[tokio::test]
    async fn a_panicking_attempt_is_a_failed_attempt() {
        let config = QueueConfig {
            concurrency: 1,
            poll_interval: Duration::from_millis(10),
            retry_schedule: vec![Duration::from_secs(60)],
            max_age: Duration::from_secs(3600),
            retention: Duration::from_secs(3600),
        };
        let row = delivery::Model {
            id: 7,
            target_id: 1,
            connection_id: None,
            execution_id: "event/user.added".into(),
            event_type: None,
            aggregate_key: "1/user/2".into(),
            seq: 1,
            payload: "{}".into(),
            state: DeliveryState::Pending,
            attempts: 2,
            last_status: 503,
            last_error: "busy".into(),
            next_attempt_at: 0,
            lease_until: 0,
            lease_owner: 0,
            created_at: now_micros(),
            changed_at: 0,
        };
        let panics = async { panic!("a bug in an attempt") };
        let before = now_micros();
        let result = guarded(panics, &config, &row).await;
        assert_eq!((result.id, result.state, result.status, result.sent), (7, DeliveryState::Failed, 0, true));
        assert!(result.error.contains("failed inside actionsd"), "{}", result.error);
        let wait = result.next_attempt_at - before;
        assert!((48_000_000..=73_000_000).contains(&wait), "next attempt in {wait} µs, not about 60 s");

        let old = delivery::Model { created_at: now_micros() - 3_590_000_000, ..row.clone() };
        let result = guarded(async { panic!("again") }, &config, &old).await;
        assert_eq!(result.state, DeliveryState::Dead, "the next attempt would be past the max age");

        let done = dead(&row, 410, "gone".into());
        let result = guarded(async { done }, &config, &row).await;
        assert_eq!((result.state, result.status, result.error.as_str()), (DeliveryState::Dead, 410, "gone"));
    }
}
