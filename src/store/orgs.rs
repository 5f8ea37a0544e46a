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

/// What ListOrgs' queries ask for (all ANDed).
#[derive(Debug, Clone)]
pub enum OrgFilter {
    Id(i64),
    Name(String, super::actions::TextMethod),
    /// A query no organization can match (an id that is none, a state or domain none has).
    Nothing,
}

/// A page of organizations matching every filter, by id or (`by_name`) by name, with the number of
/// matches, read in one snapshot.
pub async fn list_orgs(
    store: &Store,
    filters: &[OrgFilter],
    by_name: bool,
    offset: u64,
    limit: u64,
    asc: bool,
) -> ApiResult<(u64, Vec<org::Model>)> {
    use sea_orm::sea_query::Expr;
    let mut matching = sea_orm::Condition::all();
    for filter in filters {
        matching = match filter {
            OrgFilter::Id(id) => matching.add(org::Column::Id.eq(*id)),
            OrgFilter::Name(name, method) => match super::actions::name_condition(store.backend, name, *method) {
                Some(condition) => matching.add(condition),
                None => matching,
            },
            OrgFilter::Nothing => matching.add(Expr::val(1).eq(0)),
        };
    }
    let snapshot = store.read_snapshot().await?;
    let total = org::Entity::find().filter(matching.clone()).count(&snapshot).await?;
    let order = if asc { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    let mut rows = org::Entity::find().filter(matching);
    if by_name {
        // Bytewise on both backends, as ListActions sorts names.
        let pg = store.backend == sea_orm::DatabaseBackend::Postgres;
        rows = rows.order_by(Expr::cust(if pg { "\"name\" COLLATE \"C\"" } else { "\"name\"" }), order.clone());
    }
    let rows = rows
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
