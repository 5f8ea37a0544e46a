//! `_test` (dry run) and the run records of `_execute` (README, "Walkthrough with curl"): nothing stored by `_test`,
//! records searchable by action, outcome, flow type and run id, failed runs visible at once, logs only
//! in GetRun, paging limits, organization isolation and retention pruning.

use crate::common;

use common::{Reply, TestServer};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[track_caller]
fn total(r: &Reply) -> u64 {
    assert_eq!(r.status, 200, "{r:?}");
    match &r.body["details"]["totalResult"] {
        Value::Null => 0,
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("totalResult {s:?}")),
        other => panic!("totalResult must be a string: {other}"),
    }
}

fn results(r: &Reply) -> Vec<Value> {
    r.body["result"].as_array().cloned().unwrap_or_default()
}

fn ids(r: &Reply) -> Vec<String> {
    results(r).iter().map(|x| x["id"].as_str().unwrap_or("").to_string()).collect()
}

fn num(id: &str) -> u128 {
    id.parse().unwrap_or_else(|_| panic!("id {id:?} is not decimal"))
}

fn query(queries: Value) -> Value {
    json!({ "queries": queries })
}

fn is_duration(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Some(n) = s.strip_suffix('s') else { return false };
    let (int, frac) = n.split_once('.').unwrap_or((n, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && matches!(frac.len(), 0 | 3 | 6 | 9)
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_timestamp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T')
}

#[track_caller]
fn assert_invalid(r: &Reply, message: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    assert_eq!(r.body["message"], message, "{r:?}");
}

async fn my_org(s: &TestServer, token: &str) -> String {
    let r = s.get("/management/v1/orgs/me", token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["org"]["id"].as_str().unwrap().to_string()
}

async fn execute_ok(s: &TestServer, token: &str, flow: &str, trigger: &str) -> Reply {
    let r = s.execute_trigger(token, flow, trigger, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    r
}

/// Polls until ListRuns (all of the caller's org) reports `want` records; asserts it does.
async fn wait_for_total(s: &TestServer, token: &str, want: u64) -> Reply {
    let r = s.poll_runs(token, json!({}), |r| total(r) >= want).await;
    assert_eq!(total(&r), want, "run records after polling: {r:?}");
    r
}

async fn test_action_stores_nothing(s: &TestServer) {
    assert_eq!(total(&s.list_runs(&s.admin, json!({})).await), 0);
    let inline = |name: &str, script: &str| json!({"name": name, "script": script, "flowType": "2", "triggerType": "4", "context": {"claims": {"sub": "u"}}});
    let r = s
        .test_action(
            &s.admin,
            inline(
                "dry",
                "function dry(ctx, api) { console.log('dry %s', ctx.v1.claims.sub); api.v1.claims.setClaim('d', 1); }",
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED");
    assert_eq!(r.body["effects"], json!({"claims": {"d": 1}}));
    assert!(r.body.get("runId").is_none(), "nothing stored, no runId: {r:?}");
    let run = &r.body["runs"][0];
    assert!(run.get("id").is_none(), "no run record, no id: {r:?}");
    assert_eq!(run["actionName"], "dry");
    assert_eq!(run["outcome"], "OUTCOME_SUCCEEDED");
    assert!(is_duration(&run["duration"]), "{run}");
    assert_eq!(run["logs"].as_array().map(Vec::len), Some(1), "{run}");
    assert_eq!(run["logs"][0]["level"], "info");
    assert_eq!(run["logs"][0]["message"], "dry u");
    assert!(is_timestamp(&run["logs"][0]["time"]), "{run}");

    // A failing script is a 200 with OUTCOME_FAILED, and stores nothing either (not even at once).
    let r = s.test_action(&s.admin, inline("wet", "function wet(ctx, api) { throw new Error('nope'); }")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED");
    assert!(r.body.get("effects").is_none());
    assert!(r.body["runs"][0]["error"].as_str().unwrap().starts_with("Error: nope"), "{r:?}");
    assert_eq!(total(&s.list_runs(&s.admin, json!({})).await), 0, "_test stores no run record");

    // A stored action runs whatever its state, and stays unstored.
    let id =
        s.create_script_action("stored", "function stored(ctx, api) { api.v1.claims.setClaim('s', 'yes'); }").await;
    let d = s.post(&format!("/management/v1/actions/{id}/_deactivate"), &s.admin, json!({})).await;
    assert_eq!(d.status, 200, "{d:?}");
    let r = s
        .test_action(&s.admin, json!({"actionId": id, "flowType": "2", "triggerType": "5", "context": {"claims": {}}}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "an inactive stored action still runs in _test: {r:?}");
    assert_eq!(r.body["effects"], json!({"claims": {"s": "yes"}}));
    assert_eq!(r.body["runs"][0]["actionName"], "stored");
    assert!(r.body["runs"][0].get("id").is_none());

    // An _execute stores its record; once it shows up, it is the only one.
    let live = s.create_script_action("live", "function live(ctx, api) {}").await;
    s.bind_trigger(&s.admin, "2", "4", &[&live]).await;
    execute_ok(s, &s.admin, "2", "4").await;
    let r = wait_for_total(s, &s.admin, 1).await;
    assert_eq!(results(&r)[0]["actionName"], "live", "only the _execute run is stored: {r:?}");
}

async fn test_action_response_shape(s: &TestServer) {
    // A run without log records has no `logs` (protojson omits empty arrays) and no zero counters.
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "silent", "script": "function silent(ctx, api) {}", "flowType": "3", "triggerType": "1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let run = r.body["runs"][0].clone();
    assert_eq!(run["outcome"], "OUTCOME_SUCCEEDED");
    for counter in ["httpCalls", "logRecords", "logBytes"] {
        assert!(run["usage"].get(counter).is_none(), "{run}");
    }
    // With logs: every level recorded.
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "chatty", "flowType": 1, "triggerType": 1, "timeout": "2s",
                "script": "function chatty() { console.debug('d'); console.error('e'); }"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let logs: Vec<(&str, &str)> = r.body["runs"][0]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_str().unwrap(), l["message"].as_str().unwrap()))
        .collect();
    assert_eq!(logs, [("debug", "d"), ("error", "e")]);
    assert_eq!(r.body["runs"][0]["usage"]["logRecords"], 2);
    assert!(run.get("logs").is_none(), "an empty logs array is omitted: {run}");
}

async fn test_action_validation(s: &TestServer) {
    let base =
        |name: Value, script: Value| json!({"name": name, "script": script, "flowType": "2", "triggerType": "4"});
    let name_msg = "invalid TestActionRequest.Name: value length must be between 1 and 200 runes, inclusive";
    let script_msg = "invalid TestActionRequest.Script: value length must be between 1 and 10000 runes, inclusive";
    let timeout_msg = "invalid TestActionRequest.Timeout: value must be inside range [0s, 20s]";
    assert_invalid(&s.test_action(&s.admin, base(json!(""), json!("function a(){}"))).await, name_msg);
    assert_invalid(&s.test_action(&s.admin, base(json!("n".repeat(201)), json!("x"))).await, name_msg);
    assert_invalid(&s.test_action(&s.admin, base(json!(""), json!(""))).await, name_msg);
    assert_invalid(&s.test_action(&s.admin, base(json!("a"), json!(""))).await, script_msg);
    assert_invalid(&s.test_action(&s.admin, base(json!("a"), json!("x".repeat(10_001)))).await, script_msg);
    let mut with_timeout = base(json!("a"), json!("function a(){}"));
    with_timeout["timeout"] = json!("21s");
    assert_invalid(&s.test_action(&s.admin, with_timeout).await, timeout_msg);
    // Boundaries that are fine.
    let mut fine = base(json!("n".repeat(200)), json!(format!("function f(){{}}{}", " ".repeat(9_985))));
    fine["timeout"] = json!("20s");
    let r = s.test_action(&s.admin, fine).await;
    assert_eq!(r.status, 200, "{r:?}");

    // actionId and an inline name or script: 400.
    let id = s.create_script_action("storedOne", "function storedOne() {}").await;
    for extra in [json!({"name": "storedOne"}), json!({"script": "function storedOne() {}"})] {
        let mut body = json!({"actionId": id, "flowType": "2", "triggerType": "4"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let r = s.test_action(&s.admin, body).await;
        assert_eq!(r.status, 400, "{r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
    }

    // A timeout given with actionId is the dry run's own (within the same bounds), over the
    // stored action's.
    let spin = s
        .create_action_body(
            &s.admin,
            json!({"name": "spin", "timeout": "20s", "script": "function spin() { while (true) {} }"}),
        )
        .await;
    let stored = |timeout: &str| json!({"actionId": spin, "timeout": timeout, "flowType": "2", "triggerType": "4"});
    assert_invalid(&s.test_action(&s.admin, stored("21s")).await, timeout_msg);
    let started = std::time::Instant::now();
    let r = s.test_action(&s.admin, stored("0.300s")).await;
    assert_eq!((r.status.as_u16(), &r.body["outcome"]), (200, &json!("OUTCOME_FAILED")), "{r:?}");
    assert_eq!(r.body["runs"][0]["error"], "timeout after 0.300s", "{r:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "stopped at the given timeout, not 20 s");

    // Unknown flow, or a trigger not in the flow: 400 code 3 (inline and stored).
    for (flow, trigger) in [("9", "1"), ("0", "4"), ("2", "1"), ("4", "4"), ("1", "6")] {
        let r = s
            .test_action(
                &s.admin,
                json!({"name": "a", "script": "function a(){}", "flowType": flow, "triggerType": trigger}),
            )
            .await;
        assert_eq!(r.status, 400, "{flow}/{trigger}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
        let r = s.test_action(&s.admin, json!({"actionId": id, "flowType": flow, "triggerType": trigger})).await;
        assert_eq!(r.status, 400, "{flow}/{trigger}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
    }

    // Roles: ORG_OWNER and IAM_OWNER may test; ORG_VIEWER and ORG_EXECUTOR may not.
    let body = json!({"name": "a", "script": "function a(){}", "flowType": "2", "triggerType": "4"});
    let owner = s.create_token("default", "ORG_OWNER").await;
    assert_eq!(s.test_action(&owner, body.clone()).await.status, 200);
    for role in ["ORG_VIEWER", "ORG_EXECUTOR"] {
        let token = s.create_token("default", role).await;
        let r = s.test_action(&token, body.clone()).await;
        assert_eq!(r.status, 403, "{role}: {r:?}");
        assert_eq!(r.code(), 7);
    }

    // Another org's stored action is not found.
    let other = s.create_org("Test Other").await;
    let other_owner = s.create_token(&other, "ORG_OWNER").await;
    let r = s.test_action(&other_owner, json!({"actionId": id, "flowType": "2", "triggerType": "4"})).await;
    assert_eq!(r.status, 404, "{r:?}");
}

const LOGGING: &str =
    "function okA(ctx, api) { var log = require('zitadel/log'); log.info('first %d', 1); log.warn('second'); }";

async fn run_records_are_searchable(s: &TestServer) {
    let org = my_org(s, &s.admin).await;
    let ok_a = s.create_script_action("okA", LOGGING).await;
    let fail_b = s
        .create_action_body(
            &s.admin,
            json!({"name": "failB", "allowedToFail": true, "script": "function failB() { console.error('oops'); throw 'tolerated'; }"}),
        )
        .await;
    let ok_c = s.create_script_action("okC", "function okC() {}").await;
    s.bind_trigger(&s.admin, "2", "4", &[&ok_a, &fail_b]).await;
    s.bind_trigger(&s.admin, "3", "1", &[&ok_c]).await;

    let first = execute_ok(s, &s.admin, "2", "4").await;
    assert_eq!(first.body["outcome"], "OUTCOME_SUCCEEDED");
    let run_id1 = first.body["runId"].as_str().unwrap().to_string();
    let ok_a_record = first.body["runs"][0]["id"].as_str().unwrap().to_string();
    let fail_b_record = first.body["runs"][1]["id"].as_str().unwrap().to_string();

    // The failed run's record is there as soon as _execute has answered (no polling).
    let g = s.get(&format!("/management/v1/runs/{fail_b_record}"), &s.admin).await;
    assert_eq!(g.status, 200, "a failed run is committed before _execute responds: {g:?}");
    let run = &g.body["run"];
    assert_eq!(run["outcome"], "OUTCOME_FAILED");
    assert_eq!(run["allowedToFail"], true);
    assert!(run["error"].as_str().unwrap().starts_with("tolerated"), "{run}");
    assert_eq!(run["logs"][0]["level"], "error");
    assert_eq!(run["logs"][0]["message"], "oops");
    let r = s.list_runs(&s.admin, query(json!([{"outcomeQuery": {"outcome": "OUTCOME_FAILED"}}]))).await;
    assert_eq!(ids(&r), [fail_b_record.as_str()], "{r:?}");

    let second = execute_ok(s, &s.admin, "3", "1").await;
    let run_id2 = second.body["runId"].as_str().unwrap().to_string();
    let ok_c_record = second.body["runs"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(run_id1, run_id2);

    let all = wait_for_total(s, &s.admin, 3).await;
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), 3);
    assert!(all_ids.windows(2).all(|w| num(&w[0]) > num(&w[1])), "newest first: {all_ids:?}");
    assert_eq!(all_ids[0], ok_c_record);
    for record in results(&all) {
        assert!(record.get("logs").is_none(), "ListRuns leaves logs out: {record}");
    }

    // actionIdQuery: the full record.
    let r = s.list_runs(&s.admin, query(json!([{"actionIdQuery": {"actionId": ok_a}}]))).await;
    assert_eq!(total(&r), 1, "{r:?}");
    let rec = &results(&r)[0];
    assert_eq!(rec["id"], ok_a_record.as_str());
    assert_eq!(rec["runId"], run_id1.as_str());
    assert_eq!(rec["actionId"], ok_a.as_str());
    assert_eq!(rec["actionName"], "okA");
    assert_eq!(rec["flowType"], "2");
    assert_eq!(rec["triggerType"], "4");
    assert_eq!(rec["outcome"], "OUTCOME_SUCCEEDED");
    assert!(rec.get("allowedToFail").is_none() && rec.get("error").is_none(), "{rec}");
    assert!(is_timestamp(&rec["startedAt"]), "{rec}");
    assert!(is_duration(&rec["duration"]), "{rec}");
    assert_eq!(rec["resourceOwner"], org.as_str());
    // snake_case works too; an unknown action id matches nothing.
    let r = s.list_runs(&s.admin, query(json!([{"action_id_query": {"action_id": ok_c}}]))).await;
    assert_eq!(ids(&r), [ok_c_record.as_str()]);
    let r = s.list_runs(&s.admin, query(json!([{"actionIdQuery": {"actionId": "123"}}]))).await;
    assert_eq!(total(&r), 0, "{r:?}");
    assert!(r.body.get("result").is_none(), "{r:?}");

    // GetRun has the logs.
    let g = s.get(&format!("/management/v1/runs/{ok_a_record}"), &s.admin).await;
    assert_eq!(g.status, 200, "{g:?}");
    let logs: Vec<(String, String)> = g.body["run"]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_str().unwrap().into(), l["message"].as_str().unwrap().into()))
        .collect();
    assert_eq!(logs, [("info".to_string(), "first 1".to_string()), ("warn".into(), "second".into())]);
    assert!(is_timestamp(&g.body["run"]["logs"][0]["time"]));
    assert_eq!(g.body["run"]["runId"], run_id1.as_str());
    assert_eq!(g.body["run"]["usage"]["logRecords"], 2, "{g:?}");

    // outcomeQuery (name or number).
    let r = s.list_runs(&s.admin, query(json!([{"outcomeQuery": {"outcome": "OUTCOME_SUCCEEDED"}}]))).await;
    assert_eq!(ids(&r), [ok_c_record.clone(), ok_a_record.clone()]);
    let r = s.list_runs(&s.admin, query(json!([{"outcomeQuery": {"outcome": 2}}]))).await;
    assert_eq!(ids(&r), [fail_b_record.as_str()]);

    // flowTypeQuery by id string (or number); unknown is 400 code 3.
    let r = s.list_runs(&s.admin, query(json!([{"flowTypeQuery": {"flowType": "2"}}]))).await;
    assert_eq!(ids(&r), [fail_b_record.clone(), ok_a_record.clone()]);
    let r = s.list_runs(&s.admin, query(json!([{"flowTypeQuery": {"flowType": 3}}]))).await;
    assert_eq!(ids(&r), [ok_c_record.as_str()]);
    let r = s.list_runs(&s.admin, query(json!([{"flowTypeQuery": {"flowType": "4"}}]))).await;
    assert_eq!(total(&r), 0);
    for bad in [json!("9"), json!("0"), json!("nope")] {
        let r = s.list_runs(&s.admin, query(json!([{"flowTypeQuery": {"flowType": bad}}]))).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
    }

    // runIdQuery, and queries are ANDed.
    let r = s.list_runs(&s.admin, query(json!([{"runIdQuery": {"runId": run_id1}}]))).await;
    assert_eq!(ids(&r), [fail_b_record.clone(), ok_a_record.clone()]);
    let r = s.list_runs(&s.admin, query(json!([{"runIdQuery": {"runId": run_id2}}]))).await;
    assert_eq!(ids(&r), [ok_c_record.as_str()]);
    let r = s
        .list_runs(
            &s.admin,
            query(json!([{"runIdQuery": {"runId": run_id1}}, {"outcomeQuery": {"outcome": "OUTCOME_SUCCEEDED"}}])),
        )
        .await;
    assert_eq!(ids(&r), [ok_a_record.as_str()]);
    let r = s
        .list_runs(&s.admin, query(json!([{"runIdQuery": {"runId": run_id2}}, {"flowTypeQuery": {"flowType": "2"}}])))
        .await;
    assert_eq!(total(&r), 0);

    // Readers: ORG_VIEWER may list and get; ORG_EXECUTOR may not.
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    assert_eq!(total(&s.list_runs(&viewer, json!({})).await), 3);
    assert_eq!(s.get(&format!("/management/v1/runs/{ok_a_record}"), &viewer).await.status, 200);
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    let r = s.list_runs(&executor, json!({})).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = s.get(&format!("/management/v1/runs/{ok_a_record}"), &executor).await;
    assert_eq!(r.status, 403, "{r:?}");

    // Unknown ids are 404.
    for id in ["123", "999999999999999999", "not-a-number"] {
        let r = s.get(&format!("/management/v1/runs/{id}"), &s.admin).await;
        assert_eq!(r.status, 404, "{id}: {r:?}");
        assert_eq!(r.code(), 5, "{r:?}");
    }
}

async fn failed_trigger_records(s: &TestServer) {
    let a = s.create_script_action("goesFirst", "function goesFirst() {}").await;
    let b = s.create_script_action("breaks", "function breaks() { throw new Error('stop'); }").await;
    let c = s.create_script_action("neverRuns", "function neverRuns() {}").await;
    let d = s.create_script_action("inactiveOne", "function inactiveOne() {}").await;
    let r = s.post(&format!("/management/v1/actions/{d}/_deactivate"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    s.bind_trigger(&s.admin, "1", "2", &[&a, &d, &b, &c]).await;
    let r = execute_ok(s, &s.admin, "1", "2").await;
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    let failed_record = r.body["runs"][2]["id"].as_str().unwrap().to_string();
    let first_record = r.body["runs"][0]["id"].as_str().unwrap().to_string();

    // Immediately: the failed run is stored with its error.
    let by_run = json!({"queries": [{"runIdQuery": {"runId": run_id}}]});
    let now = s.list_runs(&s.admin, by_run.clone()).await;
    assert!(ids(&now).contains(&failed_record), "failed record visible immediately: {now:?}");
    let g = s.get(&format!("/management/v1/runs/{failed_record}"), &s.admin).await;
    assert_eq!(g.status, 200, "{g:?}");
    assert!(g.body["run"]["error"].as_str().unwrap().starts_with("Error: stop"), "{g:?}");
    assert_eq!(g.body["run"]["flowType"], "1");
    assert_eq!(g.body["run"]["triggerType"], "2");

    // Eventually: only the runs that started (not the skipped or not-run ones).
    let r = s.poll_runs(&s.admin, by_run, |r| total(r) >= 2).await;
    assert_eq!(ids(&r), [failed_record, first_record], "{r:?}");
    let names: Vec<Value> = results(&r).iter().map(|x| x["actionName"].clone()).collect();
    assert_eq!(names, [json!("breaks"), json!("goesFirst")]);
    // Zero values are omitted (protojson): a run without log records has no `logs`.
    assert!(g.body["run"].get("logs").is_none(), "no log records, no logs: {g:?}");
}

async fn list_runs_limits(s: &TestServer) {
    // 105 records from one _execute with 105 actions.
    let mut action_ids = Vec::new();
    for i in 0..105 {
        let name = format!("bulk{i}");
        action_ids.push(s.create_script_action(&name, &format!("function {name}() {{}}")).await);
    }
    let refs: Vec<&str> = action_ids.iter().map(String::as_str).collect();
    s.bind_trigger(&s.admin, "2", "5", &refs).await;
    let r = execute_ok(s, &s.admin, "2", "5").await;
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    wait_for_total(s, &s.admin, 105).await;

    for body in [json!({}), json!({"query": {"limit": 0}}), json!({"query": {"limit": 100}})] {
        let r = s.list_runs(&s.admin, body.clone()).await;
        assert_eq!(total(&r), 105, "{body}");
        let page = ids(&r);
        assert_eq!(page.len(), 100, "limit 0 (or none) means 100: {body}");
        assert!(page.windows(2).all(|w| num(&w[0]) > num(&w[1])), "newest first");
    }
    let r = s.list_runs(&s.admin, json!({"query": {"limit": 101}})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3);
    assert_eq!(r.error_id(), "QUERY-4M0fs");
    assert_eq!(r.body["message"], "Limit exceeded (QUERY-4M0fs)");
    let r = s.list_runs(&s.admin, json!({"query": {"limit": 1000}})).await;
    assert_eq!(r.status, 400, "{r:?}");

    let r = s.list_runs(&s.admin, json!({"query": {"offset": 100}})).await;
    assert_eq!(ids(&r).len(), 5);
    assert_eq!(total(&r), 105);
    let first_page = ids(&s.list_runs(&s.admin, json!({"query": {"limit": 3}})).await);
    let second_page = ids(&s.list_runs(&s.admin, json!({"query": {"limit": 3, "offset": 3}})).await);
    assert_eq!(first_page.len(), 3);
    assert!(num(&first_page[2]) > num(&second_page[0]), "pages follow each other");
    // The oldest record is the first action's run.
    let r = s.list_runs(&s.admin, json!({"query": {"offset": 104}})).await;
    assert_eq!(results(&r)[0]["actionName"], "bulk0");
}

async fn runs_of_other_orgs_are_invisible(s: &TestServer) {
    let mine = s.create_script_action("mine", "function mine() {}").await;
    s.bind_trigger(&s.admin, "2", "4", &[&mine]).await;
    let r = execute_ok(s, &s.admin, "2", "4").await;
    let my_record = r.body["runs"][0]["id"].as_str().unwrap().to_string();
    let my_run_id = r.body["runId"].as_str().unwrap().to_string();
    wait_for_total(s, &s.admin, 1).await;

    let other = s.create_org("Elsewhere").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let viewer = s.create_token(&other, "ORG_VIEWER").await;
    for token in [&owner, &viewer] {
        assert_eq!(total(&s.list_runs(token, json!({})).await), 0);
        let r = s.list_runs(token, query(json!([{"runIdQuery": {"runId": my_run_id}}]))).await;
        assert_eq!(total(&r), 0, "{r:?}");
        let r = s.get(&format!("/management/v1/runs/{my_record}"), token).await;
        assert_eq!(r.status, 404, "another org's run is not found: {r:?}");
    }
    let r = s.call_org(Method::POST, "/management/v1/runs/_search", &s.admin, &other, Some(json!({}))).await;
    assert_eq!(total(&r), 0, "{r:?}");
    let r = s.call_org(Method::GET, &format!("/management/v1/runs/{my_record}"), &s.admin, &other, None).await;
    assert_eq!(r.status, 404, "{r:?}");

    // The other org's own runs are its own.
    let theirs = s.create_action_body(&owner, json!({"name": "theirs", "script": "function theirs() {}"})).await;
    s.bind_trigger(&owner, "2", "4", &[&theirs]).await;
    let r = execute_ok(s, &owner, "2", "4").await;
    assert_eq!(r.body["runs"][0]["actionName"], "theirs", "{r:?}");
    let r = wait_for_total(s, &owner, 1).await;
    assert_eq!(results(&r)[0]["resourceOwner"], other.as_str());
    assert_eq!(results(&r)[0]["actionName"], "theirs");
    let r = s.list_runs(&s.admin, json!({})).await;
    assert_eq!(ids(&r), [my_record], "{r:?}");
}

async fn retention_pruning(s: &TestServer) {
    let keep = s.create_script_action("keep", "function keep() {}").await;
    s.bind_trigger(&s.admin, "4", "6", &[&keep]).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let r = execute_ok(s, &s.admin, "4", "6").await;
        mine.push(r.body["runs"][0]["id"].as_str().unwrap().to_string());
    }
    let other = s.create_org("Pruned Org").await;
    let owner = s.create_token(&other, "ORG_OWNER").await;
    let theirs_action = s.create_action_body(&owner, json!({"name": "keep", "script": "function keep() {}"})).await;
    s.bind_trigger(&owner, "4", "6", &[&theirs_action]).await;
    let mut theirs = Vec::new();
    for _ in 0..2 {
        let r = execute_ok(s, &owner, "4", "6").await;
        theirs.push(r.body["runs"][0]["id"].as_str().unwrap().to_string());
    }
    wait_for_total(s, &s.admin, 3).await;
    wait_for_total(s, &owner, 2).await;

    // Nothing is older than an hour: nothing goes by age, and 100,000 rows per org is plenty.
    let removed = actionsd::store::runs::prune(&s.state.store, Duration::from_secs(3600), 100_000).await.unwrap();
    assert_eq!(removed, 0);
    // Any count the setting takes works, past what a statement can bind (i64::MAX) too.
    for max in [i64::MAX as u64, i64::MAX as u64 + 2, u64::MAX] {
        let removed = actionsd::store::runs::prune(&s.state.store, Duration::from_secs(3600), max).await.unwrap();
        assert_eq!(removed, 0, "{max}");
        assert_eq!(actionsd::store::recordings::prune(&s.state.store, max).await.unwrap(), 0, "{max}");
    }
    // At most one row per org: the newest of each stays (one row per transaction here: a backlog
    // goes in batches, and the passes add up to the same).
    // A pass is skipped while another process holds the job (this server's own pruner, on
    // PostgreSQL any server's on the same database): passes are repeated until the rows that go
    // are gone, a bounded number of times.
    let mut removed = 0;
    for _ in 0..200 {
        removed +=
            actionsd::store::runs::prune_in_batches(&s.state.store, Duration::from_secs(3600), 1, 1).await.unwrap();
        if removed >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(removed, 3, "2 of one org and 1 of the other");
    assert_eq!(ids(&s.list_runs(&s.admin, json!({})).await), [mine[2].clone()]);
    assert_eq!(ids(&s.list_runs(&owner, json!({})).await), [theirs[1].clone()]);
    let r = s.get(&format!("/management/v1/runs/{}", mine[0]), &s.admin).await;
    assert_eq!(r.status, 404, "a pruned run is gone: {r:?}");

    // Zero retention removes everything that exists (in batches of 1 again).
    let removed = actionsd::store::runs::prune_in_batches(&s.state.store, Duration::ZERO, 100_000, 1).await.unwrap();
    assert_eq!(removed, 2);
    assert_eq!(total(&s.list_runs(&s.admin, json!({})).await), 0);
    assert_eq!(total(&s.list_runs(&owner, json!({})).await), 0);

    // New runs are recorded as before.
    execute_ok(s, &s.admin, "4", "6").await;
    wait_for_total(s, &s.admin, 1).await;
}

/// A failed action whose error text holds a NUL (binary data thrown, e.g. a fetched body): the
/// trigger still answers 200 and every run record is stored (PostgreSQL refuses NUL in text; the
/// answer and the record carry it as U+FFFD, on both backends).
async fn nul_in_an_error_is_stored(s: &TestServer) {
    let ok = s.create_script_action("beforeNul", "function beforeNul() {}").await;
    let bad = s
        .create_action_body(
            &s.admin,
            json!({"name": "nulErr", "script": "function nulErr() { throw new Error('bad\\u0000byte'); }", "allowedToFail": true}),
        )
        .await;
    s.bind_trigger(&s.admin, "4", "6", &[&ok, &bad]).await;
    let r = execute_ok(s, &s.admin, "4", "6").await;
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "allowed to fail: {r:?}");
    assert_eq!(r.body["runs"][1]["outcome"], "OUTCOME_FAILED", "{r:?}");
    let failed = r.body["runs"][1]["id"].as_str().unwrap().to_string();
    let g = s.get(&format!("/management/v1/runs/{failed}"), &s.admin).await;
    assert_eq!(g.status, 200, "{g:?}");
    let error = g.body["run"]["error"].as_str().unwrap();
    assert!(error.starts_with("Error: bad\u{FFFD}byte"), "{g:?}");
    assert_eq!(r.body["runs"][1]["error"], error, "the answer and the record carry the same text");
    let by_run = json!({"queries": [{"runIdQuery": {"runId": r.body["runId"]}}]});
    let all = s.poll_runs(&s.admin, by_run, |r| total(r) >= 2).await;
    assert_eq!(total(&all), 2, "both records stored: {all:?}");
}

backend_tests!(
    nul_in_an_error_is_stored,
    test_action_stores_nothing,
    test_action_response_shape,
    test_action_validation,
    run_records_are_searchable,
    failed_trigger_records,
    list_runs_limits,
    runs_of_other_orgs_are_invisible,
    retention_pruning,
);
