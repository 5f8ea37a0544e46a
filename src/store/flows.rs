//! Flows: per org and flow type, each trigger's ordered list of actions.

use super::events::{self, NewEvent, Written};
use super::{org_lock, Store};
use crate::domain::{FlowType, TriggerType};
use crate::error::{ApiError, ApiResult};
use entity::{action, flow, flow_trigger_action as fta};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use std::collections::{HashMap, HashSet};

pub struct FlowView {
    pub details: Option<flow::Model>,
    /// Triggers with at least one action, by trigger id; actions in configured order.
    pub triggers: Vec<(TriggerType, Vec<action::Model>)>,
}

pub async fn get_flow<C: ConnectionTrait>(conn: &C, org: i64, flow_type: FlowType) -> ApiResult<FlowView> {
    let rows = fta::Entity::find()
        .filter(fta::Column::OrgId.eq(org))
        .filter(fta::Column::FlowType.eq(flow_type.0))
        .order_by_asc(fta::Column::TriggerType)
        .order_by_asc(fta::Column::Position)
        .find_also_related(action::Entity)
        .all(conn)
        .await?;
    let mut triggers: Vec<(TriggerType, Vec<action::Model>)> = Vec::new();
    for (binding, action) in rows {
        let Some(action) = action else { continue };
        let trigger = TriggerType(binding.trigger_type);
        match triggers.last_mut() {
            Some((t, list)) if *t == trigger => list.push(action),
            _ => triggers.push((trigger, vec![action])),
        }
    }
    let details =
        if triggers.is_empty() { None } else { flow::Entity::find_by_id((org, flow_type.0)).one(conn).await? };
    Ok(FlowView { details, triggers })
}

/// The ordered action ids bound to one trigger.
pub async fn trigger_action_ids<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    flow_type: FlowType,
    trigger: TriggerType,
) -> ApiResult<Vec<i64>> {
    Ok(fta::Entity::find()
        .filter(fta::Column::OrgId.eq(org))
        .filter(fta::Column::FlowType.eq(flow_type.0))
        .filter(fta::Column::TriggerType.eq(trigger.0))
        .order_by_asc(fta::Column::Position)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.action_id)
        .collect())
}

async fn touch_flow(txn: &DatabaseTransaction, org: i64, flow_type: FlowType, written: Written) -> ApiResult<()> {
    let existing = flow::Entity::find_by_id((org, flow_type.0)).one(txn).await?;
    let model = flow::ActiveModel {
        org_id: Set(org),
        flow_type: Set(flow_type.0),
        sequence: Set(written.sequence),
        created_at: Set(existing.as_ref().map(|f| f.created_at).unwrap_or(written.created_at)),
        changed_at: Set(written.created_at),
    };
    if existing.is_some() {
        flow::Entity::update(model).exec(txn).await?;
    } else {
        flow::Entity::insert(model).exec_without_returning(txn).await?;
    }
    Ok(())
}

fn org_event(org: i64, creator: i64, event_type: &'static str, payload: serde_json::Value) -> NewEvent<'static> {
    NewEvent {
        aggregate_type: crate::store::events::Aggregate::Org,
        aggregate_id: org.to_string(),
        event_type,
        resource_owner: org,
        creator,
        payload,
    }
}

/// Rows or ids per statement (well under the bound parameters a statement may have).
const CHUNK: usize = 1000;

/// Replaces one trigger's ordered action list. `ids` are the raw ids from the request.
pub async fn set_trigger_actions(
    store: &Store,
    org: i64,
    creator: i64,
    flow_type: FlowType,
    trigger: TriggerType,
    ids: Vec<String>,
) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let current = trigger_action_ids(txn, org, flow_type, trigger).await?;
                let current_str: Vec<String> = current.iter().map(|i| i.to_string()).collect();
                if current_str == ids {
                    return Err(ApiError::precondition("COMMAND-Nfh52", "No Changes"));
                }
                let missing = || ApiError::precondition("COMMAND-dg422", "ActionIDs do not exist");
                let parsed: Vec<i64> =
                    ids.iter().map(|s| crate::domain::id::parse(s)).collect::<Option<_>>().ok_or_else(missing)?;
                let unique: HashSet<i64> = parsed.iter().copied().collect();
                if unique.len() != parsed.len() {
                    return Err(missing());
                }
                // In chunks: a statement has a bounded number of parameters (SQLite 32,766), and
                // a trigger has no cap on its actions.
                let mut found = 0;
                for chunk in parsed.chunks(CHUNK) {
                    found += action::Entity::find()
                        .filter(action::Column::OrgId.eq(org))
                        .filter(action::Column::Id.is_in(chunk.to_vec()))
                        .count(txn)
                        .await?;
                }
                if found as usize != parsed.len() {
                    return Err(missing());
                }
                fta::Entity::delete_many()
                    .filter(fta::Column::OrgId.eq(org))
                    .filter(fta::Column::FlowType.eq(flow_type.0))
                    .filter(fta::Column::TriggerType.eq(trigger.0))
                    .exec(txn)
                    .await?;
                for (n, chunk) in parsed.chunks(CHUNK).enumerate() {
                    fta::Entity::insert_many(chunk.iter().enumerate().map(|(pos, id)| fta::ActiveModel {
                        org_id: Set(org),
                        flow_type: Set(flow_type.0),
                        trigger_type: Set(trigger.0),
                        position: Set((n * CHUNK + pos) as i32),
                        action_id: Set(*id),
                    }))
                    .exec_without_returning(txn)
                    .await?;
                }
                let written = events::append(
                    txn,
                    org_event(
                        org,
                        creator,
                        "org.flow.trigger_actions.set",
                        serde_json::json!({
                            "flowType": flow_type.0, "triggerType": trigger.0,
                            "actionIds": parsed.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
                        }),
                    ),
                )
                .await?;
                touch_flow(txn, org, flow_type, written).await?;
                Ok(written)
            })
        })
        .await
}

pub async fn clear_flow(store: &Store, org: i64, creator: i64, flow_type: FlowType) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let bound = fta::Entity::find()
                    .filter(fta::Column::OrgId.eq(org))
                    .filter(fta::Column::FlowType.eq(flow_type.0))
                    .count(txn)
                    .await?;
                if bound == 0 {
                    return Err(ApiError::precondition("COMMAND-DgGh3", "Flow is already empty"));
                }
                fta::Entity::delete_many()
                    .filter(fta::Column::OrgId.eq(org))
                    .filter(fta::Column::FlowType.eq(flow_type.0))
                    .exec(txn)
                    .await?;
                let written = events::append(
                    txn,
                    org_event(org, creator, "org.flow.cleared", serde_json::json!({"flowType": flow_type.0})),
                )
                .await?;
                touch_flow(txn, org, flow_type, written).await?;
                Ok(written)
            })
        })
        .await
}

/// Action ids of one trigger with their models, in order (for `_execute`).
pub async fn trigger_actions<C: ConnectionTrait>(
    conn: &C,
    org: i64,
    flow_type: FlowType,
    trigger: TriggerType,
) -> ApiResult<Vec<action::Model>> {
    let ids = trigger_action_ids(conn, org, flow_type, trigger).await?;
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut by_id: HashMap<i64, action::Model> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let rows = action::Entity::find().filter(action::Column::Id.is_in(chunk.to_vec())).all(conn).await?;
        by_id.extend(rows.into_iter().map(|a| (a.id, a)));
    }
    Ok(ids.into_iter().filter_map(|id| by_id.remove(&id)).collect())
}
