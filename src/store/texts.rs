//! SQL text for the hot statements, written here instead of rendered by sea-query.
//!
//! sea-query renders a twelve-column `SELECT` in about 64k instructions and a one-row `INSERT` in
//! about 28k (quoting every name, checking every column for an enum cast, formatting): a third of
//! a whole GetAction served over HTTP/1.1, and a third of a CreateAction's CPU in SQLite's single
//! committer (bench/RESULTS.md, fifteenth session). The statements here are written from the
//! entity's columns in a few hundred instructions, exactly as sea-query writes them: the tests
//! compare both renderings (SQL and values) on both backends for every entity they are used with.

use crate::error::ApiResult;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DatabaseBackend, DbErr, EntityName, EntityTrait, FromQueryResult,
    Iterable, ModelTrait, PrimaryKeyToColumn, Statement, Value,
};
use std::fmt::Write;

/// `INSERT INTO "table" ("col", …) VALUES (?, …)` of the columns `model` sets, in the entity's
/// column order, as sea-query writes it (`$n` placeholders on PostgreSQL).
pub fn insert_statement<A: ActiveModelTrait>(backend: DatabaseBackend, model: &A) -> Statement {
    let mut columns = String::new();
    let mut marks = String::new();
    let mut values = Vec::new();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = model.get(column) {
            if !values.is_empty() {
                columns.push_str(", ");
                marks.push_str(", ");
            }
            values.push(value);
            for piece in ["\"", sea_orm::IdenStatic::as_str(&column), "\""] {
                columns.push_str(piece);
            }
            push_mark(&mut marks, backend, values.len());
        }
    }
    let entity = <A::Entity as Default>::default();
    let table = entity.table_name();
    let mut sql = String::with_capacity(columns.len() + marks.len() + table.len() + 32);
    for piece in ["INSERT INTO \"", table, "\" (", &columns, ") VALUES (", &marks, ")"] {
        sql.push_str(piece);
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// `INSERT INTO "table" ("col", …) VALUES (?, …), (?, …), …`: whole models, every column in the
/// entity's order, as sea-query writes `E::insert_many` of them. `None` for no rows.
pub fn insert_rows_statement<M: ModelTrait>(backend: DatabaseBackend, rows: &[M]) -> Option<Statement> {
    let entity = <M::Entity as Default>::default();
    let mut sql = String::with_capacity(1024);
    for piece in ["INSERT INTO \"", entity.table_name(), "\" ("] {
        sql.push_str(piece);
    }
    for (n, column) in <M::Entity as EntityTrait>::Column::iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        for piece in ["\"", sea_orm::IdenStatic::as_str(&column), "\""] {
            sql.push_str(piece);
        }
    }
    sql.push_str(") VALUES ");
    let mut values = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for (n, column) in <M::Entity as EntityTrait>::Column::iter().enumerate() {
            if n > 0 {
                sql.push_str(", ");
            }
            values.push(row.get(column));
            push_mark(&mut sql, backend, values.len());
        }
        sql.push(')');
    }
    (!values.is_empty()).then(|| Statement::from_sql_and_values(backend, sql, values))
}

/// Inserts whole models in one statement (see [`insert_rows_statement`]).
pub async fn insert_rows<M: ModelTrait, C: ConnectionTrait>(conn: &C, rows: &[M]) -> Result<(), DbErr> {
    match insert_rows_statement(conn.get_database_backend(), rows) {
        Some(statement) => conn.execute(statement).await.map(|_| ()),
        None => Ok(()),
    }
}

/// Inserts the row `model` sets (see [`insert_statement`]).
pub async fn insert<A: ActiveModelTrait, C: ConnectionTrait>(conn: &C, model: &A) -> Result<(), DbErr> {
    conn.execute(insert_statement(conn.get_database_backend(), model)).await.map(|_| ())
}

/// `SELECT "t"."c1", … FROM "t" WHERE "t"."k1" = ? AND …`: every column of `E`, as sea-query
/// renders `E::find().filter(k1.eq(v1))…` (without `.one()`'s `LIMIT`).
pub fn select_statement<E: EntityTrait>(backend: DatabaseBackend, filters: Vec<(E::Column, Value)>) -> Statement {
    let entity = E::default();
    let table = entity.table_name();
    let mut sql = String::with_capacity(512);
    sql.push_str("SELECT ");
    for (n, column) in E::Column::iter().enumerate() {
        if n > 0 {
            sql.push_str(", ");
        }
        push_column(&mut sql, table, sea_orm::IdenStatic::as_str(&column));
    }
    for piece in [" FROM \"", table, "\""] {
        sql.push_str(piece);
    }
    let mut values = Vec::with_capacity(filters.len());
    for (column, value) in filters {
        sql.push_str(if values.is_empty() { " WHERE " } else { " AND " });
        push_column(&mut sql, table, sea_orm::IdenStatic::as_str(&column));
        sql.push_str(" = ");
        values.push(value);
        push_mark(&mut sql, backend, values.len());
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// The first row of [`select_statement`].
pub async fn select_one<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    filters: Vec<(E::Column, Value)>,
) -> ApiResult<Option<E::Model>> {
    let statement = select_statement::<E>(conn.get_database_backend(), filters);
    Ok(<E::Model as FromQueryResult>::find_by_statement(statement).one(conn).await?)
}

/// `UPDATE "t" SET "c" = ?, … WHERE "t"."k" = ?`: the columns `model` sets, the row by its primary
/// key, as sea-query renders `E::update(model)`.
pub fn update_statement<A: ActiveModelTrait>(backend: DatabaseBackend, model: &A) -> Statement {
    let table = <A::Entity as Default>::default().table_name().to_string();
    let mut sql = format!("UPDATE \"{table}\" SET ");
    let mut values = Vec::new();
    let keys: Vec<_> = <A::Entity as EntityTrait>::PrimaryKey::iter().map(|k| k.into_column()).collect();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        let name = sea_orm::IdenStatic::as_str(&column);
        if keys.iter().any(|k| sea_orm::IdenStatic::as_str(k) == name) {
            continue;
        }
        if let ActiveValue::Set(value) = model.get(column) {
            if !values.is_empty() {
                sql.push_str(", ");
            }
            for piece in ["\"", name, "\" = "] {
                sql.push_str(piece);
            }
            values.push(value);
            push_mark(&mut sql, backend, values.len());
        }
    }
    for (n, key) in keys.into_iter().enumerate() {
        sql.push_str(if n == 0 { " WHERE " } else { " AND " });
        push_column(&mut sql, &table, sea_orm::IdenStatic::as_str(&key));
        sql.push_str(" = ");
        values.push(model.get(key).into_value().unwrap_or(Value::BigInt(None)));
        push_mark(&mut sql, backend, values.len());
    }
    Statement::from_sql_and_values(backend, sql, values)
}

/// Updates the columns `model` sets in the row of its primary key (see [`update_statement`]).
pub async fn update<A: ActiveModelTrait, C: ConnectionTrait>(conn: &C, model: &A) -> Result<(), DbErr> {
    conn.execute(update_statement(conn.get_database_backend(), model)).await.map(|_| ())
}

// Pieces pushed one by one: `write!` goes through `core::fmt`, which cost more than the rest of
// a statement's text.
fn push_column(sql: &mut String, table: &str, column: &str) {
    for piece in ["\"", table, "\".\"", column, "\""] {
        sql.push_str(piece);
    }
}

fn push_mark(sql: &mut String, backend: DatabaseBackend, n: usize) {
    match backend {
        DatabaseBackend::Postgres => {
            sql.push('$');
            let _ = write!(sql, "{n}");
        }
        _ => sql.push('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::action;
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, QueryTrait, Set};

    async fn database() -> (sea_orm::DatabaseConnection, std::path::PathBuf) {
        use migration::MigratorTrait;
        let path = std::env::temp_dir().join(format!("actionsd-texts-{}.db", uuid::Uuid::new_v4()));
        let db = sea_orm::Database::connect(format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        migration::Migrator::up(&db, None).await.unwrap();
        for (id, org) in [(11, 1), (22, 2)] {
            entity::org::ActiveModel {
                id: Set(org),
                name: Set(format!("o{org}")),
                name_folded: Set(format!("o{org}")),
                is_default: Set(false),
                sequence: Set(1),
                created_at: Set(0),
                changed_at: Set(0),
            }
            .insert(&db)
            .await
            .unwrap();
            action::ActiveModel {
                id: Set(id),
                org_id: Set(org),
                name: Set(format!("a{id}")),
                name_folded: Set(format!("a{id}")),
                script: Set(String::new()),
                timeout_nanos: Set(0),
                allowed_to_fail: Set(false),
                state: Set(entity::enums::ActionState::Active),
                sequence: Set(1),
                created_at: Set(0),
                changed_at: Set(0),
                version: Set(1),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        (db, path)
    }

    /// The insert written here is the one sea-query renders, on both backends, for every entity
    /// it is used with (all columns set, and an auto-increment key left out).
    #[test]
    fn inserts_are_written_as_sea_query_renders_them() {
        fn same<A: ActiveModelTrait>(model: A) {
            for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres] {
                let ours = insert_statement(backend, &model);
                let theirs = <A::Entity as EntityTrait>::insert(model.clone()).build(backend);
                assert_eq!((&ours.sql, &ours.values), (&theirs.sql, &theirs.values), "{backend:?}");
            }
        }
        same(entity::event::ActiveModel {
            aggregate_type: Set("action".into()),
            aggregate_id: Set("7".into()),
            sequence: Set(3),
            event_type: Set("action.added".into()),
            resource_owner: Set("1".into()),
            creator: Set("2".into()),
            created_at: Set(9),
            payload: Set("{}".into()),
            ..Default::default()
        });
        same(action::ActiveModel {
            id: Set(11),
            org_id: Set(1),
            name: Set("a".into()),
            name_folded: Set("a".into()),
            script: Set("s".into()),
            timeout_nanos: Set(5),
            allowed_to_fail: Set(true),
            state: Set(entity::enums::ActionState::Inactive),
            sequence: Set(2),
            created_at: Set(3),
            changed_at: Set(4),
            version: Set(1),
        });
        same(entity::action_version::ActiveModel {
            action_id: Set(11),
            version: Set(2),
            org_id: Set(1),
            name: Set("a".into()),
            script: Set("s".into()),
            timeout_nanos: Set(0),
            allowed_to_fail: Set(false),
            sequence: Set(4),
            created_at: Set(5),
        });
    }

    /// Whole models in one insert are written as sea-query renders `insert_many` of them (run
    /// records with and without their optional columns, recorded contexts), on both backends.
    #[test]
    fn row_inserts_are_written_as_sea_query_renders_them() {
        fn same<M>(rows: Vec<M>)
        where
            M: ModelTrait + Clone,
            <M::Entity as EntityTrait>::ActiveModel: From<M>,
        {
            for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres] {
                let ours = insert_rows_statement(backend, &rows).unwrap();
                let theirs = <M::Entity as EntityTrait>::insert_many(
                    rows.iter().cloned().map(<M::Entity as EntityTrait>::ActiveModel::from),
                )
                .build(backend);
                assert_eq!((&ours.sql, &ours.values), (&theirs.sql, &theirs.values), "{backend:?}");
            }
        }
        let run = |id: i64, extra: bool| entity::run::Model {
            id,
            run_id: id / 2,
            org_id: 1,
            action_id: 11,
            action_name: format!("a{id}"),
            flow_type: 2,
            trigger_type: 4,
            outcome: entity::enums::Outcome::Failed,
            allowed_to_fail: extra,
            error: "boom 'quoted' \"and\" ?".into(),
            started_at: -5,
            duration_nanos: i64::MAX,
            logs: "[]".into(),
            http_calls: 3,
            log_records: 1,
            log_bytes: 7,
            connection_id: extra.then_some(9),
            condition: extra.then(|| "function/preuserinfo".into()),
            warnings: None,
            action_version: extra.then_some(4),
        };
        same(vec![run(1, false)]);
        same(vec![run(1, true), run(2, false), run(3, true)]);
        let context = |run_id: i64| entity::recorded_context::Model {
            run_id,
            org_id: 1,
            flow_type: 2,
            trigger_type: 4,
            context: "{\"a\":1}".into(),
            created_at: run_id * 10,
        };
        same(vec![context(1), context(2)]);
        assert!(insert_rows_statement::<entity::run::Model>(DatabaseBackend::Sqlite, &[]).is_none());
    }

    /// A select written here is the one sea-query renders for the same filters.
    #[test]
    fn selects_are_written_as_sea_query_renders_them() {
        for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres] {
            let ours = select_statement::<action::Entity>(
                backend,
                vec![(action::Column::Id, 11i64.into()), (action::Column::OrgId, 1i64.into())],
            );
            let theirs = action::Entity::find_by_id(11).filter(action::Column::OrgId.eq(1i64)).build(backend);
            assert_eq!((&ours.sql, &ours.values), (&theirs.sql, &theirs.values), "{backend:?}");
            for (ours, theirs) in [
                (
                    select_statement::<entity::target::Entity>(
                        backend,
                        vec![(entity::target::Column::Id, 5i64.into())],
                    ),
                    entity::target::Entity::find_by_id(5).build(backend),
                ),
                (
                    select_statement::<entity::org::Entity>(backend, vec![(entity::org::Column::Id, 5i64.into())]),
                    entity::org::Entity::find_by_id(5).build(backend),
                ),
            ] {
                assert_eq!((&ours.sql, &ours.values), (&theirs.sql, &theirs.values), "{backend:?}");
            }
        }
    }

    /// An update written here is the one sea-query renders for the same active model: the set
    /// columns, the row by its primary key.
    #[test]
    fn updates_are_written_as_sea_query_renders_them() {
        let current = action::Model {
            id: 11,
            org_id: 1,
            name: "a".into(),
            name_folded: "a".into(),
            script: "s".into(),
            timeout_nanos: 0,
            allowed_to_fail: false,
            state: entity::enums::ActionState::Active,
            sequence: 1,
            created_at: 2,
            changed_at: 2,
            version: 1,
        };
        let mut model: action::ActiveModel = current.into();
        model.name = Set("b".into());
        model.state = Set(entity::enums::ActionState::Inactive);
        model.sequence = Set(2);
        model.version = Set(2);
        for backend in [DatabaseBackend::Sqlite, DatabaseBackend::Postgres] {
            let ours = update_statement(backend, &model);
            let theirs = action::Entity::update(model.clone()).build(backend);
            assert_eq!((&ours.sql, &ours.values), (&theirs.sql, &theirs.values), "{backend:?}");
        }
    }

    async fn by_id(db: &sea_orm::DatabaseConnection, org: i64, id: i64) -> Option<i64> {
        let filters = vec![(action::Column::Id, id.into()), (action::Column::OrgId, org.into())];
        select_one::<action::Entity, _>(db, filters).await.unwrap().map(|a| a.id)
    }

    #[tokio::test]
    async fn written_statements_read_and_write_the_right_rows() {
        let (db, path) = database().await;
        assert_eq!(by_id(&db, 1, 11).await, Some(11));
        assert_eq!(by_id(&db, 2, 22).await, Some(22));
        assert_eq!(by_id(&db, 2, 11).await, None, "no row across orgs");
        assert_eq!(by_id(&db, 1, 22).await, None, "no row across orgs");
        let found = select_one::<action::Entity, _>(&db, vec![(action::Column::Id, 11i64.into())]).await.unwrap();
        let mut model: action::ActiveModel = found.expect("the action").into();
        model.name = Set("renamed".into());
        update(&db, &model).await.unwrap();
        let read = |id: i64| action::Entity::find_by_id(id).one(&db);
        assert_eq!(read(11).await.unwrap().map(|a| a.name), Some("renamed".into()));
        assert_eq!(read(22).await.unwrap().map(|a| a.name), Some("a22".into()), "the other row unchanged");
        let _ = std::fs::remove_file(path);
    }
}
