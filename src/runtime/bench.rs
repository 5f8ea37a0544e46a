//! `actionsd bench-runtime`: the per-run cost of a typical Complement Token action, in process
//! (fresh realm per run) and through a warm sandbox worker (adds the isolation cost).

use super::pool::{PoolConfig, SandboxPool};
use super::{worker, Job};
use std::time::{Duration, Instant};

pub const SCRIPT: &str = r#"function addClaims(ctx, api) {
  api.v1.claims.setClaim('tenant', 'acme');
  api.v1.claims.setClaim('roles', ['admin', 'user']);
  api.v1.claims.setClaim('year', 2026);
  api.v1.user.setMetadata('lastLogin', 'today');
  require('zitadel/log').info('claims added for %s', ctx.v1.getUser().username);
}"#;

pub fn job() -> Job {
    Job {
        script: SCRIPT.into(),
        name: "addClaims".into(),
        flow: 2,
        trigger: 4,
        context: serde_json::json!({
            "claims": {"sub": "123"},
            "user": {"id": "123", "username": "alice", "human": {"firstName": "Alice"}},
        }),
        state: serde_json::json!({}),
        top_level_ms: 5000,
        deadline_ms: 0,
        secrets: Default::default(),
        deny_fetch: false,
    }
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len().max(1);
    let total: Duration = samples.iter().sum();
    let pct = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)].as_secs_f64() * 1e6;
    println!(
        "{label}: runs={n} mean={:.1}us p50={:.1}us p99={:.1}us",
        total.as_secs_f64() * 1e6 / n as f64,
        pct(0.50),
        pct(0.99)
    );
}

pub async fn run(iterations: usize, exe: std::path::PathBuf) {
    let job = job();
    let first = worker::run_job(&job);
    assert!(first.ok, "benchmark script failed: {:?}", first.error);
    for _ in 0..50 {
        worker::run_job(&job);
    }
    let samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            let r = worker::run_job(&job);
            debug_assert!(r.ok);
            t.elapsed()
        })
        .collect();
    report("in-process (fresh realm + bindings + script + call)", samples);
    // Where a run's time goes: the realm alone, then the realm with ctx/api built.
    let phase = |f: &dyn Fn()| {
        (0..iterations)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    report("  phase: fresh realm only", phase(&|| drop(worker::new_context())));
    report("  phase: fresh realm + ctx/api bindings", phase(&|| worker::build_only(&job)));
    report(
        "  in-process, then the used realm collected at once (as a worker does)",
        phase(&|| {
            worker::run_job(&job);
            boa_engine::gc::force_collect();
        }),
    );

    let pool = SandboxPool::new(PoolConfig {
        exe,
        workers: 1,
        org_concurrency: 1,
        queue_timeout: Duration::from_secs(5),
        memory_limit: 64 << 20,
        deny_list: crate::config::DEFAULT_DENY_LIST.into(),
        allow_list: String::new(),
    });
    pool.warm().await;
    let slot = pool.acquire(1).await.expect("slot");
    for _ in 0..50 {
        let _ = pool.run(&slot, &job, tokio::time::Instant::now() + Duration::from_secs(5)).await;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let t = Instant::now();
        let r = pool.run(&slot, &job, tokio::time::Instant::now() + Duration::from_secs(5)).await;
        assert!(r.map(|r| r.ok).unwrap_or(false));
        samples.push(t.elapsed());
    }
    report("through a warm sandbox worker (realm pre-built; adds IPC + JSON framing)", samples);
}
