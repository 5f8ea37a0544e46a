//! API tokens: opaque random secrets, stored as SHA-256 hashes.

use super::events::{self, NewEvent};
use super::orgs::{default_org, get_setting, insert_org, put_setting, DEFAULT_ORG_NAME};
use super::{Store, INSTANCE_LOCK};
use crate::domain::role::Role;
use crate::error::{ApiError, ApiResult, Kind};
use base64::Engine;
use entity::token;
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};

pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub struct NewToken {
    pub org_id: i64,
    pub role: Role,
    pub description: String,
    pub expires_at: Option<i64>,
    pub is_bootstrap: bool,
}

pub async fn instance_id<C: ConnectionTrait>(conn: &C) -> ApiResult<String> {
    Ok(get_setting(conn, "instance_id").await?.unwrap_or_else(|| "0".into()))
}

async fn insert_token(
    txn: &DatabaseTransaction,
    id: i64,
    new: NewToken,
    secret: &str,
    creator: i64,
) -> ApiResult<token::Model> {
    let written = events::append(
        txn,
        NewEvent {
            aggregate_type: crate::store::events::Aggregate::Instance,
            aggregate_id: instance_id(txn).await?,
            event_type: "token.added",
            resource_owner: new.org_id,
            creator,
            payload: serde_json::json!({
                "tokenId": id.to_string(), "orgId": new.org_id.to_string(), "role": new.role.as_str(),
                "description": new.description, "expiresAt": new.expires_at,
            }),
        },
    )
    .await?;
    let model = token::Model {
        id,
        token_hash: hash_token(secret),
        org_id: new.org_id,
        role: new.role.as_str().to_string(),
        description: new.description,
        expires_at: new.expires_at,
        is_bootstrap: new.is_bootstrap,
        sequence: written.sequence,
        created_at: written.created_at,
        changed_at: written.created_at,
    };
    token::Entity::insert(token::ActiveModel::from(model.clone())).exec_without_returning(txn).await?;
    Ok(model)
}

/// Creates a token; returns it with its secret (shown only once).
pub async fn add_token(store: &Store, new: NewToken, creator: i64) -> ApiResult<(token::Model, String)> {
    let secret = generate_secret();
    let id = store.new_id();
    let s = secret.clone();
    let model = store
        .write(&[INSTANCE_LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if super::orgs::get_org(txn, new.org_id).await?.is_none() {
                    return Err(ApiError::not_found("ADMIN-4Nf9s", "Organisation not found"));
                }
                insert_token(txn, id, new, &s, creator).await
            })
        })
        .await?;
    Ok((model, secret))
}

/// Revokes a token; the `token.removed` event written (for the answer's details) with the token.
pub async fn remove_token(store: &Store, id: i64, creator: i64) -> ApiResult<(token::Model, events::Written)> {
    store
        .write(&[INSTANCE_LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let Some(model) = token::Entity::find_by_id(id).one(txn).await? else {
                    return Err(ApiError::not_found("ADMIN-Tk4n0", "Token not found"));
                };
                let written = events::append(
                    txn,
                    NewEvent {
                        aggregate_type: crate::store::events::Aggregate::Instance,
                        aggregate_id: instance_id(txn).await?,
                        event_type: "token.removed",
                        resource_owner: model.org_id,
                        creator,
                        payload: serde_json::json!({"tokenId": id.to_string()}),
                    },
                )
                .await?;
                token::Entity::delete_by_id(id).exec(txn).await?;
                Ok((model, written))
            })
        })
        .await
}

pub async fn list_tokens(
    store: &Store,
    org: Option<i64>,
    offset: u64,
    limit: u64,
    asc: bool,
) -> ApiResult<(u64, Vec<token::Model>)> {
    let mut q = token::Entity::find();
    if let Some(org) = org {
        q = q.filter(token::Column::OrgId.eq(org));
    }
    let snapshot = store.read_snapshot().await?;
    let total = q.clone().count(&snapshot).await?;
    let order = if asc { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    let rows = q
        .order_by(token::Column::Id, order)
        .offset(super::sql_count(offset))
        .limit(super::sql_count(limit))
        .all(&snapshot)
        .await?;
    snapshot.commit().await?;
    Ok((total, rows))
}

pub async fn all_tokens<C: ConnectionTrait>(conn: &C) -> ApiResult<Vec<token::Model>> {
    Ok(token::Entity::find().all(conn).await?)
}

pub async fn find_by_hash<C: ConnectionTrait>(conn: &C, hash: &str) -> ApiResult<Option<token::Model>> {
    Ok(token::Entity::find().filter(token::Column::TokenHash.eq(hash)).one(conn).await?)
}

/// What the bootstrap did about the admin token.
pub enum AdminToken {
    /// Registered (or already registered) from ACTIONSD_ADMIN_TOKEN.
    FromConfig,
    /// Generated now, its secret written to the token file (by `bootstrap`'s `keep`).
    Generated,
    /// An admin token exists already and none was configured.
    Existing,
}

/// Creates the instance, the default org and the admin token at first start (once across replicas).
/// A generated token's secret is handed to `keep` (which writes the token file) before the
/// transaction commits: a failure there stores nothing, and a crash before the commit leaves no
/// token in the database that nobody has, so the next start generates one again.
pub async fn bootstrap(
    store: &Store,
    configured: Option<String>,
    keep: impl FnOnce(&str) -> Result<(), String> + Send + 'static,
) -> ApiResult<(i64, AdminToken)> {
    let id_for_instance = store.new_id();
    let token_id = store.new_id();
    let org_id = store.new_id();
    store
        .write(&[INSTANCE_LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if get_setting(txn, "instance_id").await?.is_none() {
                    put_setting(txn, "instance_id", &id_for_instance.to_string()).await?;
                }
                let default = match default_org(txn).await? {
                    Some(o) => o,
                    None => insert_org(org_id, txn, DEFAULT_ORG_NAME, 0, true).await?,
                };
                let admin = NewToken {
                    org_id: default.id,
                    role: Role::IamOwner,
                    description: "bootstrap admin token".into(),
                    expires_at: None,
                    is_bootstrap: true,
                };
                let result = match configured {
                    Some(secret) => {
                        match find_by_hash(txn, &hash_token(&secret)).await? {
                            Some(existing) => {
                                if existing.role != Role::IamOwner.as_str()
                                    || existing.org_id != default.id
                                    || existing.expires_at.is_some()
                                {
                                    // A change like any other: an event records it (an audit of
                                    // `token.*` events sees the token become the admin).
                                    let written = events::append(
                                        txn,
                                        NewEvent {
                                            aggregate_type: crate::store::events::Aggregate::Instance,
                                            aggregate_id: instance_id(txn).await?,
                                            event_type: "token.changed",
                                            resource_owner: default.id,
                                            creator: 0,
                                            payload: serde_json::json!({
                                                "tokenId": existing.id.to_string(), "orgId": default.id.to_string(),
                                                "role": Role::IamOwner.as_str(), "expiresAt": null,
                                                "reason": "registered as the admin token (ACTIONSD_ADMIN_TOKEN)",
                                            }),
                                        },
                                    )
                                    .await?;
                                    let mut am: token::ActiveModel = existing.into();
                                    am.role = Set(Role::IamOwner.as_str().into());
                                    am.org_id = Set(default.id);
                                    am.expires_at = Set(None);
                                    am.sequence = Set(written.sequence);
                                    am.changed_at = Set(written.created_at);
                                    am.update(txn).await?;
                                }
                            }
                            None => {
                                insert_token(txn, token_id, admin, &secret, 0).await?;
                            }
                        }
                        AdminToken::FromConfig
                    }
                    None => {
                        let admins = token::Entity::find()
                            .filter(token::Column::Role.eq(Role::IamOwner.as_str()))
                            .count(txn)
                            .await?;
                        if admins > 0 {
                            AdminToken::Existing
                        } else {
                            let secret = generate_secret();
                            insert_token(txn, token_id, admin, &secret, 0).await?;
                            keep(&secret).map_err(|e| ApiError::bare(Kind::Internal, e))?;
                            AdminToken::Generated
                        }
                    }
                };
                Ok((default.id, result))
            })
        })
        .await
}
