//! Action versions and rollback (authoring.md §2): every kind of change records a version, the
//! Action message and the create/update answers carry the current one, rollback makes a new
//! version, the 50 newest are kept, names stay unique, runs carry `actionVersion`.

use crate::common;

use common::{assert_err, Reply, TestServer};
use entity::event;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{json, Value};

const ACTIONS: &str = "/management/v1/actions";

fn versions_path(id: &str) -> String {
    format!("{ACTIONS}/{id}/versions")
}

async fn update(s: &TestServer, id: &str, body: Value) -> Reply {
    s.put(&format!("{ACTIONS}/{id}"), &s.admin, body).await
}

async fn current(s: &TestServer, id: &str) -> Value {
    let r = s.get(&format!("{ACTIONS}/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["action"].clone()
}

async fn version_numbers(s: &TestServer, token: &str, id: &str) -> Vec<String> {
    let r = s.get(&versions_path(id), token).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["result"]
        .as_array()
        .map(|a| a.iter().map(|v| v["version"].as_str().expect("version is a string").to_string()).collect())
        .unwrap_or_default()
}

async fn rollback(s: &TestServer, token: &str, id: &str, version: &str) -> Reply {
    s.post(&format!("{ACTIONS}/{id}/versions/{version}/_rollback"), token, json!({})).await
}

fn script(tag: &str) -> String {
    format!("function vers(ctx, api) {{ api.v1.claims.setClaim('tag', '{tag}') }}")
}

async fn every_change_records_a_version(s: &TestServer) {
    let r = s.post(ACTIONS, &s.admin, json!({"name": "vers", "script": script("one"), "timeout": "5s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], "1", "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(current(s, &id).await["version"], "1");

    let base = json!({"name": "vers", "script": script("one"), "timeout": "5s", "allowedToFail": false});
    let change = |field: &str, value: Value| {
        let mut b = base.clone();
        b[field] = value;
        b
    };
    // Each field alone is a change; the answer names the new version.
    let steps = [
        change("script", json!(script("two"))),
        json!({"name": "vers", "script": script("two"), "timeout": "7s"}),
        json!({"name": "vers", "script": script("two"), "timeout": "7s", "allowedToFail": true}),
        json!({"name": "vers-renamed", "script": script("two"), "timeout": "7s", "allowedToFail": true}),
    ];
    for (i, body) in steps.iter().enumerate() {
        let r = update(s, &id, body.clone()).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["version"], (i + 2).to_string(), "{r:?}");
        assert!(r.body["details"]["sequence"].is_string(), "{r:?}");
    }
    // A change of nothing keeps the version.
    let r = update(s, &id, steps[3].clone()).await;
    assert_err(&r, 400, 9, "ACTION-dg4t2");
    // Deactivation is not a content change.
    assert_eq!(s.post(&format!("{ACTIONS}/{id}/_deactivate"), &s.admin, json!({})).await.status, 200);
    assert_eq!(current(s, &id).await["version"], "5");
    assert_eq!(version_numbers(s, &s.admin, &id).await, ["5", "4", "3", "2", "1"]);

    let r = s.get(&format!("{}/{}", versions_path(&id), "3"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let v = &r.body["version"];
    assert_eq!(v["version"], "3");
    assert_eq!(v["name"], "vers");
    assert_eq!(v["script"], script("two"));
    assert_eq!(v["timeout"], "7s");
    assert!(v.get("allowedToFail").is_none(), "{v}");
    assert!(v["details"]["changeDate"].is_string(), "{v}");
    let r = s.get(&format!("{}/{}", versions_path(&id), "1"), &s.admin).await;
    assert_eq!(r.body["version"]["timeout"], "5s");
    assert_eq!(r.body["version"]["script"], script("one"));

    // Connect JSON has the same RPCs.
    let r = s
        .connect(
            "zitadel.management.v1.ManagementService/GetActionVersion",
            &s.admin,
            json!({"id": id, "version": "4"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"]["allowedToFail"], true);

    // int64 as a JSON number too.
    let r = s
        .connect("zitadel.management.v1.ManagementService/GetActionVersion", &s.admin, json!({"id": id, "version": 4}))
        .await;
    assert_eq!(r.body["version"]["version"], "4", "{r:?}");
    for missing in ["6", "0", "-1"] {
        let r = s.get(&format!("{}/{missing}", versions_path(&id)), &s.admin).await;
        assert_err(&r, 404, 5, "ACTION-v3rs0");
    }
    // Not an int64: a 400 naming the field.
    for bad in ["x", "1.5", "99999999999999999999"] {
        let r = s.get(&format!("{}/{bad}", versions_path(&id)), &s.admin).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{bad}: {r:?}");
        assert!(r.body["message"].as_str().unwrap().starts_with("invalid GetActionVersionRequest.Version: "), "{r:?}");
    }
    let r = s.get(&versions_path("123456789"), &s.admin).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = s.get(&format!("{}/1", versions_path("123456789")), &s.admin).await;
    assert_err(&r, 404, 5, "QUERY-GEfnb");
}

async fn rollback_is_a_new_version(s: &TestServer) {
    let r = s.post(ACTIONS, &s.admin, json!({"name": "vers", "script": script("one")})).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(update(s, &id, json!({"name": "vers", "script": script("two")})).await.status, 200);
    assert_eq!(update(s, &id, json!({"name": "vers", "script": script("three")})).await.status, 200);

    let r = rollback(s, &s.admin, &id, "1").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["version"], "4", "{r:?}");
    assert!(r.body["details"]["sequence"].is_string(), "{r:?}");
    let a = current(s, &id).await;
    assert_eq!((a["version"].as_str(), a["script"].as_str()), (Some("4"), Some(script("one").as_str())));
    assert_eq!(version_numbers(s, &s.admin, &id).await, ["4", "3", "2", "1"]);
    // History is kept as it was.
    let r = s.get(&format!("{}/3", versions_path(&id)), &s.admin).await;
    assert_eq!(r.body["version"]["script"], script("three"));

    // Rolling back to content equal to the current one (version 1 again, or version 4 itself).
    assert_err(&rollback(s, &s.admin, &id, "1").await, 400, 9, "ACTION-r0llb");
    assert_err(&rollback(s, &s.admin, &id, "4").await, 400, 9, "ACTION-r0llb");
    assert_err(&rollback(s, &s.admin, &id, "9").await, 404, 5, "ACTION-v3rs0");
    assert_err(&rollback(s, &s.admin, "987654321", "1").await, 404, 5, "COMMAND-Sfg2t");

    // The action's name is unique in the org: a version whose name is taken now is a 409.
    assert_eq!(update(s, &id, json!({"name": "renamed", "script": script("one")})).await.status, 200);
    s.create_action(&s.admin, "vers").await;
    let r = rollback(s, &s.admin, &id, "3").await;
    assert_err(&r, 409, 6, "V3-DKcYh");
    assert_eq!(current(s, &id).await["version"], "5");

    // The trigger runs the rolled-back content at once.
    assert_eq!(rollback(s, &s.admin, &id, "5").await.status, 400);
    let r = s
        .post(
            ACTIONS,
            &s.admin,
            json!({"name": "runner", "script": "function runner(ctx, api) { api.v1.claims.setClaim('tag', 'a') }"}),
        )
        .await;
    let runner = r.body["id"].as_str().unwrap().to_string();
    s.bind_trigger(&s.admin, "2", "4", &[&runner]).await;
    assert_eq!(
        update(
            s,
            &runner,
            json!({"name": "runner", "script": "function runner(ctx, api) { api.v1.claims.setClaim('tag', 'b') }"})
        )
        .await
        .status,
        200
    );
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.body["effects"]["claims"]["tag"], "b", "{r:?}");
    assert_eq!(r.body["runs"][0]["actionVersion"], "2", "{r:?}");
    assert_eq!(rollback(s, &s.admin, &runner, "1").await.status, 200);
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.body["effects"]["claims"]["tag"], "a", "{r:?}");
    assert_eq!(r.body["runs"][0]["actionVersion"], "3", "{r:?}");

    // The event log has the rollback.
    let events = event::Entity::find()
        .filter(event::Column::AggregateType.eq("action"))
        .filter(event::Column::AggregateId.eq(runner.as_str()))
        .order_by_asc(event::Column::Sequence)
        .all(&s.state.store.db)
        .await
        .unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["action.added", "action.changed", "action.rolledback"]);
    let payload: Value = serde_json::from_str(&events[2].payload).unwrap();
    assert_eq!(payload["fromVersion"], "1", "{payload}");
}

async fn fifty_newest_are_kept(s: &TestServer) {
    let r = s.post(ACTIONS, &s.admin, json!({"name": "many", "script": script("0")})).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    for i in 1..55 {
        let r = update(s, &id, json!({"name": "many", "script": script(&i.to_string())})).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let numbers = version_numbers(s, &s.admin, &id).await;
    let expected: Vec<String> = (6..=55).rev().map(|v| v.to_string()).collect();
    assert_eq!(numbers, expected);
    let r = s.get(&versions_path(&id), &s.admin).await;
    assert_eq!(r.body["details"]["totalResult"], "50", "{r:?}");
    assert_err(&s.get(&format!("{}/5", versions_path(&id)), &s.admin).await, 404, 5, "ACTION-v3rs0");
    assert_err(&rollback(s, &s.admin, &id, "5").await, 404, 5, "ACTION-v3rs0");
    // Rolling back to the oldest kept one prunes version 6 itself (it is then the 51st).
    let r = rollback(s, &s.admin, &id, "6").await;
    assert_eq!(r.body["version"], "56", "{r:?}");
    let numbers = version_numbers(s, &s.admin, &id).await;
    assert_eq!((numbers.len(), numbers[0].as_str(), numbers[49].as_str()), (50, "56", "7"));
    // Version n holds the script of update n - 1 (version 1 was the create's "0").
    assert_eq!(current(s, &id).await["script"], script("5"));

    // Deleting the action drops its versions.
    assert_eq!(s.delete(&format!("{ACTIONS}/{id}"), &s.admin).await.status, 200);
    let left = entity::action_version::Entity::find()
        .filter(entity::action_version::Column::ActionId.eq(id.parse::<i64>().unwrap()))
        .all(&s.state.store.db)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn runs_carry_the_version_and_roles_hold(s: &TestServer) {
    let id = s.create_script_action("tagged", "function tagged(ctx, api) { console.log('v1') }").await;
    assert_eq!(
        update(s, &id, json!({"name": "tagged", "script": "function tagged(ctx, api) { console.log('v2') }"}))
            .await
            .status,
        200
    );
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.body["runs"][0]["actionVersion"], "2", "{r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();
    let runs = s
        .poll_runs(&s.admin, json!({"queries": [{"runIdQuery": {"runId": run_id}}]}), |r| r.body["result"].is_array())
        .await;
    assert_eq!(runs.body["result"][0]["actionVersion"], "2", "{runs:?}");
    let record = runs.body["result"][0]["id"].as_str().unwrap();
    let r = s.get(&format!("/management/v1/runs/{record}"), &s.admin).await;
    assert_eq!(r.body["run"]["actionVersion"], "2", "{r:?}");

    // _test of a stored action names its version; an inline script has none.
    let r = s.test_action(&s.admin, json!({"actionId": id, "flowType": "2", "triggerType": "4"})).await;
    assert_eq!(r.body["runs"][0]["actionVersion"], "2", "{r:?}");
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "inline", "script": "function inline() {}", "flowType": "2", "triggerType": "4"}),
        )
        .await;
    assert!(r.body["runs"][0].get("actionVersion").is_none(), "{r:?}");

    // Reads as GetAction, rollback as UpdateAction; other orgs see nothing.
    let org = s.create_org("version-roles").await;
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    assert_eq!(version_numbers(s, &viewer, &id).await, ["2", "1"]);
    assert_eq!(rollback(s, &viewer, &id, "1").await.status, 403);
    assert_eq!(s.get(&versions_path(&id), &executor).await.status, 403);
    let other = s.create_token(&org, "ORG_OWNER").await;
    assert_eq!(s.get(&versions_path(&id), &other).await.status, 404);
    assert_eq!(s.get(&format!("{}/1", versions_path(&id)), &other).await.status, 404);
    assert_eq!(rollback(s, &other, &id, "1").await.status, 404);
}

/// A version kept from before `ACTIONSD_MAX_ACTION_TIMEOUT` was lowered (its timeout is written
/// here through the store, as an older configuration would have allowed it): its reads show the
/// maximum, as reads and runs of any stored timeout do, and it rolls back.
async fn rollback_past_a_lowered_maximum(s: &TestServer) {
    use sea_orm::sea_query::Expr;
    let r = s.post(ACTIONS, &s.admin, json!({"name": "vers", "script": script("one"), "timeout": "3s"})).await;
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(update(s, &id, json!({"name": "vers", "script": script("two"), "timeout": "1s"})).await.status, 200);
    entity::action_version::Entity::update_many()
        .col_expr(entity::action_version::Column::TimeoutNanos, Expr::value(30_000_000_000i64))
        .filter(entity::action_version::Column::ActionId.eq(id.parse::<i64>().unwrap()))
        .filter(entity::action_version::Column::Version.eq(1))
        .exec(&s.state.store.db)
        .await
        .unwrap();
    let r = s.get(&format!("{}/1", versions_path(&id)), &s.admin).await;
    assert_eq!(r.body["version"]["timeout"], "5s", "the maximum of this server: {r:?}");
    let r = rollback(s, &s.admin, &id, "1").await;
    assert_eq!(r.status, 200, "{r:?}");
    let a = current(s, &id).await;
    assert_eq!((a["version"].as_str(), a["script"].as_str()), (Some("3"), Some(script("one").as_str())));
    assert_eq!(a["timeout"], "5s", "{a}");
    // A name that no longer passes today's rules is still refused.
    let r = s.post(ACTIONS, &s.admin, json!({"name": "other", "script": "function other(ctx, api) {}"})).await;
    let other = r.body["id"].as_str().unwrap().to_string();
    entity::action_version::Entity::update_many()
        .col_expr(entity::action_version::Column::Name, Expr::value("x".repeat(201)))
        .filter(entity::action_version::Column::ActionId.eq(other.parse::<i64>().unwrap()))
        .exec(&s.state.store.db)
        .await
        .unwrap();
    assert_eq!(update(s, &other, json!({"name": "other", "script": "function other(ctx, api) { }"})).await.status, 200);
    let r = rollback(s, &s.admin, &other, "1").await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
}

fn max_five_seconds(c: &mut actionsd::config::Config) {
    c.max_action_timeout = actionsd::domain::Duration::from_secs(5);
}

mod lowered_maximum {
    use super::*;
    backend_tests_with!(max_five_seconds; rollback_past_a_lowered_maximum);
}

backend_tests!(
    every_change_records_a_version,
    rollback_is_a_new_version,
    fifty_newest_are_kept,
    runs_carry_the_version_and_roles_hold,
);
