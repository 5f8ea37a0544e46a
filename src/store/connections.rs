//! ZITADEL connector connections, their organization links and recent rejections
//! (instance-scoped). Every change appends an event of the `connection` aggregate.

use super::events::{self, Aggregate, NewEvent, Written};
use super::Store;
use crate::error::{ApiError, ApiResult, Kind};
pub use entity::enums::{ConnectionState, FailMode};
use entity::{connection, connection_org_link as link, connection_rejection as rejection};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

const LOCK: &str = "connections";
/// Rejections kept per connection.
pub const MAX_REJECTIONS: usize = 20;

pub fn not_found() -> ApiError {
    ApiError::not_found("CONN-n0tFd", "Connection not found")
}

pub fn already_exists() -> ApiError {
    ApiError::new(Kind::AlreadyExists, "CONN-n4m3x", "A connection with this name already exists")
}

/// One stored signing key: encrypted, with the time it stops being accepted (after a rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredKey {
    pub enc: String,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

pub fn keys_of(c: &connection::Model) -> Vec<StoredKey> {
    serde_json::from_str(&c.signing_keys).unwrap_or_default()
}

fn keys_json(keys: &[StoredKey]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

/// Everything of a connection but its secrets and counters (validated by the caller).
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub state: ConnectionState,
    pub timestamp_tolerance_nanos: i64,
    pub call_timeout_nanos: i64,
    pub fail_mode: FailMode,
    pub default_org_id: Option<i64>,
    pub zitadel_base_url: Option<String>,
    pub zitadel_target_id: Option<String>,
    /// PAYLOAD_TYPE_* numbers.
    pub payload_types: Vec<i32>,
}

/// The write-only parts of a write. `None`: unchanged.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// Encrypted keys; `Some(vec![])` clears them.
    pub signing_keys: Option<Vec<String>>,
    /// The encrypted ZITADEL API token; `Some(None)` clears it.
    pub zitadel_token: Option<Option<String>>,
    /// The JWE key pair (encrypted private key, public PEM); `Some(None)` drops it.
    pub jwe: Option<Option<(String, String)>>,
}

fn payload_types_text(types: &[i32]) -> String {
    types.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

pub fn payload_types_of(c: &connection::Model) -> Vec<i32> {
    c.payload_types.split(',').filter_map(|t| t.trim().parse().ok()).collect()
}

/// The event payload of a connection's configuration: never a secret, only whether it is set.
fn config_event(c: &connection::Model) -> serde_json::Value {
    serde_json::json!({
        "name": c.name,
        "state": c.state.to_value(),
        "timestampToleranceNanos": c.timestamp_tolerance_nanos,
        "callTimeoutNanos": c.call_timeout_nanos,
        "failMode": c.fail_mode.to_value(),
        "defaultOrgId": c.default_org_id.map(|o| o.to_string()),
        "zitadelApi": c.zitadel_base_url.as_ref().map(|u| serde_json::json!({
            "baseUrl": u, "hasToken": c.zitadel_token_enc.is_some(), "zitadelTargetId": c.zitadel_target_id,
        })),
        "payloadTypes": payload_types_of(c),
        "signingKeys": keys_of(c).len(),
    })
}

async fn append(
    txn: &DatabaseTransaction,
    id: i64,
    event_type: &'static str,
    creator: i64,
    owner: i64,
    payload: serde_json::Value,
) -> ApiResult<Written> {
    events::append(
        txn,
        NewEvent {
            aggregate_type: Aggregate::Connection,
            aggregate_id: id.to_string(),
            event_type,
            resource_owner: owner,
            creator,
            payload,
        },
    )
    .await
}

async fn name_taken(txn: &DatabaseTransaction, name: &str, except: Option<i64>) -> ApiResult<bool> {
    let found = connection::Entity::find().filter(connection::Column::Name.eq(name)).one(txn).await?;
    Ok(found.is_some_and(|c| Some(c.id) != except))
}

fn apply(model: &mut connection::Model, config: Config, secrets: Secrets) {
    model.name = config.name;
    model.state = config.state;
    model.timestamp_tolerance_nanos = config.timestamp_tolerance_nanos;
    model.call_timeout_nanos = config.call_timeout_nanos;
    model.fail_mode = config.fail_mode;
    model.default_org_id = config.default_org_id;
    model.zitadel_base_url = config.zitadel_base_url;
    model.zitadel_target_id = config.zitadel_target_id;
    model.payload_types = payload_types_text(&config.payload_types);
    if let Some(keys) = secrets.signing_keys {
        let keys: Vec<StoredKey> = keys.into_iter().map(|enc| StoredKey { enc, expires_at: None }).collect();
        model.signing_keys = keys_json(&keys);
    }
    if let Some(token) = secrets.zitadel_token {
        model.zitadel_token_enc = token;
    }
    if let Some(jwe) = secrets.jwe {
        (model.jwe_private_key_enc, model.jwe_public_key_pem) = match jwe {
            Some((private, public)) => (Some(private), Some(public)),
            None => (None, None),
        };
    }
}

pub async fn create(
    store: &Store,
    config: Config,
    secrets: Secrets,
    creator: i64,
    owner: i64,
) -> ApiResult<connection::Model> {
    let id = store.new_id();
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if name_taken(txn, &config.name, None).await? {
                    return Err(already_exists());
                }
                let mut model = connection::Model {
                    id,
                    name: String::new(),
                    state: ConnectionState::Active,
                    signing_keys: "[]".into(),
                    timestamp_tolerance_nanos: 0,
                    call_timeout_nanos: 0,
                    fail_mode: FailMode::Closed,
                    default_org_id: None,
                    zitadel_base_url: None,
                    zitadel_token_enc: None,
                    zitadel_target_id: None,
                    payload_types: String::new(),
                    jwe_private_key_enc: None,
                    jwe_public_key_pem: None,
                    calls: 0,
                    rejected: 0,
                    failed: 0,
                    last_call_at: None,
                    last_error: String::new(),
                    sequence: 0,
                    created_at: 0,
                    changed_at: 0,
                    rotating_until: None,
                };
                apply(&mut model, config, secrets);
                let written = append(txn, id, "connection.added", creator, owner, config_event(&model)).await?;
                model.sequence = written.sequence;
                model.created_at = written.created_at;
                model.changed_at = written.created_at;
                connection::Entity::insert(connection::ActiveModel::from(model.clone()))
                    .exec_without_returning(txn)
                    .await
                    .map_err(|e| super::unique_or_internal(e, already_exists()))?;
                Ok(model)
            })
        })
        .await
}

/// Replaces the configuration (and the secrets given). Returns the stored row.
pub async fn update(
    store: &Store,
    id: i64,
    config: Config,
    secrets: Secrets,
    creator: i64,
    owner: i64,
) -> ApiResult<connection::Model> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let current = connection::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                if name_taken(txn, &config.name, Some(id)).await? {
                    return Err(already_exists());
                }
                let mut next = current.clone();
                apply(&mut next, config, secrets);
                let written = append(txn, id, "connection.changed", creator, owner, config_event(&next)).await?;
                next.sequence = written.sequence;
                next.changed_at = written.created_at;
                let mut am: connection::ActiveModel = current.into();
                am.name = Set(next.name.clone());
                am.state = Set(next.state);
                am.signing_keys = Set(next.signing_keys.clone());
                am.timestamp_tolerance_nanos = Set(next.timestamp_tolerance_nanos);
                am.call_timeout_nanos = Set(next.call_timeout_nanos);
                am.fail_mode = Set(next.fail_mode);
                am.default_org_id = Set(next.default_org_id);
                am.zitadel_base_url = Set(next.zitadel_base_url.clone());
                am.zitadel_token_enc = Set(next.zitadel_token_enc.clone());
                am.zitadel_target_id = Set(next.zitadel_target_id.clone());
                am.payload_types = Set(next.payload_types.clone());
                am.jwe_private_key_enc = Set(next.jwe_private_key_enc.clone());
                am.jwe_public_key_pem = Set(next.jwe_public_key_pem.clone());
                am.sequence = Set(next.sequence);
                am.changed_at = Set(next.changed_at);
                am.update(txn).await.map_err(|e| super::unique_or_internal(e, already_exists()))?;
                Ok(next)
            })
        })
        .await
}

/// Deletes a connection with its links and rejections. None when there was no such connection.
pub async fn delete(store: &Store, id: i64, creator: i64, owner: i64) -> ApiResult<Option<Written>> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                if connection::Entity::find_by_id(id).one(txn).await?.is_none() {
                    return Ok(None);
                }
                let written = append(txn, id, "connection.removed", creator, owner, serde_json::json!({})).await?;
                connection::Entity::delete_by_id(id).exec(txn).await?;
                link::Entity::delete_many().filter(link::Column::ConnectionId.eq(id)).exec(txn).await?;
                rejection::Entity::delete_many().filter(rejection::Column::ConnectionId.eq(id)).exec(txn).await?;
                Ok(Some(written))
            })
        })
        .await
}

/// Claims the connection for one key rotation until `until` (µs): false when another rotation
/// holds it (on any replica) and its claim has not lapsed; 404 when there is no such connection.
pub async fn begin_rotation(store: &Store, id: i64, until: i64) -> ApiResult<bool> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let now = crate::domain::time::now_micros();
                let claimed = connection::Entity::update_many()
                    .col_expr(connection::Column::RotatingUntil, sea_orm::sea_query::Expr::value(until))
                    .filter(connection::Column::Id.eq(id))
                    .filter(
                        sea_orm::Condition::any()
                            .add(connection::Column::RotatingUntil.is_null())
                            .add(connection::Column::RotatingUntil.lt(now)),
                    )
                    .exec(txn)
                    .await?
                    .rows_affected
                    == 1;
                if !claimed && connection::Entity::find_by_id(id).one(txn).await?.is_none() {
                    return Err(not_found());
                }
                Ok(claimed)
            })
        })
        .await
}

/// Gives up the claim of a rotation that stored no key (ZITADEL refused, or could not be reached).
pub async fn end_rotation(store: &Store, id: i64) -> ApiResult<()> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                connection::Entity::update_many()
                    .col_expr(connection::Column::RotatingUntil, sea_orm::sea_query::Expr::value(Option::<i64>::None))
                    .filter(connection::Column::Id.eq(id))
                    .exec(txn)
                    .await?;
                Ok(())
            })
        })
        .await
}

/// After ZITADEL rotated the target's key: `new_key` (encrypted) is added and the newest key there
/// was (the last of the list, still valid) stays valid until `old_until` (µs) for the calls still
/// in flight. Older keys are dropped, so a connection never holds more than two (signingKeys is
/// 0..2), also after a rotation within another's window or during a manual one.
/// The rotation's claim ([`begin_rotation`]) ends in the same transaction.
pub async fn add_rotated_key(
    store: &Store,
    id: i64,
    new_key: String,
    old_until: i64,
    creator: i64,
    owner: i64,
) -> ApiResult<Written> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let current = connection::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                let now = crate::domain::time::now_micros();
                let mut keys: Vec<StoredKey> = keys_of(&current)
                    .into_iter()
                    .filter(|k| k.expires_at.is_none_or(|at| at > now))
                    .map(|k| StoredKey { expires_at: Some(k.expires_at.unwrap_or(old_until).min(old_until)), ..k })
                    .collect();
                keys.drain(..keys.len().saturating_sub(1));
                keys.push(StoredKey { enc: new_key, expires_at: None });
                let written = append(
                    txn,
                    id,
                    "connection.key.rotated",
                    creator,
                    owner,
                    serde_json::json!({"previousKeysValidUntil": crate::domain::time::format_micros(old_until)}),
                )
                .await?;
                let mut am: connection::ActiveModel = current.into();
                am.rotating_until = Set(None);
                am.signing_keys = Set(keys_json(&keys));
                am.sequence = Set(written.sequence);
                am.changed_at = Set(written.created_at);
                am.update(txn).await?;
                Ok(written)
            })
        })
        .await
}

pub async fn get<C: ConnectionTrait>(conn: &C, id: i64) -> ApiResult<Option<connection::Model>> {
    Ok(connection::Entity::find_by_id(id).one(conn).await?)
}

pub async fn all<C: ConnectionTrait>(conn: &C) -> ApiResult<Vec<connection::Model>> {
    Ok(connection::Entity::find().order_by_asc(connection::Column::Id).all(conn).await?)
}

/// The connection's `details` follow the last event of its aggregate, its links' included.
async fn touch(txn: &DatabaseTransaction, current: connection::Model, written: &Written) -> ApiResult<()> {
    let mut am: connection::ActiveModel = current.into();
    am.sequence = Set(written.sequence);
    am.changed_at = Set(written.created_at);
    am.update(txn).await?;
    Ok(())
}

/// Links a ZITADEL organization to an actionsd organization (replacing an earlier link).
pub async fn set_link(
    store: &Store,
    id: i64,
    zitadel_org: String,
    org: i64,
    creator: i64,
    owner: i64,
) -> ApiResult<Written> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let current = connection::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                let existing = link::Entity::find_by_id((id, zitadel_org.clone())).one(txn).await?;
                let written = append(
                    txn,
                    id,
                    "connection.org.linked",
                    creator,
                    owner,
                    serde_json::json!({"zitadelOrgId": zitadel_org, "orgId": org.to_string()}),
                )
                .await?;
                match existing {
                    Some(current) => {
                        let mut am: link::ActiveModel = current.into();
                        am.org_id = Set(org);
                        am.sequence = Set(written.sequence);
                        am.changed_at = Set(written.created_at);
                        am.update(txn).await?;
                    }
                    None => {
                        let row = link::Model {
                            connection_id: id,
                            zitadel_org_id: zitadel_org,
                            org_id: org,
                            sequence: written.sequence,
                            created_at: written.created_at,
                            changed_at: written.created_at,
                        };
                        link::Entity::insert(link::ActiveModel::from(row)).exec_without_returning(txn).await?;
                    }
                }
                touch(txn, current, &written).await?;
                Ok(written)
            })
        })
        .await
}

/// Removes a link; None when there was none.
pub async fn remove_link(
    store: &Store,
    id: i64,
    zitadel_org: String,
    creator: i64,
    owner: i64,
) -> ApiResult<Option<Written>> {
    store
        .write(&[LOCK.to_string()], move |txn| {
            Box::pin(async move {
                let current = connection::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                if link::Entity::find_by_id((id, zitadel_org.clone())).one(txn).await?.is_none() {
                    return Ok(None);
                }
                let written = append(
                    txn,
                    id,
                    "connection.org.unlinked",
                    creator,
                    owner,
                    serde_json::json!({"zitadelOrgId": zitadel_org}),
                )
                .await?;
                link::Entity::delete_by_id((id, zitadel_org)).exec(txn).await?;
                touch(txn, current, &written).await?;
                Ok(Some(written))
            })
        })
        .await
}

/// A connection's organization links by ZITADEL org id, in code point order whatever the
/// database's collation (so pages are the same on every backend).
pub async fn links<C: ConnectionTrait>(conn: &C, id: i64) -> ApiResult<Vec<link::Model>> {
    let mut rows = link::Entity::find().filter(link::Column::ConnectionId.eq(id)).all(conn).await?;
    rows.sort_unstable_by(|a, b| a.zitadel_org_id.cmp(&b.zitadel_org_id));
    Ok(rows)
}

/// The most recent rejections of a connection, newest first.
pub async fn rejections<C: ConnectionTrait>(conn: &C, id: i64) -> ApiResult<Vec<rejection::Model>> {
    Ok(rejection::Entity::find()
        .filter(rejection::Column::ConnectionId.eq(id))
        .order_by_desc(rejection::Column::At)
        .order_by_desc(rejection::Column::Id)
        .limit(MAX_REJECTIONS as u64)
        .all(conn)
        .await?)
}

/// The longest ZITADEL organization id a link may have (bytes).
pub const MAX_ZITADEL_ORG_ID: usize = 200;

/// The actionsd organization linked to a ZITADEL organization, if any.
pub async fn linked_org<C: ConnectionTrait>(conn: &C, id: i64, zitadel_org: &str) -> ApiResult<Option<i64>> {
    // Ids no link can have (SetOrgLink refuses them) are not looked up: PostgreSQL refuses NUL in
    // text, and a lookup must not turn odd input into a database error.
    if zitadel_org.len() > MAX_ZITADEL_ORG_ID || zitadel_org.contains('\0') {
        return Ok(None);
    }
    Ok(link::Entity::find_by_id((id, zitadel_org.to_string())).one(conn).await?.map(|l| l.org_id))
}

/// Records a refused call and keeps only the newest [`MAX_REJECTIONS`] of the connection.
pub async fn reject(store: &Store, id: i64, reason: &str, remote_addr: String) -> ApiResult<()> {
    let row = rejection::Model {
        id: store.new_id(),
        connection_id: id,
        at: crate::domain::time::now_micros(),
        reason: super::storable(reason.to_string()),
        remote_addr,
    };
    store
        .write(&[format!("{LOCK}/rejections/{id}")], move |txn| {
            Box::pin(async move {
                rejection::Entity::insert(rejection::ActiveModel::from(row)).exec_without_returning(txn).await?;
                let keep: Vec<i64> = rejection::Entity::find()
                    .filter(rejection::Column::ConnectionId.eq(id))
                    .order_by_desc(rejection::Column::At)
                    .order_by_desc(rejection::Column::Id)
                    .limit(MAX_REJECTIONS as u64)
                    .all(txn)
                    .await?
                    .into_iter()
                    .map(|r| r.id)
                    .collect();
                rejection::Entity::delete_many()
                    .filter(rejection::Column::ConnectionId.eq(id))
                    .filter(rejection::Column::Id.is_not_in(keep))
                    .exec(txn)
                    .await?;
                Ok(())
            })
        })
        .await
}

/// Counters of calls since the last flush, for one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthDelta {
    pub calls: i64,
    pub rejected: i64,
    pub failed: i64,
    pub last_call_at: Option<i64>,
    /// The last rejection or failure text (None: unchanged).
    pub last_error: Option<String>,
}

/// Adds counted calls to the connections' health (connections deleted meanwhile are skipped).
pub async fn add_health(store: &Store, deltas: Vec<(i64, HealthDelta)>) -> ApiResult<()> {
    if deltas.is_empty() {
        return Ok(());
    }
    let backend = store.backend;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                for (id, d) in deltas {
                    let sql = "UPDATE connections SET calls = calls + $1, rejected = rejected + $2, failed = failed + $3,
                         last_call_at = COALESCE($4, last_call_at), last_error = COALESCE($5, last_error) WHERE id = $6";
                    let values = vec![
                        d.calls.into(),
                        d.rejected.into(),
                        d.failed.into(),
                        d.last_call_at.into(),
                        d.last_error.map(super::storable).into(),
                        id.into(),
                    ];
                    txn.execute(super::stmt(backend, sql, values)).await?;
                }
                Ok(())
            })
        })
        .await
}
