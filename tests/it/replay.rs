//! Replay (authoring.md §4): the action settings, recording of redacted contexts by `_execute`,
//! ReplayTrigger's before/after/changed for drafts that change a claim, throw or change nothing,
//! its request rules, nothing stored by a replay, and the retention.

use crate::common;

use common::{assert_err, Reply, TestServer};
use entity::recorded_context;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::{json, Value};

const SETTINGS: &str = "/management/v1/actions/_settings";
const REPLAY: &str = "/management/v1/flows/2/trigger/4/_replay";

async fn recorded(s: &TestServer) -> Vec<recorded_context::Model> {
    recorded_context::Entity::find().all(&s.state.store.db).await.expect("recorded contexts")
}

async fn record_on(s: &TestServer, token: &str) {
    let r = s.put(SETTINGS, token, json!({"recordContexts": true})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn claim_script(name: &str, value: &str) -> String {
    format!("function {name}(ctx, api) {{ api.v1.claims.setClaim('tier', '{value}') }}")
}

async fn replay(s: &TestServer, body: Value) -> Reply {
    s.post(REPLAY, &s.admin, body).await
}

#[track_caller]
fn assert_invalid(r: &Reply, prefix: &str) {
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").starts_with(prefix), "{r:?}");
}

async fn settings_read_write_and_roles(s: &TestServer) {
    let r = s.get(SETTINGS, &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"settings": {"retention": "86400s"}}));
    record_on(s, &s.admin).await;
    let r = s.get(SETTINGS, &s.admin).await;
    assert_eq!(r.body, json!({"settings": {"recordContexts": true, "retention": "86400s"}}));
    let r = s.put(SETTINGS, &s.admin, json!({"recordContexts": true, "retention": "3600s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["details"]["sequence"].is_string(), "{r:?}");
    // Absent retention keeps the current one; turning recording off keeps it too.
    assert_eq!(s.put(SETTINGS, &s.admin, json!({})).await.status, 200);
    assert_eq!(s.get(SETTINGS, &s.admin).await.body, json!({"settings": {"retention": "3600s"}}));
    for bad in ["59s", "604801s", "0s", "59.999s", "604800.001s"] {
        let r = s.put(SETTINGS, &s.admin, json!({"retention": bad})).await;
        assert_invalid(&r, "invalid SetActionSettingsRequest.Retention");
    }
    // In range with a fraction: kept at least as long as asked (whole seconds, rounded up).
    assert_eq!(s.put(SETTINGS, &s.admin, json!({"retention": "90.5s"})).await.status, 200);
    assert_eq!(s.get(SETTINGS, &s.admin).await.body["settings"]["retention"], "91s");
    for edge in ["60s", "604800s"] {
        assert_eq!(s.put(SETTINGS, &s.admin, json!({"retention": edge})).await.status, 200, "{edge}");
    }
    // Roles: reads as GetAction, writes as UpdateAction; other orgs have their own settings.
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    assert_eq!(s.get(SETTINGS, &viewer).await.status, 200);
    assert_eq!(s.put(SETTINGS, &viewer, json!({"recordContexts": true})).await.status, 403);
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    assert_eq!(s.get(SETTINGS, &executor).await.status, 403);
    let org = s.create_org("settings-other").await;
    let r = s.call_org(Method::GET, SETTINGS, &s.admin, &org, None).await;
    assert_eq!(r.body, json!({"settings": {"retention": "86400s"}}));
    // Connect JSON and the event log.
    let r = s.connect("zitadel.management.v1.ManagementService/GetActionSettings", &s.admin, json!({})).await;
    assert_eq!(r.body["settings"]["retention"], "604800s", "{r:?}");
    let events = entity::event::Entity::find()
        .filter(entity::event::Column::EventType.eq("action.settings.changed"))
        .count(&s.state.store.db)
        .await
        .unwrap();
    assert_eq!(events, 6, "one per successful write");
}

async fn execute_records_redacted_contexts(s: &TestServer) {
    // Off: nothing recorded, no run id without actions.
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "u1"}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("runId").is_none(), "{r:?}");
    record_on(s, &s.admin).await;
    // On: a run id even when no action ran, and the context stored redacted.
    let context = json!({
        "claims": {"sub": "u2"}, "accessToken": "at-secret",
        "httpRequest": {"headers": {"Authorization": ["Bearer x"], "cookie": "c=1", "x-trace": "t"}},
        "authRequest": {"password": "pw", "client_secret": "cs"},
        "user": {"human": {"firstName": "F", "password": "pw"}, "client_secret": "cs"},
    });
    let r = s.execute_trigger(&s.admin, "2", "4", context).await;
    let run_id = r.body["runId"].as_str().expect("a runId when recording").to_string();
    let rows = s.poll_runs(&s.admin, json!({}), |_| true).await;
    assert_eq!(rows.status, 200);
    let rows = wait_recorded(s, 1).await;
    assert_eq!(rows[0].run_id.to_string(), run_id);
    assert_eq!((rows[0].flow_type, rows[0].trigger_type), (2, 4));
    let stored: Value = serde_json::from_str(&rows[0].context).unwrap();
    assert_eq!(stored["accessToken"], "[redacted]");
    assert_eq!(stored["httpRequest"]["headers"]["cookie"], "[redacted]");
    // Only string values are replaced (the Authorization list is an array of strings: kept shape).
    assert_eq!(stored["httpRequest"]["headers"]["x-trace"], "t");
    assert_eq!(stored["authRequest"]["password"], "[redacted]");
    assert_eq!(stored["authRequest"]["client_secret"], "[redacted]");
    // Members the trigger's context does not have are dropped before anything is kept.
    assert_eq!(stored["user"], json!({"human": {"firstName": "F"}}));
    assert_eq!(stored["claims"]["sub"], "u2");
    // Larger than 64 KiB: not stored (the call itself works, and still gets its run id).
    let big = json!({"claims": {"blob": "x".repeat(70 * 1024)}});
    let r = s.execute_trigger(&s.admin, "2", "4", big).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["runId"].as_str().is_some_and(|id| !id.is_empty() && id != run_id), "{r:?}");
    let id = s.create_script_action("tierA", &claim_script("tierA", "gold")).await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "u3"}})).await;
    assert_eq!(r.body["effects"]["claims"]["tier"], "gold", "{r:?}");
    let rows = wait_recorded(s, 2).await;
    assert_eq!(rows.len(), 2, "the 70 KiB context is not recorded");
}

/// Recorded contexts become visible when the run writer's batch commits.
async fn wait_recorded(s: &TestServer, n: usize) -> Vec<recorded_context::Model> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let rows = recorded(s).await;
        if rows.len() >= n || std::time::Instant::now() >= deadline {
            let mut rows = rows;
            rows.sort_by_key(|r| r.run_id);
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn replay_before_after_changed(s: &TestServer) {
    // No contexts yet.
    let draft = json!({"name": "tierA", "script": claim_script("tierA", "gold")});
    let r = replay(s, json!({"draft": draft})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({"summary": {}}));

    let id = s.create_script_action("tierA", &claim_script("tierA", "gold")).await;
    let logger =
        s.create_script_action("logger", "function logger(ctx, api) { console.log('sub ' + ctx.v1.claims.sub) }").await;
    s.bind_trigger(&s.admin, "2", "4", &[&id, &logger]).await;
    record_on(s, &s.admin).await;
    let mut run_ids = Vec::new();
    for sub in ["u1", "u2", "u3"] {
        let r = s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": sub}})).await;
        run_ids.push(r.body["runId"].as_str().unwrap().to_string());
    }
    wait_recorded(s, 3).await;
    let runs_before = s.list_runs(&s.admin, json!({})).await.body["details"]["totalResult"].clone();

    // A draft that changes the claim, in place of the bound action.
    let r = replay(
        s,
        json!({"draft": {"actionId": id, "name": "tierA", "script": "function tierA(ctx, api) { console.log('draft for ' + ctx.v1.claims.sub); api.v1.claims.setClaim('tier', 'platinum') }"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let results = r.body["results"].as_array().unwrap();
    let ids: Vec<&str> = results.iter().map(|x| x["runId"].as_str().unwrap()).collect();
    assert_eq!(ids, [run_ids[2].as_str(), run_ids[1].as_str(), run_ids[0].as_str()], "newest first");
    let first = &results[0];
    assert!(first["contextTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    assert_eq!(first["before"], json!({"outcome": "OUTCOME_SUCCEEDED", "effects": {"claims": {"tier": "gold"}}}));
    assert_eq!(first["after"]["outcome"], "OUTCOME_SUCCEEDED");
    assert_eq!(first["after"]["effects"], json!({"claims": {"tier": "platinum"}}));
    // The draft's own log records.
    assert_eq!(first["after"]["logs"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(first["after"]["logs"][0]["message"], "draft for u3");
    assert_eq!(first["changed"], true);
    assert_eq!(r.body["summary"], json!({"total": 3, "changed": 3}));

    // An identical draft changes nothing.
    let r =
        replay(s, json!({"draft": {"actionId": id, "name": "tierA", "script": claim_script("tierA", "gold")}})).await;
    assert_eq!(r.body["summary"], json!({"total": 3}), "{r:?}");
    assert!(r.body["results"][0].get("changed").is_none(), "{r:?}");
    assert_eq!(r.body["results"][0]["before"], r.body["results"][0]["after"]);

    // A draft that throws fails the trigger; allowedToFail keeps it SUCCEEDED (the effects of the
    // replaced action are then missing: changed).
    let thrower = "function tierA(ctx, api) { throw new Error('draft broke') }";
    let r = replay(s, json!({"draft": {"actionId": id, "name": "tierA", "script": thrower}, "last": 2})).await;
    assert_eq!(r.body["summary"], json!({"total": 2, "changed": 2, "failedAfter": 2}), "{r:?}");
    let after = &r.body["results"][0]["after"];
    assert_eq!(after["outcome"], "OUTCOME_FAILED");
    assert!(after["error"].as_str().unwrap().contains("draft broke"), "{after}");
    assert!(after.get("effects").is_none(), "{after}");
    let r = replay(
        s,
        json!({"draft": {"actionId": id, "name": "tierA", "script": thrower, "allowedToFail": true}, "runIds": [run_ids[0], "999", "x"]}),
    )
    .await;
    assert_eq!(r.body["summary"], json!({"total": 1, "changed": 1}), "{r:?}");
    assert_eq!(r.body["results"][0]["runId"], run_ids[0].as_str());
    assert_eq!(r.body["results"][0]["after"]["outcome"], "OUTCOME_SUCCEEDED");
    // The trigger has no error then, but the draft's failure is not lost: it is the last of
    // `after.logs`.
    let logs = r.body["results"][0]["after"]["logs"].as_array().cloned().unwrap_or_default();
    let last = logs.last().unwrap_or_else(|| panic!("no logs: {r:?}"));
    assert_eq!(last["level"], "error", "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("allowed to fail")
            && last["message"].as_str().unwrap().contains("draft broke"),
        "{last}"
    );
    // A draft added after the bound actions that throws every time changes nothing else, and
    // still says so.
    let r = replay(
        s,
        json!({"draft": {"name": "extra", "script": "function extra(ctx, api) { throw new TypeError('always') }", "allowedToFail": true}, "last": 1}),
    )
    .await;
    assert!(r.body["results"][0].get("changed").is_none(), "{r:?}");
    let logs = r.body["results"][0]["after"]["logs"].as_array().cloned().unwrap_or_default();
    assert_eq!(logs.len(), 1, "{r:?}");
    assert!(logs[0]["message"].as_str().unwrap().contains("TypeError: always at extra ("), "{r:?}");
    // A draft that succeeds has only its own records.
    let r = replay(
        s,
        json!({"draft": {"name": "extra", "script": "function extra(ctx, api) { console.log('fine') }", "allowedToFail": true}, "last": 1}),
    )
    .await;
    assert_eq!(r.body["results"][0]["after"]["logs"].as_array().map(Vec::len), Some(1), "{r:?}");

    // Without actionId the draft runs after the bound actions.
    let r = replay(
        s,
        json!({"draft": {"name": "extra", "script": "function extra(ctx, api) { api.v1.claims.setClaim('extra', true) }"}, "last": 1}),
    )
    .await;
    assert_eq!(r.body["results"][0]["after"]["effects"], json!({"claims": {"tier": "gold", "extra": true}}), "{r:?}");

    // FETCH_DENY: fetch throws a catchable error. Secrets can be given for the replay.
    let fetcher = r#"function extra(ctx, api) {
  var key = require('zitadel/secrets').get('API_KEY');
  console.log('key ' + key);
  try { require('zitadel/http').fetch('http://127.0.0.1:9/x'); api.v1.claims.setClaim('fetched', 'yes'); }
  catch (e) { api.v1.claims.setClaim('fetched', String(e.message || e)); }
}"#;
    let r = replay(
        s,
        json!({"draft": {"name": "extra", "script": fetcher}, "last": 1, "fetch": "FETCH_DENY", "secrets": {"API_KEY": "replay-key-1"}}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let after = &r.body["results"][0]["after"];
    assert!(after["effects"]["claims"]["fetched"].as_str().unwrap().contains("FETCH_DENY"), "{after}");
    assert_eq!(after["logs"][0]["message"], "key [secret API_KEY]");
    // The enum by number, numbered as the contract's new enums are: 0 FETCH_UNSPECIFIED (the
    // default, live), 1 FETCH_LIVE, 2 FETCH_DENY.
    for (fetch, denied) in [
        (json!(2), true),
        (json!(1), false),
        (json!(0), false),
        (json!("FETCH_UNSPECIFIED"), false),
        (json!("FETCH_LIVE"), false),
    ] {
        let r = replay(s, json!({"draft": {"name": "extra", "script": fetcher}, "last": 1, "fetch": fetch, "secrets": {"API_KEY": "k"}})).await;
        assert_eq!(r.status, 200, "{fetch}: {r:?}");
        let fetched = r.body["results"][0]["after"]["effects"]["claims"]["fetched"].as_str().unwrap().to_string();
        assert_eq!(fetched.contains("FETCH_DENY"), denied, "{fetch}: {fetched}");
    }
    let r = replay(s, json!({"draft": {"name": "extra", "script": fetcher}, "last": 1, "fetch": 3})).await;
    assert_eq!(r.status, 400, "{r:?}");

    // Nothing stored by replays: no run records, no recorded contexts.
    let runs_after = s.list_runs(&s.admin, json!({})).await.body["details"]["totalResult"].clone();
    assert_eq!(runs_before, runs_after);
    assert_eq!(recorded(s).await.len(), 3);
}

async fn replay_request_rules(s: &TestServer) {
    let id = s.create_script_action("bound", &claim_script("bound", "x")).await;
    let unbound = s.create_script_action("unbound", &claim_script("unbound", "x")).await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let draft = json!({"name": "d", "script": "function d() {}"});
    assert_invalid(
        &replay(s, json!({"draft": draft, "last": 2, "runIds": ["1"]})).await,
        "invalid ReplayTriggerRequest",
    );
    assert_invalid(&replay(s, json!({"draft": draft, "last": 101})).await, "invalid ReplayTriggerRequest.Last");
    let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    assert_invalid(&replay(s, json!({"draft": draft, "runIds": many})).await, "invalid ReplayTriggerRequest.RunIds");
    assert_invalid(&replay(s, json!({})).await, "invalid ReplayTriggerRequest.Draft");
    assert_invalid(
        &replay(s, json!({"draft": {"name": "", "script": "x"}})).await,
        "invalid ReplayTriggerRequest.Draft.Name",
    );
    assert_invalid(
        &replay(s, json!({"draft": {"name": "n", "script": ""}})).await,
        "invalid ReplayTriggerRequest.Draft.Script",
    );
    assert_invalid(
        &replay(s, json!({"draft": {"name": "n", "script": "x", "timeout": "999s"}})).await,
        "invalid ReplayTriggerRequest.Draft.Timeout",
    );
    let r = replay(s, json!({"draft": {"actionId": unbound, "name": "d", "script": "function d() {}"}})).await;
    assert_err(&r, 400, 9, "ACTION-r3pl4");
    let r = replay(s, json!({"draft": {"actionId": "nope", "name": "d", "script": "function d() {}"}})).await;
    assert_err(&r, 400, 9, "ACTION-r3pl4");
    // Last 0 means the default; unknown flow/trigger like _execute.
    assert_eq!(replay(s, json!({"draft": draft, "last": 0})).await.status, 200);
    let r = s.post("/management/v1/flows/9/trigger/4/_replay", &s.admin, json!({"draft": draft})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = s.post("/management/v1/flows/2/trigger/1/_replay", &s.admin, json!({"draft": draft})).await;
    assert_eq!(r.status, 400, "{r:?}");
    // Roles: ORG_OWNER and IAM_OWNER only.
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    assert_eq!(s.post(REPLAY, &viewer, json!({"draft": draft})).await.status, 403);
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    assert_eq!(s.post(REPLAY, &executor, json!({"draft": draft})).await.status, 403);
}

async fn retention_prunes_and_hides(s: &TestServer) {
    record_on(s, &s.admin).await;
    s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "fresh"}})).await;
    let rows = wait_recorded(s, 1).await;
    let org = rows[0].org_id;
    // An old recording (two hours ago), as if written earlier.
    let old = recorded_context::ActiveModel {
        run_id: Set(1),
        org_id: Set(org),
        flow_type: Set(2),
        trigger_type: Set(4),
        context: Set(r#"{"claims":{"sub":"old"}}"#.into()),
        created_at: Set(actionsd::domain::time::now_micros() - 7_200_000_000),
    };
    recorded_context::Entity::insert(old).exec_without_returning(&s.state.store.db).await.unwrap();
    let draft = json!({"name": "d", "script": "function d() {}"});
    // Within the default day both replay.
    assert_eq!(replay(s, json!({"draft": draft})).await.body["summary"]["total"], 2);
    // With one hour the old one is past its retention: not replayed, and pruned.
    assert_eq!(s.put(SETTINGS, &s.admin, json!({"recordContexts": false, "retention": "3600s"})).await.status, 200);
    assert_eq!(replay(s, json!({"draft": draft})).await.body["summary"]["total"], 1);
    let removed = actionsd::store::recordings::prune(&s.state.store, 100_000).await.unwrap();
    assert_eq!(removed, 1);
    let left = recorded(s).await;
    assert_eq!(left.len(), 1, "turning recording off keeps what was recorded");
    assert!(left[0].context.contains("fresh"));
    let n = recorded_context::Entity::find()
        .filter(recorded_context::Column::RunId.eq(1))
        .count(&s.state.store.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Within the retention too, an org keeps at most the newest `ACTIONSD_RUN_MAX_ROWS` (here 2).
    for run_id in [2, 3] {
        let young = recorded_context::ActiveModel {
            run_id: Set(run_id),
            org_id: Set(org),
            flow_type: Set(2),
            trigger_type: Set(4),
            context: Set(r#"{"claims":{"sub":"young"}}"#.into()),
            created_at: Set(actionsd::domain::time::now_micros()),
        };
        recorded_context::Entity::insert(young).exec_without_returning(&s.state.store.db).await.unwrap();
    }
    assert_eq!(actionsd::store::recordings::prune_in_batches(&s.state.store, 2, 1).await.unwrap(), 1);
    let kept: Vec<i64> = recorded(s).await.iter().map(|r| r.run_id).collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept.contains(&3) && !kept.contains(&2), "the newest are kept: {kept:?}");
    recorded_context::Entity::delete_by_id(3).exec(&s.state.store.db).await.unwrap();
    // Off: new calls are not recorded.
    s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "later"}})).await;
    s.poll_runs(&s.admin, json!({}), |_| true).await;
    assert_eq!(recorded(s).await.len(), 1);
}

/// Connector calls record their (mapped) context too, also when no action ran, and a replay uses it.
async fn connector_calls_are_recorded(s: &TestServer) {
    use crate::connector_call::{bind, setup, signed_call, token_payload};
    let (url, _, org, token) = setup(s, json!({})).await;
    let r = s.call_org(Method::PUT, SETTINGS, &token, &org, Some(json!({"recordContexts": true}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let rows = wait_recorded(s, 1).await;
    assert_eq!((rows[0].org_id.to_string(), rows[0].flow_type, rows[0].trigger_type), (org.clone(), 2, 5));
    let script = "function tag(ctx, api) { api.v1.claims.setClaim('first', ctx.v1.getUser().human.firstName) }";
    bind(s, &token, &org, "2", "5", &[("tag", script, false)]).await;
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.status, 200, "{r:?}");
    wait_recorded(s, 2).await;
    let draft = json!({"name": "tag", "script": "function tag(ctx, api) { api.v1.claims.setClaim('first', 'x') }"});
    let r = s
        .call_org(Method::POST, "/management/v1/flows/2/trigger/5/_replay", &token, &org, Some(json!({"draft": draft})))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["summary"]["total"], 2, "{r:?}");
    assert_eq!(r.body["results"][0]["before"]["effects"]["claims"]["first"], "Ann", "{r:?}");
}

backend_tests!(
    connector_calls_are_recorded,
    settings_read_write_and_roles,
    execute_records_redacted_contexts,
    replay_before_after_changed,
    replay_request_rules,
    retention_prunes_and_hides,
);

/// The whole replay is bounded by ACTIONSD_MAX_TRIGGER_TIME: what does not fit is left out and the
/// answer says `truncated`.
mod bounded {
    use super::*;

    fn one_second_triggers(c: &mut actionsd::config::Config) {
        c.max_trigger_time = actionsd::domain::Duration { nanos: 1_000_000_000 };
        c.max_action_timeout = actionsd::domain::Duration { nanos: 1_000_000_000 };
    }

    async fn replay_is_truncated_at_the_trigger_time(s: &TestServer) {
        record_on(s, &s.admin).await;
        for sub in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": sub}})).await.status, 200);
        }
        wait_recorded(s, 6).await;
        // Each replayed call takes about 300 ms: six do not fit in one second.
        let slow = "function slow(ctx, api) { var end = Date.now() + 300; while (Date.now() < end) {} }";
        let r = replay(s, json!({"draft": {"name": "slow", "script": slow}})).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["truncated"], true, "{r:?}");
        let total = r.body["summary"]["total"].as_u64().unwrap_or(0);
        assert!((1..6).contains(&total), "some fit, not all: {r:?}");
        assert_eq!(r.body["results"].as_array().map_or(0, Vec::len) as u64, total);
        // Every result that is there ran to its end.
        for x in r.body["results"].as_array().unwrap() {
            assert_eq!(x["after"]["outcome"], "OUTCOME_SUCCEEDED", "{x}");
        }
    }

    backend_tests_with!(one_second_triggers; replay_is_truncated_at_the_trigger_time);
}
