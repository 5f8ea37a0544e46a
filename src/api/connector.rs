//! `actionsd.connector.v1.ConnectorService`: connections of the ZITADEL connector (one per
//! ZITADEL target) and their organization links (README, "Use actionsd with ZITADEL"). Instance RPCs
//! (IAM_OWNER), never intercepted by actionsd's own executions.

use super::action_v2::PayloadType;
use super::auth::Caller;
use super::json::{self};
use super::management::TextQueryMethod;
use super::messages::{GatewayError, ListDetails, ListQuery, ObjectDetails};
use super::{AppState, BodyMode, Rpc};
use crate::domain::time::format_micros;
use crate::domain::Duration;
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::actions::TextMethod;
use crate::store::connections::{self as store, ConnectionState as StoredState, FailMode as StoredFailMode};
use crate::store::crypto;
use entity::connection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SERVICE: &str = "actionsd.connector.v1.ConnectorService";

const R400: &str = "Invalid request (see the error table)";
const MAX_NAME: usize = 200;
const MAX_KEYS: usize = 2;
const KEY_LEN: std::ops::RangeInclusive<usize> = 16..=200;
const DEFAULT_TOLERANCE: Duration = Duration { nanos: 300_000_000_000 };
const DEFAULT_CALL_TIMEOUT: Duration = Duration { nanos: 10_000_000_000 };
const MIN_DURATION: Duration = Duration { nanos: 1_000_000_000 };
const MAX_TOLERANCE: Duration = Duration { nanos: 3_600_000_000_000 };

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    vec![
        Rpc::instance::<__path_create_connection>(SERVICE, Whole, rpc_call!(create_connection)),
        Rpc::instance::<__path_get_connection>(SERVICE, Ignored, rpc_call!(get_connection)),
        Rpc::instance::<__path_list_connections>(SERVICE, Whole, rpc_call!(list_connections)),
        Rpc::instance::<__path_update_connection>(SERVICE, Whole, rpc_call!(update_connection)),
        Rpc::instance::<__path_delete_connection>(SERVICE, Ignored, rpc_call!(delete_connection)),
        Rpc::instance::<__path_set_org_link>(SERVICE, Whole, rpc_call!(set_org_link)),
        Rpc::instance::<__path_remove_org_link>(SERVICE, Ignored, rpc_call!(remove_org_link)),
        Rpc::instance::<__path_list_org_links>(SERVICE, Whole, rpc_call!(list_org_links)),
        Rpc::instance::<__path_test_connection_call>(SERVICE, Whole, rpc_call!(test_connection_call)),
        Rpc::instance::<__path_rotate_connection_key>(SERVICE, Ignored, rpc_call!(rotate_connection_key)),
    ]
}

proto_enum!(
    /// Whether a connection runs actions.
    ConnectionState {
        Unspecified = 0 => "CONNECTION_STATE_UNSPECIFIED",
        Active = 1 => "CONNECTION_STATE_ACTIVE",
        Inactive = 2 => "CONNECTION_STATE_INACTIVE",
    }
);

proto_enum!(
    /// What a call answers when the actions cannot run.
    FailMode {
        Unspecified = 0 => "FAIL_MODE_UNSPECIFIED",
        Closed = 1 => "FAIL_MODE_CLOSED",
        Open = 2 => "FAIL_MODE_OPEN",
    }
);

// ---------- messages ----------

/// The ZITADEL API a connection may call (lookups, effects, key rotation).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZitadelApiInput {
    #[serde(default, alias = "base_url")]
    #[schema(example = "https://my-instance.zitadel.cloud")]
    pub base_url: String,
    /// Write-only: a personal access token. Absent: unchanged; "": removed.
    #[serde(default)]
    pub token: Option<String>,
    /// The id of the ZITADEL target that calls this connection (needed for key rotation).
    #[serde(default, alias = "zitadel_target_id")]
    pub zitadel_target_id: String,
}

/// The configuration of a connection, as CreateConnection and UpdateConnection take it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionInput {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub state: ConnectionState,
    /// Write-only: 0 to 2 keys of 16 to 200 characters. Absent (on update): unchanged.
    #[serde(default, alias = "signing_keys")]
    pub signing_keys: Option<Vec<String>>,
    #[serde(default, alias = "timestamp_tolerance", deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "300s")]
    pub timestamp_tolerance: Option<Duration>,
    #[serde(default, alias = "call_timeout", deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub call_timeout: Option<Duration>,
    #[serde(default, alias = "fail_mode")]
    pub fail_mode: FailMode,
    #[serde(default, alias = "default_org_id")]
    pub default_org_id: String,
    #[serde(default, alias = "zitadel_api", deserialize_with = "json::message_opt::deserialize")]
    pub zitadel_api: Option<ZitadelApiInput>,
    #[serde(default, alias = "payload_types")]
    pub payload_types: Vec<PayloadType>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateConnectionRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    #[serde(flatten, deserialize_with = "json::flat_message::deserialize")]
    pub config: ConnectionInput,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateConnectionResponse {
    pub id: String,
    pub details: ObjectDetails,
    /// Where the ZITADEL target must point (`ACTIONSD_PUBLIC_URL` + the call path).
    pub call_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailsResponse {
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZitadelApiView {
    pub base_url: String,
    #[serde(skip_serializing_if = "json::is_false")]
    pub has_token: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zitadel_target_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JweView {
    /// Add it to the ZITADEL target with AddPublicKey, then ActivatePublicKey.
    pub public_key_pem: String,
    /// The same PEM, base64-encoded (protobuf `bytes` fields take this form).
    pub public_key_pem_base64: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_call_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[schema(value_type = String, example = "12")]
    #[serde(serialize_with = "json::int64::serialize", skip_serializing_if = "json::is_zero_i64")]
    pub calls: i64,
    #[schema(value_type = String, example = "0")]
    #[serde(serialize_with = "json::int64::serialize", skip_serializing_if = "json::is_zero_i64")]
    pub rejected: i64,
    #[schema(value_type = String, example = "0")]
    #[serde(serialize_with = "json::int64::serialize", skip_serializing_if = "json::is_zero_i64")]
    pub failed: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rejection {
    pub time: String,
    pub reason: String,
    pub remote_addr: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub id: String,
    pub details: ObjectDetails,
    pub name: String,
    pub state: ConnectionState,
    pub call_url: String,
    /// Masked: "…" and the last 4 characters of each key.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signing_keys: Vec<String>,
    #[schema(example = "300s")]
    pub timestamp_tolerance: String,
    #[schema(example = "10s")]
    pub call_timeout: String,
    pub fail_mode: FailMode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_org_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zitadel_api: Option<ZitadelApiView>,
    pub payload_types: Vec<PayloadType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwe: Option<JweView>,
    pub health: Health,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub recent_rejections: Vec<Rejection>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetConnectionResponse {
    pub connection: Connection,
}

#[derive(Debug, Default, Deserialize)]
pub struct IdRequest {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ConnectionNameQuery {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub method: TextQueryMethod,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionQuery {
    #[serde(default, alias = "connection_name_query", deserialize_with = "json::message_opt::deserialize")]
    pub connection_name_query: Option<ConnectionNameQuery>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListConnectionsRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub queries: Vec<ConnectionQuery>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListConnectionsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Connection>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetOrgLinkRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    #[serde(default, alias = "zitadel_org_id")]
    #[schema(ignore)]
    pub zitadel_org_id: String,
    /// The actionsd organization whose actions run for this ZITADEL organization.
    #[serde(default, alias = "org_id")]
    pub org_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgLinkRequest {
    #[serde(default)]
    pub id: String,
    #[serde(default, alias = "zitadel_org_id")]
    pub zitadel_org_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListOrgLinksRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgLink {
    pub zitadel_org_id: String,
    pub org_id: String,
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListOrgLinksResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<OrgLink>,
}

// ---------- validation ----------

fn invalid(msg: &str, field: &str, why: &str) -> ApiError {
    ApiError::invalid(format!("invalid {msg}.{field}: {why}"))
}

fn parse_connection_id(raw: &str) -> ApiResult<i64> {
    crate::domain::id::parse(raw).ok_or_else(store::not_found)
}

fn org_not_found() -> ApiError {
    ApiError::not_found("CONN-0rgNf", "Organization not found")
}

async fn existing_org(s: &AppState, raw: &str) -> ApiResult<i64> {
    let id = crate::domain::id::parse(raw).ok_or_else(org_not_found)?;
    crate::store::orgs::get_org(&s.store.db, id).await?.ok_or_else(org_not_found)?;
    Ok(id)
}

fn encryption_key(s: &AppState) -> &str {
    s.config.encryption_key.as_deref().unwrap_or("")
}

fn stored_state(s: ConnectionState) -> StoredState {
    match s {
        ConnectionState::Inactive => StoredState::Inactive,
        ConnectionState::Unspecified | ConnectionState::Active => StoredState::Active,
    }
}

fn stored_fail_mode(f: FailMode) -> StoredFailMode {
    match f {
        FailMode::Open => StoredFailMode::Open,
        FailMode::Unspecified | FailMode::Closed => StoredFailMode::Closed,
    }
}

/// Checks a Create/UpdateConnection message; the configuration and secrets to store.
async fn check_input(
    s: &AppState,
    msg: &str,
    r: ConnectionInput,
    current: Option<&connection::Model>,
) -> ApiResult<(store::Config, store::Secrets)> {
    let len = r.name.chars().count();
    if len == 0 || len > MAX_NAME {
        return Err(invalid(msg, "Name", &format!("value length must be between 1 and {MAX_NAME} runes, inclusive")));
    }
    let key = encryption_key(s);
    let signing_keys = match r.signing_keys {
        None => None,
        Some(keys) => {
            if keys.len() > MAX_KEYS {
                return Err(invalid(msg, "SigningKeys", &format!("at most {MAX_KEYS} keys")));
            }
            let mut enc = Vec::with_capacity(keys.len());
            for (i, k) in keys.iter().enumerate() {
                if !KEY_LEN.contains(&k.chars().count()) {
                    return Err(invalid(
                        msg,
                        &format!("SigningKeys[{i}]"),
                        &format!(
                            "value length must be between {} and {} runes, inclusive",
                            KEY_LEN.start(),
                            KEY_LEN.end()
                        ),
                    ));
                }
                enc.push(crypto::encrypt(key, k).map_err(ApiError::internal)?);
            }
            Some(enc)
        }
    };
    let tolerance = r.timestamp_tolerance.unwrap_or(DEFAULT_TOLERANCE);
    if tolerance.nanos < MIN_DURATION.nanos || tolerance.nanos > MAX_TOLERANCE.nanos {
        return Err(invalid(msg, "TimestampTolerance", "must be between 1s and 3600s"));
    }
    let max_call = s.config.max_trigger_time;
    let default_call = if DEFAULT_CALL_TIMEOUT.nanos <= max_call.nanos { DEFAULT_CALL_TIMEOUT } else { max_call };
    let call_timeout = r.call_timeout.unwrap_or(default_call);
    if call_timeout.nanos < MIN_DURATION.nanos || call_timeout.nanos > max_call.nanos {
        return Err(invalid(msg, "CallTimeout", &format!("must be between 1s and {max_call}")));
    }
    let default_org_id = match r.default_org_id.trim() {
        "" => None,
        raw => Some(existing_org(s, raw).await?),
    };
    let (zitadel_base_url, zitadel_target_id, zitadel_token) = match r.zitadel_api {
        None => (None, None, Some(None)),
        Some(api) => {
            let url = super::absolute_http_url(&api.base_url)
                .map_err(|_| invalid(msg, "ZitadelApi.BaseUrl", "must be an absolute http or https URL"))?;
            // API paths are appended to it: a query, a fragment or credentials would end up in
            // the wrong place (the token goes in the Authorization header).
            if url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                return Err(invalid(
                    msg,
                    "ZitadelApi.BaseUrl",
                    "must be the API's base URL without a query, a fragment or credentials",
                ));
            }
            s.v2.policy.check_url_resolved(&url).await.map_err(|why| {
                ApiError::new(
                    Kind::InvalidArgument,
                    "Errors.Target.DeniedURL",
                    format!("invalid {msg}.ZitadelApi.BaseUrl: {why}"),
                )
            })?;
            let token = match api.token {
                None => None,
                Some(t) if t.is_empty() => Some(None),
                Some(t) => Some(Some(crypto::encrypt(key, &t).map_err(ApiError::internal)?)),
            };
            let target = Some(api.zitadel_target_id.trim().to_string()).filter(|t| !t.is_empty());
            // It becomes one path segment of ZITADEL's URL (escaped); a dot segment would be
            // resolved away by every URL parser, and ids are at most 200 characters, as ZITADEL's.
            if let Some(t) = &target {
                if t == "." || t == ".." || t.chars().nth(200).is_some() {
                    return Err(invalid(msg, "ZitadelApi.ZitadelTargetId", "must be a ZITADEL target id"));
                }
            }
            (Some(api.base_url.trim_end_matches('/').to_string()), target, token)
        }
    };
    let mut payload_types: Vec<i32> = Vec::new();
    for p in if r.payload_types.is_empty() { vec![PayloadType::Json] } else { r.payload_types } {
        let n = match p {
            PayloadType::Unspecified | PayloadType::Json => PayloadType::Json.number(),
            other => other.number(),
        } as i32;
        if !payload_types.contains(&n) {
            payload_types.push(n);
        }
    }
    let needs_api = payload_types.iter().any(|n| *n != PayloadType::Json.number() as i32);
    if needs_api && zitadel_base_url.is_none() {
        return Err(invalid(msg, "PayloadTypes", "PAYLOAD_TYPE_JWT and PAYLOAD_TYPE_JWE need zitadelApi.baseUrl"));
    }
    let wants_jwe = payload_types.contains(&(PayloadType::Jwe.number() as i32));
    let has_jwe = current.is_some_and(|c| c.jwe_private_key_enc.is_some());
    let jwe = match (wants_jwe, has_jwe) {
        (true, false) => {
            // RSA key generation is CPU-bound: off the async executor.
            let pair = tokio::task::spawn_blocking(crate::v2::jose::SigningKey::generate)
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?;
            let private = pair.to_pkcs8_pem().map_err(ApiError::internal)?;
            let public = pair.public_key_pem().map_err(ApiError::internal)?;
            Some(Some((crypto::encrypt(key, &private).map_err(ApiError::internal)?, public)))
        }
        (false, true) => Some(None),
        _ => None,
    };
    // No zitadelApi at all removes the token; with zitadelApi and no token given, it stays.
    let zitadel_token = if zitadel_base_url.is_none() { Some(None) } else { zitadel_token };
    let config = store::Config {
        name: r.name,
        state: stored_state(r.state),
        timestamp_tolerance_nanos: tolerance.nanos,
        call_timeout_nanos: call_timeout.nanos,
        fail_mode: stored_fail_mode(r.fail_mode),
        default_org_id,
        zitadel_base_url,
        zitadel_target_id,
        payload_types,
    };
    Ok((config, store::Secrets { signing_keys, zitadel_token, jwe }))
}

/// `ACTIONSD_PUBLIC_URL` + the call path (only the path when the setting is unset).
fn call_url(s: &AppState, id: i64) -> String {
    let base = s.config.public_url.as_deref().unwrap_or("").trim_end_matches('/');
    format!("{base}/connector/v1/connections/{id}/call")
}

fn mask(s: &AppState, enc: &str) -> String {
    let plain = crypto::decrypt(encryption_key(s), enc).unwrap_or_default();
    let chars: Vec<char> = plain.chars().collect();
    let tail: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    format!("…{tail}")
}

async fn connection_msg(s: &AppState, c: connection::Model) -> ApiResult<Connection> {
    let now = crate::domain::time::now_micros();
    let rejections = store::rejections(&s.store.db, c.id).await?;
    let keys = store::keys_of(&c)
        .into_iter()
        .filter(|k| k.expires_at.is_none_or(|at| at > now))
        .map(|k| mask(s, &k.enc))
        .collect();
    let payload_types =
        store::payload_types_of(&c).into_iter().filter_map(|n| PayloadType::from_number(i64::from(n))).collect();
    Ok(Connection {
        id: c.id.to_string(),
        details: ObjectDetails::read(c.sequence, c.created_at, c.changed_at, s.default_org),
        call_url: call_url(s, c.id),
        name: c.name,
        state: match c.state {
            StoredState::Active => ConnectionState::Active,
            StoredState::Inactive => ConnectionState::Inactive,
        },
        signing_keys: keys,
        timestamp_tolerance: Duration { nanos: c.timestamp_tolerance_nanos }.to_string(),
        call_timeout: Duration { nanos: c.call_timeout_nanos }.to_string(),
        fail_mode: match c.fail_mode {
            StoredFailMode::Closed => FailMode::Closed,
            StoredFailMode::Open => FailMode::Open,
        },
        default_org_id: c.default_org_id.map(|o| o.to_string()),
        zitadel_api: c.zitadel_base_url.map(|base_url| ZitadelApiView {
            base_url,
            has_token: c.zitadel_token_enc.is_some(),
            zitadel_target_id: c.zitadel_target_id,
        }),
        payload_types,
        jwe: c.jwe_public_key_pem.map(|pem| {
            use base64::Engine;
            JweView {
                public_key_pem_base64: base64::engine::general_purpose::STANDARD.encode(pem.as_bytes()),
                public_key_pem: pem,
            }
        }),
        health: Health {
            last_call_date: c.last_call_at.map(format_micros),
            last_error: Some(c.last_error).filter(|e| !e.is_empty()),
            calls: c.calls,
            rejected: c.rejected,
            failed: c.failed,
        },
        recent_rejections: rejections
            .into_iter()
            .map(|r| Rejection { time: format_micros(r.at), reason: r.reason, remote_addr: r.remote_addr })
            .collect(),
    })
}

// ---------- handlers ----------

#[utoipa::path(post, path = "/connector/v1/connections", tag = "ConnectorService",
    operation_id = "ConnectorService_CreateConnection", summary = "Create a connection (one ZITADEL target)",
    request_body = ConnectionInput,
    responses((status = 200, body = CreateConnectionResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "defaultOrgId names no organization (CONN-0rgNf)", body = GatewayError),
        (status = 409, description = "A connection with this name exists (CONN-n4m3x)", body = GatewayError)))]
pub async fn create_connection(s: AppState, c: Caller, r: ConnectionInput) -> ApiResult<CreateConnectionResponse> {
    let (config, secrets) = check_input(&s, "CreateConnectionRequest", r, None).await?;
    let model = store::create(&s.store, config, secrets, c.token_id, c.token_org).await?;
    s.connector_cache.invalidate(model.id);
    Ok(CreateConnectionResponse {
        id: model.id.to_string(),
        details: ObjectDetails::written(model.sequence, model.created_at, c.token_org),
        call_url: call_url(&s, model.id),
    })
}

#[utoipa::path(get, path = "/connector/v1/connections/{id}", tag = "ConnectorService",
    operation_id = "ConnectorService_GetConnection", summary = "Get a connection (secrets masked)",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = GetConnectionResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = GatewayError)))]
pub async fn get_connection(s: AppState, _c: Caller, r: IdRequest) -> ApiResult<GetConnectionResponse> {
    let id = parse_connection_id(&r.id)?;
    let model = store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    Ok(GetConnectionResponse { connection: connection_msg(&s, model).await? })
}

#[utoipa::path(post, path = "/connector/v1/connections/_search", tag = "ConnectorService",
    operation_id = "ConnectorService_ListConnections", summary = "Search connections (by creation, newest first unless asc)",
    request_body = ListConnectionsRequest,
    responses((status = 200, body = ListConnectionsResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError)))]
pub async fn list_connections(
    s: AppState,
    _c: Caller,
    r: ListConnectionsRequest,
) -> ApiResult<ListConnectionsResponse> {
    let (offset, limit, asc) = ListQuery::bounds(&r.query)?;
    let mut filters = Vec::new();
    for (i, q) in r.queries.into_iter().enumerate() {
        let Some(q) = q.connection_name_query else {
            return Err(ApiError::invalid(format!(
                "invalid ListConnectionsRequest.Queries[{i}]: embedded message failed validation | caused by: invalid ConnectionQuery.Query: value is required"
            )));
        };
        // Folded once for all the rows (an unknown method matches nothing).
        filters.push(TextMethod::from_number(q.method.number()).map(|m| m.matcher(&q.name)));
    }
    let mut rows: Vec<connection::Model> = store::all(&s.store.db)
        .await?
        .into_iter()
        .filter(|c| filters.iter().all(|m| m.as_ref().is_some_and(|m| m.is_match(&c.name))))
        .collect();
    if !asc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let position = s.store.last_position().await?;
    let mut result = Vec::new();
    for c in rows.into_iter().skip(usize::try_from(offset).unwrap_or(usize::MAX)).take(limit as usize) {
        result.push(connection_msg(&s, c).await?);
    }
    Ok(ListConnectionsResponse { details: ListDetails::new(total, position), result })
}

#[utoipa::path(put, path = "/connector/v1/connections/{id}", tag = "ConnectorService",
    operation_id = "ConnectorService_UpdateConnection",
    summary = "Replace a connection's configuration (absent write-only secrets stay)",
    params(("id" = String, Path, description = "Connection id")),
    request_body = ConnectionInput,
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "Connection or default organization not found", body = GatewayError),
        (status = 409, description = "A connection with this name exists (CONN-n4m3x)", body = GatewayError)))]
pub async fn update_connection(s: AppState, c: Caller, r: UpdateConnectionRequest) -> ApiResult<DetailsResponse> {
    let id = parse_connection_id(&r.id)?;
    let current = store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    let (config, secrets) = check_input(&s, "UpdateConnectionRequest", r.config, Some(&current)).await?;
    let model = store::update(&s.store, id, config, secrets, c.token_id, c.token_org).await?;
    s.connector_cache.invalidate(id);
    Ok(DetailsResponse {
        details: ObjectDetails {
            sequence: model.sequence,
            creation_date: None,
            change_date: Some(format_micros(model.changed_at)),
            resource_owner: c.token_org.to_string(),
        },
    })
}

#[utoipa::path(delete, path = "/connector/v1/connections/{id}", tag = "ConnectorService",
    operation_id = "ConnectorService_DeleteConnection", summary = "Delete a connection and its organization links",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = DetailsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = GatewayError)))]
pub async fn delete_connection(s: AppState, c: Caller, r: IdRequest) -> ApiResult<DetailsResponse> {
    let id = parse_connection_id(&r.id)?;
    let written = store::delete(&s.store, id, c.token_id, c.token_org).await?.ok_or_else(store::not_found)?;
    s.connector_cache.invalidate(id);
    Ok(DetailsResponse { details: ObjectDetails::changed(written.sequence, written.created_at, c.token_org) })
}

#[utoipa::path(put, path = "/connector/v1/connections/{id}/orgs/{zitadelOrgId}", tag = "ConnectorService",
    operation_id = "ConnectorService_SetOrgLink",
    summary = "Run an actionsd organization's actions for calls of a ZITADEL organization",
    params(("id" = String, Path, description = "Connection id"),
        ("zitadelOrgId" = String, Path, description = "ZITADEL organization id")),
    request_body = SetOrgLinkRequest,
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "Connection (CONN-n0tFd) or organization (CONN-0rgNf) not found", body = GatewayError)))]
pub async fn set_org_link(s: AppState, c: Caller, r: SetOrgLinkRequest) -> ApiResult<DetailsResponse> {
    let id = parse_connection_id(&r.id)?;
    let zitadel_org = r.zitadel_org_id.trim().to_string();
    if zitadel_org.is_empty() || zitadel_org.len() > store::MAX_ZITADEL_ORG_ID {
        return Err(invalid(
            "SetOrgLinkRequest",
            "ZitadelOrgId",
            "value length must be between 1 and 200 runes, inclusive",
        ));
    }
    if r.org_id.trim().is_empty() {
        return Err(invalid("SetOrgLinkRequest", "OrgId", "value is required"));
    }
    store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    let org = existing_org(&s, r.org_id.trim()).await?;
    let written = store::set_link(&s.store, id, zitadel_org, org, c.token_id, c.token_org).await?;
    s.connector_cache.invalidate(id);
    Ok(DetailsResponse { details: ObjectDetails::written(written.sequence, written.created_at, c.token_org) })
}

#[utoipa::path(delete, path = "/connector/v1/connections/{id}/orgs/{zitadelOrgId}", tag = "ConnectorService",
    operation_id = "ConnectorService_RemoveOrgLink", summary = "Remove an organization link",
    params(("id" = String, Path, description = "Connection id"),
        ("zitadelOrgId" = String, Path, description = "ZITADEL organization id")),
    responses((status = 200, body = DetailsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Connection (CONN-n0tFd) or link (CONN-l1nkN) not found", body = GatewayError)))]
pub async fn remove_org_link(s: AppState, c: Caller, r: OrgLinkRequest) -> ApiResult<DetailsResponse> {
    let id = parse_connection_id(&r.id)?;
    let written = store::remove_link(&s.store, id, r.zitadel_org_id, c.token_id, c.token_org)
        .await?
        .ok_or_else(|| ApiError::not_found("CONN-l1nkN", "Organization link not found"))?;
    s.connector_cache.invalidate(id);
    Ok(DetailsResponse { details: ObjectDetails::changed(written.sequence, written.created_at, c.token_org) })
}

#[utoipa::path(post, path = "/connector/v1/connections/{id}/orgs/_search", tag = "ConnectorService",
    operation_id = "ConnectorService_ListOrgLinks", summary = "List a connection's organization links",
    params(("id" = String, Path, description = "Connection id")),
    request_body = ListOrgLinksRequest,
    responses((status = 200, body = ListOrgLinksResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = GatewayError)))]
pub async fn list_org_links(s: AppState, c: Caller, r: ListOrgLinksRequest) -> ApiResult<ListOrgLinksResponse> {
    let id = parse_connection_id(&r.id)?;
    let (offset, limit, asc) = ListQuery::bounds(&r.query)?;
    store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    let mut links = store::links(&s.store.db, id).await?;
    if !asc {
        links.reverse();
    }
    let total = links.len() as u64;
    let position = s.store.last_position().await?;
    let result = links
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(limit as usize)
        .map(|l| OrgLink {
            zitadel_org_id: l.zitadel_org_id,
            org_id: l.org_id.to_string(),
            details: ObjectDetails::read(l.sequence, l.created_at, l.changed_at, c.token_org),
        })
        .collect();
    Ok(ListOrgLinksResponse { details: ListDetails::new(total, position), result })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct TestConnectionCallRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    /// A ZITADEL Actions v2 payload as ZITADEL would send it (no signature needed).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestConnectionCallResponse {
    /// What the call would answer ZITADEL; left out when that answer is an empty body (a
    /// request or response payload without its message object is passed through as one).
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>, required = false)]
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub reply: serde_json::Value,
    /// The payload's condition (`function/<name>`, `request/<method>`, …); empty when none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(example = "2")]
    pub flow_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(example = "5")]
    pub trigger_type: String,
    /// The actionsd organization whose actions ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub outcome: super::execute::Outcome,
    /// The action runs, with their logs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<super::execute::RunSummary>,
    /// Writes through the ZITADEL API a real call would queue (`{kind: "userGrant" | "metadata",
    /// userId, body}`, a metadata one also with its `key`); the dry run makes none.
    #[schema(value_type = Vec<std::collections::HashMap<String, serde_json::Value>>)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_api_effects: Vec<serde_json::Value>,
    /// What a real call would record as the run's warnings (lookups that failed, effects that
    /// cannot be applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[utoipa::path(post, path = "/connector/v1/connections/{id}/_test", tag = "ConnectorService",
    operation_id = "ConnectorService_TestConnectionCall",
    summary = "Dry-run a ZITADEL payload through a connection: the reply, the runs and their logs (nothing stored)",
    params(("id" = String, Path, description = "Connection id")),
    request_body = TestConnectionCallRequest,
    responses((status = 200, body = TestConnectionCallResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = GatewayError),
        (status = 503, description = "No sandbox worker free, or the database is unavailable", body = GatewayError)))]
pub async fn test_connection_call(
    s: AppState,
    _c: Caller,
    r: TestConnectionCallRequest,
) -> ApiResult<TestConnectionCallResponse> {
    let id = parse_connection_id(&r.id)?;
    let connection = store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    let payload = match r.payload {
        Some(p @ serde_json::Value::Object(_)) => p,
        _ => return Err(invalid("TestConnectionCallRequest", "Payload", "must be a JSON object (ZITADEL's payload)")),
    };
    let condition = crate::service::connector::Condition::of(&payload);
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_nanos(connection.call_timeout_nanos.max(0) as u64);
    let dry = super::connector_call::evaluate(&s, &connection, condition.as_ref(), &payload, deadline).await?;
    let (outcome, runs) = match &dry.report {
        Some(report) => {
            (report.outcome.into(), report.runs.iter().map(|r| super::execute::summary(r, None, true)).collect())
        }
        None => (super::execute::Outcome::Succeeded, Vec::new()),
    };
    let trigger = dry.mapped.as_ref().map(|m| m.trigger);
    let reply = super::connector_call::reply_after(&connection, condition.as_ref(), &payload, &dry, deadline);
    Ok(TestConnectionCallResponse {
        reply,
        condition: condition.as_ref().map(crate::service::connector::Condition::label).unwrap_or_default(),
        flow_type: trigger.map(|t| t.flow().0.to_string()).unwrap_or_default(),
        trigger_type: trigger.map(|t| t.trigger_type().0.to_string()).unwrap_or_default(),
        org_id: dry.org.map(|o| o.to_string()),
        outcome,
        runs,
        pending_api_effects: dry.api_effects.iter().map(|e| e.preview()).collect(),
        warnings: dry.mapped.map(|m| m.warnings).unwrap_or_default(),
    })
}

/// How long ZITADEL's UpdateTarget may take during a rotation.
const ROTATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[utoipa::path(post, path = "/connector/v1/connections/{id}/_rotate_key", tag = "ConnectorService",
    operation_id = "ConnectorService_RotateConnectionKey",
    summary = "Rotate the ZITADEL target's signing key without a gap",
    description = "Calls ZITADEL's UpdateTarget with expirationSigningKey 0s (the connection's zitadelApi token), adds the \
        returned key, and keeps the keys there were until timestampTolerance has passed.",
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = "No zitadelApi token or zitadelTargetId (CONN-r0t8k), ZITADEL refused (CONN-r0t8z), or another rotation of the connection is in flight (CONN-r0t8b)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = GatewayError)))]
pub async fn rotate_connection_key(s: AppState, c: Caller, r: IdRequest) -> ApiResult<DetailsResponse> {
    let id = parse_connection_id(&r.id)?;
    let connection = store::get(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    let (Some(base), Some(token_enc), Some(target)) = (
        connection.zitadel_base_url.as_deref(),
        connection.zitadel_token_enc.as_deref(),
        connection.zitadel_target_id.as_deref(),
    ) else {
        return Err(ApiError::precondition(
            "CONN-r0t8k",
            "RotateConnectionKey needs zitadelApi with a token and a zitadelTargetId",
        ));
    };
    let token = crypto::decrypt(encryption_key(&s), token_enc).map_err(ApiError::internal)?;
    // One rotation of a connection at a time (on every replica): ZITADEL signs with the key it
    // issued last, which two rotations at once could store in the wrong order, or drop.
    let claim_until = crate::domain::time::now_micros() + (ROTATE_TIMEOUT + ROTATE_MARGIN).as_micros() as i64;
    if !store::begin_rotation(&s.store, id, claim_until).await? {
        return Err(ApiError::precondition(
            "CONN-r0t8b",
            "A key rotation of this connection is in progress: try again when it has ended",
        ));
    }
    let rotated = rotate_at_zitadel(&s, &c, &connection, base, &token, target).await;
    if rotated.is_err() {
        // The claim lapses by itself too; giving it up at once lets the next rotation start.
        let _ = store::end_rotation(&s.store, id).await;
    }
    rotated
}

/// Beyond ZITADEL's answer: the time a rotation's claim covers for storing the key.
const ROTATE_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// ZITADEL's UpdateTarget with `expirationSigningKey: 0s`, then the new key stored beside the old.
async fn rotate_at_zitadel(
    s: &AppState,
    c: &Caller,
    connection: &entity::connection::Model,
    base: &str,
    token: &str,
    target: &str,
) -> ApiResult<DetailsResponse> {
    let id = connection.id;
    let refused = |why: String| ApiError::precondition("CONN-r0t8z", format!("ZITADEL's UpdateTarget failed: {why}"));
    let url = format!("{base}/v2/actions/targets/{}", crate::service::zitadel_api::segment(target));
    let answer =
        s.v2.client
            .post(&url)
            .bearer_auth(token)
            .timeout(ROTATE_TIMEOUT)
            .json(&serde_json::json!({"expirationSigningKey": "0s"}))
            .send()
            .await
            .map_err(|e| refused(crate::runtime::http::describe_error(&e)))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let message = body.get("message").and_then(serde_json::Value::as_str).unwrap_or("");
        return Err(refused(format!("HTTP {} {message}", status.as_u16())));
    }
    let new_key = body
        .get("signingKey")
        .or_else(|| body.get("signing_key"))
        .and_then(serde_json::Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| refused("the answer has no signingKey".into()))?;
    // Held to the rule of configured keys: a key the connection could not be given is not stored.
    let chars = new_key.chars().count();
    if !(16..=200).contains(&chars) || new_key.contains('\0') {
        return Err(refused(format!(
            "the answer's signingKey is not a key of 16 to 200 characters without NUL ({chars} characters)"
        )));
    }
    let enc = crypto::encrypt(encryption_key(s), new_key).map_err(ApiError::internal)?;
    let old_until = crate::domain::time::now_micros() + connection.timestamp_tolerance_nanos / 1000;
    let written = store::add_rotated_key(&s.store, id, enc, old_until, c.token_id, c.token_org).await?;
    s.connector_cache.invalidate(id);
    Ok(DetailsResponse { details: ObjectDetails::changed(written.sequence, written.created_at, c.token_org) })
}
