//! Action settings (recording of contexts, retention) and the recorded contexts of `_execute` and
//! connector calls, for replaying a draft against real traffic.

use super::events::{self, Aggregate, NewEvent, Written};
use super::{org_lock, Store};
use crate::error::ApiResult;
use entity::{action_setting, recorded_context};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

/// How long recorded contexts are kept unless an organization says otherwise.
pub const DEFAULT_RETENTION_SECS: i64 = 86_400;

/// An organization's settings (defaults when it never set them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub record_contexts: bool,
    pub retention_secs: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { record_contexts: false, retention_secs: DEFAULT_RETENTION_SECS }
    }
}

pub async fn settings<C: ConnectionTrait>(conn: &C, org: i64) -> ApiResult<Settings> {
    Ok(action_setting::Entity::find_by_id(org)
        .one(conn)
        .await?
        .map(|s| Settings { record_contexts: s.record_contexts, retention_secs: s.retention_secs })
        .unwrap_or_default())
}

pub async fn set_settings(store: &Store, org: i64, creator: i64, new: Settings) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let written = events::append(
                    txn,
                    NewEvent {
                        aggregate_type: Aggregate::ActionSettings,
                        aggregate_id: org.to_string(),
                        event_type: "action.settings.changed",
                        resource_owner: org,
                        creator,
                        payload: serde_json::json!({
                            "recordContexts": new.record_contexts,
                            "retention": format!("{}s", new.retention_secs),
                        }),
                    },
                )
                .await?;
                match action_setting::Entity::find_by_id(org).one(txn).await? {
                    Some(current) => {
                        let mut am: action_setting::ActiveModel = current.into();
                        am.record_contexts = Set(new.record_contexts);
                        am.retention_secs = Set(new.retention_secs);
                        am.sequence = Set(written.sequence);
                        am.changed_at = Set(written.created_at);
                        am.update(txn).await?;
                    }
                    None => {
                        action_setting::Entity::insert(action_setting::ActiveModel {
                            org_id: Set(org),
                            record_contexts: Set(new.record_contexts),
                            retention_secs: Set(new.retention_secs),
                            sequence: Set(written.sequence),
                            created_at: Set(written.created_at),
                            changed_at: Set(written.created_at),
                        })
                        .exec_without_returning(txn)
                        .await?;
                    }
                }
                Ok(written)
            })
        })
        .await
}

/// Inserts recorded contexts in the caller's transaction.
pub async fn insert_in<C: ConnectionTrait>(conn: &C, rows: &[recorded_context::Model]) -> ApiResult<()> {
    for chunk in rows.chunks(100) {
        super::texts::insert_rows(conn, chunk).await?;
    }
    Ok(())
}

/// Which recorded contexts of a trigger a replay uses.
pub enum Pick {
    /// The newest `n`.
    Last(u64),
    /// These run ids (unknown ones are ignored), newest first.
    RunIds(Vec<i64>),
}

/// Recorded contexts of one trigger of `org`, newest first, not older than the retention.
pub async fn contexts<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    flow: i32,
    trigger: i32,
    pick: Pick,
    not_before: i64,
) -> ApiResult<Vec<recorded_context::Model>> {
    let mut q = recorded_context::Entity::find()
        .filter(recorded_context::Column::OrgId.eq(org))
        .filter(recorded_context::Column::FlowType.eq(flow))
        .filter(recorded_context::Column::TriggerType.eq(trigger))
        .filter(recorded_context::Column::CreatedAt.gte(not_before))
        .order_by_desc(recorded_context::Column::RunId);
    q = match pick {
        Pick::Last(n) => q.limit(n),
        Pick::RunIds(ids) if ids.is_empty() => return Ok(vec![]),
        Pick::RunIds(ids) => q.filter(recorded_context::Column::RunId.is_in(ids)),
    };
    Ok(q.all(conn).await?)
}

/// Deletes recorded contexts past their organization's retention.
pub async fn prune(store: &Store, max_rows: u64) -> ApiResult<u64> {
    prune_in_batches(store, max_rows, super::PRUNE_BATCH).await
}

/// [`prune`], at most `batch` rows per transaction.
pub async fn prune_in_batches(store: &Store, max_rows: u64, batch: u64) -> ApiResult<u64> {
    super::prune_in_passes(store, "prune-recorded-contexts", batch, move |txn| {
        Box::pin(async move { prune_pass(txn, max_rows, batch).await })
    })
    .await
}

async fn prune_pass(txn: &sea_orm::DatabaseTransaction, max_rows: u64, batch: u64) -> ApiResult<u64> {
    use recorded_context::Column;
    let now = crate::domain::time::now_micros();
    let orgs = super::orgs_with_rows::<recorded_context::Entity, _>(txn, Column::OrgId).await?;
    let mut removed = 0;
    for &org in &orgs {
        if removed == batch {
            return Ok(removed);
        }
        let retention = settings(txn, org).await?.retention_secs;
        let old =
            sea_orm::Condition::all().add(Column::OrgId.eq(org)).add(Column::CreatedAt.lt(now - retention * 1_000_000));
        removed += super::delete_some::<recorded_context::Entity, _>(txn, Column::RunId, old, batch - removed).await?;
    }
    // And no more than the newest `max_rows` of an org (as its run records): the retention alone
    // lets one busy org keep a week of 64 KiB contexts.
    let limit = batch - removed;
    Ok(removed
        + super::keep_newest_of_orgs::<recorded_context::Entity, _>(
            txn,
            Column::OrgId,
            Column::RunId,
            &orgs,
            max_rows,
            limit,
        )
        .await?)
}
