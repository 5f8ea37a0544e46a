//! Action secrets (authoring.md §1): names and values checked, values never in any response,
//! event or run record, readable by scripts through `require("zitadel/secrets")`, redacted from
//! logs and error texts, rotation seen by the next run, 100 per organization, roles, isolation.

use crate::common;

use common::{assert_err, Reply, TestServer};
use entity::event;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

const SECRETS: &str = "/management/v1/actions/secrets";

fn secret_path(name: &str) -> String {
    format!("{SECRETS}/{name}")
}

async fn set(s: &TestServer, token: &str, name: &str, value: &str) -> Reply {
    s.put(&secret_path(name), token, json!({ "value": value })).await
}

async fn list(s: &TestServer, token: &str) -> Reply {
    s.post(&format!("{SECRETS}/_search"), token, json!({})).await
}

fn names(r: &Reply) -> Vec<String> {
    r.body["result"]
        .as_array()
        .map(|a| a.iter().map(|x| x["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

#[track_caller]
fn assert_invalid_prefix(r: &Reply, prefix: &str) {
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.code(), 3, "{r:?}");
    let message = r.body["message"].as_str().unwrap_or("");
    assert!(message.starts_with(prefix), "{message:?} should start with {prefix:?}");
}

/// The event payloads of an organization's secret aggregate.
async fn secret_events(s: &TestServer) -> Vec<(String, Value)> {
    event::Entity::find()
        .filter(event::Column::AggregateType.eq("action_secret"))
        .all(&s.state.store.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| (e.event_type, serde_json::from_str(&e.payload).unwrap_or(Value::Null)))
        .collect()
}

/// Every stored event payload as text (to search for a value).
async fn all_event_text(s: &TestServer) -> String {
    event::Entity::find()
        .all(&s.state.store.db)
        .await
        .expect("events")
        .into_iter()
        .map(|e| format!("{} {}", e.event_type, e.payload))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn set_list_replace_remove(s: &TestServer) {
    let r = set(s, &s.admin, "CRM_API_KEY", "first-value-123").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["details"]["sequence"].is_string(), "{r:?}");
    assert!(r.body["details"]["resourceOwner"].as_str().is_some_and(|o| !o.is_empty()), "{r:?}");
    let r = set(s, &s.admin, "OTHER", "other-value-456").await;
    assert_eq!(r.status, 200, "{r:?}");
    // Replacing keeps one entry.
    let r = set(s, &s.admin, "CRM_API_KEY", "second-value-789").await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = list(s, &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(names(&r), ["CRM_API_KEY", "OTHER"]);
    assert_eq!(r.body["details"]["totalResult"], "2", "{r:?}");
    assert!(r.body["result"][0]["details"]["creationDate"].is_string(), "{r:?}");
    let text = r.body.to_string();
    for value in ["first-value-123", "second-value-789", "other-value-456"] {
        assert!(!text.contains(value), "a list carries a value: {text}");
    }

    // Connect JSON gives the same.
    let r = s.connect("zitadel.management.v1.ManagementService/ListActionSecrets", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(names(&r), ["CRM_API_KEY", "OTHER"]);
    let r = s
        .connect(
            "zitadel.management.v1.ManagementService/SetActionSecret",
            &s.admin,
            json!({"name": "VIA_CONNECT", "value": "connect-value"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");

    let r = s.delete(&secret_path("OTHER"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["details"]["sequence"].is_string(), "{r:?}");
    // A removal's details carry its change date, as ClearFlow's and RemoveToken's do.
    assert!(r.body["details"]["changeDate"].is_string(), "{r:?}");
    assert!(r.body["details"].get("creationDate").is_none(), "{r:?}");
    let r = s.delete(&secret_path("OTHER"), &s.admin).await;
    assert_err(&r, 404, 5, "ACTION-s3cnf");
    let r = s.delete(&secret_path("not-a-name"), &s.admin).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(names(&list(s, &s.admin).await), ["CRM_API_KEY", "VIA_CONNECT"]);

    // Events carry the name only.
    let events = secret_events(s).await;
    let kinds: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        kinds,
        ["action.secret.set", "action.secret.set", "action.secret.set", "action.secret.set", "action.secret.removed"]
    );
    assert_eq!(events[4].1, json!({"name": "OTHER"}));
    let text = all_event_text(s).await;
    for value in ["first-value-123", "second-value-789", "other-value-456", "connect-value"] {
        assert!(!text.contains(value), "an event carries a value");
    }
}

async fn names_and_values_are_checked(s: &TestServer) {
    for bad in ["lower", "_LEAD", "9LEAD", "DASH-ED", "Ümlaut"] {
        let r = set(s, &s.admin, &urlencode(bad), "value").await;
        assert_invalid_prefix(&r, "invalid SetActionSecretRequest.Name: ");
    }
    let long = format!("A{}", "B".repeat(64));
    assert_invalid_prefix(&set(s, &s.admin, &long, "value").await, "invalid SetActionSecretRequest.Name: ");
    let max = format!("A{}", "B".repeat(63));
    assert_eq!(set(s, &s.admin, &max, "value").await.status, 200);

    assert_invalid_prefix(&set(s, &s.admin, "EMPTY", "").await, "invalid SetActionSecretRequest.Value: ");
    let r = s.put(&secret_path("MISSING"), &s.admin, json!({})).await;
    assert_invalid_prefix(&r, "invalid SetActionSecretRequest.Value: ");
    assert_invalid_prefix(&set(s, &s.admin, "BIG", &"x".repeat(4097)).await, "invalid SetActionSecretRequest.Value: ");
    // 4096 bytes of UTF-8 (multi-byte characters count as bytes).
    assert_eq!(set(s, &s.admin, "FULL", &"é".repeat(2048)).await.status, 200);
    assert_invalid_prefix(&set(s, &s.admin, "OVER", &"é".repeat(2049)).await, "invalid SetActionSecretRequest.Value: ");
    assert_eq!(names(&list(s, &s.admin).await), [max.as_str(), "FULL"]);
    // Any UTF-8, NUL included (the value is stored encrypted, never as text): scripts read it whole.
    assert_eq!(set(s, &s.admin, "WITH_NUL", "a\u{0}b").await.status, 200);
    let script = "function n(ctx, api) { var v = require('zitadel/secrets').get('WITH_NUL'); \
        api.v1.claims.setClaim('len', v.length); api.v1.claims.setClaim('code', v.charCodeAt(1)); }";
    let r = s.test_action(&s.admin, json!({"name": "n", "script": script, "flowType": "2", "triggerType": "4"})).await;
    assert_eq!(r.body["effects"]["claims"], json!({"len": 3, "code": 0}), "{r:?}");
    // A dry run's override takes what SetActionSecret takes; NUL elsewhere in it is still refused.
    let with = |value: &str, name: &str| json!({"name": name, "script": script, "flowType": "2", "triggerType": "4", "secrets": {"WITH_NUL": value}});
    let r = s.test_action(&s.admin, with("x\u{0}yz", "n")).await;
    assert_eq!(r.body["effects"]["claims"], json!({"len": 4, "code": 0}), "{r:?}");
    let r = s.test_action(&s.admin, with("x", "n\u{0}")).await;
    assert_invalid_prefix(&r, "invalid TestActionRequest.Name: must not contain NUL");
    let r = s
        .post(
            "/management/v1/flows/2/trigger/4/_replay",
            &s.admin,
            json!({"draft": {"name": "n", "script": script}, "secrets": {"WITH_NUL": "a\u{0}"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn at_most_one_hundred(s: &TestServer) {
    for i in 0..100 {
        let r = set(s, &s.admin, &format!("S{i:03}"), "v").await;
        assert_eq!(r.status, 200, "{i}: {r:?}");
    }
    let r = set(s, &s.admin, "S100", "v").await;
    assert_err(&r, 429, 8, "ACTION-s3cr3t");
    // Replacing one of the hundred still works; after a removal there is room again.
    assert_eq!(set(s, &s.admin, "S000", "changed").await.status, 200);
    assert_eq!(s.delete(&secret_path("S050"), &s.admin).await.status, 200);
    assert_eq!(set(s, &s.admin, "S100", "v").await.status, 200);
    assert_eq!(list(s, &s.admin).await.body["details"]["totalResult"], "100");
    // Another organization has its own hundred.
    let org = s.create_org("other-secrets").await;
    let owner = s.create_token(&org, "ORG_OWNER").await;
    assert_eq!(set(s, &owner, "S000", "v").await.status, 200);
}

async fn roles_and_isolation(s: &TestServer) {
    let org = s.create_org("secret-roles").await;
    let owner = s.create_token(&org, "ORG_OWNER").await;
    let viewer = s.create_token(&org, "ORG_VIEWER").await;
    let executor = s.create_token(&org, "ORG_EXECUTOR").await;
    assert_eq!(set(s, &owner, "ORG_KEY", "org-b-value").await.status, 200);
    assert_eq!(set(s, &s.admin, "DEFAULT_KEY", "default-value").await.status, 200);

    assert_eq!(list(s, &viewer).await.status, 200);
    assert_eq!(names(&list(s, &viewer).await), ["ORG_KEY"]);
    assert_eq!(set(s, &viewer, "NOPE", "v").await.status, 403);
    assert_eq!(s.delete(&secret_path("ORG_KEY"), &viewer).await.status, 403);
    assert_eq!(list(s, &executor).await.status, 403);
    assert_eq!(set(s, &executor, "NOPE", "v").await.status, 403);
    // An IAM_OWNER naming the org acts on that org's secrets.
    let r = s.call_org(Method::PUT, &secret_path("FROM_ADMIN"), &s.admin, &org, Some(json!({"value": "v1234"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(names(&list(s, &owner).await), ["FROM_ADMIN", "ORG_KEY"]);
    assert_eq!(names(&list(s, &s.admin).await), ["DEFAULT_KEY"]);
    // The other org's owner cannot remove the default org's secret (it does not exist there).
    assert_eq!(s.delete(&secret_path("DEFAULT_KEY"), &owner).await.status, 404);

    // A script sees its own organization's secrets only.
    let script = r#"function peek(ctx, api) {
  var s = require('zitadel/secrets');
  api.v1.claims.setClaim('own', String(s.get('ORG_KEY')));
  api.v1.claims.setClaim('other', String(s.get('DEFAULT_KEY')));
}"#;
    let r = s.post("/management/v1/actions", &owner, json!({"name": "peek", "script": script})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    s.bind_trigger(&owner, "2", "4", &[&id]).await;
    let r = s.execute_trigger(&owner, "2", "4", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["claims"], json!({"own": "org-b-value", "other": "undefined"}), "{r:?}");
}

const READER: &str = r#"function reader(ctx, api) {
  var secrets = require('zitadel/secrets');
  var key = secrets.get('API_KEY');
  api.v1.claims.setClaim('key', key === undefined ? 'unset' : key);
  api.v1.claims.setClaim('missing', secrets.get('NOT_SET') === undefined);
  require('zitadel/log').info('calling with ' + key);
  console.log('short ' + secrets.get('PIN'));
}"#;

const THROWER: &str = r#"function thrower(ctx, api) {
  throw new Error('bad key ' + require('zitadel/secrets').get('API_KEY'));
}"#;

async fn scripts_read_and_runs_redact(s: &TestServer) {
    assert_eq!(set(s, &s.admin, "API_KEY", "sk-live-ABCDEFGH").await.status, 200);
    assert_eq!(set(s, &s.admin, "PIN", "123").await.status, 200);
    let reader = s.create_script_action("reader", READER).await;
    let thrower =
        s.create_action_body(&s.admin, json!({"name": "thrower", "script": THROWER, "allowedToFail": true})).await;
    s.bind_trigger(&s.admin, "2", "4", &[&reader, &thrower]).await;

    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // Effects are the script's own output: not rewritten.
    assert_eq!(r.body["effects"]["claims"]["key"], "sk-live-ABCDEFGH", "{r:?}");
    assert_eq!(r.body["effects"]["claims"]["missing"], true, "{r:?}");
    assert_eq!(r.body["runs"][1]["error"], "Error: bad key [secret API_KEY] at thrower (2:9)", "{r:?}");
    let run_id = r.body["runId"].as_str().unwrap().to_string();

    let runs = s
        .poll_runs(&s.admin, json!({"queries": [{"runIdQuery": {"runId": run_id}}]}), |r| {
            r.body["result"].as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let listed = runs.body.to_string();
    assert!(!listed.contains("sk-live-ABCDEFGH"), "ListRuns shows the value: {listed}");
    let mut logs = Vec::new();
    for run in runs.body["result"].as_array().unwrap() {
        let r = s.get(&format!("/management/v1/runs/{}", run["id"].as_str().unwrap()), &s.admin).await;
        assert_eq!(r.status, 200, "{r:?}");
        let text = r.body.to_string();
        assert!(!text.contains("sk-live-ABCDEFGH"), "GetRun shows the value: {text}");
        if let Some(l) = r.body["run"]["logs"].as_array() {
            logs.extend(l.iter().map(|x| x["message"].as_str().unwrap_or("").to_string()));
        }
        if r.body["run"]["actionName"] == "thrower" {
            assert_eq!(r.body["run"]["error"], "Error: bad key [secret API_KEY] at thrower (2:9)");
        }
    }
    // Values under four characters are not redacted.
    assert_eq!(logs, ["calling with [secret API_KEY]", "short 123"]);

    // Rotation: the next run sees the new value; removal makes it undefined.
    assert_eq!(set(s, &s.admin, "API_KEY", "sk-live-ROTATED1").await.status, 200);
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.body["effects"]["claims"]["key"], "sk-live-ROTATED1", "{r:?}");
    assert_eq!(r.body["runs"][1]["error"], "Error: bad key [secret API_KEY] at thrower (2:9)", "{r:?}");
    assert_eq!(s.delete(&secret_path("API_KEY"), &s.admin).await.status, 200);
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    assert_eq!(r.body["effects"]["claims"]["key"], "unset", "{r:?}");
    assert_eq!(r.body["runs"][1]["error"], "Error: bad key undefined at thrower (2:9)", "{r:?}");

    // Not in any event either, and stored encrypted.
    let text = all_event_text(s).await;
    assert!(!text.contains("sk-live-ABCDEFGH") && !text.contains("sk-live-ROTATED1"));
    let rows = entity::action_secret::Entity::find().all(&s.state.store.db).await.unwrap();
    assert!(rows.iter().all(|r| r.value_enc.starts_with("v1:") && !r.value_enc.contains("123")), "{rows:?}");
}

async fn test_overrides_without_storing(s: &TestServer) {
    assert_eq!(set(s, &s.admin, "API_KEY", "stored-value-1").await.status, 200);
    let body = |secrets: Value| json!({"name": "reader", "script": READER, "flowType": "2", "triggerType": "4", "secrets": secrets});
    let r = s.test_action(&s.admin, body(json!({}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["claims"]["key"], "stored-value-1", "{r:?}");
    assert_eq!(r.body["runs"][0]["logs"][0]["message"], "calling with [secret API_KEY]", "{r:?}");

    let r = s.test_action(&s.admin, body(json!({"API_KEY": "draft-value-2", "PIN": "98765"}))).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["claims"]["key"], "draft-value-2", "{r:?}");
    let logs: Vec<&str> =
        r.body["runs"][0]["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(logs, ["calling with [secret API_KEY]", "short [secret PIN]"]);
    // Nothing stored: the stored value stays, PIN does not exist.
    assert_eq!(names(&list(s, &s.admin).await), ["API_KEY"]);
    let r = s.test_action(&s.admin, body(json!({}))).await;
    assert_eq!(r.body["effects"]["claims"]["key"], "stored-value-1", "{r:?}");

    let r = s.test_action(&s.admin, body(json!({"bad-name": "v"}))).await;
    assert_invalid_prefix(&r, "invalid TestActionRequest.Secrets[");
    let r = s.test_action(&s.admin, body(json!({"OK": ""}))).await;
    assert_invalid_prefix(&r, "invalid TestActionRequest.Secrets[");
    // A value of the wrong type names the key as sent, not re-cased like a field.
    let r = s.test_action(&s.admin, body(json!({"CRM_KEY": 5}))).await;
    assert_invalid_prefix(&r, "invalid TestActionRequest.Secrets[\"CRM_KEY\"]: invalid type");
}

/// Redaction comes before every bound, in one pass, and covers the JSON spelling of a value: a
/// cut never leaves part of a value, a record's logs stay within 64 KiB as stored, markers are
/// never rewritten by another secret, and a value with a line break logged through `%j` is hidden.
async fn redaction_before_bounds_in_one_pass(s: &TestServer) {
    let name64 = format!("L{}", "X".repeat(63));
    let secrets = json!({"API_KEY": "supersecretvalue", "SHORT": "secret", "LONG": "mysecretvalue",
        "PEM": "-----BEGIN KEY-----\nMIIBsecretbody\n-----END KEY-----", (name64.clone()): "wxyz"});
    let run = |script: String| {
        s.test_action(
            &s.admin,
            json!({"name": "a", "script": script, "flowType": "2", "triggerType": "4", "secrets": secrets}),
        )
    };
    let get = "require('zitadel/secrets').get";
    // A thrown text whose 64 KiB cut falls inside a value: the cut may split the marker, never the value.
    let r = run(format!("function a(ctx, api) {{ throw 'z'.repeat(65521) + {get}('API_KEY'); }}")).await;
    let error = r.body["runs"][0]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("[secret API_KEY") && !error.contains("supersecret"), "{}", &error[error.len() - 200..]);
    // A record of short values with a long name: the stored logs stay within the cap.
    let r =
        run(format!("function a(ctx, api) {{ console.log({get}('{name64}').repeat(16000)); console.log('after'); }}"))
            .await;
    let logs = r.body["runs"][0]["logs"].as_array().cloned().unwrap_or_default();
    let kept: usize = logs.iter().map(|l| l["message"].as_str().unwrap_or_default().len()).sum();
    assert!(kept <= 64 * 1024, "{kept} bytes of logs kept");
    // One pass: markers stay whole; a JSON-escaped value is hidden too.
    let r = run(format!(
        "function a(ctx, api) {{ console.log({get}('LONG') + ' ' + {get}('SHORT')); console.log('%j', {{key: {get}('PEM')}}); }}"
    ))
    .await;
    let logs: Vec<&str> =
        r.body["runs"][0]["logs"].as_array().unwrap().iter().map(|l| l["message"].as_str().unwrap()).collect();
    assert_eq!(logs, ["[secret LONG] [secret SHORT]", r#"{"key":"[secret PEM]"}"#], "{r:?}");
}

backend_tests!(
    redaction_before_bounds_in_one_pass,
    set_list_replace_remove,
    names_and_values_are_checked,
    at_most_one_hundred,
    roles_and_isolation,
    scripts_read_and_runs_redact,
    test_overrides_without_storing,
);

/// Lists ordered by a name follow code points whatever the database's collation: on a PostgreSQL
/// database whose default collation sorts `_` before digits and letters (ICU `en-US`, as many
/// databases are created), secrets and a connection's organization links come in the order
/// SQLite gives, so pages are the same on every backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn name_orders_do_not_depend_on_the_collation() {
    use sea_orm::{ConnectionTrait, Database};
    let Some(url) = common::postgres_url_or_skip("name_orders_do_not_depend_on_the_collation") else {
        return;
    };
    let name = format!("collating_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&url).await.expect("connect");
    let made = admin
        .execute_unprepared(&format!(
            "CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
        .await;
    if let Err(e) = made {
        eprintln!("SKIPPED name_orders_do_not_depend_on_the_collation: this PostgreSQL has no ICU collation ({e})");
        return;
    }
    let db_url = common::sibling_database_url(&url, &name);
    let s = TestServer::postgres_database(&db_url).await;
    // The database itself orders these differently from code points.
    let collated = admin
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT datlocprovider::text AS p FROM pg_database WHERE datname = '{name}'"),
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collated.try_get::<String>("", "p").unwrap(), "i");

    for n in ["ZED", "A_1", "A1", "AA", "A"] {
        assert_eq!(set(&s, &s.admin, n, "v").await.status, 200);
    }
    let r = list(&s, &s.admin).await;
    let names: Vec<&str> = r.body["result"].as_array().unwrap().iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["A", "A1", "AA", "A_1", "ZED"], "{r:?}");

    let org = s.get("/management/v1/orgs/me", &s.admin).await.body["org"]["id"].as_str().unwrap().to_string();
    let c = s.post("/connector/v1/connections", &s.admin, json!({"name": "c"})).await;
    let id = c.body["id"].as_str().unwrap().to_string();
    for z in ["z_1", "Z3", "z10", "1"] {
        let r = s.put(&format!("/connector/v1/connections/{id}/orgs/{z}"), &s.admin, json!({"orgId": org})).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
    let links = |r: &Reply| -> Vec<String> {
        r.body["result"].as_array().unwrap().iter().map(|l| l["zitadelOrgId"].as_str().unwrap().to_string()).collect()
    };
    let search = format!("/connector/v1/connections/{id}/orgs/_search");
    let all = s.post(&search, &s.admin, json!({"query": {"asc": true}})).await;
    assert_eq!(links(&all), ["1", "Z3", "z10", "z_1"], "{all:?}");
    let first = s.post(&search, &s.admin, json!({"query": {"limit": 2}})).await;
    assert_eq!(links(&first), ["z_1", "z10"], "{first:?}");

    s.stop().await;
    admin.execute_unprepared(&format!("DROP DATABASE \"{name}\" WITH (FORCE)")).await.expect("drop database");
}
