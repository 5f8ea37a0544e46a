//! Every ManagementService and AdminService RPC through Connect unary JSON
//! (`POST /<package.Service>/<Method>`), compared with the REST gateway, and Connect error bodies
//! (README, "API documentation").

use crate::common;

use common::{Reply, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const MGMT: &str = "zitadel.management.v1.ManagementService";
const ADMIN: &str = "zitadel.admin.v1.AdminService";

async fn mgmt(s: &TestServer, method: &str, token: &str, body: Value) -> Reply {
    s.connect(&format!("{MGMT}/{method}"), token, body).await
}

async fn admin(s: &TestServer, method: &str, token: &str, body: Value) -> Reply {
    s.connect(&format!("{ADMIN}/{method}"), token, body).await
}

/// Connect call with extra headers.
async fn mgmt_h(s: &TestServer, method: &str, token: Option<&str>, headers: &[(&str, &str)], body: Value) -> Reply {
    s.call(Method::POST, &format!("/{MGMT}/{method}"), token, headers, Some(body)).await
}

#[track_caller]
fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{r:?}");
    r.body.clone()
}

/// A Connect error: HTTP status, `{"code": "<connect code>", "message": "<exact message>"}`.
#[track_caller]
fn assert_connect_err(r: &Reply, status: u16, code: &str, message: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_eq!(r.body["code"], code, "Connect codes are strings: {r:?}");
    assert_eq!(r.body["message"], message, "{r:?}");
}

/// A Connect error whose message names `field` (ignoring case and `_`).
#[track_caller]
fn assert_connect_invalid_names(r: &Reply, field: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "invalid_argument", "{r:?}");
    let norm = |s: &str| s.to_lowercase().replace('_', "");
    assert!(norm(r.body["message"].as_str().unwrap_or("")).contains(&norm(field)), "should name {field}: {r:?}");
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// List responses differ only in `details.viewTimestamp` (now).
fn without_view_timestamp(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(d) = v.get_mut("details").and_then(Value::as_object_mut) {
        assert!(d.remove("viewTimestamp").is_some(), "viewTimestamp present");
    }
    v
}

// ---------------------------------------------------------------------------------------------

async fn connect_action_rpcs_match_gateway(s: &TestServer) {
    let org = ok(&s.get("/management/v1/orgs/me", &s.admin).await)["org"]["id"].as_str().unwrap().to_string();

    // CreateAction
    let c = ok(&mgmt(
        s,
        "CreateAction",
        &s.admin,
        json!({"name": "viaConnect", "script": "function viaConnect(){}", "timeout": "2.5s", "allowed_to_fail": true}),
    )
    .await);
    assert_eq!(keys(&c), ["details", "id", "version"], "{c}");
    assert_eq!(keys(&c["details"]), ["creationDate", "resourceOwner", "sequence"]);
    assert_eq!(c["details"]["sequence"], "1");
    assert_eq!(c["details"]["resourceOwner"], org.as_str());
    let id = c["id"].as_str().unwrap().to_string();
    let gw = ok(&s.post("/management/v1/actions", &s.admin, json!({"name": "viaGateway", "script": "x"})).await);
    assert_eq!(keys(&gw), keys(&c));
    assert_eq!(keys(&gw["details"]), keys(&c["details"]));

    // GetAction: identical to the gateway
    let g = ok(&mgmt(s, "GetAction", &s.admin, json!({"id": id})).await);
    assert_eq!(g, ok(&s.get(&format!("/management/v1/actions/{id}"), &s.admin).await));
    assert_eq!(g["action"]["timeout"], "2.500s");
    assert_eq!(g["action"]["allowedToFail"], true);
    assert_eq!(g["action"]["name"], "viaConnect");

    // UpdateAction: the id is a body field
    let u = ok(&mgmt(s, "UpdateAction", &s.admin, json!({"id": id, "name": "renamed", "script": "y"})).await);
    assert_eq!(keys(&u), ["details", "version"], "{u}");
    assert_eq!(keys(&u["details"]), ["creationDate", "resourceOwner", "sequence"]);
    assert_eq!(u["details"]["sequence"], "2");
    let g = ok(&mgmt(s, "GetAction", &s.admin, json!({"id": id})).await);
    assert_eq!(g["action"]["name"], "renamed");
    assert_eq!(g["action"]["timeout"], "20s");
    assert!(g["action"].get("allowedToFail").is_none(), "{g}");

    // DeactivateAction / ReactivateAction
    let d = ok(&mgmt(s, "DeactivateAction", &s.admin, json!({"id": id})).await);
    assert_eq!(keys(&d), ["details"]);
    assert_eq!(keys(&d["details"]), ["creationDate", "resourceOwner", "sequence"]);
    assert_eq!(d["details"]["sequence"], "3");
    assert_eq!(
        ok(&mgmt(s, "GetAction", &s.admin, json!({"id": id})).await)["action"]["state"],
        "ACTION_STATE_INACTIVE"
    );
    let r = ok(&mgmt(s, "ReactivateAction", &s.admin, json!({"id": id})).await);
    assert_eq!(r["details"]["sequence"], "4");
    assert_eq!(keys(&r["details"]), ["creationDate", "resourceOwner", "sequence"]);

    // ListActions: same as the gateway (up to viewTimestamp)
    let query = json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"asc": true, "offset": "0", "limit": 10}});
    let lc = ok(&mgmt(s, "ListActions", &s.admin, query.clone()).await);
    let lg = ok(&s.post("/management/v1/actions/_search", &s.admin, query).await);
    assert_eq!(without_view_timestamp(&lc), without_view_timestamp(&lg));
    assert_eq!(lc["details"]["totalResult"], "2");
    assert_eq!(lc["sortingColumn"], "ACTION_FIELD_NAME_NAME");
    let names: Vec<&str> = lc["result"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["renamed", "viaGateway"]);
    // an empty Connect body is {}
    let r = s.call_raw(Method::POST, &format!("/{MGMT}/ListActions"), Some(&s.admin), Vec::new()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["totalResult"], "2");

    // DeleteAction
    let del = ok(&mgmt(s, "DeleteAction", &s.admin, json!({"id": id})).await);
    assert_eq!(del, json!({}));
    assert_eq!(s.get(&format!("/management/v1/actions/{id}"), &s.admin).await.status, 404);
}

async fn connect_flow_rpcs_match_gateway(s: &TestServer) {
    let a1 = s.create_action(&s.admin, "a1").await;
    let a2 = s.create_action(&s.admin, "a2").await;

    // ListFlowTypes
    let c = ok(&mgmt(s, "ListFlowTypes", &s.admin, json!({})).await);
    assert_eq!(c, ok(&s.post("/management/v1/flows/types/_search", &s.admin, json!({})).await));
    let ids: Vec<&str> = c["result"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2", "3", "4"]);
    assert_eq!(
        c["result"][1]["name"],
        json!({"key": "Action.Flow.Type.CustomiseToken", "localizedMessage": "Complement Token"})
    );
    let de = ok(&mgmt_h(s, "ListFlowTypes", Some(&s.admin), &[("accept-language", "de")], json!({})).await);
    assert_eq!(de["result"][1]["name"]["localizedMessage"], "Token ergänzen");

    // ListFlowTriggerTypes
    let c = ok(&mgmt(s, "ListFlowTriggerTypes", &s.admin, json!({"type": "2"})).await);
    assert_eq!(c, ok(&s.post("/management/v1/flows/2/triggers/_search", &s.admin, json!({})).await));
    let ids: Vec<&str> = c["result"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["4", "5"]);

    // GetFlow of an empty flow
    let c = ok(&mgmt(s, "GetFlow", &s.admin, json!({"type": "2"})).await);
    assert_eq!(c, ok(&s.get("/management/v1/flows/2", &s.admin).await));
    assert_eq!(c["flow"]["details"], json!({}));
    assert!(c["flow"].get("triggerActions").is_none());

    // SetTriggerActions: flowType, triggerType and actionIds in the body
    let set = ok(&mgmt(
        s,
        "SetTriggerActions",
        &s.admin,
        json!({"flowType": "2", "triggerType": "4", "actionIds": [a2, a1]}),
    )
    .await);
    assert_eq!(keys(&set), ["details"], "{set}");
    assert_eq!(keys(&set["details"]), ["creationDate", "resourceOwner", "sequence"]);
    let set = ok(&mgmt(
        s,
        "SetTriggerActions",
        &s.admin,
        json!({"flowType": "FLOW_TYPE_EXTERNAL_AUTHENTICATION", "triggerType": "TRIGGER_TYPE_PRE_CREATION", "actionIds": [a1]}),
    )
    .await);
    assert_eq!(keys(&set), ["details"], "{set}");

    // GetFlow with triggers: identical to the gateway
    let c = ok(&mgmt(s, "GetFlow", &s.admin, json!({"type": "2"})).await);
    assert_eq!(c, ok(&s.get("/management/v1/flows/2", &s.admin).await));
    assert_eq!(c["flow"]["triggerActions"][0]["triggerType"]["id"], "4");
    assert_eq!(c["flow"]["triggerActions"][0]["actions"][0]["id"], a2.as_str());
    assert_eq!(c["flow"]["triggerActions"][0]["actions"][1]["id"], a1.as_str());
    let c = ok(&mgmt(s, "GetFlow", &s.admin, json!({"type": "FLOW_TYPE_EXTERNAL_AUTHENTICATION"})).await);
    assert_eq!(c, ok(&s.get("/management/v1/flows/1", &s.admin).await));
    assert_eq!(c["flow"]["type"]["id"], "1");
    assert_eq!(c["flow"]["triggerActions"][0]["triggerType"]["id"], "2");

    // ClearFlow
    let clr = ok(&mgmt(s, "ClearFlow", &s.admin, json!({"type": "2"})).await);
    assert_eq!(keys(&clr), ["details"]);
    assert_eq!(keys(&clr["details"]), ["changeDate", "resourceOwner", "sequence"]);
    let c = ok(&mgmt(s, "GetFlow", &s.admin, json!({"type": "2"})).await);
    assert!(c["flow"].get("triggerActions").is_none(), "{c}");
    assert_connect_err(
        &mgmt(s, "ClearFlow", &s.admin, json!({"type": "2"})).await,
        400,
        "failed_precondition",
        "Flow is already empty (COMMAND-DgGh3)",
    );
}

async fn connect_org_and_admin_rpcs(s: &TestServer) {
    // AddOrg (ManagementService)
    let added = ok(&mgmt(s, "AddOrg", &s.admin, json!({"name": "Connect Org"})).await);
    assert_eq!(keys(&added), ["details", "id"], "{added}");
    let org = added["id"].as_str().unwrap().to_string();
    let gw = ok(&s.post("/management/v1/orgs", &s.admin, json!({"name": "Gateway Org"})).await);
    assert_eq!(keys(&gw), keys(&added));
    assert_eq!(keys(&gw["details"]), keys(&added["details"]));
    let r = mgmt(s, "AddOrg", &s.admin, json!({"name": "connect org"})).await;
    assert_eq!(r.status, 409, "org names are unique case-insensitively: {r:?}");
    assert_eq!(r.body["code"], "already_exists");

    // GetMyOrg, with the org chosen by header
    let h = [("x-zitadel-orgid", org.as_str())];
    let me = ok(&mgmt_h(s, "GetMyOrg", Some(&s.admin), &h, json!({})).await);
    let gw = ok(&s.call(Method::GET, "/management/v1/orgs/me", Some(&s.admin), &h, None).await);
    assert_eq!(me, gw);
    assert_eq!(me["org"]["id"], org.as_str());
    assert_eq!(me["org"]["name"], "Connect Org");
    assert_eq!(me["org"]["state"], "ORG_STATE_ACTIVE");

    // ListOrgs (AdminService)
    let lc = ok(&admin(s, "ListOrgs", &s.admin, json!({})).await);
    let lg = ok(&s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await);
    assert_eq!(without_view_timestamp(&lc), without_view_timestamp(&lg));
    assert_eq!(lc["details"]["totalResult"], "3", "default org + 2: {lc}");
    assert!(lc["result"].as_array().unwrap().iter().any(|o| o["id"] == org.as_str()));

    // AddToken
    let t =
        ok(&admin(s, "AddToken", &s.admin, json!({"orgId": org, "role": "ORG_VIEWER", "description": "from connect"}))
            .await);
    assert_eq!(keys(&t), ["details", "id", "token"], "{t}");
    let token_id = t["id"].as_str().unwrap().to_string();
    let secret = t["token"].as_str().unwrap().to_string();
    let me = ok(&mgmt(s, "GetMyOrg", &secret, json!({})).await);
    assert_eq!(me["org"]["id"], org.as_str(), "the token belongs to its org");

    // ListTokens: the same on both transports; never a token value
    let lc = ok(&admin(s, "ListTokens", &s.admin, json!({"orgId": org})).await);
    let lg = ok(&s.post("/admin/v1/tokens/_search", &s.admin, json!({"orgId": org})).await);
    assert_eq!(without_view_timestamp(&lc), without_view_timestamp(&lg));
    let listed = lc["result"].as_array().expect("result");
    let mine = listed.iter().find(|x| x["id"] == token_id.as_str()).expect("new token listed");
    assert_eq!(mine["orgId"], org.as_str());
    assert_eq!(mine["role"], "ORG_VIEWER");
    assert_eq!(mine["description"], "from connect");
    assert!(!lc.to_string().contains(&secret), "ListTokens never returns token values");

    // RemoveToken: it stops working at once
    let rm = mgmt(s, "GetMyOrg", &secret, json!({})).await;
    assert_eq!(rm.status, 200);
    let r = admin(s, "RemoveToken", &s.admin, json!({"id": token_id})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = mgmt(s, "GetMyOrg", &secret, json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body["code"], "unauthenticated");
    let r = s.get("/management/v1/orgs/me", &secret).await;
    assert_eq!(r.status, 401, "{r:?}");
}

async fn connect_execute_flow_trigger(s: &TestServer) {
    // ExecuteFlowTrigger on a trigger without actions
    let c =
        ok(&mgmt(s, "ExecuteFlowTrigger", &s.admin, json!({"flowType": "2", "triggerType": "4", "context": {}})).await);
    assert_eq!(c["outcome"], "OUTCOME_SUCCEEDED", "{c}");
    assert!(c.get("runs").is_none() && c.get("effects").is_none(), "no runs, no effects: {c}");
    let g = ok(&s.post("/management/v1/flows/2/trigger/4/_execute", &s.admin, json!({"context": {}})).await);
    assert_eq!(g["outcome"], "OUTCOME_SUCCEEDED", "{g}");
    assert_eq!(keys(&c), keys(&g));
    let r = mgmt(s, "ExecuteFlowTrigger", &s.admin, json!({"flowType": "1", "triggerType": "4", "context": {}})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (400, &json!("invalid_argument")), "{r:?}");
}

async fn connect_test_action(s: &TestServer) {
    let c = ok(&mgmt(
        s,
        "TestAction",
        &s.admin,
        json!({"name": "dry", "script": "function dry(ctx, api) {}", "flowType": "2", "triggerType": "4", "context": {}}),
    )
    .await);
    assert_eq!(c["outcome"], "OUTCOME_SUCCEEDED", "{c}");
    assert_eq!(c["runs"][0]["outcome"], "OUTCOME_SUCCEEDED", "{c}");
    let r =
        mgmt(s, "TestAction", &s.admin, json!({"name": "", "script": "x", "flowType": "2", "triggerType": "4"})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (400, &json!("invalid_argument")), "{r:?}");
}

async fn connect_list_runs_and_get_run(s: &TestServer) {
    let lc = ok(&mgmt(s, "ListRuns", &s.admin, json!({})).await);
    let lg = ok(&s.post("/management/v1/runs/_search", &s.admin, json!({})).await);
    assert_eq!(without_view_timestamp(&lc), without_view_timestamp(&lg));
    assert!(lc.get("result").is_none(), "no runs yet: {lc}");
    let r = mgmt(s, "GetRun", &s.admin, json!({"id": "123"})).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body["code"], "not_found", "{r:?}");
}

async fn connect_error_bodies(s: &TestServer) {
    // not_found
    assert_connect_err(
        &mgmt(s, "GetAction", &s.admin, json!({"id": "123"})).await,
        404,
        "not_found",
        "Action not found (QUERY-GEfnb)",
    );
    let r = mgmt(s, "UpdateAction", &s.admin, json!({"id": "123", "name": "n", "script": "s"})).await;
    assert_connect_err(&r, 404, "not_found", "Action not found (COMMAND-Sfg2t)");
    // ZITADEL validates UpdateActionRequest.id (1..200 runes) before anything else; GetActionRequest
    // has no rule on its id, so an empty one is simply not found.
    for body in [json!({"name": "n", "script": "s"}), json!({"id": "9".repeat(201), "name": "", "script": "s"})] {
        assert_connect_err(
            &mgmt(s, "UpdateAction", &s.admin, body).await,
            400,
            "invalid_argument",
            "invalid UpdateActionRequest.Id: value length must be between 1 and 200 runes, inclusive",
        );
    }
    assert_connect_err(
        &mgmt(s, "GetAction", &s.admin, json!({"id": ""})).await,
        404,
        "not_found",
        "Action not found (QUERY-GEfnb)",
    );
    for (method, id) in [
        ("DeactivateAction", "COMMAND-NRmhu"),
        ("ReactivateAction", "COMMAND-Aa22g"),
        ("DeleteAction", "COMMAND-Dgh4h"),
    ] {
        let r = mgmt(s, method, &s.admin, json!({"id": "123"})).await;
        assert_eq!((r.status.as_u16(), &r.body["code"]), (404, &json!("not_found")), "{method}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").ends_with(&format!(" ({id})")), "{method}: {r:?}");
    }
    let r = mgmt(s, "ListFlowTriggerTypes", &s.admin, json!({"type": "9"})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (404, &json!("not_found")), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").ends_with("(MANAG-P2OBk)"), "{r:?}");

    // invalid_argument
    assert_connect_err(
        &mgmt(s, "CreateAction", &s.admin, json!({"name": "", "script": "x"})).await,
        400,
        "invalid_argument",
        "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive",
    );
    assert_connect_err(
        &mgmt(s, "CreateAction", &s.admin, json!({"name": "n", "script": "x", "timeout": "21s"})).await,
        400,
        "invalid_argument",
        "invalid CreateActionRequest.Timeout: value must be inside range [0s, 20s]",
    );
    assert_connect_err(
        &mgmt(s, "ListActions", &s.admin, json!({"queries": [{}]})).await,
        400,
        "invalid_argument",
        "invalid ListActionsRequest.Queries[0]: embedded message failed validation | caused by: invalid ActionQuery.Query: value is required",
    );
    assert_connect_err(
        &mgmt(s, "ListActions", &s.admin, json!({"query": {"limit": 1001}})).await,
        400,
        "invalid_argument",
        "Limit exceeded (QUERY-4M0fs)",
    );
    assert_connect_err(
        &mgmt(s, "GetFlow", &s.admin, json!({"type": "9"})).await,
        400,
        "invalid_argument",
        "FlowType missing (COMMAND-Dfw2h)",
    );
    assert_connect_err(
        &mgmt(s, "SetTriggerActions", &s.admin, json!({"flowType": "9", "triggerType": "1", "actionIds": []})).await,
        400,
        "invalid_argument",
        "FlowType missing (COMMAND-Dfhj5)",
    );
    assert_connect_err(
        &mgmt(s, "SetTriggerActions", &s.admin, json!({"flowType": "1", "triggerType": "4", "actionIds": []})).await,
        400,
        "invalid_argument",
        "TriggerType is invalid (COMMAND-Dfgh6)",
    );
    assert_connect_invalid_names(&mgmt(s, "CreateAction", &s.admin, json!({"name": 1, "script": "x"})).await, "name");
    assert_connect_invalid_names(&mgmt(s, "ListActions", &s.admin, json!({"query": {"offset": "x"}})).await, "offset");
    assert_connect_invalid_names(
        &mgmt(s, "CreateAction", &s.admin, json!({"name": "n", "script": "x", "timeout": "1m"})).await,
        "timeout",
    );
    let r = s.call_raw(Method::POST, &format!("/{MGMT}/CreateAction"), Some(&s.admin), b"{\"name\":".to_vec()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["code"], "invalid_argument", "{r:?}");
    assert_connect_invalid_names(&mgmt(s, "GetAction", &s.admin, json!({"id": 5})).await, "id");
    let big = format!("{{\"name\": \"big\", \"script\": \"{}\"}}", "x".repeat(1 << 20));
    let r = s.call_raw(Method::POST, &format!("/{MGMT}/CreateAction"), Some(&s.admin), big.into_bytes()).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (413, &json!("resource_exhausted")), "{r:?}");

    // already_exists
    let id = s.create_action(&s.admin, "taken").await;
    let r = mgmt(s, "CreateAction", &s.admin, json!({"name": "TAKEN", "script": "x"})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (409, &json!("already_exists")), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").ends_with("(V3-DKcYh)"), "{r:?}");

    // failed_precondition
    ok(&mgmt(s, "DeactivateAction", &s.admin, json!({"id": id})).await);
    assert_connect_err(
        &mgmt(s, "DeactivateAction", &s.admin, json!({"id": id})).await,
        400,
        "failed_precondition",
        "Action is not active (COMMAND-Dgj92)",
    );
    ok(&mgmt(s, "ReactivateAction", &s.admin, json!({"id": id})).await);
    assert_connect_err(
        &mgmt(s, "ReactivateAction", &s.admin, json!({"id": id})).await,
        400,
        "failed_precondition",
        "Action is not inactive (COMMAND-J53zh)",
    );
    assert_connect_err(
        &mgmt(s, "UpdateAction", &s.admin, json!({"id": id, "name": "taken", "script": "function taken(ctx, api) {}"}))
            .await,
        400,
        "failed_precondition",
        "No changes (ACTION-dg4t2)",
    );
    assert_connect_err(
        &mgmt(s, "SetTriggerActions", &s.admin, json!({"flowType": "1", "triggerType": "1", "actionIds": []})).await,
        400,
        "failed_precondition",
        "No Changes (COMMAND-Nfh52)",
    );
    assert_connect_err(
        &mgmt(s, "SetTriggerActions", &s.admin, json!({"flowType": "1", "triggerType": "1", "actionIds": ["123"]}))
            .await,
        400,
        "failed_precondition",
        "ActionIDs do not exist (COMMAND-dg422)",
    );
    assert_connect_err(
        &mgmt(s, "ClearFlow", &s.admin, json!({"type": "1"})).await,
        400,
        "failed_precondition",
        "Flow is already empty (COMMAND-DgGh3)",
    );

    // permission_denied
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let owner = s.create_token("default", "ORG_OWNER").await;
    let denied = "No matching permissions found (AUTH-5mWD2)";
    assert_connect_err(
        &mgmt(s, "CreateAction", &viewer, json!({"name": "v", "script": "x"})).await,
        403,
        "permission_denied",
        denied,
    );
    assert_connect_err(&mgmt(s, "ClearFlow", &viewer, json!({"type": "1"})).await, 403, "permission_denied", denied);
    assert_connect_err(&admin(s, "ListOrgs", &owner, json!({})).await, 403, "permission_denied", denied);
    assert_connect_err(
        &admin(s, "AddToken", &owner, json!({"orgId": "default", "role": "IAM_OWNER"})).await,
        403,
        "permission_denied",
        denied,
    );
    assert_connect_err(&mgmt(s, "AddOrg", &owner, json!({"name": "mine"})).await, 403, "permission_denied", denied);
    let other = s.create_org("other").await;
    let r = mgmt_h(s, "ListActions", Some(&owner), &[("x-zitadel-orgid", &other)], json!({})).await;
    assert_connect_err(&r, 403, "permission_denied", denied);
    let r = mgmt_h(s, "ListActions", Some(&s.admin), &[("x-zitadel-orgid", "123")], json!({})).await;
    assert_connect_err(&r, 403, "permission_denied", "Organisation doesn't exist (AUTH-Bs7Ds)");

    // unauthenticated
    let r = mgmt_h(s, "ListActions", None, &[], json!({})).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.body["code"], "unauthenticated", "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").contains("auth header missing"), "{r:?}");
    let r = mgmt_h(s, "ListActions", None, &[("authorization", "Basic abc")], json!({})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (401, &json!("unauthenticated")), "{r:?}");
    let r = mgmt(s, "ListActions", "unknown-token-value", json!({})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (401, &json!("unauthenticated")), "{r:?}");
    let r = admin(s, "ListOrgs", "unknown-token-value", json!({})).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (401, &json!("unauthenticated")), "{r:?}");
}

async fn connect_routing(s: &TestServer) {
    // the Connect-Protocol-Version header is accepted, not required
    let r = mgmt_h(s, "ListFlowTypes", Some(&s.admin), &[("connect-protocol-version", "1")], json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = mgmt_h(s, "ListFlowTypes", Some(&s.admin), &[], json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");

    // unknown methods and services
    for path in [
        format!("/{MGMT}/NoSuchMethod"),
        format!("/{ADMIN}/NoSuchMethod"),
        "/zitadel.nothing.v1.NothingService/ListActions".to_string(),
        format!("/{MGMT}/listactions"),
        // A service of any other package too: a Connect client gets a Connect error.
        "/nope.Svc/X".to_string(),
        "/acme.billing.v1.BillingService/Charge".to_string(),
    ] {
        let r = s.call(Method::POST, &path, Some(&s.admin), &[], Some(json!({}))).await;
        assert_eq!(r.status, 501, "{path}: {r:?}");
        assert_eq!(r.body["code"], "unimplemented", "{path}: {r:?}");
    }

    // A REST path that names no route stays the gateway's 404.
    for path in ["/management/v1/nothing", "/openapi.json/x", "/v2/actions/nothing"] {
        let r = s.call(Method::POST, path, Some(&s.admin), &[], Some(json!({}))).await;
        assert_eq!((r.status.as_u16(), &r.body), (404, &json!({"code": 5, "message": "Not Found"})), "{path}");
    }

    // Connect unary uses POST
    for method in ["ListActions", "GetAction", "GetFlow"] {
        let r = s.call(Method::GET, &format!("/{MGMT}/{method}"), Some(&s.admin), &[], None).await;
        assert_eq!(r.status, 405, "GET {method}: {r:?}");
    }
    let r = s.call(Method::GET, &format!("/{ADMIN}/ListOrgs"), Some(&s.admin), &[], None).await;
    assert_eq!(r.status, 405, "{r:?}");
}

backend_tests!(
    connect_action_rpcs_match_gateway,
    connect_flow_rpcs_match_gateway,
    connect_org_and_admin_rpcs,
    connect_execute_flow_trigger,
    connect_test_action,
    connect_list_runs_and_get_run,
    connect_error_bodies,
    connect_routing,
);
