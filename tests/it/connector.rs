//! The connector's ConnectorService (README, "Use actionsd with ZITADEL"): connections with write-only,
//! encrypted secrets, defaults and validation, organization links, events, both transports,
//! IAM_OWNER only. On SQLite and PostgreSQL.

use crate::common;

use common::{assert_error, Reply, TestServer};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

const CONNECTIONS: &str = "/connector/v1/connections";
const SVC: &str = "actionsd.connector.v1.ConnectorService";
const KEY_1: &str = "first-signing-key-0001";
const KEY_2: &str = "second-signing-key-0002";
const TOKEN: &str = "zitadel-personal-access-token-secret";

fn path(id: &str) -> String {
    format!("{CONNECTIONS}/{id}")
}

fn full(name: &str) -> Value {
    json!({
        "name": name,
        "signingKeys": [KEY_1],
        "zitadelApi": {"baseUrl": "https://zitadel.example.com/", "token": TOKEN, "zitadelTargetId": "331"},
    })
}

async fn create(s: &TestServer, body: Value) -> Value {
    let r = s.post(CONNECTIONS, &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

async fn get(s: &TestServer, id: &str) -> Value {
    let r = s.get(&path(id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["connection"].clone()
}

fn assert_no_secret(r: &Reply) {
    let text = r.body.to_string();
    for secret in [KEY_1, KEY_2, TOKEN] {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
}

async fn connection_events(s: &TestServer, id: &str) -> Vec<String> {
    entity::event::Entity::find()
        .filter(entity::event::Column::AggregateType.eq("connection"))
        .filter(entity::event::Column::AggregateId.eq(id))
        .order_by_asc(entity::event::Column::Position)
        .all(&s.state.store.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn create_get_update_delete(s: &TestServer) {
    let created = create(s, full("zitadel-prod")).await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        created["callUrl"],
        format!("/connector/v1/connections/{id}/call"),
        "the path without ACTIONSD_PUBLIC_URL"
    );
    assert!(created["details"]["sequence"].is_string(), "{created}");

    let r = s.get(&path(&id), &s.admin).await;
    assert_no_secret(&r);
    let c = &r.body["connection"];
    assert_eq!(c["name"], "zitadel-prod");
    assert_eq!(c["state"], "CONNECTION_STATE_ACTIVE");
    assert_eq!(c["signingKeys"], json!(["…0001"]));
    assert_eq!(c["timestampTolerance"], "300s");
    assert_eq!(c["callTimeout"], "10s");
    assert_eq!(c["failMode"], "FAIL_MODE_CLOSED");
    assert_eq!(c["payloadTypes"], json!(["PAYLOAD_TYPE_JSON"]));
    assert_eq!(
        c["zitadelApi"],
        json!({"baseUrl": "https://zitadel.example.com", "hasToken": true, "zitadelTargetId": "331"})
    );
    // Zero values are omitted like everywhere: no calls yet, no rejections.
    assert_eq!(c["health"], json!({}), "{c}");
    assert!(c.get("recentRejections").is_none(), "{c}");
    assert!(c.get("defaultOrgId").is_none() && c.get("jwe").is_none(), "{c}");
    let stored = entity::connection::Entity::find().all(&s.state.store.db).await.unwrap();
    let row = format!("{stored:?}");
    assert!(!row.contains(KEY_1) && !row.contains(TOKEN), "secrets are stored encrypted");

    // The whole configuration is replaced; absent secrets stay.
    let r = s
        .put(
            &path(&id),
            &s.admin,
            json!({"name": "zitadel-prod", "state": "CONNECTION_STATE_INACTIVE", "timestampTolerance": "60s",
                   "callTimeout": "5s", "failMode": "FAIL_MODE_OPEN", "defaultOrgId": s.state.default_org.to_string(),
                   "zitadelApi": {"baseUrl": "https://zitadel.example.com"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["details"]["changeDate"].is_string(), "{r:?}");
    let c = get(s, &id).await;
    assert_eq!(c["state"], "CONNECTION_STATE_INACTIVE");
    assert_eq!(c["signingKeys"], json!(["…0001"]), "absent signingKeys: unchanged");
    assert_eq!(c["zitadelApi"]["hasToken"], true, "absent token: unchanged");
    assert!(c["zitadelApi"].get("zitadelTargetId").is_none(), "absent fields take their defaults: {c}");
    assert_eq!((c["timestampTolerance"].as_str(), c["callTimeout"].as_str()), (Some("60s"), Some("5s")));
    assert_eq!(c["failMode"], "FAIL_MODE_OPEN");
    assert_eq!(c["defaultOrgId"], s.state.default_org.to_string());

    // Two keys; then [] clears them and "" clears the token.
    let mut body = full("zitadel-prod");
    body["signingKeys"] = json!([KEY_1, KEY_2]);
    let r = s.put(&path(&id), &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get(s, &id).await["signingKeys"], json!(["…0001", "…0002"]));
    let r = s
        .put(
            &path(&id),
            &s.admin,
            json!({"name": "zitadel-prod", "signingKeys": [],
                   "zitadelApi": {"baseUrl": "https://zitadel.example.com", "token": ""}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let c = get(s, &id).await;
    assert!(c.get("signingKeys").is_none(), "no keys: omitted: {c}");
    assert_eq!(c["zitadelApi"], json!({"baseUrl": "https://zitadel.example.com"}), "no token: hasToken omitted");

    // Listed, searchable by name, and deleted.
    create(s, json!({"name": "staging"})).await;
    let r = s.post(&format!("{CONNECTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["totalResult"], "2");
    assert_eq!(r.body["result"][0]["name"], "staging", "newest first");
    let r = s
        .post(
            &format!("{CONNECTIONS}/_search"),
            &s.admin,
            json!({"queries": [{"connectionNameQuery": {"name": "PROD", "method": "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"}}]}),
        )
        .await;
    assert_eq!(r.body["details"]["totalResult"], "1", "{r:?}");
    assert_eq!(r.body["result"][0]["id"], id.as_str());

    let r = s.delete(&path(&id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    // A removal answers the time of its event as changeDate, as ClearFlow and RemoveToken do.
    assert!(r.body["details"]["changeDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{r:?}");
    assert!(r.body["details"].get("creationDate").is_none(), "{r:?}");
    assert_error(&s.get(&path(&id), &s.admin).await, 404, 5, "CONN-n0tFd", "deleted");
    assert_error(&s.delete(&path(&id), &s.admin).await, 404, 5, "CONN-n0tFd", "deleted twice");
    assert_eq!(
        connection_events(s, &id).await,
        ["connection.added", "connection.changed", "connection.changed", "connection.changed", "connection.removed"]
    );
}

async fn validation(s: &TestServer) {
    let bad = |body: Value, field: &'static str| async move {
        let r = s.post(CONNECTIONS, &s.admin, body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{field}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains(field), "{field}: {r:?}");
    };
    bad(json!({"name": ""}), "Name").await;
    bad(json!({"name": "x".repeat(201)}), "Name").await;
    bad(json!({"name": "a", "signingKeys": [KEY_1, KEY_2, "third-key-000000003"]}), "SigningKeys").await;
    bad(json!({"name": "a", "signingKeys": ["short"]}), "SigningKeys[0]").await;
    bad(json!({"name": "a", "timestampTolerance": "0.5s"}), "TimestampTolerance").await;
    bad(json!({"name": "a", "timestampTolerance": "3601s"}), "TimestampTolerance").await;
    bad(json!({"name": "a", "callTimeout": "3600s"}), "CallTimeout").await;
    bad(json!({"name": "a", "zitadelApi": {"baseUrl": "ftp://zitadel.example.com"}}), "ZitadelApi.BaseUrl").await;
    bad(json!({"name": "a", "zitadelApi": {"baseUrl": "/relative"}}), "ZitadelApi.BaseUrl").await;
    for base in [
        "https://zitadel.example.com/?q=1",
        "https://zitadel.example.com/#top",
        "https://user:pw@zitadel.example.com",
        "https:zitadel.example.com",
    ] {
        bad(json!({"name": "a", "zitadelApi": {"baseUrl": base}}), "ZitadelApi.BaseUrl").await;
    }
    bad(json!({"name": "a", "payloadTypes": ["PAYLOAD_TYPE_JWT"]}), "PayloadTypes").await;
    // A private address is denied like a target's endpoint.
    let r =
        s.post(CONNECTIONS, &s.admin, json!({"name": "a", "zitadelApi": {"baseUrl": "http://127.0.0.1:8080"}})).await;
    assert_error(&r, 400, 3, "Errors.Target.DeniedURL", "denied base URL");
    // So is a name whose every address is denied.
    let name = crate::target_ssrf::loopback_name().await;
    let r = s
        .post(CONNECTIONS, &s.admin, json!({"name": "a", "zitadelApi": {"baseUrl": format!("http://{name}:8080")}}))
        .await;
    assert_error(&r, 400, 3, "Errors.Target.DeniedURL", "a base URL whose name resolves to loopback");
    let r = s.post(CONNECTIONS, &s.admin, json!({"name": "a", "defaultOrgId": "123456"})).await;
    assert_error(&r, 404, 5, "CONN-0rgNf", "unknown default org");
    create(s, json!({"name": "taken"})).await;
    assert_error(&s.post(CONNECTIONS, &s.admin, json!({"name": "taken"})).await, 409, 6, "CONN-n4m3x", "duplicate");
    let r = s.post(&format!("{CONNECTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(r.body["details"]["totalResult"], "1", "nothing stored by the refused calls: {r:?}");
    // An update's wrong types and malformed durations name the field as a create's do.
    let id = r.body["result"][0]["id"].as_str().unwrap().to_string();
    for (body, field) in [
        (json!({"name": 5}), "UpdateConnectionRequest.Name:"),
        (json!({"name": "b", "callTimeout": "+5s"}), "UpdateConnectionRequest.CallTimeout:"),
        (json!({"name": "b", "zitadelApi": {"baseUrl": 5}}), "UpdateConnectionRequest.ZitadelApi.BaseUrl:"),
    ] {
        let r = s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, body).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{field}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").starts_with(&format!("invalid {field}")), "{field}: {r:?}");
    }
}

async fn jwe_generates_a_key_pair(s: &TestServer) {
    let created = create(
        s,
        json!({"name": "jwe", "zitadelApi": {"baseUrl": "https://zitadel.example.com"},
               "payloadTypes": ["PAYLOAD_TYPE_JSON", "PAYLOAD_TYPE_JWE"]}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_string();
    let c = get(s, &id).await;
    assert_eq!(c["payloadTypes"], json!(["PAYLOAD_TYPE_JSON", "PAYLOAD_TYPE_JWE"]));
    let pem = c["jwe"]["publicKeyPem"].as_str().expect("a public key").to_string();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    assert_eq!(common::unb64(c["jwe"]["publicKeyPemBase64"].as_str().unwrap()), pem);
    // Unchanged while JWE stays accepted; dropped when it no longer is.
    let r = s
        .put(
            &path(&id),
            &s.admin,
            json!({"name": "jwe", "zitadelApi": {"baseUrl": "https://zitadel.example.com"},
                   "payloadTypes": ["PAYLOAD_TYPE_JWE", "PAYLOAD_TYPE_JWT"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get(s, &id).await["jwe"]["publicKeyPem"], pem.as_str());
    let r = s.put(&path(&id), &s.admin, json!({"name": "jwe"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let c = get(s, &id).await;
    assert!(c.get("jwe").is_none() && c.get("zitadelApi").is_none(), "{c}");
    assert_eq!(c["payloadTypes"], json!(["PAYLOAD_TYPE_JSON"]));
}

fn r_details(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{r:?}");
    r.body["details"].clone()
}

async fn org_links(s: &TestServer) {
    let id = create(s, json!({"name": "links"})).await["id"].as_str().unwrap().to_string();
    let org = s.create_org("linked org").await;
    let links = format!("{}/orgs", path(&id));
    let r = s.put(&format!("{links}/zitadel-org-1"), &s.admin, json!({"orgId": org})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.put(&format!("{links}/zitadel-org-2"), &s.admin, json!({"orgId": s.state.default_org.to_string()})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Replacing a link keeps one link per ZITADEL org.
    let r = s.put(&format!("{links}/zitadel-org-2"), &s.admin, json!({"orgId": org})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&format!("{links}/_search"), &s.admin, json!({"query": {"asc": true}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["totalResult"], "2");
    let got: Vec<(String, String)> = r.body["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["zitadelOrgId"].as_str().unwrap().into(), l["orgId"].as_str().unwrap().into()))
        .collect();
    assert_eq!(got, [("zitadel-org-1".to_string(), org.clone()), ("zitadel-org-2".to_string(), org.clone())]);

    assert_error(
        &s.put(&format!("{links}/zitadel-org-3"), &s.admin, json!({"orgId": "99999"})).await,
        404,
        5,
        "CONN-0rgNf",
        "unknown org",
    );
    let r = s.put(&format!("{links}/zitadel-org-3"), &s.admin, json!({})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "orgId required: {r:?}");
    assert_error(
        &s.put(&format!("{CONNECTIONS}/424242/orgs/z"), &s.admin, json!({"orgId": org})).await,
        404,
        5,
        "CONN-n0tFd",
        "unknown connection",
    );
    // The connection's details follow the last event of its aggregate, its links' included (a
    // link set answers with the time of the event it wrote as creationDate, a removal as
    // changeDate).
    let linked = r_details(&s.put(&format!("{links}/zitadel-org-2"), &s.admin, json!({"orgId": org})).await);
    let details = get(s, &id).await["details"].clone();
    assert_eq!((&details["sequence"], &details["changeDate"]), (&linked["sequence"], &linked["creationDate"]));
    let r = s.delete(&format!("{links}/zitadel-org-1"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let unlinked = r_details(&r);
    assert_eq!(
        unlinked["sequence"].as_str().unwrap().parse::<u64>().unwrap(),
        linked["sequence"].as_str().unwrap().parse::<u64>().unwrap() + 1,
        "{unlinked}"
    );
    let details = get(s, &id).await["details"].clone();
    assert_eq!((&details["sequence"], &details["changeDate"]), (&unlinked["sequence"], &unlinked["changeDate"]));
    assert!(unlinked.get("creationDate").is_none(), "{unlinked}");
    assert_error(&s.delete(&format!("{links}/zitadel-org-1"), &s.admin).await, 404, 5, "CONN-l1nkN", "removed twice");
    assert_eq!(connection_events(s, &id).await.iter().filter(|e| e.starts_with("connection.org.")).count(), 5);
    // Deleting the connection removes its links.
    assert_eq!(s.delete(&path(&id), &s.admin).await.status, 200);
    let left = entity::connection_org_link::Entity::find().all(&s.state.store.db).await.unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn connect_transport_and_roles(s: &TestServer) {
    let r = s.connect(&format!("{SVC}/CreateConnection"), &s.admin, json!({"name": "via-connect"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = s.connect(&format!("{SVC}/GetConnection"), &s.admin, json!({"id": id})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["connection"]["name"], "via-connect");
    let r = s.connect(&format!("{SVC}/GetConnection"), &s.admin, json!({"id": "1"})).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body["code"], "not_found", "{r:?}");

    let org = s.create_org("not the instance").await;
    for role in ["ORG_OWNER", "ORG_VIEWER", "ORG_EXECUTOR"] {
        let token = s.create_token(&org, role).await;
        let r = s.call(Method::GET, &path(&id), Some(&token), &[], None).await;
        assert_eq!(r.status, 403, "{role}: {r:?}");
        let r = s.post(CONNECTIONS, &token, json!({"name": "nope"})).await;
        assert_eq!(r.status, 403, "{role}: {r:?}");
    }
}

/// Every event type the server writes can be named in a v2 event execution (and its dot-prefixes as
/// groups): connection events, the authoring events and the rest, read back from the event log
/// after a workload that writes each of them.
async fn written_event_types_can_be_subscribed(s: &TestServer) {
    let ok = |r: Reply| assert_eq!(r.status, 200, "{r:?}");
    // The connector's six events.
    let id = create(s, full("events")).await["id"].as_str().unwrap().to_string();
    ok(s.put(&path(&id), &s.admin, full("events-renamed")).await);
    // (connection.key.rotated needs a stand-in ZITADEL: connector_call.rs, rotation.)
    let org = s.create_org("events org").await;
    ok(s.put(&format!("{}/orgs/zorg", path(&id)), &s.admin, json!({"orgId": org})).await);
    ok(s.delete(&format!("{}/orgs/zorg", path(&id)), &s.admin).await);
    ok(s.delete(&path(&id), &s.admin).await);
    // Authoring: secrets, settings, versions and rollback.
    ok(s.put("/management/v1/actions/secrets/API_KEY", &s.admin, json!({"value": "v"})).await);
    ok(s.delete("/management/v1/actions/secrets/API_KEY", &s.admin).await);
    ok(s.put("/management/v1/actions/_settings", &s.admin, json!({"recordContexts": true})).await);
    let action = s.create_action(&s.admin, "versioned").await;
    let changed = json!({"name": "versioned", "script": "function versioned(ctx, api) { /* v2 */ }"});
    ok(s.put(&format!("/management/v1/actions/{action}"), &s.admin, changed).await);
    ok(s.post(&format!("/management/v1/actions/{action}/versions/1/_rollback"), &s.admin, json!({})).await);

    let written: std::collections::BTreeSet<String> = entity::event::Entity::find()
        .all(&s.state.store.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    for expected in [
        "connection.added",
        "connection.removed",
        "connection.org.unlinked",
        "action.secret.set",
        "action.secret.removed",
        "action.settings.changed",
        "action.rolledback",
    ] {
        assert!(written.contains(expected), "the workload writes {expected}: {written:?}");
    }
    let target = s.post("/v2/actions/targets", &s.admin, common::webhook_target("events-sink")).await;
    assert_eq!(target.status, 200, "{target:?}");
    let target = target.body["id"].as_str().unwrap().to_string();
    // Each type, then each of its dot-prefixes as a group.
    let groups: std::collections::BTreeSet<String> = written
        .iter()
        .flat_map(|ty| {
            let parts: Vec<&str> = ty.split('.').collect();
            (1..parts.len()).map(move |n| parts[..n].join("."))
        })
        .collect();
    let conditions = written.iter().map(|ty| json!({"event": ty})).chain(groups.iter().map(|g| json!({"group": g})));
    for event in conditions {
        let body = json!({"condition": {"event": event}, "targets": [target]});
        let r = s.put("/v2/actions/executions", &s.admin, body).await;
        assert_eq!(r.status, 200, "{event}: {r:?}");
    }
}

backend_tests!(
    create_get_update_delete,
    validation,
    jwe_generates_a_key_pair,
    org_links,
    connect_transport_and_roles,
    written_event_types_can_be_subscribed
);
