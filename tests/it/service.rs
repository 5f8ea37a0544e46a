//! The target-calling use cases driven directly over a `Store` and the local receiver, without the
//! HTTP API: the chain's dispatch per target type (restWebhook, restCall, restAsync),
//! `interruptOnError`, the caller's deadline, and the delivery queue sending what the chain queued.
//! On SQLite and PostgreSQL.

use crate::common::receiver::{zitadel_signature_valid, Answer, Receiver};
use crate::common::{self, test_config};
use actionsd::domain::{PayloadType, TargetKind};
use actionsd::error::{ApiError, ApiResult};
use actionsd::metrics::Metrics;
use actionsd::service::queue::{self, QueueConfig};
use actionsd::service::targets::{Chain, ChainEnd, Targets};
use actionsd::store::{self, deliveries, targets as target_store, Store};
use entity::target;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const KEY: &str = "test-encryption-key-0123456789abcdef";
const SIGNING_KEY: &str = "signing-key-of-the-service-tests";

struct Env {
    store: Arc<Store>,
    targets: Arc<Targets>,
    _dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl Env {
    async fn sqlite() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("service.db").display());
        Self::open(&url, None, dir).await
    }

    async fn postgres(test: &str) -> Option<Env> {
        let url = common::postgres_url_or_skip(test)?;
        let schema = common::create_schema(&url).await;
        let mut env = Self::open(&url, Some(&schema), tempfile::tempdir().expect("tempdir")).await;
        env.schema = Some((url, schema));
        Some(env)
    }

    async fn open(url: &str, schema: Option<&str>, dir: tempfile::TempDir) -> Env {
        let mut config = test_config(url, dir.path());
        crate::common::allow_loopback(&mut config);
        let dbs = store::connect(url, schema, &config.db_options()).await.expect("connect");
        let store = Arc::new(Store::new(dbs).await.expect("store"));
        store::tokens::bootstrap(&store, config.admin_token.clone(), |_| Ok(())).await.expect("bootstrap");
        let v2 = Arc::new(actionsd::v2::V2::load(&store, &config).await.expect("v2"));
        let targets = Arc::new(Targets::new(store.clone(), v2, Arc::new(Metrics::new()), KEY.into()));
        Env { store, targets, _dir: dir, schema: None }
    }

    async fn target(
        &self,
        name: &str,
        kind: TargetKind,
        interrupt: bool,
        endpoint: String,
        timeout: Duration,
    ) -> Arc<target::Model> {
        let new = target_store::NewTarget {
            name: name.into(),
            target_type: kind,
            interrupt_on_error: interrupt,
            endpoint,
            timeout_nanos: timeout.as_nanos() as i64,
            payload_type: PayloadType::Json,
            signing_key_enc: store::crypto::encrypt(KEY, SIGNING_KEY).expect("encrypt"),
        };
        Arc::new(target_store::create_target(&self.store, new, 1, 1).await.expect("create target"))
    }

    async fn close(self) {
        self.store.close().await;
        if let Some((url, schema)) = &self.schema {
            common::drop_schema(url, schema).await;
        }
    }
}

/// A chain that sends `{"step": n}` and keeps the restCall replies (or refuses them).
#[derive(Default)]
struct Collect {
    step: u32,
    replies: Vec<(String, Value)>,
    refuse: bool,
}

impl Chain for Collect {
    fn body(&self) -> ApiResult<Vec<u8>> {
        Ok(json!({"step": self.step}).to_string().into_bytes())
    }

    fn reply(&mut self, t: &target::Model, reply: Vec<u8>) -> ApiResult<()> {
        if self.refuse {
            return Err(ApiError::invalid("reply refused by the chain"));
        }
        self.step += 1;
        self.replies.push((t.name.clone(), serde_json::from_slice(&reply).unwrap_or(Value::Null)));
        Ok(())
    }
}

async fn each_backend(test: &str, body: impl AsyncFn(Env)) {
    body(Env::sqlite().await).await;
    if let Some(env) = Env::postgres(test).await {
        body(env).await;
    }
}

#[tokio::test]
async fn a_chain_calls_waited_targets_in_order_and_queues_async_ones_for_the_queue() {
    each_backend("service chain dispatch", async |env: Env| {
        let rx = Receiver::start().await;
        rx.reply_at("/call", Answer::json(200, json!({"answer": 42})));
        let second = Duration::from_secs(5);
        let chain_targets = vec![
            env.target("hook", TargetKind::RestWebhook, true, rx.url("/hook"), second).await,
            env.target("call", TargetKind::RestCall, true, rx.url("/call"), second).await,
            env.target("async", TargetKind::RestAsync, false, rx.url("/async"), second).await,
            env.target("hook2", TargetKind::RestWebhook, true, rx.url("/hook2"), second).await,
        ];
        let mut chain = Collect::default();
        let end = env.targets.run_chain("request", &chain_targets, None, &mut chain).await.expect("chain");
        assert!(matches!(end, ChainEnd::Completed), "{end:?}");
        // The restCall's reply reached the chain, and the target after it saw the chain's new body.
        assert_eq!(chain.replies, vec![("call".to_string(), json!({"answer": 42}))]);
        let calls = rx.requests();
        let paths: Vec<&str> = calls.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, ["/hook", "/call", "/hook2"], "restAsync is queued, not called inline");
        assert_eq!(calls[0].json(), json!({"step": 0}));
        assert_eq!(calls[2].json(), json!({"step": 1}));
        assert!(calls.iter().all(|r| zitadel_signature_valid(r, SIGNING_KEY)), "every call is signed");

        // The queued call is a pending delivery of the async target with the body of its turn.
        let q = deliveries::ListQuery {
            filters: vec![deliveries::DeliveryFilter::Target(chain_targets[2].id)],
            limit: 10,
            ..Default::default()
        };
        let (rows, total) = deliveries::list(&env.store.db, q).await.expect("list deliveries");
        assert_eq!(total, 1);
        assert_eq!(rows[0].execution_id, "request");
        assert!(serde_json::from_str::<Value>(&rows[0].payload).is_err(), "stored encrypted: {}", rows[0].payload);
        let body = env.targets.delivery_body(&rows[0].payload).expect("decrypts");
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), json!({"step": 1}));

        // The delivery queue sends it, signed, and records the success.
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let config = QueueConfig {
            concurrency: 4,
            poll_interval: Duration::from_millis(50),
            retry_schedule: vec![Duration::from_secs(1)],
            max_age: Duration::from_secs(60),
            retention: Duration::from_secs(3600),
        };
        let worker = queue::start(env.targets.clone(), config, stop);
        let sent = rx
            .wait_until(Duration::from_secs(10), "the queued delivery", |r| r.iter().any(|r| r.path == "/async"))
            .await;
        let delivered = sent.iter().find(|r| r.path == "/async").unwrap();
        assert_eq!(delivered.json(), json!({"step": 1}));
        assert!(zitadel_signature_valid(delivered, SIGNING_KEY));
        assert_eq!(delivered.header("webhook-id"), rows[0].id.to_string(), "the delivery id is the webhook id");
        let _ = stop_tx.send(true);
        worker.await.expect("queue stops");
        let q = deliveries::ListQuery {
            filters: vec![deliveries::DeliveryFilter::Target(chain_targets[2].id)],
            limit: 10,
            ..Default::default()
        };
        let (rows, _) = deliveries::list(&env.store.db, q).await.expect("list deliveries");
        assert_eq!(rows[0].state, deliveries::DeliveryState::Succeeded, "{:?}", rows[0]);
        assert_eq!(rows[0].attempts, 1);
        env.close().await;
    })
    .await;
}

#[tokio::test]
async fn interrupt_on_error_decides_whether_a_failure_ends_the_chain() {
    each_backend("service chain interrupt", async |env: Env| {
        let rx = Receiver::start().await;
        rx.reply_at("/lenient", Answer::status(500));
        rx.reply_at("/strict", Answer::status(502));
        let second = Duration::from_secs(5);
        let chain_targets = vec![
            env.target("lenient", TargetKind::RestCall, false, rx.url("/lenient"), second).await,
            env.target("ok", TargetKind::RestWebhook, true, rx.url("/ok"), second).await,
            env.target("strict", TargetKind::RestCall, true, rx.url("/strict"), second).await,
            env.target("never", TargetKind::RestWebhook, true, rx.url("/never"), second).await,
        ];
        let mut chain = Collect::default();
        let end = env.targets.run_chain("response", &chain_targets, None, &mut chain).await.expect("chain");
        match end {
            ChainEnd::Interrupted { target, error } => {
                assert_eq!(target, "strict");
                assert!(error.message.contains("HTTP 502"), "{}", error.message);
            }
            other => panic!("expected an interruption, got {other:?}"),
        }
        let paths: Vec<String> = rx.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/lenient", "/ok", "/strict"], "the failing lenient target is skipped, the chain stops at the strict one");
        assert!(chain.replies.is_empty());

        // A reply the chain refuses counts as that target failing.
        rx.reply_at("/json", Answer::json(200, json!({})));
        let refusing = vec![env.target("json", TargetKind::RestCall, true, rx.url("/json"), second).await];
        let mut chain = Collect { refuse: true, ..Default::default() };
        let end = env.targets.run_chain("response", &refusing, None, &mut chain).await.expect("chain");
        assert!(
            matches!(&end, ChainEnd::Interrupted { target, error } if target == "json" && error.message == "reply refused by the chain"),
            "{end:?}"
        );
        env.close().await;
    })
    .await;
}

#[tokio::test]
async fn the_callers_deadline_bounds_every_call_and_ends_the_chain() {
    each_backend("service chain deadline", async |env: Env| {
        let rx = Receiver::start().await;
        rx.reply_at("/slow", Answer::status(200).with_delay(Duration::from_secs(3)));
        // Each call is bound by the deadline. With interruptOnError off, a call it cuts short is
        // a failure like others: the chain goes on, and the next target, with no time left, fails
        // at once without being called. With interruptOnError on, the chain ends out of time.
        for interrupt in [false, true] {
            let chain_targets = vec![
                env.target(
                    &format!("slow-{interrupt}"),
                    TargetKind::RestWebhook,
                    interrupt,
                    rx.url("/slow"),
                    Duration::from_secs(10),
                )
                .await,
                env.target(
                    &format!("after-{interrupt}"),
                    TargetKind::RestWebhook,
                    false,
                    rx.url("/after"),
                    Duration::from_secs(10),
                )
                .await,
            ];
            let started = Instant::now();
            let deadline = started + Duration::from_millis(300);
            let end = env
                .targets
                .run_chain("function/x", &chain_targets, Some(deadline), &mut Collect::default())
                .await
                .unwrap();
            let took = started.elapsed();
            if interrupt {
                assert!(matches!(end, ChainEnd::OutOfTime), "{end:?}");
            } else {
                assert!(matches!(end, ChainEnd::Completed), "{end:?}");
            }
            // The contract's bound is the deadline; generous slack for a loaded machine, far below
            // the target's own 10 s timeout and the receiver's 3 s delay.
            assert!(took < Duration::from_millis(300) + Duration::from_secs(2), "the chain took {took:?}");
        }
        let paths: Vec<String> = rx.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/slow", "/slow"], "nothing is called after the deadline");

        // A target's own timeout still applies when the deadline is further away, and with
        // interruptOnError off the chain goes on.
        let own = vec![
            env.target("own", TargetKind::RestWebhook, false, rx.url("/slow"), Duration::from_millis(200)).await,
            env.target("next", TargetKind::RestWebhook, false, rx.url("/next"), Duration::from_secs(5)).await,
        ];
        let far = Instant::now() + Duration::from_secs(30);
        let end = env.targets.run_chain("function/x", &own, Some(far), &mut Collect::default()).await.unwrap();
        assert!(matches!(end, ChainEnd::Completed), "{end:?}");
        rx.wait_until(Duration::from_secs(5), "the call after the timed-out one", |r| {
            r.iter().any(|r| r.path == "/next")
        })
        .await;
        env.close().await;
    })
    .await;
}
