//! v2 function executions inside `_execute` (README, "Actions v2"; README, "Walkthrough with curl"):
//! preuserinfo / preaccesstoken / presamlresponse targets add claims, metadata, log claims and
//! attributes next to the v1 actions in one `_execute` result; interrupting failures fail it.
//! Targets call a small recording HTTP receiver on 127.0.0.1 (allowed through the allow list).

use crate::common;

use actionsd::config::Config;
use common::receiver::{Answer, Receiver};
use common::{b64, metadata_effect, Reply, TestServer};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const TARGETS: &str = "/v2/actions/targets";
const EXECUTIONS: &str = "/v2/actions/executions";
const DELIVERIES: &str = "/v2/actions/deliveries/search";

fn allow_local(c: &mut Config) {
    crate::common::allow_loopback(c);
}

/// A receiver answering 200 `{}` unless told otherwise.
async fn receiver() -> Receiver {
    let rx = Receiver::start().await;
    rx.set_default(Answer::json(200, json!({})));
    rx
}

fn paths(rx: &Receiver) -> Vec<String> {
    rx.requests().into_iter().map(|r| r.path).collect()
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
    let rx = receiver().await;
    rx.reply_at(
        "/call",
        Answer::json(200, json!({"append_claims": [{"key": "v2claim", "value": {"nested": [1, 2]}}]})),
    );
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
    assert_eq!(rx.requests_to("/call").len(), 1);

    // The other token trigger has no execution: its targets are not called.
    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    ok(&r);
    assert_eq!(rx.requests_to("/call").len(), 1, "preuserinfo has no execution");
}

async fn claim_rules_and_log_claims(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at(
        "/call",
        Answer::json(
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
        ),
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
    let rx = receiver().await;
    rx.reply_at(
        "/call",
        Answer::json(
            200,
            json!({"set_user_metadata": [
                {"key": "lang", "value": b64("\"fr\"")},
                {"key": "plain", "value": b64("raw bytes")},
                {"key": "empty", "value": ""}
            ]}),
        ),
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
    assert_eq!(md.len(), 3, "an entry without a value is skipped: {r:?}");
    assert_eq!(
        effects["claims"]["urn:zitadel:iam:action:function/preuserinfo:log"],
        json!(["failed to set user metadata key \"empty\""]),
        "{r:?}"
    );

    // The target saw the v1 write merged into user_metadata.
    let payload = rx.requests_to("/call")[0].json();
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
    let rx = receiver().await;
    rx.reply_at("/call", Answer::json(200, json!({
            "append_attribute": [
                {"name": "Email", "name_format": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", "value": ["jdoe@acme.example"]},
                {"name": "Roles", "nameFormat": "", "value": ["ignored"]},
                {"name": "Groups", "value": ["a", "b"]}
            ],
            "append_claims": [{"key": "not", "value": "for saml"}],
            "set_user_metadata": [{"key": "saml", "value": b64("true")}]
        })),
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

    let payload = rx.requests_to("/call")[0].json();
    assert_eq!(payload["function"], "function/presamlresponse");
    assert!(payload.get("userinfo").is_none(), "{payload}");
    assert_eq!(payload["user"]["id"], "219000000000000001");
    assert_eq!(payload["user_grants"][0]["project_id"], "p1");
}

async fn preuserinfo_payload(s: &TestServer) {
    let rx = receiver().await;
    bind_v1(s, "2", "4", "addV1", "function addV1(ctx, api) { api.v1.userinfo.setClaim('v1claim', 7); }").await;
    let (id, _) = create_target(s, "hook", webhook_kind(true), &rx.url("/hook")).await;
    set_function(s, "preuserinfo", &[&id]).await;

    // As upstream: a numeric `user.sequence` (the context may give it as a string of digits), the
    // token's client, and the actor chain of a token exchange, with snake_case keys.
    let mut context = token_context();
    context["user"]["sequence"] = json!("42");
    context["actor"] = json!({"userId": "imp-1", "issuer": "https://issuer.example", "actor": {"userId": "imp-0"}});
    let r = s.execute_trigger(&s.admin, "2", "4", context).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"v1claim": 7}), "a webhook's reply is ignored: {r:?}");

    let got = rx.requests_to("/hook");
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
    assert_eq!(user["sequence"], 42, "{p}");
    // Upstream's `query.UserGrant` names the project grant `grant_id`.
    assert_eq!(p["user_grants"], json!([{"project_id": "p1", "grant_id": "pg1", "roles": ["admin"]}]), "{p}");
    assert_eq!(p["application"], json!({"client_id": "web"}), "{p}");
    assert_eq!(
        p["actor"],
        json!({"user_id": "imp-1", "issuer": "https://issuer.example", "actor": {"user_id": "imp-0"}}),
        "{p}"
    );
}

async fn chained_targets_see_previous_claims(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at(
        "/one",
        Answer::json(200, json!({"append_claims": [{"key": "one", "value": 1}], "append_log_claims": ["from one"]})),
    );
    rx.reply_at(
        "/two",
        Answer::json(200, json!({"append_claims": [{"key": "two", "value": 2}, {"key": "one", "value": "again"}]})),
    );
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
    assert_eq!(paths(&rx), vec!["/one", "/two"], "list order");
    assert_eq!(rx.requests_to("/two")[0].json()["userinfo"]["one"], 1, "the second target sees the first's claim");
}

async fn webhook_500_with_interrupt_fails(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at("/bad", Answer::json(500, json!({"oops": true})));
    bind_v1(s, "2", "5", "addV1", "function addV1(ctx, api) { api.v1.claims.setClaim('v1claim', 1); }").await;
    let (bad, _) = create_target(s, "bad", webhook_kind(true), &rx.url("/bad")).await;
    let (after, _) = create_target(s, "after", call_kind(true), &rx.url("/after")).await;
    set_function(s, "preaccesstoken", &[&bad, &after]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let error = failed(&r);
    assert!(error.starts_with("target \"bad\": "), "{error}");
    assert!(error.contains("500"), "{error}");
    assert_eq!(r.body["runs"][0]["outcome"], "OUTCOME_SUCCEEDED", "the v1 action itself succeeded: {r:?}");
    assert!(rx.requests_to("/after").is_empty(), "the chain stopped");
}

async fn webhook_500_without_interrupt_continues(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at("/bad", Answer::json(500, json!({})));
    rx.reply_at("/after", Answer::json(200, json!({"append_claims": [{"key": "after", "value": true}]})));
    let (bad, _) = create_target(s, "bad", webhook_kind(false), &rx.url("/bad")).await;
    let (after, _) = create_target(s, "after", call_kind(false), &rx.url("/after")).await;
    set_function(s, "preaccesstoken", &[&bad, &after]).await;

    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"after": true}), "{r:?}");
    assert_eq!(paths(&rx), vec!["/bad", "/after"]);
}

async fn forwarded_error_interrupts(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at("/call", Answer::json(200, json!({"forwardedStatusCode": 403, "forwardedErrorMessage": "nope"})));
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

/// A reply's member names in another letter case are read as ZITADEL reads them (its guide's
/// example target answers `{"Key": …, "Value": …}` metadata items).
async fn reply_members_in_any_letter_case(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at(
        "/call",
        Answer::json(
            200,
            json!({"SET_USER_METADATA": [{"Key": "key", "Value": "dmFsdWU="}],
                "append_claims": [{"Key": "claim", "VALUE": "value"}], "Append_Log_Claims": ["log1"]}),
        ),
    );
    let (id, _) = create_target(s, "gocase", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preuserinfo", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", token_context()).await;
    let effects = ok(&r);
    assert_eq!(effects["metadata"], json!([{"key": "key", "value": "dmFsdWU="}]), "{r:?}");
    assert_eq!(effects["claims"]["claim"], "value", "{r:?}");
    assert!(effects["claims"].get("").is_none(), "{r:?}");
    assert_eq!(effects["claims"]["urn:zitadel:iam:action:function/preuserinfo:log"], json!(["log1"]), "{r:?}");
}

async fn invalid_rest_call_reply(s: &TestServer) {
    let rx = receiver().await;
    rx.reply_at("/call", Answer::json(200, json!({"append_claims": "not a list"})));
    let (id, _) = create_target(s, "strict", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert!(failed(&r).starts_with("target \"strict\": "), "{r:?}");
}

async fn signature_header_verifies(s: &TestServer) {
    use hmac::{Hmac, Mac};
    let rx = receiver().await;
    let (id, key) = create_target(s, "signed", webhook_kind(true), &rx.url("/signed")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    ok(&r);

    let got = rx.requests_to("/signed");
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
    let rx = receiver().await;
    rx.reply_at("/after", Answer::json(200, json!({"append_claims": [{"key": "after", "value": 1}]})));
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

    rx.wait_until(Duration::from_secs(10), "the queued call", |r| r.iter().any(|x| x.path == "/async")).await;
    let got = rx.requests_to("/async");
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
    let rx = receiver().await;
    bind_v1(s, "2", "5", "boom", "function boom(ctx, api) { throw new Error('v1 failed'); }").await;
    let (id, _) = create_target(s, "call", call_kind(true), &rx.url("/call")).await;
    set_function(s, "preaccesstoken", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert!(failed(&r).starts_with("action \"boom\": "), "{r:?}");
    assert!(paths(&rx).is_empty(), "no target is called after a failed trigger");
}

async fn test_action_calls_no_targets(s: &TestServer) {
    let rx = receiver().await;
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
    assert!(paths(&rx).is_empty(), "_test calls no targets");
}

backend_tests_with!(allow_local;
    rest_call_adds_claim_next_to_v1_claim,
    claim_rules_and_log_claims,
    set_user_metadata,
    saml_append_attribute,
    preuserinfo_payload,
    chained_targets_see_previous_claims,
    webhook_500_with_interrupt_fails,
    webhook_500_without_interrupt_continues,
    forwarded_error_interrupts,
    reply_members_in_any_letter_case,
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
    let rx = receiver().await;
    rx.reply_at("/slow", Answer::json(200, json!({})).with_delay(Duration::from_secs(10)));
    rx.reply_at("/claims", Answer::json(200, json!({"append_claims": [{"key": "fast", "value": 1}]})));
    // A target's deadline is min(its timeout, the trigger time left, 1s here). Not interrupting:
    // its error is logged and the next target runs (out of time, it fails at once, logged too);
    // the trigger succeeds with the effects so far.
    let (fast, _) = create_target(s, "fast", call_kind(false), &rx.url("/claims")).await;
    let (slow, _) = create_target(s, "slow", webhook_kind(false), &rx.url("/slow")).await;
    let (late, _) = create_target(s, "late", call_kind(false), &rx.url("/claims")).await;
    set_function(s, "preaccesstoken", &[&fast, &slow, &late]).await;
    let started = Instant::now();
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert_eq!(ok(&r)["claims"]["fast"], 1, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
    // Interrupting: the trigger fails for its time (as a v1 action the budget stops).
    let (guard, _) = create_target(s, "guard", webhook_kind(true), &rx.url("/slow")).await;
    set_function(s, "preaccesstoken", &[&guard]).await;
    let started = Instant::now();
    let r = s.execute_trigger(&s.admin, "2", "5", token_context()).await;
    assert_eq!(failed(&r), "trigger timeout after 1s");
    assert!(started.elapsed() < Duration::from_secs(4), "took {:?}", started.elapsed());
}

mod budget {
    use super::*;
    backend_tests_with!(short_budget; trigger_budget_bounds_targets);
}
