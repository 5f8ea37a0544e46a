//! Request and response executions (README, "Actions v2"): targets called around every RPC of
//! either transport, restCall rewrites, interruptOnError, most specific match, and the
//! ActionService never intercepted.

use crate::common;

use common::receiver::{standard_webhooks_valid, zitadel_signature_valid, Answer, Receiver};
use common::TestServer;
use serde_json::{json, Value};
use std::time::Duration;

const CREATE_ACTION: &str = "/zitadel.management.v1.ManagementService/CreateAction";
const MGMT: &str = "zitadel.management.v1.ManagementService";

fn allow_loopback(c: &mut actionsd::config::Config) {
    crate::common::allow_loopback(c);
    c.delivery_retry_schedule = actionsd::config::Schedule(vec![Duration::from_millis(200)]);
}

/// Creates a target and returns (id, signingKey).
async fn target(s: &TestServer, name: &str, kind: Value, endpoint: &str, timeout: &str) -> (String, String) {
    let mut body = json!({"name": name, "endpoint": endpoint, "timeout": timeout});
    let obj = kind.as_object().unwrap().clone();
    for (k, v) in obj {
        body[k] = v;
    }
    let r = s.post("/v2/actions/targets", &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    (r.body["id"].as_str().unwrap().to_string(), r.body["signingKey"].as_str().unwrap().to_string())
}

async fn set_execution(s: &TestServer, condition: Value, targets: &[&str]) {
    let r = s.put("/v2/actions/executions", &s.admin, json!({"condition": condition, "targets": targets})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn create_action(s: &TestServer, name: &str) -> common::Reply {
    s.post(
        "/management/v1/actions",
        &s.admin,
        json!({"name": name, "script": "function x(ctx, api) {}", "timeout": "1s"}),
    )
    .await
}

async fn action_names(s: &TestServer) -> Vec<String> {
    let r = s.post("/management/v1/actions/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["result"]
        .as_array()
        .map(|a| a.iter().map(|x| x["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

async fn webhook_sees_signed_request_payload(s: &TestServer) {
    let rx = Receiver::start().await;
    let (id, key) = target(s, "hook", json!({"restWebhook": {}}), &rx.url("/hook"), "5s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&id]).await;
    let r = s
        .call(
            reqwest::Method::POST,
            "/management/v1/actions",
            Some(&s.admin),
            &[("x-forwarded-for", "203.0.113.7"), ("origin", "https://console.example.com")],
            Some(json!({"name": "first", "script": "function first(ctx, api) {}"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let got = rx.requests_to("/hook");
    assert_eq!(got.len(), 1, "one call per request");
    let p = got[0].json();
    assert_eq!(p["fullMethod"], CREATE_ACTION);
    assert_eq!(p["request"]["name"], "first");
    assert!(p["instanceID"].as_str().is_some_and(|v| !v.is_empty()), "{p}");
    assert!(p["orgID"].as_str().is_some_and(|v| !v.is_empty()), "{p}");
    assert!(p["userID"].as_str().is_some_and(|v| !v.is_empty()), "{p}");
    assert_eq!(p["headers"]["X-Forwarded-For"], json!(["203.0.113.7"]), "{p}");
    assert_eq!(p["headers"]["Origin"], json!(["https://console.example.com"]), "{p}");
    assert!(p.get("response").is_none(), "no response in a request payload: {p}");
    assert_eq!(got[0].header("content-type"), "application/json");
    assert!(zitadel_signature_valid(&got[0], &key), "ZITADEL-Signature: {}", got[0].header("zitadel-signature"));
    assert!(standard_webhooks_valid(&got[0], &key), "webhook-signature: {}", got[0].header("webhook-signature"));
    assert!(!zitadel_signature_valid(&got[0], "another-key"));
    // Other methods are not intercepted by a method condition.
    let r = s.get("/management/v1/orgs/me", &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.requests().len(), 1);
    // The Connect transport is intercepted the same way.
    let r = s
        .connect(
            &CREATE_ACTION[1..],
            &s.admin,
            json!({"name": "second", "script": "function second(ctx, api) {}", "allowed_to_fail": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.requests().len(), 2);
    let p = rx.requests()[1].json();
    assert_eq!(p["request"]["name"], "second");
    assert_eq!(p["request"]["allowedToFail"], true, "targets see our JSON form: {p}");
    // A header value in UTF-8 (an IDN host a proxy did not punycode) is forwarded as its text.
    let sent = s
        .client
        .post(format!("{}/management/v1/actions", s.base))
        .bearer_auth(&s.admin)
        .header("x-forwarded-host", reqwest::header::HeaderValue::from_bytes("café.example".as_bytes()).unwrap())
        .json(&json!({"name": "third", "script": "function third(ctx, api) {}"}))
        .send()
        .await
        .expect("request");
    assert_eq!(sent.status(), 200);
    let got = rx.requests_to("/hook");
    assert_eq!(got[2].json()["headers"]["X-Forwarded-Host"], json!(["café.example"]), "{}", got[2].json());
}

async fn webhook_failure_interrupts_only_with_interrupt_on_error(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.set_default(Answer::status(500));
    let (strict, _) =
        target(s, "strict", json!({"restWebhook": {"interruptOnError": true}}), &rx.url("/strict"), "5s").await;
    let (lenient, _) = target(s, "lenient", json!({"restWebhook": {}}), &rx.url("/lenient"), "5s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&lenient]).await;
    let r = create_action(s, "kept").await;
    assert_eq!(r.status, 200, "a failing target without interruptOnError is logged only: {r:?}");
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&lenient, &strict]).await;
    let r = create_action(s, "refused").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 9, "{r:?}");
    assert_eq!(r.error_id(), "Errors.Execution.Failed", "{r:?}");
    assert_eq!(action_names(s).await, vec!["kept".to_string()], "the handler did not run");
    // Connect form of the same error.
    let r = s
        .connect(&CREATE_ACTION[1..], &s.admin, json!({"name": "refused2", "script": "function a(ctx, api) {}"}))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "failed_precondition", "{r:?}");
    // Both targets were called, in list order.
    let paths: Vec<String> = rx.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, vec!["/lenient", "/lenient", "/strict", "/lenient", "/strict"]);
}

async fn forwarded_error_keeps_status_and_message(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.set_default(Answer::json(200, json!({"forwardedStatusCode": 403, "forwardedErrorMessage": "not on fridays"})));
    let (id, _) = target(s, "fwd", json!({"restWebhook": {"interruptOnError": true}}), &rx.url("/fwd"), "5s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&id]).await;
    let r = create_action(s, "nope").await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.code(), 7, "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("not on fridays"), "{r:?}");
    rx.set_default(Answer::json(200, json!({"forwardedStatusCode": 409, "forwardedErrorMessage": "taken"})));
    let r = create_action(s, "nope").await;
    assert_eq!(r.status, 409, "{r:?}");
    rx.set_default(Answer::json(200, json!({"forwardedStatusCode": 418})));
    let r = create_action(s, "nope").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "any other status is FailedPrecondition: {r:?}");
    // In any letter case, as ZITADEL reads the body (what Go's json.Marshal of an untagged struct
    // writes): a deny is a deny.
    rx.set_default(Answer::json(200, json!({"ForwardedStatusCode": 403, "FORWARDEDERRORMESSAGE": "denied"})));
    let r = create_action(s, "nope").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, 7), "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("denied"), "{r:?}");
    // A message cut inside an emoji (`JSON.stringify` of a half pair writes a lone surrogate's
    // escape): still JSON, read as Go reads it, with U+FFFD for the half.
    let mut cut = Answer::json(200, json!({}));
    cut.body = r#"{"forwardedStatusCode":403,"forwardedErrorMessage":"user J\ud83d is blocked"}"#.to_string();
    rx.set_default(cut);
    let r = create_action(s, "nope").await;
    assert_eq!((r.status.as_u16(), r.code()), (403, 7), "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("user J\u{FFFD} is blocked"), "{r:?}");
    assert!(action_names(s).await.is_empty());
}

async fn rest_call_rewrites_the_request(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.set_default(Answer::json(200, json!({"name": "renamed", "script": "function renamed(ctx, api) {}"})));
    let (id, _) = target(s, "rewrite", json!({"restCall": {"interruptOnError": true}}), &rx.url("/rw"), "5s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&id]).await;
    let r = create_action(s, "original").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(action_names(s).await, vec!["renamed".to_string()]);
    // An invalid replacement is refused like a bad client request, and nothing is created.
    rx.set_default(Answer::json(200, json!({"name": "", "script": "function a(ctx, api) {}"})));
    let r = create_action(s, "valid-name").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    rx.set_default(Answer::json(200, json!({"name": 12})));
    let r = create_action(s, "valid-name").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert_eq!(action_names(s).await, vec!["renamed".to_string()]);
    // A reply that is not a JSON object fails the call.
    rx.set_default(Answer::status(200));
    let r = create_action(s, "valid-name").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{r:?}");
}

async fn rest_call_chain_and_path_parameters(s: &TestServer) {
    let id = s.create_action(&s.admin, "target-of-update").await;
    let rx = Receiver::start().await;
    // The first restCall renames and tries to change the id; the second sees the first's output.
    rx.queue([
        Answer::json(200, json!({"id": "1", "name": "step-one", "script": "function a(ctx, api) {}"})),
        Answer::json(200, json!({"id": "2", "name": "step-two", "script": "function a(ctx, api) {}"})),
    ]);
    let (a, _) = target(s, "one", json!({"restCall": {}}), &rx.url("/one"), "5s").await;
    let (b, _) = target(s, "two", json!({"restCall": {}}), &rx.url("/two"), "5s").await;
    set_execution(
        s,
        json!({"request": {"method": "/zitadel.management.v1.ManagementService/UpdateAction"}}),
        &[&a, &b],
    )
    .await;
    let r = s
        .put(
            &format!("/management/v1/actions/{id}"),
            &s.admin,
            json!({"name": "asked", "script": "function a(ctx, api) {}"}),
        )
        .await;
    assert_eq!(r.status, 200, "the path parameter wins over the reply: {r:?}");
    let got = rx.requests();
    assert_eq!(got[0].json()["request"]["name"], "asked");
    assert_eq!(got[1].json()["request"]["name"], "step-one", "chained");
    let r = s.get(&format!("/management/v1/actions/{id}"), &s.admin).await;
    assert_eq!(r.body["action"]["name"], "step-two", "{r:?}");
}

async fn response_targets_see_and_replace_the_response(s: &TestServer) {
    let rx = Receiver::start().await;
    let (hook, _) = target(s, "resp-hook", json!({"restWebhook": {}}), &rx.url("/seen"), "5s").await;
    set_execution(s, json!({"response": {"method": CREATE_ACTION}}), &[&hook]).await;
    let r = create_action(s, "observed").await;
    assert_eq!(r.status, 200, "{r:?}");
    let p = rx.requests_to("/seen")[0].json();
    assert_eq!(p["request"]["name"], "observed");
    assert_eq!(p["response"]["id"], r.body["id"], "{p}");
    // A failed handler runs no response targets.
    let r = create_action(s, "observed").await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(rx.requests().len(), 1);
    rx.set_default(Answer::json(200, json!({"id": "42", "details": {"sequence": "7"}})));
    let (call, _) = target(s, "resp-call", json!({"restCall": {}}), &rx.url("/replace"), "5s").await;
    set_execution(s, json!({"response": {"service": MGMT}}), &[&call]).await;
    set_execution(s, json!({"response": {"method": CREATE_ACTION}}), &[]).await;
    let r = create_action(s, "replaced").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"id": "42", "details": {"sequence": "7"}}));
    set_execution(s, json!({"response": {"service": MGMT}}), &[]).await;
    assert!(action_names(s).await.contains(&"replaced".to_string()), "the handler ran");
}

/// A response target's reply is read as the response message and written back like every
/// answer (README, Decisions, "Interception"): snake_case names, enum numbers, int64 numbers,
/// zero values, a timestamp with an offset and a "1.5s" duration reach REST, Connect JSON and
/// gRPC clients alike, in protobuf's JSON form.
async fn replaced_responses_are_written_like_every_answer(s: &TestServer) {
    use common::wire::{rpc, Via};
    let r = create_action(s, "canonical").await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let rx = Receiver::start().await;
    rx.set_default(Answer::json(
        200,
        json!({"action": {"id": id, "allowed_to_fail": true, "state": 2, "version": 5, "name": "", "timeout": "1.5s",
            "details": {"sequence": 0, "changeDate": "2026-12-06T10:00:00+01:00"}}}),
    ));
    let (call, _) = target(s, "resp-canonical", json!({"restCall": {}}), &rx.url("/r"), "5s").await;
    let get = "/zitadel.management.v1.ManagementService/GetAction";
    set_execution(s, json!({"response": {"method": get}}), &[&call]).await;
    let expected = json!({"action": {"id": id, "allowedToFail": true, "state": "ACTION_STATE_ACTIVE", "version": "5",
        "timeout": "1.500s", "details": {"changeDate": "2026-12-06T09:00:00Z"}}});
    let rest = s.get(&format!("/management/v1/actions/{id}"), &s.admin).await;
    assert_eq!((rest.status.as_u16(), &rest.body), (200, &expected), "REST: {rest:?}");
    let connect = s.connect(&format!("{MGMT}/GetAction"), &s.admin, json!({"id": id})).await;
    assert_eq!((connect.status.as_u16(), &connect.body), (200, &expected), "Connect JSON: {connect:?}");
    let grpc = s.rpc_via(Via::Grpc, rpc(&format!("{MGMT}/GetAction")), Some(&s.admin), None, &json!({"id": id})).await;
    assert_eq!(grpc.ok(), &expected, "gRPC");
    set_execution(s, json!({"response": {"method": get}}), &[]).await;
}

async fn most_specific_execution_wins(s: &TestServer) {
    let rx = Receiver::start().await;
    let (m, _) = target(s, "method", json!({"restWebhook": {}}), &rx.url("/method"), "5s").await;
    let (sv, _) = target(s, "service", json!({"restWebhook": {}}), &rx.url("/service"), "5s").await;
    let (all, _) = target(s, "all", json!({"restWebhook": {}}), &rx.url("/all"), "5s").await;
    set_execution(s, json!({"request": {"all": true}}), &[&all]).await;
    set_execution(s, json!({"request": {"service": MGMT}}), &[&sv]).await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&m]).await;
    assert_eq!(create_action(s, "a1").await.status, 200);
    assert_eq!(rx.requests().iter().map(|r| r.path.as_str()).collect::<Vec<_>>(), vec!["/method"]);
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[]).await;
    assert_eq!(create_action(s, "a2").await.status, 200);
    assert_eq!(rx.requests().last().unwrap().path, "/service");
    set_execution(s, json!({"request": {"service": MGMT}}), &[]).await;
    assert_eq!(create_action(s, "a3").await.status, 200);
    assert_eq!(rx.requests().last().unwrap().path, "/all");
    assert_eq!(rx.requests().len(), 3, "exactly one execution ran per request");
    // The admin service is covered by `all` too.
    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.requests().len(), 4);
    assert_eq!(rx.requests()[3].json()["fullMethod"], "/zitadel.admin.v1.AdminService/ListOrgs");
}

async fn dead_target_on_all_requests_cannot_lock_out_the_admin(s: &TestServer) {
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (id, _) =
        target(s, "dead", json!({"restWebhook": {"interruptOnError": true}}), &format!("http://{dead}/x"), "2s").await;
    set_execution(s, json!({"request": {"all": true}}), &[&id]).await;
    let r = create_action(s, "blocked").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{r:?}");
    assert_eq!(r.error_id(), "Errors.Execution.Failed");
    // The ActionService is never intercepted: the admin can fix it both ways.
    let r = s.post("/v2/actions/targets/search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.delete(&format!("/v2/actions/targets/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = create_action(s, "works-again").await;
    assert_eq!(r.status, 200, "{r:?}");
    // And with SetExecution clearing it instead.
    let (id, _) =
        target(s, "dead2", json!({"restWebhook": {"interruptOnError": true}}), &format!("http://{dead}/x"), "2s").await;
    set_execution(s, json!({"response": {"all": true}}), &[&id]).await;
    assert_eq!(create_action(s, "blocked2").await.status, 400);
    set_execution(s, json!({"response": {"all": true}}), &[]).await;
    assert_eq!(create_action(s, "works-again-2").await.status, 200);
}

async fn timeout_is_deadline_exceeded(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.set_default(Answer::status(200).with_delay(Duration::from_secs(3)));
    let (id, _) =
        target(s, "slow", json!({"restWebhook": {"interruptOnError": true}}), &rx.url("/slow"), "0.300s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&id]).await;
    let started = std::time::Instant::now();
    let r = create_action(s, "late").await;
    assert!(started.elapsed() < Duration::from_secs(2), "the target's timeout bounds the call");
    assert_eq!(r.status, 504, "{r:?}");
    assert_eq!(r.code(), 4, "{r:?}");
    assert_eq!(r.error_id(), "Errors.Execution.Timeout", "{r:?}");
}

/// Over Connect the path parameters are body fields: a reply cannot change them either (the
/// request goes to the object and trigger the caller named).
async fn connect_replies_cannot_change_path_fields(s: &TestServer) {
    let asked = s.create_action(&s.admin, "asked-for").await;
    let other = s.create_action(&s.admin, "other-one").await;
    let rx = Receiver::start().await;
    rx.queue([
        Answer::json(200, json!({"id": other, "name": "renamed", "script": "function a(ctx, api) {}"})),
        Answer::json(200, json!({"flow_type": "4", "triggerType": "6", "context": {}})),
    ]);
    let (t, _) = target(s, "rewriter", json!({"restCall": {}}), &rx.url("/r"), "5s").await;
    for method in ["UpdateAction", "ExecuteFlowTrigger"] {
        set_execution(s, json!({"request": {"method": format!("/{MGMT}/{method}")}}), &[&t]).await;
    }
    let r = s
        .connect(
            &format!("{MGMT}/UpdateAction"),
            &s.admin,
            json!({"id": asked, "name": "mine", "script": "function a(ctx, api) {}"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.get(&format!("/management/v1/actions/{asked}"), &s.admin).await;
    assert_eq!(r.body["action"]["name"], "renamed", "the asked-for action took the reply: {r:?}");
    let r = s.get(&format!("/management/v1/actions/{other}"), &s.admin).await;
    assert_eq!(r.body["action"]["name"], "other-one", "the reply's id changed nothing: {r:?}");

    // A trigger with one failing action: the reply's flow and trigger are not the ones that run.
    let fails = s.create_script_action("failsHere", "function failsHere() { throw new Error('x'); }").await;
    s.bind_trigger(&s.admin, "2", "4", &[&fails]).await;
    let r =
        s.connect(&format!("{MGMT}/ExecuteFlowTrigger"), &s.admin, json!({"flow_type": "2", "triggerType": "4"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "2/4 ran: {r:?}");
}

/// What a target sees of the request: our JSON form whatever the client's spelling (names,
/// enums, int64s, durations), the path fields fixed for every later target of a chain, and the
/// Host also over HTTP/2 (where it is `:authority`).
async fn targets_see_the_canonical_request(s: &TestServer) {
    let asked = s.create_action(&s.admin, "canon-asked").await;
    let rx = Receiver::start().await;
    let replaced = json!({"id": "1", "name": "replaced", "script": "function a(ctx, api) {}", "timeout": "2.5s"});
    rx.reply_at("/rc", Answer::json(200, replaced));
    rx.set_default(Answer::status(200));
    let (rc, _) = target(s, "canon-rc", json!({"restCall": {}}), &rx.url("/rc"), "5s").await;
    let (guard, _) = target(s, "canon-guard", json!({"restWebhook": {}}), &rx.url("/guard"), "5s").await;
    set_execution(s, json!({"request": {"method": format!("/{MGMT}/UpdateAction")}}), &[&rc, &guard]).await;
    let body =
        json!({"name": "canon", "script": "function a(ctx, api) {}", "timeout": "2.5s", "allowed_to_fail": false});
    let r = s.put(&format!("/management/v1/actions/{asked}"), &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    let first = rx.requests_to("/rc")[0].json();
    assert_eq!(
        first["request"],
        json!({"id": asked, "name": "canon", "script": "function a(ctx, api) {}", "timeout": "2.500s"}),
        "zero values omitted, the duration as protojson prints it"
    );
    let later = rx.requests_to("/guard")[0].json();
    assert_eq!(later["request"]["id"], asked.as_str(), "the reply's id is not what later targets see: {later}");
    assert_eq!(later["request"]["name"], "replaced", "{later}");
    let r = s.get(&format!("/management/v1/actions/{asked}"), &s.admin).await;
    assert_eq!(r.body["action"]["name"], "replaced", "{r:?}");

    // Enums and int64s sent as numbers reach targets as names and strings.
    set_execution(s, json!({"request": {"method": format!("/{MGMT}/ListActions")}}), &[&guard]).await;
    let list = json!({"query": {"offset": 2, "asc": false}, "sorting_column": 1,
        "queries": [{"actionStateQuery": {"state": 2}}]});
    let r = s.post("/management/v1/actions/_search", &s.admin, list).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = rx.requests_to("/guard").last().unwrap().json();
    assert_eq!(
        seen["request"],
        json!({"query": {"offset": "2"}, "sortingColumn": "ACTION_FIELD_NAME_NAME",
            "queries": [{"actionStateQuery": {"state": "ACTION_STATE_ACTIVE"}}]}),
        "{seen}"
    );

    // Ids of string fields sent as numbers (the handlers take them) reach targets as strings,
    // zero values left out, as the same call over REST gives them.
    set_execution(s, json!({"request": {"method": format!("/{MGMT}/GetFlow")}}), &[&guard]).await;
    let r = s.connect(&format!("{MGMT}/GetFlow"), &s.admin, json!({"type": 2})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let seen = rx.requests_to("/guard").last().unwrap().json();
    assert_eq!(seen["request"], json!({"type": "2"}), "{seen}");
    let r = s.get("/management/v1/flows/2", &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rx.requests_to("/guard").last().unwrap().json()["request"], seen["request"]);

    // HTTP/2 (h2c): the Host is the request's authority.
    let req = hyper::Request::post(format!("{}/{MGMT}/ListActions", s.base))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", s.admin))
        .body(http_body_util::Full::new(hyper::body::Bytes::from_static(b"{}")))
        .unwrap();
    let resp = common::wire::h2_client().request(req).await.expect("h2c call");
    assert_eq!((resp.status().as_u16(), resp.version()), (200, hyper::Version::HTTP_2));
    let seen = rx.requests_to("/guard").last().unwrap().json();
    assert_eq!(seen["headers"]["Host"], json!([s.base.trim_start_matches("http://")]), "{seen}");
}

async fn targets_never_see_bad_requests(s: &TestServer) {
    let rx = Receiver::start().await;
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let (id, _) = target(s, "watch", json!({"restWebhook": {}}), &rx.url("/watch"), "5s").await;
    set_execution(s, json!({"request": {"all": true}}), &[&id]).await;
    let r = s.call(reqwest::Method::POST, "/management/v1/actions", None, &[], Some(json!({"name": "x"}))).await;
    assert_eq!(r.status, 401);
    let r = s.post("/management/v1/actions", &viewer, json!({"name": "x", "script": "function x(){}"})).await;
    assert_eq!(r.status, 403);
    let r = s.post("/management/v1/actions", &s.admin, json!({"name": ["not", "a", "string"]})).await;
    assert_eq!(r.status, 400);
    let r = s.call_raw(reqwest::Method::POST, "/management/v1/actions", Some(&s.admin), b"{not json".to_vec()).await;
    assert_eq!(r.status, 400);
    // Field rules too: a name over 200 characters, an empty script, a timeout over the maximum.
    for body in [
        json!({"name": "n".repeat(201), "script": "function n(ctx, api) {}"}),
        json!({"name": "ok", "script": ""}),
        json!({"name": "ok", "script": "function ok(ctx, api) {}", "timeout": "99999s"}),
    ] {
        let r = s.post("/management/v1/actions", &s.admin, body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    }
    let r = s.post("/management/v1/flows/2/trigger/99", &s.admin, json!({"actionIds": []})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.post("/management/v1/orgs", &s.admin, json!({"name": ""})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(rx.requests().is_empty(), "no target call for unauthenticated, forbidden or undecodable requests");
    let r = s.execute_trigger(&s.admin, "2", "5", json!("not an object")).await;
    assert_eq!(r.status, 400, "{r:?}");
    // Every RPC's field rules run before the targets: limits, settings, dry runs, replays, tokens.
    let action = s.create_action(&s.admin, "kept").await;
    assert_eq!(rx.requests().len(), 1, "the valid CreateAction was seen");
    let draft = json!({"name": "d", "script": "function d(ctx, api) {}"});
    for (method, path, body) in [
        ("POST", "/management/v1/actions/_search".to_string(), json!({"query": {"limit": 1001}})),
        ("POST", "/management/v1/actions/_search".to_string(), json!({"queries": [{}]})),
        ("POST", "/management/v1/runs/_search".to_string(), json!({"query": {"limit": 101}})),
        (
            "POST",
            "/management/v1/runs/_search".to_string(),
            json!({"queries": [{"flowTypeQuery": {"flowType": "99"}}]}),
        ),
        ("PUT", "/management/v1/actions/_settings".to_string(), json!({"recordContexts": true, "retention": "10s"})),
        (
            "POST",
            "/management/v1/actions/_test".to_string(),
            json!({"name": "", "script": "x", "flowType": "2", "triggerType": "4"}),
        ),
        ("POST", "/management/v1/flows/2/trigger/4/_replay".to_string(), json!({"draft": draft, "last": 101})),
        (
            "POST",
            "/management/v1/flows/2/trigger/4/_replay".to_string(),
            json!({"draft": draft, "last": 1, "runIds": ["1"]}),
        ),
        ("POST", "/management/v1/flows/9/trigger/4/_replay".to_string(), json!({"draft": draft})),
        ("POST", "/admin/v1/tokens".to_string(), json!({"orgId": "default", "role": "BOGUS"})),
        ("POST", "/admin/v1/tokens/_search".to_string(), json!({"query": {"limit": 1001}})),
        ("POST", "/admin/v1/orgs/_search".to_string(), json!({"query": {"limit": 1001}})),
        ("GET", format!("/management/v1/actions/{action}/versions/abc"), Value::Null),
        ("POST", format!("/management/v1/actions/{action}/versions/x1/_rollback"), json!({})),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = (!body.is_null()).then_some(body);
        let r = s.call(method, &path, Some(&s.admin), &[], body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{path}: {r:?}");
    }
    assert_eq!(
        rx.requests().len(),
        1,
        "no target call for unauthenticated, forbidden, undecodable or invalid requests"
    );
}

async fn rest_async_goes_through_the_queue(s: &TestServer) {
    let rx = Receiver::start().await;
    rx.queue([Answer::status(503)]);
    let (id, key) = target(s, "async", json!({"restAsync": {}}), &rx.url("/async"), "5s").await;
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&id]).await;
    let r = create_action(s, "queued").await;
    assert_eq!(r.status, 200, "the caller does not wait: {r:?}");
    let got = rx.wait_until(Duration::from_secs(20), "two attempts", |r| r.len() >= 2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"), "retries keep the webhook-id");
    assert_eq!(got[0].body, got[1].body, "and the body");
    assert!(standard_webhooks_valid(&got[1], &key));
    assert_eq!(got[1].json()["request"]["name"], "queued");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = s
            .post("/v2/actions/deliveries/search", &s.admin, json!({"filters": [{"targetIdFilter": {"targetId": id}}]}))
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let d = &r.body["deliveries"][0];
        if d["state"] == "DELIVERY_STATE_SUCCEEDED" {
            assert_eq!(d["attempts"], 2, "{d}");
            assert_eq!(d["lastStatus"], 200, "{d}");
            assert_eq!(d["id"].as_str().unwrap(), got[0].header("webhook-id"));
            assert!(d.get("eventType").is_none(), "{d}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not recorded as succeeded: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A secret's value and a new token travel to the target but are never stored in clear.
    let secret_method = "/zitadel.management.v1.ManagementService/SetActionSecret";
    set_execution(s, json!({"request": {"method": secret_method}}), &[&id]).await;
    set_execution(s, json!({"response": {"method": "/zitadel.admin.v1.AdminService/AddToken"}}), &[&id]).await;
    let r = s.put("/management/v1/actions/secrets/QUEUED", &s.admin, json!({"value": "plain-secret-4711"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post("/admin/v1/tokens", &s.admin, json!({"orgId": "default", "role": "ORG_VIEWER"})).await;
    let token = r.body["token"].as_str().unwrap().to_string();
    let got = rx.wait_until(Duration::from_secs(20), "both calls", |r| r.len() >= 4).await;
    let bodies: Vec<String> = got[2..].iter().map(|r| String::from_utf8_lossy(&r.body).to_string()).collect();
    assert!(bodies.iter().any(|b| b.contains("plain-secret-4711")), "the target gets the request: {bodies:?}");
    assert!(bodies.iter().any(|b| b.contains(&token)), "and the response: {bodies:?}");
    use sea_orm::EntityTrait;
    let rows = entity::delivery::Entity::find().all(&s.state.store.db).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in rows {
        assert!(!row.payload.contains("plain-secret-4711") && !row.payload.contains(&token), "{row:?}");
        assert!(!row.payload.contains("queued"), "stored encrypted: {row:?}");
    }
}

async fn response_conditions_with_each_target_type(s: &TestServer) {
    let rx = Receiver::start().await;
    let (queued, _) = target(s, "resp-async", json!({"restAsync": {}}), &rx.url("/async"), "5s").await;
    let (failing, _) =
        target(s, "resp-fail", json!({"restCall": {"interruptOnError": true}}), &rx.url("/fail"), "5s").await;
    set_execution(s, json!({"response": {"method": CREATE_ACTION}}), &[&queued]).await;
    let r = create_action(s, "async-response").await;
    assert_eq!(r.status, 200, "{r:?}");
    let got = rx.wait_until(Duration::from_secs(20), "the queued response call", |r| !r.is_empty()).await;
    let p = got[0].json();
    assert_eq!(p["request"]["name"], "async-response");
    assert_eq!(p["response"]["id"], r.body["id"], "{p}");
    // An interrupting restCall failure on the response fails the call after the handler ran.
    rx.set_default(Answer::status(500));
    set_execution(s, json!({"response": {"method": CREATE_ACTION}}), &[&failing]).await;
    let r = create_action(s, "handled-then-failed").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{r:?}");
    set_execution(s, json!({"response": {"method": CREATE_ACTION}}), &[]).await;
    assert!(action_names(s).await.contains(&"handled-then-failed".to_string()));
}

async fn jwt_and_jwe_payloads(s: &TestServer) {
    let rx = Receiver::start().await;
    let r = s
        .post(
            "/v2/actions/targets",
            &s.admin,
            json!({"name": "jwt", "restWebhook": {"interruptOnError": true}, "timeout": "5s",
                "endpoint": rx.url("/jwt"), "payloadType": "PAYLOAD_TYPE_JWT"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let (jwt, key) = (r.body["id"].as_str().unwrap().to_string(), r.body["signingKey"].as_str().unwrap().to_string());
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&jwt]).await;
    assert_eq!(create_action(s, "signed").await.status, 200);
    let got = rx.requests();
    assert_eq!(got[0].header("content-type"), "application/jwt");
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    assert_eq!(text.split('.').count(), 3, "a compact JWS: {text}");
    assert!(zitadel_signature_valid(&got[0], &key), "signed over the bytes sent");
    use base64::Engine;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.split('.').nth(1).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&claims).unwrap();
    assert_eq!(claims["request"]["name"], "signed", "{claims}");
    let jwks = s.call(reqwest::Method::GET, "/oauth/v2/keys", None, &[], None).await;
    assert_eq!(jwks.status, 200, "{jwks:?}");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text.split('.').next().unwrap()).unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert!(jwks.body["keys"].as_array().unwrap().iter().any(|k| k["kid"] == header["kid"]), "{jwks:?}");
    // A JWE target without an active public key cannot be called.
    let r = s
        .post(
            "/v2/actions/targets",
            &s.admin,
            json!({"name": "jwe", "restWebhook": {"interruptOnError": true}, "timeout": "5s",
                "endpoint": rx.url("/jwe"), "payloadType": "PAYLOAD_TYPE_JWE"}),
        )
        .await;
    let jwe = r.body["id"].as_str().unwrap().to_string();
    set_execution(s, json!({"request": {"method": CREATE_ACTION}}), &[&jwe]).await;
    let r = create_action(s, "sealed").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 9), "{r:?}");
    assert_eq!(r.error_id(), "Errors.Target.NoActiveKey", "{r:?}");
    assert!(rx.requests_to("/jwe").is_empty());
}

backend_tests_with!(allow_loopback;
    jwt_and_jwe_payloads,
    response_conditions_with_each_target_type,
    webhook_sees_signed_request_payload,
    webhook_failure_interrupts_only_with_interrupt_on_error,
    forwarded_error_keeps_status_and_message,
    rest_call_rewrites_the_request,
    rest_call_chain_and_path_parameters,
    connect_replies_cannot_change_path_fields,
    targets_see_the_canonical_request,
    response_targets_see_and_replace_the_response,
    replaced_responses_are_written_like_every_answer,
    most_specific_execution_wins,
    dead_target_on_all_requests_cannot_lock_out_the_admin,
    timeout_is_deadline_exceeded,
    targets_never_see_bad_requests,
    rest_async_goes_through_the_queue,
);
