//! The connector's call endpoint acting as ZITADEL (README, "Use actionsd with ZITADEL") for the
//! function conditions): signed snake_case function payloads, the org routing, the replies ZITADEL
//! applies, failures as forwarded errors, and every authenticity check refusing before anything
//! runs. On SQLite and PostgreSQL.

use crate::common::receiver::hmac_sha256;
use crate::common::{self, assert_error, Reply, TestServer};
use serde_json::{json, Value};

pub(crate) const CONNECTIONS: &str = "/connector/v1/connections";
pub(crate) const KEY: &str = "zitadel-target-signing-key-1";
const ROTATED: &str = "zitadel-target-signing-key-2";

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub(crate) fn signature(key: &str, t: i64, body: &[u8]) -> String {
    let mut data = format!("{t}.").into_bytes();
    data.extend_from_slice(body);
    format!("t={t},v1={}", hex::encode(hmac_sha256(key.as_bytes(), &data)))
}

pub(crate) async fn post_call(s: &TestServer, call_url: &str, body: &[u8], signature: Option<&str>) -> Reply {
    let mut req = s.client.post(format!("{}{}", s.base, call_url)).header("content-type", "application/json");
    if let Some(sig) = signature {
        req = req.header("ZITADEL-Signature", sig);
    }
    let resp = req.body(body.to_vec()).send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), headers }
}

pub(crate) async fn signed_call(s: &TestServer, call_url: &str, payload: &Value) -> Reply {
    let body = serde_json::to_vec(payload).unwrap();
    let sig = signature(KEY, now(), &body);
    post_call(s, call_url, &body, Some(&sig)).await
}

/// A connection with KEY, linked ZITADEL org `zorg` → a fresh actionsd org; (call URL, id, org, org token).
pub(crate) async fn setup(s: &TestServer, extra: Value) -> (String, String, String, String) {
    let org = s.create_org(&format!("connected org {}", uuid::Uuid::new_v4().simple())).await;
    let token = s.create_token(&org, "ORG_OWNER").await;
    let mut body = json!({"name": format!("conn-{}", uuid::Uuid::new_v4().simple()), "signingKeys": [KEY]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post(CONNECTIONS, &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = s.put(&format!("{CONNECTIONS}/{id}/orgs/zorg"), &s.admin, json!({"orgId": org})).await;
    assert_eq!(r.status, 200, "{r:?}");
    (r_call_url(&id), id, org, token)
}

pub(crate) fn r_call_url(id: &str) -> String {
    format!("{CONNECTIONS}/{id}/call")
}

pub(crate) async fn bind(
    s: &TestServer,
    token: &str,
    org: &str,
    flow: &str,
    trigger: &str,
    scripts: &[(&str, &str, bool)],
) {
    let mut ids = Vec::new();
    for (name, script, allowed_to_fail) in scripts {
        let r = s
            .call_org(
                reqwest::Method::POST,
                "/management/v1/actions",
                token,
                org,
                Some(json!({"name": name, "script": script, "allowedToFail": allowed_to_fail})),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let r = s
        .call_org(
            reqwest::Method::POST,
            &format!("/management/v1/flows/{flow}/trigger/{trigger}"),
            token,
            org,
            Some(json!({"actionIds": ids})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// ZITADEL's function payload (snake_case, as its Go structs marshal).
pub(crate) fn token_payload(function: &str, org: &str) -> Value {
    json!({
        "function": format!("function/{function}"),
        "userinfo": {"sub": "312", "email": "ann@example.com", "urn:zitadel:iam:org:id": org},
        "user": {
            "id": "312", "creation_date": "2026-01-01T00:00:00Z", "resource_owner": org, "state": 1,
            "username": "ann", "preferred_login_name": "ann@example.com",
            "human": {"first_name": "Ann", "last_name": "Lee", "display_name": "Ann Lee", "preferred_language": "en",
                      "gender": 1, "email": "ann@example.com", "is_email_verified": true}
        },
        "user_metadata": [{"key": "tier", "value": "Z29sZA=="}],
        "org": {"id": org, "name": "Connected", "primary_domain": "example.com"},
        "user_grants": [{"id": "g1", "project_id": "p1", "grant_id": "pg1", "roles": ["admin"], "project_name": "App"}],
        "application": {"client_id": "client-1"}
    })
}

/// The org's run records once there are at least `n` (successful runs are written in batches).
pub(crate) async fn runs_of(s: &TestServer, token: &str, n: usize) -> Vec<Value> {
    let count = |r: &Reply| r.body["result"].as_array().map_or(0, Vec::len);
    let r = s.poll_runs(token, json!({}), |r| count(r) >= n).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["result"].as_array().cloned().unwrap_or_default()
}

async fn complement_token_reply(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let script = r#"function addClaims(ctx, api) {
        var meta = ctx.v1.user.getMetadata();
        api.v1.claims.setClaim('tier', meta.metadata[0].value);
        api.v1.claims.setClaim('client', ctx.v1.application.getClientId());
        api.v1.claims.setClaim('first', ctx.v1.getUser().human.firstName);
        api.v1.claims.setClaim('grantProjects', ctx.v1.user.grants.grants.map(function (g) { return g.projectId + '/' + g.projectGrantId; }));
        api.v1.claims.appendLogIntoClaims('set ' + ctx.v1.claims.sub);
        api.v1.user.setMetadata('seen', true);
    }"#;
    let log_only = "function second(ctx, api) { api.v1.claims.appendLogIntoClaims('second ran'); }";
    bind(s, &token, &org, "2", "5", &[("addClaims", script, false), ("second", log_only, false)]).await;
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut claims: Vec<(String, Value)> = r.body["append_claims"]
        .as_array()
        .expect("append_claims")
        .iter()
        .map(|c| (c["key"].as_str().unwrap().to_string(), c["value"].clone()))
        .collect();
    claims.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        claims,
        vec![
            ("client".to_string(), json!("client-1")),
            ("first".to_string(), json!("Ann")),
            ("grantProjects".to_string(), json!(["p1/pg1"])),
            ("tier".to_string(), json!("gold")),
        ]
    );
    assert_eq!(r.body["append_log_claims"], json!(["addClaims: set 312", "second: second ran"]));
    assert_eq!(r.body["set_user_metadata"], json!([{"key": "seen", "value": "dHJ1ZQ=="}]));
    // The run is recorded in the linked org, like an _execute.
    let runs = runs_of(s, &token, 2).await;
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs
        .iter()
        .all(|r| r["outcome"] == "OUTCOME_SUCCEEDED" && r["flowType"] == "2" && r["triggerType"] == "5"));
    // Each carries the connection and the condition; ListRuns filters by connection.
    let connection_id = url.trim_end_matches("/call").rsplit('/').next().unwrap().to_string();
    assert!(
        runs.iter().all(|r| r["connectionId"] == connection_id.as_str() && r["condition"] == "function/preaccesstoken"),
        "{runs:?}"
    );
    let by_connection = json!({"queries": [{"connectionIdQuery": {"connectionId": connection_id}}]});
    let r = s.list_runs(&token, by_connection).await;
    assert_eq!(r.body["details"]["totalResult"], "2", "{r:?}");
    let r = s.list_runs(&token, json!({"queries": [{"connectionIdQuery": {"connectionId": "1"}}]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("result").is_none(), "{r:?}");
    // Health counts the call.
    let health = wait_health(s, &url, |h| h["calls"] == "1").await;
    assert!(health.get("rejected").is_none() && health.get("failed").is_none(), "zero counters are omitted: {health}");
}

/// The connection's health, polled until `done` holds (it is flushed once a second).
async fn wait_health(s: &TestServer, call_url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let id = call_url.trim_end_matches("/call").rsplit('/').next().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        let health = r.body["connection"]["health"].clone();
        if done(&health) {
            return health;
        }
        assert!(std::time::Instant::now() < deadline, "health never got there: {health}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn saml_and_userinfo(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let saml = "function attrs(ctx, api) { api.v1.attributes.setCustomAttribute('dept', 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic', 'sales', 'eu'); }";
    bind(s, &token, &org, "4", "6", &[("attrs", saml, false)]).await;
    let mut payload = token_payload("presamlresponse", "zorg");
    payload.as_object_mut().unwrap().remove("userinfo");
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"append_attribute": [{"name": "dept", "name_format": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", "value": ["sales", "eu"]}]})
    );
    // No action bound to pre userinfo: pass-through.
    let r = signed_call(s, &url, &token_payload("preuserinfo", "zorg")).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!({})), "{r:?}");
}

async fn failures_are_forwarded(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let ok = "function ok(ctx, api) { api.v1.claims.setClaim('ok', true); }";
    let fails = "function fails(ctx, api) { throw new Error('no access for ' + ctx.v1.claims.sub); }";
    let lenient = "function lenient(ctx, api) { throw new Error('ignored'); }";
    bind(s, &token, &org, "2", "4", &[("lenient", lenient, true), ("ok", ok, false), ("fails", fails, false)]).await;
    let r = signed_call(s, &url, &token_payload("preuserinfo", "zorg")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["forwardedStatusCode"], 400, "{r:?}");
    let message = r.body["forwardedErrorMessage"].as_str().unwrap();
    assert!(message.starts_with("action \"fails\": Error: no access for 312"), "{message}");
    let runs = runs_of(s, &token, 3).await;
    assert_eq!(runs.iter().filter(|r| r["outcome"] == "OUTCOME_FAILED").count(), 2, "{runs:?}");
    wait_health(s, &url, |h| h["failed"] == "1" && h["lastError"].as_str().is_some_and(|e| e.contains("no access")))
        .await;
}

async fn routing(s: &TestServer) {
    let (url, id, org, token) = setup(s, json!({})).await;
    bind(
        s,
        &token,
        &org,
        "2",
        "5",
        &[("mark", "function mark(ctx, api) { api.v1.claims.setClaim('who', 'linked'); }", false)],
    )
    .await;
    // The user's org decides, not the payload's org (when they differ).
    let mut payload = token_payload("preaccesstoken", "zorg");
    payload["org"]["id"] = json!("someone-else");
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "who", "value": "linked"}]), "{r:?}");
    // An unlinked org without a default passes through and runs nothing.
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "unlinked")).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!({})), "{r:?}");
    assert_eq!(runs_of(s, &token, 1).await.len(), 1, "only the linked call ran");
    // With a default org, it runs that org's actions.
    let default_org = s.create_org(&format!("default org {}", uuid::Uuid::new_v4().simple())).await;
    let default_token = s.create_token(&default_org, "ORG_OWNER").await;
    bind(
        s,
        &default_token,
        &default_org,
        "2",
        "5",
        &[("dflt", "function dflt(ctx, api) { api.v1.claims.setClaim('who', 'default'); }", false)],
    )
    .await;
    let r =
        s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, json!({"name": "routing", "defaultOrgId": default_org})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "unlinked")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "who", "value": "default"}]), "{r:?}");
    // Two connections route the same ZITADEL org to different actionsd orgs.
    let (other_url, _, other_org, other_token) = setup(s, json!({})).await;
    bind(
        s,
        &other_token,
        &other_org,
        "2",
        "5",
        &[("other", "function other(ctx, api) { api.v1.claims.setClaim('who', 'other'); }", false)],
    )
    .await;
    let r = signed_call(s, &other_url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "who", "value": "other"}]), "{r:?}");
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "who", "value": "linked"}]), "{r:?}");
    // Conditions not mapped yet pass through: a request gets its request back.
    let request = json!({"fullMethod": "/zitadel.user.v2.UserService/ListUsers", "instanceID": "i", "orgID": "o",
        "userID": "u", "request": {"queries": []}});
    let r = signed_call(s, &url, &request).await;
    assert_eq!(r.body, json!({"queries": []}), "{r:?}");
    // An inactive connection passes through without running anything.
    let r = s
        .put(&format!("{CONNECTIONS}/{id}"), &s.admin, json!({"name": "routing", "state": "CONNECTION_STATE_INACTIVE"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let before = runs_of(s, &token, 2).await.len();
    assert_eq!(before, 2, "the two linked calls");
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!({})), "{r:?}");
    // A body it cannot decode (here a JWT on a JSON-only connection) could be any condition: the
    // answer is empty, which ZITADEL does not apply (a `{}` would reset a request message).
    let jwt = b"eyJhbGciOiJSUzI1NiJ9.eyJmdWxsTWV0aG9kIjoiLyJ9.c2ln".to_vec();
    let r = post_call(s, &url, &jwt, Some(&signature(KEY, now(), &jwt))).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!("")), "{r:?}");
    assert_eq!(runs_of(s, &token, 2).await.len(), before, "nothing ran");
}

async fn authenticity(s: &TestServer) {
    let (url, id, org, token) = setup(s, json!({"timestampTolerance": "60s"})).await;
    bind(
        s,
        &token,
        &org,
        "2",
        "5",
        &[("mark", "function mark(ctx, api) { api.v1.claims.setClaim('ran', true); }", false)],
    )
    .await;
    let body = serde_json::to_vec(&token_payload("preaccesstoken", "zorg")).unwrap();
    let t = now();
    let refused = |r: &Reply, what: &str| assert_error(r, 401, 16, "CONN-s1gn4", what);
    refused(&post_call(s, &url, &body, None).await, "no header");
    refused(&post_call(s, &url, &body, Some("garbage")).await, "malformed header");
    refused(&post_call(s, &url, &body, Some(&signature("wrong-key-0123456789", t, &body))).await, "wrong key");
    refused(&post_call(s, &url, &body, Some(&signature(KEY, t - 200, &body))).await, "stale");
    refused(&post_call(s, &url, &body, Some(&signature(KEY, t + 200, &body))).await, "future");
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    refused(&post_call(s, &url, &tampered, Some(&signature(KEY, t, &body))).await, "tampered body");
    // Several v1 entries: one valid is enough (ZITADEL signs with every valid key).
    let wrong = signature("wrong-key-0123456789", t, &body);
    let right = signature(KEY, t, &body);
    let both = format!("{wrong},v1={}", right.split("v1=").nth(1).unwrap());
    let r = post_call(s, &url, &body, Some(&both)).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "ran", "value": true}]), "{r:?}");
    // Two signature headers are malformed, whichever of them is valid (ZITADEL sends one).
    for pair in [[right.as_str(), wrong.as_str()], [wrong.as_str(), right.as_str()]] {
        let resp = s
            .client
            .post(format!("{}{}", s.base, url))
            .header("content-type", "application/json")
            .header("ZITADEL-Signature", pair[0])
            .header("ZITADEL-Signature", pair[1])
            .body(body.clone())
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let r = Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::Null), headers: Default::default() };
        refused(&r, "two signature headers");
    }
    // Malformed JSON and JWT bodies are refused after the signature check.
    let bad = b"{not json".to_vec();
    let r = post_call(s, &url, &bad, Some(&signature(KEY, t, &bad))).await;
    assert_error(&r, 400, 3, "CONN-b0dy1", "malformed JSON");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let r = post_call(s, &url, &deep, Some(&signature(KEY, t, &deep))).await;
    assert_eq!(r.status, 400, "deeply nested JSON: {r:?}");
    // A well-formed object nested past the 128 levels JSON is read to is refused as such.
    let nested = format!(r#"{{"function":"function/preaccesstoken","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    let nested = nested.into_bytes();
    let r = post_call(s, &url, &nested, Some(&signature(KEY, t, &nested))).await;
    assert_error(&r, 400, 3, "CONN-b0dy1", "nested too deeply");
    assert!(r.body["message"].as_str().unwrap_or("").contains("nested deeper than 128 levels"), "{r:?}");
    let jwt = b"eyJhbGciOiJSUzI1NiJ9.eyJhIjoxfQ.c2ln".to_vec();
    let r = post_call(s, &url, &jwt, Some(&signature(KEY, t, &jwt))).await;
    assert_error(&r, 400, 3, "CONN-typ3s", "JWT not accepted");
    // 1 MiB + 1 is too large; an unknown connection is 404 before anything else.
    let big = vec![b' '; (1 << 20) + 1];
    assert_eq!(post_call(s, &url, &big, Some(&signature(KEY, t, &big))).await.status, 413);
    // A body over the limit is recorded under one of the contract's reasons.
    let r = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
    assert_eq!(r.body["connection"]["recentRejections"][0]["reason"], "malformed body", "{r:?}");
    assert_error(
        &post_call(s, &r_call_url("4242"), &body, Some(&right)).await,
        404,
        5,
        "CONN-n0tFd",
        "unknown connection",
    );
    // Nothing ran for the refused calls: one run (the accepted call).
    assert_eq!(runs_of(s, &token, 1).await.len(), 1);
    let r = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
    let rejections = r.body["connection"]["recentRejections"].as_array().unwrap().clone();
    let reasons: Vec<&str> = rejections.iter().map(|r| r["reason"].as_str().unwrap()).collect();
    for expected in [
        "missing or malformed signature header",
        "bad signature",
        "stale timestamp",
        "malformed body",
        "payload type not allowed",
    ] {
        assert!(reasons.contains(&expected), "{expected} in {reasons:?}");
    }
    assert!(rejections.iter().all(|r| r["remoteAddr"] == "127.0.0.1"), "{rejections:?}");
    assert!(!r.body.to_string().contains("eyJhbGciOiJSUzI1NiJ9"), "never a body");
    wait_health(s, &url, |h| h["rejected"].as_str().and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 9)).await;

    // A second key during a rotation window: both are accepted.
    let r =
        s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, json!({"name": "auth", "signingKeys": [KEY, ROTATED]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    for key in [KEY, ROTATED] {
        let r = post_call(s, &url, &body, Some(&signature(key, now(), &body))).await;
        assert_eq!(r.body["append_claims"], json!([{"key": "ran", "value": true}]), "{key}: {r:?}");
    }
    // Without keys every call is refused.
    let r = s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, json!({"name": "auth", "signingKeys": []})).await;
    assert_eq!(r.status, 200, "{r:?}");
    refused(&post_call(s, &url, &body, Some(&signature(KEY, now(), &body))).await, "no key");
}

async fn fail_modes_when_the_actions_cannot_run(s: &TestServer) {
    // A 1 s call budget and an action that loops: the call gives up at the budget.
    let (url, id, org, token) = setup(s, json!({"callTimeout": "1s"})).await;
    bind(s, &token, &org, "2", "5", &[("slow", "function slow(ctx, api) { while (true) {} }", false)]).await;
    let started = std::time::Instant::now();
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["forwardedStatusCode"], 400, "{r:?}");
    assert_eq!(r.body["forwardedErrorMessage"], "actions unavailable: callTimeout 1s reached", "{r:?}");
    // The contract's bound is the call timeout; generous slack for a loaded machine.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1) + std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The run record names the budget that ended it: the call's, not ACTIONSD_MAX_TRIGGER_TIME.
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["error"], "trigger timeout after 1s", "{runs:?}");
    assert_eq!(runs[0]["outcome"], "OUTCOME_FAILED", "{runs:?}");
    // The dry run predicts that answer (connector §8 runs §3-5 as the call does).
    let dry = format!("{CONNECTIONS}/{id}/_test");
    let payload = token_payload("preaccesstoken", "zorg");
    let r = s.post(&dry, &s.admin, json!({"payload": payload})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["reply"],
        json!({"forwardedStatusCode": 400, "forwardedErrorMessage": "actions unavailable: callTimeout 1s reached"}),
        "{r:?}"
    );
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
    // Fail open: the same call passes through.
    let r = s
        .put(
            &format!("{CONNECTIONS}/{id}"),
            &s.admin,
            json!({"name": "failmode", "signingKeys": [KEY], "callTimeout": "1s", "failMode": "FAIL_MODE_OPEN"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!({})), "fail open passes through: {r:?}");
    let r = s.post(&dry, &s.admin, json!({"payload": payload})).await;
    assert_eq!((r.status.as_u16(), r.body["reply"].clone()), (200, json!({})), "the dry run too: {r:?}");
    wait_health(s, &url, |h| h["failed"] == "2" && h["lastError"].as_str().is_some_and(|e| e.contains("callTimeout")))
        .await;
}

async fn dry_run(s: &TestServer) {
    let (url, id, org, token) = setup(s, json!({})).await;
    let script =
        "function dry(ctx, api) { console.log('hello from ' + ctx.v1.claims.sub); api.v1.claims.setClaim('x', 1); }";
    bind(s, &token, &org, "2", "5", &[("dry", script, false)]).await;
    let test = format!("{CONNECTIONS}/{id}/_test");
    let r = s.post(&test, &s.admin, json!({"payload": token_payload("preaccesstoken", "zorg")})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["reply"], json!({"append_claims": [{"key": "x", "value": 1}]}));
    assert_eq!(r.body["condition"], "function/preaccesstoken");
    assert_eq!((r.body["flowType"].as_str(), r.body["triggerType"].as_str()), (Some("2"), Some("5")));
    assert_eq!(r.body["orgId"], org.as_str());
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED");
    assert_eq!(r.body["runs"][0]["actionName"], "dry");
    assert!(r.body["runs"][0]["logs"][0]["message"].as_str().unwrap_or("").contains("hello from 312"), "{r:?}");
    assert!(r.body.get("pendingApiEffects").is_none(), "none: omitted: {r:?}");
    // Other conditions: the pass-through reply; a payload that is no object is refused.
    let request = json!({"fullMethod": "/zitadel.user.v2.UserService/ListUsers", "request": {"limit": 3}});
    let r = s.post(&test, &s.admin, json!({"payload": request})).await;
    assert_eq!(r.body["reply"], json!({"limit": 3}), "{r:?}");
    assert!(r.body.get("runs").is_none(), "no runs: omitted: {r:?}");
    let r = s.post(&test, &s.admin, json!({"payload": "not an object"})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert_error(
        &s.post(&format!("{CONNECTIONS}/4242/_test"), &s.admin, json!({"payload": {}})).await,
        404,
        5,
        "CONN-n0tFd",
        "unknown",
    );
    // Nothing stored and nothing counted: a real call afterwards is the first run and the first call.
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "x", "value": 1}]), "{r:?}");
    assert_eq!(runs_of(s, &token, 1).await.len(), 1, "only the real call's run is stored");
    let health = wait_health(s, &url, |h| h.get("calls").is_some()).await;
    assert_eq!(health["calls"], "1", "the dry runs are not counted: {health}");
    // The payload is taken as sent, nulls included, as a real call's body is.
    let request =
        json!({"fullMethod": "/zitadel.user.v2.UserService/ListUsers", "request": {"limit": 3, "query": null}});
    let r = s.post(&test, &s.admin, json!({"payload": request})).await;
    assert_eq!(r.body["reply"], json!({"limit": 3, "query": null}), "{r:?}");
    // Members ZITADEL sends beyond the trigger's context (fields of a newer version) do not reach
    // the scripts, as with `_execute`; the members the context has do.
    let seen = "function seen(ctx, api) { var u = ctx.v1.getUser(); \
                api.v1.claims.setClaim('seen', [typeof u.extraTop, typeof u.human.extra, u.human.firstName]); }";
    bind(s, &token, &org, "2", "5", &[("seen", seen, false)]).await;
    let mut payload = token_payload("preaccesstoken", "zorg");
    payload["user"]["extra_top"] = json!(1);
    payload["user"]["human"]["extra"] = json!("x");
    let r = s.post(&test, &s.admin, json!({"payload": payload})).await;
    assert_eq!(
        r.body["reply"],
        json!({"append_claims": [{"key": "seen", "value": ["undefined", "undefined", "Ann"]}]}),
        "{r:?}"
    );
}

async fn registration_requests(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let script = r#"function normalize(ctx, api) {
        var u = ctx.v1.user;
        api.setFirstName(u.human.firstName.toUpperCase());
        api.setUsername(u.human.email);
        api.setEmailVerified(true);
        api.v1.user.appendMetadata('source', 'connector');
    }"#;
    bind(s, &token, &org, "3", "2", &[("normalize", script, false)]).await;
    let payload = json!({
        "fullMethod": "/zitadel.user.v2.UserService/AddHumanUser", "instanceID": "inst", "orgID": "the-login-client-org",
        "userID": "login-client", "headers": {},
        "request": {
            "username": "ann", "organization": {"orgId": "zorg"},
            "profile": {"givenName": "Ann", "familyName": "Lee", "preferredLanguage": "en"},
            "email": {"email": "ann@example.com", "sendCode": {"urlTemplate": "https://x/{{.Code}}"}},
            "metadata": [{"key": "plan", "value": "Zm9v"}],
            "password": {"password": "Secr3t!", "changeRequired": false}
        }
    });
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.status, 200, "{r:?}");
    let reply = &r.body;
    assert_eq!(reply["username"], "ann@example.com");
    assert_eq!(reply["profile"], json!({"givenName": "ANN", "familyName": "Lee", "preferredLanguage": "en"}));
    assert_eq!(reply["email"], json!({"email": "ann@example.com", "isVerified": true}), "sendCode replaced");
    assert_eq!(reply["password"], json!({"password": "Secr3t!", "changeRequired": false}), "kept as received");
    assert_eq!(reply["organization"], json!({"orgId": "zorg"}));
    let metadata = reply["metadata"].as_array().expect("metadata");
    assert_eq!(metadata[0], json!({"key": "plan", "value": "Zm9v"}));
    assert_eq!(metadata[1]["key"], "source");
    assert!(common::unb64(metadata[1]["value"].as_str().unwrap()).contains("connector"), "{metadata:?}");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!((runs[0]["flowType"].as_str(), runs[0]["triggerType"].as_str()), (Some("3"), Some("2")));
    assert_eq!(runs[0]["condition"], "request/zitadel.user.v2.UserService/AddHumanUser");
    // A request that is not a message (an array) has nothing to hand back: an empty body, and
    // nothing runs although actions are bound.
    let mut not_a_message = payload.clone();
    not_a_message["request"] = json!([1]);
    let r = signed_call(s, &url, &not_a_message).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &Value::String(String::new())), "{r:?}");
    // (Run records are written in order: once the next call's record is there, one of the
    // array's would be too.)
    assert_eq!(signed_call(s, &url, &payload).await.status, 200);
    assert_eq!(runs_of(s, &token, 2).await.len(), 2, "no run for a request that is not a message");
    // A body in an encoding ZITADEL does not use is refused as on every route (501), unread.
    let body = serde_json::to_vec(&payload).unwrap();
    let resp = s
        .client
        .post(format!("{}{}", s.base, url))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .header("ZITADEL-Signature", signature(KEY, now(), &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 501);
    let refused: Value = resp.json().await.unwrap();
    assert_eq!(refused["code"], 12, "{refused}");

    // A failing action stops the registration with ZITADEL's forwarded error.
    let (url, _, org, token) = setup(s, json!({})).await;
    let deny = "function deny(ctx, api) { if (ctx.v1.user.human.email.endsWith('@blocked.example')) throw new Error('domain not allowed'); }";
    bind(s, &token, &org, "3", "2", &[("deny", deny, false)]).await;
    let mut blocked = payload.clone();
    blocked["request"]["email"]["email"] = json!("eve@blocked.example");
    let r = signed_call(s, &url, &blocked).await;
    assert_eq!(r.body["forwardedStatusCode"], 400, "{r:?}");
    assert!(
        r.body["forwardedErrorMessage"].as_str().unwrap().starts_with("action \"deny\": Error: domain not allowed"),
        "{r:?}"
    );
}

async fn password_checks_and_sessions(s: &TestServer) {
    let (url, id, org, token) = setup(s, json!({})).await;
    // The action reports what it saw through its (allowed) failure; the reply never changes.
    let script = "function audit(ctx, api) { throw new Error('seen ' + ctx.v1.authMethod + '/' + ctx.v1.authError); }";
    bind(s, &token, &org, "3", "1", &[("audit", script, true)]).await;
    let event = json!({"aggregateID": "312", "aggregateType": "user", "resourceOwner": "zorg", "instanceID": "inst",
        "version": "v2", "sequence": 7, "event_type": "user.human.password.check.failed",
        "created_at": "2026-12-02T10:00:00Z", "userID": "312", "event_payload": "e30="});
    let r = signed_call(s, &url, &event).await;
    assert_eq!((r.status.as_u16(), r.body.clone()), (200, json!({})), "{r:?}");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["condition"], "event/user.human.password.check.failed");
    assert_eq!((runs[0]["flowType"].as_str(), runs[0]["triggerType"].as_str()), (Some("3"), Some("1")));
    assert!(runs[0]["error"].as_str().unwrap().contains("seen password/password invalid"), "{runs:?}");

    // A session response: the method from the checks; the user's org needs the ZITADEL API, so
    // the default org runs (none set: pass-through).
    let session = json!({"fullMethod": "/zitadel.session.v2.SessionService/CreateSession",
        "request": {"checks": {"user": {"loginName": "ann"}, "totp": {"code": "123456"}}},
        "response": {"sessionId": "s1", "sessionToken": "tok", "details": {"sequence": "1"}}});
    let r = signed_call(s, &url, &session).await;
    assert_eq!(r.body, session["response"], "{r:?}");
    assert_eq!(runs_of(s, &token, 1).await.len(), 1, "no org to run: nothing ran");
    let r = s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, json!({"name": "sessions", "defaultOrgId": org})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = signed_call(s, &url, &session).await;
    assert_eq!(r.body, session["response"], "the response is never changed: {r:?}");
    let runs = runs_of(s, &token, 2).await;
    let run = runs
        .iter()
        .find(|r| r["condition"] == "response/zitadel.session.v2.SessionService/CreateSession")
        .expect("a session run");
    assert!(run["error"].as_str().unwrap().contains("seen OTP/none"), "{run:?}");
}

async fn identity_provider_intents(s: &TestServer) {
    use base64::Engine;
    let (url, _, org, token) = setup(s, json!({})).await;
    let script = r#"function ext(ctx, api) {
        api.setFirstName(ctx.v1.externalUser.human.firstName + '!');
        api.setPreferredUsername(ctx.v1.externalUser.human.email);
        api.setEmailVerified(true);
        api.v1.user.appendMetadata('hd', ctx.getClaim('hd'));
    }"#;
    bind(s, &token, &org, "1", "1", &[("ext", script, false)]).await;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"ext-1","hd":"example.com"}"#);
    let payload = json!({
        "fullMethod": "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent",
        "instanceID": "inst", "orgID": "login-client-org", "userID": "login-client",
        "request": {"idpIntentId": "i1", "idpIntentToken": "tok"},
        "response": {
            "details": {"sequence": "4", "changeDate": "2026-12-02T10:00:00Z", "resourceOwner": "inst"},
            "idpInformation": {"idpId": "idp1", "userId": "ext-1", "userName": "ann@idp",
                "oauth": {"accessToken": "at", "idToken": format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln")},
                "rawInformation": {"hd": "example.com"}},
            "addHumanUser": {"username": "ann@idp", "organization": {"orgId": "zorg"},
                "profile": {"givenName": "Ann", "familyName": "Lee"}, "email": {"email": "ann@example.com"},
                "idpLinks": [{"idpId": "idp1", "userId": "ext-1", "userName": "ann@idp"}]}
        }
    });
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.status, 200, "{r:?}");
    let add = &r.body["addHumanUser"];
    assert_eq!(add["profile"]["givenName"], "Ann!");
    assert_eq!(add["username"], "ann@example.com", "setPreferredUsername ran");
    assert_eq!(add["email"], json!({"email": "ann@example.com", "isVerified": true}));
    assert_eq!(add["metadata"][0]["key"], "hd");
    assert!(common::unb64(add["metadata"][0]["value"].as_str().unwrap()).contains("example.com"), "{add}");
    assert_eq!(add["idpLinks"], payload["response"]["addHumanUser"]["idpLinks"]);
    assert_eq!(r.body["idpInformation"], payload["response"]["idpInformation"], "the rest of the response is kept");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["condition"], "response/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent");
    assert_eq!((runs[0]["flowType"].as_str(), runs[0]["triggerType"].as_str()), (Some("1"), Some("1")));
}

async fn user_creation_responses(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let script = "function grant(ctx, api) { if (ctx.v1.getUser().id !== 'u9') throw new Error('user ' + ctx.v1.getUser().id); api.v1.appendUserGrant({projectId: 'p1', roles: ['member']}); }";
    bind(s, &token, &org, "3", "3", &[("grant", script, false)]).await;
    let payload = json!({
        "fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
        "request": {"username": "ann", "organization": {"orgId": "zorg"}, "profile": {"givenName": "Ann"}, "email": {"email": "a@b.c"}},
        "response": {"userId": "u9", "details": {"sequence": "1", "resourceOwner": "zorg"}}
    });
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.body, payload["response"], "the response is unchanged: {r:?}");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["outcome"], "OUTCOME_SUCCEEDED", "the action saw the new user's id: {runs:?}");
    assert_eq!(runs[0]["condition"], "response/zitadel.user.v2.UserService/AddHumanUser");
    assert_eq!((runs[0]["flowType"].as_str(), runs[0]["triggerType"].as_str()), (Some("3"), Some("3")));
}

/// Setters that write a zero value clear the field in the reply (as under `_execute`), and
/// metadata merged into the request holds one entry per key with the action's write winning:
/// AddHumanUser, CreateUser (under `human`) and the intent's `addHumanUser`.
async fn zero_value_setters_and_merged_metadata(s: &TestServer) {
    let (url, _, org, token) = setup(s, json!({})).await;
    let script = r#"function zeroSet(ctx, api) {
        api.setNickName(""); api.setDisplayName(""); api.setEmailVerified(false); api.setPhoneVerified(false);
        api.setGender(0); api.v1.user.appendMetadata('dup', 'new');
    }"#;
    bind(s, &token, &org, "3", "2", &[("zeroSet", script, false)]).await;
    let human = json!({
        "profile": {"givenName": "Bob", "familyName": "B", "nickName": "nick", "displayName": "disp", "gender": "GENDER_FEMALE"},
        "email": {"email": "bob@x.y", "isVerified": true},
        "phone": {"phone": "+41", "isVerified": true},
        "metadata": [{"key": "dup", "value": "ImEi"}, {"key": "dup", "value": "ImIi"}],
    });
    let merged = json!([{"key": "dup", "value": "Im5ldyI="}]);
    let cleared = |reply: &Value| {
        assert_eq!(reply["profile"], json!({"givenName": "Bob", "familyName": "B"}), "{reply}");
        assert_eq!(reply["email"], json!({"email": "bob@x.y"}), "{reply}");
        assert_eq!(reply["phone"], json!({"phone": "+41"}), "{reply}");
        assert_eq!(reply["metadata"], merged, "{reply}");
    };
    let mut add = human.clone();
    add["organization"] = json!({"orgId": "zorg"});
    add["username"] = json!("bob");
    let payload = json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser", "request": add});
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.status, 200, "{r:?}");
    cleared(&r.body);
    assert_eq!(r.body["username"], "bob");
    assert_eq!(r.body["organization"], json!({"orgId": "zorg"}));
    let create = json!({"fullMethod": "/zitadel.user.v2.UserService/CreateUser",
        "request": {"organizationId": "zorg", "username": "bob", "human": human}});
    let r = signed_call(s, &url, &create).await;
    assert_eq!(r.status, 200, "{r:?}");
    cleared(&r.body["human"]);
    assert_eq!((r.body["username"].clone(), r.body["organizationId"].clone()), (json!("bob"), json!("zorg")));
    // The same script under _execute clears the same fields of its user effect.
    let context = json!({"user": {"username": "bob", "human": {"firstName": "Bob", "lastName": "B", "nickName": "nick",
        "displayName": "disp", "gender": 1, "email": "bob@x.y", "isEmailVerified": true, "phone": "+41", "isPhoneVerified": true}}});
    let r = s
        .call_org(
            reqwest::Method::POST,
            "/management/v1/flows/3/trigger/2/_execute",
            &token,
            &org,
            Some(json!({"context": context})),
        )
        .await;
    assert_eq!(
        r.body["effects"]["user"]["human"],
        json!({"firstName": "Bob", "lastName": "B", "email": "bob@x.y", "phone": "+41"}),
        "{r:?}"
    );

    // The intent: setters of the external user, setPreferredUsername("") included.
    let ext = r#"function ext(ctx, api) {
        api.setNickName(""); api.setEmailVerified(false); api.setPreferredUsername("");
        api.v1.user.appendMetadata('dup', 'new');
    }"#;
    bind(s, &token, &org, "1", "1", &[("ext", ext, false)]).await;
    let intent = json!({"fullMethod": "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent",
        "response": {"idpInformation": {"idpId": "idp1", "userId": "ext-1"},
            "addHumanUser": {"username": "eu", "organization": {"orgId": "zorg"},
                "profile": {"givenName": "Eve", "nickName": "N"}, "email": {"email": "e@x", "isVerified": true},
                "metadata": [{"key": "dup", "value": "ImEi"}, {"key": "dup", "value": "ImIi"}]}}});
    let r = signed_call(s, &url, &intent).await;
    assert_eq!(r.status, 200, "{r:?}");
    let add = &r.body["addHumanUser"];
    assert!(add.get("username").is_none(), "username follows setPreferredUsername: {add}");
    assert_eq!(add["profile"], json!({"givenName": "Eve"}), "{add}");
    assert_eq!(add["email"], json!({"email": "e@x"}), "{add}");
    assert_eq!(add["metadata"], merged, "{add}");
    assert_eq!(add["organization"], json!({"orgId": "zorg"}));
}

/// An unknown connection is 404 before the body is read, and the HTTP/1.1 connection still
/// carries the next call (ZITADEL reuses its connections and does not retry a POST): the body is
/// read and dropped first, also one that arrives after the headers.
async fn an_unknown_connection_keeps_the_connection_usable(s: &TestServer) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.base.trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.expect("connect");
    let body = format!("{{\"function\":\"function/preuserinfo\",\"pad\":\"{}\"}}", "x".repeat(200_000));
    let head = format!(
        "POST {CONNECTIONS}/1/call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.expect("headers");
    tcp.write_all(body.as_bytes()).await.expect("body");
    let second = "GET /debug/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    tcp.write_all(second.as_bytes()).await.expect("next request");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while got.windows(12).filter(|w| w.starts_with(b"HTTP/1.1 ")).count() < 2 {
        let n =
            tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await.expect("both answers in time").expect("read");
        assert!(n > 0, "the connection closed after: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("CONN-n0tFd"), "{text}");
    assert!(text.contains("HTTP/1.1 200"), "the next request was answered: {text}");
}

backend_tests!(
    an_unknown_connection_keeps_the_connection_usable,
    zero_value_setters_and_merged_metadata,
    user_creation_responses,
    identity_provider_intents,
    password_checks_and_sessions,
    registration_requests,
    dry_run,
    complement_token_reply,
    saml_and_userinfo,
    failures_are_forwarded,
    routing,
    authenticity,
    fail_modes_when_the_actions_cannot_run
);

mod rotation {
    use super::*;
    use crate::common::receiver::{Answer, Receiver};

    fn loopback(c: &mut actionsd::config::Config) {
        crate::common::allow_loopback(c);
    }

    /// RotateConnectionKey against a stand-in ZITADEL: UpdateTarget with expirationSigningKey 0s,
    /// the new key accepted at once, the old one still accepted within the tolerance.
    async fn rotate_key_without_a_gap(s: &TestServer) {
        let zitadel = Receiver::start().await;
        zitadel.reply_at(
            "/v2/actions/targets/331",
            Answer::json(200, json!({"changeDate": "2026-12-02T10:00:00Z", "signingKey": "rotated-by-zitadel-0042"})),
        );
        let api = json!({"zitadelApi": {"baseUrl": zitadel.url(""), "token": "pat-of-the-service-user", "zitadelTargetId": "331"}});
        let (url, id, org, token) = setup(s, api).await;
        bind(
            s,
            &token,
            &org,
            "2",
            "5",
            &[("mark", "function mark(ctx, api) { api.v1.claims.setClaim('ran', true); }", false)],
        )
        .await;
        let rotate = format!("{CONNECTIONS}/{id}/_rotate_key");
        let r = s.post(&rotate, &s.admin, json!({})).await;
        assert_eq!(r.status, 200, "{r:?}");
        // A rotation changes the connection: its time is the details' changeDate.
        let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(r.body["details"]["changeDate"], c.body["connection"]["details"]["changeDate"], "{r:?} {c:?}");
        assert!(r.body["details"].get("creationDate").is_none(), "{r:?}");
        let calls = zitadel.requests_to("/v2/actions/targets/331");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].header("authorization"), "Bearer pat-of-the-service-user");
        assert_eq!(calls[0].json(), json!({"expirationSigningKey": "0s"}));
        let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(c.body["connection"]["signingKeys"], json!(["…ey-1", "…0042"]), "{c:?}");
        // Its event can be subscribed to like any other.
        let target = s.post("/v2/actions/targets", &s.admin, crate::common::webhook_target("rotations")).await;
        let condition = json!({"event": {"event": "connection.key.rotated"}});
        let r = s
            .put("/v2/actions/executions", &s.admin, json!({"condition": condition, "targets": [target.body["id"]]}))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        // ZITADEL now signs with the new key only; calls still in flight carry the old one.
        let body = serde_json::to_vec(&token_payload("preaccesstoken", "zorg")).unwrap();
        for key in ["rotated-by-zitadel-0042", KEY] {
            let r = post_call(s, &url, &body, Some(&signature(key, now(), &body))).await;
            assert_eq!(r.body["append_claims"], json!([{"key": "ran", "value": true}]), "{key}: {r:?}");
        }
        // A second rotation within the window: never more than two keys (signingKeys is 0..2),
        // the newest previous key and the new one; the key two rotations back is dropped.
        zitadel.reply_at(
            "/v2/actions/targets/331",
            Answer::json(200, json!({"changeDate": "2026-12-02T10:01:00Z", "signingKey": "rotated-by-zitadel-0043"})),
        );
        let r = s.post(&rotate, &s.admin, json!({})).await;
        assert_eq!(r.status, 200, "{r:?}");
        let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(c.body["connection"]["signingKeys"], json!(["…0042", "…0043"]), "{c:?}");
        for (key, accepted) in [("rotated-by-zitadel-0043", true), ("rotated-by-zitadel-0042", true), (KEY, false)] {
            let r = post_call(s, &url, &body, Some(&signature(key, now(), &body))).await;
            assert_eq!(r.status == 200, accepted, "{key}: {r:?}");
        }
        // ZITADEL refusing the update leaves the keys as they were.
        zitadel.reply_at("/v2/actions/targets/331", Answer::json(403, json!({"code": 7, "message": "no permission"})));
        let r = s.post(&rotate, &s.admin, json!({})).await;
        assert_error(&r, 400, 9, "CONN-r0t8z", "ZITADEL refused");
        let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(c.body["connection"]["signingKeys"], json!(["…0042", "…0043"]));
        // One rotation at a time: while ZITADEL has not answered the first, a second is refused
        // (two at once could store ZITADEL's keys out of the order it issued them, and lose the
        // one it signs with). The refused rotation above left no claim behind.
        zitadel.reply_at(
            "/v2/actions/targets/331",
            Answer::json(200, json!({"changeDate": "2026-12-02T10:02:00Z", "signingKey": "rotated-by-zitadel-0044"}))
                .with_delay(std::time::Duration::from_secs(2)),
        );
        let seen = zitadel.requests_to("/v2/actions/targets/331").len();
        let first = s.post(&rotate, &s.admin, json!({}));
        let second = async {
            zitadel
                .wait_until(std::time::Duration::from_secs(10), "the first rotation at ZITADEL", |r| {
                    r.iter().filter(|r| r.path == "/v2/actions/targets/331").count() > seen
                })
                .await;
            s.post(&rotate, &s.admin, json!({})).await
        };
        let (first, second) = tokio::join!(first, second);
        assert_eq!(first.status, 200, "{first:?}");
        assert_error(&second, 400, 9, "CONN-r0t8b", "a rotation in flight");
        assert_eq!(zitadel.requests_to("/v2/actions/targets/331").len(), seen + 1, "the second never reached ZITADEL");
        let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(c.body["connection"]["signingKeys"], json!(["…0043", "…0044"]), "{c:?}");
        // Its claim ended with it: the next rotation goes through.
        zitadel.reply_at(
            "/v2/actions/targets/331",
            Answer::json(200, json!({"changeDate": "2026-12-02T10:03:00Z", "signingKey": "rotated-by-zitadel-0045"})),
        );
        let r = s.post(&rotate, &s.admin, json!({})).await;
        assert_eq!(r.status, 200, "{r:?}");
        // A key the connection could not be given (outside 16..200 characters) is not stored.
        for key in ["short", &"k".repeat(201)] {
            zitadel.reply_at("/v2/actions/targets/331", Answer::json(200, json!({"signingKey": key})));
            let r = s.post(&rotate, &s.admin, json!({})).await;
            assert_error(&r, 400, 9, "CONN-r0t8z", "a key of the wrong length");
            let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
            assert_eq!(c.body["connection"]["signingKeys"], json!(["…0044", "…0045"]), "{c:?}");
        }
        // The target id is one path segment of ZITADEL's URL, escaped; a dot segment, which URL
        // parsers resolve away, is no target id.
        let odd = json!({"zitadelApi": {"baseUrl": zitadel.url(""), "token": "pat", "zitadelTargetId": "a/b?c=d#e"}});
        let (_, odd, _, _) = setup(s, odd).await;
        zitadel.reply_at(
            "/v2/actions/targets/a%2Fb%3Fc%3Dd%23e",
            Answer::json(200, json!({"signingKey": "rotated-by-zitadel-0046"})),
        );
        let r = s.post(&format!("{CONNECTIONS}/{odd}/_rotate_key"), &s.admin, json!({})).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(zitadel.requests_to("/v2/actions/targets/a%2Fb%3Fc%3Dd%23e").len(), 1);
        for dots in [".", ".."] {
            let body = json!({"name": format!("dots-{}", dots.len()),
                              "zitadelApi": {"baseUrl": zitadel.url(""), "token": "pat", "zitadelTargetId": dots}});
            let r = s.post(CONNECTIONS, &s.admin, body).await;
            assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{dots}: {r:?}");
            assert!(r.body["message"].as_str().unwrap_or("").contains("ZitadelApi.ZitadelTargetId"), "{dots}: {r:?}");
        }
        // Without a token and target id there is nothing to call.
        let (_, plain, _, _) = setup(s, json!({})).await;
        let r = s.post(&format!("{CONNECTIONS}/{plain}/_rotate_key"), &s.admin, json!({})).await;
        assert_error(&r, 400, 9, "CONN-r0t8k", "no zitadelApi");
    }

    backend_tests_with!(loopback; rotate_key_without_a_gap);
}
