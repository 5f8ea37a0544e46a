//! Actions v2 targets and executions (README, "Actions v2"): CRUD, validation, partial update,
//! executions and their conditions, IAM_OWNER only, both transports, signing key at rest.

use crate::common;

use common::{assert_error, webhook_target as webhook, Reply, TestServer};
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

const TARGETS: &str = "/v2/actions/targets";
const EXECUTIONS: &str = "/v2/actions/executions";
const SVC: &str = "zitadel.action.v2.ActionService";
const MGMT_CREATE: &str = "/zitadel.management.v1.ManagementService/CreateAction";

fn target_path(id: &str) -> String {
    format!("{TARGETS}/{id}")
}

async fn create(s: &TestServer, body: Value) -> (String, String) {
    let r = s.post(TARGETS, &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    (r.body["id"].as_str().expect("id").to_string(), r.body["signingKey"].as_str().expect("key").to_string())
}

async fn get(s: &TestServer, id: &str) -> Value {
    let r = s.get(&target_path(id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["target"].clone()
}

async fn event_count(s: &TestServer, aggregate_type: &str, aggregate_id: &str) -> u64 {
    entity::event::Entity::find()
        .filter(entity::event::Column::AggregateType.eq(aggregate_type))
        .filter(entity::event::Column::AggregateId.eq(aggregate_id))
        .count(&s.state.store.db)
        .await
        .expect("count events")
}

fn names(r: &Reply) -> Vec<String> {
    r.body["targets"]
        .as_array()
        .map(|a| a.iter().map(|t| t["name"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

async fn create_get_and_list_targets(s: &TestServer) {
    let r = s.post(TARGETS, &s.admin, webhook("hook-a")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id_a = r.body["id"].as_str().unwrap().to_string();
    let key = r.body["signingKey"].as_str().unwrap().to_string();
    assert_eq!(key.len(), 36, "{key}");
    assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "{key}");
    assert!(r.body["creationDate"].as_str().unwrap().ends_with('Z'), "{r:?}");
    assert!(id_a.parse::<u64>().is_ok(), "{id_a}");

    let t = get(s, &id_a).await;
    assert_eq!(t["id"], id_a.as_str());
    assert_eq!(t["name"], "hook-a");
    assert_eq!(t["restWebhook"], json!({}));
    assert!(t.get("restCall").is_none() && t.get("restAsync").is_none(), "{t}");
    assert_eq!(t["timeout"], "10s");
    assert_eq!(t["endpoint"], "https://hooks.example.com/z");
    assert_eq!(t["signingKey"], key.as_str());
    assert_eq!(t["payloadType"], "PAYLOAD_TYPE_JSON", "unspecified reads back as JSON");
    assert_eq!(t["creationDate"], r.body["creationDate"]);
    assert_eq!(t["changeDate"], r.body["creationDate"]);

    let (id_b, _) = create(
        s,
        json!({"name": "Call-B", "rest_call": {"interrupt_on_error": true}, "timeout": "1.5s",
               "endpoint": "http://93.184.216.34:8080/x", "payload_type": "PAYLOAD_TYPE_JWT"}),
    )
    .await;
    let t = get(s, &id_b).await;
    assert_eq!(t["restCall"], json!({"interruptOnError": true}));
    assert_eq!(t["timeout"], "1.500s");
    assert_eq!(t["payloadType"], "PAYLOAD_TYPE_JWT");
    let (id_c, _) = create(
        s,
        json!({"name": "async-c", "restAsync": {}, "timeout": "270s", "endpoint": "https://a.example.org",
               "payloadType": 0}),
    )
    .await;
    let t = get(s, &id_c).await;
    assert_eq!(t["restAsync"], json!({}));
    assert_eq!(t["payloadType"], "PAYLOAD_TYPE_JSON");

    // Default: newest first, limit 100.
    let r = s.post(&format!("{TARGETS}/search"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["pagination"], json!({"totalResult": "3", "appliedLimit": "100"}));
    assert_eq!(names(&r), ["async-c", "Call-B", "hook-a"]);
    assert!(r.body["targets"][0]["signingKey"].as_str().is_some_and(|k| k.len() == 36), "{r:?}");
    let r = s.post(&format!("{TARGETS}/search"), &s.admin, json!({"pagination": {"asc": true}})).await;
    assert_eq!(names(&r), ["hook-a", "Call-B", "async-c"]);
    let r = s
        .post(&format!("{TARGETS}/search"), &s.admin, json!({"pagination": {"offset": "1", "limit": 1, "asc": true}}))
        .await;
    assert_eq!(r.body["pagination"], json!({"totalResult": "3", "appliedLimit": "1"}));
    assert_eq!(names(&r), ["Call-B"]);
    let r = s
        .post(
            &format!("{TARGETS}/search"),
            &s.admin,
            json!({"sortingColumn": "TARGET_FIELD_NAME_NAME", "pagination": {"asc": true}}),
        )
        .await;
    assert_eq!(names(&r), ["Call-B", "async-c", "hook-a"]);
    // By ZITADEL's type numbers: restWebhook (0), restCall (1), restAsync (2).
    for (asc, want) in [(true, ["hook-a", "Call-B", "async-c"]), (false, ["async-c", "Call-B", "hook-a"])] {
        let body = json!({"sortingColumn": "TARGET_FIELD_NAME_TARGET_TYPE", "pagination": {"asc": asc}});
        let r = s.post(&format!("{TARGETS}/search"), &s.admin, body).await;
        assert_eq!(names(&r), want, "asc {asc}: {r:?}");
    }

    let filter = |name: &str, method: &str| json!({"pagination": {"asc": true}, "filters": [{"targetNameFilter": {"targetName": name, "method": method}}]});
    let cases: &[(&str, &str, &[&str])] = &[
        ("hook-a", "TEXT_FILTER_METHOD_EQUALS", &["hook-a"]),
        ("HOOK-A", "TEXT_FILTER_METHOD_EQUALS", &[]),
        ("HOOK-A", "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE", &["hook-a"]),
        ("call", "TEXT_FILTER_METHOD_STARTS_WITH", &[]),
        ("call", "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE", &["Call-B"]),
        ("-", "TEXT_FILTER_METHOD_CONTAINS", &["hook-a", "Call-B", "async-c"]),
        ("C", "TEXT_FILTER_METHOD_CONTAINS", &["Call-B"]),
        ("C", "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE", &["Call-B", "async-c"]),
        ("-c", "TEXT_FILTER_METHOD_ENDS_WITH", &["async-c"]),
        ("-C", "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE", &["async-c"]),
    ];
    for (name, method, want) in cases {
        let r = s.post(&format!("{TARGETS}/search"), &s.admin, filter(name, method)).await;
        assert_eq!(r.status, 200, "{method} {name}: {r:?}");
        assert_eq!(names(&r), *want, "{method} {name}: {r:?}");
    }
    let r = s
        .post(
            &format!("{TARGETS}/search"),
            &s.admin,
            json!({"pagination": {"asc": true}, "filters": [{"inTargetIdsFilter": {"targetIds": [id_a, id_c, "42"]}}]}),
        )
        .await;
    assert_eq!(names(&r), ["hook-a", "async-c"]);
    let r = s
        .post(
            &format!("{TARGETS}/search"),
            &s.admin,
            json!({"filters": [{"inTargetIdsFilter": {"targetIds": [id_a]}},
                               {"targetNameFilter": {"targetName": "nope"}}]}),
        )
        .await;
    assert_eq!(r.body, json!({"pagination": {"appliedLimit": "100"}}), "no match: totalResult 0 omitted");

    let r = s.post(&format!("{TARGETS}/search"), &s.admin, json!({"pagination": {"limit": 1001}})).await;
    assert_error(&r, 400, 3, "Errors.Query.LimitExceeded", "limit 1001");
    let r = s.post(&format!("{TARGETS}/search"), &s.admin, json!({"pagination": {"limit": 1000}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["pagination"]["appliedLimit"], "1000");
}

async fn create_target_validation(s: &TestServer) {
    let base = webhook("valid");
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let long_url = format!("https://example.com/{}", "a".repeat(2030));
    let cases: Vec<(&str, Value, &str)> = vec![
        ("no name", without("name"), "Errors.Target.Invalid"),
        ("empty name", with("name", json!("")), "Errors.Target.Invalid"),
        ("name over 1000", with("name", json!("n".repeat(1001))), "Errors.Target.Invalid"),
        ("no type", without("restWebhook"), "Errors.Target.Invalid"),
        ("two types", with("restCall", json!({})), "Errors.Target.Invalid"),
        ("type not a message", with("restWebhook", json!("x")), "Errors.Target.Invalid"),
        ("no timeout", without("timeout"), "Errors.Target.NoTimeout"),
        ("zero timeout", with("timeout", json!("0s")), "Errors.Target.NoTimeout"),
        ("negative timeout", with("timeout", json!("-1s")), "Errors.Target.NoTimeout"),
        ("timeout over 270s", with("timeout", json!("270.001s")), "Errors.Target.NoTimeout"),
        ("timeout past 2^63 ns", with("timeout", json!("99999999999s")), "Errors.Target.NoTimeout"),
        ("no endpoint", without("endpoint"), "Errors.Target.InvalidURL"),
        ("relative endpoint", with("endpoint", json!("/hook")), "Errors.Target.InvalidURL"),
        ("not a url", with("endpoint", json!("not a url")), "Errors.Target.InvalidURL"),
        ("ftp endpoint", with("endpoint", json!("ftp://example.com/x")), "Errors.Target.InvalidURL"),
        ("http without //", with("endpoint", json!("http:example.com/x")), "Errors.Target.InvalidURL"),
        ("https with one /", with("endpoint", json!("https:/example.com/x")), "Errors.Target.InvalidURL"),
        ("empty authority", with("endpoint", json!("http:///example.com/x")), "Errors.Target.InvalidURL"),
        ("tab", with("endpoint", json!("https://example.com/\tx")), "Errors.Target.InvalidURL"),
        ("newline", with("endpoint", json!("https://example.com/x\n")), "Errors.Target.InvalidURL"),
        ("leading space", with("endpoint", json!(" https://example.com/x")), "Errors.Target.InvalidURL"),
        ("ipv4-translated loopback", with("endpoint", json!("http://[::ffff:0:7f00:1]/x")), "Errors.Target.DeniedURL"),
        ("6to4 metadata", with("endpoint", json!("http://[2002:a9fe:a9fe::1]/x")), "Errors.Target.DeniedURL"),
        ("endpoint over 2048", with("endpoint", json!(long_url)), "Errors.Target.InvalidURL"),
        ("loopback", with("endpoint", json!("http://127.0.0.1:9000/x")), "Errors.Target.DeniedURL"),
        ("short loopback", with("endpoint", json!("http://127.1/x")), "Errors.Target.DeniedURL"),
        ("localhost", with("endpoint", json!("http://localhost/x")), "Errors.Target.DeniedURL"),
        ("sub.localhost", with("endpoint", json!("https://a.localhost/x")), "Errors.Target.DeniedURL"),
        ("private", with("endpoint", json!("http://10.1.2.3/x")), "Errors.Target.DeniedURL"),
        ("ipv6 loopback", with("endpoint", json!("http://[::1]/x")), "Errors.Target.DeniedURL"),
        ("metadata", with("endpoint", json!("http://169.254.169.254/latest")), "Errors.Target.DeniedURL"),
    ];
    for (what, body, key) in cases {
        let r = s.post(TARGETS, &s.admin, body).await;
        assert_error(&r, 400, 3, key, what);
    }
    // A name at the limit and an endpoint of exactly 2048 characters are fine; so is an unresolvable name.
    let url_2048 = format!("https://example.com/{}", "a".repeat(2048 - "https://example.com/".len()));
    create(s, with("name", json!("n".repeat(1000)))).await;
    // 1,000 characters of four bytes each (larger than a PostgreSQL btree entry), unique all the same.
    let wide: String = (0..1000u32).map(|i| char::from_u32(0x1F300 + (i * 7919) % 0x2FF).unwrap()).collect();
    create(s, with("name", json!(wide))).await;
    let r = s.post(TARGETS, &s.admin, with("name", json!(wide))).await;
    assert_error(&r, 409, 6, "Errors.Target.AlreadyExists", "the same wide name again");
    let mut b = with("endpoint", json!(url_2048));
    b["name"] = json!("long-url");
    create(s, b).await;
    let mut b = with("endpoint", json!("https://does-not-resolve.invalid/x"));
    b["name"] = json!("unresolved");
    create(s, b).await;
    // Wrong JSON types are 400 naming the field.
    let r = s.post(TARGETS, &s.admin, with("timeout", json!("1m"))).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("CreateTargetRequest.Timeout"), "{r:?}");
    let r = s.post(TARGETS, &s.admin, with("payloadType", json!("PAYLOAD_TYPE_XML"))).await;
    assert_eq!(r.status, 400, "{r:?}");
    // Malformed JSON is the same shape error, with its key.
    let r = s.call_raw(reqwest::Method::POST, TARGETS, Some(&s.admin), br#"{"name":"#.to_vec()).await;
    assert_error(&r, 400, 3, "Errors.Target.Invalid", "malformed JSON");
    let r = s.call_raw(reqwest::Method::PUT, EXECUTIONS, Some(&s.admin), br#"{"condition":"#.to_vec()).await;
    assert_error(&r, 400, 3, "Errors.Execution.Invalid", "malformed JSON");

    create(s, webhook("dup")).await;
    let r = s.post(TARGETS, &s.admin, webhook("dup")).await;
    assert_error(&r, 409, 6, "Errors.Target.AlreadyExists", "duplicate name");
}

async fn create_target_honours_allow_list(s: &TestServer) {
    // The default deny list applies; 10.0.0.0/8 is denied unless allowed (this server allows nothing).
    let mut b = webhook("private");
    b["endpoint"] = json!("http://10.9.9.9/x");
    let r = s.post(TARGETS, &s.admin, b).await;
    assert_error(&r, 400, 3, "Errors.Target.DeniedURL", "private");
}

async fn update_target_is_partial(s: &TestServer) {
    let (id, key) = create(s, webhook("upd")).await;
    create(s, webhook("other")).await;
    let before = get(s, &id).await;
    let events_before = event_count(s, "target", &id).await;
    assert_eq!(events_before, 1);

    // No-op: same values, nothing absent → stored changeDate, no event.
    let r = s.post(&target_path(&id), &s.admin, json!({"name": "upd", "timeout": "10s", "restWebhook": {}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["changeDate"], before["changeDate"], "{r:?}");
    assert!(r.body.get("signingKey").is_none(), "{r:?}");
    let r = s.post(&target_path(&id), &s.admin, json!({})).await;
    assert_eq!(r.body["changeDate"], before["changeDate"], "{r:?}");
    assert_eq!(event_count(s, "target", &id).await, 1, "a no-op writes no event");

    // Only the name changes.
    let r = s.post(&target_path(&id), &s.admin, json!({"name": "upd-2"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_ne!(r.body["changeDate"], before["changeDate"]);
    let after = get(s, &id).await;
    assert_eq!(after["name"], "upd-2");
    assert_eq!(after["changeDate"], r.body["changeDate"]);
    for field in ["restWebhook", "timeout", "endpoint", "signingKey", "payloadType", "creationDate"] {
        assert_eq!(after[field], before[field], "{field} unchanged");
    }
    assert_eq!(event_count(s, "target", &id).await, 2);

    // Another type replaces the stored one; the other fields are applied.
    let r = s
        .post(
            &target_path(&id),
            &s.admin,
            json!({"restCall": {"interruptOnError": true}, "timeout": "20s",
                   "endpoint": "https://other.example.com/", "payloadType": "PAYLOAD_TYPE_JWE"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let t = get(s, &id).await;
    assert_eq!(t["restCall"], json!({"interruptOnError": true}));
    assert!(t.get("restWebhook").is_none(), "{t}");
    assert_eq!(t["timeout"], "20s");
    assert_eq!(t["endpoint"], "https://other.example.com/");
    assert_eq!(t["payloadType"], "PAYLOAD_TYPE_JWE");

    // Present fields are validated even with zero values.
    let cases: Vec<(Value, u16, i64, &str)> = vec![
        (json!({"name": ""}), 400, 3, "Errors.Target.Invalid"),
        (json!({"name": "n".repeat(1001)}), 400, 3, "Errors.Target.Invalid"),
        (json!({"restWebhook": {}, "restAsync": {}}), 400, 3, "Errors.Target.Invalid"),
        (json!({"timeout": "0s"}), 400, 3, "Errors.Target.NoTimeout"),
        (json!({"timeout": "300s"}), 400, 3, "Errors.Target.NoTimeout"),
        (json!({"endpoint": ""}), 400, 3, "Errors.Target.InvalidURL"),
        (json!({"endpoint": "mailto:x@example.com"}), 400, 3, "Errors.Target.InvalidURL"),
        (json!({"endpoint": "http://192.168.1.1/"}), 400, 3, "Errors.Target.DeniedURL"),
        (json!({"name": "other"}), 409, 6, "Errors.Target.AlreadyExists"),
    ];
    for (body, status, code, key) in cases {
        let r = s.post(&target_path(&id), &s.admin, body.clone()).await;
        assert_error(&r, status, code, key, &body.to_string());
    }
    assert_eq!(get(s, &id).await["name"], "upd-2", "failed updates change nothing");

    // Rotation.
    let r = s.post(&target_path(&id), &s.admin, json!({"expirationSigningKey": "0s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let new_key = r.body["signingKey"].as_str().expect("new key").to_string();
    assert_eq!(new_key.len(), 36);
    assert_ne!(new_key, key);
    assert_eq!(get(s, &id).await["signingKey"], new_key.as_str());
    let r = s.post(&target_path(&id), &s.admin, json!({"expiration_signing_key": "3600s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["signingKey"].as_str().is_some_and(|k| k != new_key), "{r:?}");

    // Unknown ids.
    for missing in ["123456789", "not-an-id"] {
        let r = s.post(&target_path(missing), &s.admin, json!({"name": "x"})).await;
        assert_error(&r, 404, 5, "Errors.Target.NotFound", missing);
        let r = s.get(&target_path(missing), &s.admin).await;
        assert_error(&r, 404, 5, "Errors.Target.NotFound", missing);
    }
}

async fn executions_list(s: &TestServer, body: Value) -> Reply {
    let r = s.post(&format!("{EXECUTIONS}/search"), &s.admin, body).await;
    assert_eq!(r.status, 200, "{r:?}");
    r
}

async fn set_exec(s: &TestServer, condition: Value, targets: &[&str]) -> Reply {
    s.put(EXECUTIONS, &s.admin, json!({"condition": condition, "targets": targets})).await
}

async fn set_and_list_executions(s: &TestServer) {
    let (a, _) = create(s, webhook("ex-a")).await;
    let (b, _) = create(s, webhook("ex-b")).await;
    let conditions = vec![
        json!({"request": {"method": MGMT_CREATE}}),
        json!({"request": {"service": "zitadel.management.v1.ManagementService"}}),
        json!({"request": {"all": true}}),
        json!({"response": {"method": "/zitadel.admin.v1.AdminService/AddToken"}}),
        json!({"response": {"all": true}}),
        json!({"function": {"name": "preuserinfo"}}),
        json!({"event": {"event": "action.added"}}),
        json!({"event": {"group": "org.flow"}}),
        json!({"event": {"all": true}}),
    ];
    for c in &conditions {
        let r = set_exec(s, c.clone(), &[&b, &a]).await;
        assert_eq!(r.status, 200, "{c}: {r:?}");
        assert!(r.body["setDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{r:?}");
    }
    assert_eq!(event_count(s, "execution", &format!("request/{MGMT_CREATE}")).await, 1);
    assert_eq!(event_count(s, "execution", "event/org.flow.*").await, 1);
    // The instance owns its targets and executions (as in ZITADEL's events), whoever wrote them.
    let owners: Vec<String> = entity::event::Entity::find()
        .filter(entity::event::Column::AggregateType.is_in(["target", "execution"]))
        .all(&s.state.store.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.resource_owner)
        .collect();
    assert!(!owners.is_empty());
    let instance = &s.state.v2.instance_id;
    assert!(owners.iter().all(|o| o == instance), "{owners:?} vs {instance}");
    // The same list again changes nothing: no event, the stored date; another order is a change.
    let before = executions_list(s, json!({})).await;
    let stored =
        before.body["executions"].as_array().unwrap().iter().find(|e| e["condition"] == conditions[0]).unwrap()
            ["changeDate"]
            .clone();
    let r = set_exec(s, conditions[0].clone(), &[&b, &a]).await;
    assert_eq!(r.body["setDate"], stored, "{r:?}");
    assert_eq!(event_count(s, "execution", &format!("request/{MGMT_CREATE}")).await, 1, "a no-op writes no event");
    let r = set_exec(s, conditions[0].clone(), &[&a, &b]).await;
    assert_ne!(r.body["setDate"], stored, "{r:?}");
    assert_eq!(event_count(s, "execution", &format!("request/{MGMT_CREATE}")).await, 2);
    set_exec(s, conditions[0].clone(), &[&b, &a]).await;

    let r = executions_list(s, json!({"pagination": {"asc": true}})).await;
    assert_eq!(r.body["pagination"]["totalResult"], "9");
    let listed: Vec<Value> = r.body["executions"].as_array().unwrap().clone();
    // By creation date unless another column is asked for (ZITADEL's default), i.e. in the order
    // they were set; the same as asking for the creation date.
    let order: Vec<&Value> = listed.iter().map(|e| &e["condition"]).collect();
    assert_eq!(order, conditions.iter().collect::<Vec<_>>(), "{r:?}");
    let by_created =
        executions_list(s, json!({"pagination": {"asc": true}, "sortingColumn": "EXECUTION_FIELD_NAME_CREATED_DATE"}))
            .await;
    assert_eq!(by_created.body["executions"], r.body["executions"]);
    for c in &conditions {
        let e = listed.iter().find(|e| e["condition"] == *c).unwrap_or_else(|| panic!("{c} not listed: {r:?}"));
        assert_eq!(e["targets"], json!([b, a]), "{e}");
        assert!(e["creationDate"].is_string() && e["changeDate"].is_string(), "{e}");
    }

    // Filters.
    let r =
        executions_list(s, json!({"filters": [{"executionTypeFilter": {"executionType": "EXECUTION_TYPE_EVENT"}}]}))
            .await;
    assert_eq!(r.body["pagination"]["totalResult"], "3", "{r:?}");
    let r =
        executions_list(s, json!({"filters": [{"executionTypeFilter": {"executionType": "EXECUTION_TYPE_FUNCTION"}}]}))
            .await;
    assert_eq!(r.body["executions"][0]["condition"], json!({"function": {"name": "preuserinfo"}}));
    let r = executions_list(
        s,
        json!({"filters": [{"inConditionsFilter": {"conditions": [conditions[0], conditions[7], {"event": {"event": "org.added"}}]}}]}),
    )
    .await;
    assert_eq!(r.body["pagination"]["totalResult"], "2", "{r:?}");
    let r = executions_list(s, json!({"pagination": {"limit": 2}})).await;
    assert_eq!(r.body["pagination"], json!({"totalResult": "9", "appliedLimit": "2"}));
    assert_eq!(r.body["executions"].as_array().unwrap().len(), 2);

    // Replace, then clear.
    let r = set_exec(s, conditions[0].clone(), &[&a]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = executions_list(s, json!({"filters": [{"inConditionsFilter": {"conditions": [conditions[0]]}}]})).await;
    assert_eq!(r.body["executions"][0]["targets"], json!([a]));
    let r = set_exec(s, conditions[0].clone(), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = executions_list(s, json!({"filters": [{"inConditionsFilter": {"conditions": [conditions[0]]}}]})).await;
    assert_eq!(r.body, json!({"pagination": {"appliedLimit": "100"}}), "cleared: not listed");
    assert_eq!(
        event_count(s, "execution", &format!("request/{MGMT_CREATE}")).await,
        5,
        "set, reorder, back, replace, clear"
    );

    // DeleteTarget removes the target from every execution; an execution left empty disappears.
    let r = set_exec(s, json!({"function": {"name": "preaccesstoken"}}), &[&a]).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.delete(&target_path(&a), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["deletionDate"].as_str().is_some_and(|d| d.ends_with('Z')), "{r:?}");
    let r = executions_list(s, json!({})).await;
    assert_eq!(r.body["pagination"]["totalResult"], "8", "{r:?}");
    for e in r.body["executions"].as_array().unwrap() {
        assert_eq!(e["targets"], json!([b]), "{e}");
    }
    let r = executions_list(s, json!({"filters": [{"targetFilter": {"targetId": a}}]})).await;
    assert!(r.body.get("executions").is_none(), "{r:?}");
    let r = executions_list(s, json!({"filters": [{"targetFilter": {"targetId": b}}]})).await;
    assert_eq!(r.body["pagination"]["totalResult"], "8", "{r:?}");
    // Idempotent.
    let r = s.delete(&target_path(&a), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, json!({}));
    let r = s.get(&target_path(&a), &s.admin).await;
    assert_error(&r, 404, 5, "Errors.Target.NotFound", "deleted target");
    let r = s.delete(&target_path("nonsense"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn set_execution_validation(s: &TestServer) {
    let (t, _) = create(s, webhook("val")).await;
    let cases: Vec<(Value, u16, i64, &str)> = vec![
        (
            json!({"request": {"method": "/zitadel.management.v1.ManagementService/Nope"}}),
            404,
            5,
            "Errors.Execution.ConditionInvalid",
        ),
        (json!({"request": {"method": "CreateAction"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"response": {"service": "zitadel.nope.v1.NopeService"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"function": {"name": "prenothing"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"event": {"event": "user.added"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"event": {"group": "user"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"event": {"group": "act"}}), 404, 5, "Errors.Execution.ConditionInvalid"),
        (json!({"request": {"method": format!("/{SVC}/CreateTarget")}}), 400, 3, "Errors.Execution.ConditionInvalid"),
        (json!({"response": {"method": format!("/{SVC}/SetExecution")}}), 400, 3, "Errors.Execution.ConditionInvalid"),
        (json!({"request": {"service": SVC}}), 400, 3, "Errors.Execution.ConditionInvalid"),
        // The ConnectorService is never intercepted either.
        (
            json!({"response": {"service": "actionsd.connector.v1.ConnectorService"}}),
            400,
            3,
            "Errors.Execution.ConditionInvalid",
        ),
        (
            json!({"request": {"method": "/actionsd.connector.v1.ConnectorService/ListConnections"}}),
            400,
            3,
            "Errors.Execution.ConditionInvalid",
        ),
        (json!({"response": {"service": SVC}}), 400, 3, "Errors.Execution.ConditionInvalid"),
        (json!({}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"request": {}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"event": {}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"request": {"all": false}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"response": {"all": false}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"event": {"all": false}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"request": {"all": true}, "event": {"all": true}}), 400, 3, "Errors.Execution.Invalid"),
        // An empty name is the request's shape (ZITADEL's protos require 1..1000 characters).
        (json!({"request": {"method": ""}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"response": {"service": ""}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"function": {}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"event": {"group": ""}}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"event": {"event": ""}}), 400, 3, "Errors.Execution.Invalid"),
        // Not the message it must be: the same key.
        (json!({"request": "x"}), 400, 3, "Errors.Execution.Invalid"),
        (json!({"function": {"name": 5}}), 400, 3, "Errors.Execution.Invalid"),
        (
            json!({"request": {"all": true, "service": "zitadel.admin.v1.AdminService"}}),
            400,
            3,
            "Errors.Execution.Invalid",
        ),
    ];
    for (condition, status, code, key) in cases {
        let r = set_exec(s, condition.clone(), &[&t]).await;
        assert_error(&r, status, code, key, &condition.to_string());
    }
    let r = s.put(EXECUTIONS, &s.admin, json!({"targets": [t]})).await;
    assert_error(&r, 400, 3, "Errors.Execution.Invalid", "no condition");
    let r = set_exec(s, json!({"request": {"all": true}}), &[&t, "123456789"]).await;
    assert_error(&r, 404, 5, "Errors.Target.NotFound", "unknown target");
    let r = set_exec(s, json!({"request": {"all": true}}), &["garbage"]).await;
    assert_error(&r, 404, 5, "Errors.Target.NotFound", "malformed target id");
    let r = executions_list(s, json!({})).await;
    assert!(r.body.get("executions").is_none(), "nothing was set: {r:?}");
    let r = s.post(&format!("{EXECUTIONS}/search"), &s.admin, json!({"pagination": {"limit": 5000}})).await;
    assert_error(&r, 400, 3, "Errors.Query.LimitExceeded", "limit");
    // A clear of an execution that was never set is fine.
    let r = set_exec(s, json!({"event": {"group": "target.key"}}), &[]).await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn execution_metadata_lists(s: &TestServer) {
    let r = s.get(&format!("{EXECUTIONS}/functions"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut f: Vec<String> = serde_json::from_value(r.body["functions"].clone()).unwrap();
    f.sort();
    assert_eq!(f, ["preaccesstoken", "presamlresponse", "preuserinfo"]);
    let r = s.get(&format!("{EXECUTIONS}/methods"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let methods: Vec<String> = serde_json::from_value(r.body["methods"].clone()).unwrap();
    assert!(methods.contains(&MGMT_CREATE.to_string()), "{methods:?}");
    assert!(methods.contains(&"/zitadel.admin.v1.AdminService/AddToken".to_string()), "{methods:?}");
    assert!(!methods.iter().any(|m| m.contains("ActionService")), "{methods:?}");
    let r = s.get(&format!("{EXECUTIONS}/services"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let services: Vec<String> = serde_json::from_value(r.body["services"].clone()).unwrap();
    assert!(services.contains(&"zitadel.management.v1.ManagementService".to_string()), "{services:?}");
    assert!(services.contains(&"zitadel.admin.v1.AdminService".to_string()), "{services:?}");
    assert!(!services.contains(&SVC.to_string()), "{services:?}");
    // Every listed method and service is accepted as a condition.
    let (t, _) = create(s, webhook("meta")).await;
    for m in &methods {
        let r = set_exec(s, json!({"response": {"method": m}}), &[&t]).await;
        assert_eq!(r.status, 200, "{m}: {r:?}");
    }
    for svc in &services {
        let r = set_exec(s, json!({"request": {"service": svc}}), &[&t]).await;
        assert_eq!(r.status, 200, "{svc}: {r:?}");
    }
}

async fn only_iam_owner(s: &TestServer) {
    let (id, _) = create(s, webhook("perm")).await;
    let org = s.create_org("v2-perm").await;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, TARGETS.into(), Some(webhook("x"))),
        (Method::POST, target_path(&id), Some(json!({"name": "y"}))),
        (Method::DELETE, target_path(&id), None),
        (Method::GET, target_path(&id), None),
        (Method::POST, format!("{TARGETS}/search"), Some(json!({}))),
        (Method::PUT, EXECUTIONS.into(), Some(json!({"condition": {"request": {"all": true}}, "targets": [id]}))),
        (Method::POST, format!("{EXECUTIONS}/search"), Some(json!({}))),
        (Method::GET, format!("{EXECUTIONS}/functions"), None),
        (Method::GET, format!("{EXECUTIONS}/methods"), None),
        (Method::GET, format!("{EXECUTIONS}/services"), None),
    ];
    for role in ["ORG_OWNER", "ORG_VIEWER", "ORG_EXECUTOR"] {
        let token = s.create_token(&org, role).await;
        for (method, path, body) in &calls {
            let r = s.call(method.clone(), path, Some(&token), &[], body.clone()).await;
            assert_error(&r, 403, 7, "AUTH-5mWD2", &format!("{role} {method} {path}"));
        }
        let r = s.connect(&format!("{SVC}/CreateTarget"), &token, webhook("z")).await;
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.body["code"], "permission_denied", "{r:?}");
    }
    let r = s.call(Method::GET, &target_path(&id), None, &[], None).await;
    assert_eq!(r.status, 401, "{r:?}");
    // Nothing changed.
    assert_eq!(get(s, &id).await["name"], "perm");
    // An IAM_OWNER of another org may (v2 RPCs ignore x-zitadel-orgid).
    let other_admin = s.create_token(&org, "IAM_OWNER").await;
    let r = s.call_org(Method::GET, &target_path(&id), &other_admin, &org, None).await;
    assert_eq!(r.status, 200, "{r:?}");
}

async fn connect_transport(s: &TestServer) {
    let r = s.connect(&format!("{SVC}/CreateTarget"), &s.admin, webhook("connect")).await;
    assert_eq!(r.status, 200, "{r:?}");
    let id = r.body["id"].as_str().unwrap().to_string();
    let r = s.connect(&format!("{SVC}/GetTarget"), &s.admin, json!({"id": id})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["target"]["name"], "connect");
    let r = s.connect(&format!("{SVC}/UpdateTarget"), &s.admin, json!({"id": id, "timeout": "5s"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.connect(&format!("{SVC}/ListTargets"), &s.admin, json!({})).await;
    assert_eq!(r.body["pagination"]["totalResult"], "1", "{r:?}");
    assert_eq!(r.body["targets"][0]["timeout"], "5s");
    let r = s
        .connect(
            &format!("{SVC}/SetExecution"),
            &s.admin,
            json!({"condition": {"event": {"all": true}}, "targets": [id]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.connect(&format!("{SVC}/ListExecutions"), &s.admin, json!({})).await;
    assert_eq!(r.body["executions"][0]["condition"], json!({"event": {"all": true}}), "{r:?}");
    // A filter of no kind is a shape error of the request, keyed as its others are.
    for body in [json!({"filters": [{}]}), json!({"pagination": {"limit": "abc"}})] {
        let r = s.post("/v2/actions/executions/search", &s.admin, body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.body["details"][0]["id"].clone()),
            (400, json!("Errors.Execution.Invalid")),
            "{body}: {r:?}"
        );
    }
    let r = s.connect(&format!("{SVC}/ListExecutionFunctions"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.connect(&format!("{SVC}/CreateTarget"), &s.admin, webhook("connect")).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(r.body["code"], "already_exists", "{r:?}");
    assert!(r.body["message"].as_str().unwrap().contains("Errors.Target.AlreadyExists"), "{r:?}");
    let r = s.connect(&format!("{SVC}/GetTarget"), &s.admin, json!({"id": "1"})).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.body["code"], "not_found", "{r:?}");
    let r = s.connect(&format!("{SVC}/DeleteTarget"), &s.admin, json!({"id": id})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["deletionDate"].is_string(), "{r:?}");
}

/// ZITADEL's v2 request messages require their ids to hold 1..200 characters (`validate.rules`),
/// checked before anything is looked up: an empty or overlong id is 400 naming the field, never
/// "not found" or a silent success.
async fn ids_are_validated_as_zitadel_does(s: &TestServer) {
    let long = "9".repeat(201);
    let cases = [
        ("GetTarget", json!({}), "GetTargetRequest.Id"),
        ("GetTarget", json!({"id": long}), "GetTargetRequest.Id"),
        ("DeleteTarget", json!({"id": ""}), "DeleteTargetRequest.Id"),
        ("UpdateTarget", json!({"timeout": "5s"}), "UpdateTargetRequest.Id"),
        ("ListPublicKeys", json!({}), "ListPublicKeysRequest.TargetId"),
        ("AddPublicKey", json!({"publicKey": "eA=="}), "AddPublicKeyRequest.TargetId"),
        ("ActivatePublicKey", json!({"targetId": "1"}), "ActivatePublicKeyRequest.KeyId"),
        ("DeactivatePublicKey", json!({"keyId": "1"}), "DeactivatePublicKeyRequest.TargetId"),
        ("RemovePublicKey", json!({"targetId": "1", "keyId": long}), "RemovePublicKeyRequest.KeyId"),
        ("RetryDelivery", json!({}), "RetryDeliveryRequest.Id"),
    ];
    for (method, body, field) in cases {
        let r = s.connect(&format!("{SVC}/{method}"), &s.admin, body.clone()).await;
        assert_eq!((r.status.as_u16(), &r.body["code"]), (400, &json!("invalid_argument")), "{method} {body}: {r:?}");
        assert_eq!(
            r.body["message"],
            format!("invalid {field}: value length must be between 1 and 200 runes, inclusive"),
            "{method} {body}"
        );
    }
    // Over the gateway the path carries the id: an overlong one is refused the same way.
    let r = s.call(Method::GET, &target_path(&long), Some(&s.admin), &[], None).await;
    assert_eq!((r.status.as_u16(), &r.body["code"]), (400, &json!(3)), "{r:?}");
    // A well-formed id that names nothing is still not found (or, for a delete, nothing to do).
    let r = s.connect(&format!("{SVC}/GetTarget"), &s.admin, json!({"id": "1"})).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = s.connect(&format!("{SVC}/DeleteTarget"), &s.admin, json!({"id": "1"})).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &json!({})), "{r:?}");
}

async fn signing_key_encrypted_at_rest(s: &TestServer) {
    let (id, key) = create(s, webhook("secret")).await;
    let r = s.post(&target_path(&id), &s.admin, json!({"expirationSigningKey": "0s"})).await;
    let rotated = r.body["signingKey"].as_str().unwrap().to_string();
    let row = entity::target::Entity::find_by_id(id.parse::<i64>().unwrap())
        .one(&s.state.store.db)
        .await
        .unwrap()
        .expect("target row");
    assert_ne!(row.signing_key_enc, rotated);
    assert!(!row.signing_key_enc.contains(&rotated), "{}", row.signing_key_enc);
    assert!(!row.signing_key_enc.contains(&key), "{}", row.signing_key_enc);
    let events = entity::event::Entity::find()
        .filter(entity::event::Column::AggregateId.eq(id.clone()))
        .all(&s.state.store.db)
        .await
        .unwrap();
    assert_eq!(events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["target.added", "target.changed"]);
    for e in &events {
        assert_eq!(e.aggregate_type, "target");
        assert!(!e.payload.contains(&key) && !e.payload.contains(&rotated), "{}", e.payload);
        assert!(!e.payload.contains(&row.signing_key_enc), "{}", e.payload);
    }
    let r = s.delete(&target_path(&id), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(event_count(s, "target", &id).await, 3);
}

backend_tests!(
    ids_are_validated_as_zitadel_does,
    create_get_and_list_targets,
    create_target_validation,
    create_target_honours_allow_list,
    update_target_is_partial,
    set_and_list_executions,
    set_execution_validation,
    execution_metadata_lists,
    only_iam_owner,
    connect_transport,
    signing_key_encrypted_at_rest,
);

/// Change signals belong to one store: a target written through one server moves that server's
/// v2 generation only, even with two servers in one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_signals_are_per_store() {
    let a = TestServer::sqlite().await;
    let b = TestServer::sqlite().await;
    let (a0, b0) = (a.state.store.changes.v2_generation(), b.state.store.changes.v2_generation());
    let r = a.post("/v2/actions/targets", &a.admin, common::webhook_target("per-store")).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(a.state.store.changes.v2_generation() > a0, "the writing store saw its change");
    assert_eq!(b.state.store.changes.v2_generation(), b0, "the other store saw nothing");
    // An action (not a target or an execution) does not move the generation.
    let a1 = a.state.store.changes.v2_generation();
    a.create_action(&a.admin, "unrelated").await;
    assert_eq!(a.state.store.changes.v2_generation(), a1);
    a.stop().await;
    b.stop().await;
}
