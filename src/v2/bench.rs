//! `actionsd bench-delivery`: measures the delivery queue and the cost of a request execution,
//! in one process, against a local receiver (benchmark helper; see bench/delivery.sh).

use crate::config::Config;
use crate::store::events::{self, NewEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Seen {
    /// aggregateID → first arrival.
    arrivals: Mutex<HashMap<String, Instant>>,
    /// Requests received, duplicates included.
    total: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

async fn receive(axum::extract::State(seen): axum::extract::State<Arc<Seen>>, body: axum::body::Bytes) -> &'static str {
    let now = Instant::now();
    seen.total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
        if let Some(id) = v["aggregateID"].as_str() {
            seen.arrivals.lock().unwrap_or_else(|e| e.into_inner()).entry(id.to_string()).or_insert(now);
        }
    }
    seen.changed.notify_waiters();
    ""
}

impl Seen {
    async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            if self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).len() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.arrivals.lock().unwrap_or_else(|e| e.into_inner()).len() >= n;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub async fn run(mut config: Config, events_n: usize, latency_n: usize, requests_n: usize) -> anyhow::Result<()> {
    config.http_allow_list = "127.0.0.1".into();
    let admin = crate::store::tokens::generate_secret();
    config.admin_token = Some(admin.clone());
    let backend = if config.is_postgres() { "postgres" } else { "sqlite" };
    let seen = Arc::new(Seen::default());
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr = receiver.local_addr()?;
    let app = axum::Router::new().fallback(receive).with_state(seen.clone());
    tokio::spawn(async move {
        let _ = axum::serve(receiver, app).await;
    });

    let state = crate::build_state(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(state.clone(), listener, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let api = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        client.request(method, format!("{base}{path}")).bearer_auth(&admin).json(&body).send()
    };
    let r = api(
        reqwest::Method::POST,
        "/v2/actions/targets",
        serde_json::json!({"name": "bench", "restWebhook": {}, "timeout": "10s",
            "endpoint": format!("http://{receiver_addr}/events")}),
    )
    .await?
    .json::<serde_json::Value>()
    .await?;
    let target_id = r["id"].as_str().ok_or_else(|| anyhow::anyhow!("CreateTarget failed: {r}"))?.to_string();
    let set = |condition: serde_json::Value, targets: Vec<String>| {
        api(
            reqwest::Method::PUT,
            "/v2/actions/executions",
            serde_json::json!({"condition": condition, "targets": targets}),
        )
    };
    set(serde_json::json!({"event": {"event": "action.added"}}), vec![target_id.clone()]).await?.error_for_status()?;
    println!("backend: {backend}; delivery concurrency {}", state.config.delivery_concurrency);

    // 1. Throughput: N events committed in one transaction, then drained.
    let prefix = format!("bench-{}", state.store.new_id());
    let p = prefix.clone();
    let n = events_n;
    state
        .store
        .write(&[], move |txn| {
            Box::pin(async move {
                for i in 0..n {
                    events::append(
                        txn,
                        NewEvent {
                            aggregate_type: crate::store::events::Aggregate::Action,
                            aggregate_id: format!("{p}-{i}"),
                            event_type: "action.added",
                            resource_owner: 0,
                            creator: 0,
                            payload: serde_json::json!({"name": format!("a{i}")}),
                        },
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let committed = Instant::now();
    if !seen.wait_for(events_n, Duration::from_secs(600)).await {
        anyhow::bail!("not every event was delivered");
    }
    let last = seen.arrivals.lock().unwrap_or_else(|e| e.into_inner()).values().max().copied().unwrap_or(committed);
    let drain = last.duration_since(committed);
    let dup = seen.total.load(std::sync::atomic::Ordering::Relaxed) - events_n;
    println!(
        "throughput: {events_n} events committed at once, all delivered (2xx) in {:.2} s = {:.0} deliveries/s (duplicates: {dup})",
        drain.as_secs_f64(),
        events_n as f64 / drain.as_secs_f64()
    );

    // 2. Latency at low load: one event per commit, 20 ms apart.
    let mut latencies = Vec::with_capacity(latency_n);
    for i in 0..latency_n {
        let id = format!("{prefix}-lat-{i}");
        let agg = id.clone();
        state
            .store
            .write(&[], move |txn| {
                Box::pin(async move {
                    events::append(
                        txn,
                        NewEvent {
                            aggregate_type: crate::store::events::Aggregate::Action,
                            aggregate_id: agg,
                            event_type: "action.added",
                            resource_owner: 0,
                            creator: 0,
                            payload: serde_json::json!({}),
                        },
                    )
                    .await
                })
            })
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?;
        let at = Instant::now();
        if !seen.wait_for(events_n + i + 1, Duration::from_secs(30)).await {
            anyhow::bail!("event {i} was not delivered within 30 s");
        }
        let got = seen.arrivals.lock().unwrap_or_else(|e| e.into_inner()).get(&id).copied().unwrap_or(at);
        latencies.push(got.saturating_duration_since(at));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    println!(
        "latency commit→2xx at low load ({latency_n} events, 20 ms apart): p50 {} p99 {} max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );

    // 3. What a restWebhook request execution adds to CreateAction.
    set(serde_json::json!({"event": {"event": "action.added"}}), vec![]).await?.error_for_status()?;
    let create = |name: String| {
        api(
            reqwest::Method::POST,
            "/management/v1/actions",
            serde_json::json!({"name": name, "script": "function a(ctx, api) {}"}),
        )
    };
    let mut timings: HashMap<&str, Vec<Duration>> = HashMap::new();
    let hook = api(
        reqwest::Method::POST,
        "/v2/actions/targets",
        serde_json::json!({"name": "bench-hook", "restWebhook": {"interruptOnError": true}, "timeout": "10s",
            "endpoint": format!("http://{receiver_addr}/hook")}),
    )
    .await?
    .json::<serde_json::Value>()
    .await?;
    let hook_id = hook["id"].as_str().unwrap_or_default().to_string();
    // Warm up, then alternate rounds so that both variants see the same machine state.
    for i in 0..20 {
        create(format!("{prefix}-warm-{i}")).await?.error_for_status()?;
    }
    let method = "/zitadel.management.v1.ManagementService/CreateAction";
    for round in 0..4 {
        for (label, targets) in [("none", vec![]), ("restWebhook", vec![hook_id.clone()])] {
            set(serde_json::json!({"request": {"method": method}}), targets).await?.error_for_status()?;
            // Executions are cached briefly; the first call after a change reloads them.
            create(format!("{prefix}-{label}-{round}-prime")).await?.error_for_status()?;
            for i in 0..requests_n / 4 {
                let started = Instant::now();
                create(format!("{prefix}-{label}-{round}-{i}")).await?.error_for_status()?;
                timings.entry(label).or_default().push(started.elapsed());
            }
        }
    }
    let mut summary = Vec::new();
    for label in ["none", "restWebhook"] {
        let v = timings.get_mut(label).expect("measured");
        v.sort();
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        println!(
            "CreateAction with request execution {label:<11}: n={} mean {} p50 {} p99 {}",
            v.len(),
            ms(mean),
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.99))
        );
        summary.push((mean, percentile(v, 0.5)));
    }
    let added_mean = summary[1].0.as_secs_f64() - summary[0].0.as_secs_f64();
    let added_p50 = summary[1].1.as_secs_f64() - summary[0].1.as_secs_f64();
    println!(
        "added by one restWebhook call (receiver answers at once, in process): mean {:.3} ms, p50 {:.3} ms",
        added_mean * 1000.0,
        added_p50 * 1000.0
    );
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(())
}
