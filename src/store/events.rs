//! The append-only event log.

use crate::domain::time::now_micros;
use crate::error::ApiResult;
use entity::event;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

/// The aggregates events are written for (stored as their names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Action,
    ActionSecret,
    ActionSettings,
    Connection,
    Execution,
    Instance,
    Org,
    Target,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Action => "action",
            Aggregate::ActionSecret => "action_secret",
            Aggregate::ActionSettings => "action_settings",
            Aggregate::Connection => "connection",
            Aggregate::Execution => "execution",
            Aggregate::Instance => "instance",
            Aggregate::Org => "org",
            Aggregate::Target => "target",
        }
    }
}

pub struct NewEvent<'a> {
    pub aggregate_type: Aggregate,
    pub aggregate_id: String,
    pub event_type: &'a str,
    pub resource_owner: i64,
    pub creator: i64,
    pub payload: serde_json::Value,
}

/// Sequence and time of an event just written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub sequence: i64,
    pub created_at: i64,
}

/// Appends one event with the next per-aggregate sequence. Callers hold the aggregate's write lock.
pub async fn append<C: ConnectionTrait>(conn: &C, e: NewEvent<'_>) -> ApiResult<Written> {
    // Every write of an existing aggregate asks this: written by hand, not rendered by sea-query.
    let sql = "SELECT MAX(sequence) AS last FROM events WHERE aggregate_type = $1 AND aggregate_id = $2";
    let values = vec![e.aggregate_type.as_str().into(), e.aggregate_id.as_str().into()];
    let row = conn.query_one(super::stmt(conn.get_database_backend(), sql, values)).await?;
    let last: Option<i64> = match row {
        Some(row) => row.try_get("", "last")?,
        None => None,
    };
    append_at(conn, e, last.unwrap_or(0) + 1).await
}

/// Appends the first event of an aggregate whose id was just minted (sequence 1; nothing to
/// look up, and no other writer can hold the aggregate yet).
pub async fn append_first<C: ConnectionTrait>(conn: &C, e: NewEvent<'_>) -> ApiResult<Written> {
    append_at(conn, e, 1).await
}

async fn append_at<C: ConnectionTrait>(conn: &C, e: NewEvent<'_>, sequence: i64) -> ApiResult<Written> {
    let created_at = now_micros();
    if matches!(e.aggregate_type, Aggregate::Target | Aggregate::Execution) {
        super::changes::mark(super::changes::Mark::TargetsOrExecutions);
    }
    let resource_owner = e.resource_owner.to_string();
    let creator = e.creator.to_string();
    let row = event::ActiveModel {
        aggregate_type: Set(e.aggregate_type.as_str().to_string()),
        aggregate_id: Set(e.aggregate_id.clone()),
        sequence: Set(sequence),
        event_type: Set(e.event_type.to_string()),
        resource_owner: Set(resource_owner.clone()),
        creator: Set(creator.clone()),
        created_at: Set(created_at),
        payload: Set(e.payload.to_string()),
        ..Default::default()
    };
    super::texts::insert(conn, &row).await?;
    if e.aggregate_type == Aggregate::Org {
        // An org's details name the last event of its aggregate (flow changes included), like
        // every other object's: its row carries that sequence and time.
        if let Ok(org_id) = e.aggregate_id.parse::<i64>() {
            entity::org::Entity::update_many()
                .col_expr(entity::org::Column::Sequence, sea_orm::sea_query::Expr::value(sequence))
                .col_expr(entity::org::Column::ChangedAt, sea_orm::sea_query::Expr::value(created_at))
                .filter(entity::org::Column::Id.eq(org_id))
                .exec(conn)
                .await?;
        }
    }
    // The outbox: deliveries for event executions commit (or roll back) with the event.
    super::deliveries::on_event(
        conn,
        super::deliveries::EventInfo {
            aggregate_type: e.aggregate_type,
            aggregate_id: &e.aggregate_id,
            sequence,
            event_type: e.event_type,
            resource_owner: &resource_owner,
            creator: &creator,
            created_at,
            payload: &e.payload,
        },
    )
    .await?;
    Ok(Written { sequence, created_at })
}

/// The global position of the newest event (NULL without events), as a query without parameters
/// (lists read it inside their own statement, as one snapshot).
pub fn last_position_query() -> sea_orm::Select<event::Entity> {
    event::Entity::find().select_only().column_as(event::Column::Position.max(), "max")
}

pub async fn last_position<C: ConnectionTrait>(conn: &C) -> ApiResult<i64> {
    let last: Option<Option<i64>> = last_position_query().into_tuple().one(conn).await?;
    Ok(last.flatten().unwrap_or(0))
}
