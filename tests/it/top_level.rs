//! The top level of a script gets at most min(5s, timeout) (README, "How scripts are contained").

use crate::common;

use common::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn top_level_is_bounded_by_five_seconds() {
    let s = TestServer::sqlite().await;
    let started = Instant::now();
    let r = s
        .post(
            "/management/v1/actions/_test",
            &s.admin,
            json!({"name": "slow", "script": "while (true) {}\nfunction slow(ctx, api) {}", "timeout": "10s",
                   "flowType": "2", "triggerType": "4"}),
        )
        .await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
    let error = r.body["runs"][0]["error"].as_str().unwrap_or("");
    assert_eq!(error, "timeout after 5s", "the contract's text");
    assert!(elapsed >= Duration::from_secs(5) && elapsed < Duration::from_millis(5500), "took {elapsed:?}");

    // A slow entry function still gets the action's whole timeout.
    let started = Instant::now();
    let r = s
        .post(
            "/management/v1/actions/_test",
            &s.admin,
            json!({"name": "fn", "script": "function fn(ctx, api) { const end = Date.now() + 5500; while (Date.now() < end) {} }",
                   "timeout": "10s", "flowType": "2", "triggerType": "4"}),
        )
        .await;
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(5500));
    s.stop().await;
}
