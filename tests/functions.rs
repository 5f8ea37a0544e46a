//! v2 function executions inside `_execute` (actions-v2.md §4, §5 "function"; execute.md):
//! preuserinfo / preaccesstoken / presamlresponse targets add claims, metadata, log claims and
//! attributes next to the v1 actions in one `_execute` result; interrupting failures fail it.
//! Targets call a small recording HTTP receiver on 127.0.0.1 (allowed through the allow list).

mod common;

use actionsd::config::Config;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use common::{b64, metadata_effect, Reply, TestServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGETS: &str = "/v2/actions/targets";
const EXECUTIONS: &str = "/v2/actions/executions";
const DELIVERIES: &str = "/v2/actions/deliveries/search";

fn allow_local(c: &mut Config) {
    c.http_allow_list = "127.0.0.1".into();
}

/// Like `backend_tests!`, but the servers may call targets on 127.0.0.1.
macro_rules! function_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let server = $crate::common::TestServer::sqlite_with(super::allow_local).await;
                    super::$name(&server).await;
                    server.stop().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(server) = $crate::common::TestServer::postgres_with(super::allow_local).await {
                        super::$name(&server).await;
                        server.stop().await;
                    }
                }
            )+
        }
    };
}

// ---------- a recording receiver ----------

#[derive(Debug, Clone)]
struct Recorded {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

#[derive(Default)]
struct ReceiverState {
    requests: Vec<Recorded>,
    /// path → (status, body, delay)
    replies: HashMap<String, (u16, Value, Duration)>,
}

#[derive(Clone)]
struct Receiver {
    base: String,
    state: Arc<Mutex<ReceiverState>>,
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path().to_string();
    let (status, reply, delay) = {
        let mut s = state.lock().unwrap();
        s.requests.push(Recorded { path: path.clone(), headers, body: body.to_vec() });
        s.replies.get(&path).cloned().unwrap_or((200, json!({}), Duration::ZERO))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    (StatusCode::from_u16(status).unwrap(), axum::Json(reply)).into_response()
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(ReceiverState::default()));
        let app = axum::Router::new().fallback(receive).with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { base, state }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn reply(&self, path: &str, status: u16, body: Value) {
        self.state.lock().unwrap().replies.insert(path.to_string(), (status, body, Duration::ZERO));
    }

    fn reply_slowly(&self, path: &str, delay: Duration) {
        self.state.lock().unwrap().replies.insert(path.to_string(), (200, json!({}), delay));
    }

    fn requests(&self, path: &str) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.iter().filter(|r| r.path == path).cloned().collect()
    }

    fn paths(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.iter().map(|r| r.path.clone()).collect()
    }

    /// Waits (bounded) until `path` got at least `n` requests.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Recorded> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.requests(path);
            if got.len() >= n || Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------- helpers ----------

/// CreateTarget; `kind` is e.g. `json!({"restCall": {"interruptOnError": true}})`. Returns (id, signingKey).
async fn create_target(s: &TestServer, name: &str, kind: Value, endpoint: &str) -> (String, String) {
    let mut body = json!({"name": name, "timeout": "5s", "endpoint": endpoint});
    for (k, v) in kind.as_object().expect("kind object") {
        body[k] = v.clone();
    }
    let r = s.post(TARGETS, &s.admin, body).await;
    assert_eq!(r.status, 200, "create target {name}: {r:?}");
    (r.body["id"].as_str().unwrap().to_string(), r.body["signingKey"].as_str().unwrap().to_string())
}

async fn set_function(s: &TestServer, function: &str, targets: &[&str]) {
    let r =
        s.put(EXECUTIONS, &s.admin, json!({"condition": {"function": {"name": function}}, "targets": targets})).await;
    assert_eq!(r.status, 200, "set execution function/{function}: {r:?}");
}

/// Creates a v1 action with `script` and binds it (alone) to flow/trigger.
async fn bind_v1(s: &TestServer, flow: &str, trigger: &str, name: &str, script: &str) {
    let id = s.create_script_action(name, script).await;
    s.bind_trigger(&s.admin, flow, trigger, &[&id]).await;
}

fn call_kind(interrupt: bool) -> Value {
    json!({"restCall": {"interruptOnError": interrupt}})
}

fn webhook_kind(interrupt: bool) -> Value {
    json!({"restWebhook": {"interruptOnError": interrupt}})
}

#[track_caller]
fn ok(r: &Reply) -> &Value {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    assert!(r.body.get("error").is_none(), "{r:?}");
    &r.body["effects"]
}

#[track_caller]
fn failed(r: &Reply) -> &str {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
    assert!(r.body.get("effects").is_none(), "no effects on failure: {r:?}");
    r.body["error"].as_str().unwrap_or_else(|| panic!("no error text: {r:?}"))
}

fn user_context() -> Value {
    json!({
        "id": "219000000000000001", "creationDate": "2024-01-02T03:04:05Z", "resourceOwner": "219000000000000000",
        "state": "USER_STATE_ACTIVE", "username": "jdoe", "loginNames": ["jdoe@acme.example"],
        "preferredLoginName": "jdoe@acme.example",
        "human": {"firstName": "John", "lastName": "Doe", "gender": "GENDER_MALE", "email": "jdoe@acme.example",
            "isEmailVerified": true}
    })
}

fn token_context() -> Value {
    json!({
        "claims": {"sub": "219000000000000001", "email": "jdoe@acme.example"},
        "user": user_context(),
        "userMetadata": [{"key": "team", "value": b64("\"blue\"")}],
        "userGrants": [{"projectId": "p1", "projectGrantId": "pg1", "roles": ["admin"]}],
        "org": {"id": "o1", "name": "ACME", "primaryDomain": "acme.example"},
        "application": {"clientId": "web"}
    })
}

const LOG_CLAIM_AT: &str = "urn:zitadel:iam:action:function/preaccesstoken:log";

// ---------- tests ----------

async fn rest_call_adds_claim_next_to_v1_claim(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/call", 200, json!({"append_claims": [{"key": "v2claim", "value": {"nested": [1, 2]}}]}));
    bind_v1(s, "2", "5", "addV1", "function addV1(ctx, api) { api.v1.claims.setClaim('v1claim', 'from v1'); }").await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"v1claim": "from v1", "v2claim": {"nested": [1, 2]}}), "{r:?}");
    // runs lists the v1 actions only.
    let runs = r.body["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{r:?}");
    assert_eq!(runs[0]["actionName"], "addV1");
    assert_eq!(rx.requests("/call").len(), 1);

    // The other token trigger has no execution: its targets are not called.
    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    ok(&r);
    assert_eq!(rx.requests("/call").len(), 1, "preuserinfo has no execution");
}

async fn claim_rules_and_log_claims(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply(
        "/call",
        200,
        json!({
            "appendClaims": [
                {"key": "urn:zitadel:iam:org:project:roles", "value": "reserved"},
                {"key": "urn:zitadel:iamfoo", "value": "reserved too"},
                {"key": "sub", "value": "someone else"},
                {"key": "v1claim", "value": "overwrite?"},
                {"key": "fresh", "value": 42}
            ],
            "append_log_claims": ["first log", "second log"]
        }),
    );
    bind_v1(s, "2", "5", "addV1", "function addV1(ctx, api) { api.v1.claims.setClaim('v1claim', 'kept'); }").await;
    let (id, _) = create_target(s, "call", call_kind(false), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let effects = ok(&r);
    assert_eq!(
        effects["claims"],
        json!({
            "v1claim": "kept",
            "fresh": 42,
            LOG_CLAIM_AT: ["key \"sub\" already exists", "key \"v1claim\" already exists", "first log", "second log"]
        }),
        "{r:?}"
    );
}

async fn set_user_metadata(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply(
        "/call",
        200,
        json!({"set_user_metadata": [
            {"key": "lang", "value": b64("\"fr\"")},
            {"key": "plain", "value": b64("raw bytes")}
        ]}),
    );
    bind_v1(
        s,
        "2",
        "4",
        "meta",
        "function meta(ctx, api) { api.v1.user.setMetadata('lang', 'de'); api.v1.user.setMetadata('v1only', 1); }",
    )
    .await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preuserinfo", &[&id]).await;

    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    let effects = ok(&r);
    let md = metadata_effect(effects);
    assert_eq!(md.get("lang").map(String::as_str), Some("\"fr\""), "the target's write wins: {r:?}");
    assert_eq!(md.get("v1only").map(String::as_str), Some("1"), "{r:?}");
    assert_eq!(md.get("plain").map(String::as_str), Some("raw bytes"), "{r:?}");
    assert_eq!(md.len(), 3, "{r:?}");
    assert!(effects.get("claims").is_none(), "no claims were added: {r:?}");

    // The target saw the v1 write merged into user_metadata.
    let payload = rx.requests("/call")[0].json();
    let seen: HashMap<String, String> = payload["user_metadata"]
        .as_array()
        .expect("user_metadata")
        .iter()
        .map(|m| (m["key"].as_str().unwrap().to_string(), m["value"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(seen.get("team"), Some(&b64("\"blue\"")), "{payload}");
    assert_eq!(seen.get("lang"), Some(&b64("\"de\"")), "{payload}");
}

async fn saml_append_attribute(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply(
        "/call",
        200,
        json!({
            "append_attribute": [
                {"name": "Email", "name_format": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", "value": ["jdoe@acme.example"]},
                {"name": "Roles", "nameFormat": "", "value": ["ignored"]},
                {"name": "Groups", "value": ["a", "b"]}
            ],
            "append_claims": [{"key": "not", "value": "for saml"}],
            "set_user_metadata": [{"key": "saml", "value": b64("true")}]
        }),
    );
    bind_v1(
        s,
        "4",
        "6",
        "attrs",
        "function attrs(ctx, api) { api.v1.attributes.setCustomAttribute('Roles', '', 'p:admin'); }",
    )
    .await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "presamlresponse", &[&id]).await;

    let ctx = json!({"user": user_context(), "userGrants": [{"projectId": "p1", "roles": ["admin"]}],
        "org": {"id": "o1", "name": "ACME", "primaryDomain": "acme.example"}});
    let r = s.execute_trigger(&s.admin, "4", "6", ctx).await;
    let effects = ok(&r);
    assert_eq!(
        effects["attributes"],
        json!([
            {"name": "Roles", "values": ["p:admin"]},
            {"name": "Email", "nameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", "values": ["jdoe@acme.example"]},
            {"name": "Groups", "values": ["a", "b"]}
        ]),
        "{r:?}"
    );
    assert!(effects.get("claims").is_none(), "claims do not apply to SAML: {r:?}");
    assert_eq!(metadata_effect(effects).get("saml").map(String::as_str), Some("true"));

    let payload = rx.requests("/call")[0].json();
    assert_eq!(payload["function"], "function/presamlresponse");
    assert!(payload.get("userinfo").is_none(), "{payload}");
    assert_eq!(payload["user"]["id"], "219000000000000001");
    assert_eq!(payload["user_grants"][0]["project_id"], "p1");
}

async fn preuserinfo_payload(s: &TestServer) {
    let rx = Receiver::start().await;
    bind_v1(s, "2", "4", "addV1", "function addV1(ctx, api) { api.v1.userinfo.setClaim('v1claim', 7); }").await;
    let (id, _) = create_target(s, "hook", webhook_kind(true), &rx.url("/hook")).await;
    set_function(s, "preuserinfo", &[&id]).await;

    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"v1claim": 7}), "a webhook's reply is ignored: {r:?}");

    let got = rx.requests("/hook");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"));
    let p = got[0].json();
    assert_eq!(p["function"], "function/preuserinfo", "{p}");
    assert_eq!(
        p["userinfo"],
        json!({"sub": "219000000000000001", "email": "jdoe@acme.example", "v1claim": 7}),
        "context claims plus the v1-set claims: {p}"
    );
    let user = &p["user"];
    assert_eq!(user["id"], "219000000000000001", "{p}");
    assert_eq!(user["username"], "jdoe", "{p}");
    assert_eq!(user["resource_owner"], "219000000000000000", "{p}");
    assert_eq!(user["preferred_login_name"], "jdoe@acme.example", "{p}");
    assert_eq!(user["state"], 1, "{p}");
    assert_eq!(user["human"]["first_name"], "John", "{p}");
    assert_eq!(user["human"]["gender"], 2, "{p}");
    assert_eq!(user["human"]["is_email_verified"], true, "{p}");
    assert_eq!(p["user_metadata"], json!([{"key": "team", "value": b64("\"blue\"")}]), "{p}");
    assert_eq!(p["org"], json!({"id": "o1", "name": "ACME", "primary_domain": "acme.example"}), "{p}");
    assert_eq!(p["user_grants"], json!([{"project_id": "p1", "project_grant_id": "pg1", "roles": ["admin"]}]), "{p}");
}

async fn chained_targets_see_previous_claims(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/one", 200, json!({"append_claims": [{"key": "one", "value": 1}], "append_log_claims": ["from one"]}));
    rx.reply("/two", 200, json!({"append_claims": [{"key": "two", "value": 2}, {"key": "one", "value": "again"}]}));
    let (one, _) = create_target(s, "one", call_kind(true), &rx.url("/one")).await;
    let (two, _) = create_target(s, "two", call_kind(true), &rx.url("/two")).await;
    set_function(s, "preaccesstoken", &[&one, &two]).await;

    // No v1 actions on this trigger: the function still runs.
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let effects = ok(&r);
    assert!(r.body.get("runs").is_none(), "{r:?}");
    assert_eq!(
        effects["claims"],
        json!({"one": 1, "two": 2, LOG_CLAIM_AT: ["from one", "key \"one\" already exists"]}),
        "{r:?}"
    );
    assert_eq!(rx.paths(), vec!["/one", "/two"], "list order");
    assert_eq!(rx.requests("/two")[0].json()["userinfo"]["one"], 1, "the second target sees the first's claim");
}

async fn webhook_500_with_interrupt_fails(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/bad", 500, json!({"oops": true}));
    bind_v1(s, "2", "5", "addV1", "function addV1(ctx, api) { api.v1.claims.setClaim('v1claim', 1); }").await;
    let (bad, _) = create_target(s, "bad", webhook_kind(true), &rx.url("/bad")).await;
    let (after, _) = create_target(s, "after", call_kind(true), &rx.url("/after")).await;
    set_function(s, "preaccesstoken", &[&bad, &after]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let error = failed(&r);
    assert!(error.starts_with("target \"bad\": "), "{error}");
    assert!(error.contains("500"), "{error}");
    assert_eq!(r.body["runs"][0]["outcome"], "OUTCOME_SUCCEEDED", "the v1 action itself succeeded: {r:?}");
    assert!(rx.requests("/after").is_empty(), "the chain stopped");
}

async fn webhook_500_without_interrupt_continues(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/bad", 500, json!({}));
    rx.reply("/after", 200, json!({"append_claims": [{"key": "after", "value": true}]}));
    let (bad, _) = create_target(s, "bad", webhook_kind(false), &rx.url("/bad")).await;
    let (after, _) = create_target(s, "after", call_kind(false), &rx.url("/after")).await;
    set_function(s, "preaccesstoken", &[&bad, &after]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"after": true}), "{r:?}");
    assert_eq!(rx.paths(), vec!["/bad", "/after"]);
}

async fn forwarded_error_interrupts(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/call", 200, json!({"forwardedStatusCode": 403, "forwardedErrorMessage": "nope"}));
    bind_v1(s, "2", "4", "addV1", "function addV1(ctx, api) { api.v1.claims.setClaim('v1claim', 1); }").await;
    let (id, _) = create_target(s, "guard", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preuserinfo", &[&id]).await;

    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    assert_eq!(failed(&r), "target \"guard\": nope");

    // Without interruptOnError the forwarded error is only logged.
    let (soft, _) = create_target(s, "soft", call_kind(false), &rx.url("/call")).await;
    set_function(s, "preuserinfo", &[&soft]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    assert_eq!(ok(&r)["claims"], json!({"v1claim": 1}), "{r:?}");
}

async fn invalid_rest_call_reply(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/call", 200, json!({"append_claims": "not a list"}));
    let (id, _) = create_target(s, "strict", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert!(failed(&r).starts_with("target \"strict\": "), "{r:?}");
}

async fn signature_header_verifies(s: &TestServer) {
    use hmac::{Hmac, Mac};
    let rx = Receiver::start().await;
    let (id, key) = create_target(s, "signed", webhook_kind(true), &rx.url("/signed")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    ok(&r);

    let got = rx.requests("/signed");
    assert_eq!(got.len(), 1);
    let header = got[0].headers.get("zitadel-signature").expect("ZITADEL-Signature").to_str().unwrap().to_string();
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => panic!("unexpected part {part:?} in {header:?}"),
        }
    }
    let t = t.expect("t=");
    let now = chrono::Utc::now().timestamp();
    assert!((now - t.parse::<i64>().unwrap()).abs() < 60, "{header}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&got[0].body);
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, vec![expected], "{header}");
}

async fn rest_async_enqueues_a_delivery(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply("/after", 200, json!({"append_claims": [{"key": "after", "value": 1}]}));
    let (async_id, _) = create_target(s, "async", json!({"restAsync": {}}), &rx.url("/async")).await;
    let (after, _) = create_target(s, "after", call_kind(true), &rx.url("/after")).await;
    set_function(s, "preuserinfo", &[&async_id, &after]).await;

    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    assert_eq!(ok(&r)["claims"], json!({"after": 1}), "{r:?}");

    let list = s.post(DELIVERIES, &s.admin, json!({"filters": [{"targetIdFilter": {"targetId": async_id}}]})).await;
    assert_eq!(list.status, 200, "{list:?}");
    let deliveries = list.body["deliveries"].as_array().cloned().unwrap_or_default();
    assert_eq!(deliveries.len(), 1, "{list:?}");
    assert_eq!(deliveries[0]["executionId"], "function/preuserinfo", "{list:?}");
    assert_eq!(deliveries[0]["targetId"], async_id.as_str(), "{list:?}");

    let got = rx.wait_for("/async", 1).await;
    assert_eq!(got.len(), 1, "the queue delivered the async call");
    let p = got[0].json();
    assert_eq!(p["function"], "function/preuserinfo", "{p}");
    assert_eq!(p["user"]["id"], "219000000000000001", "{p}");
    assert!(got[0].headers.contains_key("zitadel-signature"));

    // The delivery is eventually recorded as succeeded.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = s.post(DELIVERIES, &s.admin, json!({"filters": [{"targetIdFilter": {"targetId": async_id}}]})).await;
        if list.body["deliveries"][0]["state"] == "DELIVERY_STATE_SUCCEEDED" {
            break;
        }
        assert!(Instant::now() < deadline, "delivery not succeeded: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn failed_v1_trigger_skips_function(s: &TestServer) {
    let rx = Receiver::start().await;
    bind_v1(s, "2", "5", "boom", "function boom(ctx, api) { throw new Error('v1 failed'); }").await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert!(failed(&r).starts_with("action \"boom\": "), "{r:?}");
    assert!(rx.paths().is_empty(), "no target is called after a failed trigger");
}

async fn test_action_calls_no_targets(s: &TestServer) {
    let rx = Receiver::start().await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "t", "script": "function t(ctx, api) { api.v1.claims.setClaim('x', 1); }",
                "flowType": "2", "triggerType": "5", "context": token_context()}),
        )
        .await;
    assert_eq!(ok(&r)["claims"], json!({"x": 1}), "{r:?}");
    assert!(rx.paths().is_empty(), "_test calls no targets");
}

function_tests!(
    rest_call_adds_claim_next_to_v1_claim,
    claim_rules_and_log_claims,
    set_user_metadata,
    saml_append_attribute,
    preuserinfo_payload,
    chained_targets_see_previous_claims,
    webhook_500_with_interrupt_fails,
    webhook_500_without_interrupt_continues,
    forwarded_error_interrupts,
    invalid_rest_call_reply,
    signature_header_verifies,
    rest_async_enqueues_a_delivery,
    failed_v1_trigger_skips_function,
    test_action_calls_no_targets,
);

// ---------- the trigger budget bounds target calls ----------

fn short_budget(c: &mut Config) {
    allow_local(c);
    c.max_trigger_time = actionsd::domain::Duration::from_secs(1);
}

async fn trigger_budget_bounds_targets(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.reply_slowly("/slow", Duration::from_secs(10));
    // Not interrupting, but the trigger budget (1s) runs out first: the trigger fails (as for v1).
    let (id, _) = create_target(s, "slow", webhook_kind(false), &rx.url("/slow")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let started = Instant::now();
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert_eq!(failed(&r), "trigger timeout after 1s");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_budget_bounds_targets_sqlite() {
    let server = TestServer::sqlite_with(short_budget).await;
    trigger_budget_bounds_targets(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn trigger_budget_bounds_targets_postgres() {
    if let Some(server) = TestServer::postgres_with(short_budget).await {
        trigger_budget_bounds_targets(&server).await;
        server.stop().await;
    }
}
