//! Case-insensitive names use the whole Unicode simple case folding (README, "Decisions"), on
//! both backends: the foldings plain lowercasing misses clash, match case-insensitive queries, and
//! names stored before the full table are re-folded by migration m20261202_000007 with existing data.

use crate::common::{assert_error, TestServer};
use migration::m20261202_000007_refold_names as refold;
use migration::{MigrationTrait, SchemaManager};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

const ACTIONS: &str = "/management/v1/actions";

async fn create(s: &TestServer, name: &str) -> crate::common::Reply {
    s.post(ACTIONS, &s.admin, json!({"name": name, "script": "function a() {}"})).await
}

async fn names_equal_ignore_case(s: &TestServer, name: &str) -> Vec<String> {
    let r = s
        .post(
            "/management/v1/actions/_search",
            &s.admin,
            json!({"queries": [{"actionNameQuery": {"name": name, "method": "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE"}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.body["result"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

async fn foldings_lowercasing_misses_clash(s: &TestServer) {
    // U+00B5 MICRO SIGN folds to U+03BC GREEK SMALL LETTER MU (and so does U+039C capital MU).
    let r = create(s, "\u{B5}-meter").await;
    assert_eq!(r.status, 200, "{r:?}");
    for clash in ["\u{3BC}-meter", "\u{39C}-METER"] {
        assert_error(&create(s, clash).await, 409, 6, "V3-DKcYh", clash);
    }
    assert_eq!(names_equal_ignore_case(s, "\u{39C}-Meter").await, ["\u{B5}-meter"]);
    // U+1C80 CYRILLIC SMALL LETTER ROUNDED VE folds to в (U+0432); U+1FBE to ι (U+03B9).
    assert_eq!(create(s, "\u{1C80}-x").await.status, 200);
    assert_error(&create(s, "В-x").await, 409, 6, "V3-DKcYh", "capital VE");
    assert_eq!(create(s, "\u{1FBE}-y").await.status, 200);
    assert_error(&create(s, "Ι-y").await, 409, 6, "V3-DKcYh", "capital IOTA");
    // Full (one-to-many) foldings stay out: ß and SS remain different names.
    assert_eq!(create(s, "maß").await.status, 200);
    assert_eq!(create(s, "MASS").await.status, 200);
}

/// Names stored with the old, incomplete folding get the full one; a name whose new folded copy
/// is taken keeps its old one, and both stay usable.
async fn the_migration_refolds_existing_names(s: &TestServer) {
    assert_eq!(create(s, "\u{B5}-old").await.status, 200);
    assert_eq!(create(s, "\u{B5}-pair").await.status, 200);
    let db = &s.state.store.db;
    let backend = db.get_database_backend();
    let set_folded = |name: &str, folded: &str| {
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => "UPDATE actions SET name_folded = $1 WHERE name = $2",
            _ => "UPDATE actions SET name_folded = ? WHERE name = ?",
        };
        Statement::from_sql_and_values(backend, sql, [folded.into(), name.into()])
    };
    // What the old folding stored (it left U+00B5 as it was).
    db.execute(set_folded("\u{B5}-old", "\u{B5}-old")).await.unwrap();
    db.execute(set_folded("\u{B5}-pair", "\u{B5}-pair")).await.unwrap();
    // Under the old folding this second name was a different one; now both fold alike.
    assert_eq!(create(s, "\u{3BC}-pair").await.status, 200, "no clash with the stale copy");

    refold::Migration.up(&SchemaManager::new(db)).await.expect("the refold migration runs");

    let folded_of = |name: &'static str| async move {
        let sql = match backend {
            sea_orm::DatabaseBackend::Postgres => "SELECT name_folded FROM actions WHERE name = $1",
            _ => "SELECT name_folded FROM actions WHERE name = ?",
        };
        let row = db.query_one(Statement::from_sql_and_values(backend, sql, [name.into()])).await.unwrap().unwrap();
        row.try_get::<String>("", "name_folded").unwrap()
    };
    assert_eq!(folded_of("\u{B5}-old").await, "\u{3BC}-old", "re-folded");
    assert_eq!(folded_of("\u{3BC}-pair").await, "\u{3BC}-pair");
    assert_eq!(folded_of("\u{B5}-pair").await, "\u{B5}-pair", "kept: its new copy is taken");
    // After the migration the re-folded name clashes as it should, and every name still reads.
    assert_error(&create(s, "\u{39C}-OLD").await, 409, 6, "V3-DKcYh", "re-folded name");
    let all = s.post("/management/v1/actions/_search", &s.admin, json!({})).await;
    let names: Vec<&str> = all.body["result"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    for name in ["\u{B5}-old", "\u{B5}-pair", "\u{3BC}-pair"] {
        assert!(names.contains(&name), "{name} is still listed: {names:?}");
    }
}

backend_tests!(foldings_lowercasing_misses_clash, the_migration_refolds_existing_names);
