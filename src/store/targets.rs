//! Actions v2 targets and executions (instance-scoped). All writes hold one lock, so a
//! SetExecution sees a consistent set of targets and DeleteTarget can prune every execution.

use super::events::{self, NewEvent};
use super::Store;
use crate::error::{ApiError, ApiResult, Kind};
pub use entity::enums::{PayloadType, TargetKind};
use entity::{execution, target, target_key};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
};

pub const LOCK: &str = "actions_v2";

pub fn not_found() -> ApiError {
    ApiError::new(Kind::NotFound, "Errors.Target.NotFound", "Target not found")
}

pub fn already_exists() -> ApiError {
    ApiError::new(Kind::AlreadyExists, "Errors.Target.AlreadyExists", "A target with this name already exists")
}

/// A target as written by CreateTarget (already validated; the signing key encrypted).
pub struct NewTarget {
    pub name: String,
    pub target_type: TargetKind,
    pub interrupt_on_error: bool,
    pub endpoint: String,
    pub timeout_nanos: i64,
    pub payload_type: PayloadType,
    pub signing_key_enc: String,
}

/// The fields an UpdateTarget sets (None: unchanged). Already validated.
#[derive(Default)]
pub struct TargetPatch {
    pub name: Option<String>,
    pub target_type: Option<(TargetKind, bool)>,
    pub endpoint: Option<String>,
    pub timeout_nanos: Option<i64>,
    pub payload_type: Option<PayloadType>,
    /// A new signing key (rotation).
    pub rotation: Option<KeyRotation>,
}

/// A signing-key rotation of UpdateTarget.
pub struct KeyRotation {
    /// The new key, encrypted.
    pub key_enc: String,
    /// How long (µs) the replaced key stays valid; 0 drops it and every earlier one at once.
    pub grace_micros: i64,
    /// `ACTIONSD_ENCRYPTION_KEY`, to re-seal the keys still in their grace periods.
    pub encryption_key: String,
}

/// At most this many replaced keys are kept in their grace periods; a rotation beyond it ends the
/// grace of the oldest replaced key.
pub const MAX_PREVIOUS_KEYS: usize = 10;

/// A signing key replaced by a rotation, valid until `until` (µs).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreviousKey {
    pub key: String,
    pub until: i64,
}

/// The replaced keys of a target, most recently replaced first (expired ones included). They are
/// sealed together as one JSON list in `previous_key_enc`; a row written before several were kept
/// holds one bare key whose end is `previous_key_expires_at`.
pub fn previous_keys(encryption_key: &str, t: &target::Model) -> ApiResult<Vec<PreviousKey>> {
    let Some(sealed) = &t.previous_key_enc else { return Ok(Vec::new()) };
    let plain = super::crypto::decrypt(encryption_key, sealed).map_err(ApiError::internal)?;
    if plain.starts_with('[') {
        return serde_json::from_str(&plain).map_err(ApiError::internal);
    }
    Ok(vec![PreviousKey { key: plain, until: t.previous_key_expires_at.unwrap_or(0) }])
}

/// Seals `keys` for `previous_key_enc`, with the latest end for `previous_key_expires_at`.
fn seal_previous_keys(encryption_key: &str, keys: &[PreviousKey]) -> ApiResult<(Option<String>, Option<i64>)> {
    if keys.is_empty() {
        return Ok((None, None));
    }
    let plain = serde_json::to_string(keys).map_err(ApiError::internal)?;
    let sealed = super::crypto::encrypt(encryption_key, &plain).map_err(ApiError::internal)?;
    Ok((Some(sealed), keys.iter().map(|k| k.until).max()))
}

async fn name_taken(txn: &DatabaseTransaction, name: &str, except: Option<i64>) -> ApiResult<bool> {
    let found = target::Entity::find().filter(target::Column::Name.eq(name)).one(txn).await?;
    Ok(found.is_some_and(|t| Some(t.id) != except))
}

fn target_event(t: &target::Model) -> serde_json::Value {
    serde_json::json!({
        "name": t.name, "targetType": t.target_type.as_str(), "interruptOnError": t.interrupt_on_error,
        "endpoint": t.endpoint, "timeoutNanos": t.timeout_nanos, "payloadType": t.payload_type.to_value(),
    })
}

pub async fn create_target(store: &Store, new: NewTarget, creator: i64, owner: i64) -> ApiResult<target::Model> {
    let id = store.new_id();
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if name_taken(txn, &new.name, None).await? {
                    return Err(already_exists());
                }
                let mut model = target::Model {
                    id,
                    name: new.name,
                    target_type: new.target_type,
                    interrupt_on_error: new.interrupt_on_error,
                    endpoint: new.endpoint,
                    timeout_nanos: new.timeout_nanos,
                    payload_type: new.payload_type,
                    signing_key_enc: new.signing_key_enc,
                    previous_key_enc: None,
                    previous_key_expires_at: None,
                    sequence: 0,
                    created_at: 0,
                    changed_at: 0,
                };
                let written = events::append(
                    txn,
                    NewEvent {
                        aggregate_type: crate::store::events::Aggregate::Target,
                        aggregate_id: id.to_string(),
                        event_type: "target.added",
                        resource_owner: owner,
                        creator,
                        payload: target_event(&model),
                    },
                )
                .await?;
                model.sequence = written.sequence;
                model.created_at = written.created_at;
                model.changed_at = written.created_at;
                target::Entity::insert(target::ActiveModel::from(model.clone()))
                    .exec_without_returning(txn)
                    .await
                    .map_err(|e| super::unique_or_internal(e, already_exists()))?;
                Ok(model)
            })
        })
        .await
}

/// Applies a partial update; a patch that changes nothing writes no event and returns the stored row.
pub async fn update_target(
    store: &Store,
    id: i64,
    patch: TargetPatch,
    creator: i64,
    owner: i64,
) -> ApiResult<target::Model> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let current = target::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                let mut next = current.clone();
                let mut changes = serde_json::Map::new();
                if let Some(name) = patch.name.filter(|n| *n != current.name) {
                    if name_taken(txn, &name, Some(id)).await? {
                        return Err(already_exists());
                    }
                    changes.insert("name".into(), name.clone().into());
                    next.name = name;
                }
                if let Some((kind, interrupt)) = patch.target_type {
                    if kind != current.target_type || interrupt != current.interrupt_on_error {
                        changes.insert("targetType".into(), kind.as_str().into());
                        changes.insert("interruptOnError".into(), interrupt.into());
                        next.target_type = kind;
                        next.interrupt_on_error = interrupt;
                    }
                }
                if let Some(endpoint) = patch.endpoint.filter(|e| *e != current.endpoint) {
                    changes.insert("endpoint".into(), endpoint.clone().into());
                    next.endpoint = endpoint;
                }
                if let Some(t) = patch.timeout_nanos.filter(|t| *t != current.timeout_nanos) {
                    changes.insert("timeoutNanos".into(), t.into());
                    next.timeout_nanos = t;
                }
                if let Some(p) = patch.payload_type.filter(|p| *p != current.payload_type) {
                    changes.insert("payloadType".into(), p.to_value().into());
                    next.payload_type = p;
                }
                if let Some(rotation) = patch.rotation {
                    // Never the key itself: only that it changed, and how long the old one lasts.
                    changes.insert("signingKeyRotated".into(), true.into());
                    let replaced = std::mem::replace(&mut next.signing_key_enc, rotation.key_enc);
                    let mut kept = Vec::new();
                    if rotation.grace_micros > 0 {
                        let now = crate::domain::time::now_micros();
                        let until = now.saturating_add(rotation.grace_micros);
                        changes.insert(
                            "previousSigningKeyExpirationDate".into(),
                            crate::domain::time::format_micros(until).into(),
                        );
                        let key =
                            super::crypto::decrypt(&rotation.encryption_key, &replaced).map_err(ApiError::internal)?;
                        kept.push(PreviousKey { key, until });
                        kept.extend(
                            previous_keys(&rotation.encryption_key, &current)?.into_iter().filter(|k| k.until > now),
                        );
                        kept.truncate(MAX_PREVIOUS_KEYS);
                    }
                    (next.previous_key_enc, next.previous_key_expires_at) =
                        seal_previous_keys(&rotation.encryption_key, &kept)?;
                }
                if changes.is_empty() {
                    return Ok(current);
                }
                let written = events::append(
                    txn,
                    NewEvent {
                        aggregate_type: crate::store::events::Aggregate::Target,
                        aggregate_id: id.to_string(),
                        event_type: "target.changed",
                        resource_owner: owner,
                        creator,
                        payload: serde_json::Value::Object(changes),
                    },
                )
                .await?;
                next.sequence = written.sequence;
                next.changed_at = written.created_at;
                let mut am: target::ActiveModel = current.into();
                am.name = Set(next.name.clone());
                am.target_type = Set(next.target_type);
                am.interrupt_on_error = Set(next.interrupt_on_error);
                am.endpoint = Set(next.endpoint.clone());
                am.timeout_nanos = Set(next.timeout_nanos);
                am.payload_type = Set(next.payload_type);
                am.signing_key_enc = Set(next.signing_key_enc.clone());
                am.previous_key_enc = Set(next.previous_key_enc.clone());
                am.previous_key_expires_at = Set(next.previous_key_expires_at);
                am.sequence = Set(next.sequence);
                am.changed_at = Set(next.changed_at);
                am.update(txn).await.map_err(|e| super::unique_or_internal(e, already_exists()))?;
                Ok(next)
            })
        })
        .await
}

/// Deletes a target and removes it from every execution. Returns the deletion time, or None
/// when there was no such target (idempotent).
pub async fn delete_target(store: &Store, id: i64, creator: i64, owner: i64) -> ApiResult<Option<i64>> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if target::Entity::find_by_id(id).one(txn).await?.is_none() {
                    return Ok(None);
                }
                let written = events::append(
                    txn,
                    NewEvent {
                        aggregate_type: crate::store::events::Aggregate::Target,
                        aggregate_id: id.to_string(),
                        event_type: "target.removed",
                        resource_owner: owner,
                        creator,
                        payload: serde_json::json!({}),
                    },
                )
                .await?;
                target::Entity::delete_by_id(id).exec(txn).await?;
                target_key::Entity::delete_many().filter(target_key::Column::TargetId.eq(id)).exec(txn).await?;
                let wanted = id.to_string();
                for exec in execution::Entity::find().all(txn).await? {
                    let ids = target_ids(&exec);
                    if !ids.contains(&wanted) {
                        continue;
                    }
                    let rest: Vec<String> = ids.into_iter().filter(|t| *t != wanted).collect();
                    write_execution(txn, Some(exec.clone()), &exec.id, rest, creator, owner).await?;
                }
                Ok(Some(written.created_at))
            })
        })
        .await
}

pub async fn get_target<C: ConnectionTrait>(conn: &C, id: i64) -> ApiResult<Option<target::Model>> {
    super::texts::select_one::<target::Entity, _>(conn, vec![(target::Column::Id, id.into())]).await
}

pub async fn all_targets<C: ConnectionTrait>(conn: &C) -> ApiResult<Vec<target::Model>> {
    Ok(target::Entity::find().all(conn).await?)
}

pub async fn all_executions<C: ConnectionTrait>(conn: &C) -> ApiResult<Vec<execution::Model>> {
    Ok(execution::Entity::find().all(conn).await?)
}

/// The ordered target ids of an execution.
pub fn target_ids(e: &execution::Model) -> Vec<String> {
    serde_json::from_str(&e.targets).unwrap_or_default()
}

/// Writes (or, for an empty list, removes) one execution with its event. Returns the event time,
/// or None when nothing changed (clearing an execution that does not exist).
async fn write_execution(
    txn: &DatabaseTransaction,
    current: Option<execution::Model>,
    id: &str,
    targets: Vec<String>,
    creator: i64,
    owner: i64,
) -> ApiResult<Option<i64>> {
    if targets.is_empty() && current.is_none() {
        return Ok(None);
    }
    let event_type = if targets.is_empty() { "execution.v2.removed" } else { "execution.v2.set" };
    let list = serde_json::to_string(&targets).map_err(ApiError::internal)?;
    // The row first: the event's deliveries go to the executions this transaction sees, the
    // change included (a set of the `execution.v2.set` execution itself reaches its new targets).
    let now = crate::domain::time::now_micros();
    match &current {
        Some(_) if targets.is_empty() => {
            execution::Entity::delete_by_id(id.to_string()).exec(txn).await?;
        }
        Some(existing) => {
            let mut am: execution::ActiveModel = existing.clone().into();
            am.targets = Set(list);
            am.update(txn).await?;
        }
        None => {
            execution::Entity::insert(execution::ActiveModel {
                id: Set(id.to_string()),
                targets: Set(list),
                sequence: Set(0),
                created_at: Set(now),
                changed_at: Set(now),
            })
            .exec_without_returning(txn)
            .await?;
        }
    }
    let written = events::append(
        txn,
        NewEvent {
            aggregate_type: crate::store::events::Aggregate::Execution,
            aggregate_id: id.to_string(),
            event_type,
            resource_owner: owner,
            creator,
            payload: serde_json::json!({"targets": targets}),
        },
    )
    .await?;
    if !targets.is_empty() {
        // Sequence and times are the event's.
        let mut update = execution::Entity::update_many()
            .col_expr(execution::Column::Sequence, sea_orm::sea_query::Expr::value(written.sequence))
            .col_expr(execution::Column::ChangedAt, sea_orm::sea_query::Expr::value(written.created_at));
        if current.is_none() {
            update = update.col_expr(execution::Column::CreatedAt, sea_orm::sea_query::Expr::value(written.created_at));
        }
        update.filter(execution::Column::Id.eq(id)).exec(txn).await?;
    }
    Ok(Some(written.created_at))
}

/// Replaces the target list of one execution (`[]` clears it). Every target must exist.
pub async fn set_execution(store: &Store, id: String, targets: Vec<i64>, creator: i64, owner: i64) -> ApiResult<i64> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                for t in &targets {
                    if target::Entity::find_by_id(*t).one(txn).await?.is_none() {
                        return Err(not_found());
                    }
                }
                let current = execution::Entity::find_by_id(id.clone()).one(txn).await?;
                let ids: Vec<String> = targets.iter().map(i64::to_string).collect();
                // The same targets in the same order: nothing changes, no event (as UpdateTarget).
                if let Some(same) = current.as_ref().filter(|c| target_ids(c) == ids) {
                    return Ok(same.changed_at);
                }
                let at = write_execution(txn, current, &id, ids, creator, owner).await?;
                Ok(at.unwrap_or_else(crate::domain::time::now_micros))
            })
        })
        .await
}

// ---------- public keys (JWE) ----------

pub fn key_not_found() -> ApiError {
    ApiError::new(Kind::NotFound, "Errors.Target.NotFound", "Public key not found")
}

pub fn key_active() -> ApiError {
    ApiError::new(
        Kind::FailedPrecondition,
        "Errors.Target.PublicKeyActive",
        "The public key is active: deactivate it (or activate another one) before removing it",
    )
}

/// A public key as AddPublicKey writes it (already validated).
pub struct NewKey {
    pub public_key: String,
    pub fingerprint: String,
    pub expires_at: Option<i64>,
}

/// Appends a `target.key.*` event and keeps the target's sequence current.
async fn key_event(
    txn: &DatabaseTransaction,
    t: &target::Model,
    event_type: &'static str,
    payload: serde_json::Value,
    creator: i64,
    owner: i64,
) -> ApiResult<events::Written> {
    let written = events::append(
        txn,
        NewEvent {
            aggregate_type: crate::store::events::Aggregate::Target,
            aggregate_id: t.id.to_string(),
            event_type,
            resource_owner: owner,
            creator,
            payload,
        },
    )
    .await?;
    let mut am: target::ActiveModel = t.clone().into();
    am.sequence = Set(written.sequence);
    am.update(txn).await?;
    Ok(written)
}

async fn find_key(txn: &DatabaseTransaction, target_id: i64, key_id: i64) -> ApiResult<Option<target_key::Model>> {
    Ok(target_key::Entity::find_by_id(key_id).one(txn).await?.filter(|k| k.target_id == target_id))
}

/// Adds an inactive public key to a target.
pub async fn add_key(
    store: &Store,
    target_id: i64,
    new: NewKey,
    creator: i64,
    owner: i64,
) -> ApiResult<target_key::Model> {
    let id = store.new_id();
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let t = target::Entity::find_by_id(target_id).one(txn).await?.ok_or_else(not_found)?;
                let written = key_event(
                    txn,
                    &t,
                    "target.key.added",
                    serde_json::json!({
                        "keyId": id.to_string(),
                        "fingerprint": new.fingerprint,
                        "expirationDate": new.expires_at.map(crate::domain::time::format_micros),
                    }),
                    creator,
                    owner,
                )
                .await?;
                let model = target_key::Model {
                    id,
                    target_id,
                    public_key: new.public_key,
                    fingerprint: new.fingerprint,
                    active: false,
                    expires_at: new.expires_at,
                    created_at: written.created_at,
                    changed_at: written.created_at,
                };
                target_key::Entity::insert(target_key::ActiveModel::from(model.clone()))
                    .exec_without_returning(txn)
                    .await?;
                Ok(model)
            })
        })
        .await
}

async fn set_key_active(
    txn: &DatabaseTransaction,
    t: &target::Model,
    key: target_key::Model,
    active: bool,
    creator: i64,
    owner: i64,
) -> ApiResult<target_key::Model> {
    let event_type = if active { "target.key.activated" } else { "target.key.deactivated" };
    let written =
        key_event(txn, t, event_type, serde_json::json!({"keyId": key.id.to_string()}), creator, owner).await?;
    let mut am: target_key::ActiveModel = key.into();
    am.active = Set(active);
    am.changed_at = Set(written.created_at);
    Ok(am.update(txn).await?)
}

/// Activates a key, deactivating the target's previously active key in the same transaction.
/// Activating the active key changes nothing (no event; the stored change time).
/// `now` (µs) decides whether the key has expired (an expired key cannot be activated).
pub async fn activate_key(
    store: &Store,
    target_id: i64,
    key_id: i64,
    now: i64,
    creator: i64,
    owner: i64,
) -> ApiResult<target_key::Model> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let t = target::Entity::find_by_id(target_id).one(txn).await?.ok_or_else(not_found)?;
                let key = find_key(txn, target_id, key_id).await?.ok_or_else(key_not_found)?;
                if key.active {
                    return Ok(key);
                }
                if key.expires_at.is_some_and(|at| at <= now) {
                    return Err(ApiError::new(
                        Kind::InvalidArgument,
                        "Errors.Target.InvalidPublicKey",
                        "The public key has expired and cannot be activated",
                    ));
                }
                let previous = target_key::Entity::find()
                    .filter(target_key::Column::TargetId.eq(target_id))
                    .filter(target_key::Column::Active.eq(true))
                    .all(txn)
                    .await?;
                for old in previous {
                    set_key_active(txn, &t, old, false, creator, owner).await?;
                }
                set_key_active(txn, &t, key, true, creator, owner).await
            })
        })
        .await
}

/// Deactivates a key; deactivating an inactive key changes nothing.
pub async fn deactivate_key(
    store: &Store,
    target_id: i64,
    key_id: i64,
    creator: i64,
    owner: i64,
) -> ApiResult<target_key::Model> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let t = target::Entity::find_by_id(target_id).one(txn).await?.ok_or_else(not_found)?;
                let key = find_key(txn, target_id, key_id).await?.ok_or_else(key_not_found)?;
                if !key.active {
                    return Ok(key);
                }
                set_key_active(txn, &t, key, false, creator, owner).await
            })
        })
        .await
}

/// Removes an inactive key. Returns the removal time, or None when the target has no such key
/// (idempotent, like DeleteTarget). An unknown target is NotFound; the active key cannot be removed.
pub async fn remove_key(
    store: &Store,
    target_id: i64,
    key_id: Option<i64>,
    creator: i64,
    owner: i64,
) -> ApiResult<Option<i64>> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let t = target::Entity::find_by_id(target_id).one(txn).await?.ok_or_else(not_found)?;
                let Some(key_id) = key_id else { return Ok(None) };
                let Some(key) = find_key(txn, target_id, key_id).await? else { return Ok(None) };
                if key.active {
                    return Err(key_active());
                }
                let written = key_event(
                    txn,
                    &t,
                    "target.key.removed",
                    serde_json::json!({"keyId": key.id.to_string()}),
                    creator,
                    owner,
                )
                .await?;
                target_key::Entity::delete_by_id(key.id).exec(txn).await?;
                Ok(Some(written.created_at))
            })
        })
        .await
}

/// The keys of a target, oldest first.
pub async fn list_keys<C: ConnectionTrait>(conn: &C, target_id: i64) -> ApiResult<Vec<target_key::Model>> {
    use sea_orm::QueryOrder;
    Ok(target_key::Entity::find()
        .filter(target_key::Column::TargetId.eq(target_id))
        .order_by_asc(target_key::Column::Id)
        .all(conn)
        .await?)
}

/// The target's active key, unless it has expired at `now` (µs).
pub async fn active_key<C: ConnectionTrait>(
    conn: &C,
    target_id: i64,
    now: i64,
) -> ApiResult<Option<target_key::Model>> {
    let key = target_key::Entity::find()
        .filter(target_key::Column::TargetId.eq(target_id))
        .filter(target_key::Column::Active.eq(true))
        .one(conn)
        .await?;
    Ok(key.filter(|k| k.expires_at.is_none_or(|at| at > now)))
}
