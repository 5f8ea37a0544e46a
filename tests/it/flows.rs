//! Black-box tests of flows and triggers (ListFlowTypes, ListFlowTriggerTypes, GetFlow,
//! SetTriggerActions, ClearFlow) over the REST gateway, against README, "Walkthrough with curl"

use crate::common;

use common::{assert_err, assert_err_text, Reply, TestServer};
use reqwest::Method;
use serde_json::{json, Value};

const FLOW_TYPES: [(&str, &str, &str, &str); 4] = [
    ("1", "Action.Flow.Type.ExternalAuthentication", "External Authentication", "Externe Authentifizierung"),
    ("2", "Action.Flow.Type.CustomiseToken", "Complement Token", "Token ergänzen"),
    ("3", "Action.Flow.Type.InternalAuthentication", "Internal Authentication", "Interne Authentifizierung"),
    ("4", "Action.Flow.Type.CustomizeSAMLResponse", "Complement SAMLResponse", "SAMLResponse ergänzen"),
];

const TRIGGER_TYPES: [(&str, &str, &str, &str); 6] = [
    ("1", "Action.TriggerType.PostAuthentication", "Post Authentication", "Nach Authentifizierung"),
    ("2", "Action.TriggerType.PreCreation", "Pre Creation", "Vor Erstellung"),
    ("3", "Action.TriggerType.PostCreation", "Post Creation", "Nach Erstellung"),
    ("4", "Action.TriggerType.PreUserinfoCreation", "Pre Userinfo creation", "Vor Userinfo-Erstellung"),
    ("5", "Action.TriggerType.PreAccessTokenCreation", "Pre access token creation", "Vor Access-Token-Erstellung"),
    ("6", "Action.TriggerType.PreSAMLResponseCreation", "Pre SAMLResponse creation", "Vor SAMLResponse-Erstellung"),
];

fn localized(table: &[(&str, &str, &str, &str)], id: &str, german: bool) -> Value {
    let (id, key, en, de) = table.iter().find(|t| t.0 == id).expect("known id");
    json!({"id": id, "name": {"key": key, "localizedMessage": if german { de } else { en }}})
}

fn flow_type(id: &str) -> Value {
    localized(&FLOW_TYPES, id, false)
}

fn trigger_type(id: &str) -> Value {
    localized(&TRIGGER_TYPES, id, false)
}

#[track_caller]
fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("timestamp expected, got {v}"));
    assert!(s.ends_with('Z'), "timestamp {s} must be UTC with Z");
    chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("timestamp {s}: {e}"));
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
    k.sort();
    k
}

fn seq(v: &Value) -> u64 {
    v.as_str().unwrap_or_else(|| panic!("sequence string expected, got {v}")).parse().expect("decimal sequence")
}

async fn my_org(s: &TestServer, token: &str) -> String {
    let r = s.get("/management/v1/orgs/me", token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["org"]["id"].as_str().expect("org id").to_string()
}

fn trigger_path(flow: &str, trigger: &str) -> String {
    format!("/management/v1/flows/{flow}/trigger/{trigger}")
}

async fn set_trigger(s: &TestServer, flow: &str, trigger: &str, ids: &[&str]) -> Reply {
    s.post(&trigger_path(flow, trigger), &s.admin, json!({"actionIds": ids})).await
}

async fn set_trigger_ok(s: &TestServer, flow: &str, trigger: &str, ids: &[&str]) -> Value {
    let r = set_trigger(s, flow, trigger, ids).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["details"].clone()
}

async fn get_flow(s: &TestServer, flow: &str) -> Value {
    let r = s.get(&format!("/management/v1/flows/{flow}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["flow"], "{r:?}");
    r.body["flow"].clone()
}

async fn clear_flow(s: &TestServer, flow: &str) -> Reply {
    s.post(&format!("/management/v1/flows/{flow}/_clear"), &s.admin, json!({})).await
}

async fn get_action(s: &TestServer, id: &str) -> Value {
    let r = s.get(&format!("/management/v1/actions/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["action"].clone()
}

/// `[(trigger id, [action ids])]` of a GetFlow `flow`.
fn trigger_ids(flow: &Value) -> Vec<(String, Vec<String>)> {
    flow["triggerActions"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    let ids = t["actions"]
                        .as_array()
                        .map(|a| a.iter().map(|x| x["id"].as_str().unwrap_or("").to_string()).collect())
                        .unwrap_or_default();
                    (t["triggerType"]["id"].as_str().unwrap_or("").to_string(), ids)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tr(trigger: &str, ids: &[&String]) -> (String, Vec<String>) {
    (trigger.to_string(), ids.iter().map(|s| s.to_string()).collect())
}

#[track_caller]
fn assert_empty_flow(flow: &Value, id: &str) {
    assert_eq!(
        *flow,
        json!({"type": flow_type(id), "details": {}, "state": "FLOW_STATE_ACTIVE"}),
        "an empty flow has details {{}} and no triggerActions"
    );
}

// ---------------------------------------------------------------------------------------------

async fn list_flow_types(s: &TestServer) {
    let expected_en: Vec<Value> = FLOW_TYPES.iter().map(|t| localized(&FLOW_TYPES, t.0, false)).collect();
    let expected_de: Vec<Value> = FLOW_TYPES.iter().map(|t| localized(&FLOW_TYPES, t.0, true)).collect();

    let r = s.post("/management/v1/flows/types/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"result": expected_en}));

    // the body is ignored
    let r = s.call_raw(Method::POST, "/management/v1/flows/types/_search", Some(&s.admin), b"garbage".to_vec()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"result": expected_en}));
    let r = s.call(Method::POST, "/management/v1/flows/types/_search", Some(&s.admin), &[], None).await;
    assert_eq!(r.body, json!({"result": expected_en}), "{r:?}");

    for lang in ["de", "de-DE", "de-CH,de;q=0.9,en;q=0.8"] {
        let r = s
            .call(
                Method::POST,
                "/management/v1/flows/types/_search",
                Some(&s.admin),
                &[("accept-language", lang)],
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, json!({"result": expected_de}), "Accept-Language: {lang}");
    }
    for lang in ["en", "fr", "en-US,de;q=0.5"] {
        let r = s
            .call(
                Method::POST,
                "/management/v1/flows/types/_search",
                Some(&s.admin),
                &[("accept-language", lang)],
                Some(json!({})),
            )
            .await;
        assert_eq!(r.body, json!({"result": expected_en}), "Accept-Language: {lang}");
    }

    // viewers may read flow types
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let r = s.post("/management/v1/flows/types/_search", &viewer, json!({})).await;
    assert_eq!(r.body, json!({"result": expected_en}), "{r:?}");
}

async fn list_flow_trigger_types(s: &TestServer) {
    let per_flow: [(&str, &[&str]); 5] = [
        ("1", &["1", "2", "3"]),
        ("2", &["4", "5"]),
        ("3", &["1", "2", "3"]),
        ("4", &["6"]),
        ("FLOW_TYPE_EXTERNAL_AUTHENTICATION", &["1", "2", "3"]),
    ];
    for (flow, triggers) in per_flow {
        let path = format!("/management/v1/flows/{flow}/triggers/_search");
        let r = s.post(&path, &s.admin, json!({})).await;
        assert_eq!(r.status, 200, "flow {flow}: {r:?}");
        let expected: Vec<Value> = triggers.iter().map(|t| trigger_type(t)).collect();
        assert_eq!(r.body, json!({"result": expected}), "flow {flow}");

        let r = s.call(Method::POST, &path, Some(&s.admin), &[("accept-language", "de")], None).await;
        let expected: Vec<Value> = triggers.iter().map(|t| localized(&TRIGGER_TYPES, t, true)).collect();
        assert_eq!(r.body, json!({"result": expected}), "flow {flow} in German: {r:?}");
    }
    // the body is ignored (even a "type" in it)
    let r = s.post("/management/v1/flows/4/triggers/_search", &s.admin, json!({"type": "2"})).await;
    assert_eq!(r.body, json!({"result": [trigger_type("6")]}), "{r:?}");

    // Only the names the contract lists (those of ZITADEL's v1 enums) are spellings of a type.
    for flow in
        ["0", "5", "99", "abc", "FLOW_TYPE_UNSPECIFIED", "FLOW_TYPE_CUSTOMISE_TOKEN", "FLOW_TYPE_CUSTOMIZE_TOKEN"]
    {
        let r = s.post(&format!("/management/v1/flows/{flow}/triggers/_search"), &s.admin, json!({})).await;
        assert_err(&r, 404, 5, "MANAG-P2OBk");
    }
}

async fn get_flow_empty_and_unknown(s: &TestServer) {
    for flow in ["1", "2", "3", "4"] {
        assert_empty_flow(&get_flow(s, flow).await, flow);
    }
    assert_empty_flow(&get_flow(s, "FLOW_TYPE_EXTERNAL_AUTHENTICATION").await, "1");

    let r = s.call(Method::GET, "/management/v1/flows/3", Some(&s.admin), &[("accept-language", "de")], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body,
        json!({"flow": {"type": localized(&FLOW_TYPES, "3", true), "details": {}, "state": "FLOW_STATE_ACTIVE"}})
    );

    for flow in ["0", "5", "abc", "FLOW_TYPE_UNSPECIFIED"] {
        let r = s.get(&format!("/management/v1/flows/{flow}"), &s.admin).await;
        assert_err_text(&r, 400, 3, "COMMAND-Dfw2h", "FlowType missing");
    }
}

async fn set_trigger_actions_and_get_flow(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let a1 = s.create_action(&s.admin, "first").await;
    let a2 = s.create_action(&s.admin, "second").await;
    let a3 = s.create_action(&s.admin, "third").await;

    // trigger 2 before trigger 1; actions not in creation order
    let d = set_trigger_ok(s, "1", "2", &[&a3, &a1, &a2]).await;
    assert_eq!(keys(&d), ["creationDate", "resourceOwner", "sequence"], "SetTriggerActions details: {d}");
    assert_eq!(d["resourceOwner"], org.as_str());
    assert_timestamp(&d["creationDate"]);
    let first_seq = seq(&d["sequence"]);
    let d = set_trigger_ok(s, "1", "1", &[&a2]).await;
    let last_seq = seq(&d["sequence"]);
    assert_eq!(last_seq, first_seq + 1, "flow operations use the org aggregate, one event each");

    let flow = get_flow(s, "1").await;
    assert_eq!(flow["type"], flow_type("1"));
    assert_eq!(flow["state"], "FLOW_STATE_ACTIVE");
    assert_eq!(flow["details"]["resourceOwner"], org.as_str(), "{flow}");
    assert_eq!(seq(&flow["details"]["sequence"]), last_seq, "flow details.sequence is the org's last sequence");
    assert_eq!(
        trigger_ids(&flow),
        [tr("1", &[&a2]), tr("2", &[&a3, &a1, &a2])],
        "sorted by trigger id, actions in order"
    );
    let entries = flow["triggerActions"].as_array().unwrap();
    assert_eq!(entries[0]["triggerType"], trigger_type("1"));
    assert_eq!(entries[1]["triggerType"], trigger_type("2"));
    // actions are full Action messages equal to GetAction's
    assert_eq!(entries[1]["actions"][0], get_action(s, &a3).await);
    assert_eq!(entries[1]["actions"][1], get_action(s, &a1).await);
    assert_eq!(entries[0]["actions"][0], get_action(s, &a2).await);

    // other flows are untouched; the alias reads the same flow
    assert_empty_flow(&get_flow(s, "3").await, "3");
    assert_eq!(get_flow(s, "FLOW_TYPE_EXTERNAL_AUTHENTICATION").await, flow);

    // inactive actions are allowed and listed as inactive
    let r = s.post(&format!("/management/v1/actions/{a1}/_deactivate"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    set_trigger_ok(s, "2", "5", &[&a1, &a3]).await;
    set_trigger_ok(s, "2", "4", &[&a3]).await;
    let flow = get_flow(s, "2").await;
    assert_eq!(trigger_ids(&flow), [tr("4", &[&a3]), tr("5", &[&a1, &a3])]);
    assert_eq!(flow["triggerActions"][1]["actions"][0]["state"], "ACTION_STATE_INACTIVE");
    assert_eq!(flow["triggerActions"][1]["actions"][1]["state"], "ACTION_STATE_ACTIVE");
    // flow 1 shows the now inactive action too
    let flow1 = get_flow(s, "1").await;
    assert_eq!(flow1["triggerActions"][1]["actions"][1]["state"], "ACTION_STATE_INACTIVE");

    // German names inside GetFlow
    let r = s.call(Method::GET, "/management/v1/flows/2", Some(&s.admin), &[("accept-language", "de")], None).await;
    assert_eq!(r.body["flow"]["type"], localized(&FLOW_TYPES, "2", true), "{r:?}");
    assert_eq!(r.body["flow"]["triggerActions"][0]["triggerType"], localized(&TRIGGER_TYPES, "4", true));

    // flow 4, trigger 6
    set_trigger_ok(s, "4", "6", &[&a2, &a1]).await;
    assert_eq!(trigger_ids(&get_flow(s, "4").await), [tr("6", &[&a2, &a1])]);

    // `[]` empties a trigger; an empty flow is back to details {}
    set_trigger_ok(s, "4", "6", &[]).await;
    assert_empty_flow(&get_flow(s, "4").await, "4");
    set_trigger_ok(s, "1", "1", &[]).await;
    assert_eq!(trigger_ids(&get_flow(s, "1").await), [tr("2", &[&a3, &a1, &a2])]);
}

async fn set_trigger_actions_check_order(s: &TestServer) {
    let a = s.create_action(&s.admin, "a").await;

    // 1. flow valid (even with a bad trigger and bad ids)
    for flow in ["0", "5", "abc"] {
        for trigger in ["1", "4", "9"] {
            let r = s.post(&trigger_path(flow, trigger), &s.admin, json!({"actionIds": ["123", "123"]})).await;
            assert_err_text(&r, 400, 3, "COMMAND-Dfhj5", "FlowType missing");
        }
    }
    // 2. trigger belongs to the flow (checked before the ids)
    for (flow, trigger) in
        [("1", "4"), ("1", "6"), ("2", "1"), ("3", "5"), ("4", "1"), ("1", "0"), ("1", "7"), ("1", "x")]
    {
        let r = s.post(&trigger_path(flow, trigger), &s.admin, json!({"actionIds": ["123"]})).await;
        assert_err_text(&r, 400, 3, "COMMAND-Dfgh6", "TriggerType is invalid");
        let r = s.post(&trigger_path(flow, trigger), &s.admin, json!({"actionIds": [a]})).await;
        assert_err_text(&r, 400, 3, "COMMAND-Dfgh6", "TriggerType is invalid");
    }
    // 3. identical list → No Changes, before the id check (an empty trigger set to [])
    let r = s.post(&trigger_path("1", "1"), &s.admin, json!({"actionIds": []})).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
    // 4. ids
    let r = s.post(&trigger_path("1", "1"), &s.admin, json!({"actionIds": ["123"]})).await;
    assert_err_text(&r, 400, 9, "COMMAND-dg422", "ActionIDs do not exist");

    // nothing was written
    assert_empty_flow(&get_flow(s, "1").await, "1");
    assert_empty_flow(&get_flow(s, "2").await, "2");
}

async fn set_trigger_actions_no_changes(s: &TestServer) {
    let a1 = s.create_action(&s.admin, "a1").await;
    let a2 = s.create_action(&s.admin, "a2").await;
    let d = set_trigger_ok(s, "3", "3", &[&a1, &a2]).await;
    let before = seq(&d["sequence"]);

    let r = set_trigger(s, "3", "3", &[&a1, &a2]).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
    // an empty trigger set to []
    let r = set_trigger(s, "3", "1", &[]).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
    // the same list on another flow is a change (flows are separate)
    set_trigger_ok(s, "1", "3", &[&a1, &a2]).await;

    // a different order is a change
    let d = set_trigger_ok(s, "3", "3", &[&a2, &a1]).await;
    assert!(seq(&d["sequence"]) > before, "{d}");
    assert_eq!(trigger_ids(&get_flow(s, "3").await), [tr("3", &[&a2, &a1])]);
    let r = set_trigger(s, "3", "3", &[&a2, &a1]).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
    // a subset is a change
    set_trigger_ok(s, "3", "3", &[&a2]).await;
    assert_eq!(trigger_ids(&get_flow(s, "3").await), [tr("3", &[&a2])]);
    // no change after deactivating an action in the list
    s.post(&format!("/management/v1/actions/{a2}/_deactivate"), &s.admin, json!({})).await;
    let r = set_trigger(s, "3", "3", &[&a2]).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
}

async fn set_trigger_actions_invalid_ids(s: &TestServer) {
    let a1 = s.create_action(&s.admin, "a1").await;
    let a2 = s.create_action(&s.admin, "a2").await;
    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let foreign = s.create_action(&owner, "foreign").await;
    let deleted = s.create_action(&s.admin, "deleted").await;
    s.delete(&format!("/management/v1/actions/{deleted}"), &s.admin).await;

    set_trigger_ok(s, "2", "4", &[&a1]).await;
    let bad: Vec<Vec<&str>> = vec![
        vec!["123"],
        vec![&a1, "123"],
        vec![&foreign],
        vec![&a2, &foreign],
        vec![&a2, &a2],
        vec![&a1, &a2, &a1],
        vec![&deleted],
        vec!["not-a-number"],
        vec![""],
    ];
    // An id spelled with a leading zero is not the id (ids are opaque strings).
    let zero_a1 = format!("0{a1}");
    let bad: Vec<Vec<&str>> = bad.into_iter().chain([vec![zero_a1.as_str()]]).collect();
    for ids in bad {
        let r = set_trigger(s, "2", "4", &ids).await;
        assert_err_text(&r, 400, 9, "COMMAND-dg422", "ActionIDs do not exist");
        let r = set_trigger(s, "2", "5", &ids).await;
        assert_err_text(&r, 400, 9, "COMMAND-dg422", "ActionIDs do not exist");
    }
    // More unknown ids than a statement may have parameters: still the 400, never a 500.
    let many: Vec<String> = (1..=40_000).map(|n| n.to_string()).collect();
    let r = s.post(&trigger_path("2", "4"), &s.admin, json!({"actionIds": many})).await;
    assert_err_text(&r, 400, 9, "COMMAND-dg422", "ActionIDs do not exist");
    // nothing changed
    assert_eq!(trigger_ids(&get_flow(s, "2").await), [tr("4", &[&a1])]);

    // the other org may use its own action
    let r = s.post(&trigger_path("2", "4"), &owner, json!({"actionIds": [foreign]})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// No cap on actions per trigger: a list longer than one statement's rows is stored whole and in
/// order, and read back so.
async fn a_long_trigger_list_keeps_its_order(s: &TestServer) {
    let mut ids = Vec::new();
    for batch in 0..21 {
        let made = futures::future::join_all(
            (0..50).map(|i| async move { s.create_action(&s.admin, &format!("many{}", batch * 50 + i)).await }),
        )
        .await;
        ids.extend(made);
    }
    ids.reverse();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    set_trigger_ok(s, "2", "4", &refs).await;
    let all: Vec<&String> = ids.iter().collect();
    assert_eq!(trigger_ids(&get_flow(s, "2").await), [tr("4", &all)]);
    let r = set_trigger(s, "2", "4", &refs).await;
    assert_err_text(&r, 400, 9, "COMMAND-Nfh52", "No Changes");
}

async fn set_trigger_actions_aliases_and_json(s: &TestServer) {
    let a1 = s.create_action(&s.admin, "a1").await;
    let a2 = s.create_action(&s.admin, "a2").await;

    let r = s
        .post(
            &trigger_path("FLOW_TYPE_EXTERNAL_AUTHENTICATION", "TRIGGER_TYPE_PRE_CREATION"),
            &s.admin,
            json!({"actionIds": [a1]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&trigger_path("1", "TRIGGER_TYPE_POST_AUTHENTICATION"), &s.admin, json!({"actionIds": [a2]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // snake_case field, trigger alias on flow 3
    let r = s.post(&trigger_path("3", "TRIGGER_TYPE_POST_CREATION"), &s.admin, json!({"action_ids": [a2, a1]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // path parameters override the body; unknown fields are ignored
    let r = s
        .post(
            &trigger_path("3", "2"),
            &s.admin,
            json!({"flowType": "2", "triggerType": "4", "actionIds": [a1], "unknown": {"x": 1}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let flow1 = get_flow(s, "1").await;
    assert_eq!(trigger_ids(&flow1), [tr("1", &[&a2]), tr("2", &[&a1])]);
    assert_eq!(flow1["type"]["id"], "1", "responses use numeric ids");
    assert_eq!(flow1["triggerActions"][1]["triggerType"], trigger_type("2"));
    assert_eq!(trigger_ids(&get_flow(s, "3").await), [tr("2", &[&a1]), tr("3", &[&a2, &a1])]);
    assert_empty_flow(&get_flow(s, "2").await, "2");

    // an aliased trigger outside its flow is still invalid
    let r = s.post(&trigger_path("2", "TRIGGER_TYPE_PRE_CREATION"), &s.admin, json!({"actionIds": [a1]})).await;
    assert_err(&r, 400, 3, "COMMAND-Dfgh6");

    // wrong types name the field
    let r = s.post(&trigger_path("1", "1"), &s.admin, json!({"actionIds": "a"})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").to_lowercase().replace('_', "").contains("actionids"), "{r:?}");
    let r = s.post(&trigger_path("1", "1"), &s.admin, json!({"actionIds": [5]})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").to_lowercase().replace('_', "").contains("actionids"), "{r:?}");

    // an empty body counts as {}: actionIds [] empties the trigger
    let r = s.call(Method::POST, &trigger_path("1", "1"), Some(&s.admin), &[], None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(trigger_ids(&get_flow(s, "1").await), [tr("2", &[&a1])]);
    // ... and then again it is "No Changes"
    let r = s.call_raw(Method::POST, &trigger_path("1", "1"), Some(&s.admin), Vec::new()).await;
    assert_err(&r, 400, 9, "COMMAND-Nfh52");
}

async fn clear_flow_removes_assignments(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let a1 = s.create_action(&s.admin, "a1").await;
    let a2 = s.create_action(&s.admin, "a2").await;
    set_trigger_ok(s, "1", "1", &[&a1, &a2]).await;
    let d = set_trigger_ok(s, "1", "3", &[&a2]).await;
    let before = seq(&d["sequence"]);
    set_trigger_ok(s, "2", "4", &[&a1]).await;

    let r = clear_flow(s, "1").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(keys(&r.body), ["details"], "{r:?}");
    let d = &r.body["details"];
    assert_eq!(keys(d), ["changeDate", "resourceOwner", "sequence"], "ClearFlow details: {d}");
    assert_eq!(d["resourceOwner"], org.as_str());
    assert_timestamp(&d["changeDate"]);
    assert_eq!(seq(&d["sequence"]), before + 2, "org aggregate: set 2/4, then the clear");

    assert_empty_flow(&get_flow(s, "1").await, "1");
    assert_eq!(trigger_ids(&get_flow(s, "2").await), [tr("4", &[&a1])], "other flows untouched");
    // actions untouched
    let a = get_action(s, &a1).await;
    assert_eq!(a["state"], "ACTION_STATE_ACTIVE");
    assert_eq!(a["details"]["sequence"], "1");
    assert_eq!(get_action(s, &a2).await["details"]["sequence"], "1");

    let r = clear_flow(s, "1").await;
    assert_err_text(&r, 400, 9, "COMMAND-DgGh3", "Flow is already empty");
    let r = clear_flow(s, "4").await;
    assert_err_text(&r, 400, 9, "COMMAND-DgGh3", "Flow is already empty");
    for flow in ["0", "5", "abc"] {
        let r = clear_flow(s, flow).await;
        assert_err_text(&r, 400, 3, "COMMAND-Dfw2h", "FlowType missing");
    }

    // the alias path works, and the body is ignored
    set_trigger_ok(s, "1", "2", &[&a2]).await;
    let r = s
        .call_raw(
            Method::POST,
            "/management/v1/flows/FLOW_TYPE_EXTERNAL_AUTHENTICATION/_clear",
            Some(&s.admin),
            b"x".to_vec(),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_empty_flow(&get_flow(s, "1").await, "1");
    // the body cannot redirect the clear to another flow
    let r = s.post("/management/v1/flows/2/_clear", &s.admin, json!({"type": "1"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_empty_flow(&get_flow(s, "2").await, "2");
}

async fn delete_action_cascades_out_of_flows(s: &TestServer) {
    let a = s.create_action(&s.admin, "doomed").await;
    let b = s.create_action(&s.admin, "survivor").await;
    set_trigger_ok(s, "1", "1", &[&a, &b]).await;
    set_trigger_ok(s, "1", "2", &[&a]).await;
    set_trigger_ok(s, "2", "4", &[&b, &a]).await;
    set_trigger_ok(s, "2", "5", &[&b]).await;
    let d = set_trigger_ok(s, "3", "1", &[&a]).await;
    let before = seq(&d["sequence"]);

    let r = s.delete(&format!("/management/v1/actions/{a}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({}));

    assert_eq!(trigger_ids(&get_flow(s, "1").await), [tr("1", &[&b])]);
    assert_eq!(trigger_ids(&get_flow(s, "2").await), [tr("4", &[&b]), tr("5", &[&b])]);
    assert_empty_flow(&get_flow(s, "3").await, "3");

    // the cascade wrote org events (org.flow.trigger_actions.cascade.removed)
    let d = set_trigger_ok(s, "4", "6", &[&b]).await;
    assert!(seq(&d["sequence"]) > before + 1, "cascade events on the org aggregate: {before} -> {d}");

    // the deleted id can no longer be assigned; the restored list can
    let r = set_trigger(s, "1", "1", &[&b, &a]).await;
    assert_err(&r, 400, 9, "COMMAND-dg422");
    let r = set_trigger(s, "1", "1", &[&b]).await;
    assert_err(&r, 400, 9, "COMMAND-Nfh52");

    // an inactive action is also cascaded
    let c = s.create_action(&s.admin, "inactive").await;
    s.post(&format!("/management/v1/actions/{c}/_deactivate"), &s.admin, json!({})).await;
    set_trigger_ok(s, "4", "6", &[&c, &b]).await;
    s.delete(&format!("/management/v1/actions/{c}"), &s.admin).await;
    assert_eq!(trigger_ids(&get_flow(s, "4").await), [tr("6", &[&b])]);
}

async fn flow_sequence_uses_org_aggregate(s: &TestServer) {
    // A fresh org: its aggregate has only org.added (sequence 1). Actions live on their own aggregates.
    let org = s.create_org("fresh").await;
    let h = [("x-zitadel-orgid", org.as_str())];
    let mut ids = Vec::new();
    for name in ["x", "y"] {
        let r = s
            .call(
                Method::POST,
                "/management/v1/actions",
                Some(&s.admin),
                &h,
                Some(json!({"name": name, "script": "s"})),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["details"]["sequence"], "1");
        assert_eq!(r.body["details"]["resourceOwner"], org.as_str());
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    let set = |flow: &'static str, trigger: &'static str, list: Vec<String>| async move {
        s.call(Method::POST, &trigger_path(flow, trigger), Some(&s.admin), &h, Some(json!({"actionIds": list}))).await
    };
    let r = set("2", "4", vec![ids[0].clone()]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["sequence"], "2", "first flow event after org.added");
    assert_eq!(r.body["details"]["resourceOwner"], org.as_str());
    let r = set("1", "1", vec![ids[1].clone(), ids[0].clone()]).await;
    assert_eq!(r.body["details"]["sequence"], "3", "{r:?}");
    let r = s.call(Method::GET, "/management/v1/flows/1", Some(&s.admin), &h, None).await;
    assert_eq!(r.body["flow"]["details"]["sequence"], "3", "{r:?}");
    assert_eq!(r.body["flow"]["details"]["resourceOwner"], org.as_str(), "{r:?}");
    let r = s.call(Method::POST, "/management/v1/flows/2/_clear", Some(&s.admin), &h, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["sequence"], "4", "{r:?}");
    // failed operations write nothing
    let r = s.call(Method::POST, "/management/v1/flows/2/_clear", Some(&s.admin), &h, None).await;
    assert_err(&r, 400, 9, "COMMAND-DgGh3");
    let r = set("1", "1", vec![ids[1].clone(), ids[0].clone()]).await;
    assert_err(&r, 400, 9, "COMMAND-Nfh52");
    let r = set("1", "2", vec![ids[0].clone()]).await;
    assert_eq!(r.body["details"]["sequence"], "5", "{r:?}");
    // action events do not move the org sequence
    let r =
        s.call(Method::POST, &format!("/management/v1/actions/{}/_deactivate", ids[0]), Some(&s.admin), &h, None).await;
    assert_eq!(r.body["details"]["sequence"], "2", "{r:?}");
    let r = set("1", "3", vec![ids[0].clone()]).await;
    assert_eq!(r.body["details"]["sequence"], "6", "{r:?}");
    // The org's own details name the last event of its aggregate, and when it was written.
    let written = r.body["details"]["creationDate"].clone();
    let me = s.call(Method::GET, "/management/v1/orgs/me", Some(&s.admin), &h, None).await;
    assert_eq!(me.body["org"]["details"]["sequence"], "6", "{me:?}");
    assert_eq!(me.body["org"]["details"]["changeDate"], written, "{me:?}");
    assert_ne!(me.body["org"]["details"]["creationDate"], written, "created before: {me:?}");
    let listed = s.post("/admin/v1/orgs/_search", &s.admin, json!({})).await;
    let entry = listed.body["result"].as_array().unwrap().iter().find(|o| o["id"] == org.as_str()).cloned();
    assert_eq!(entry.unwrap()["details"]["sequence"], "6", "{listed:?}");
}

async fn flows_are_isolated_per_org(s: &TestServer) {
    let other = s.create_org("other").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let theirs = s.create_action(&owner, "theirs").await;
    let mine = s.create_action(&s.admin, "mine").await;

    let r = s.post(&trigger_path("1", "1"), &owner, json!({"actionIds": [theirs]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["details"]["resourceOwner"], other.as_str());
    assert_empty_flow(&get_flow(s, "1").await, "1");
    // the other org's action is unknown here, and vice versa
    assert_err(&set_trigger(s, "1", "1", &[&theirs]).await, 400, 9, "COMMAND-dg422");
    let r = s.post(&trigger_path("1", "1"), &owner, json!({"actionIds": [theirs, mine]})).await;
    assert_err(&r, 400, 9, "COMMAND-dg422");

    set_trigger_ok(s, "1", "1", &[&mine]).await;
    let r = s.get("/management/v1/flows/1", &owner).await;
    assert_eq!(trigger_ids(&r.body["flow"]), [tr("1", &[&theirs])], "{r:?}");
    assert_eq!(r.body["flow"]["details"]["resourceOwner"], other.as_str());
    let r = s.call(Method::GET, "/management/v1/flows/1", Some(&s.admin), &[("x-zitadel-orgid", &other)], None).await;
    assert_eq!(trigger_ids(&r.body["flow"]), [tr("1", &[&theirs])], "{r:?}");

    // clearing one org's flow leaves the other's
    let r = clear_flow(s, "1").await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.get("/management/v1/flows/1", &owner).await;
    assert_eq!(trigger_ids(&r.body["flow"]), [tr("1", &[&theirs])], "{r:?}");
    let r = s.post("/management/v1/flows/1/_clear", &owner, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_err(&clear_flow(s, "1").await, 400, 9, "COMMAND-DgGh3");
}

async fn flow_permissions(s: &TestServer) {
    let a = s.create_action(&s.admin, "a").await;
    set_trigger_ok(s, "1", "1", &[&a]).await;
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    let owner = s.create_token("default", "ORG_OWNER").await;
    let denied = |r: &Reply| assert_err_text(r, 403, 7, "AUTH-5mWD2", "No matching permissions found");

    let r = s.get("/management/v1/flows/1", &viewer).await;
    assert_eq!(trigger_ids(&r.body["flow"]), [tr("1", &[&a])], "{r:?}");
    assert_eq!(s.post("/management/v1/flows/1/triggers/_search", &viewer, json!({})).await.status, 200);
    denied(&s.post(&trigger_path("1", "2"), &viewer, json!({"actionIds": [a]})).await);
    denied(&s.post("/management/v1/flows/1/_clear", &viewer, json!({})).await);
    denied(&s.get("/management/v1/flows/1", &executor).await);
    denied(&s.post("/management/v1/flows/types/_search", &executor, json!({})).await);
    denied(&s.post(&trigger_path("1", "2"), &executor, json!({"actionIds": [a]})).await);
    denied(&s.post("/management/v1/flows/1/_clear", &executor, json!({})).await);
    assert_eq!(trigger_ids(&get_flow(s, "1").await), [tr("1", &[&a])], "denied calls changed nothing");

    assert_eq!(s.post(&trigger_path("1", "2"), &owner, json!({"actionIds": [a]})).await.status, 200);
    assert_eq!(s.post("/management/v1/flows/1/_clear", &owner, json!({})).await.status, 200);

    let r = s.call(Method::GET, "/management/v1/flows/1", None, &[], None).await;
    assert_eq!((r.status.as_u16(), r.code()), (401, 16), "{r:?}");
}

async fn concurrent_set_trigger_actions(s: &TestServer) {
    let a = s.create_action(&s.admin, "a").await;
    let b = s.create_action(&s.admin, "b").await;
    let pairs =
        [("1", "1"), ("1", "2"), ("1", "3"), ("2", "4"), ("2", "5"), ("3", "1"), ("3", "2"), ("3", "3"), ("4", "6")];
    let before = seq(&set_trigger_ok(s, "4", "6", &[&a]).await["sequence"]);
    let both = [b.as_str(), a.as_str()];
    let replies = futures::future::join_all(pairs.iter().map(|(f, t)| set_trigger(s, f, t, &both))).await;
    let mut seqs: Vec<u64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 200, "writes to the org aggregate are serialized, never aborted: {r:?}");
            seq(&r.body["details"]["sequence"])
        })
        .collect();
    seqs.sort();
    let n = pairs.len() as u64;
    assert_eq!(seqs, (before + 1..=before + n).collect::<Vec<u64>>());
    for (flow, triggers) in
        [("1", vec!["1", "2", "3"]), ("2", vec!["4", "5"]), ("3", vec!["1", "2", "3"]), ("4", vec!["6"])]
    {
        let expected: Vec<(String, Vec<String>)> = triggers.iter().map(|t| tr(t, &[&b, &a])).collect();
        assert_eq!(trigger_ids(&get_flow(s, flow).await), expected, "flow {flow}");
    }
}

backend_tests!(
    list_flow_types,
    list_flow_trigger_types,
    get_flow_empty_and_unknown,
    set_trigger_actions_and_get_flow,
    set_trigger_actions_check_order,
    set_trigger_actions_no_changes,
    set_trigger_actions_invalid_ids,
    a_long_trigger_list_keeps_its_order,
    set_trigger_actions_aliases_and_json,
    clear_flow_removes_assignments,
    delete_action_cascades_out_of_flows,
    flow_sequence_uses_org_aggregate,
    flows_are_isolated_per_org,
    flow_permissions,
    concurrent_set_trigger_actions,
);
