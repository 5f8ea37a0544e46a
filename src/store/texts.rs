//! The SQL text of hot reads, rendered once per store.
//!
//! sea-query renders a twelve-column `SELECT` in about 64k instructions (quoting every name,
//! checking every column for an enum cast, formatting): a third of a whole GetAction served over
//! HTTP/1.1 (bench/RESULTS.md, sixteenth session). The text of such a read never changes, only its
//! values, so the first call renders it and later calls send the kept text with their own values.

use crate::error::ApiResult;
use sea_orm::{ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, QueryTrait, Select, Statement, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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
