//! The real binary on a SQLite file: acknowledged writes survive `kill -9`, and the operations
//! surface answers without authentication.

use crate::common;

use common::process::Process;
use serde_json::{json, Value};
use std::path::Path;

const ADMIN: &str = "durability-admin-token-0123456789abcdefghijklmnop";
const ACTIONS: &str = "/management/v1/actions";

/// Starts the binary on `db` (a SQLite file) in `dir`; `run` numbers the log file.
async fn start(dir: &Path, db: &Path, run: usize) -> Process {
    let env = [
        ("ACTIONSD_DATABASE_URL", format!("sqlite://{}?mode=rwc", db.display())),
        ("ACTIONSD_ADMIN_TOKEN", ADMIN.to_string()),
    ];
    Process::start(dir, &format!("server-{run}"), &env).await
}

/// What the client was told it stored.
#[derive(Debug, Clone)]
struct Expected {
    id: String,
    name: String,
    script: String,
    timeout: String,
    allowed_to_fail: bool,
    active: bool,
    deleted: bool,
}

fn new_action(i: usize, prefix: &str) -> (Value, Expected) {
    let name = format!("{prefix}_{i}");
    let script = format!("function {name}(ctx, api) {{ /* payload {i}: ünïcödé ✓ */ }}");
    let timeout = format!("{}.500s", i % 19 + 1);
    let allowed_to_fail = i.is_multiple_of(2);
    let body = json!({"name": name, "script": script, "timeout": timeout, "allowedToFail": allowed_to_fail});
    (body, Expected { id: String::new(), name, script, timeout, allowed_to_fail, active: true, deleted: false })
}

/// Creates `n` actions (half one by one, half concurrently), then deactivates, updates and deletes
/// some; every step must be acknowledged with 200.
async fn write_batch(server: &Process, prefix: &str, n: usize) -> Vec<Expected> {
    let mut out = Vec::new();
    for i in 0..n / 2 {
        let (body, mut e) = new_action(i, prefix);
        let (status, r) = server.post(ACTIONS, ADMIN, body).await;
        assert_eq!(status, 200, "{r}");
        e.id = r["id"].as_str().expect("id").to_string();
        out.push(e);
    }
    let concurrent = futures::future::join_all((n / 2..n).map(|i| {
        let (body, e) = new_action(i, prefix);
        async move {
            let (status, r) = server.post(ACTIONS, ADMIN, body).await;
            assert_eq!(status, 200, "{r}");
            Expected { id: r["id"].as_str().expect("id").to_string(), ..e }
        }
    }))
    .await;
    out.extend(concurrent);
    for (i, e) in out.iter_mut().enumerate() {
        if i % 3 == 1 {
            let (status, r) = server.post(&format!("{ACTIONS}/{}/_deactivate", e.id), ADMIN, json!({})).await;
            assert_eq!(status, 200, "{r}");
            e.active = false;
        }
        if i % 5 == 2 {
            e.script = format!("function {}(ctx, api) {{ /* updated */ }}", e.name);
            e.allowed_to_fail = !e.allowed_to_fail;
            let body =
                json!({"name": e.name, "script": e.script, "timeout": e.timeout, "allowedToFail": e.allowed_to_fail});
            let (status, r) =
                server.request(reqwest::Method::PUT, &format!("{ACTIONS}/{}", e.id), Some(ADMIN), Some(body)).await;
            assert_eq!(status, 200, "{r}");
        }
        if i % 7 == 3 {
            let (status, r) =
                server.request(reqwest::Method::DELETE, &format!("{ACTIONS}/{}", e.id), Some(ADMIN), None).await;
            assert_eq!(status, 200, "{r}");
            e.deleted = true;
        }
    }
    out
}

async fn verify(server: &Process, expected: &[Expected], what: &str) {
    let mut missing = Vec::new();
    for e in expected {
        let (status, r) = server.get(&format!("{ACTIONS}/{}", e.id), ADMIN).await;
        if e.deleted {
            if status != 404 {
                missing.push(format!("deleted action {} ({}) is back: {status} {r}", e.name, e.id));
            }
            continue;
        }
        if status != 200 {
            missing.push(format!("acknowledged action {} ({}) lost: {status} {r}", e.name, e.id));
            continue;
        }
        let a = &r["action"];
        let state = if e.active { "ACTION_STATE_ACTIVE" } else { "ACTION_STATE_INACTIVE" };
        let ok = a["name"] == e.name.as_str()
            && a["script"] == e.script.as_str()
            && a["timeout"] == e.timeout.as_str()
            && a["allowedToFail"].as_bool().unwrap_or(false) == e.allowed_to_fail
            && a["state"] == state;
        if !ok {
            missing.push(format!("action {} differs from what was acknowledged: expected {e:?}, got {a}", e.id));
        }
    }
    assert!(missing.is_empty(), "{what}: {} problem(s):\n{}", missing.len(), missing.join("\n"));
    let live = expected.iter().filter(|e| !e.deleted).count();
    let (status, r) = server.post(&format!("{ACTIONS}/_search"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["details"]["totalResult"], live.to_string(), "{what}: ListActions total");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("durable.db");

    let server = start(dir.path(), &db, 1).await;
    let (status, r) = server.post("/management/v1/orgs", ADMIN, json!({"name": "Durable Org"})).await;
    assert_eq!(status, 200, "{r}");
    let org = r["id"].as_str().expect("org id").to_string();
    let (status, r) = server.post("/admin/v1/tokens", ADMIN, json!({"orgId": org, "role": "ORG_OWNER"})).await;
    assert_eq!(status, 200, "{r}");
    let org_token = r["token"].as_str().expect("token").to_string();
    let (status, r) =
        server.post(ACTIONS, &org_token, json!({"name": "org_action", "script": "function org_action(){}"})).await;
    assert_eq!(status, 200, "{r}");
    let org_action = r["id"].as_str().expect("id").to_string();

    let mut expected = write_batch(&server, "first", 40).await;
    let bound: Vec<String> = expected.iter().filter(|e| !e.deleted).take(3).map(|e| e.id.clone()).collect();
    let (status, r) = server.post("/management/v1/flows/1/trigger/1", ADMIN, json!({"actionIds": bound})).await;
    assert_eq!(status, 200, "{r}");
    server.kill_9();

    let server = start(dir.path(), &db, 2).await;
    verify(&server, &expected, "after the first kill -9").await;
    let (status, r) = server.get("/management/v1/flows/1", ADMIN).await;
    assert_eq!(status, 200, "{r}");
    let got: Vec<&str> = r["flow"]["triggerActions"][0]["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(got, bound.iter().map(String::as_str).collect::<Vec<_>>(), "flow binding after kill -9: {r}");
    // The org and its token survived too.
    let (status, r) = server.get("/management/v1/orgs/me", &org_token).await;
    assert_eq!(status, 200, "org token after kill -9: {r}");
    assert_eq!(r["org"]["id"], org.as_str());
    assert_eq!(r["org"]["name"], "Durable Org");
    let (status, r) = server.get(&format!("{ACTIONS}/{org_action}"), &org_token).await;
    assert_eq!(status, 200, "{r}");

    // A second round on the recovered file.
    expected.extend(write_batch(&server, "second", 30).await);
    server.kill_9();
    let server = start(dir.path(), &db, 3).await;
    verify(&server, &expected, "after the second kill -9").await;
    // Names of deleted actions are free, live ones still clash (the unique index recovered too).
    let live = expected.iter().find(|e| !e.deleted).expect("a live action");
    let (status, r) = server.post(ACTIONS, ADMIN, json!({"name": live.name.to_uppercase(), "script": "x"})).await;
    assert_eq!(status, 409, "{r}");
    if let Some(gone) = expected.iter().find(|e| e.deleted) {
        let (status, r) = server.post(ACTIONS, ADMIN, json!({"name": gone.name, "script": "x"})).await;
        assert_eq!(status, 200, "{r}");
    }
}

fn prometheus_counter_with_status(text: &str) -> Option<(String, f64)> {
    let counters: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .filter(|name| name.contains("request"))
        .collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        for name in &counters {
            if let Some(rest) = line.strip_prefix(name) {
                if rest.starts_with('{') && rest.contains("\"200\"") {
                    let value: f64 = rest.rsplit(' ').next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
                    if value >= 1.0 {
                        return Some((line.to_string(), value));
                    }
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ops_endpoints_need_no_auth() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ops.db");
    let client = reqwest::Client::new();
    let server = start(dir.path(), &db, 1).await;
    let get = |path: &str| client.get(format!("{}{}", server.base, path)).send();

    for path in ["/debug/healthz", "/debug/ready"] {
        let r = get(path).await.expect(path);
        assert_eq!(r.status(), 200, "{path}");
    }
    // API calls do need a token (contrast).
    let (status, r) = server.request(reqwest::Method::GET, "/management/v1/orgs/me", None, None).await;
    assert_eq!(status, 401, "{r}");

    // Metrics count requests by route and status.
    let (status, r) = server.post(&format!("{ACTIONS}/_search"), ADMIN, json!({})).await;
    assert_eq!(status, 200, "{r}");
    let r = get("/metrics").await.expect("metrics");
    assert_eq!(r.status(), 200);
    let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("text/plain"), "metrics content type {content_type:?}");
    let text = r.text().await.expect("metrics body");
    assert!(
        prometheus_counter_with_status(&text).is_some(),
        "no request counter (a `# TYPE …request… counter` family with a status=\"200\" sample ≥ 1) in:\n{text}"
    );

    // The served OpenAPI document is the committed one.
    let r = get("/openapi.json").await.expect("openapi");
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.expect("openapi.json is JSON");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("committed openapi.json"),
    )
    .expect("committed openapi.json is JSON");
    assert!(served == committed, "/openapi.json differs from openapi/openapi.json");

    // Swagger UI from vendored assets.
    for path in ["/docs/", "/docs"] {
        let r = get(path).await.expect(path);
        assert_eq!(r.status(), 200, "{path}");
        let content_type = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(content_type.starts_with("text/html"), "{path}: content type {content_type:?}");
        let final_url = r.url().clone();
        let html = r.text().await.expect("html");
        assert!(html.to_lowercase().contains("swagger"), "{path} is not Swagger UI:\n{html}");
        let mut assets = 0;
        for attr in ["src=\"", "href=\""] {
            for piece in html.split(attr).skip(1) {
                let target = piece.split('"').next().unwrap_or("");
                if target.is_empty() || target.starts_with('#') || target.starts_with("data:") {
                    continue;
                }
                assert!(
                    !target.starts_with("http://") && !target.starts_with("https://") && !target.starts_with("//"),
                    "{path} loads {target} from the internet (assets must be vendored)"
                );
                let url = final_url.join(target).expect("asset url");
                let asset = client.get(url.clone()).send().await.expect("asset");
                assert_eq!(asset.status(), 200, "{path}: asset {url}");
                assets += 1;
            }
        }
        assert!(assets > 0, "{path} references no assets:\n{html}");
    }
    // No online validator badge (it would fetch from swagger.io with the document's URL).
    let init = get("/docs/swagger-initializer.js").await.expect("initializer").text().await.expect("text");
    assert!(init.contains("\"validatorUrl\": \"none\"") || init.contains("\"validatorUrl\":\"none\""), "{init}");
    assert!(init.contains("\"/openapi.json\""), "Swagger UI reads the served document: {init}");
    // The document is one shared body, also for HEAD; other methods get the contract's 405.
    let r = client.head(format!("{}/openapi.json", server.base)).send().await.expect("head");
    assert_eq!(r.status(), 200);
    let r = client.post(format!("{}/openapi.json", server.base)).send().await.expect("post");
    assert_eq!(r.status(), 405);
    assert_eq!(r.json::<Value>().await.expect("a JSON error body")["code"], 12);
    // Readiness probes arriving together share checks: a burst of them is all 200.
    let probes = (0..200).map(|_| get("/debug/ready"));
    for r in futures::future::join_all(probes).await {
        assert_eq!(r.expect("ready").status(), 200);
    }
    // Swagger UI's own routes answer in the same shape.
    for (method, path, status, code) in
        [(reqwest::Method::GET, "/docs/nope", 404, 5), (reqwest::Method::OPTIONS, "/docs/", 405, 12)]
    {
        let r = client.request(method, format!("{}{path}", server.base)).send().await.expect(path);
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.json::<Value>().await.expect("a JSON error body")["code"], code, "{path}");
    }
    drop(server);
}
