//! Authentication, organizations and permissions (README, "Operations" and "Walkthrough with curl").

use crate::common;

use common::{Reply, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const ACTIONS: &str = "/management/v1/actions";
const MY_ORG: &str = "/management/v1/orgs/me";
const MGMT: &str = "zitadel.management.v1.ManagementService";
const ADMIN: &str = "zitadel.admin.v1.AdminService";
const DENIED: &str = "No matching permissions found (AUTH-5mWD2)";
const NO_ORG: &str = "Organisation doesn't exist (AUTH-Bs7Ds)";

/// A call outside the caller's role gets 403 `AUTH-5mWD2` (gateway form).
#[track_caller]
fn assert_denied(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {r:?}");
    assert_eq!(r.code(), 7, "{what}: {r:?}");
    assert_eq!(r.body["message"], DENIED, "{what}: {r:?}");
    assert_eq!(r.error_id(), "AUTH-5mWD2", "{what}: {r:?}");
}

/// 403 in Connect form: `{"code":"permission_denied","message":"… (AUTH-5mWD2)"}`.
#[track_caller]
fn assert_connect_denied(r: &Reply, what: &str) {
    assert_eq!(r.status, 403, "{what}: {r:?}");
    assert_eq!(r.body["code"], "permission_denied", "{what}: {r:?}");
    assert_eq!(r.body["message"], DENIED, "{what}: {r:?}");
}

#[track_caller]
fn assert_unauthenticated(r: &Reply, what: &str) {
    assert_eq!(r.status, 401, "{what}: {r:?}");
    assert_eq!(r.code(), 16, "{what}: {r:?}");
    assert!(r.body["message"].is_string(), "{what}: {r:?}");
}

#[track_caller]
fn assert_not_found(r: &Reply, id: &str, what: &str) {
    assert_eq!(r.status, 404, "{what}: {r:?}");
    assert_eq!(r.code(), 5, "{what}: {r:?}");
    assert_eq!(r.error_id(), id, "{what}: {r:?}");
}

fn action_path(id: &str) -> String {
    format!("{ACTIONS}/{id}")
}

fn result_ids(r: &Reply) -> Vec<String> {
    r.body["result"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Every org id the instance has (admin ListOrgs).
async fn org_ids(s: &TestServer) -> Vec<String> {
    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    result_ids(&r)
}

/// An org id that looks like a real one but names no organization (derived, not hard-coded).
async fn missing_org_id(s: &TestServer) -> String {
    let existing = org_ids(s).await;
    let base: u64 = existing.iter().filter_map(|i| i.parse().ok()).max().expect("numeric org ids");
    let mut candidate = base + 1_000_003;
    while existing.contains(&candidate.to_string()) {
        candidate += 1;
    }
    candidate.to_string()
}

async fn my_org_id(s: &TestServer, token: &str) -> String {
    let r = s.get(MY_ORG, token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["org"]["id"].as_str().expect("org id").to_string()
}

async fn token_count(s: &TestServer) -> String {
    let r = s.post("/admin/v1/tokens/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["details"]["totalResult"].as_str().unwrap_or("0").to_string()
}

struct Req {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn req(name: &'static str, method: Method, path: impl Into<String>, body: Option<Value>) -> Req {
    Req { name, method, path: path.into(), body }
}

/// The read RPCs of actions and flows (REST form).
fn read_rpcs(action: &str) -> Vec<Req> {
    vec![
        req("ListActions", Method::POST, format!("{ACTIONS}/_search"), Some(json!({}))),
        req("GetAction", Method::GET, action_path(action), None),
        req("ListFlowTypes", Method::POST, "/management/v1/flows/types/_search", Some(json!({}))),
        req("ListFlowTriggerTypes", Method::POST, "/management/v1/flows/1/triggers/_search", Some(json!({}))),
        req("GetFlow", Method::GET, "/management/v1/flows/1", None),
    ]
}

/// The write RPCs of actions and flows (REST form), all valid requests for an owner.
fn write_rpcs(action: &str) -> Vec<Req> {
    vec![
        req(
            "CreateAction",
            Method::POST,
            ACTIONS,
            Some(json!({"name": "intruder", "script": "function intruder(){}"})),
        ),
        req(
            "UpdateAction",
            Method::PUT,
            action_path(action),
            Some(json!({"name": "renamed", "script": "function renamed(){}"})),
        ),
        req("DeactivateAction", Method::POST, format!("{}/_deactivate", action_path(action)), Some(json!({}))),
        req("ReactivateAction", Method::POST, format!("{}/_reactivate", action_path(action)), Some(json!({}))),
        req("DeleteAction", Method::DELETE, action_path(action), None),
        req("SetTriggerActions", Method::POST, "/management/v1/flows/1/trigger/1", Some(json!({"actionIds": []}))),
        req("ClearFlow", Method::POST, "/management/v1/flows/1/_clear", Some(json!({}))),
    ]
}

/// The IAM_OWNER-only RPCs (REST form).
fn admin_rpcs(org: &str, token_id: &str) -> Vec<Req> {
    vec![
        req("AddOrg", Method::POST, "/management/v1/orgs", Some(json!({"name": "should-not-exist"}))),
        req("ListOrgs", Method::POST, "/admin/v1/orgs/_search", Some(json!({}))),
        req("AddToken", Method::POST, "/admin/v1/tokens", Some(json!({"orgId": org, "role": "IAM_OWNER"}))),
        req("ListTokens", Method::POST, "/admin/v1/tokens/_search", Some(json!({}))),
        req("RemoveToken", Method::DELETE, format!("/admin/v1/tokens/{token_id}"), None),
    ]
}

async fn send(s: &TestServer, r: &Req, token: &str, org: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = org.map(|o| vec![("x-zitadel-orgid", o)]).unwrap_or_default();
    s.call(r.method.clone(), &r.path, Some(token), &headers, r.body.clone()).await
}

// ---------------------------------------------------------------------------------------------

async fn missing_or_malformed_authorization_is_401(s: &TestServer) {
    let malformed: [Option<&str>; 7] =
        [None, Some("Bearer"), Some("Bearer "), Some("Basic dXNlcjpwYXNz"), Some("abc"), Some("Token abc"), Some("")];
    let targets: [(Method, &str, Option<Value>); 4] = [
        (Method::GET, MY_ORG, None),
        (Method::POST, "/management/v1/actions/_search", Some(json!({}))),
        (Method::POST, ACTIONS, Some(json!({"name": "x", "script": "function x(){}"}))),
        (Method::POST, "/admin/v1/tokens/_search", Some(json!({}))),
    ];
    for auth in malformed {
        for (method, path, body) in &targets {
            let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
            let r = s.call(method.clone(), path, None, &headers, body.clone()).await;
            let what = format!("{method} {path} with Authorization {auth:?}");
            assert_unauthenticated(&r, &what);
            let msg = r.body["message"].as_str().unwrap_or("");
            assert!(msg.contains("auth header missing"), "{what}: {r:?}");
        }
        // The Connect transport: 401 `unauthenticated`.
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let r = s.call(Method::POST, &format!("/{MGMT}/GetMyOrg"), None, &headers, Some(json!({}))).await;
        assert_eq!(r.status, 401, "Connect GetMyOrg with Authorization {auth:?}: {r:?}");
        assert_eq!(r.body["code"], "unauthenticated", "{r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains("auth header missing"), "{r:?}");
    }
    // Two Authorization headers are ambiguous (a proxy may have checked the other one): 401,
    // whichever comes first; two organizations are a 400.
    let admin = format!("Bearer {}", s.admin);
    for pair in [[admin.as_str(), "Bearer bogus"], ["Bearer bogus", admin.as_str()], [admin.as_str(), admin.as_str()]] {
        let headers = [("authorization", pair[0]), ("authorization", pair[1])];
        let r = s.call(Method::GET, MY_ORG, None, &headers, None).await;
        assert_unauthenticated(&r, &format!("two Authorization headers {pair:?}"));
    }
    let own = s.get(MY_ORG, &s.admin).await.body["org"]["id"].as_str().unwrap().to_string();
    let r = s
        .call(Method::GET, MY_ORG, Some(&s.admin), &[("x-zitadel-orgid", &own), ("x-zitadel-orgid", &own)], None)
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("x-zitadel-orgid"), "{r:?}");
    // Where the header is ignored (admin and v2 RPCs), so are two of it.
    let r = s
        .call(
            Method::POST,
            "/admin/v1/tokens/_search",
            Some(&s.admin),
            &[("x-zitadel-orgid", &own), ("x-zitadel-orgid", "1")],
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // A header value that is not UTF-8 cannot carry a bearer token either.
    let r = s.raw_http("GET", MY_ORG.as_bytes(), &[("authorization", b"Bearer \xff\xfe\xfd")], b"").await;
    assert_eq!(r.status, 401, "non-UTF-8 Authorization: {r:?}");
    assert_eq!(r.code(), 16, "{r:?}");
    // Nothing was created by the unauthenticated CreateAction calls.
    let list = s.post("/management/v1/actions/_search", &s.admin, json!({})).await;
    assert_eq!(list.status, 200, "{list:?}");
    assert!(result_ids(&list).is_empty(), "{list:?}");
}

async fn unknown_token_is_401(s: &TestServer) {
    let mut altered = s.admin.clone();
    let last = altered.pop().expect("non-empty admin token");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for token in ["x", "0123456789abcdef0123456789abcdef0123456789abcdef", altered.as_str()] {
        let r = s.get(MY_ORG, token).await;
        assert_unauthenticated(&r, &format!("GetMyOrg with unknown token {token:?}"));
        let r = s.post("/admin/v1/orgs/_search", token, json!({})).await;
        assert_unauthenticated(&r, &format!("ListOrgs with unknown token {token:?}"));
        let r = s.connect(&format!("{MGMT}/ListActions"), token, json!({})).await;
        assert_eq!(r.status, 401, "Connect with unknown token: {r:?}");
        assert_eq!(r.body["code"], "unauthenticated", "{r:?}");
    }
    // The real one works (the test can tell the difference).
    assert_eq!(s.get(MY_ORG, &s.admin).await.status, 200);
}

async fn org_owner_cannot_see_other_orgs_actions(s: &TestServer) {
    let a = s.create_org("iso-a").await;
    let b = s.create_org("iso-b").await;
    let owner_a = s.create_token(&a, "ORG_OWNER").await;
    let owner_b = s.create_token(&b, "ORG_OWNER").await;
    let b_action = s.create_action(&owner_b, "secret_b").await;
    let a_action = s.create_action(&owner_a, "mine").await;

    // Positive control: A's owner reads its own action.
    let r = s.get(&action_path(&a_action), &owner_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["details"]["resourceOwner"], a.as_str(), "{r:?}");

    // B's action is simply not there for A (ids are per instance, not per org).
    let r = s.get(&action_path(&b_action), &owner_a).await;
    assert_not_found(&r, "QUERY-GEfnb", "GetAction of B's action by A's owner");
    assert_eq!(r.body["message"], "Action not found (QUERY-GEfnb)", "{r:?}");
    let r =
        s.put(&action_path(&b_action), &owner_a, json!({"name": "hijacked", "script": "function hijacked(){}"})).await;
    assert_not_found(&r, "COMMAND-Sfg2t", "UpdateAction of B's action by A's owner");
    let r = s.post(&format!("{}/_deactivate", action_path(&b_action)), &owner_a, json!({})).await;
    assert_not_found(&r, "COMMAND-NRmhu", "DeactivateAction of B's action by A's owner");
    let r = s.post(&format!("{}/_reactivate", action_path(&b_action)), &owner_a, json!({})).await;
    assert_not_found(&r, "COMMAND-Aa22g", "ReactivateAction of B's action by A's owner");
    let r = s.delete(&action_path(&b_action), &owner_a).await;
    assert_not_found(&r, "COMMAND-Dgh4h", "DeleteAction of B's action by A's owner");
    let r = s.connect(&format!("{MGMT}/GetAction"), &owner_a, json!({"id": b_action})).await;
    assert_eq!(r.status, 404, "Connect GetAction of B's action: {r:?}");
    assert_eq!(r.body["code"], "not_found", "{r:?}");
    let r = s.connect(&format!("{MGMT}/DeleteAction"), &owner_a, json!({"id": b_action})).await;
    assert_eq!(r.status, 404, "Connect DeleteAction of B's action: {r:?}");
    // Binding B's action into A's flow: not an action of this org.
    let r = s.post("/management/v1/flows/1/trigger/1", &owner_a, json!({"actionIds": [b_action]})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 9, "{r:?}");
    assert_eq!(r.error_id(), "COMMAND-dg422", "{r:?}");
    // Lists only show the caller's org.
    let r = s.post(&format!("{ACTIONS}/_search"), &owner_a, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_ids(&r), vec![a_action.clone()], "{r:?}");
    let r = s
        .post(&format!("{ACTIONS}/_search"), &owner_a, json!({"queries": [{"actionIdQuery": {"id": b_action}}]}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(result_ids(&r).is_empty(), "B's action leaked through an id query: {r:?}");

    // B's action is untouched.
    let r = s.get(&action_path(&b_action), &owner_b).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["name"], "secret_b", "{r:?}");
    assert_eq!(r.body["action"]["state"], "ACTION_STATE_ACTIVE", "{r:?}");
    assert_eq!(r.body["action"]["details"]["sequence"], "1", "{r:?}");

    // Naming another org (existing, missing, or garbage) in x-zitadel-orgid: 403 AUTH-5mWD2.
    let missing = missing_org_id(s).await;
    let default_org = my_org_id(s, &s.admin).await;
    let mut probes = read_rpcs(&b_action);
    probes.extend(write_rpcs(&b_action));
    probes.push(req("GetMyOrg", Method::GET, MY_ORG, None));
    // A value that is not text (a byte past ASCII) names no org either: it is not ignored.
    let not_text = format!("{b}ä");
    for org in [b.as_str(), missing.as_str(), default_org.as_str(), "not-an-id", not_text.as_str(), "ä"] {
        for p in &probes {
            let r = send(s, p, &owner_a, Some(org)).await;
            assert_denied(&r, &format!("{} by A's owner with x-zitadel-orgid {org}", p.name));
        }
        let r = s
            .call(
                Method::POST,
                &format!("/{MGMT}/GetAction"),
                Some(&owner_a),
                &[("x-zitadel-orgid", org)],
                Some(json!({"id": b_action})),
            )
            .await;
        assert_connect_denied(&r, &format!("Connect GetAction by A's owner with x-zitadel-orgid {org}"));
    }
    // Its own org id in the header is fine.
    let r = s.call_org(Method::GET, &action_path(&a_action), &owner_a, &a, None).await;
    assert_eq!(r.status, 200, "own org in x-zitadel-orgid: {r:?}");

    // None of the denied writes reached B (or A).
    let r = s.post(&format!("{ACTIONS}/_search"), &owner_b, json!({})).await;
    assert_eq!(result_ids(&r), vec![b_action.clone()], "{r:?}");
    let r = s.get(&action_path(&b_action), &owner_b).await;
    assert_eq!(r.body["action"]["name"], "secret_b", "{r:?}");
    assert_eq!(r.body["action"]["details"]["sequence"], "1", "{r:?}");
    let r = s.post(&format!("{ACTIONS}/_search"), &owner_a, json!({})).await;
    assert_eq!(result_ids(&r), vec![a_action], "{r:?}");
}

async fn iam_owner_naming_missing_org_is_403(s: &TestServer) {
    let missing = missing_org_id(s).await;
    let action = s.create_action(&s.admin, "existing").await;
    let mut probes = read_rpcs(&action);
    probes.extend(write_rpcs(&action));
    probes.push(req("GetMyOrg", Method::GET, MY_ORG, None));
    let own = my_org_id(s, &s.admin).await;
    // Bytes past ASCII are not ignored (which would act in the token's own org).
    let not_text = format!("{own}ä");
    for org in [missing.as_str(), "not-an-id", not_text.as_str(), "ä"] {
        for p in &probes {
            let r = send(s, p, &s.admin, Some(org)).await;
            let what = format!("{} by IAM_OWNER with x-zitadel-orgid {org}", p.name);
            assert_eq!(r.status, 403, "{what}: {r:?}");
            assert_eq!(r.code(), 7, "{what}: {r:?}");
            assert_eq!(r.body["message"], NO_ORG, "{what}: {r:?}");
            assert_eq!(r.error_id(), "AUTH-Bs7Ds", "{what}: {r:?}");
        }
        let r = s
            .call(
                Method::POST,
                &format!("/{MGMT}/ListActions"),
                Some(&s.admin),
                &[("x-zitadel-orgid", org)],
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.body["code"], "permission_denied", "{r:?}");
        assert_eq!(r.body["message"], NO_ORG, "{r:?}");
    }
    // The default org's action survived the denied writes.
    let r = s.get(&action_path(&action), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["name"], "existing", "{r:?}");
    assert_eq!(r.body["action"]["state"], "ACTION_STATE_ACTIVE", "{r:?}");
}

async fn iam_owner_acts_in_any_org(s: &TestServer) {
    let a = s.create_org("cross-a").await;
    let owner_a = s.create_token(&a, "ORG_OWNER").await;
    let default_org = my_org_id(s, &s.admin).await;
    assert_ne!(default_org, a);

    // Created through the header: belongs to A.
    let r = s
        .call_org(Method::POST, ACTIONS, &s.admin, &a, Some(json!({"name": "cross", "script": "function cross(){}"})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["resourceOwner"], a.as_str(), "{r:?}");
    let id = r.body["id"].as_str().expect("id").to_string();
    let r = s.get(&action_path(&id), &owner_a).await;
    assert_eq!(r.status, 200, "A's owner sees the action the admin created in A: {r:?}");
    assert_eq!(r.body["action"]["details"]["resourceOwner"], a.as_str(), "{r:?}");
    // Not in the admin's own org.
    let r = s.get(&action_path(&id), &s.admin).await;
    assert_not_found(&r, "QUERY-GEfnb", "admin without header reads A's action");
    let r = s.call_org(Method::GET, &action_path(&id), &s.admin, &a, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The same name is free in the default org (separate namespace).
    let own = s.create_action(&s.admin, "cross").await;
    let r = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(result_ids(&r), vec![own.clone()], "{r:?}");
    let r = s.call_org(Method::POST, &format!("{ACTIONS}/_search"), &s.admin, &a, Some(json!({}))).await;
    assert_eq!(result_ids(&r), vec![id.clone()], "{r:?}");
    // Naming its own org explicitly is the same as no header.
    let r = s.call_org(Method::POST, &format!("{ACTIONS}/_search"), &s.admin, &default_org, Some(json!({}))).await;
    assert_eq!(result_ids(&r), vec![own.clone()], "{r:?}");

    // Flows through the header are A's flows.
    let r = s
        .call_org(Method::POST, "/management/v1/flows/1/trigger/1", &s.admin, &a, Some(json!({"actionIds": [id]})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["resourceOwner"], a.as_str(), "{r:?}");
    let r = s.get("/management/v1/flows/1", &owner_a).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["flow"]["triggerActions"][0]["actions"][0]["id"], id.as_str(), "{r:?}");
    let r = s.get("/management/v1/flows/1", &s.admin).await;
    assert!(r.body["flow"].get("triggerActions").is_none(), "the default org's flow stays empty: {r:?}");
    // Binding the default org's action into A's flow is refused (not an action of A).
    let r = s
        .call_org(Method::POST, "/management/v1/flows/1/trigger/2", &s.admin, &a, Some(json!({"actionIds": [own]})))
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.error_id(), "COMMAND-dg422", "{r:?}");

    // GetMyOrg follows the header.
    let r = s.call_org(Method::GET, MY_ORG, &s.admin, &a, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["org"]["id"], a.as_str(), "{r:?}");
    assert_eq!(r.body["org"]["name"], "cross-a", "{r:?}");

    // Writes and the Connect transport through the header.
    let r = s
        .call_org(
            Method::PUT,
            &action_path(&id),
            &s.admin,
            &a,
            Some(json!({"name": "cross2", "script": "function cross2(){}"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s
        .call(
            Method::POST,
            &format!("/{MGMT}/GetAction"),
            Some(&s.admin),
            &[("x-zitadel-orgid", &a)],
            Some(json!({"id": id})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["name"], "cross2", "{r:?}");
    let r = s.call_org(Method::DELETE, &action_path(&id), &s.admin, &a, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.get(&action_path(&id), &owner_a).await;
    assert_not_found(&r, "QUERY-GEfnb", "deleted through the header");
}

async fn org_owner_can_write_its_own_org(s: &TestServer) {
    let a = s.create_org("owner-org").await;
    let owner = s.create_token(&a, "ORG_OWNER").await;
    let id = s.create_action(&owner, "own").await;
    for p in read_rpcs(&id) {
        let r = send(s, &p, &owner, None).await;
        assert_eq!(r.status, 200, "{} by ORG_OWNER: {r:?}", p.name);
    }
    let r = s.post("/management/v1/flows/1/trigger/1", &owner, json!({"actionIds": [id]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.put(&action_path(&id), &owner, json!({"name": "own2", "script": "function own2(){}"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&format!("{}/_deactivate", action_path(&id)), &owner, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&format!("{}/_reactivate", action_path(&id)), &owner, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post("/management/v1/flows/1/_clear", &owner, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.delete(&action_path(&id), &owner).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.get(MY_ORG, &owner).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["org"]["id"], a.as_str(), "{r:?}");
}

async fn org_viewer_reads_but_never_writes(s: &TestServer) {
    let a = s.create_org("viewer-org").await;
    let owner = s.create_token(&a, "ORG_OWNER").await;
    let viewer = s.create_token(&a, "ORG_VIEWER").await;
    let (victim_id, victim) = s.add_token(&a, "ORG_OWNER").await;
    let id = s.create_action(&owner, "watched").await;
    let r = s.post("/management/v1/flows/1/trigger/1", &owner, json!({"actionIds": [id]})).await;
    assert_eq!(r.status, 200, "{r:?}");

    for p in read_rpcs(&id) {
        let r = send(s, &p, &viewer, None).await;
        assert_eq!(r.status, 200, "{} by ORG_VIEWER: {r:?}", p.name);
    }
    let r = s.get(&action_path(&id), &viewer).await;
    assert_eq!(r.body["action"]["name"], "watched", "{r:?}");
    let r = s.get("/management/v1/flows/1", &viewer).await;
    assert_eq!(r.body["flow"]["triggerActions"][0]["actions"][0]["id"], id.as_str(), "{r:?}");
    let r = s.get(MY_ORG, &viewer).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["org"]["id"], a.as_str(), "{r:?}");

    let mut writes = write_rpcs(&id);
    writes.extend(admin_rpcs(&a, &victim_id));
    for p in &writes {
        let r = send(s, p, &viewer, None).await;
        assert_denied(&r, &format!("{} by ORG_VIEWER", p.name));
    }
    for (method, body) in [
        ("CreateAction", json!({"name": "intruder", "script": "function intruder(){}"})),
        ("UpdateAction", json!({"id": id, "name": "renamed", "script": "function renamed(){}"})),
        ("DeactivateAction", json!({"id": id})),
        ("DeleteAction", json!({"id": id})),
        ("SetTriggerActions", json!({"flowType": "1", "triggerType": "1", "actionIds": []})),
        ("ClearFlow", json!({"type": "1"})),
    ] {
        let r = s.connect(&format!("{MGMT}/{method}"), &viewer, body).await;
        assert_connect_denied(&r, &format!("Connect {method} by ORG_VIEWER"));
    }
    let r = s.connect(&format!("{MGMT}/GetAction"), &viewer, json!({"id": id})).await;
    assert_eq!(r.status, 200, "Connect GetAction by ORG_VIEWER: {r:?}");

    // Nothing changed.
    let r = s.get(&action_path(&id), &owner).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["name"], "watched", "{r:?}");
    assert_eq!(r.body["action"]["state"], "ACTION_STATE_ACTIVE", "{r:?}");
    assert_eq!(r.body["action"]["details"]["sequence"], "1", "{r:?}");
    let r = s.post(&format!("{ACTIONS}/_search"), &owner, json!({})).await;
    assert_eq!(result_ids(&r), vec![id.clone()], "{r:?}");
    let r = s.get("/management/v1/flows/1", &owner).await;
    assert_eq!(r.body["flow"]["triggerActions"][0]["actions"][0]["id"], id.as_str(), "{r:?}");
    assert_eq!(s.get(MY_ORG, &victim).await.status, 200, "the viewer's RemoveToken must not revoke");
    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    assert!(!r.body.to_string().contains("should-not-exist"), "{r:?}");
}

async fn org_executor_cannot_read_actions_or_flows(s: &TestServer) {
    let a = s.create_org("exec-org").await;
    let owner = s.create_token(&a, "ORG_OWNER").await;
    let executor = s.create_token(&a, "ORG_EXECUTOR").await;
    let (victim_id, _) = s.add_token(&a, "ORG_VIEWER").await;
    let id = s.create_action(&owner, "hidden").await;

    let r = s.get(MY_ORG, &executor).await;
    assert_eq!(r.status, 200, "GetMyOrg by ORG_EXECUTOR: {r:?}");
    assert_eq!(r.body["org"]["id"], a.as_str(), "{r:?}");
    assert_eq!(r.body["org"]["name"], "exec-org", "{r:?}");
    let r = s.connect(&format!("{MGMT}/GetMyOrg"), &executor, json!({})).await;
    assert_eq!(r.status, 200, "Connect GetMyOrg by ORG_EXECUTOR: {r:?}");

    let mut all = read_rpcs(&id);
    all.extend(write_rpcs(&id));
    all.extend(admin_rpcs(&a, &victim_id));
    for p in &all {
        let r = send(s, p, &executor, None).await;
        assert_denied(&r, &format!("{} by ORG_EXECUTOR", p.name));
    }
    for (method, body) in [
        ("ListActions", json!({})),
        ("GetAction", json!({"id": id})),
        ("GetFlow", json!({"type": "1"})),
        ("ListFlowTypes", json!({})),
    ] {
        let r = s.connect(&format!("{MGMT}/{method}"), &executor, body).await;
        assert_connect_denied(&r, &format!("Connect {method} by ORG_EXECUTOR"));
    }
    let r = s.get(&action_path(&id), &owner).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["details"]["sequence"], "1", "{r:?}");
}

async fn only_iam_owner_may_call_admin_rpcs(s: &TestServer) {
    let a = s.create_org("adm-org").await;
    let (victim_id, victim) = s.add_token(&a, "ORG_VIEWER").await;
    let tokens_before = token_count(s).await;
    let mut callers = Vec::new();
    for role in ["ORG_OWNER", "ORG_VIEWER", "ORG_EXECUTOR"] {
        callers.push((format!("{role} of A"), s.create_token(&a, role).await));
    }
    callers.push(("ORG_OWNER of the default org".to_string(), s.create_token("default", "ORG_OWNER").await));
    let tokens_before_calls = token_count(s).await;
    assert_ne!(tokens_before, tokens_before_calls);
    for (who, token) in &callers {
        for p in admin_rpcs(&a, &victim_id) {
            let r = send(s, &p, token, None).await;
            assert_denied(&r, &format!("{} by {who}", p.name));
        }
        for (path, body) in [
            (format!("{ADMIN}/ListOrgs"), json!({})),
            (format!("{ADMIN}/AddToken"), json!({"orgId": a, "role": "IAM_OWNER"})),
            (format!("{ADMIN}/ListTokens"), json!({})),
            (format!("{ADMIN}/RemoveToken"), json!({"id": victim_id})),
            (format!("{MGMT}/AddOrg"), json!({"name": "should-not-exist"})),
        ] {
            let r = s.connect(&path, token, body).await;
            assert_connect_denied(&r, &format!("Connect {path} by {who}"));
        }
    }
    // Nothing happened: no org, no token added or removed.
    assert_eq!(token_count(s).await, tokens_before_calls);
    assert_eq!(s.get(MY_ORG, &victim).await.status, 200, "victim token revoked by a denied RemoveToken");
    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    assert!(!r.body.to_string().contains("should-not-exist"), "{r:?}");
    // The IAM_OWNER may (positive control).
    for p in admin_rpcs(&a, &victim_id) {
        let r = send(s, &p, &s.admin, None).await;
        assert_eq!(r.status, 200, "{} by IAM_OWNER: {r:?}", p.name);
    }
}

async fn removed_token_is_rejected_at_once(s: &TestServer) {
    let a = s.create_org("revoke-org").await;
    let (id, token) = s.add_token(&a, "ORG_OWNER").await;
    let (_, other) = s.add_token(&a, "ORG_OWNER").await;
    // Use it first, so that any cache has seen it.
    assert_eq!(s.get(MY_ORG, &token).await.status, 200);
    assert_eq!(s.post(&format!("{ACTIONS}/_search"), &token, json!({})).await.status, 200);

    let r = s.delete(&format!("/admin/v1/tokens/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    // The details name the token.removed event: its sequence and time.
    let d = &r.body["details"];
    let sequence: u64 = d["sequence"].as_str().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{r:?}"));
    assert!(sequence > 1, "{r:?}");
    assert!(d["changeDate"].as_str().is_some_and(|t| t.ends_with('Z')), "{r:?}");
    let (_, _) = s.add_token(&a, "ORG_VIEWER").await;
    let r2 = s.post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": "ORG_VIEWER"})).await;
    assert_eq!(r2.body["details"]["sequence"], (sequence + 2).to_string(), "next instance events: {r2:?}");

    let r = s.get(MY_ORG, &token).await;
    assert_unauthenticated(&r, "GetMyOrg right after RemoveToken");
    let r = s.post(ACTIONS, &token, json!({"name": "late", "script": "function late(){}"})).await;
    assert_unauthenticated(&r, "CreateAction right after RemoveToken");
    let r = s.connect(&format!("{MGMT}/GetMyOrg"), &token, json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body["code"], "unauthenticated", "{r:?}");
    // Another token of the same org keeps working; nothing was created by the revoked one.
    assert_eq!(s.get(MY_ORG, &other).await.status, 200);
    let r = s.post(&format!("{ACTIONS}/_search"), &other, json!({})).await;
    assert!(result_ids(&r).is_empty(), "{r:?}");
    let r = s.post("/admin/v1/tokens/_search", &s.admin, json!({})).await;
    assert!(!result_ids(&r).contains(&id), "removed token still listed: {r:?}");

    // Removing through Connect works the same way.
    let (id2, token2) = s.add_token(&a, "ORG_VIEWER").await;
    assert_eq!(s.get(MY_ORG, &token2).await.status, 200);
    let r = s.connect(&format!("{ADMIN}/RemoveToken"), &s.admin, json!({"id": id2})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_unauthenticated(&s.get(MY_ORG, &token2).await, "GetMyOrg after Connect RemoveToken");
}

async fn add_token_with_past_expiration_is_400(s: &TestServer) {
    let a = s.create_org("exp-org").await;
    let before = token_count(s).await;
    let just_past =
        (chrono::Utc::now() - chrono::Duration::seconds(2)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    // Past dates, and an instant past protobuf's range (year 10000 once the offset is applied),
    // which no answer could print.
    for when in ["2001-01-01T00:00:00Z", just_past.as_str(), "9999-12-31T23:59:59-01:00"] {
        let r = s
            .post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": "ORG_OWNER", "expirationDate": when}))
            .await;
        assert_eq!(r.status, 400, "AddToken expiring {when}: {r:?}");
        assert!([3, 9].contains(&r.code()), "{r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains("ExpirationDate"), "{r:?}");
        assert!(r.body.get("token").is_none(), "{r:?}");
    }
    assert_eq!(token_count(s).await, before, "a token was created despite the 400");
    // A future date is accepted (the test can tell).
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let r =
        s.post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": "ORG_OWNER", "expiration_date": future})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.get(MY_ORG, r.body["token"].as_str().unwrap_or("")).await.status, 200);
}

async fn token_expires_while_in_use(s: &TestServer) {
    let a = s.create_org("soon-org").await;
    let expires = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let r = s
        .post(
            "/admin/v1/tokens",
            &s.admin,
            json!({"orgId": a, "role": "ORG_OWNER", "expirationDate": expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let token = r.body["token"].as_str().expect("token").to_string();
    let id = r.body["id"].as_str().expect("id").to_string();

    // Listed with its expiration date.
    let list = s.post("/admin/v1/tokens/_search", &s.admin, json!({"orgId": a})).await;
    let entry = list.body["result"].as_array().and_then(|r| r.iter().find(|t| t["id"] == id.as_str())).cloned();
    let entry = entry.unwrap_or_else(|| panic!("token {id} not listed: {list:?}"));
    let listed = chrono::DateTime::parse_from_rfc3339(entry["expirationDate"].as_str().unwrap_or(""))
        .unwrap_or_else(|e| panic!("expirationDate not RFC 3339 ({e}): {entry}"));
    assert!((listed.with_timezone(&chrono::Utc) - expires).num_milliseconds().abs() <= 1, "{entry}");

    let r = s.get(MY_ORG, &token).await;
    assert_eq!(r.status, 200, "a token valid for 1.5 s more is refused: {r:?}");

    // Poll (bounded) until it is refused; it must stop working within 1 s after the expiration.
    let refused = loop {
        let r = s.get(MY_ORG, &token).await;
        let now = chrono::Utc::now();
        if r.status == 401 {
            assert!(
                now >= expires - chrono::Duration::milliseconds(50),
                "refused before it expired (at {now}, expires {expires})"
            );
            break r;
        }
        assert_eq!(r.status, 200, "{r:?}");
        assert!(now < expires + chrono::Duration::seconds(1), "still accepted at {now}, expired at {expires}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_unauthenticated(&refused, "expired token");
    assert_unauthenticated(
        &s.post(&format!("{ACTIONS}/_search"), &token, json!({})).await,
        "expired token, ListActions",
    );
    let r = s.connect(&format!("{MGMT}/GetMyOrg"), &token, json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
}

async fn list_tokens_hides_secrets_and_filters_by_org(s: &TestServer) {
    let a = s.create_org("tok-a").await;
    let b = s.create_org("tok-b").await;
    let r = s
        .post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": "ORG_OWNER", "description": "deploy bot"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let a_id = r.body["id"].as_str().expect("id").to_string();
    let a_secret = r.body["token"].as_str().expect("token").to_string();
    assert!(a_secret.len() >= 32, "token too short for 32 bytes of entropy: {a_secret:?}");
    // The role is an enum: its number works like its name (4 = ORG_EXECUTOR); 0 and 5 are no role.
    let r = s.post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": 4})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let (a2_id, a2_secret) =
        (r.body["id"].as_str().unwrap().to_string(), r.body["token"].as_str().unwrap().to_string());
    // As any enum: the exact name or the number, not another spelling of either.
    for bad in [
        json!(0),
        json!(5),
        json!("TOKEN_ROLE_UNSPECIFIED"),
        json!("iam_owner"),
        json!("Org_Owner"),
        json!("04"),
        json!("+2"),
        json!(" 1"),
        json!("1"),
        json!("4"),
    ] {
        let r = s.post("/admin/v1/tokens", &s.admin, json!({"orgId": a, "role": bad})).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{bad}: {r:?}");
    }
    let (b_id, b_secret) = s.add_token(&b, "ORG_VIEWER").await;
    let secrets = [a_secret.as_str(), a2_secret.as_str(), b_secret.as_str(), s.admin.as_str()];

    let check_no_secrets = |r: &Reply, what: &str| {
        let text = r.body.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "{what} leaks a token value: {text}");
        }
        for t in r.body["result"].as_array().into_iter().flatten() {
            assert!(t.get("token").is_none(), "{what}: {t}");
        }
    };

    let all = s.post("/admin/v1/tokens/_search", &s.admin, json!({})).await;
    assert_eq!(all.status, 200, "{all:?}");
    check_no_secrets(&all, "ListTokens");
    let ids = result_ids(&all);
    for id in [&a_id, &a2_id, &b_id] {
        assert!(ids.contains(id), "{id} missing from {all:?}");
    }
    assert!(ids.len() >= 4, "the bootstrap token is listed too: {all:?}");
    assert_eq!(all.body["details"]["totalResult"], ids.len().to_string(), "{all:?}");
    let entry = all.body["result"]
        .as_array()
        .and_then(|r| r.iter().find(|t| t["id"] == a_id.as_str()))
        .cloned()
        .expect("entry");
    assert_eq!(entry["orgId"], a.as_str(), "{entry}");
    assert_eq!(entry["role"], "ORG_OWNER", "{entry}");
    assert_eq!(entry["description"], "deploy bot", "{entry}");
    assert!(entry["details"].is_object(), "{entry}");
    let numbered = all.body["result"].as_array().unwrap().iter().find(|t| t["id"] == a2_id.as_str()).unwrap();
    assert_eq!(numbered["role"], "ORG_EXECUTOR", "role 4: {numbered}");

    for (body, what) in [(json!({"orgId": a}), "orgId"), (json!({"org_id": a}), "org_id")] {
        let only_a = s.post("/admin/v1/tokens/_search", &s.admin, body).await;
        assert_eq!(only_a.status, 200, "{only_a:?}");
        check_no_secrets(&only_a, "ListTokens filtered");
        let mut ids = result_ids(&only_a);
        ids.sort();
        let mut expected = vec![a_id.clone(), a2_id.clone()];
        expected.sort();
        assert_eq!(ids, expected, "filter by {what}: {only_a:?}");
        for t in only_a.body["result"].as_array().into_iter().flatten() {
            assert_eq!(t["orgId"], a.as_str(), "{t}");
        }
        assert_eq!(only_a.body["details"]["totalResult"], "2", "{only_a:?}");
    }
    let only_b = s.post("/admin/v1/tokens/_search", &s.admin, json!({"orgId": b})).await;
    assert_eq!(result_ids(&only_b), vec![b_id.clone()], "{only_b:?}");

    let c = s.connect(&format!("{ADMIN}/ListTokens"), &s.admin, json!({"orgId": b})).await;
    assert_eq!(c.status, 200, "{c:?}");
    check_no_secrets(&c, "Connect ListTokens");
    assert_eq!(result_ids(&c), vec![b_id], "{c:?}");
}

async fn add_org_name_rules(s: &TestServer) {
    for (name, what) in [
        (json!(""), "empty"),
        (json!("x".repeat(201)), "201 ASCII chars"),
        (json!("ä".repeat(201)), "201 non-ASCII chars"),
    ] {
        let r = s.post("/management/v1/orgs", &s.admin, json!({"name": name})).await;
        assert_eq!(r.status, 400, "AddOrg {what}: {r:?}");
        assert_eq!(r.code(), 3, "AddOrg {what}: {r:?}");
    }
    let r = s.post("/management/v1/orgs", &s.admin, json!({})).await;
    assert_eq!(r.status, 400, "AddOrg without a name: {r:?}");
    assert_eq!(r.code(), 3, "{r:?}");

    // 1 and 200 characters (200 two-byte characters: runes, not bytes) are fine.
    for name in ["q".to_string(), "ö".repeat(200), "y".repeat(200)] {
        let r = s.post("/management/v1/orgs", &s.admin, json!({"name": name})).await;
        assert_eq!(r.status, 200, "AddOrg {} chars: {r:?}", name.chars().count());
        let id = r.body["id"].as_str().expect("id");
        assert!(!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()), "id is a decimal string: {r:?}");
        assert!(r.body["details"].is_object(), "{r:?}");
    }

    let acme = s.create_org("Acme Corp").await;
    for dup in ["Acme Corp", "ACME CORP", "acme corp", "aCmE cOrP"] {
        let r = s.post("/management/v1/orgs", &s.admin, json!({"name": dup})).await;
        assert_eq!(r.status, 409, "AddOrg {dup:?} after \"Acme Corp\": {r:?}");
        assert_eq!(r.code(), 6, "{r:?}");
    }
    let r = s.connect(&format!("{MGMT}/AddOrg"), &s.admin, json!({"name": "ACME corp"})).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["code"], "already_exists", "{r:?}");
    s.create_org("Äpfel GmbH").await;
    let r = s.post("/management/v1/orgs", &s.admin, json!({"name": "äPFEL gmbh"})).await;
    assert_eq!(r.status, 409, "Unicode case folding: {r:?}");
    // Different names are different orgs.
    s.create_org("Acme Corp 2").await;

    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    let acmes: Vec<&Value> = r.body["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["name"].as_str().unwrap_or("").eq_ignore_ascii_case("acme corp"))
        .collect();
    assert_eq!(acmes.len(), 1, "{r:?}");
    assert_eq!(acmes[0]["id"], acme.as_str());
    assert_eq!(acmes[0]["name"], "Acme Corp");

    // Surrounding white space is not part of a name (upstream trims it): " Acme Corp " is the
    // same name, a name of only white space is none, and a new name is stored trimmed.
    let r = s.post("/management/v1/orgs", &s.admin, json!({"name": " Acme Corp\t"})).await;
    assert_eq!(r.status, 409, "{r:?}");
    for blank in [" ", "\t \n"] {
        let r = s.post("/management/v1/orgs", &s.admin, json!({"name": blank})).await;
        assert_eq!(r.status, 400, "{blank:?}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains("AddOrgRequest.Name"), "{r:?}");
    }
    let trimmed = s.create_org("  Spaced Org ").await;
    let r = s.call_org(Method::GET, "/management/v1/orgs/me", &s.admin, &trimmed, None).await;
    assert_eq!(r.body["org"]["name"], "Spaced Org", "{r:?}");
}

#[track_caller]
fn assert_org_shape(r: &Reply, id: &str, name: &str) {
    assert_eq!(r.status, 200, "{r:?}");
    let top: Vec<&String> = r.body.as_object().expect("object").keys().collect();
    assert_eq!(top, vec!["org"], "{r:?}");
    let org = r.body["org"].as_object().expect("org object");
    let mut keys: Vec<&str> = org.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["details", "id", "name", "state"], "{r:?}");
    assert_eq!(org["id"], id, "{r:?}");
    assert_eq!(org["name"], name, "{r:?}");
    assert_eq!(org["state"], "ORG_STATE_ACTIVE", "{r:?}");
    assert!(org["details"].is_object(), "{r:?}");
}

async fn get_my_org_shape(s: &TestServer) {
    let a = s.create_org("Shape Org").await;
    let default_org = my_org_id(s, &s.admin).await;
    assert!(default_org.bytes().all(|b| b.is_ascii_digit()), "{default_org}");
    let r = s.get(MY_ORG, &s.admin).await;
    let default_name = r.body["org"]["name"].as_str().unwrap_or("").to_string();
    assert!(!default_name.is_empty(), "{r:?}");
    assert_org_shape(&r, &default_org, &default_name);
    for role in ["ORG_OWNER", "ORG_VIEWER", "ORG_EXECUTOR", "IAM_OWNER"] {
        let token = s.create_token(&a, role).await;
        assert_org_shape(&s.get(MY_ORG, &token).await, &a, "Shape Org");
        let c = s.connect(&format!("{MGMT}/GetMyOrg"), &token, json!({})).await;
        assert_org_shape(&c, &a, "Shape Org");
    }
    assert_org_shape(&s.call_org(Method::GET, MY_ORG, &s.admin, &a, None).await, &a, "Shape Org");
}

async fn list_orgs_lists_every_org(s: &TestServer) {
    let default_org = my_org_id(s, &s.admin).await;
    let a = s.create_org("list-a").await;
    let b = s.create_org("list-b").await;
    let r = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let ids = result_ids(&r);
    for id in [&default_org, &a, &b] {
        assert!(ids.contains(id), "{id} not in {r:?}");
    }
    assert_eq!(ids.len(), 3, "{r:?}");
    assert_eq!(r.body["details"]["totalResult"], "3", "{r:?}");
    for org in r.body["result"].as_array().into_iter().flatten() {
        assert_eq!(org["state"], "ORG_STATE_ACTIVE", "{org}");
        assert!(org["name"].as_str().is_some_and(|n| !n.is_empty()), "{org}");
        assert!(org["details"].is_object(), "{org}");
    }
    let named = |n: &str| r.body["result"].as_array().into_iter().flatten().find(|o| o["name"] == n).cloned();
    assert_eq!(named("list-a").expect("list-a")["id"], a.as_str());
    assert_eq!(named("list-b").expect("list-b")["id"], b.as_str());

    let page = s.post("/admin/v1/orgs/_search", &s.admin, json!({"query": {"limit": 1}})).await;
    assert_eq!(page.status, 200, "{page:?}");
    assert_eq!(result_ids(&page).len(), 1, "{page:?}");
    assert_eq!(page.body["details"]["totalResult"], "3", "{page:?}");
    let c = s.connect(&format!("{ADMIN}/ListOrgs"), &s.admin, json!({})).await;
    assert_eq!(c.status, 200, "{c:?}");
    assert_eq!(result_ids(&c).len(), 3, "{c:?}");
}

/// ListOrgs' queries (ZITADEL's OrgQuery: name, domain, state, id; all must match) and its
/// sorting column, on both transports; a query with no kind or two is 400.
async fn list_orgs_queries_and_sorting(s: &TestServer) {
    let default_org = my_org_id(s, &s.admin).await;
    let alpha = s.create_org("Alpha Team").await;
    let beta = s.create_org("beta team").await;
    let search = |body: Value| async move {
        let r = s.post("/admin/v1/orgs/_search", &s.admin, body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {r:?}");
        let c = s.connect(&format!("{ADMIN}/ListOrgs"), &s.admin, body.clone()).await;
        for field in ["result", "sortingColumn"] {
            assert_eq!(c.body.get(field), r.body.get(field), "Connect and REST agree on {body}");
        }
        assert_eq!(c.body["details"]["totalResult"], r.body["details"]["totalResult"], "{body}");
        (result_ids(&r), r.body["details"]["totalResult"].as_str().unwrap_or("0").to_string(), r.body)
    };
    let name = |name: &str, method: &str| json!({"queries": [{"nameQuery": {"name": name, "method": method}}]});
    assert_eq!(search(name("beta team", "TEXT_QUERY_METHOD_EQUALS")).await.0, [beta.as_str()]);
    assert!(search(name("Beta Team", "TEXT_QUERY_METHOD_EQUALS")).await.0.is_empty());
    assert_eq!(search(name("BETA TEAM", "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE")).await.0, [beta.as_str()]);
    let (ids, total, _) = search(name("TEAM", "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE")).await;
    assert_eq!((ids.len(), total.as_str()), (2, "2"));
    assert_eq!(search(name("Alp", "TEXT_QUERY_METHOD_STARTS_WITH")).await.0, [alpha.as_str()]);
    assert_eq!(
        search(json!({"queries": [{"name_query": {"name": "default", "method": 1}}]})).await.0,
        [default_org.as_str()]
    );
    assert_eq!(search(json!({"queries": [{"idQuery": {"id": alpha}}]})).await.0, [alpha.as_str()]);
    assert!(search(json!({"queries": [{"idQuery": {"id": "no-such-id"}}]})).await.0.is_empty());
    // Every organization is active; actionsd's organizations have no domains.
    assert_eq!(search(json!({"queries": [{"stateQuery": {"state": "ORG_STATE_ACTIVE"}}]})).await.0.len(), 3);
    assert!(search(json!({"queries": [{"stateQuery": {"state": "ORG_STATE_REMOVED"}}]})).await.0.is_empty());
    assert!(search(json!({"queries": [{"domainQuery": {"domain": "example.com"}}]})).await.0.is_empty());
    // All must match.
    let both = json!({"queries": [{"nameQuery": {"name": "team", "method": "TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE"}}, {"idQuery": {"id": beta}}]});
    assert_eq!(search(both).await.0, [beta.as_str()]);
    // By name (bytewise: upper case first), either direction (descending unless `asc`, as every
    // list); the answer names its column.
    let (ids, _, body) = search(json!({"sortingColumn": "ORG_FIELD_NAME_NAME", "query": {"asc": true}})).await;
    assert_eq!(ids, [alpha.clone(), default_org.clone(), beta.clone()]);
    assert_eq!(body["sortingColumn"], "ORG_FIELD_NAME_NAME", "{body}");
    let (ids, _, _) = search(json!({"sorting_column": 1, "query": {"limit": 2}})).await;
    assert_eq!(ids, [beta.clone(), default_org.clone()]);
    let (_, _, body) = search(json!({})).await;
    assert!(body.get("sortingColumn").is_none(), "unspecified is omitted: {body}");
    for (body, why) in [
        (json!({"queries": [{}]}), "value is required"),
        (json!({"queries": [{"idQuery": {"id": "1"}, "stateQuery": {}}]}), "only one of the query kinds may be set"),
    ] {
        let r = s.post("/admin/v1/orgs/_search", &s.admin, body.clone()).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{body}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains(&format!("ListOrgsRequest.Queries[0]: embedded message failed validation | caused by: invalid OrgQuery.Query: {why}")), "{r:?}");
    }
}

/// A list's `totalResult` and its page come from one snapshot: while orgs, tokens and run
/// records are written, a list asked for more rows than exist never counts fewer or more rows
/// than it returns.
async fn list_totals_agree_with_their_pages_while_writing(s: &TestServer) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let action = s.create_action(&s.admin, "counted").await;
    let r = s.post("/management/v1/flows/2/trigger/4", &s.admin, json!({"actionIds": [action]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let org = my_org_id(s, &s.admin).await;
    let done = AtomicBool::new(false);
    let writer = |n: usize| {
        let (done, org) = (&done, &org);
        async move {
            let mut i = 0;
            while !done.load(Ordering::Relaxed) {
                i += 1;
                match n {
                    0 => {
                        s.create_org(&format!("snap-{i}")).await;
                    }
                    1 => {
                        s.add_token(org, "ORG_VIEWER").await;
                    }
                    _ => {
                        let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
                        assert_eq!(r.status, 200, "{r:?}");
                    }
                }
            }
        }
    };
    let reader = async {
        let lists = [
            ("/admin/v1/orgs/_search", json!({"query": {"limit": 1000}})),
            ("/admin/v1/tokens/_search", json!({"query": {"limit": 1000}})),
            ("/management/v1/runs/_search", json!({"query": {"limit": 100}})),
        ];
        for round in 0..60 {
            for (path, body) in &lists {
                let r = s.post(path, &s.admin, body.clone()).await;
                assert_eq!(r.status, 200, "{r:?}");
                let returned = r.body["result"].as_array().map_or(0, Vec::len);
                let total: usize = r.body["details"]["totalResult"].as_str().unwrap_or("0").parse().unwrap();
                let limit = body["query"]["limit"].as_u64().unwrap() as usize;
                assert_eq!(
                    returned,
                    total.min(limit),
                    "round {round}, {path}: totalResult {total} but {returned} rows (limit {limit})"
                );
            }
        }
        done.store(true, Ordering::Relaxed);
    };
    futures::join!(reader, writer(0), writer(1), writer(2));
}

async fn admin_rpcs_ignore_org_header(s: &TestServer) {
    let a = s.create_org("hdr-a").await;
    let b = s.create_org("hdr-b").await;
    let missing = missing_org_id(s).await;
    for header in [missing.as_str(), b.as_str(), "not-an-id"] {
        let r = s.call_org(Method::POST, "/admin/v1/orgs/_search", &s.admin, header, Some(json!({}))).await;
        assert_eq!(r.status, 200, "ListOrgs with x-zitadel-orgid {header}: {r:?}");
        assert_eq!(result_ids(&r).len(), 3, "{r:?}");

        let r = s
            .call_org(
                Method::POST,
                "/admin/v1/tokens",
                &s.admin,
                header,
                Some(json!({"orgId": a, "role": "ORG_VIEWER"})),
            )
            .await;
        assert_eq!(r.status, 200, "AddToken with x-zitadel-orgid {header}: {r:?}");
        let id = r.body["id"].as_str().expect("id").to_string();
        let token = r.body["token"].as_str().expect("token").to_string();
        // The token belongs to the org in the body, not the header.
        assert_eq!(my_org_id(s, &token).await, a);

        let r = s.call_org(Method::POST, "/admin/v1/tokens/_search", &s.admin, header, Some(json!({"orgId": a}))).await;
        assert_eq!(r.status, 200, "ListTokens with x-zitadel-orgid {header}: {r:?}");
        assert!(result_ids(&r).contains(&id), "{r:?}");

        let r = s.call_org(Method::DELETE, &format!("/admin/v1/tokens/{id}"), &s.admin, header, None).await;
        assert_eq!(r.status, 200, "RemoveToken with x-zitadel-orgid {header}: {r:?}");
        assert_unauthenticated(&s.get(MY_ORG, &token).await, "token removed with a header");

        let r = s
            .call(
                Method::POST,
                &format!("/{ADMIN}/ListOrgs"),
                Some(&s.admin),
                &[("x-zitadel-orgid", header)],
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "Connect ListOrgs with x-zitadel-orgid {header}: {r:?}");
    }
}

/// Expirations that earlier versions stored past year 9999 (`9999-12-31T23:59:59-01:00`) are
/// brought into the printable range by migration 17: ListTokens then answers on every transport.
async fn out_of_range_expirations_of_earlier_versions_are_brought_into_range(s: &TestServer) {
    use migration::m20261207_000017_timestamps_in_range as in_range;
    use migration::{MigrationTrait, SchemaManager};
    use sea_orm::ConnectionTrait;
    let r = s
        .post(
            "/admin/v1/tokens",
            &s.admin,
            json!({"orgId": "default", "role": "ORG_VIEWER", "expirationDate": "2099-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    // What an earlier version stored for 9999-12-31T23:59:59-01:00: 10000-01-01T00:59:59Z.
    let db = &s.state.store.db;
    db.execute_unprepared(&format!("UPDATE tokens SET expires_at = 253402304399000000 WHERE id = {id}")).await.unwrap();
    in_range::Migration.up(&SchemaManager::new(db)).await.expect("the migration runs");
    let r = s.post("/admin/v1/tokens/_search", &s.admin, json!({})).await;
    let token = r.body["result"].as_array().unwrap().iter().find(|t| t["id"] == id.as_str()).cloned().unwrap();
    assert_eq!(token["expirationDate"], "9999-12-31T23:59:59.999999Z", "{token}");
    let proto = s
        .client
        .post(format!("{}/zitadel.admin.v1.AdminService/ListTokens", s.base))
        .bearer_auth(&s.admin)
        .header("content-type", "application/proto")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(proto.status(), 200, "ListTokens over Connect proto");
}

backend_tests!(
    out_of_range_expirations_of_earlier_versions_are_brought_into_range,
    missing_or_malformed_authorization_is_401,
    unknown_token_is_401,
    org_owner_cannot_see_other_orgs_actions,
    iam_owner_naming_missing_org_is_403,
    iam_owner_acts_in_any_org,
    org_owner_can_write_its_own_org,
    org_viewer_reads_but_never_writes,
    org_executor_cannot_read_actions_or_flows,
    only_iam_owner_may_call_admin_rpcs,
    removed_token_is_rejected_at_once,
    add_token_with_past_expiration_is_400,
    token_expires_while_in_use,
    list_tokens_hides_secrets_and_filters_by_org,
    add_org_name_rules,
    get_my_org_shape,
    list_orgs_lists_every_org,
    list_orgs_queries_and_sorting,
    admin_rpcs_ignore_org_header,
    list_totals_agree_with_their_pages_while_writing,
);

/// An empty `ACTIONSD_ADMIN_TOKEN` is no token: the bootstrap token is generated and written to
/// its file as when the setting is absent (a token of no characters could never be sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_admin_token_setting_is_unset() {
    use sea_orm::EntityTrait;
    for empty in ["", "  "] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let mut config = crate::common::test_config(&url, dir.path());
        config.admin_token = Some(empty.to_string());
        let state = actionsd::build_state(config).await.expect("server state");
        let written = std::fs::read_to_string(dir.path().join("admin.token")).expect("the token file is written");
        assert!(written.trim().len() >= 32, "{written:?}");
        let tokens = entity::token::Entity::find().all(&state.store.db).await.unwrap();
        assert_eq!(tokens.len(), 1, "only the generated token: {tokens:?}");
    }
}

/// Two processes starting on one new SQLite database at the same moment (`serve` and a one-shot
/// `token create` of a provisioning script) take turns through the migrations, the key file and
/// the bootstrap: both start, both seal with the key the file holds, one bootstrap token is made,
/// and a later start opens what either stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_first_starts_at_once_share_one_key_file() {
    use sea_orm::EntityTrait;
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("race.db");
        let url = format!("sqlite://{}?mode=rwc", db.display());
        let config = || {
            let mut c = crate::common::test_config(&url, dir.path());
            c.encryption_key = None;
            c.admin_token = None;
            c
        };
        let (a, b) =
            tokio::join!(actionsd::build_state_for_command(config()), actionsd::build_state_for_command(config()));
        let file = std::fs::read_to_string(dir.path().join("race.db.key")).expect("key file");
        // The two starts take turns on the file (its start lock): both start, with the file's key.
        for (which, state) in [("first", a), ("second", b)] {
            let state = state.unwrap_or_else(|e| panic!("round {round}: the {which} start: {e:#}"));
            assert_eq!(
                state.config.encryption_key.as_deref(),
                Some(file.trim()),
                "round {round}: the {which} start's key is the file's"
            );
        }
        let tokens = entity::token::Entity::find()
            .all(&actionsd::build_state_for_command(config()).await.expect("a third start").store.db)
            .await
            .unwrap();
        assert_eq!(tokens.len(), 1, "round {round}: one bootstrap token: {tokens:?}");
        let again = actionsd::build_state_for_command(config()).await.expect("a later start opens the database");
        assert_eq!(again.config.encryption_key.as_deref(), Some(file.trim()));
    }
}
