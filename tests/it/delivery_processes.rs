//! The durable delivery queue with the real binary as child processes (README, "Actions v2"):
//! deliveries survive `kill -9`, leases of a killed process expire, and two replicas on one
//! PostgreSQL share the queue without double-sending.

use crate::common;

use common::process::Process;
use common::receiver::{Answer, Receiver, Recorded};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const ADMIN: &str = "delivery-processes-admin-token-0123456789abcdefghij";
const ENCRYPTION_KEY: &str = "delivery-processes-encryption-key-0123456789";

/// One `actionsd serve` process with the admin token and loopback targets allowed, and the
/// queue-specific helpers these tests share.
struct Server(Process);

impl std::ops::Deref for Server {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.0
    }
}

impl Server {
    /// Starts the binary with `env` (plus the admin token and loopback targets allowed).
    async fn start(dir: &Path, name: &str, env: &[(&str, String)]) -> Server {
        let mut all = vec![
            ("ACTIONSD_ADMIN_TOKEN", ADMIN.to_string()),
            ("ACTIONSD_HTTP_ALLOW_LIST", "127.0.0.1".to_string()),
            ("ACTIONSD_SANDBOX_WORKERS", "1".to_string()),
        ];
        all.extend(env.iter().cloned());
        Server(Process::start(dir, name, &all).await)
    }

    /// SIGKILL: no graceful shutdown, no release of claimed deliveries.
    fn kill_9(self) {
        self.0.kill_9();
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.request(method, path, Some(ADMIN), body).await
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let (status, r) = self.call(method, path, Some(body)).await;
        assert_eq!(status, 200, "{path}: {r}\n{}", self.log_text());
        r
    }

    /// A restWebhook target on `endpoint` with an `action.added` event execution; returns its id.
    async fn subscribe(&self, endpoint: &str, timeout: &str) -> String {
        let r = self
            .ok(
                reqwest::Method::POST,
                "/v2/actions/targets",
                json!({"name": "receiver", "endpoint": endpoint, "timeout": timeout, "restWebhook": {}}),
            )
            .await;
        let id = r["id"].as_str().expect("target id").to_string();
        self.ok(
            reqwest::Method::PUT,
            "/v2/actions/executions",
            json!({"condition": {"event": {"event": "action.added"}}, "targets": [id]}),
        )
        .await;
        id
    }

    async fn create_action(&self, name: &str) -> String {
        let r = self
            .ok(
                reqwest::Method::POST,
                "/management/v1/actions",
                json!({"name": name, "script": format!("function {name}(ctx, api) {{}}")}),
            )
            .await;
        r["id"].as_str().expect("action id").to_string()
    }

    /// Every delivery record (up to 1,000 per page).
    async fn deliveries(&self, filters: Value) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let r = self
                .ok(
                    reqwest::Method::POST,
                    "/v2/actions/deliveries/search",
                    json!({"pagination": {"offset": out.len(), "limit": 1000}, "filters": filters}),
                )
                .await;
            let page = r["deliveries"].as_array().cloned().unwrap_or_default();
            let total: usize = r["pagination"]["totalResult"].as_str().unwrap_or("0").parse().unwrap();
            let empty = page.is_empty();
            out.extend(page);
            if empty || out.len() >= total {
                return out;
            }
        }
    }

    async fn wait_deliveries(&self, timeout: Duration, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let ds = self.deliveries(json!([])).await;
            if pred(&ds) {
                return ds;
            }
            let states: BTreeMap<String, usize> = ds.iter().fold(BTreeMap::new(), |mut m, d| {
                *m.entry(d["state"].as_str().unwrap_or("?").to_string()).or_default() += 1;
                m
            });
            assert!(Instant::now() < deadline, "timed out waiting for {what}; states {states:?}\n{}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The sum of `actionsd_target_calls_total` samples with `outcome` (any outcome if None).
    async fn target_calls(&self, outcome: Option<&str>) -> f64 {
        let text = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("actionsd_target_calls_total{"))
            .filter(|l| outcome.is_none_or(|o| l.contains(&format!("outcome=\"{o}\""))))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum()
    }
}

fn ids_of(ds: &[Value]) -> BTreeSet<String> {
    ds.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect()
}

fn webhook_ids(reqs: &[Recorded]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in reqs {
        *m.entry(r.header("webhook-id")).or_default() += 1;
    }
    m
}

fn sqlite_env(db: &Path, schedule: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ACTIONSD_DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display())),
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", schedule.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pending_deliveries_survive_kill_9() {
    const N: usize = 30;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("queue.db");
    let env = sqlite_env(&db, "300ms,600ms");
    let rx = Receiver::start().await;
    rx.pause().await;

    let server = Server::start(dir.path(), "run-1", &env).await;
    let target = server.subscribe(&rx.url("/events"), "5s").await;
    let mut actions = BTreeSet::new();
    for i in 0..N {
        actions.insert(server.create_action(&format!("survivor_{i}")).await);
    }
    let listed = server
        .wait_deliveries(Duration::from_secs(20), "every delivery failed at least once", |ds| {
            ds.len() == N
                && ds.iter().all(|d| {
                    d["state"] == "DELIVERY_STATE_FAILED"
                        && d["attempts"].as_i64() >= Some(1)
                        && d["targetId"] == target
                })
        })
        .await;
    let ids = ids_of(&listed);
    assert!(rx.requests().is_empty());
    server.kill_9();

    rx.resume().await;
    let started = Instant::now();
    let server = Server::start(dir.path(), "run-2", &env).await;
    let got = rx
        .wait_until(Duration::from_secs(60), "every delivery after the restart", |r| {
            ids.iter().all(|id| r.iter().any(|x| x.header("webhook-id") == *id))
        })
        .await;
    eprintln!("all {N} deliveries arrived {:?} after the restart", started.elapsed());
    let seen = webhook_ids(&got);
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), ids, "only the queued deliveries, each at least once");
    let aggregates: BTreeSet<String> =
        got.iter().map(|r| r.json()["aggregateID"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(aggregates, actions, "every acknowledged action's event was delivered");
    server
        .wait_deliveries(Duration::from_secs(20), "all succeeded", |ds| {
            ds.len() == N && ds.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED")
        })
        .await;
}

/// A server (`run-1`) on a fresh SQLite file in `dir` with `n` deliveries in flight: the receiver
/// holds every call for two minutes. Returns the server's settings, the receiver, the server and
/// the deliveries' ids.
async fn attempts_in_flight(
    dir: &Path,
    env: Vec<(&'static str, String)>,
    n: usize,
    prefix: &str,
) -> (Vec<(&'static str, String)>, Receiver, Server, BTreeSet<String>) {
    let rx = Receiver::start().await;
    rx.set_default(Answer::status(200).with_delay(Duration::from_secs(120)));
    let server = Server::start(dir, "run-1", &env).await;
    server.subscribe(&rx.url("/slow"), "120s").await;
    for i in 0..n {
        server.create_action(&format!("{prefix}_{i}")).await;
    }
    let first = rx.wait_until(Duration::from_secs(20), "N attempts in flight", |r| webhook_ids(r).len() == n).await;
    let ids = webhook_ids(&first).into_keys().collect();
    (env, rx, server, ids)
}

/// Deliveries in flight when their server is killed are made again by the next start: on
/// PostgreSQL once their lease has expired (another replica may still hold them), on SQLite at
/// once (the only server of the file holds its lock, so any lease is a dead process's).
async fn killed_attempts_are_made_again(env: Vec<(&'static str, String)>, dir: &Path, within: Duration) {
    const N: usize = 5;
    let (env, rx, server, ids) = attempts_in_flight(dir, env, N, "in_flight").await;
    let listed = server.deliveries(json!([])).await;
    assert_eq!(ids_of(&listed), ids);
    assert!(listed.iter().all(|d| d["state"] == "DELIVERY_STATE_PENDING"), "claimed, not yet recorded: {listed:#?}");
    server.kill_9();

    rx.set_default(Answer::status(200));
    let started = Instant::now();
    let server = Server::start(dir, "run-2", &env).await;
    let got = rx
        .wait_until(Duration::from_secs(90), "the redone attempts", |r| webhook_ids(r).values().all(|n| *n >= 2))
        .await;
    let waited = started.elapsed();
    eprintln!("in-flight deliveries redone {waited:?} after the restart");
    assert!(waited < within, "redone {waited:?} after the restart, not within {within:?}");
    assert_eq!(webhook_ids(&got).into_keys().collect::<BTreeSet<_>>(), ids);
    server
        .wait_deliveries(Duration::from_secs(20), "all succeeded", |ds| {
            ds.len() == N && ds.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED" && d["attempts"] == 1)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_attempts_are_made_again_at_once_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sqlite_env(&dir.path().join("lease.db"), "300ms,600ms");
    killed_attempts_are_made_again(env, dir.path(), Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_of_a_killed_process_expire_postgres() {
    let Some(url) = common::postgres_url_or_skip("leases_of_a_killed_process_expire_postgres") else { return };
    let schema = common::create_schema(&url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("ACTIONSD_DATABASE_URL", common::url_with_schema(&url, &schema)),
        ("ACTIONSD_ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", "300ms,600ms".to_string()),
    ];
    killed_attempts_are_made_again(env, dir.path(), Duration::from_secs(90)).await;
    common::drop_schema(&url, &schema).await;
}

/// SIGTERM with attempts in flight (README §6): they get up to 10 s, then their leases are given
/// back, so the server is gone in about 10 s and the next start makes them again at once instead
/// of after the 30 s lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_gives_attempts_in_flight_ten_seconds_then_releases_them() {
    const N: usize = 3;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = sqlite_env(&dir.path().join("drain.db"), "300ms,600ms");
    let (env, rx, server, ids) = attempts_in_flight(dir.path(), env, N, "draining").await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.0.terminate(Duration::from_secs(40))).await.unwrap();
    let took = started.elapsed();
    let status = status.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(status.success(), "{status}");
    assert!(took >= Duration::from_secs(9) && took < Duration::from_secs(20), "exited after {took:?}");

    rx.set_default(Answer::status(200));
    let restarted = Instant::now();
    let server = Server::start(dir.path(), "run-2", &env).await;
    let got = rx
        .wait_until(Duration::from_secs(60), "the released attempts, again", |r| {
            webhook_ids(r).values().all(|n| *n >= 2)
        })
        .await;
    assert!(
        restarted.elapsed() < Duration::from_secs(15),
        "released, not left to their lease: {:?}",
        restarted.elapsed()
    );
    assert_eq!(webhook_ids(&got).into_keys().collect::<BTreeSet<_>>(), ids);
    server
        .wait_deliveries(Duration::from_secs(20), "all succeeded", |ds| {
            ds.len() == N && ds.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED")
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_deliver_each_event_exactly_once() {
    const N: usize = 1000;
    let Ok(url) = std::env::var(common::POSTGRES_ENV) else {
        eprintln!(
            "SKIPPED two_replicas_on_postgres_deliver_each_event_exactly_once: {} is not set",
            common::POSTGRES_ENV
        );
        return;
    };
    let schema = common::create_schema(&url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("ACTIONSD_DATABASE_URL", common::url_with_schema(&url, &schema)),
        ("ACTIONSD_ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
        ("ACTIONSD_DELIVERY_RETRY_SCHEDULE", "300ms,600ms".to_string()),
    ];
    let rx = Receiver::start().await;
    let a = Server::start(dir.path(), "replica-a", &env).await;
    let b = Server::start(dir.path(), "replica-b", &env).await;
    // Both really share the database in that schema.
    a.subscribe(&rx.url("/events"), "10s").await;
    let (status, r) = b.call(reqwest::Method::POST, "/v2/actions/targets/search", Some(json!({}))).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["pagination"]["totalResult"], "1", "replica B sees A's target: {r}");

    let started = Instant::now();
    let servers = [&a, &b];
    let actions: Vec<String> = futures::stream::iter(0..N)
        .map(|i| async move { servers[i % 2].create_action(&format!("replicated_{i}")).await })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(actions.iter().collect::<BTreeSet<_>>().len(), N);
    let got = rx.wait_until(Duration::from_secs(120), "all 1,000 deliveries", |r| webhook_ids(r).len() >= N).await;
    eprintln!("{N} events created and delivered in {:?}", started.elapsed());
    let listed = b
        .wait_deliveries(Duration::from_secs(30), "all recorded as succeeded", |ds| {
            ds.len() == N && ds.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED")
        })
        .await;
    // Nothing is open any more, so nothing can be sent again: the count is final.
    let got_after = rx.requests();
    let counts = webhook_ids(&got_after);
    let duplicates: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "{} delivery ids received more than once: {duplicates:?}", duplicates.len());
    assert_eq!(got_after.len(), N, "exactly {N} calls");
    assert!(got.len() <= got_after.len());
    assert_eq!(
        counts.keys().cloned().collect::<BTreeSet<_>>(),
        ids_of(&listed),
        "the webhook-ids are the delivery ids"
    );
    assert!(listed.iter().all(|d| d["attempts"] == 1), "one attempt each");
    let aggregates: BTreeSet<String> =
        got_after.iter().map(|r| r.json()["aggregateID"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(aggregates, actions.into_iter().collect::<BTreeSet<_>>());
    // Each replica counted its own calls; together exactly N, none failed.
    let (calls_a, calls_b) = (a.target_calls(None).await, b.target_calls(None).await);
    eprintln!("replica A made {calls_a} calls, replica B {calls_b}");
    assert_eq!(calls_a + calls_b, N as f64, "no attempt was made twice");
    assert_eq!(a.target_calls(Some("ok")).await + b.target_calls(Some("ok")).await, N as f64);
    a.kill_9();
    b.kill_9();
    common::drop_schema(&url, &schema).await;
}

/// A target created through one replica and the event that needs it right after: the replica
/// that claims the delivery may hold a cached view of the targets from before the target existed
/// (its reads are busy: every request consults it). The delivery is sent, not given up as "the
/// target was removed".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_created_through_another_replica_is_delivered_to() {
    const ROUNDS: usize = 8;
    let Some(url) = common::postgres_url_or_skip("a_target_created_through_another_replica_is_delivered_to") else {
        return;
    };
    let schema = common::create_schema(&url).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let env = vec![
        ("ACTIONSD_DATABASE_URL", common::url_with_schema(&url, &schema)),
        ("ACTIONSD_ENCRYPTION_KEY", ENCRYPTION_KEY.to_string()),
    ];
    let rx = Receiver::start().await;
    let a = Server::start(dir.path(), "fresh-target-a", &env).await;
    let b = Server::start(dir.path(), "fresh-target-b", &env).await;
    // Requests keep replica B's cached view of targets and executions young.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let busy = {
        let (client, base, stop) = (b.client.clone(), b.base.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = client.get(format!("{base}/management/v1/orgs/me")).bearer_auth(ADMIN).send().await;
            }
        })
    };
    let mut targets = Vec::new();
    for round in 0..ROUNDS {
        let r = a
            .ok(
                reqwest::Method::POST,
                "/v2/actions/targets",
                json!({"name": format!("round-{round}"), "endpoint": rx.url(&format!("/round/{round}")),
                    "timeout": "10s", "restWebhook": {}}),
            )
            .await;
        let id = r["id"].as_str().expect("target id").to_string();
        let execution = json!({"condition": {"event": {"event": "action.added"}}, "targets": [id]});
        a.ok(reqwest::Method::PUT, "/v2/actions/executions", execution).await;
        targets.push(id);
        b.create_action(&format!("fresh_target_{round}")).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    busy.await.unwrap();
    let listed = a
        .wait_deliveries(Duration::from_secs(30), "every delivery finished", |ds| {
            ds.len() == ROUNDS
                && ds.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED" || d["state"] == "DELIVERY_STATE_DEAD")
        })
        .await;
    for d in &listed {
        assert_eq!(d["state"], "DELIVERY_STATE_SUCCEEDED", "{d}\n{}\n{}", a.log_text(), b.log_text());
    }
    assert_eq!(
        listed.iter().map(|d| d["targetId"].as_str().unwrap_or("").to_string()).collect::<BTreeSet<_>>(),
        targets.into_iter().collect::<BTreeSet<_>>(),
        "one delivery to each round's target"
    );
    assert_eq!(webhook_ids(&rx.requests()).len(), ROUNDS);
    a.kill_9();
    b.kill_9();
    common::drop_schema(&url, &schema).await;
}
