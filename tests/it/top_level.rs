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

/// `_test` of an inline action `a` (flow 2, trigger 4) with a timeout of 1 s.
async fn dry_run_1s(s: &TestServer, script: &str) -> common::Reply {
    s.post(
        "/management/v1/actions/_test",
        &s.admin,
        json!({"name": "a", "script": script, "timeout": "1s", "flowType": "2", "triggerType": "4"}),
    )
    .await
}

/// A run stopped without an answer (its deadline, its memory, its top level) keeps what it had
/// logged until then: in `_test`'s answer and in `_execute`'s run record, secrets redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_made_before_a_run_is_stopped_are_kept() {
    let s = TestServer::sqlite().await;
    let r = s.put("/management/v1/actions/secrets/API_KEY", &s.admin, json!({"value": "sk-live-123456"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let cases = [
        ("function a(ctx, api) { console.log('before the loop'); console.warn('key ' + require('zitadel/secrets').get('API_KEY')); while (true) {} }", "timeout after 1s"),
        ("function a(ctx, api) { console.log('before the loop'); console.warn('key ' + require('zitadel/secrets').get('API_KEY')); let t = 'x'; while (true) t = t + t; }", "memory limit exceeded"),
        ("console.log('before the loop'); console.warn('key ' + require('zitadel/secrets').get('API_KEY')); while (true) {}\nfunction a(ctx, api) {}", "timeout after 1s"),
    ];
    for (script, error) in cases {
        let r = dry_run_1s(&s, script).await;
        assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
        let run = &r.body["runs"][0];
        assert_eq!(run["error"], error, "{r:?}");
        let logs: Vec<(&str, &str)> = run["logs"]
            .as_array()
            .unwrap_or_else(|| panic!("no logs: {r:?}"))
            .iter()
            .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
            .collect();
        assert_eq!(logs, [("info", "before the loop"), ("warn", "key [secret API_KEY]")], "{script}");
    }
    // A run after a logging one that was not stopped starts with no records of the last one.
    let r = dry_run_1s(&s, "function a(ctx, api) { while (true) {} }").await;
    assert!(r.body["runs"][0].get("logs").is_none(), "{r:?}");
    // Through _execute, the run record keeps them.
    let id = s.create_action_body(&s.admin, json!({"name": "a", "script": cases[0].0, "timeout": "1s"})).await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    let record = r.body["runs"][0]["id"].as_str().unwrap().to_string();
    let got = s.get(&format!("/management/v1/runs/{record}"), &s.admin).await;
    assert_eq!(got.body["run"]["logs"][0]["message"], "before the loop", "{got:?}");
    assert_eq!(got.body["run"]["logs"][1]["message"], "key [secret API_KEY]", "{got:?}");

    // The spill files are in a private directory (0700, a name no other user can guess or
    // prepare), readable by the server's user only, and never hold a secret's value.
    use std::os::unix::fs::PermissionsExt;
    let dir = s.state.sandbox.dir().to_path_buf();
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "{dir:?}");
    assert_ne!(dir.file_name().unwrap().to_string_lossy(), format!("actionsd-sandbox-{}", std::process::id()));
    let logging = "function a(ctx, api) { console.log('key ' + require('zitadel/secrets').get('API_KEY')); }";
    let r = s
        .post(
            "/management/v1/actions/_test",
            &s.admin,
            json!({"name": "a", "script": logging, "flowType": "2", "triggerType": "4"}),
        )
        .await;
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!files.is_empty(), "each live worker has its file");
    for file in files {
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "{file:?}");
        assert!(!std::fs::read_to_string(&file).unwrap().contains("sk-live-123456"), "{file:?}");
    }
    s.stop().await;
    assert!(!dir.exists(), "the directory goes with its pool");
}

/// A run stopped without an answer reports the HTTP calls it had started, like its logs: at its
/// deadline after two calls, and during a third that never answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http_calls_of_a_stopped_run_are_counted() {
    use common::receiver::{Answer, Receiver};
    let s = TestServer::sqlite_with(common::allow_loopback).await;
    let rx = Receiver::start().await;
    rx.reply_at("/slow", Answer::json(200, json!({})).with_delay(Duration::from_secs(10)));
    let fetch = |path: &str| format!("require('zitadel/http').fetch('{}');", rx.url(path));
    let cases = [
        format!("function a(ctx, api) {{ {} {} while (true) {{}} }}", fetch("/one"), fetch("/two")),
        format!("function a(ctx, api) {{ {} {} {} }}", fetch("/one"), fetch("/two"), fetch("/slow")),
    ];
    for script in cases {
        let r = dry_run_1s(&s, &script).await;
        let run = &r.body["runs"][0];
        assert_eq!(run["error"], "timeout after 1s", "{r:?}");
        let expected = if script.contains("/slow") { 3 } else { 2 };
        assert_eq!(run["usage"]["httpCalls"], expected, "{script}: {r:?}");
    }
    s.stop().await;
}
