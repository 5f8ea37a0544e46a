//! Action secrets: per organization, by name, the value encrypted at rest. Their events carry the
//! name only.

use super::events::{self, Aggregate, NewEvent, Written};
use super::{org_lock, Store};
use crate::error::{ApiError, ApiResult, Kind};
use entity::action_secret;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};

/// The most secrets an organization may have.
pub const MAX_PER_ORG: u64 = 100;

fn secret_event(org: i64, creator: i64, event_type: &'static str, name: &str) -> NewEvent<'static> {
    NewEvent {
        aggregate_type: Aggregate::ActionSecret,
        aggregate_id: org.to_string(),
        event_type,
        resource_owner: org,
        creator,
        payload: serde_json::json!({ "name": name }),
    }
}

/// Creates or replaces a secret; `value_enc` is the encrypted value.
pub async fn set(store: &Store, org: i64, creator: i64, name: String, value_enc: String) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let current = action_secret::Entity::find_by_id((org, name.clone())).one(txn).await?;
                if current.is_none() {
                    let count =
                        action_secret::Entity::find().filter(action_secret::Column::OrgId.eq(org)).count(txn).await?;
                    if count >= MAX_PER_ORG {
                        return Err(ApiError::new(
                            Kind::ResourceExhausted,
                            "ACTION-s3cr3t",
                            format!("An organization has at most {MAX_PER_ORG} action secrets"),
                        ));
                    }
                }
                let written = events::append(txn, secret_event(org, creator, "action.secret.set", &name)).await?;
                match current {
                    Some(current) => {
                        let mut am: action_secret::ActiveModel = current.into();
                        am.value_enc = Set(value_enc);
                        am.sequence = Set(written.sequence);
                        am.changed_at = Set(written.created_at);
                        am.update(txn).await?;
                    }
                    None => {
                        action_secret::Entity::insert(action_secret::ActiveModel {
                            org_id: Set(org),
                            name: Set(name),
                            value_enc: Set(value_enc),
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

/// Removes a secret (404 when the organization has none of that name).
pub async fn remove(store: &Store, org: i64, creator: i64, name: String) -> ApiResult<Written> {
    store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let deleted = action_secret::Entity::delete_many()
                    .filter(action_secret::Column::OrgId.eq(org))
                    .filter(action_secret::Column::Name.eq(name.clone()))
                    .exec(txn)
                    .await?;
                if deleted.rows_affected == 0 {
                    return Err(not_found());
                }
                events::append(txn, secret_event(org, creator, "action.secret.removed", &name)).await
            })
        })
        .await
}

pub fn not_found() -> ApiError {
    ApiError::not_found("ACTION-s3cnf", "Action secret not found")
}

/// The organization's secrets by name, in code point order whatever the database's collation
/// (values still encrypted).
pub async fn list<C: ConnectionTrait>(conn: &C, org: i64) -> ApiResult<Vec<action_secret::Model>> {
    let mut rows = action_secret::Entity::find().filter(action_secret::Column::OrgId.eq(org)).all(conn).await?;
    rows.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}
