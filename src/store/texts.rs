//! SQL text for the hot statements, without sea-query's rendering on every call.
//!
//! sea-query renders a twelve-column `SELECT` in about 64k instructions and a one-row `INSERT` in
//! about 28k (quoting every name, checking every column for an enum cast, formatting): a third of
//! a whole GetAction served over HTTP/1.1, and a third of a CreateAction's CPU in SQLite's single
//! committer (bench/RESULTS.md, fifteenth session). The text of such a read never changes, only
//! its values: the first call renders it and later calls send the kept text ([`Texts`]). A
//! one-row insert's text is written here directly ([`insert`]), checked against sea-query's by
//! the tests.

use crate::error::ApiResult;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ConnectionTrait, DatabaseBackend, DbErr, EntityName, EntityTrait, FromQueryResult,
    Iterable, QueryTrait, Select, Statement, Value,
};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, RwLock};

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
            columns.push('"');
            columns.push_str(sea_orm::IdenStatic::as_str(&column));
            columns.push('"');
            match backend {
                DatabaseBackend::Postgres => {
                    let _ = write!(marks, "${}", values.len());
                }
                _ => marks.push('?'),
            }
        }
    }
    let table = <A::Entity as Default>::default().table_name().to_string();
    Statement::from_sql_and_values(backend, format!("INSERT INTO \"{table}\" ({columns}) VALUES ({marks})"), values)
}

/// Inserts the row `model` sets (see [`insert_statement`]).
pub async fn insert<A: ActiveModelTrait, C: ConnectionTrait>(conn: &C, model: &A) -> Result<(), DbErr> {
    conn.execute(insert_statement(conn.get_database_backend(), model)).await.map(|_| ())
}

/// Rendered statement texts by name (one per read shape).
#[derive(Default)]
pub struct Texts(RwLock<HashMap<&'static str, Arc<str>>>);

impl Texts {
    /// The first row of the select `build` makes, whose conditions bind exactly `values` in this
    /// order; the text rendered for `name` is used when there is one. A rendering that binds other
    /// values (or these in another order) is run but not kept: its text would put the next
    /// caller's values in the wrong places.
    pub async fn one<E, C, const N: usize>(
        &self,
        conn: &C,
        name: &'static str,
        values: [Value; N],
        build: impl FnOnce() -> Select<E>,
    ) -> ApiResult<Option<E::Model>>
    where
        E: EntityTrait,
        C: ConnectionTrait,
    {
        let backend = conn.get_database_backend();
        let statement = match self.kept(name) {
            Some(sql) => Statement::from_sql_and_values(backend, sql.as_ref(), values),
            None => self.render(backend, name, &values, build()),
        };
        Ok(<E::Model as FromQueryResult>::find_by_statement(statement).one(conn).await?)
    }

    fn kept(&self, name: &'static str) -> Option<Arc<str>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    fn render<E: EntityTrait>(
        &self,
        backend: DatabaseBackend,
        name: &'static str,
        values: &[Value],
        select: Select<E>,
    ) -> Statement {
        let statement = select.build(backend);
        let bound = statement.values.as_ref().map_or(&[][..], |v| v.0.as_slice());
        if bound == values {
            self.0.write().unwrap_or_else(|e| e.into_inner()).insert(name, Arc::from(statement.sql.as_str()));
        }
        statement
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::action;
    use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, Set};

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

    async fn by_id(texts: &Texts, db: &sea_orm::DatabaseConnection, org: i64, id: i64) -> Option<i64> {
        let select = || action::Entity::find_by_id(id).filter(action::Column::OrgId.eq(org));
        texts.one(db, "by_id", [id.into(), org.into()], select).await.unwrap().map(|a| a.id)
    }

    #[tokio::test]
    async fn a_kept_text_reads_with_each_callers_values() {
        let (db, path) = database().await;
        let texts = Texts::default();
        assert_eq!(by_id(&texts, &db, 1, 11).await, Some(11));
        assert_eq!(texts.len(), 1);
        // The kept text, with other values: the other org's row, and no row across orgs.
        assert_eq!(by_id(&texts, &db, 2, 22).await, Some(22));
        assert_eq!(by_id(&texts, &db, 2, 11).await, None);
        assert_eq!(by_id(&texts, &db, 1, 22).await, None);
        assert_eq!(texts.len(), 1);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn values_named_in_another_order_than_bound_are_not_kept() {
        let (db, path) = database().await;
        let texts = Texts::default();
        let (org, id) = (1i64, 11i64);
        let select = || action::Entity::find_by_id(id).filter(action::Column::OrgId.eq(org));
        let found = texts.one(&db, "swapped", [org.into(), id.into()], select).await.unwrap();
        assert_eq!(found.map(|a| a.id), Some(11), "the rendering itself is run with its own values");
        assert_eq!(texts.len(), 0, "a text whose values were named in another order must not be kept");
        let _ = std::fs::remove_file(path);
    }
}
