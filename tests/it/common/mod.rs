//! Test harness: a real server on 127.0.0.1:0 over a fresh database (a SQLite file in a temp dir,
//! or a fresh schema on the PostgreSQL server named by ACTIONSD_TEST_POSTGRES_URL).
#![allow(dead_code)]

pub mod process;
pub mod receiver;
pub mod wire;

use actionsd::api::AppState;
use actionsd::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::io::Write;

pub const POSTGRES_ENV: &str = "ACTIONSD_TEST_POSTGRES_URL";

pub struct TestServer {
    pub base: String,
    /// The bootstrap IAM_OWNER token.
    pub admin: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub backend: &'static str,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// `details[0].id` of a gateway error.
    pub fn error_id(&self) -> &str {
        self.body["details"][0]["id"].as_str().unwrap_or("")
    }
    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().unwrap_or(-1)
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

pub fn test_config(url: &str, dir: &std::path::Path) -> Config {
    let mut config = Config::for_database(url);
    config.admin_token = Some(actionsd::store::tokens::generate_secret());
    config.admin_token_file = dir.join("admin.token").to_string_lossy().into_owned();
    config.encryption_key = Some("test-encryption-key-0123456789abcdef".into());
    config.addr = "127.0.0.1:0".into();
    config.sandbox_exe = Some(env!("CARGO_BIN_EXE_actionsd").into());
    config.sandbox_workers = Some(2);
    // Every JSON answer of every test must read as its protobuf message (proto/).
    config.check_proto_answers = true;
    config
}

impl TestServer {
    pub async fn sqlite() -> Self {
        Self::sqlite_with(|_| {}).await
    }

    pub async fn sqlite_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let mut config = test_config(&url, dir.path());
        adjust(&mut config);
        let state = actionsd::build_state(config).await.expect("server state");
        Self::start(state, dir, "sqlite").await
    }

    /// None (after saying so on stderr) when no PostgreSQL URL is configured.
    pub async fn postgres() -> Option<Self> {
        Self::postgres_with(|_| {}).await
    }

    pub async fn postgres_with(adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let Ok(url) = std::env::var(POSTGRES_ENV) else {
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED PostgreSQL variant: {POSTGRES_ENV} is not set (the SQLite variant ran)"
            );
            return None;
        };
        let schema = create_schema(&url).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(&url, dir.path());
        adjust(&mut config);
        let state = actionsd::build_state_with_schema(config, Some(&schema)).await.expect("server state");
        Some(Self::start(state, dir, "postgres").await)
    }

    /// A server on the PostgreSQL database `url` names (its public schema), for a test that made
    /// that database itself.
    pub async fn postgres_database(url: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = actionsd::build_state(test_config(url, dir.path())).await.expect("server state");
        Self::start(state, dir, "postgres").await
    }

    /// Two servers (replicas) on one fresh PostgreSQL schema, sharing the bootstrap token; None
    /// (after saying so) without a PostgreSQL URL.
    pub async fn postgres_replicas() -> Option<(Self, Self)> {
        let Ok(url) = std::env::var(POSTGRES_ENV) else {
            let _ = writeln!(std::io::stderr(), "SKIPPED PostgreSQL replicas: {POSTGRES_ENV} is not set");
            return None;
        };
        let schema = create_schema(&url).await;
        let dir_a = tempfile::tempdir().expect("tempdir");
        let dir_b = tempfile::tempdir().expect("tempdir");
        let config_a = test_config(&url, dir_a.path());
        let mut config_b = test_config(&url, dir_b.path());
        config_b.admin_token = config_a.admin_token.clone();
        let a = actionsd::build_state_with_schema(config_a, Some(&schema)).await.expect("replica a");
        let b = actionsd::build_state_with_schema(config_b, Some(&schema)).await.expect("replica b");
        Some((Self::start(a, dir_a, "postgres").await, Self::start(b, dir_b, "postgres").await))
    }

    async fn start(state: AppState, dir: tempfile::TempDir, backend: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let s = state.clone();
        let task = tokio::spawn(async move {
            actionsd::serve(s, listener, async move {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        let admin = state.config.admin_token.clone().expect("admin token");
        TestServer {
            base,
            admin,
            client: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client"),
            state,
            backend,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        self.shut_down().await;
    }

    /// Stops the server and hands back its directory (its SQLite database), to look at what the
    /// shutdown left behind.
    pub async fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        self.shut_down().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self._dir, dir)
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Any request; `token` None sends no Authorization header; extra headers as pairs.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }

    /// Raw body bytes with a content type.
    pub async fn call_raw(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut req =
            self.client.request(method, format!("{}{}", self.base, path)).header("content-type", "application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.body(body).send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), &[], None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), &[], Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), &[], Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), &[], None).await
    }

    /// Connect unary JSON: `POST /<service>/<method>`.
    pub async fn connect(&self, service_method: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, &format!("/{service_method}"), Some(token), &[], Some(body)).await
    }

    /// Creates an org (as admin) and returns its id.
    pub async fn create_org(&self, name: &str) -> String {
        let r = self.post("/management/v1/orgs", &self.admin, serde_json::json!({"name": name})).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["id"].as_str().expect("org id").to_string()
    }

    /// Creates a token for an org ("default" allowed) and role; returns the secret.
    pub async fn create_token(&self, org: &str, role: &str) -> String {
        let r = self.post("/admin/v1/tokens", &self.admin, serde_json::json!({"orgId": org, "role": role})).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["token"].as_str().expect("token").to_string()
    }

    /// Creates an action with the given token and returns its id.
    pub async fn create_action(&self, token: &str, name: &str) -> String {
        let r = self
            .post(
                "/management/v1/actions",
                token,
                serde_json::json!({"name": name, "script": format!("function {name}(ctx, api) {{}}")}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["id"].as_str().expect("action id").to_string()
    }
}

impl TestServer {
    /// Creates a token (as admin) and returns `(token id, secret)`.
    pub async fn add_token(&self, org: &str, role: &str) -> (String, String) {
        let r = self.post("/admin/v1/tokens", &self.admin, serde_json::json!({"orgId": org, "role": role})).await;
        assert_eq!(r.status, 200, "{r:?}");
        (r.body["id"].as_str().expect("token id").to_string(), r.body["token"].as_str().expect("token").to_string())
    }

    /// Any request with an extra `x-zitadel-orgid` header.
    pub async fn call_org(&self, method: Method, path: &str, token: &str, org: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(token), &[("x-zitadel-orgid", org)], body).await
    }

    /// A hand-written HTTP/1.1 request on a fresh connection: the path (and header values) go
    /// out byte for byte, with no URL normalization (`..`, `%2e%2e`, `%00` reach the server as is).
    pub async fn raw_http(&self, method: &str, path: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Reply {
        raw_http(&self.base, method, path, headers, body).await
    }
}

/// See [`TestServer::raw_http`]; `base` is `http://host:port`.
pub async fn raw_http(base: &str, method: &str, path: &[u8], headers: &[(&str, &[u8])], body: &[u8]) -> Reply {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("connect");
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(path);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    req.extend_from_slice(authority.as_bytes());
    req.extend_from_slice(b"\r\nConnection: close\r\n");
    let mut chunked = false;
    for (k, v) in headers {
        chunked |= k.eq_ignore_ascii_case("transfer-encoding");
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    if !chunked {
        req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    // The server may answer (and close) before it has read a large body; the answer still counts.
    let _ = stream.write_all(&req).await;
    let _ = stream.flush().await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no response: {e}"),
            Err(_) => break,
        }
    }
    parse_http_response(&raw)
}

fn parse_http_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete HTTP response: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let code: u16 = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status code");
    let mut headers = reqwest::header::HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let is_chunked = headers
        .get("transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if is_chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size_hex = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_hex.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
            rest = &rest[eol + 2..];
            if size == 0 || rest.len() < size {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[(size + 2).min(rest.len())..];
        }
        body = out;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status: StatusCode::from_u16(code).expect("status"), body, headers }
}

/// A fresh, empty schema on the PostgreSQL server at `url`.
pub async fn create_schema(url: &str) -> String {
    use sea_orm::{ConnectionTrait, Database};
    let db = Database::connect(url).await.expect("connect to ACTIONSD_TEST_POSTGRES_URL");
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    db.execute_unprepared(&format!("CREATE SCHEMA \"{schema}\"")).await.expect("create schema");
    db.close().await.ok();
    schema
}

/// The PostgreSQL URL for a test that runs only on PostgreSQL; None (after saying so on stderr, in
/// the form `.ci/run` counts as skipped) when the variable is not set.
/// Whether the npm packages a check needs are installed in `dir` (`installed` is a path inside
/// it). Without them the check says SKIPPED, unless `require_env` is set (CI), where it fails.
pub fn npm_installed_or_skip(dir: &std::path::Path, installed: &str, require_env: &str, what: &str) -> bool {
    if dir.join(installed).exists() {
        return true;
    }
    assert!(
        std::env::var_os(require_env).is_none(),
        "{require_env} is set but {} has no {installed} (npm ci there)",
        dir.display()
    );
    eprintln!("SKIPPED {what}: run `npm ci` in {}", dir.display());
    false
}

pub fn postgres_url_or_skip(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("SKIPPED PostgreSQL variant: {test} ({POSTGRES_ENV} is not set)");
            None
        }
    }
}

/// The URL of a database named `name` on the PostgreSQL server that `url` names (for a test
/// that makes a database of its own).
pub fn sibling_database_url(url: &str, name: &str) -> String {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    format!("{}/{name}", &base[..base.rfind('/').expect("a database in the URL")])
}

pub async fn drop_schema(url: &str, schema: &str) {
    use sea_orm::{ConnectionTrait, Database};
    if let Ok(db) = Database::connect(url).await {
        let _ = db.execute_unprepared(&format!("DROP SCHEMA \"{schema}\" CASCADE")).await;
        db.close().await.ok();
    }
}

/// The test database URL with the connection's search_path set to `schema` (the binary takes no
/// schema option, but the PostgreSQL driver passes `options` as startup parameters).
pub fn url_with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20search_path%3D{schema}")
}

/// Runs each listed `async fn(TestServer)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = $crate::common::TestServer::sqlite().await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::postgres().await {
                        super::$name(&server).await;
                        server.stop().await;
                    }
                }
            )+
        }
    };
}

// ---------- helpers for the Actions v2 tests ----------

/// A gateway error with a stable id: status, gRPC code, `details[0]` and `message` = `<text> (<ID>)`.
#[track_caller]
pub fn assert_err(r: &Reply, status: u16, code: i64, id: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.code(), code, "{r:?}");
    assert_eq!(r.error_id(), id, "{r:?}");
    assert_eq!(r.body["details"][0]["@type"], "type.googleapis.com/zitadel.v1.ErrorDetail", "{r:?}");
    let detail = r.body["details"][0]["message"].as_str().unwrap_or("");
    assert_eq!(r.body["message"], format!("{detail} ({id})"), "{r:?}");
}

/// Like [`assert_err`] and the human text is exactly `text`.
#[track_caller]
pub fn assert_err_text(r: &Reply, status: u16, code: i64, id: &str, text: &str) {
    assert_err(r, status, code, id);
    assert_eq!(r.body["message"], format!("{text} ({id})"), "{r:?}");
}

/// Lets targets and `fetch` reach the tests' loopback receivers (denied by default).
pub fn allow_loopback(c: &mut Config) {
    c.http_allow_list = "127.0.0.1".into();
}

/// Gateway error with the error key as `details[0].id` and in the message.
#[track_caller]
pub fn assert_error(r: &Reply, status: u16, code: i64, key: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert_eq!(r.code(), code, "{what}: {r:?}");
    assert_eq!(r.error_id(), key, "{what}: {r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").contains(key), "{what}: {r:?}");
}

/// A CreateTarget body for a restWebhook target on an external (never called) endpoint.
pub fn webhook_target(name: &str) -> Value {
    serde_json::json!({"name": name, "restWebhook": {}, "timeout": "10s", "endpoint": "https://hooks.example.com/z"})
}

/// As `backend_tests!`, with a configuration adjustment (`fn(&mut Config)`) applied on both backends.
#[macro_export]
macro_rules! backend_tests_with {
    ($adjust:ident; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = $crate::common::TestServer::sqlite_with(super::$adjust).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::postgres_with(super::$adjust).await {
                        super::$name(&server).await;
                        server.stop().await;
                    }
                }
            )+
        }
    };
}

// ---------- helpers for the v1 runtime tests (_execute, _test, runs) ----------

/// Base64 (standard, padded) of UTF-8 text, as metadata values travel.
pub fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
}

/// Decodes standard base64 into UTF-8 text (panics on bad input).
pub fn unb64(encoded: &str) -> String {
    use base64::Engine;
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_else(|e| panic!("base64 {encoded:?}: {e}"));
    String::from_utf8(bytes).expect("utf-8 metadata value")
}

/// `effects.metadata` as `key -> decoded bytes (text)`; panics when a key appears twice.
pub fn metadata_effect(effects: &Value) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for item in effects["metadata"].as_array().cloned().unwrap_or_default() {
        let key = item["key"].as_str().unwrap_or_else(|| panic!("metadata item without key: {item}")).to_string();
        let value = unb64(item["value"].as_str().unwrap_or_else(|| panic!("metadata item without value: {item}")));
        assert!(out.insert(key.clone(), value).is_none(), "metadata key {key:?} appears twice: {effects}");
    }
    out
}

/// The JSON value an action stored with `setMetadata`/`appendMetadata` under `key`.
pub fn metadata_json(effects: &Value, key: &str) -> Value {
    let map = metadata_effect(effects);
    let text = map.get(key).unwrap_or_else(|| panic!("no metadata {key:?} in {effects}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("metadata {key:?} is not JSON ({e}): {text}"))
}

impl TestServer {
    /// CreateAction with a full body (`{name, script, timeout?, allowedToFail?}`) as `token`; returns the id.
    pub async fn create_action_body(&self, token: &str, body: Value) -> String {
        let r = self.post("/management/v1/actions", token, body).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["id"].as_str().expect("action id").to_string()
    }

    /// CreateAction `{name, script}` as admin; returns the id.
    pub async fn create_script_action(&self, name: &str, script: &str) -> String {
        self.create_action_body(&self.admin, serde_json::json!({"name": name, "script": script})).await
    }

    /// SetTriggerActions as `token`, asserting 200.
    pub async fn bind_trigger(&self, token: &str, flow: &str, trigger: &str, ids: &[&str]) {
        let r = self
            .post(
                &format!("/management/v1/flows/{flow}/trigger/{trigger}"),
                token,
                serde_json::json!({"actionIds": ids}),
            )
            .await;
        assert_eq!(r.status, 200, "bind {flow}/{trigger} {ids:?}: {r:?}");
    }

    /// ExecuteFlowTrigger `{"context": context}` as `token`. When it succeeds, the context must
    /// validate against the trigger's context schema and the effects against its effects schema
    /// (the documents of authoring.md §3), so every test's example checks them.
    pub async fn execute_trigger(&self, token: &str, flow: &str, trigger: &str, context: Value) -> Reply {
        let r = self
            .post(
                &format!("/management/v1/flows/{flow}/trigger/{trigger}/_execute"),
                token,
                serde_json::json!({"context": context.clone()}),
            )
            .await;
        if r.status == 200 {
            check_against_schemas(flow, trigger, &context, &r.body);
        }
        r
    }

    /// TestAction with the given body as `token`.
    pub async fn test_action(&self, token: &str, body: Value) -> Reply {
        self.post("/management/v1/actions/_test", token, body).await
    }

    /// ListRuns with the given body as `token`.
    pub async fn list_runs(&self, token: &str, body: Value) -> Reply {
        self.post("/management/v1/runs/_search", token, body).await
    }

    /// Polls ListRuns (bounded: about 5 s) until `done` holds for a 200 reply; returns the last reply.
    pub async fn poll_runs(&self, token: &str, body: Value, done: impl Fn(&Reply) -> bool) -> Reply {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let r = self.list_runs(token, body.clone()).await;
            if (r.status == 200 && done(&r)) || std::time::Instant::now() >= deadline {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

/// Validates an `_execute` context and its answer's effects against the trigger's JSON Schemas.
#[track_caller]
pub fn check_against_schemas(flow: &str, trigger: &str, context: &Value, answer: &Value) {
    use actionsd::domain::{FlowType, Trigger, TriggerType};
    use actionsd::runtime::api::surface;
    let (Some(f), Some(t)) = (FlowType::parse(flow), TriggerType::parse(trigger)) else { return };
    let Some(t) = Trigger::new(f, t) else { return };
    let validate = |schema: Value, instance: &Value, what: &str| {
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{what} of {flow}/{trigger} does not match its schema: {errors:?}\n{instance}");
    };
    validate(surface::served_context_schema(t), context, "the context");
    if let Some(effects) = answer.get("effects") {
        validate(surface::effects_schema(t), effects, "the effects");
    }
}

/// A test CA (`ca.pem`) and a leaf certificate it signed for `localhost` and 127.0.0.1
/// (`cert.pem`, key `key.pem`), written into `dir` with openssl (Debian package openssl).
pub fn make_test_ca(dir: &std::path::Path) {
    let at = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(at("leaf.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n").unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: Vec<Vec<String>> = vec![
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", &at("ca.key"), "-out", &at("ca.pem"), "-days", "2", "-subj", "/CN=actionsd test CA"],
        ]
        .concat(),
        [&["req"][..], &ec, &["-keyout", &at("key.pem"), "-out", &at("leaf.csr"), "-subj", "/CN=localhost"]].concat(),
        [
            "x509",
            "-req",
            "-in",
            &at("leaf.csr"),
            "-CA",
            &at("ca.pem"),
            "-CAkey",
            &at("ca.key"),
            "-CAcreateserial",
            "-out",
            &at("cert.pem"),
            "-days",
            "2",
            "-extfile",
            &at("leaf.ext"),
        ]
        .to_vec(),
    ]
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for args in steps {
        let out = std::process::Command::new("openssl").args(&args).output().expect("openssl (Debian package openssl)");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
