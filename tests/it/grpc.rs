//! Every RPC over every transport (README, "gRPC, gRPC-web and Connect proto"): the REST gateway,
//! Connect JSON, Connect proto, gRPC over h2c, gRPC-web and gRPC-web-text give the same result
//! and the same error code and message; the handlers' JSON is the protobuf JSON mapping of the
//! messages in proto/ (every JSON answer is read as its message with unknown fields refused);
//! interception, roles and organization isolation hold on each transport; reflection is served.

use crate::common;

use common::receiver::{Answer, Receiver};
use common::wire::{self, Outcome, Via};
use common::TestServer;
use serde_json::{json, Value};

const MGMT: &str = "zitadel.management.v1.ManagementService";
const V2: &str = "zitadel.action.v2.ActionService";

/// Fields whose values differ between two otherwise equal calls (a list's read time; the ids
/// and dates of objects each call creates).
const VOLATILE: [&str; 9] =
    ["viewTimestamp", "sequence", "creationDate", "changeDate", "setDate", "deletionDate", "id", "token", "signingKey"];

fn without_volatile(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), without_volatile(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_volatile).collect()),
        other => other.clone(),
    }
}

/// All transports agree: the same code and message, and equal answers (`exact`: byte for byte
/// as protobuf JSON; else apart from [`VOLATILE`] fields).
#[track_caller]
fn agree(what: &str, outcomes: &[Outcome], exact: bool) -> Outcome {
    let first = &outcomes[0];
    for o in &outcomes[1..] {
        assert_eq!((o.code, &o.message), (first.code, &first.message), "{what}: {:?} vs {:?}", o, first);
        if exact {
            assert_eq!(o.body, first.body, "{what}: {:?} vs {:?}", o.via, first.via);
        } else {
            assert_eq!(
                without_volatile(&o.body),
                without_volatile(&first.body),
                "{what}: {:?} vs {:?}",
                o.via,
                first.via
            );
        }
    }
    first.clone()
}

/// The request of an RPC with each path parameter set to `value`.
fn with_path_params(rpc: &actionsd::api::Rpc, value: &str) -> Value {
    let mut request = json!({});
    let mut rest = rpc.path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        request[&rest[start + 1..end]] = json!(value);
        rest = &rest[end + 1..];
    }
    request
}

async fn every_rpc_answers_alike_on_every_transport(s: &TestServer) {
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let mut checked = 0;
    for rpc in actionsd::api::rpcs() {
        let name = rpc.full_name();
        // No token: the same UNAUTHENTICATED everywhere.
        let anonymous = agree(&format!("{name} without a token"), &s.rpc_all(rpc, None, None, &json!({})).await, true);
        assert_eq!(anonymous.code, 16, "{name}: {anonymous:?}");
        // A viewer: allowed reads answer, the rest is PERMISSION_DENIED, alike everywhere.
        let request = with_path_params(rpc, "404404404");
        let as_viewer =
            agree(&format!("{name} as ORG_VIEWER"), &s.rpc_all(rpc, Some(&viewer), None, &request).await, false);
        assert!([0, 3, 5, 7, 9].contains(&as_viewer.code), "{name}: {as_viewer:?}");
        // The instance owner, with nonexistent ids: whatever the answer, the same everywhere.
        let as_owner =
            agree(&format!("{name} as IAM_OWNER"), &s.rpc_all(rpc, Some(&s.admin), None, &request).await, false);
        assert_ne!(as_owner.code, 13, "{name}: {as_owner:?}");
        assert_ne!(as_owner.code, 16, "{name}: {as_owner:?}");
        checked += 1;
    }
    assert_eq!(checked, 58, "every RPC");
}

async fn actions_and_flows_on_every_transport(s: &TestServer) {
    let create = wire::rpc(&format!("{MGMT}/CreateAction"));
    let mut ids = Vec::new();
    for via in wire::ALL {
        let name = format!("via{via:?}");
        let r = s
            .rpc_via(
                via,
                create,
                Some(&s.admin),
                None,
                &json!({"name": name, "script": format!("function {name}(ctx, api) {{ api.v1.claims.setClaim('via', '{via:?}') }}"), "timeout": "2.500s", "allowedToFail": true}),
            )
            .await;
        let body = r.ok().clone();
        assert_eq!(body["details"]["sequence"], "1", "{via:?}: {body}");
        assert_eq!(body["version"], "1", "{via:?}: {body}");
        ids.push((via, name, body["id"].as_str().unwrap().to_string()));
    }
    let get = wire::rpc(&format!("{MGMT}/GetAction"));
    for (via, name, id) in &ids {
        let got = agree("GetAction", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": id})).await, true);
        let action = &got.body["action"];
        assert_eq!(action["name"], *name, "created via {via:?}");
        assert_eq!(action["timeout"], "2.500s");
        assert_eq!(action["allowedToFail"], true);
        assert_eq!(action["state"], "ACTION_STATE_ACTIVE");
    }
    // Update over gRPC, read everywhere.
    let (_, _, first) = &ids[0];
    let update = wire::rpc(&format!("{MGMT}/UpdateAction"));
    let r = s
        .rpc_via(
            Via::Grpc,
            update,
            Some(&s.admin),
            None,
            &json!({"id": first, "name": "renamed", "script": "function renamed(ctx, api) {}", "timeout": "1s"}),
        )
        .await;
    assert_eq!(r.ok()["version"], "2");
    let got = agree("GetAction after update", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": first})).await, true);
    assert_eq!(got.body["action"]["name"], "renamed");
    assert!(got.body["action"].get("allowedToFail").is_none(), "false is left out: {}", got.body);
    // Lists and queries.
    let list = wire::rpc(&format!("{MGMT}/ListActions"));
    let all =
        agree("ListActions", &s.rpc_all(list, Some(&s.admin), None, &json!({"query": {"limit": 100}})).await, false);
    assert_eq!(all.body["details"]["totalResult"], "6");
    let one = agree(
        "ListActions by name",
        &s.rpc_all(
            list,
            Some(&s.admin),
            None,
            &json!({"queries": [{"actionNameQuery": {"name": "viaGrpc", "method": "TEXT_QUERY_METHOD_EQUALS"}}]}),
        )
        .await,
        false,
    );
    assert_eq!(one.body["result"].as_array().map(Vec::len), Some(1), "{}", one.body);
    // Deactivate over gRPC-web, state everywhere.
    let deactivate = wire::rpc(&format!("{MGMT}/DeactivateAction"));
    s.rpc_via(Via::GrpcWeb, deactivate, Some(&s.admin), None, &json!({"id": first})).await.ok();
    let got =
        agree("GetAction after deactivate", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": first})).await, true);
    assert_eq!(got.body["action"]["state"], "ACTION_STATE_INACTIVE");
    // Flows: bind over Connect proto, read everywhere.
    let (_, _, second) = &ids[1];
    let set = wire::rpc(&format!("{MGMT}/SetTriggerActions"));
    s.rpc_via(
        Via::ConnectProto,
        set,
        Some(&s.admin),
        None,
        &json!({"flowType": "2", "triggerType": "4", "actionIds": [second]}),
    )
    .await
    .ok();
    let flow = wire::rpc(&format!("{MGMT}/GetFlow"));
    let got = agree("GetFlow", &s.rpc_all(flow, Some(&s.admin), None, &json!({"type": "2"})).await, true);
    assert_eq!(got.body["flow"]["triggerActions"][0]["actions"][0]["id"], *second, "{}", got.body);
    // _execute: free-form context and effects as google.protobuf.Struct.
    let execute = wire::rpc(&format!("{MGMT}/ExecuteFlowTrigger"));
    let context = json!({"v1": {"user": {"id": "u1", "human": {"firstName": "Ann"}}}, "numbers": [1, 2.5], "flag": true, "nothing": null});
    let outcomes = s
        .rpc_all(execute, Some(&s.admin), None, &json!({"flowType": "2", "triggerType": "4", "context": context}))
        .await;
    let effects = outcomes[0].ok()["effects"].clone();
    assert!(effects.to_string().contains("ConnectJson"), "the bound action ran: {effects}");
    for o in &outcomes {
        assert_eq!(o.ok()["outcome"], outcomes[0].body["outcome"], "{:?}", o.via);
        assert_eq!(o.ok()["effects"], effects, "{:?}", o.via);
    }
    // Delete over gRPC-web-text; NOT_FOUND with the same message everywhere.
    let delete = wire::rpc(&format!("{MGMT}/DeleteAction"));
    s.rpc_via(Via::GrpcWebText, delete, Some(&s.admin), None, &json!({"id": first})).await.ok();
    let gone =
        agree("GetAction after delete", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": first})).await, true);
    assert_eq!(gone.code, 5, "{gone:?}");
    assert!(gone.message.contains('(') && gone.message.ends_with(')'), "the error id is in the message: {gone:?}");
    // Invalid argument naming the field, everywhere.
    let bad = agree(
        "CreateAction without a name",
        &s.rpc_all(create, Some(&s.admin), None, &json!({"script": "function x(){}"})).await,
        true,
    );
    assert_eq!(bad.code, 3, "{bad:?}");
    assert!(bad.message.to_lowercase().contains("name"), "{bad:?}");
}

async fn targets_and_executions_on_every_transport(s: &TestServer) {
    let create = wire::rpc(&format!("{V2}/CreateTarget"));
    let mut ids = Vec::new();
    for via in wire::ALL {
        let r = s
            .rpc_via(
                via,
                create,
                Some(&s.admin),
                None,
                &json!({"name": format!("target{via:?}"), "restWebhook": {"interruptOnError": true}, "endpoint": "https://example.com/hook", "timeout": "10s"}),
            )
            .await;
        let body = r.ok().clone();
        assert!(body["signingKey"].as_str().is_some_and(|k| !k.is_empty()), "{via:?}: {body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let get = wire::rpc(&format!("{V2}/GetTarget"));
    for id in &ids {
        let got = agree("GetTarget", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": id})).await, true);
        assert_eq!(got.body["target"]["restWebhook"]["interruptOnError"], true, "{}", got.body);
        assert_eq!(got.body["target"]["timeout"], "10s");
    }
    let set = wire::rpc(&format!("{V2}/SetExecution"));
    let condition = json!({"request": {"method": "/zitadel.management.v1.ManagementService/GetAction"}});
    s.rpc_via(Via::Grpc, set, Some(&s.admin), None, &json!({"condition": condition, "targets": [ids[0]]})).await.ok();
    let list = wire::rpc(&format!("{V2}/ListExecutions"));
    let got = agree("ListExecutions", &s.rpc_all(list, Some(&s.admin), None, &json!({})).await, true);
    assert_eq!(got.body["executions"][0]["condition"], condition, "{}", got.body);
    assert_eq!(got.body["executions"][0]["targets"], json!([ids[0]]));
    let targets = wire::rpc(&format!("{V2}/ListTargets"));
    let got = agree("ListTargets", &s.rpc_all(targets, Some(&s.admin), None, &json!({})).await, true);
    assert_eq!(got.body["pagination"]["totalResult"], "6", "{}", got.body);
    s.rpc_via(Via::GrpcWeb, set, Some(&s.admin), None, &json!({"condition": condition, "targets": []})).await.ok();
    let got = agree("ListExecutions after clearing", &s.rpc_all(list, Some(&s.admin), None, &json!({})).await, true);
    assert!(got.body.get("executions").is_none(), "{}", got.body);
    // Reading the methods an execution may name.
    let methods = wire::rpc(&format!("{V2}/ListExecutionMethods"));
    let got = agree("ListExecutionMethods", &s.rpc_all(methods, Some(&s.admin), None, &json!({})).await, true);
    assert!(got.body["methods"].as_array().is_some_and(|m| m.len() > 20), "{}", got.body);
}

async fn roles_and_org_isolation_on_every_transport(s: &TestServer) {
    let other = s.create_org("grpc-other").await;
    let other_owner = s.create_token(&other, "ORG_OWNER").await;
    let theirs = s.create_action(&other_owner, "theirs").await;
    let mine = s.create_action(&s.admin, "mine").await;
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let get = wire::rpc(&format!("{MGMT}/GetAction"));
    let delete = wire::rpc(&format!("{MGMT}/DeleteAction"));
    let add_token = wire::rpc("zitadel.admin.v1.AdminService/AddToken");
    // Another organization's action does not exist for this one.
    let hidden =
        agree("GetAction of another org", &s.rpc_all(get, Some(&viewer), None, &json!({"id": theirs})).await, true);
    assert_eq!(hidden.code, 5, "{hidden:?}");
    let hidden =
        agree("GetAction of another org", &s.rpc_all(get, Some(&other_owner), None, &json!({"id": mine})).await, true);
    assert_eq!(hidden.code, 5, "{hidden:?}");
    // x-zitadel-orgid from metadata: an org owner cannot switch to an org not its own.
    let switched = agree(
        "x-zitadel-orgid",
        &s.rpc_all(get, Some(&other_owner), Some(&s.default_org_id().await), &json!({"id": mine})).await,
        true,
    );
    assert_eq!(switched.code, 7, "{switched:?}");
    // The instance owner may, on every transport.
    let allowed = agree(
        "x-zitadel-orgid as IAM_OWNER",
        &s.rpc_all(get, Some(&s.admin), Some(&other), &json!({"id": theirs})).await,
        true,
    );
    assert_eq!(allowed.body["action"]["name"], "theirs");
    // Roles: a viewer reads, but neither deletes nor adds tokens.
    let read = agree("GetAction as viewer", &s.rpc_all(get, Some(&viewer), None, &json!({"id": mine})).await, true);
    assert_eq!(read.code, 0);
    let denied =
        agree("DeleteAction as viewer", &s.rpc_all(delete, Some(&viewer), None, &json!({"id": mine})).await, true);
    assert_eq!(denied.code, 7, "{denied:?}");
    let denied = agree(
        "AddToken as org owner",
        &s.rpc_all(add_token, Some(&other_owner), None, &json!({"orgId": other, "role": "ORG_OWNER"})).await,
        true,
    );
    assert_eq!(denied.code, 7, "{denied:?}");
    // Still there.
    let still = agree("GetAction", &s.rpc_all(get, Some(&s.admin), None, &json!({"id": mine})).await, true);
    assert_eq!(still.body["action"]["name"], "mine");
}

mod intercepted {
    use super::*;

    fn allow_loopback(c: &mut actionsd::config::Config) {
        crate::common::allow_loopback(c);
    }

    backend_tests_with!(
        allow_loopback;
        interception_sees_every_transport_alike,
        numbers_reach_targets_alike_on_every_transport,
        response_replies_are_checked_alike_on_every_transport
    );

    /// A whole number in an `_execute` context (a `google.protobuf.Struct`) reaches function
    /// targets as `1`, not `1.0`, whichever transport carried it: protobuf holds it as a double,
    /// and the JSON mapping writes whole doubles without a fraction.
    async fn numbers_reach_targets_alike_on_every_transport(s: &TestServer) {
        let rx = Receiver::start().await;
        let target = s
            .post(
                "/v2/actions/targets",
                &s.admin,
                json!({"name": "fn", "restWebhook": {}, "endpoint": rx.url("/fn"), "timeout": "5s"}),
            )
            .await;
        assert_eq!(target.status, 200, "{target:?}");
        let r = s
            .put(
                "/v2/actions/executions",
                &s.admin,
                json!({"condition": {"function": {"name": "preaccesstoken"}}, "targets": [target.body["id"]]}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let execute = wire::rpc(&format!("{MGMT}/ExecuteFlowTrigger"));
        let context = json!({"user": {"id": "u1", "state": 1, "sequence": 7, "human": {"gender": 2}}, "claims": {"n": 5, "half": 0.5}});
        for via in wire::ALL {
            let request = json!({"flowType": "2", "triggerType": "5", "context": context});
            let got = s.rpc_via(via, execute, Some(&s.admin), None, &request).await;
            assert_eq!(got.code, 0, "{via:?}: {got:?}");
        }
        let seen = rx.requests_to("/fn");
        assert_eq!(seen.len(), 6, "one function call per transport");
        for call in &seen {
            let body = String::from_utf8_lossy(&call.body).to_string();
            assert!(body.contains(r#""sequence":7"#) && body.contains(r#""state":1"#), "{body}");
            assert!(body.contains(r#""gender":2"#) && body.contains(r#""n":5"#), "{body}");
            assert!(body.contains(r#""half":0.5"#), "{body}");
            assert!(!body.contains(".0,") && !body.contains(".0}"), "no whole number with a fraction: {body}");
        }
    }

    /// A response target's reply that is not the RPC's response message (a field of the wrong
    /// type, an unknown field, an unknown enum name) is the target's failure on every transport
    /// (400 code 9 `Errors.Execution.Failed`), never a 500 on one and a pass on another; a reply
    /// that is the message replaces the answer everywhere.
    async fn response_replies_are_checked_alike_on_every_transport(s: &TestServer) {
        let rx = Receiver::start().await;
        let target = s
            .post(
                "/v2/actions/targets",
                &s.admin,
                json!({"name": "respcall", "restCall": {"interruptOnError": true}, "endpoint": rx.url("/resp"), "timeout": "5s"}),
            )
            .await;
        assert_eq!(target.status, 200, "{target:?}");
        let method = "/zitadel.management.v1.ManagementService/GetMyOrg";
        let r = s
            .put(
                "/v2/actions/executions",
                &s.admin,
                json!({"condition": {"response": {"method": method}}, "targets": [target.body["id"]]}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let get = wire::rpc(&format!("{MGMT}/GetMyOrg"));
        for bad in [
            json!({"org": {"id": {"nested": 1}}}),
            json!({"org": {"details": {"creationDate": "yesterday"}}}),
            json!({"org": {"state": "NOT_AN_ENUM"}}),
            json!({"org": {"name": "x"}, "extra": true}),
        ] {
            rx.set_default(Answer::json(200, bad.clone()));
            for via in wire::ALL {
                let got = s.rpc_via(via, get, Some(&s.admin), None, &json!({})).await;
                assert_eq!(got.code, 9, "{bad} via {via:?}: {got:?}");
                assert!(
                    got.message.contains("Errors.Execution.Failed") || got.message.contains("GetMyOrgResponse"),
                    "{got:?}"
                );
            }
        }
        rx.set_default(Answer::json(
            200,
            json!({"org": {"id": "42", "name": "replaced", "state": "ORG_STATE_ACTIVE"}}),
        ));
        for via in wire::ALL {
            let got = s.rpc_via(via, get, Some(&s.admin), None, &json!({})).await;
            assert_eq!(got.code, 0, "{via:?}: {got:?}");
            assert_eq!(got.body["org"]["name"], "replaced", "{via:?}");
        }
    }

    async fn interception_sees_every_transport_alike(s: &TestServer) {
        let rx = Receiver::start().await;
        let target = s
            .post(
                "/v2/actions/targets",
                &s.admin,
                json!({"name": "seer", "restWebhook": {}, "endpoint": rx.url("/seen"), "timeout": "5s"}),
            )
            .await;
        assert_eq!(target.status, 200, "{target:?}");
        let id = s.create_action(&s.admin, "seen").await;
        let method = "/zitadel.management.v1.ManagementService/GetAction";
        let r = s
            .put(
                "/v2/actions/executions",
                &s.admin,
                json!({"condition": {"request": {"method": method}}, "targets": [target.body["id"]]}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let get = wire::rpc(&format!("{MGMT}/GetAction"));
        for via in wire::ALL {
            let got = s.rpc_via(via, get, Some(&s.admin), None, &json!({"id": id})).await;
            assert_eq!(got.ok()["action"]["name"], "seen", "{via:?}");
        }
        let seen = rx.requests_to("/seen");
        assert_eq!(seen.len(), 6, "one target call per transport");
        let first = seen[0].json();
        for call in &seen {
            let p = call.json();
            assert_eq!(p["fullMethod"], method);
            assert_eq!(p["request"], first["request"], "the same request message whatever the transport");
            assert_eq!(p["orgID"], first["orgID"]);
        }
        assert_eq!(first["request"], json!({"id": id}));
    }
}

async fn reflection_lists_the_services(s: &TestServer) {
    // ServerReflectionInfo, list_services = 7 (a string), answered by list_services_response = 6.
    let pool = wire::pool();
    assert!(pool.get_service_by_name(MGMT).is_some());
    for version in ["v1", "v1alpha"] {
        let mut request = Vec::new();
        prost::encoding::string::encode(7, &String::new(), &mut request);
        let url = format!("{}/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo", s.base);
        let answer = wire::grpc_raw(&url, &[], wire::frame(0, &request)).await;
        assert_eq!(answer.status, "0", "{version}: {:?}", answer.message);
        let text = String::from_utf8_lossy(&answer.body).to_string();
        for service in [MGMT, "zitadel.admin.v1.AdminService", V2, "actionsd.connector.v1.ConnectorService"] {
            assert!(text.contains(service), "{version} lists {service}: {text:?}");
        }
        // A request far larger than any reflection request (its `host`, 1 = a string, is echoed in
        // the answer) is not taken: no answer carries it back.
        let mut big = Vec::new();
        prost::encoding::string::encode(1, &"h".repeat(64 << 10), &mut big);
        prost::encoding::string::encode(7, &String::new(), &mut big);
        let answer = wire::grpc_raw(&url, &[], wire::frame(0, &big)).await;
        assert!(answer.body.len() < 16 << 10, "{version}: a {} byte answer to a 64 KiB request", answer.body.len());
    }
}

async fn grpc_edge_cases(s: &TestServer) {
    let get = wire::rpc(&format!("{MGMT}/GetMyOrg"));
    let url = format!("{}{}", s.base, get.full_name());
    let auth = format!("Bearer {}", s.admin);
    let send = |body: Vec<u8>, extra: Vec<(&'static str, &'static str)>| {
        let (url, auth) = (url.clone(), auth.clone());
        async move {
            let mut metadata = vec![("authorization", auth.as_str())];
            metadata.extend(extra);
            let answer = wire::grpc_raw(&url, &metadata, body).await;
            (answer.status, answer.message, answer.headers)
        }
    };
    // An empty message is valid protobuf: the call succeeds.
    let (status, _, head) = send(vec![0, 0, 0, 0, 0], vec![]).await;
    assert_eq!(status, "0");
    assert_eq!(head.get("content-type").unwrap(), "application/grpc");
    // No message, two messages, a truncated frame, garbage: INVALID_ARGUMENT, never a crash.
    // (A reserved flag bit is refused too, not read as uncompressed.)
    for body in [
        vec![],
        vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        vec![0, 0, 0, 0, 9, 1],
        vec![0, 0, 0, 0, 2, 0xff, 0xff],
        vec![2, 0, 0, 0, 0],
    ] {
        let (status, message, _) = send(body.clone(), vec![]).await;
        assert_eq!(status, "3", "{body:?}: {message:?}");
    }
    // A compressed message: UNIMPLEMENTED, naming the encoding.
    let (status, message, head) = send(vec![1, 0, 0, 0, 0], vec![("grpc-encoding", "gzip")]).await;
    assert_eq!(status, "12", "{message:?}");
    assert!(message.unwrap().contains("gzip"));
    assert_eq!(head.get("grpc-accept-encoding").unwrap(), "identity");
    // A context nested 2,000 levels deep (a few bytes per level): INVALID_ARGUMENT.
    let mut value: Vec<u8> = vec![0x20, 0x01];
    for _ in 0..2_000 {
        let mut list = vec![0x0a];
        prost::encoding::encode_varint(value.len() as u64, &mut list);
        list.extend_from_slice(&value);
        value = vec![0x32];
        prost::encoding::encode_varint(list.len() as u64, &mut value);
        value.extend_from_slice(&list);
    }
    let mut entry = vec![0x0a, 0x01, b'k', 0x12];
    prost::encoding::encode_varint(value.len() as u64, &mut entry);
    entry.extend_from_slice(&value);
    let mut message = vec![0x0a, 0x01, b'2', 0x12, 0x01, b'4', 0x1a];
    prost::encoding::encode_varint(entry.len() as u64 + 1 + varint_len(entry.len()), &mut message);
    message.push(0x0a);
    prost::encoding::encode_varint(entry.len() as u64, &mut message);
    message.extend_from_slice(&entry);
    let execute = wire::rpc(&format!("{MGMT}/ExecuteFlowTrigger"));
    let answer = wire::grpc_raw(
        &format!("{}{}", s.base, execute.full_name()),
        &[("authorization", &auth)],
        wire::frame(0, &message),
    )
    .await;
    assert_eq!(answer.status, "3", "{:?}", answer.message);
    assert_eq!(answer.headers.get("grpc-status").unwrap(), "3", "an error is trailers-only");
    // The server is still fine.
    let (status, _, _) = send(vec![0, 0, 0, 0, 0], vec![]).await;
    assert_eq!(status, "0");
    // An unknown method over gRPC is UNIMPLEMENTED.
    let answer = wire::grpc_raw(&format!("{}/{MGMT}/NoSuchMethod", s.base), &[], vec![0u8, 0, 0, 0, 0]).await;
    assert_eq!(answer.status, "12");
    assert_eq!(answer.headers.get("grpc-status").unwrap(), "12", "an error is trailers-only");
}

/// `grpc-timeout` bounds a call: a run longer than the deadline ends with DEADLINE_EXCEEDED, on
/// gRPC and on Connect (`connect-timeout-ms`), and the server goes on.
async fn deadlines_end_calls(s: &TestServer) {
    let id = s
        .create_action_body(
            &s.admin,
            json!({"name": "slow", "script": "function slow(ctx, api) { var t = Date.now(); while (Date.now() - t < 4000) {} }", "timeout": "10s"}),
        )
        .await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let execute = wire::rpc(&format!("{MGMT}/ExecuteFlowTrigger"));
    let started = std::time::Instant::now();
    let message = wire::to_message(
        &wire::pool().get_message_by_name("zitadel.management.v1.ExecuteFlowTriggerRequest").unwrap(),
        &json!({"flowType": "2", "triggerType": "4", "context": {}}),
    );
    let auth = format!("Bearer {}", s.admin);
    let answer = wire::grpc_raw(
        &format!("{}{}", s.base, execute.full_name()),
        &[("authorization", &auth), ("grpc-timeout", "300m")],
        wire::frame(0, &prost::Message::encode_to_vec(&message)),
    )
    .await;
    assert_eq!(answer.status, "4", "{:?}", answer.message);
    assert_eq!(answer.headers.get("grpc-status").unwrap(), "4", "an error is trailers-only");
    assert!(started.elapsed() < std::time::Duration::from_millis(3500), "ended at the deadline, not after the run");
    let r = s
        .call(
            reqwest::Method::POST,
            &execute.full_name(),
            Some(&s.admin),
            &[("connect-timeout-ms", "300")],
            Some(json!({"flowType": "2", "triggerType": "4", "context": {}})),
        )
        .await;
    assert_eq!(r.body["code"], "deadline_exceeded", "{r:?}");
    // The two runs the callers gave up on went on to their end, and their records are stored
    // (execute.md §3: every run that started has one).
    let query = json!({"queries": [{"actionIdQuery": {"actionId": id}}]});
    let recorded = |r: &common::Reply| r.body["result"].as_array().is_some_and(|runs| runs.len() == 2);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let records = loop {
        let r = s.list_runs(&s.admin, query.clone()).await;
        if recorded(&r) || std::time::Instant::now() >= until {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(recorded(&records), "both runs recorded: {records:?}");
    for run in records.body["result"].as_array().unwrap() {
        assert_eq!(run["outcome"], "OUTCOME_SUCCEEDED", "{run}");
    }
    // The server goes on.
    let get = wire::rpc(&format!("{MGMT}/GetAction"));
    let ok = s.rpc_via(Via::Grpc, get, Some(&s.admin), None, &json!({"id": id})).await;
    assert_eq!(ok.ok()["action"]["name"], "slow");
}

/// A protobuf request is held to the rules of its JSON form: a context nested deeper than JSON
/// may be is INVALID_ARGUMENT on every transport, and the deepest JSON allows runs on every one;
/// a field sent with the wrong wire type is named as a JSON error names it; a content type of a
/// protocol or codec the server does not speak is 415, not read as JSON; a call whose deadline
/// passed before it started runs no action.
async fn protobuf_requests_keep_the_json_rules(s: &TestServer) {
    let deep = s
        .create_action_body(
            &s.admin,
            json!({"name": "deep", "script": "function deep(ctx, api) { api.v1.claims.setClaim('seen', 1) }"}),
        )
        .await;
    s.bind_trigger(&s.admin, "2", "4", &[&deep]).await;
    let execute = wire::rpc(&format!("{MGMT}/ExecuteFlowTrigger"));
    let nested = |levels: usize| (0..levels).fold(json!(1), |v, _| json!({ "a": v }));
    // The request, its context and the claims are three levels; JSON takes 127 in all. (The
    // protobuf form is encoded by hand: prost-reflect's own decoder stops at 100 levels.)
    for (levels, code) in [(124, 0), (125, 3)] {
        let context = json!({"claims": {"deep": nested(levels)}});
        let request = json!({"flowType": "2", "triggerType": "4", "context": context});
        for via in [Via::Rest, Via::ConnectJson] {
            let o = s.rpc_via(via, execute, Some(&s.admin), None, &request).await;
            assert_eq!(o.code, code, "{levels} levels over {via:?}: {}", o.message);
            if code == 0 {
                assert_eq!(o.body["outcome"], "OUTCOME_SUCCEEDED", "{via:?}: {}", o.body);
            }
        }
        let mut message = field_bytes(1, b"2");
        message.extend(field_bytes(2, b"4"));
        message.extend(field_bytes(3, &struct_bytes(&context)));
        let answer = wire::grpc_raw(
            &format!("{}{}", s.base, execute.full_name()),
            &[("authorization", &format!("Bearer {}", s.admin))],
            wire::frame(0, &message),
        )
        .await;
        assert_eq!(answer.status, code.to_string(), "{levels} levels over gRPC: {:?}", answer.message);
        let r = s
            .client
            .post(format!("{}{}", s.base, execute.full_name()))
            .bearer_auth(&s.admin)
            .header("content-type", "application/proto")
            .body(message)
            .send()
            .await
            .expect("Connect proto call");
        assert_eq!(r.status() == 200, code == 0, "{levels} levels over Connect proto: {}", r.status());
    }

    // Wrong wire types, at the top and one message down.
    let auth = format!("Bearer {}", s.admin);
    let pool = wire::pool();
    let number = |message: &str, field: &str| {
        pool.get_message_by_name(message).unwrap().get_field_by_name(field).unwrap().number() as u8
    };
    let get = wire::rpc(&format!("{MGMT}/GetAction"));
    let id_as_varint = vec![number("zitadel.management.v1.GetActionRequest", "id") << 3, 5];
    let answer = wire::grpc_raw(
        &format!("{}{}", s.base, get.full_name()),
        &[("authorization", &auth)],
        wire::frame(0, &id_as_varint),
    )
    .await;
    assert_eq!(answer.status, "3", "{:?}", answer.message);
    assert!(answer.message.as_deref().unwrap().starts_with("invalid GetActionRequest.Id: "), "{:?}", answer.message);
    let list = wire::rpc(&format!("{MGMT}/ListActions"));
    let limit_as_text = vec![number("zitadel.v1.ListQuery", "limit") << 3 | 2, 1, b'A'];
    let mut query =
        vec![number("zitadel.management.v1.ListActionsRequest", "query") << 3 | 2, limit_as_text.len() as u8];
    query.extend_from_slice(&limit_as_text);
    let answer =
        wire::grpc_raw(&format!("{}{}", s.base, list.full_name()), &[("authorization", &auth)], wire::frame(0, &query))
            .await;
    assert_eq!(answer.status, "3", "{:?}", answer.message);
    assert!(
        answer.message.as_deref().unwrap().starts_with("invalid ListActionsRequest.Query.Limit: "),
        "{:?}",
        answer.message
    );

    // A well-known value with no JSON form is named like a JSON field of the wrong form: a
    // Duration past protobuf's range, a Timestamp with negative nanos (not quietly normalized), a
    // Struct holding NaN.
    let seconds_nanos = |seconds: i64, nanos: i32| {
        let mut out = Vec::new();
        prost::encoding::encode_varint(1 << 3, &mut out);
        prost::encoding::encode_varint(seconds as u64, &mut out);
        prost::encoding::encode_varint(2 << 3, &mut out);
        prost::encoding::encode_varint(nanos as i64 as u64, &mut out);
        out
    };
    let field = |message: &str, name: &str| number(message, name) as u64;
    let mut create = field_bytes(field("zitadel.management.v1.CreateActionRequest", "name"), b"ranged");
    create.extend(field_bytes(field("zitadel.management.v1.CreateActionRequest", "script"), b"function ranged() {}"));
    create.extend(field_bytes(
        field("zitadel.management.v1.CreateActionRequest", "timeout"),
        &seconds_nanos(315_576_000_001, 0),
    ));
    let mut mixed_signs = field_bytes(field("zitadel.management.v1.CreateActionRequest", "name"), b"signs");
    mixed_signs
        .extend(field_bytes(field("zitadel.management.v1.CreateActionRequest", "script"), b"function signs() {}"));
    mixed_signs
        .extend(field_bytes(field("zitadel.management.v1.CreateActionRequest", "timeout"), &seconds_nanos(5, -1)));
    let mut token = field_bytes(field("zitadel.admin.v1.AddTokenRequest", "org_id"), b"default");
    token.extend(field_bytes(
        field("zitadel.admin.v1.AddTokenRequest", "expiration_date"),
        &seconds_nanos(4_102_444_800, -5),
    ));
    let mut nan = Vec::new();
    prost::encoding::encode_varint(2 << 3 | 1, &mut nan); // Value.number_value, a double
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    let mut entry = field_bytes(1, b"x");
    entry.extend(field_bytes(2, &nan));
    let mut claims_value = Vec::new();
    prost::encoding::encode_varint(5 << 3 | 2, &mut claims_value); // Value.struct_value
    let inner = field_bytes(1, &entry);
    prost::encoding::encode_varint(inner.len() as u64, &mut claims_value);
    claims_value.extend(inner);
    let mut context_entry = field_bytes(1, b"claims");
    context_entry.extend(field_bytes(2, &claims_value));
    let mut execute_request = field_bytes(1, b"2");
    execute_request.extend(field_bytes(2, b"4"));
    execute_request.extend(field_bytes(3, &field_bytes(1, &context_entry)));
    for (method, message, named) in [
        (format!("{MGMT}/CreateAction"), create, "invalid CreateActionRequest.Timeout: has no JSON form: "),
        (format!("{MGMT}/CreateAction"), mixed_signs, "invalid CreateActionRequest.Timeout: has no JSON form: "),
        (
            "zitadel.admin.v1.AdminService/AddToken".to_string(),
            token,
            "invalid AddTokenRequest.ExpirationDate: not a timestamp of years 1 to 9999",
        ),
        (
            format!("{MGMT}/ExecuteFlowTrigger"),
            execute_request,
            "invalid ExecuteFlowTriggerRequest.Context: has no JSON form: ",
        ),
    ] {
        let rpc = wire::rpc(&method);
        let answer = wire::grpc_raw(
            &format!("{}{}", s.base, rpc.full_name()),
            &[("authorization", &auth)],
            wire::frame(0, &message),
        )
        .await;
        assert_eq!(answer.status, "3", "{method}: {:?}", answer.message);
        assert!(answer.message.as_deref().unwrap_or("").starts_with(named), "{method}: {:?}", answer.message);
    }
    let tokens = s.post("/admin/v1/tokens/_search", &s.admin, json!({})).await;
    assert!(
        tokens.body["result"].as_array().unwrap().iter().all(|t| t["expirationDate"].is_null()),
        "no token was added: {tokens:?}"
    );

    // Content types: another protocol or codec is 415 naming what is taken; a type that says
    // nothing of protobuf is still Connect JSON.
    let my_org = wire::rpc(&format!("{MGMT}/GetMyOrg"));
    let path = my_org.full_name();
    let with_type = |media: &'static str| {
        let path = path.clone();
        async move {
            s.call(reqwest::Method::POST, &path, Some(&s.admin), &[("content-type", media)], Some(json!({}))).await
        }
    };
    for media in
        ["application/x-protobuf", "application/connect+proto", "application/grpc+xml", "application/grpc-web+thrift"]
    {
        let r = with_type(media).await;
        assert_eq!(r.status, 415, "{media}: {r:?}");
        assert_eq!(r.body["code"], "unimplemented", "{media}: {r:?}");
        assert!(r.headers.get("accept-post").unwrap().to_str().unwrap().contains("application/proto"), "{media}");
    }
    for media in ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"] {
        let r = with_type(media).await;
        assert_eq!(r.status, 200, "{media}: {r:?}");
    }

    // Deadlines already passed: nothing runs.
    let never = s.create_action_body(&s.admin, json!({"name": "never", "script": "function never(ctx, api) {}"})).await;
    s.bind_trigger(&s.admin, "2", "5", &[&never]).await;
    let message = wire::to_message(
        &pool.get_message_by_name("zitadel.management.v1.ExecuteFlowTriggerRequest").unwrap(),
        &json!({"flowType": "2", "triggerType": "5", "context": {}}),
    );
    let answer = wire::grpc_raw(
        &format!("{}{}", s.base, execute.full_name()),
        &[("authorization", &auth), ("grpc-timeout", "1n")],
        wire::frame(0, &prost::Message::encode_to_vec(&message)),
    )
    .await;
    assert_eq!(answer.status, "4", "{:?}", answer.message);
    let r = s
        .call(
            reqwest::Method::POST,
            &execute.full_name(),
            Some(&s.admin),
            &[("connect-timeout-ms", "0")],
            Some(json!({"flowType": "2", "triggerType": "5", "context": {}})),
        )
        .await;
    assert_eq!(r.body["code"], "deadline_exceeded", "{r:?}");
    // A run started after those two is recorded; none of theirs is.
    let after = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(after.status, 200, "{after:?}");
    let runs_of = |id: &str| json!({"queries": [{"actionIdQuery": {"actionId": id}}]});
    // (`deep` ran once per transport at 124 levels, four, and once more now.)
    let r = s
        .poll_runs(&s.admin, runs_of(&deep), |r| r.body["result"].as_array().is_some_and(|runs| runs.len() >= 7))
        .await;
    assert_eq!(r.body["result"].as_array().map_or(0, Vec::len), 5, "{r:?}");
    let r = s.list_runs(&s.admin, runs_of(&never)).await;
    assert_eq!(r.body["result"].as_array().map_or(0, Vec::len), 0, "an expired call ran: {r:?}");
}

/// A length-delimited protobuf field.
fn field_bytes(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(number << 3 | 2, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// A JSON object as a `google.protobuf.Struct` (objects, whole numbers and strings only).
fn struct_bytes(object: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in object.as_object().expect("an object") {
        let mut entry = field_bytes(1, key.as_bytes());
        entry.extend(field_bytes(2, &value_bytes(value)));
        out.extend(field_bytes(1, &entry));
    }
    out
}

fn value_bytes(value: &Value) -> Vec<u8> {
    match value {
        Value::Object(_) => field_bytes(5, &struct_bytes(value)),
        Value::String(text) => field_bytes(3, text.as_bytes()),
        Value::Number(n) => {
            let mut out = vec![2 << 3 | 1];
            out.extend_from_slice(&n.as_f64().expect("a number").to_le_bytes());
            out
        }
        other => panic!("not encoded here: {other}"),
    }
}

/// With a certificate and key configured, the port speaks TLS: gRPC over HTTP/2 negotiated by
/// ALPN, and REST over HTTP/1.1, both verified against the test CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_serves_grpc_and_rest() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    common::make_test_ca(dir.path());
    let (cert, key) = (at("cert.pem"), at("key.pem"));
    let s = TestServer::sqlite_with(|c| {
        c.tls_cert_file = Some(cert);
        c.tls_key_file = Some(key);
    })
    .await;
    let addr = s.base.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    // gRPC: TLS with ALPN h2.
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(at("ca.pem")).unwrap();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.unwrap()).unwrap();
    }
    use rustls::pki_types::pem::PemObject;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(rustls::pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "HTTP/2 by ALPN");
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("HTTP/2 over TLS");
    tokio::spawn(conn);
    let req = hyper::Request::post(format!("https://localhost:{port}/{MGMT}/GetMyOrg"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", format!("Bearer {}", s.admin))
        .body(http_body_util::Full::new(hyper::body::Bytes::from(vec![0u8, 0, 0, 0, 0])))
        .unwrap();
    let resp = send.send_request(req).await.expect("gRPC over TLS");
    use http_body_util::BodyExt;
    let collected = resp.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().and_then(|t| t.get("grpc-status")).unwrap(), "0");
    assert!(collected.to_bytes().len() > 5, "the answer message");
    // REST over HTTP/1.1 with TLS.
    let client =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    let r = client
        .get(format!("https://localhost:{port}/management/v1/orgs/me"))
        .bearer_auth(&s.admin)
        .send()
        .await
        .expect("REST over TLS");
    assert_eq!(r.status(), 200);
    // Plain HTTP on the TLS port gets no answer.
    assert!(reqwest::get(format!("http://{addr}/debug/ready")).await.is_err(), "plain HTTP is not served");
    s.stop().await;
}

fn varint_len(n: usize) -> u64 {
    let mut buf = Vec::new();
    prost::encoding::encode_varint(n as u64, &mut buf);
    buf.len() as u64
}

/// `x-zitadel-orgid` value of the token's default organization.
impl TestServer {
    async fn default_org_id(&self) -> String {
        let r = self.get("/management/v1/orgs/me", &self.admin).await;
        r.body["org"]["id"].as_str().unwrap().to_string()
    }
}

backend_tests!(
    every_rpc_answers_alike_on_every_transport,
    actions_and_flows_on_every_transport,
    targets_and_executions_on_every_transport,
    roles_and_org_isolation_on_every_transport,
    reflection_lists_the_services,
    grpc_edge_cases,
    deadlines_end_calls,
    protobuf_requests_keep_the_json_rules,
);

/// Browsers: a CORS preflight of an allowed origin gets the headers it asks for by name
/// (`Access-Control-Allow-Headers: *` does not cover `Authorization` in browsers), so gRPC-web and
/// Connect clients can send their bearer token; another origin gets no CORS headers. A Connect
/// body in an encoding the server does not speak is UNIMPLEMENTED, not a malformed message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn browser_preflights_and_connect_encodings() {
    let s = TestServer::sqlite_with(|c| c.cors_origins = "http://app.example".into()).await;
    let url = format!("{}/{MGMT}/GetMyOrg", s.base);
    let asked = "content-type,x-grpc-web,x-user-agent,authorization,x-zitadel-orgid";
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", asked)
            .send()
    };
    let r = preflight("http://app.example").await.unwrap();
    assert!(r.status().is_success(), "{r:?}");
    let h = r.headers();
    assert_eq!(h.get("access-control-allow-origin").unwrap(), "http://app.example");
    let allowed = h.get("access-control-allow-headers").unwrap().to_str().unwrap().to_ascii_lowercase();
    for name in asked.split(',') {
        assert!(allowed.split(',').map(str::trim).any(|a| a == name), "{name} allowed: {allowed}");
    }
    assert!(h.get("access-control-allow-methods").unwrap().to_str().unwrap().contains("POST"));
    let r = preflight("http://evil.example").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none(), "{r:?}");
    // A page may read the request id, the gRPC status of a gRPC-web answer and when to retry a
    // 503 (none of them CORS-safelisted).
    let r = s
        .client
        .post(&url)
        .header("origin", "http://app.example")
        .header("authorization", format!("Bearer {}", s.admin))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{r:?}");
    let exposed = r.headers().get("access-control-expose-headers").unwrap().to_str().unwrap().to_ascii_lowercase();
    for name in ["x-request-id", "grpc-status", "grpc-message", "retry-after"] {
        assert!(exposed.split(',').map(str::trim).any(|e| e == name), "{name} exposed: {exposed}");
    }

    let gzip_of_empty_object = vec![
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0xae, 0x05, 0x00, 0x43, 0xbf, 0xa6, 0xa3,
        0x02, 0x00, 0x00, 0x00,
    ];
    for (content_type, encoding) in
        [("application/json", "gzip"), ("application/proto", "gzip"), ("application/json", "br")]
    {
        let r = s
            .client
            .post(&url)
            .header("authorization", format!("Bearer {}", s.admin))
            .header("content-type", content_type)
            .header("content-encoding", encoding)
            .body(gzip_of_empty_object.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 501, "{content_type} {encoding}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "unimplemented", "{body}");
        assert!(body["message"].as_str().unwrap().contains(encoding), "{body}");
    }
    // So on the other transports that carry a whole body: gRPC-web (UNIMPLEMENTED, trailers-only)
    // and the REST gateway (501, code 12), never a compressed body read as a malformed message.
    let r = s
        .client
        .post(&url)
        .header("authorization", format!("Bearer {}", s.admin))
        .header("content-type", "application/grpc-web+proto")
        .header("content-encoding", "gzip")
        .body(gzip_of_empty_object.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("grpc-status").map(|v| v.to_str().unwrap()), Some("12"), "{r:?}");
    assert!(r.headers().get("grpc-message").unwrap().to_str().unwrap().contains("gzip"), "{r:?}");
    let r = s
        .client
        .post(format!("{}/management/v1/actions/_search", s.base))
        .header("authorization", format!("Bearer {}", s.admin))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip_of_empty_object.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 501);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], 12, "{body}");
    assert!(body["message"].as_str().unwrap().contains("gzip"), "{body}");
    // A transfer coding under the chunks (HTTP/1.1 `Transfer-Encoding: gzip, chunked`) too: the
    // chunks are taken apart, the compression under them never.
    for (coding, status) in [("gzip, chunked", "501"), ("chunked", "200")] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(s.base.trim_start_matches("http://")).await.unwrap();
        let request = format!(
            "POST /management/v1/actions/_search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: {coding}\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
            s.admin
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{coding}: {answer}");
    }
    // The one Connect protocol version; another is INVALID_ARGUMENT naming the header.
    for (version, status) in [("1", 200), ("2", 400)] {
        let r = s
            .client
            .post(&url)
            .header("authorization", format!("Bearer {}", s.admin))
            .header("content-type", "application/json")
            .header("connect-protocol-version", version)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "version {version}");
        if status == 400 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "invalid_argument", "{body}");
            assert!(body["message"].as_str().unwrap().contains("connect-protocol-version"), "{body}");
        }
    }
    // identity is the one encoding spoken.
    let r = s
        .client
        .post(&url)
        .header("authorization", format!("Bearer {}", s.admin))
        .header("content-type", "application/json")
        .header("content-encoding", "identity")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.stop().await;
}
