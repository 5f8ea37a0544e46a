//! Compatibility corpus: real-world-style ZITADEL v1 action scripts (tests/fixtures/v1_scripts).
//!
//! Each fixture is `<file>.js` (the script) plus `<file>.json`:
//! `{name, flowType, triggerType, context, expected: {outcome, effects, error?}}`.
//! The script is stored as action `name`, bound alone to its trigger and run through `_execute` with
//! `context`; the outcome and the effects must match exactly (`effects: null` = no effects; metadata
//! effects are compared as a set, since they are one entry per key with no specified order), and the
//! top-level `error` when given (optionally followed by ` at <function> (<line>:<column>)`).
//! In scripts, `__HTTP_BASE__` is replaced by the address of a mock HTTP service run by this test
//! (the server is configured to allow 127.0.0.1 for `fetch`).

use crate::common;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use common::TestServer;
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1_scripts")
}

struct Fixture {
    file: String,
    script: String,
    spec: Value,
}

fn load_fixtures() -> Vec<Fixture> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|json_path| {
            let file = json_path.file_stem().unwrap().to_string_lossy().into_owned();
            let spec: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).expect("read json"))
                .unwrap_or_else(|e| panic!("{file}.json: {e}"));
            let script = std::fs::read_to_string(json_path.with_extension("js"))
                .unwrap_or_else(|e| panic!("{file}.js missing: {e}"));
            Fixture { file, script, spec }
        })
        .collect()
}

/// A stand-in HR service and CRM for the `fetch` fixtures; returns its base URL.
async fn start_mock_service() -> String {
    async fn profile(Path(id): Path<String>) -> Json<Value> {
        Json(json!({"employeeNumber": format!("E-{id}"), "manager": "carol@acme.example"}))
    }
    async fn crm(headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
        let key_ok = headers.get("x-api-key").is_some_and(|v| v == "crm-secret");
        let json_ok = headers.get("content-type").is_some_and(|v| v == "application/json");
        let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        match (key_ok, json_ok, parsed["email"].as_str(), parsed["name"].as_str()) {
            (true, true, Some(email), Some(_)) => (
                StatusCode::CREATED,
                Json(json!({"projectId": "200000000000000700", "roles": [format!("contact:{email}"), "newsletter"]})),
            ),
            _ => (StatusCode::BAD_REQUEST, Json(json!({"error": "bad request", "body": body}))),
        }
    }
    let app = axum::Router::new().route("/profiles/{id}", get(profile)).route("/crm/contacts", post(crm));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind mock");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Metadata effects sorted by key (one entry per key; the contract gives them no order).
fn normalized(effects: &Value) -> Value {
    let mut e = effects.clone();
    if let Some(items) = e.get_mut("metadata").and_then(Value::as_array_mut) {
        items.sort_by(|a, b| a["key"].as_str().cmp(&b["key"].as_str()));
    }
    e
}

/// Runs one fixture; `Err` describes the mismatch.
async fn run_fixture(s: &TestServer, f: &Fixture, http_base: &str) -> Result<(), String> {
    let spec = &f.spec;
    let name = spec["name"].as_str().ok_or("no name")?;
    let flow = spec["flowType"].as_str().ok_or("no flowType")?;
    let trigger = spec["triggerType"].as_str().ok_or("no triggerType")?;
    let script = f.script.replace("__HTTP_BASE__", http_base);
    let id = s.create_script_action(name, &script).await;
    s.bind_trigger(&s.admin, flow, trigger, &[&id]).await;
    let r = s.execute_trigger(&s.admin, flow, trigger, spec["context"].clone()).await;
    if r.status != 200 {
        return Err(format!("status {}: {}", r.status, r.body));
    }
    let expected = &spec["expected"];
    let mut problems = Vec::new();
    if r.body["outcome"] != expected["outcome"] {
        problems.push(format!("outcome {} (expected {})", r.body["outcome"], expected["outcome"]));
    }
    let actual_effects = r.body.get("effects").cloned().unwrap_or(Value::Null);
    if normalized(&actual_effects) != normalized(&expected["effects"]) {
        problems.push(format!("effects\n      actual:   {actual_effects}\n      expected: {}", expected["effects"]));
    }
    if let Some(want) = expected.get("error").and_then(Value::as_str) {
        let got = r.body["error"].as_str().unwrap_or("");
        if got != want && !got.starts_with(&format!("{want} at ")) {
            problems.push(format!("error {got:?} (expected {want:?})"));
        }
    } else if r.body.get("error").is_some() {
        problems.push(format!("unexpected error {}", r.body["error"]));
    }
    let runs = r.body["runs"].as_array().cloned().unwrap_or_default();
    if runs.len() != 1 || runs[0]["actionName"] != name || runs[0]["actionId"] != id.as_str() {
        problems.push(format!("runs {}", Value::Array(runs)));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n    full response: {}", problems.join("\n    "), r.body))
    }
}

async fn run_corpus(s: &TestServer) {
    let http_base = start_mock_service().await;
    let fixtures = load_fixtures();
    assert!(fixtures.len() >= 15, "at least 15 fixtures, found {}", fixtures.len());
    let mut failures = Vec::new();
    for f in &fixtures {
        if let Err(e) = run_fixture(s, f, &http_base).await {
            failures.push(format!("{}: {e}", f.file));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed on {}:\n  {}",
        failures.len(),
        fixtures.len(),
        s.backend,
        failures.join("\n  ")
    );
}

/// The fixtures are well-formed: every .js has its .json and defines the function named there.
#[test]
fn fixtures_are_complete() {
    let fixtures = load_fixtures();
    let scripts = std::fs::read_dir(fixture_dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "js"))
        .count();
    assert_eq!(scripts, fixtures.len(), "one .json per .js");
    for f in &fixtures {
        let name = f.spec["name"].as_str().unwrap_or_else(|| panic!("{}: name", f.file));
        assert!(f.script.contains(&format!("function {name}(")), "{}: defines {name}", f.file);
        for key in ["flowType", "triggerType", "context", "expected"] {
            assert!(f.spec.get(key).is_some(), "{}: {key}", f.file);
        }
        assert!(f.spec["expected"]["outcome"].is_string(), "{}: expected.outcome", f.file);
    }
}

fn allow_loopback(c: &mut actionsd::config::Config) {
    crate::common::allow_loopback(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_sqlite() {
    let s = TestServer::sqlite_with(allow_loopback).await;
    run_corpus(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn corpus_postgres() {
    if let Some(s) = TestServer::postgres_with(allow_loopback).await {
        run_corpus(&s).await;
        s.stop().await;
    }
}
