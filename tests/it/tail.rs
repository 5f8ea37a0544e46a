//! The live tail (authoring.md §5): `GET /management/v1/runs/_tail` streams the organization's
//! run records (not other organizations') as they complete, filters apply, at most 10 per
//! organization (across replicas too), a closed stream frees its slot, a revoked token ends the
//! stream, and on PostgreSQL a tail sees the runs of another replica.

use crate::common;

use common::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

const TAIL: &str = "/management/v1/runs/_tail";

/// One open stream and the text read so far.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

#[derive(Debug)]
struct SseEvent {
    event: String,
    data: String,
}

async fn open(s: &TestServer, token: &str, query: &str, org: Option<&str>) -> reqwest::Response {
    let mut req = s.client.get(format!("{}{TAIL}{query}", s.base)).bearer_auth(token);
    if let Some(org) = org {
        req = req.header("x-zitadel-orgid", org);
    }
    req.send().await.expect("tail request")
}

async fn tail(s: &TestServer, token: &str, query: &str) -> Stream {
    let resp = open(s, token, query, None).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Stream { resp, buf: String::new() }
}

impl Stream {
    /// The next event (comments skipped) within `within`; None at the end of the stream or on timeout.
    async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".into(), data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !event.data.is_empty() {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                _ => return None,
            }
        }
    }

    async fn next_run(&mut self, within: Duration) -> Value {
        let e = self.next(within).await.expect("a run event in time");
        assert_eq!(e.event, "run", "{e:?}");
        serde_json::from_str(&e.data).expect("run JSON")
    }

    /// Whether the stream ends (EOF) within `within`, without events.
    async fn ends_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

const ONE_SECOND: Duration = Duration::from_secs(1);

async fn runs_of_the_org_in_order_with_filters(s: &TestServer) {
    let a = s.create_script_action("first", "function first(ctx, api) { console.log('one') }").await;
    let b = s.create_script_action("second", "function second(ctx, api) { throw new Error('two') }").await;
    s.bind_trigger(&s.admin, "2", "4", &[&a]).await;
    s.bind_trigger(&s.admin, "2", "5", &[&b]).await;
    let mut all = tail(s, &s.admin, "").await;
    let mut only_b = tail(s, &s.admin, &format!("?actionId={b}")).await;
    let mut failed = tail(s, &s.admin, "?outcome=OUTCOME_FAILED&flowType=2&triggerType=5").await;
    let mut by_trigger = tail(s, &s.admin, "?flowType=2&triggerType=4").await;
    // The proto (snake_case) spelling of the filters works too.
    let mut by_trigger_snake = tail(s, &s.admin, "?flow_type=2&trigger_type=4").await;
    let org = s.create_org("tail-other").await;
    let other_owner = s.create_token(&org, "ORG_OWNER").await;
    let mut other = tail(s, &other_owner, "").await;

    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.status, 200);
    let run = all.next_run(ONE_SECOND).await;
    assert_eq!(run["actionId"], a.as_str());
    assert_eq!(run["runId"], r.body["runId"]);
    assert_eq!(run["outcome"], "OUTCOME_SUCCEEDED");
    assert_eq!(run["logs"][0]["message"], "one", "the record comes with its logs: {run}");
    assert_eq!(run["actionVersion"], "1");
    let run = by_trigger.next_run(ONE_SECOND).await;
    assert_eq!(run["actionId"], a.as_str());
    assert_eq!(by_trigger_snake.next_run(ONE_SECOND).await["actionId"], a.as_str());

    let r = s.execute_trigger(&s.admin, "2", "5", json!({})).await;
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED");
    let run = all.next_run(ONE_SECOND).await;
    assert_eq!(run["actionId"], b.as_str());
    assert!(run["error"].as_str().unwrap().contains("two"), "{run}");
    // The filtered tails saw only what matches.
    assert_eq!(only_b.next_run(ONE_SECOND).await["actionId"], b.as_str());
    assert_eq!(failed.next_run(ONE_SECOND).await["actionId"], b.as_str());
    assert!(by_trigger.next(Duration::from_millis(300)).await.is_none(), "trigger filter");
    assert!(by_trigger_snake.next(Duration::from_millis(100)).await.is_none(), "trigger filter, snake_case");

    // The other organization's tail saw none of this, only its own run.
    let own = s.create_action(&other_owner, "theirs").await;
    s.bind_trigger(&other_owner, "2", "4", &[&own]).await;
    let r = s.execute_trigger(&other_owner, "2", "4", json!({})).await;
    assert_eq!(r.status, 200);
    let run = other.next_run(ONE_SECOND).await;
    assert_eq!(run["actionId"], own.as_str());
    assert_eq!(run["resourceOwner"], org.as_str());

    // Bad filters and roles.
    let r = open(s, &s.admin, "?flowType=9", None).await;
    assert_eq!(r.status(), 400);
    let r = open(s, &s.admin, "?outcome=NOPE", None).await;
    assert_eq!(r.status(), 400);
    // A trigger of another flow could never match.
    let r = open(s, &s.admin, "?flowType=2&triggerType=1", None).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "TriggerType is invalid (COMMAND-Dfgh6)", "{body}");
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    assert_eq!(open(s, &executor, "", None).await.status(), 403);
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    assert_eq!(open(s, &viewer, "", None).await.status(), 200);
    assert_eq!(s.client.get(format!("{}{TAIL}", s.base)).send().await.unwrap().status(), 401);
}

async fn ten_per_org_and_closed_streams_free_their_slot(s: &TestServer) {
    let mut open_tails = Vec::new();
    for _ in 0..10 {
        open_tails.push(tail(s, &s.admin, "").await);
    }
    let r = open(s, &s.admin, "", None).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 8, "{body}");
    assert_eq!(body["details"][0]["id"], "RUN-t41l5", "{body}");
    // Another organization has its own ten.
    let org = s.create_org("tail-slots").await;
    assert_eq!(open(s, &s.admin, "", Some(&org)).await.status(), 200);

    // A client that goes away frees its slot within 5 s.
    drop(open_tails.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let reopened = loop {
        let r = open(s, &s.admin, "", None).await;
        if r.status() == 200 || std::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reopened.status(), 200, "the closed stream's slot was not freed within 5 s");
    assert_eq!(s.state.store.tail.open_for(s.state.default_org), 10);
}

async fn a_revoked_token_ends_the_stream(s: &TestServer) {
    let (id, token) = s.add_token("default", "ORG_OWNER").await;
    let mut stream = tail(s, &token, "").await;
    let r = s.delete(&format!("/admin/v1/tokens/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(stream.ends_within(Duration::from_millis(1500)).await, "the stream outlived its token");
    assert_eq!(s.state.store.tail.open_for(s.state.default_org), 0);
}

backend_tests!(
    runs_of_the_org_in_order_with_filters,
    ten_per_org_and_closed_streams_free_their_slot,
    a_revoked_token_ends_the_stream,
);

/// Two replicas on one PostgreSQL database: a tail on A sees the runs executed through B.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tail_sees_runs_of_another_replica() {
    let Some((a, b)) = TestServer::postgres_replicas().await else { return };
    let id = b.create_script_action("onb", "function onb(ctx, api) { console.log('from b') }").await;
    b.bind_trigger(&b.admin, "2", "4", &[&id]).await;
    let mut stream = tail(&a, &a.admin, "").await;
    let r = b.execute_trigger(&b.admin, "2", "4", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let run = stream.next_run(ONE_SECOND).await;
    assert_eq!(run["actionId"], id.as_str());
    assert_eq!(run["logs"][0]["message"], "from b");
    drop(stream);
    a.stop().await;
    b.stop().await;
}

/// Two replicas on one PostgreSQL database: the ten tails of an organization are counted across
/// both (each open tail holds a lease in the database), and a closed one frees its slot for the
/// other replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_per_org_across_replicas() {
    let Some((a, b)) = TestServer::postgres_replicas().await else { return };
    let mut on_a = Vec::new();
    for _ in 0..6 {
        on_a.push(tail(&a, &a.admin, "").await);
    }
    let mut on_b = Vec::new();
    for _ in 0..4 {
        on_b.push(tail(&b, &b.admin, "").await);
    }
    for server in [&a, &b] {
        let r = open(server, &server.admin, "", None).await;
        assert_eq!(r.status(), 429, "the eleventh tail of the organization");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["details"][0]["id"], "RUN-t41l5", "{body}");
    }
    // Another organization still has its own ten.
    let org = a.create_org("tail-replicas").await;
    assert_eq!(open(&b, &b.admin, "", Some(&org)).await.status(), 200);
    // A tail closed on A frees a slot that B can take (within 5 s).
    drop(on_a.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let reopened = loop {
        let r = open(&b, &b.admin, "", None).await;
        if r.status() == 200 || std::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(reopened.status(), 200, "the slot closed on A was not freed for B within 5 s");
    drop((on_a, on_b, reopened));
    a.stop().await;
    b.stop().await;
}

/// Shutdown ends open streams first (the server does not wait for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_ends_open_streams() {
    let s = TestServer::sqlite().await;
    let mut stream = tail(&s, &s.admin, "").await;
    let stopping = tokio::spawn(s.stop());
    assert!(stream.ends_within(Duration::from_secs(5)).await, "the stream outlived the server");
    tokio::time::timeout(Duration::from_secs(10), stopping).await.expect("shutdown finished").unwrap();
}

/// A shutdown gives the tails' leases back before the database closes: a server restarted on
/// the same database has all ten slots at once (they would otherwise be taken until they expire).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_gives_the_leases_back() {
    use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
    let s = TestServer::sqlite().await;
    let url = s.state.config.database_url.clone();
    let mut streams = Vec::new();
    for _ in 0..actionsd::service::tail::MAX_TAILS_PER_ORG {
        streams.push(tail(&s, &s.admin, "").await);
    }
    let _dir = s.stop_keeping_dir().await;
    let db = sea_orm::Database::connect(&url).await.expect("the database after the shutdown");
    let row = db
        .query_one(Statement::from_string(DatabaseBackend::Sqlite, "SELECT COUNT(*) AS n FROM tail_leases"))
        .await
        .expect("count")
        .expect("a row");
    assert_eq!(row.try_get::<i64>("", "n").expect("n"), 0, "leases left after the shutdown");
    drop(streams);
}
