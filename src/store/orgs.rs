//! Organizations, the instance settings and the bootstrap at first start.

use super::events::{self, NewEvent};
use super::{unique_or_internal, Store, INSTANCE_LOCK};
use crate::domain::fold::fold;
use crate::error::{ApiError, ApiResult, Kind};
use entity::{org, setting};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

pub const DEFAULT_ORG_NAME: &str = "DEFAULT";

pub async fn get_setting<C: ConnectionTrait>(conn: &C, key: &str) -> ApiResult<Option<String>> {
    Ok(setting::Entity::find_by_id(key.to_string()).one(conn).await?.map(|s| s.value))
}

pub async fn put_setting<C: ConnectionTrait>(conn: &C, key: &str, value: &str) -> ApiResult<()> {
    setting::Entity::insert(setting::ActiveModel { key: Set(key.to_string()), value: Set(value.to_string()) })
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(setting::Column::Key)
                .update_column(setting::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Inserts an org and its `org.added` event. Caller holds the instance lock.
pub async fn insert_org(
    id: i64,
    txn: &DatabaseTransaction,
    name: &str,
    creator: i64,
    is_default: bool,
) -> ApiResult<org::Model> {
    let folded = fold(name);
    let exists = org::Entity::find().filter(org::Column::NameFolded.eq(folded.clone())).count(txn).await?;
    if exists > 0 {
        return Err(org_exists());
    }
    let written = events::append(
        txn,
        NewEvent {
            aggregate_type: crate::store::events::Aggregate::Org,
            aggregate_id: id.to_string(),
            event_type: "org.added",
            resource_owner: id,
            creator,
            payload: serde_json::json!({"name": name}),
        },
    )
    .await?;
    let model = org::Model {
        id,
        name: name.to_string(),
        name_folded: folded,
        is_default,
        sequence: written.sequence,
        created_at: written.created_at,
        changed_at: written.created_at,
    };
    org::Entity::insert(org::ActiveModel::from(model.clone()))
        .exec_without_returning(txn)
        .await
        .map_err(|e| unique_or_internal(e, org_exists()))?;
    Ok(model)
}

fn org_exists() -> ApiError {
    ApiError::new(Kind::AlreadyExists, "ORG-lapo2m", "Organisation already exists")
}

pub async fn add_org(store: &Store, name: String, creator: i64) -> ApiResult<org::Model> {
    let id = store.new_id();
    store
        .write(&[INSTANCE_LOCK.to_string()], move |txn| {
            Box::pin(async move { insert_org(id, txn, &name, creator, false).await })
        })
        .await
}

pub async fn get_org<C: ConnectionTrait>(conn: &C, id: i64) -> ApiResult<Option<org::Model>> {
    super::texts::select_one::<org::Entity, _>(conn, vec![(org::Column::Id, id.into())]).await
}

pub async fn default_org<C: ConnectionTrait>(conn: &C) -> ApiResult<Option<org::Model>> {
    Ok(org::Entity::find().filter(org::Column::IsDefault.eq(true)).one(conn).await?)
}

pub async fn list_orgs(store: &Store, offset: u64, limit: u64, asc: bool) -> ApiResult<(u64, Vec<org::Model>)> {
    let snapshot = store.read_snapshot().await?;
    let total = org::Entity::find().count(&snapshot).await?;
    let order = if asc { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    let rows = org::Entity::find()
        .order_by(org::Column::Id, order)
        .offset(super::sql_count(offset))
        .limit(super::sql_count(limit))
        .all(&snapshot)
        .await?;
    snapshot.commit().await?;
    Ok((total, rows))
}

pub async fn all_org_ids<C: ConnectionTrait>(conn: &C) -> ApiResult<Vec<i64>> {
    Ok(org::Entity::find().select_only().column(org::Column::Id).into_tuple().all(conn).await?)
}
