//! Black-box tests of the action RPCs of `zitadel.management.v1.ManagementService` over the REST
//! gateway, as the README's walkthrough shows them.

use crate::common;

use common::{assert_err, assert_err_text, Reply, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const ACTIONS: &str = "/management/v1/actions";
const SEARCH: &str = "/management/v1/actions/_search";

fn action_path(id: &str) -> String {
    format!("{ACTIONS}/{id}")
}

/// A request-validation failure: 400, code 3, exactly this message.
#[track_caller]
fn assert_invalid(r: &Reply, message: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    assert_eq!(r.body["message"], message, "{r:?}");
}

/// 400, code 3, and the message names `field` (compared ignoring case and `_`).
#[track_caller]
fn assert_invalid_names(r: &Reply, field: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    let norm = |s: &str| s.to_lowercase().replace('_', "");
    let msg = norm(r.body["message"].as_str().unwrap_or(""));
    assert!(msg.contains(&norm(field)), "message should name {field}: {r:?}");
}

#[track_caller]
fn assert_timestamp(v: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp expected, got {v}"));
    assert!(s.ends_with('Z'), "timestamp {s} must be UTC with Z");
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("timestamp {s}: {e}"))
}

#[track_caller]
fn assert_id(v: &Value) -> String {
    let s = v.as_str().unwrap_or_else(|| panic!("id string expected, got {v}"));
    assert!(!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()), "id {s} is not a decimal string");
    assert!(s.parse::<u64>().is_ok_and(|n| n > 0), "id {s} is not a positive 64-bit number");
    s.to_string()
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

/// Details of Create/Update/Deactivate/Reactivate: sequence, creationDate, resourceOwner; no changeDate.
#[track_caller]
fn assert_write_details(d: &Value, sequence: &str, org: &str) -> chrono::DateTime<chrono::FixedOffset> {
    assert_eq!(keys(d), ["creationDate", "resourceOwner", "sequence"], "details {d}");
    assert_eq!(d["sequence"], sequence, "details {d}");
    assert_eq!(d["resourceOwner"], org, "details {d}");
    assert_timestamp(&d["creationDate"])
}

async fn my_org(s: &TestServer, token: &str) -> String {
    let r = s.get("/management/v1/orgs/me", token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["org"]["id"].as_str().expect("org id").to_string()
}

async fn create(s: &TestServer, body: Value) -> Reply {
    s.post(ACTIONS, &s.admin, body).await
}

async fn create_ok(s: &TestServer, body: Value) -> String {
    let r = create(s, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_id(&r.body["id"])
}

async fn get_action(s: &TestServer, id: &str) -> Value {
    let r = s.get(&action_path(id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["action"].clone()
}

async fn update(s: &TestServer, id: &str, body: Value) -> Reply {
    s.put(&action_path(id), &s.admin, body).await
}

async fn deactivate(s: &TestServer, id: &str) -> Reply {
    s.post(&format!("{}/_deactivate", action_path(id)), &s.admin, json!({})).await
}

async fn reactivate(s: &TestServer, id: &str) -> Reply {
    s.post(&format!("{}/_reactivate", action_path(id)), &s.admin, json!({})).await
}

async fn list(s: &TestServer, body: Value) -> Reply {
    s.post(SEARCH, &s.admin, body).await
}

async fn list_ok(s: &TestServer, body: Value) -> Value {
    let r = list(s, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body
}

fn result_names(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .map(|a| a.iter().map(|x| x["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

fn result_ids(body: &Value) -> Vec<String> {
    body["result"]
        .as_array()
        .map(|a| a.iter().map(|x| x["id"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// Names matching a name query, sorted by name ascending.
async fn names_matching(s: &TestServer, name_query: Value) -> Vec<String> {
    let body = list_ok(
        s,
        json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"asc": true},
               "queries": [{"actionNameQuery": name_query}]}),
    )
    .await;
    let names = result_names(&body);
    if names.is_empty() {
        assert!(body.get("result").is_none(), "empty result must be omitted: {body}");
        assert!(body["details"].get("totalResult").is_none(), "a total of 0 is omitted: {body}");
    } else {
        assert_eq!(body["details"]["totalResult"], names.len().to_string(), "{body}");
    }
    names
}

fn script(name: &str) -> String {
    format!("function {name}(ctx, api) {{}}")
}

// ---------------------------------------------------------------------------------------------
// CreateAction / GetAction

async fn create_action_returns_id_and_write_details(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let r = create(s, json!({"name": "first", "script": script("first")})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["details", "id", "version"], "{r:?}");
    assert_eq!(r.body["version"], "1", "{r:?}");
    assert_id(&r.body["id"]);
    assert_write_details(&r.body["details"], "1", &org);

    // ids are unique
    let other = create_ok(s, json!({"name": "second", "script": "x"})).await;
    assert_ne!(other, r.body["id"].as_str().unwrap());
}

async fn get_action_returns_full_action(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let c = create(s, json!({"name": "full", "script": script("full"), "timeout": "10s", "allowedToFail": true})).await;
    assert_eq!(c.status, 200, "{c:?}");
    let id = c.body["id"].as_str().unwrap().to_string();
    let created_at = assert_timestamp(&c.body["details"]["creationDate"]);

    let r = s.get(&action_path(&id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["action"], "{r:?}");
    let a = &r.body["action"];
    assert_eq!(keys(a), ["allowedToFail", "details", "id", "name", "script", "state", "timeout", "version"], "{a}");
    assert_eq!(a["id"], id.as_str());
    assert_eq!(a["name"], "full");
    assert_eq!(a["script"], script("full"));
    assert_eq!(a["state"], "ACTION_STATE_ACTIVE");
    assert_eq!(a["timeout"], "10s");
    assert_eq!(a["allowedToFail"], true);
    let d = &a["details"];
    assert_eq!(keys(d), ["changeDate", "creationDate", "resourceOwner", "sequence"], "{d}");
    assert_eq!(d["sequence"], "1");
    assert_eq!(d["resourceOwner"], org.as_str());
    assert_eq!(assert_timestamp(&d["creationDate"]), created_at, "read creationDate = time of action.added");
    assert_eq!(assert_timestamp(&d["changeDate"]), created_at, "never changed: changeDate = creation");

    // allowedToFail false is omitted, an omitted timeout reads as the max.
    let id2 = create_ok(s, json!({"name": "plain", "script": "x", "allowedToFail": false})).await;
    let a2 = get_action(s, &id2).await;
    assert!(a2.get("allowedToFail").is_none(), "allowedToFail false must be omitted: {a2}");
    assert_eq!(a2["timeout"], "20s", "{a2}");
    assert_eq!(a2["state"], "ACTION_STATE_ACTIVE");
}

async fn create_name_length_boundaries(s: &TestServer) {
    let msg = "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive";
    assert_invalid(&create(s, json!({"name": "", "script": "x"})).await, msg);
    assert_invalid(&create(s, json!({"script": "x"})).await, msg);
    assert_invalid(&create(s, json!({"name": "n".repeat(201), "script": "x"})).await, msg);
    // 201 two-byte characters, 201 four-byte characters
    assert_invalid(&create(s, json!({"name": "ä".repeat(201), "script": "x"})).await, msg);
    assert_invalid(&create(s, json!({"name": "😀".repeat(201), "script": "x"})).await, msg);

    // 200 characters are fine, even when they are 400 or 800 bytes long.
    for name in ["n".repeat(200), "ä".repeat(200), "😀".repeat(200), "x".to_string()] {
        let id = create_ok(s, json!({"name": name, "script": "x"})).await;
        assert_eq!(get_action(s, &id).await["name"], name.as_str());
    }
}

async fn create_script_length_boundaries(s: &TestServer) {
    let msg = "invalid CreateActionRequest.Script: value length must be between 1 and 10000 runes, inclusive";
    assert_invalid(&create(s, json!({"name": "a", "script": ""})).await, msg);
    assert_invalid(&create(s, json!({"name": "a"})).await, msg);
    assert_invalid(&create(s, json!({"name": "a", "script": "s".repeat(10001)})).await, msg);
    assert_invalid(&create(s, json!({"name": "a", "script": "€".repeat(10001)})).await, msg);

    let id = create_ok(s, json!({"name": "a", "script": "€".repeat(10000)})).await;
    assert_eq!(get_action(s, &id).await["script"], "€".repeat(10000));
    create_ok(s, json!({"name": "b", "script": "s".repeat(10000)})).await;
    create_ok(s, json!({"name": "c", "script": "s"})).await;
}

async fn create_timeout_range_and_format(s: &TestServer) {
    let msg = "invalid CreateActionRequest.Timeout: value must be inside range [0s, 20s]";
    for bad in ["21s", "20.000000001s", "20.001s", "3600s", "-1s", "-0.5s"] {
        let r = create(s, json!({"name": "t", "script": "x", "timeout": bad})).await;
        assert_invalid(&r, msg);
    }
    // not the "<seconds>s" form
    for bad in ["1m", "5", "abc", "1h", "s", "+0s", "+5s"] {
        let r = create(s, json!({"name": "t", "script": "x", "timeout": bad})).await;
        assert_invalid_names(&r, "timeout");
    }
    // a number is a wrong type for a Duration
    assert_invalid_names(&create(s, json!({"name": "t", "script": "x", "timeout": 5})).await, "timeout");

    for (given, read) in [
        ("20s", "20s"),
        ("0s", "20s"),
        ("1.5s", "1.500s"),
        ("0.000412s", "0.000412s"),
        ("10s", "10s"),
        ("0.000000001s", "0.000000001s"),
        ("19.999999999s", "19.999999999s"),
        ("0.1s", "0.100s"),
        ("2.000s", "2s"),
        ("1.000001s", "1.000001s"),
        ("1.0000001s", "1.000000100s"),
    ] {
        let name = format!("t{given}");
        let id = create_ok(s, json!({"name": name, "script": "x", "timeout": given})).await;
        assert_eq!(get_action(s, &id).await["timeout"], read, "timeout {given}");
    }
}

async fn create_validation_order(s: &TestServer) {
    let name = "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive";
    let script_msg = "invalid CreateActionRequest.Script: value length must be between 1 and 10000 runes, inclusive";
    let timeout = "invalid CreateActionRequest.Timeout: value must be inside range [0s, 20s]";
    assert_invalid(&create(s, json!({"name": "", "script": "", "timeout": "30s"})).await, name);
    assert_invalid(&create(s, json!({"name": "n".repeat(201), "script": "", "timeout": "30s"})).await, name);
    assert_invalid(&create(s, json!({"name": "ok", "script": "", "timeout": "30s"})).await, script_msg);
    assert_invalid(&create(s, json!({"name": "ok", "script": "s".repeat(10001), "timeout": "-1s"})).await, script_msg);
    assert_invalid(&create(s, json!({"name": "ok", "script": "x", "timeout": "30s"})).await, timeout);

    // a clash is only reported for a valid request
    create_ok(s, json!({"name": "ok", "script": "x"})).await;
    assert_invalid(&create(s, json!({"name": "ok", "script": ""})).await, script_msg);
}

async fn create_name_clash_is_case_insensitive(s: &TestServer) {
    create_ok(s, json!({"name": "MyAction", "script": "x"})).await;
    for clash in ["MyAction", "myaction", "MYACTION", "mYaCtIoN"] {
        let r = create(s, json!({"name": clash, "script": "x"})).await;
        assert_err(&r, 409, 6, "V3-DKcYh");
    }
    // non-ASCII folding
    create_ok(s, json!({"name": "Äction", "script": "x"})).await;
    assert_err(&create(s, json!({"name": "äction", "script": "x"})).await, 409, 6, "V3-DKcYh");
    assert_err(&create(s, json!({"name": "ÄCTION", "script": "x"})).await, 409, 6, "V3-DKcYh");
    // NFC: a decomposed "Ä" is the same name
    assert_err(&create(s, json!({"name": "A\u{308}ction", "script": "x"})).await, 409, 6, "V3-DKcYh");
    // simple case folding: ß and SS are different names
    create_ok(s, json!({"name": "straße", "script": "x"})).await;
    create_ok(s, json!({"name": "STRASSE", "script": "x"})).await;
    assert_err(&create(s, json!({"name": "STRAẞE", "script": "x"})).await, 409, 6, "V3-DKcYh");

    // Names are unique per organization: another org may use the same name.
    let other = s.create_org("other org").await;
    let r = s
        .call(
            Method::POST,
            ACTIONS,
            Some(&s.admin),
            &[("x-zitadel-orgid", &other)],
            Some(json!({"name": "myaction", "script": "x"})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    // Updates clash too, but renaming an action to its own name in another case is fine.
    let id = create_ok(s, json!({"name": "renamed", "script": "x"})).await;
    assert_err(&update(s, &id, json!({"name": "MYACTION", "script": "x"})).await, 409, 6, "V3-DKcYh");
    assert_err(&update(s, &id, json!({"name": "äCTION", "script": "x"})).await, 409, 6, "V3-DKcYh");
    let r = update(s, &id, json!({"name": "RENAMED", "script": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get_action(s, &id).await["name"], "RENAMED");
}

async fn delete_frees_name(s: &TestServer) {
    let id = create_ok(s, json!({"name": "reuse", "script": "x"})).await;
    assert_err(&create(s, json!({"name": "Reuse", "script": "x"})).await, 409, 6, "V3-DKcYh");
    let r = s.delete(&action_path(&id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id2 = create_ok(s, json!({"name": "Reuse", "script": "y"})).await;
    assert_ne!(id, id2);
    assert_eq!(get_action(s, &id2).await["name"], "Reuse");

    // renaming also frees the old name
    let r = update(s, &id2, json!({"name": "elsewhere", "script": "y"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    create_ok(s, json!({"name": "reuse", "script": "z"})).await;
}

async fn get_action_not_found(s: &TestServer) {
    for id in ["123", "999999999999999999", "not-a-number"] {
        let r = s.get(&action_path(id), &s.admin).await;
        assert_err_text(&r, 404, 5, "QUERY-GEfnb", "Action not found");
    }
    // deleted
    let id = s.create_action(&s.admin, "gone").await;
    s.delete(&action_path(&id), &s.admin).await;
    assert_err_text(&s.get(&action_path(&id), &s.admin).await, 404, 5, "QUERY-GEfnb", "Action not found");

    // another organization's action is not found, never leaked
    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let foreign = s.create_action(&owner, "foreign").await;
    assert_err_text(&s.get(&action_path(&foreign), &s.admin).await, 404, 5, "QUERY-GEfnb", "Action not found");
    let mine = s.create_action(&s.admin, "mine").await;
    assert_err_text(&s.get(&action_path(&mine), &owner).await, 404, 5, "QUERY-GEfnb", "Action not found");
    // ... unless the IAM_OWNER selects that org
    let r = s.call(Method::GET, &action_path(&foreign), Some(&s.admin), &[("x-zitadel-orgid", &other)], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["action"]["details"]["resourceOwner"], other.as_str());
}

// ---------------------------------------------------------------------------------------------
// UpdateAction

async fn update_action_replaces_fields_and_bumps_sequence(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let c = create(s, json!({"name": "before", "script": "x", "timeout": "5s"})).await;
    assert_eq!(c.status, 200, "{c:?}");
    let id = c.body["id"].as_str().unwrap().to_string();
    let created = assert_write_details(&c.body["details"], "1", &org);

    let r = update(s, &id, json!({"name": "after", "script": "y", "timeout": "7.25s", "allowedToFail": true})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["details", "version"], "{r:?}");
    assert_eq!(r.body["version"], "2", "{r:?}");
    let updated = assert_write_details(&r.body["details"], "2", &org);
    assert!(updated >= created, "update creationDate is the time of the new event");

    let a = get_action(s, &id).await;
    assert_eq!(a["name"], "after");
    assert_eq!(a["script"], "y");
    assert_eq!(a["timeout"], "7.250s");
    assert_eq!(a["allowedToFail"], true);
    assert_eq!(a["state"], "ACTION_STATE_ACTIVE");
    assert_eq!(a["details"]["sequence"], "2");
    assert_eq!(assert_timestamp(&a["details"]["creationDate"]), created);
    assert_eq!(assert_timestamp(&a["details"]["changeDate"]), updated);

    // deactivate "3", update keeps the state "4", reactivate "5"
    let d = deactivate(s, &id).await;
    assert_eq!(d.status, 200, "{d:?}");
    assert_write_details(&d.body["details"], "3", &org);
    let r = update(s, &id, json!({"name": "after", "script": "z"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_write_details(&r.body["details"], "4", &org);
    let a = get_action(s, &id).await;
    assert_eq!(a["state"], "ACTION_STATE_INACTIVE", "update leaves the state unchanged");
    assert_eq!(a["script"], "z");
    let re = reactivate(s, &id).await;
    assert_eq!(re.status, 200, "{re:?}");
    assert_write_details(&re.body["details"], "5", &org);
    assert_eq!(get_action(s, &id).await["details"]["sequence"], "5");

    // sequences are per action aggregate
    let c2 = create(s, json!({"name": "another", "script": "x"})).await;
    assert_eq!(c2.body["details"]["sequence"], "1", "{c2:?}");

    // the path parameter wins over an id in the body
    let r = update(s, &id, json!({"id": "123", "name": "path wins", "script": "z"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get_action(s, &id).await["name"], "path wins");
}

async fn update_omitted_fields_reset_to_zero(s: &TestServer) {
    let id = create_ok(s, json!({"name": "keep", "script": "x", "timeout": "5s", "allowedToFail": true})).await;
    let r = update(s, &id, json!({"name": "keep", "script": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let a = get_action(s, &id).await;
    assert_eq!(a["timeout"], "20s", "an omitted timeout resets to the default: {a}");
    assert!(a.get("allowedToFail").is_none(), "an omitted allowedToFail resets to false: {a}");
}

async fn update_no_changes(s: &TestServer) {
    let id = create_ok(s, json!({"name": "same", "script": "x", "timeout": "5s", "allowedToFail": true})).await;
    let r = update(s, &id, json!({"name": "same", "script": "x", "timeout": "5s", "allowedToFail": true})).await;
    assert_err_text(&r, 400, 9, "ACTION-dg4t2", "No changes");
    // the same duration spelled differently is still the same stored value
    let r = update(s, &id, json!({"name": "same", "script": "x", "timeout": "5.000s", "allowed_to_fail": true})).await;
    assert_err_text(&r, 400, 9, "ACTION-dg4t2", "No changes");
    assert_eq!(get_action(s, &id).await["details"]["sequence"], "1", "no event for no changes");

    // stored 0 vs omitted timeout: no change
    let id0 = create_ok(s, json!({"name": "zero", "script": "x"})).await;
    let r = update(s, &id0, json!({"name": "zero", "script": "x"})).await;
    assert_err_text(&r, 400, 9, "ACTION-dg4t2", "No changes");
    let r = update(s, &id0, json!({"name": "zero", "script": "x", "timeout": "0s"})).await;
    assert_err_text(&r, 400, 9, "ACTION-dg4t2", "No changes");
    // "No changes" compares stored values: stored 0 and "20s" differ, though both read as "20s".
    let r = update(s, &id0, json!({"name": "zero", "script": "x", "timeout": "20s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get_action(s, &id0).await["timeout"], "20s");

    // a change of case in the name is a change
    let r = update(s, &id0, json!({"name": "ZERO", "script": "x", "timeout": "20s"})).await;
    assert_eq!(r.status, 200, "{r:?}");

    // a deactivated action with identical values: still no changes
    deactivate(s, &id).await;
    let r = update(s, &id, json!({"name": "same", "script": "x", "timeout": "5s", "allowedToFail": true})).await;
    assert_err_text(&r, 400, 9, "ACTION-dg4t2", "No changes");
}

async fn update_not_found(s: &TestServer) {
    let r = update(s, "123", json!({"name": "n", "script": "x"})).await;
    assert_err_text(&r, 404, 5, "COMMAND-Sfg2t", "Action not found");

    let id = s.create_action(&s.admin, "deleted").await;
    s.delete(&action_path(&id), &s.admin).await;
    assert_err(&update(s, &id, json!({"name": "n", "script": "x"})).await, 404, 5, "COMMAND-Sfg2t");

    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let foreign = s.create_action(&owner, "foreign").await;
    assert_err(&update(s, &foreign, json!({"name": "n", "script": "x"})).await, 404, 5, "COMMAND-Sfg2t");
    let r = s.get(&action_path(&foreign), &owner).await;
    assert_eq!(r.body["action"]["name"], "foreign", "{r:?}");
}

async fn update_validation(s: &TestServer) {
    let id = create_ok(s, json!({"name": "valid", "script": "x"})).await;
    let name = "invalid UpdateActionRequest.Name: value length must be between 1 and 200 runes, inclusive";
    let script_msg = "invalid UpdateActionRequest.Script: value length must be between 1 and 10000 runes, inclusive";
    let timeout = "invalid UpdateActionRequest.Timeout: value must be inside range [0s, 20s]";
    assert_invalid(&update(s, &id, json!({"name": "", "script": "x"})).await, name);
    assert_invalid(&update(s, &id, json!({"script": "x"})).await, name);
    assert_invalid(&update(s, &id, json!({"name": "ö".repeat(201), "script": "x"})).await, name);
    assert_invalid(&update(s, &id, json!({"name": "n", "script": ""})).await, script_msg);
    assert_invalid(&update(s, &id, json!({"name": "n", "script": "ü".repeat(10001)})).await, script_msg);
    assert_invalid(&update(s, &id, json!({"name": "n", "script": "x", "timeout": "20.5s"})).await, timeout);
    assert_invalid(&update(s, &id, json!({"name": "n", "script": "x", "timeout": "-2s"})).await, timeout);
    assert_invalid_names(&update(s, &id, json!({"name": "n", "script": "x", "timeout": "1m"})).await, "timeout");
    // order: name, script, timeout
    assert_invalid(&update(s, &id, json!({"name": "", "script": "", "timeout": "99s"})).await, name);
    assert_invalid(&update(s, &id, json!({"name": "n", "script": "", "timeout": "99s"})).await, script_msg);
    // boundaries accepted
    let r = update(s, &id, json!({"name": "ö".repeat(200), "script": "ü".repeat(10000), "timeout": "20s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let a = get_action(s, &id).await;
    assert_eq!(a["name"], "ö".repeat(200));
    assert_eq!(a["details"]["sequence"], "2", "failed updates write no event");
}

// ---------------------------------------------------------------------------------------------
// DeactivateAction / ReactivateAction / DeleteAction

async fn deactivate_and_reactivate(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let id = create_ok(s, json!({"name": "toggle", "script": "x"})).await;

    let r = reactivate(s, &id).await;
    assert_err_text(&r, 400, 9, "COMMAND-J53zh", "Action is not inactive");

    let r = deactivate(s, &id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["details"]);
    assert_write_details(&r.body["details"], "2", &org);
    assert_eq!(get_action(s, &id).await["state"], "ACTION_STATE_INACTIVE");

    let r = deactivate(s, &id).await;
    assert_err_text(&r, 400, 9, "COMMAND-Dgj92", "Action is not active");

    let r = reactivate(s, &id).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["details"]);
    assert_write_details(&r.body["details"], "3", &org);
    assert_eq!(get_action(s, &id).await["state"], "ACTION_STATE_ACTIVE");

    // the body is ignored: no body, a body naming another id, even one that is not JSON
    let path = format!("{}/_deactivate", action_path(&id));
    let r = s.call(Method::POST, &path, Some(&s.admin), &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let path = format!("{}/_reactivate", action_path(&id));
    let r = s.call_raw(Method::POST, &path, Some(&s.admin), b"not json".to_vec()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&format!("{}/_deactivate", action_path(&id)), &s.admin, json!({"id": "123"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(get_action(s, &id).await["state"], "ACTION_STATE_INACTIVE");
}

async fn deactivate_reactivate_not_found(s: &TestServer) {
    assert_err(&deactivate(s, "123").await, 404, 5, "COMMAND-NRmhu");
    assert_err(&reactivate(s, "123").await, 404, 5, "COMMAND-Aa22g");

    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let foreign = s.create_action(&owner, "foreign").await;
    assert_err(&deactivate(s, &foreign).await, 404, 5, "COMMAND-NRmhu");
    let r = s.post(&format!("{}/_deactivate", action_path(&foreign)), &owner, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_err(&reactivate(s, &foreign).await, 404, 5, "COMMAND-Aa22g");

    let id = s.create_action(&s.admin, "deleted").await;
    s.delete(&action_path(&id), &s.admin).await;
    assert_err(&deactivate(s, &id).await, 404, 5, "COMMAND-NRmhu");
    assert_err(&reactivate(s, &id).await, 404, 5, "COMMAND-Aa22g");
}

async fn delete_action(s: &TestServer) {
    let id = s.create_action(&s.admin, "doomed").await;
    let keep = s.create_action(&s.admin, "kept").await;
    let r = s.delete(&action_path(&id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({}), "DeleteAction responds {{}}");

    assert_err(&s.get(&action_path(&id), &s.admin).await, 404, 5, "QUERY-GEfnb");
    assert_err(&s.delete(&action_path(&id), &s.admin).await, 404, 5, "COMMAND-Dgh4h");
    assert_err(&s.delete(&action_path("123"), &s.admin).await, 404, 5, "COMMAND-Dgh4h");

    let body = list_ok(s, json!({})).await;
    assert_eq!(result_ids(&body), [keep.as_str()], "deleted actions never appear: {body}");
    assert_eq!(body["details"]["totalResult"], "1");
    let body = list_ok(s, json!({"queries": [{"actionIdQuery": {"id": id}}]})).await;
    assert!(body.get("result").is_none(), "{body}");

    // inactive actions can be deleted; other orgs' cannot
    deactivate(s, &keep).await;
    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    assert_err(&s.delete(&action_path(&keep), &owner).await, 404, 5, "COMMAND-Dgh4h");
    let r = s.delete(&action_path(&keep), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({}));
}

async fn action_permissions(s: &TestServer) {
    let id = s.create_action(&s.admin, "guarded").await;
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    let owner = s.create_token("default", "ORG_OWNER").await;
    let denied = |r: &Reply| assert_err_text(r, 403, 7, "AUTH-5mWD2", "No matching permissions found");

    // viewers read
    assert_eq!(s.get(&action_path(&id), &viewer).await.status, 200);
    assert_eq!(s.post(SEARCH, &viewer, json!({})).await.status, 200);
    // ... but never write
    denied(&s.post(ACTIONS, &viewer, json!({"name": "v", "script": "x"})).await);
    denied(&s.put(&action_path(&id), &viewer, json!({"name": "v", "script": "x"})).await);
    denied(&s.post(&format!("{}/_deactivate", action_path(&id)), &viewer, json!({})).await);
    denied(&s.post(&format!("{}/_reactivate", action_path(&id)), &viewer, json!({})).await);
    denied(&s.delete(&action_path(&id), &viewer).await);
    // executors do neither
    denied(&s.get(&action_path(&id), &executor).await);
    denied(&s.post(SEARCH, &executor, json!({})).await);
    denied(&s.post(ACTIONS, &executor, json!({"name": "e", "script": "x"})).await);
    // owners do everything
    let r = s.post(ACTIONS, &owner, json!({"name": "o", "script": "x"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let oid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(s.put(&action_path(&oid), &owner, json!({"name": "o2", "script": "x"})).await.status, 200);
    assert_eq!(s.delete(&action_path(&oid), &owner).await.status, 200);
    assert_eq!(get_action(s, &id).await["state"], "ACTION_STATE_ACTIVE", "denied calls changed nothing");

    // no token / unknown token
    let r = s.call(Method::GET, &action_path(&id), None, &[], None).await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.code(), 16, "{r:?}");
    let r = s.get(&action_path(&id), "not-a-real-token").await;
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.code(), 16, "{r:?}");

    // org selection: an ORG_* token may name its own org
    let own = my_org(s, &owner).await;
    let r = s.call(Method::POST, SEARCH, Some(&owner), &[("x-zitadel-orgid", &own)], Some(json!({}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let other = s.create_org("other").await;
    let r = s.call(Method::POST, SEARCH, Some(&owner), &[("x-zitadel-orgid", &other)], Some(json!({}))).await;
    denied(&r);
    let r = s.call(Method::POST, SEARCH, Some(&s.admin), &[("x-zitadel-orgid", "123")], Some(json!({}))).await;
    assert_err_text(&r, 403, 7, "AUTH-Bs7Ds", "Organisation doesn't exist");
}

// ---------------------------------------------------------------------------------------------
// JSON conventions on CreateAction

async fn create_json_conventions(s: &TestServer) {
    // snake_case accepted, unknown fields ignored
    let id = create_ok(
        s,
        json!({"name": "snake", "script": "x", "allowed_to_fail": true, "unknownField": {"a": 1}, "x": [1]}),
    )
    .await;
    assert_eq!(get_action(s, &id).await["allowedToFail"], true);

    // wrong types name the field
    assert_invalid_names(&create(s, json!({"name": 5, "script": "x"})).await, "name");
    assert_invalid_names(&create(s, json!({"name": "n", "script": ["x"]})).await, "script");
    assert_invalid_names(
        &create(s, json!({"name": "n", "script": "x", "allowedToFail": "yes"})).await,
        "allowedToFail",
    );
    assert_invalid_names(&create(s, json!({"name": "n", "script": "x", "timeout": {"seconds": 1}})).await, "timeout");

    // malformed JSON and a non-object body: 400 code 3, JSON error body
    for raw in [&b"{\"name\": "[..], b"[1, 2]", b"\"str\"", b"{name: 1}"] {
        let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), raw.to_vec()).await;
        assert_eq!(r.status, 400, "{} -> {r:?}", String::from_utf8_lossy(raw));
        assert_eq!(r.code(), 3, "{r:?}");
        assert!(r.body["message"].is_string(), "{r:?}");
    }

    // a key given twice is refused, as protobuf's JSON mapping refuses it (not the last one
    // taken), at any depth; a form feed is not JSON whitespace
    for (raw, duplicate) in [
        (&br#"{"name": "dupA", "name": "dupB", "script": "function dupB() {}"}"#[..], "name"),
        (br#"{"name": "n", "script": "x", "timeout": "1s", "timeout": "2s"}"#, "timeout"),
    ] {
        let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), raw.to_vec()).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert!(r.body["message"].as_str().unwrap().contains(&format!("duplicate field \"{duplicate}\"")), "{r:?}");
    }
    let r = s
        .call_raw(
            Method::POST,
            "/management/v1/flows/2/trigger/4/_execute",
            Some(&s.admin),
            br#"{"context": {"claims": {"a": 1, "a": 2}}}"#.to_vec(),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("duplicate field \"a\""), "{r:?}");
    for raw in [&b"\x0c"[..], b" \x0c ", b"\x0b"] {
        let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), raw.to_vec()).await;
        assert_eq!(r.status, 400, "{raw:?}: {r:?}");
        assert!(r.body["message"].as_str().unwrap().contains("malformed JSON"), "{raw:?}: {r:?}");
    }

    // an empty body counts as {} (JSON whitespace too): the name check fails first
    let name_msg = "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive";
    let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), b" \r\n\t".to_vec()).await;
    assert_invalid(&r, name_msg);
    let r = s.call(Method::POST, ACTIONS, Some(&s.admin), &[], None).await;
    assert_invalid(&r, name_msg);
    let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), Vec::new()).await;
    assert_invalid(&r, name_msg);

    // nothing was created by the failed requests
    let body = list_ok(s, json!({})).await;
    assert_eq!(result_ids(&body), [id]);
}

// ---------------------------------------------------------------------------------------------
// ListActions

async fn list_actions_shape(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let r = list(s, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("result").is_none(), "no result when empty: {r:?}");
    assert!(r.body.get("sortingColumn").is_none(), "unset sortingColumn is omitted: {r:?}");
    let d = &r.body["details"];
    assert!(d.get("totalResult").is_none(), "totalResult 0 is omitted: {d}");
    let p0: u64 = d["processedSequence"].as_str().expect("processedSequence string").parse().expect("number");
    assert_timestamp(&d["viewTimestamp"]);

    let a = create_ok(s, json!({"name": "a", "script": "sa", "timeout": "3s", "allowedToFail": true})).await;
    let b = create_ok(s, json!({"name": "b", "script": "sb"})).await;
    deactivate(s, &b).await;

    // an empty body counts as {}
    let r = s.call_raw(Method::POST, SEARCH, Some(&s.admin), Vec::new()).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.call(Method::POST, SEARCH, Some(&s.admin), &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let body = r.body;
    let d = &body["details"];
    assert_eq!(d["totalResult"], "2", "{body}");
    let p1: u64 = d["processedSequence"].as_str().expect("processedSequence").parse().expect("number");
    assert!(p1 > p0, "processedSequence is the newest event's position: {p0} then {p1}");
    assert_timestamp(&d["viewTimestamp"]);
    let results = body["result"].as_array().expect("result");
    assert_eq!(results.len(), 2);
    let ra = results.iter().find(|x| x["id"] == a.as_str()).expect("a listed");
    assert_eq!(ra["name"], "a");
    assert_eq!(ra["script"], "sa");
    assert_eq!(ra["timeout"], "3s");
    assert_eq!(ra["allowedToFail"], true);
    assert_eq!(ra["state"], "ACTION_STATE_ACTIVE");
    assert_eq!(keys(&ra["details"]), ["changeDate", "creationDate", "resourceOwner", "sequence"]);
    assert_eq!(ra["details"]["resourceOwner"], org.as_str());
    assert_eq!(ra["details"]["sequence"], "1");
    let rb = results.iter().find(|x| x["id"] == b.as_str()).expect("b listed");
    assert_eq!(rb["state"], "ACTION_STATE_INACTIVE");
    assert_eq!(rb["timeout"], "20s");
    assert!(rb.get("allowedToFail").is_none(), "{rb}");
    assert_eq!(rb["details"]["sequence"], "2");
    // list items equal GetAction's
    assert_eq!(*ra, get_action(s, &a).await);
    assert_eq!(*rb, get_action(s, &b).await);
}

async fn list_actions_limit(s: &TestServer) {
    use futures::stream::{self, StreamExt};
    let n = 1001;
    let created: Vec<u16> = stream::iter(0..n)
        .map(|i| async move {
            let r = s.post(ACTIONS, &s.admin, json!({"name": format!("bulk{i:04}"), "script": "x"})).await;
            r.status.as_u16()
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(created.iter().all(|&st| st == 200), "all creates succeed");

    let body = list_ok(s, json!({"query": {"limit": 0}})).await;
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1000), "limit 0 means 1000");
    assert_eq!(body["details"]["totalResult"], "1001");
    let body = list_ok(s, json!({})).await;
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1000), "no limit means 1000");
    let body = list_ok(s, json!({"query": {"limit": 1000}})).await;
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1000));
    let body = list_ok(s, json!({"query": {"offset": 1000}})).await;
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["details"]["totalResult"], "1001");

    let r = list(s, json!({"query": {"limit": 1001}})).await;
    assert_err_text(&r, 400, 3, "QUERY-4M0fs", "Limit exceeded");
    let r = list(s, json!({"query": {"limit": 5000, "offset": 0}})).await;
    assert_err_text(&r, 400, 3, "QUERY-4M0fs", "Limit exceeded");
}

async fn list_actions_paging(s: &TestServer) {
    for name in ["e", "c", "a", "d", "b"] {
        s.create_action(&s.admin, name).await;
    }
    let page = |offset: Value, limit: Value| json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"offset": offset, "limit": limit, "asc": true}});
    let body = list_ok(s, page(json!(0), json!(2))).await;
    assert_eq!(result_names(&body), ["a", "b"]);
    assert_eq!(body["details"]["totalResult"], "5", "totalResult ignores offset/limit");
    let body = list_ok(s, page(json!("2"), json!(2))).await;
    assert_eq!(result_names(&body), ["c", "d"], "offset as a string");
    let body = list_ok(s, page(json!(4), json!(2))).await;
    assert_eq!(result_names(&body), ["e"]);
    assert_eq!(body["details"]["totalResult"], "5");
    let body = list_ok(s, page(json!("3"), json!(0))).await;
    assert_eq!(result_names(&body), ["d", "e"]);
    for past in [json!(5), json!(100)] {
        let body = list_ok(s, page(past.clone(), json!(2))).await;
        assert!(body.get("result").is_none(), "offset {past}: {body}");
        assert_eq!(body["details"]["totalResult"], "5", "totalResult also past the end (offset {past})");
    }
    // The same with a filter (the matches are counted and paged by one statement).
    let filtered = |offset: u64, asc: bool| {
        json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"offset": offset, "limit": 2, "asc": asc},
            "queries": [{"actionStateQuery": {"state": "ACTION_STATE_ACTIVE"}}]})
    };
    let body = list_ok(s, filtered(1, false)).await;
    assert_eq!(result_names(&body), ["d", "c"]);
    assert_eq!(body["details"]["totalResult"], "5");
    let body = list_ok(s, filtered(4, true)).await;
    assert_eq!(result_names(&body), ["e"]);
    let body = list_ok(s, filtered(7, true)).await;
    assert!(body.get("result").is_none(), "{body}");
    assert_eq!(body["details"]["totalResult"], "5", "filtered totalResult past the end");
}

async fn list_actions_text_query_methods(s: &TestServer) {
    for name in ["Alpha", "alphabet", "betaAlpha", "gamma"] {
        s.create_action(&s.admin, name).await;
    }
    let cases: &[(&str, &str, &[&str])] = &[
        ("TEXT_QUERY_METHOD_EQUALS", "Alpha", &["Alpha"]),
        ("TEXT_QUERY_METHOD_EQUALS", "alpha", &[]),
        ("TEXT_QUERY_METHOD_EQUALS", "ALPHABET", &[]),
        ("TEXT_QUERY_METHOD_EQUALS", "Alph", &[]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "ALPHA", &["Alpha"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "alphabet", &["alphabet"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "alph", &[]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "Alph", &["Alpha"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "alph", &["alphabet"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "ALPH", &[]),
        ("TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE", "ALPH", &["Alpha", "alphabet"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE", "lpha", &[]),
        ("TEXT_QUERY_METHOD_CONTAINS", "lpha", &["Alpha", "alphabet", "betaAlpha"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "Alpha", &["Alpha", "betaAlpha"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "aalpha", &[]),
        ("TEXT_QUERY_METHOD_CONTAINS", "GAMMA", &[]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "ALPHA", &["Alpha", "alphabet", "betaAlpha"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "AaLpHa", &["betaAlpha"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "Alpha", &["Alpha", "betaAlpha"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "alpha", &[]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "bet", &["alphabet"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "ALPHA", &["Alpha", "betaAlpha"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "MMA", &["gamma"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "gam", &[]),
    ];
    let number = |m: &str| match m {
        "TEXT_QUERY_METHOD_EQUALS" => 0,
        "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE" => 1,
        "TEXT_QUERY_METHOD_STARTS_WITH" => 2,
        "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE" => 3,
        "TEXT_QUERY_METHOD_CONTAINS" => 4,
        "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE" => 5,
        "TEXT_QUERY_METHOD_ENDS_WITH" => 6,
        "TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE" => 7,
        _ => unreachable!(),
    };
    for (method, value, expected) in cases {
        let by_name = names_matching(s, json!({"name": value, "method": method})).await;
        assert_eq!(by_name, *expected, "{method} {value:?}");
        let by_number = names_matching(s, json!({"name": value, "method": number(method)})).await;
        assert_eq!(by_number, *expected, "{method} ({}) {value:?}", number(method));
    }
    // the default method is EQUALS
    assert_eq!(names_matching(s, json!({"name": "Alpha"})).await, ["Alpha"]);
    assert!(names_matching(s, json!({"name": "alpha"})).await.is_empty());
    // an unknown method is a 400 naming the field
    let r =
        list(s, json!({"queries": [{"actionNameQuery": {"name": "a", "method": "TEXT_QUERY_METHOD_REGEX"}}]})).await;
    assert_invalid_names(&r, "method");
}

async fn list_actions_wildcards_match_literally(s: &TestServer) {
    for name in ["a%c", "a_c", "a\\c", "abc", "axc", "a%", "A_Z"] {
        s.create_action(&s.admin, name).await;
    }
    let cases: &[(&str, &str, &[&str])] = &[
        ("TEXT_QUERY_METHOD_EQUALS", "a_c", &["a_c"]),
        ("TEXT_QUERY_METHOD_EQUALS", "a%c", &["a%c"]),
        ("TEXT_QUERY_METHOD_EQUALS", "a%", &["a%"]),
        ("TEXT_QUERY_METHOD_EQUALS", "a\\c", &["a\\c"]),
        ("TEXT_QUERY_METHOD_EQUALS", "%", &[]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "A_C", &["a_c"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "A%", &["a%"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "A\\C", &["a\\c"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "a_", &["a_c"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "a%", &["a%", "a%c"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "a\\", &["a\\c"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "_", &[]),
        ("TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE", "A_", &["A_Z", "a_c"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE", "A\\", &["a\\c"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "%", &["a%", "a%c"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "_", &["A_Z", "a_c"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "\\", &["a\\c"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "%c", &["a%c"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "%C", &["a%c"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "_", &["A_Z", "a_c"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "\\", &["a\\c"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "%", &["a%"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "_c", &["a_c"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "\\c", &["a\\c"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "_C", &["a_c"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "\\C", &["a\\c"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "%", &["a%"]),
    ];
    for (method, value, expected) in cases {
        let got = names_matching(s, json!({"name": value, "method": method})).await;
        assert_eq!(got, *expected, "{method} {value:?}");
    }
}

async fn list_actions_ignore_case_unicode(s: &TestServer) {
    for name in ["Äpfel", "straße", "STRASSE", "Éclair", "ÖL"] {
        s.create_action(&s.admin, name).await;
    }
    let cases: &[(&str, &str, &[&str])] = &[
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "äpfel", &["Äpfel"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "ÄPFEL", &["Äpfel"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "apfel", &[]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "STRASSE", &["STRASSE"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "strasse", &["STRASSE"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "STRAßE", &["straße"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "STRAẞE", &["straße"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "éclair", &["Éclair"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "e\u{301}clair", &["Éclair"]),
        ("TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE", "öl", &["ÖL"]),
        ("TEXT_QUERY_METHOD_EQUALS", "äpfel", &[]),
        ("TEXT_QUERY_METHOD_EQUALS", "Äpfel", &["Äpfel"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE", "äp", &["Äpfel"]),
        ("TEXT_QUERY_METHOD_STARTS_WITH", "äp", &[]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "SS", &["STRASSE"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "ß", &["straße"]),
        ("TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE", "ÄPF", &["Äpfel"]),
        ("TEXT_QUERY_METHOD_CONTAINS", "ÄPF", &[]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "AßE", &["straße"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE", "ASSE", &["STRASSE"]),
        ("TEXT_QUERY_METHOD_ENDS_WITH", "Öl", &[]),
    ];
    for (method, value, expected) in cases {
        let got = names_matching(s, json!({"name": value, "method": method})).await;
        assert_eq!(got, *expected, "{method} {value:?}");
    }
}

async fn list_actions_id_state_and_combined_queries(s: &TestServer) {
    let a1 = s.create_action(&s.admin, "one").await;
    let a2 = s.create_action(&s.admin, "two").await;
    let a3 = s.create_action(&s.admin, "three").await;
    deactivate(s, &a2).await;
    deactivate(s, &a3).await;
    let sorted = |mut v: Vec<String>| {
        v.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        v
    };

    let body = list_ok(s, json!({"queries": [{"actionIdQuery": {"id": a2}}]})).await;
    assert_eq!(result_ids(&body), [a2.as_str()]);
    assert_eq!(body["details"]["totalResult"], "1");
    let body = list_ok(s, json!({"queries": [{"actionIdQuery": {"id": "123"}}]})).await;
    assert!(body.get("result").is_none(), "{body}");
    assert!(body["details"].get("totalResult").is_none(), "{body}");

    for state in [json!("ACTION_STATE_INACTIVE"), json!(1)] {
        let body = list_ok(s, json!({"queries": [{"actionStateQuery": {"state": state}}]})).await;
        assert_eq!(sorted(result_ids(&body)), sorted(vec![a2.clone(), a3.clone()]), "state {state}");
    }
    for state in [json!("ACTION_STATE_ACTIVE"), json!(2)] {
        let body = list_ok(s, json!({"queries": [{"actionStateQuery": {"state": state}}]})).await;
        assert_eq!(result_ids(&body), [a1.as_str()], "state {state}");
    }

    // ANDed
    let body = list_ok(
        s,
        json!({"queries": [
            {"actionStateQuery": {"state": "ACTION_STATE_INACTIVE"}},
            {"actionNameQuery": {"name": "t", "method": "TEXT_QUERY_METHOD_STARTS_WITH"}},
            {"actionNameQuery": {"name": "e", "method": "TEXT_QUERY_METHOD_ENDS_WITH"}}
        ]}),
    )
    .await;
    assert_eq!(result_ids(&body), [a3.as_str()]);
    let body = list_ok(
        s,
        json!({"queries": [
            {"actionIdQuery": {"id": a1}},
            {"actionStateQuery": {"state": "ACTION_STATE_INACTIVE"}}
        ]}),
    )
    .await;
    assert!(body.get("result").is_none(), "{body}");
    let body = list_ok(s, json!({"queries": [{"actionIdQuery": {"id": a1}}, {"actionIdQuery": {"id": a2}}]})).await;
    assert!(body.get("result").is_none(), "two different ids ANDed match nothing: {body}");
}

async fn list_actions_empty_query_element(s: &TestServer) {
    let r = list(s, json!({"queries": [{}]})).await;
    assert_invalid(
        &r,
        "invalid ListActionsRequest.Queries[0]: embedded message failed validation | caused by: invalid ActionQuery.Query: value is required",
    );
    let r = list(s, json!({"queries": [{"actionNameQuery": {"name": "a"}}, {"unknown": 1}]})).await;
    assert_invalid(
        &r,
        "invalid ListActionsRequest.Queries[1]: embedded message failed validation | caused by: invalid ActionQuery.Query: value is required",
    );
    // A NUL is named with the same path spelling as every other error.
    let r = list(s, json!({"queries": [{"actionNameQuery": {"name": "a\u{0}"}}]})).await;
    assert_invalid(&r, "invalid ListActionsRequest.Queries[0].ActionNameQuery.Name: must not contain NUL characters");
    let r = s.post("/management/v1/flows/2/trigger/4", &s.admin, json!({"actionIds": ["1", "a\u{0}"]})).await;
    assert_invalid(&r, "invalid SetTriggerActionsRequest.ActionIds[1]: must not contain NUL characters");
    // Unknown fields are ignored whatever they hold, also a NUL (in the value or the name, at the
    // top or inside a known message); a free-form value is looked at whole.
    let r = list(
        s,
        json!({"queries": [{"actionNameQuery": {"name": "a", "x\u{0}": 1}, "odd": "\u{0}"}], "unknownField": "a\u{0}b", "a\u{0}b": 1}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post("/zitadel.management.v1.ManagementService/GetMyOrg", &s.admin, json!({"x": "\u{0}"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // At most 100 queries in one request (they are ANDed): 100 is fine, thousands are a 400,
    // never a statement too deep to build (ListRuns alike).
    let id = s.create_action(&s.admin, "q").await;
    let queries = |n: usize| json!({"queries": vec![json!({"actionIdQuery": {"id": id}}); n]});
    let body = list_ok(s, queries(100)).await;
    assert_eq!(body["result"].as_array().map(Vec::len), Some(1), "{body}");
    for n in [101, 5_000] {
        assert_invalid(
            &list(s, queries(n)).await,
            "invalid ListActionsRequest.Queries: value must contain at most 100 item(s)",
        );
        let runs = json!({"queries": vec![json!({"outcomeQuery": {"outcome": "OUTCOME_FAILED"}}); n]});
        let r = s.post("/management/v1/runs/_search", &s.admin, runs).await;
        assert_invalid(&r, "invalid ListRunsRequest.Queries: value must contain at most 100 item(s)");
    }
    assert_eq!(s.get("/management/v1/orgs/me", &s.admin).await.status, 200, "the server is fine");
}

async fn list_actions_sorting(s: &TestServer) {
    // creation order differs from name order; NAME sorts by code point (upper case before lower, ä last)
    let names = ["b", "C", "a", "ä", "Z"];
    let mut ids = std::collections::HashMap::new();
    let mut created = Vec::new();
    for name in names {
        let id = s.create_action(&s.admin, name).await;
        ids.insert(name, id.clone());
        created.push(id);
    }
    deactivate(s, &ids["C"]).await;
    deactivate(s, &ids["ä"]).await;
    let name_of = |id: &str| ids.iter().find(|(_, v)| v.as_str() == id).map(|(k, _)| k.to_string()).unwrap();
    let by_id = {
        let mut v = created.clone();
        v.sort_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        v
    };
    let rev = |v: &[String]| v.iter().rev().cloned().collect::<Vec<_>>();

    let run = |column: Value, asc: bool| async move {
        let body = list_ok(s, json!({"sortingColumn": column, "query": {"asc": asc}})).await;
        (result_ids(&body), body)
    };

    // NAME
    let (got, body) = run(json!("ACTION_FIELD_NAME_NAME"), true).await;
    assert_eq!(got.iter().map(|i| name_of(i)).collect::<Vec<_>>(), ["C", "Z", "a", "b", "ä"]);
    assert_eq!(body["sortingColumn"], "ACTION_FIELD_NAME_NAME", "sortingColumn echoed: {body}");
    let (got, _) = run(json!("ACTION_FIELD_NAME_NAME"), false).await;
    assert_eq!(got.iter().map(|i| name_of(i)).collect::<Vec<_>>(), ["ä", "b", "a", "Z", "C"]);
    let (got, body) = run(json!(1), true).await;
    assert_eq!(got.iter().map(|i| name_of(i)).collect::<Vec<_>>(), ["C", "Z", "a", "b", "ä"], "by number");
    assert_eq!(body["sortingColumn"], "ACTION_FIELD_NAME_NAME", "echoed by name: {body}");

    // ID
    let (got, body) = run(json!("ACTION_FIELD_NAME_ID"), true).await;
    assert_eq!(got, by_id);
    assert_eq!(body["sortingColumn"], "ACTION_FIELD_NAME_ID");
    let (got, _) = run(json!(2), false).await;
    assert_eq!(got, rev(&by_id));

    // STATE: INACTIVE (1) before ACTIVE (2) ascending, ties by id in the same direction
    let inactive: Vec<String> = by_id.iter().filter(|i| ["C", "ä"].contains(&name_of(i).as_str())).cloned().collect();
    let active: Vec<String> = by_id.iter().filter(|i| !inactive.contains(i)).cloned().collect();
    let (got, body) = run(json!("ACTION_FIELD_NAME_STATE"), true).await;
    assert_eq!(got, [inactive.clone(), active.clone()].concat());
    assert_eq!(body["sortingColumn"], "ACTION_FIELD_NAME_STATE");
    let (got, _) = run(json!(3), false).await;
    assert_eq!(got, [rev(&active), rev(&inactive)].concat());

    // UNSPECIFIED: creation order, direction from asc; not echoed (zero value)
    let (got, body) = run(json!("ACTION_FIELD_NAME_UNSPECIFIED"), true).await;
    assert_eq!(got, created);
    assert!(body.get("sortingColumn").is_none(), "{body}");
    let (got, body) = run(json!(0), false).await;
    assert_eq!(got, rev(&created));
    assert!(body.get("sortingColumn").is_none(), "{body}");

    // snake_case and string offsets combine with sorting
    let body = list_ok(
        s,
        json!({"sorting_column": "ACTION_FIELD_NAME_NAME", "query": {"asc": true, "offset": "1", "limit": 2}}),
    )
    .await;
    assert_eq!(result_names(&body), ["Z", "a"]);
    assert_eq!(body["sortingColumn"], "ACTION_FIELD_NAME_NAME");
    assert_eq!(body["details"]["totalResult"], "5");
}

async fn list_actions_only_own_org(s: &TestServer) {
    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let viewer = s.create_token(&other, "ORG_VIEWER").await;
    let mine = s.create_action(&s.admin, "shared-name").await;
    let theirs = s.create_action(&owner, "shared-name").await;
    let theirs2 = s.create_action(&owner, "second").await;

    let body = list_ok(s, json!({})).await;
    assert_eq!(result_ids(&body), [mine.as_str()]);
    assert_eq!(body["details"]["totalResult"], "1");

    let r = s.post(SEARCH, &viewer, json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"asc": true}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_ids(&r.body), [theirs2.clone(), theirs.clone()]);
    assert_eq!(r.body["details"]["totalResult"], "2");
    for item in r.body["result"].as_array().unwrap() {
        assert_eq!(item["details"]["resourceOwner"], other.as_str());
    }

    let r = s
        .call(
            Method::POST,
            SEARCH,
            Some(&s.admin),
            &[("x-zitadel-orgid", &other)],
            Some(json!({"queries": [{"actionIdQuery": {"id": mine}}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("result").is_none(), "another org's id is not found by id: {r:?}");
}

async fn list_actions_json_conventions(s: &TestServer) {
    for name in ["a", "b", "c"] {
        s.create_action(&s.admin, name).await;
    }
    // unknown fields ignored, int64 offset as number or string, snake_case, enums by number
    let body = list_ok(
        s,
        json!({"unknown": true, "sorting_column": 1, "query": {"offset": 1, "asc": true, "extra": "x"},
               "queries": [{"action_name_query": {"name": "A", "method": 5}}]}),
    )
    .await;
    // action_name_query (snake_case) with CONTAINS_IGNORE_CASE "A" matches "a" only; offset 1 skips it
    assert!(body.get("result").is_none(), "{body}");
    assert_eq!(body["details"]["totalResult"], "1", "{body}");
    let body =
        list_ok(s, json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"offset": "2", "asc": true}})).await;
    assert_eq!(result_names(&body), ["c"]);

    // wrong types are 400 code 3 naming the field
    assert_invalid_names(&list(s, json!({"query": {"limit": "many"}})).await, "limit");
    assert_invalid_names(&list(s, json!({"query": {"offset": "x"}})).await, "offset");
    assert_invalid_names(&list(s, json!({"query": {"offset": -1}})).await, "offset");
    assert_invalid_names(&list(s, json!({"query": {"limit": -1}})).await, "limit");
    assert_invalid_names(&list(s, json!({"query": {"offset": 1.5}})).await, "offset");
    assert_invalid_names(&list(s, json!({"query": {"asc": "yes"}})).await, "asc");
    assert_invalid_names(&list(s, json!({"query": 5})).await, "query");
    assert_invalid_names(&list(s, json!({"sortingColumn": "ACTION_FIELD_NAME_COLOR"})).await, "sortingColumn");
    assert_invalid_names(&list(s, json!({"queries": "all"})).await, "queries");
    assert_invalid_names(&list(s, json!({"queries": [{"actionStateQuery": {"state": "ON"}}]})).await, "state");
    assert_invalid_names(&list(s, json!({"queries": [{"actionIdQuery": {"id": 5}}]})).await, "id");

    // malformed JSON
    let r = s.call_raw(Method::POST, SEARCH, Some(&s.admin), b"{\"query\":".to_vec()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
}

async fn list_actions_huge_offset(s: &TestServer) {
    // query.offset is a uint64: offsets beyond i64 are past the end, never a 500
    for name in ["a", "b"] {
        s.create_action(&s.admin, name).await;
    }
    // beyond uint64 is a 400 naming the field
    let r = list(s, json!({"query": {"offset": "18446744073709551616"}})).await;
    assert_invalid_names(&r, "offset");
    // As JSON numbers too: 2^64 and beyond (also spelled as floats), and fractions.
    for raw in ["18446744073709551616", "18446744073709551615.5", "1e300", "1.5"] {
        let body = format!(r#"{{"query": {{"offset": {raw}, "limit": 1}}}}"#);
        let r = s.call_raw(Method::POST, SEARCH, Some(&s.admin), body.into_bytes()).await;
        assert_invalid_names(&r, "offset");
        // The message quotes no number the client did not send (a float prints rounded).
        let message = r.body["message"].as_str().unwrap_or_default();
        assert!(!message.contains("18446744073709552000") && !message.contains("1e300"), "{raw}: {message}");
        assert!(message.contains("not an integer from 0 to 18446744073709551615"), "{raw}: {message}");
    }
    // Whole numbers written with an exponent or a fraction of zero are numbers like others.
    for body in [r#"{"query": {"offset": 1e0, "limit": 2.0}}"#, r#"{"query": {"offset": 1e16, "limit": 2}}"#] {
        let r = s.call_raw(Method::POST, SEARCH, Some(&s.admin), body.as_bytes().to_vec()).await;
        assert_eq!((r.status.as_u16(), &r.body["details"]["totalResult"]), (200, &json!("2")), "{body}: {r:?}");
    }
    let mut failures = Vec::new();
    for offset in [
        json!("9223372036854775807"),
        json!("9223372036854775808"),
        json!(9223372036854775808u64),
        json!("18446744073709551615"),
    ] {
        let r = list(s, json!({"query": {"offset": offset, "limit": 1}})).await;
        let good = r.status == 200 && r.body.get("result").is_none() && r.body["details"]["totalResult"] == "2";
        if !good {
            failures.push(format!("offset {offset}: {r:?}"));
        }
    }
    assert!(failures.is_empty(), "expected 200, no result, totalResult \"2\":\n{}", failures.join("\n"));
}

async fn list_actions_query_with_two_kinds_is_invalid(s: &TestServer) {
    let id = s.create_action(&s.admin, "a").await;
    // ActionQuery is exactly one of actionIdQuery, actionNameQuery, actionStateQuery
    let r = list(s, json!({"queries": [{"actionIdQuery": {"id": id}, "actionNameQuery": {"name": "a"}}]})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
}

async fn list_actions_ignore_case_is_folding_not_lowercasing(s: &TestServer) {
    for name in ["ΣΟΦΟΣ", "Kelvin"] {
        s.create_action(&s.admin, name).await;
    }
    let eq = "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE";
    // final sigma: ς, σ and Σ all fold to σ
    for q in ["σοφος", "σοφοσ", "ΣΟΦΟς", "ςοφος"] {
        assert_eq!(names_matching(s, json!({"name": q, "method": eq})).await, ["ΣΟΦΟΣ"], "{q}");
    }
    // KELVIN SIGN folds to k
    assert_eq!(names_matching(s, json!({"name": "\u{212A}ELVIN", "method": eq})).await, ["Kelvin"]);
    // and the same folding makes names clash
    let r = create(s, json!({"name": "σοφοσ", "script": "x"})).await;
    assert_err(&r, 409, 6, "V3-DKcYh");
    let r = create(s, json!({"name": "\u{212A}elvin", "script": "x"})).await;
    assert_err(&r, 409, 6, "V3-DKcYh");
}

async fn list_actions_sort_name_beyond_bmp(s: &TestServer) {
    // code point order, not UTF-16 order: U+FFFD < U+1F600
    for name in ["😀", "\u{FFFD}", "z", "\u{E000}"] {
        s.create_action(&s.admin, name).await;
    }
    let body = list_ok(s, json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"asc": true}})).await;
    assert_eq!(result_names(&body), ["z", "\u{E000}", "\u{FFFD}", "😀"]);
    let body = list_ok(s, json!({"sortingColumn": "ACTION_FIELD_NAME_NAME", "query": {"asc": false}})).await;
    assert_eq!(result_names(&body), ["😀", "\u{FFFD}", "\u{E000}", "z"]);
}

async fn create_same_name_concurrently(s: &TestServer) {
    let names = ["race", "RACE", "Race", "rAce", "raCe", "racE", "RAce", "raCE", "RaCe", "rACE", "RACe", "rACe"];
    let replies = futures::future::join_all(names.iter().map(|n| create(s, json!({"name": n, "script": "x"})))).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one wins: {replies:?}");
    for r in replies.iter().filter(|r| r.status != 200) {
        assert_err(r, 409, 6, "V3-DKcYh");
    }
    let body = list_ok(s, json!({})).await;
    assert_eq!(body["details"]["totalResult"], "1", "{body}");
}

async fn concurrent_updates_of_one_action(s: &TestServer) {
    let id = create_ok(s, json!({"name": "busy", "script": "x"})).await;
    let n = 10;
    let replies = futures::future::join_all(
        (0..n).map(|i| update(s, &id, json!({"name": format!("busy{i}"), "script": format!("s{i}")}))),
    )
    .await;
    let mut seqs: Vec<u64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "writes are serialized, never aborted: {r:?}");
            r.body["details"]["sequence"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, (2..=n + 1).collect::<Vec<u64>>(), "one event each, in sequence");
    let a = get_action(s, &id).await;
    assert_eq!(a["details"]["sequence"], (n + 1).to_string());
}

async fn wrong_method_and_body_limit(s: &TestServer) {
    let id = s.create_action(&s.admin, "a").await;
    let not_allowed = json!({"code": 12, "message": "Method Not Allowed"});
    for (method, path) in [
        (Method::GET, ACTIONS.to_string()),
        (Method::PATCH, action_path(&id)),
        (Method::POST, action_path(&id)),
        (Method::GET, format!("{}/_deactivate", action_path(&id))),
        (Method::PUT, SEARCH.to_string()),
    ] {
        let r = s.call(method.clone(), &path, Some(&s.admin), &[], None).await;
        assert_eq!(r.status, 405, "{method} {path}: {r:?}");
        assert_eq!(r.body, not_allowed, "{method} {path}");
    }
    let r = s.get("/management/v1/actionz", &s.admin).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body, json!({"code": 5, "message": "Not Found"}));

    // bodies over 1 MiB: 413, code 8
    let big = format!("{{\"name\": \"big\", \"script\": \"{}\"}}", "x".repeat(1 << 20));
    let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), big.into_bytes()).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.code(), 8, "{r:?}");
    let mut shape: Vec<&String> = r.body.as_object().expect("an object").keys().collect();
    shape.sort();
    assert_eq!(shape, ["code", "message"], "the shape of the 404 and 405 bodies: {r:?}");
    assert_eq!(list_ok(s, json!({})).await["details"]["totalResult"], "1");
}

backend_tests!(
    create_action_returns_id_and_write_details,
    get_action_returns_full_action,
    create_name_length_boundaries,
    create_script_length_boundaries,
    create_timeout_range_and_format,
    create_validation_order,
    create_name_clash_is_case_insensitive,
    delete_frees_name,
    get_action_not_found,
    update_action_replaces_fields_and_bumps_sequence,
    update_omitted_fields_reset_to_zero,
    update_no_changes,
    update_not_found,
    update_validation,
    deactivate_and_reactivate,
    deactivate_reactivate_not_found,
    delete_action,
    action_permissions,
    create_json_conventions,
    list_actions_shape,
    list_actions_limit,
    list_actions_paging,
    list_actions_text_query_methods,
    list_actions_wildcards_match_literally,
    list_actions_ignore_case_unicode,
    list_actions_id_state_and_combined_queries,
    list_actions_empty_query_element,
    list_actions_sorting,
    list_actions_only_own_org,
    list_actions_json_conventions,
    list_actions_huge_offset,
    list_actions_query_with_two_kinds_is_invalid,
    list_actions_ignore_case_is_folding_not_lowercasing,
    list_actions_sort_name_beyond_bmp,
    create_same_name_concurrently,
    concurrent_updates_of_one_action,
    wrong_method_and_body_limit,
);
