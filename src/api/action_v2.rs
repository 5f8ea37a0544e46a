//! `zitadel.action.v2.ActionService`: Actions v2 targets and executions (IAM_OWNER only).
//! Errors carry the contract's key (`Errors.Target.Invalid`, …) as their id, so it appears in
//! the message and as `details[0].id`.

use super::auth::Caller;
use super::json::{self, is_false, is_zero_u64};
use super::messages::GatewayError;
use super::{AppState, BodyMode, Rpc};
use crate::domain::fold::fold;
use crate::domain::time::format_micros;
use crate::domain::Duration;
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::{crypto, targets as store};
use axum::http::Method;
use entity::{execution, target};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SERVICE: &str = "zitadel.action.v2.ActionService";

/// Functions a `function` condition may name.
pub const FUNCTIONS: &[&str] = &["preaccesstoken", "presamlresponse", "preuserinfo"];

/// Event types an `event` condition may name (README §5).
pub const EVENT_TYPES: &[&str] = &[
    "action.added",
    "action.changed",
    "action.deactivated",
    "action.reactivated",
    "action.removed",
    "org.added",
    "org.flow.trigger_actions.set",
    "org.flow.trigger_actions.cascade.removed",
    "org.flow.cleared",
    "token.added",
    "token.removed",
    "target.added",
    "target.changed",
    "target.removed",
    "target.key.added",
    "target.key.activated",
    "target.key.deactivated",
    "target.key.removed",
    "execution.v2.set",
    "execution.v2.removed",
];

const MAX_NAME: usize = 1000;
const MAX_ENDPOINT: usize = 2048;
const MAX_TIMEOUT: Duration = Duration::from_secs(270);
const DEFAULT_LIMIT: u64 = 100;
const MAX_LIMIT: u64 = 1000;
const SIGNING_KEY_LEN: usize = 36;
/// Bounds of a public key (the PEM text, after base64 decoding).
const MAX_PUBLIC_KEY_BYTES: usize = 8192;

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    let rpc = |method, http, path, body, call| Rpc::instance(SERVICE, method, http, path, body, call);
    vec![
        rpc("CreateTarget", Method::POST, "/v2/actions/targets", Whole, rpc_call!(create_target)),
        rpc("UpdateTarget", Method::POST, "/v2/actions/targets/{id}", Whole, rpc_call!(update_target)),
        rpc("DeleteTarget", Method::DELETE, "/v2/actions/targets/{id}", Ignored, rpc_call!(delete_target)),
        rpc("GetTarget", Method::GET, "/v2/actions/targets/{id}", Ignored, rpc_call!(get_target)),
        rpc("ListTargets", Method::POST, "/v2/actions/targets/search", Whole, rpc_call!(list_targets)),
        rpc("SetExecution", Method::PUT, "/v2/actions/executions", Whole, rpc_call!(set_execution)),
        rpc("ListExecutions", Method::POST, "/v2/actions/executions/search", Whole, rpc_call!(list_executions)),
        rpc(
            "ListExecutionFunctions",
            Method::GET,
            "/v2/actions/executions/functions",
            Ignored,
            rpc_call!(list_execution_functions),
        ),
        rpc(
            "ListExecutionMethods",
            Method::GET,
            "/v2/actions/executions/methods",
            Ignored,
            rpc_call!(list_execution_methods),
        ),
        rpc(
            "ListExecutionServices",
            Method::GET,
            "/v2/actions/executions/services",
            Ignored,
            rpc_call!(list_execution_services),
        ),
        rpc(
            "AddPublicKey",
            Method::POST,
            "/v2/actions/targets/{targetId}/publickeys",
            Whole,
            rpc_call!(add_public_key),
        ),
        rpc(
            "ActivatePublicKey",
            Method::POST,
            "/v2/actions/targets/{targetId}/publickeys/{keyId}/activate",
            Ignored,
            rpc_call!(activate_public_key),
        ),
        rpc(
            "DeactivatePublicKey",
            Method::POST,
            "/v2/actions/targets/{targetId}/publickeys/{keyId}/deactivate",
            Ignored,
            rpc_call!(deactivate_public_key),
        ),
        rpc(
            "RemovePublicKey",
            Method::DELETE,
            "/v2/actions/targets/{targetId}/publickeys/{keyId}",
            Ignored,
            rpc_call!(remove_public_key),
        ),
        rpc(
            "ListPublicKeys",
            Method::POST,
            "/v2/actions/targets/{targetId}/publickeys/search",
            Whole,
            rpc_call!(list_public_keys),
        ),
    ]
}

fn err(kind: Kind, key: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, key, message)
}

fn invalid_target(message: impl Into<String>) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Target.Invalid", message)
}

fn invalid_execution(message: impl Into<String>) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Execution.Invalid", message)
}

proto_enum!(
    /// How a target's payload is encoded (ZITADEL numbering).
    PayloadType {
        Unspecified = 0 => "PAYLOAD_TYPE_UNSPECIFIED",
        Json = 1 => "PAYLOAD_TYPE_JSON",
        Jwt = 2 => "PAYLOAD_TYPE_JWT",
        Jwe = 3 => "PAYLOAD_TYPE_JWE",
    }
);

proto_enum!(
    /// How a text filter compares (ZITADEL numbering).
    TextFilterMethod {
        Equals = 0 => "TEXT_FILTER_METHOD_EQUALS",
        EqualsIgnoreCase = 1 => "TEXT_FILTER_METHOD_EQUALS_IGNORE_CASE",
        StartsWith = 2 => "TEXT_FILTER_METHOD_STARTS_WITH",
        StartsWithIgnoreCase = 3 => "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE",
        Contains = 4 => "TEXT_FILTER_METHOD_CONTAINS",
        ContainsIgnoreCase = 5 => "TEXT_FILTER_METHOD_CONTAINS_IGNORE_CASE",
        EndsWith = 6 => "TEXT_FILTER_METHOD_ENDS_WITH",
        EndsWithIgnoreCase = 7 => "TEXT_FILTER_METHOD_ENDS_WITH_IGNORE_CASE",
    }
);

proto_enum!(
    /// Column to sort ListTargets by (ZITADEL numbering; unspecified = creation order).
    TargetFieldName {
        Unspecified = 0 => "TARGET_FIELD_NAME_UNSPECIFIED",
        Id = 1 => "TARGET_FIELD_NAME_ID",
        CreatedDate = 2 => "TARGET_FIELD_NAME_CREATED_DATE",
        ChangedDate = 3 => "TARGET_FIELD_NAME_CHANGED_DATE",
        Name = 4 => "TARGET_FIELD_NAME_NAME",
        TargetType = 5 => "TARGET_FIELD_NAME_TARGET_TYPE",
        Url = 6 => "TARGET_FIELD_NAME_URL",
        Timeout = 7 => "TARGET_FIELD_NAME_TIMEOUT",
        InterruptOnError = 8 => "TARGET_FIELD_NAME_INTERRUPT_ON_ERROR",
    }
);

proto_enum!(
    /// Column to sort ListExecutions by (ZITADEL numbering; unspecified = by execution id).
    ExecutionFieldName {
        Unspecified = 0 => "EXECUTION_FIELD_NAME_UNSPECIFIED",
        Id = 1 => "EXECUTION_FIELD_NAME_ID",
        CreatedDate = 2 => "EXECUTION_FIELD_NAME_CREATED_DATE",
        ChangedDate = 3 => "EXECUTION_FIELD_NAME_CHANGED_DATE",
    }
);

proto_enum!(
    /// The kind of an execution's condition.
    ExecutionType {
        Unspecified = 0 => "EXECUTION_TYPE_UNSPECIFIED",
        Request = 1 => "EXECUTION_TYPE_REQUEST",
        Response = 2 => "EXECUTION_TYPE_RESPONSE",
        Event = 3 => "EXECUTION_TYPE_EVENT",
        Function = 4 => "EXECUTION_TYPE_FUNCTION",
    }
);

// ---------- messages ----------

/// A webhook target: the reply body is only read for forwarded errors.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestWebhook {
    #[serde(default, alias = "interrupt_on_error", skip_serializing_if = "is_false")]
    pub interrupt_on_error: bool,
}

/// A call target: the reply body is applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestCall {
    #[serde(default, alias = "interrupt_on_error", skip_serializing_if = "is_false")]
    pub interrupt_on_error: bool,
}

/// An asynchronous target: the caller does not wait.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestAsync {}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTargetRequest {
    /// 1..1000 characters, unique in the instance.
    #[serde(default)]
    #[schema(example = "audit-hook")]
    pub name: String,
    #[serde(default, alias = "rest_webhook", deserialize_with = "json::message_opt::deserialize")]
    pub rest_webhook: Option<RestWebhook>,
    #[serde(default, alias = "rest_call", deserialize_with = "json::message_opt::deserialize")]
    pub rest_call: Option<RestCall>,
    #[serde(default, alias = "rest_async", deserialize_with = "json::message_opt::deserialize")]
    pub rest_async: Option<RestAsync>,
    /// Required, > 0s and ≤ 270s.
    #[serde(default, deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Duration>,
    /// An absolute http(s) URL, at most 2048 characters.
    #[serde(default)]
    #[schema(example = "https://hooks.example.com/zitadel")]
    pub endpoint: String,
    #[serde(default, alias = "payload_type")]
    pub payload_type: Option<PayloadType>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTargetResponse {
    pub id: String,
    pub creation_date: String,
    /// The key that signs calls (`ZITADEL-Signature`).
    pub signing_key: String,
}

/// Partial update: an absent field is unchanged, a present one is applied and validated.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTargetRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, alias = "rest_webhook", deserialize_with = "json::message_opt::deserialize")]
    pub rest_webhook: Option<RestWebhook>,
    #[serde(default, alias = "rest_call", deserialize_with = "json::message_opt::deserialize")]
    pub rest_call: Option<RestCall>,
    #[serde(default, alias = "rest_async", deserialize_with = "json::message_opt::deserialize")]
    pub rest_async: Option<RestAsync>,
    #[serde(default, deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Present: rotate the signing key. `"0s"`: the old key stops being valid at once; `"<d>s"` with
    /// d > 0: the old key stays valid for d (calls carry both signatures until then).
    #[serde(default, alias = "expiration_signing_key", deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "0s")]
    pub expiration_signing_key: Option<Duration>,
    #[serde(default, alias = "payload_type")]
    pub payload_type: Option<PayloadType>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateTargetResponse {
    pub change_date: String,
    /// The new signing key, when it was rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TargetIdRequest {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteTargetResponse {
    /// Absent when there was no such target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub id: String,
    pub creation_date: String,
    pub change_date: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_webhook: Option<RestWebhook>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_call: Option<RestCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rest_async: Option<RestAsync>,
    #[schema(example = "10s")]
    pub timeout: String,
    pub endpoint: String,
    pub signing_key: String,
    pub payload_type: PayloadType,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetTargetResponse {
    pub target: Target,
}

/// Paging: `limit` 0 means 100; more than 1000 is refused.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PaginationRequest {
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    #[schema(value_type = String, example = "0")]
    pub offset: u64,
    #[serde(default, deserialize_with = "json::uint32::deserialize")]
    #[schema(value_type = u32, example = 100)]
    pub limit: u32,
    #[serde(default)]
    pub asc: bool,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaginationResponse {
    #[serde(skip_serializing_if = "is_zero_u64", serialize_with = "json::uint64_str::serialize")]
    #[schema(value_type = String, example = "2")]
    pub total_result: u64,
    #[serde(skip_serializing_if = "is_zero_u64", serialize_with = "json::uint64_str::serialize")]
    #[schema(value_type = String, example = "100")]
    pub applied_limit: u64,
}

/// (offset, limit, asc) after the defaults and bounds.
pub(super) fn page_bounds(p: &Option<PaginationRequest>) -> ApiResult<(u64, u64, bool)> {
    let p = p.clone().unwrap_or_default();
    let limit = match p.limit as u64 {
        0 => DEFAULT_LIMIT,
        n if n > MAX_LIMIT => {
            return Err(err(Kind::InvalidArgument, "Errors.Query.LimitExceeded", "Limit exceeded (max 1000)"))
        }
        n => n,
    };
    Ok((p.offset, limit, p.asc))
}

fn page<T>(mut rows: Vec<T>, offset: u64, limit: u64) -> Vec<T> {
    let start = (offset.min(rows.len() as u64)) as usize;
    let mut rest = rows.split_off(start);
    rest.truncate(limit as usize);
    rest
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetNameFilter {
    #[serde(default, alias = "target_name")]
    pub target_name: String,
    #[serde(default)]
    pub method: TextFilterMethod,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InTargetIdsFilter {
    #[serde(default, alias = "target_ids")]
    pub target_ids: Vec<String>,
}

/// Exactly one filter per entry; entries are combined with AND.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetSearchFilter {
    #[serde(default, alias = "target_name_filter", deserialize_with = "json::message_opt::deserialize")]
    pub target_name_filter: Option<TargetNameFilter>,
    #[serde(default, alias = "in_target_ids_filter", deserialize_with = "json::message_opt::deserialize")]
    pub in_target_ids_filter: Option<InTargetIdsFilter>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListTargetsRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub pagination: Option<PaginationRequest>,
    #[serde(default, alias = "sorting_column")]
    pub sorting_column: TargetFieldName,
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub filters: Vec<TargetSearchFilter>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListTargetsResponse {
    pub pagination: PaginationResponse,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
}

/// `{method}` (`/<service>/<method>`), `{service}` or `{all: true}`: exactly one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RequestExecution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "/zitadel.management.v1.ManagementService/CreateAction")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FunctionExecution {
    #[serde(default)]
    #[schema(example = "preuserinfo")]
    pub name: String,
}

/// `{event}` (an event type), `{group}` (a dot-prefix of event types) or `{all: true}`: exactly one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EventExecution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "action.added")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
}

/// Exactly one of request, response, function, event.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json::message_opt::deserialize")]
    pub request: Option<RequestExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json::message_opt::deserialize")]
    pub response: Option<RequestExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json::message_opt::deserialize")]
    pub function: Option<FunctionExecution>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "json::message_opt::deserialize")]
    pub event: Option<EventExecution>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetExecutionRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub condition: Option<Condition>,
    /// Target ids in call order; `[]` clears the execution.
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetExecutionResponse {
    pub set_date: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct InConditionsFilter {
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTypeFilter {
    #[serde(default, alias = "execution_type")]
    pub execution_type: ExecutionType,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetFilter {
    #[serde(default, alias = "target_id")]
    pub target_id: String,
}

/// Exactly one filter per entry; entries are combined with AND.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionSearchFilter {
    #[serde(default, alias = "in_conditions_filter", deserialize_with = "json::message_opt::deserialize")]
    pub in_conditions_filter: Option<InConditionsFilter>,
    #[serde(default, alias = "execution_type_filter", deserialize_with = "json::message_opt::deserialize")]
    pub execution_type_filter: Option<ExecutionTypeFilter>,
    #[serde(default, alias = "target_filter", deserialize_with = "json::message_opt::deserialize")]
    pub target_filter: Option<TargetFilter>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListExecutionsRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub pagination: Option<PaginationRequest>,
    #[serde(default, alias = "sorting_column")]
    pub sorting_column: ExecutionFieldName,
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub filters: Vec<ExecutionSearchFilter>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub condition: Condition,
    pub targets: Vec<String>,
    pub creation_date: String,
    pub change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListExecutionsResponse {
    pub pagination: PaginationResponse,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub executions: Vec<Execution>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EmptyRequest {}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListExecutionFunctionsResponse {
    pub functions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListExecutionMethodsResponse {
    pub methods: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListExecutionServicesResponse {
    pub services: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddPublicKeyRequest {
    #[serde(default, alias = "target_id")]
    #[schema(ignore)]
    pub target_id: String,
    /// base64 (protobuf bytes) of a PEM `PUBLIC KEY` block: RSA (2048 to 8192 bits) or EC P-256;
    /// 1..8192 bytes after decoding.
    #[serde(default, alias = "public_key")]
    #[schema(example = "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K...")]
    pub public_key: String,
    /// RFC 3339, in the future; from then on the key is not used.
    #[serde(default, alias = "expiration_date")]
    #[schema(example = "2030-01-01T00:00:00Z")]
    pub expiration_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddPublicKeyResponse {
    pub key_id: String,
    pub creation_date: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyIdRequest {
    #[serde(default, alias = "target_id")]
    pub target_id: String,
    #[serde(default, alias = "key_id")]
    pub key_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivatePublicKeyResponse {
    pub change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeactivatePublicKeyResponse {
    pub change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovePublicKeyResponse {
    /// Absent when the target had no such key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPublicKeysRequest {
    #[serde(default, alias = "target_id")]
    #[schema(ignore)]
    pub target_id: String,
}

/// A public key of a target; JWE payloads are encrypted to the active one.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    pub key_id: String,
    #[serde(skip_serializing_if = "is_false")]
    pub active: bool,
    /// `SHA256:` + unpadded base64 of SHA-256(DER of the SubjectPublicKeyInfo).
    #[schema(example = "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU")]
    pub fingerprint: String,
    /// base64 of the PEM block as added.
    pub public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    pub creation_date: String,
    pub change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListPublicKeysResponse {
    /// Oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<PublicKey>,
}

// ---------- validation ----------

fn target_kind(
    msg: &str,
    webhook: Option<RestWebhook>,
    call: Option<RestCall>,
    asynchronous: Option<RestAsync>,
) -> ApiResult<Option<(String, bool)>> {
    let count = webhook.is_some() as u8 + call.is_some() as u8 + asynchronous.is_some() as u8;
    if count > 1 {
        return Err(invalid_target(format!(
            "invalid {msg}: only one of restWebhook, restCall and restAsync may be set"
        )));
    }
    Ok(match (webhook, call, asynchronous) {
        (Some(w), _, _) => Some(("rest_webhook".into(), w.interrupt_on_error)),
        (_, Some(c), _) => Some(("rest_call".into(), c.interrupt_on_error)),
        (_, _, Some(_)) => Some(("rest_async".into(), false)),
        _ => None,
    })
}

fn check_name(msg: &str, name: &str) -> ApiResult<()> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME {
        return Err(invalid_target(format!(
            "invalid {msg}.Name: value length must be between 1 and {MAX_NAME} runes, inclusive"
        )));
    }
    Ok(())
}

fn check_timeout(msg: &str, timeout: Option<Duration>) -> ApiResult<i64> {
    match timeout {
        Some(t) if t.nanos > 0 && t <= MAX_TIMEOUT => Ok(t.nanos),
        _ => Err(err(
            Kind::InvalidArgument,
            "Errors.Target.NoTimeout",
            format!("invalid {msg}.Timeout: a timeout greater than 0s and at most 270s is required"),
        )),
    }
}

fn check_endpoint(s: &AppState, msg: &str, endpoint: &str) -> ApiResult<()> {
    let invalid =
        |why: &str| err(Kind::InvalidArgument, "Errors.Target.InvalidURL", format!("invalid {msg}.Endpoint: {why}"));
    if endpoint.is_empty() || endpoint.chars().count() > MAX_ENDPOINT {
        return Err(invalid("value length must be between 1 and 2048 runes, inclusive"));
    }
    let url = url::Url::parse(endpoint).map_err(|_| invalid("not an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("the URL has no host"));
    }
    s.v2.policy
        .check_url(&url)
        .map_err(|why| err(Kind::InvalidArgument, "Errors.Target.DeniedURL", format!("invalid {msg}.Endpoint: {why}")))
}

fn payload_number(p: Option<PayloadType>) -> i32 {
    match p.unwrap_or_default() {
        PayloadType::Unspecified => PayloadType::Json.number() as i32,
        other => other.number() as i32,
    }
}

fn generate_signing_key() -> String {
    rand::rngs::OsRng.sample_iter(&rand::distributions::Alphanumeric).take(SIGNING_KEY_LEN).map(char::from).collect()
}

fn encryption_key(s: &AppState) -> &str {
    s.config.encryption_key.as_deref().unwrap_or("")
}

fn encrypt_key(s: &AppState, key: &str) -> ApiResult<String> {
    crypto::encrypt(encryption_key(s), key).map_err(ApiError::internal)
}

fn target_msg(s: &AppState, t: target::Model) -> ApiResult<Target> {
    let signing_key = crypto::decrypt(encryption_key(s), &t.signing_key_enc).map_err(ApiError::internal)?;
    let (mut rest_webhook, mut rest_call, mut rest_async) = (None, None, None);
    match t.target_type.as_str() {
        "rest_call" => rest_call = Some(RestCall { interrupt_on_error: t.interrupt_on_error }),
        "rest_async" => rest_async = Some(RestAsync {}),
        _ => rest_webhook = Some(RestWebhook { interrupt_on_error: t.interrupt_on_error }),
    }
    Ok(Target {
        id: t.id.to_string(),
        creation_date: format_micros(t.created_at),
        change_date: format_micros(t.changed_at),
        name: t.name,
        rest_webhook,
        rest_call,
        rest_async,
        timeout: Duration { nanos: t.timeout_nanos }.to_string(),
        endpoint: t.endpoint,
        signing_key,
        payload_type: PayloadType::from_number(t.payload_type as i64)
            .filter(|p| !p.is_zero())
            .unwrap_or(PayloadType::Json),
    })
}

fn parse_target_id(raw: &str) -> ApiResult<i64> {
    crate::domain::id::parse(raw).ok_or_else(store::not_found)
}

fn invalid_public_key(message: impl Into<String>) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Target.InvalidPublicKey", message)
}

/// protobuf `bytes` in JSON: standard or URL-safe base64, padded or not.
fn decode_bytes(raw: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose::GeneralPurpose, DecodePaddingMode, GeneralPurposeConfig};
    use base64::{alphabet, Engine};
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(raw)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(raw))
        .ok()
}

/// The PEM text of an AddPublicKey request, validated; with its fingerprint.
fn check_public_key(msg: &str, raw: &str) -> ApiResult<(String, String)> {
    // The PEM text itself is accepted too (easier with curl); the contract's form is base64.
    let bytes = if raw.trim_start().starts_with("-----BEGIN") {
        raw.as_bytes().to_vec()
    } else {
        decode_bytes(raw).ok_or_else(|| invalid_public_key(format!("invalid {msg}.PublicKey: not base64")))?
    };
    if bytes.is_empty() || bytes.len() > MAX_PUBLIC_KEY_BYTES {
        return Err(invalid_public_key(format!(
            "invalid {msg}.PublicKey: value length must be between 1 and {MAX_PUBLIC_KEY_BYTES} bytes, inclusive"
        )));
    }
    let pem = String::from_utf8(bytes)
        .map_err(|_| invalid_public_key(format!("invalid {msg}.PublicKey: not a PEM PUBLIC KEY block")))?;
    let parsed = crate::v2::jose::parse_public_key_pem(&pem)
        .map_err(|why| invalid_public_key(format!("invalid {msg}.PublicKey: {why}")))?;
    Ok((pem, parsed.fingerprint()))
}

fn public_key_msg(k: entity::target_key::Model) -> PublicKey {
    PublicKey {
        key_id: k.id.to_string(),
        active: k.active,
        fingerprint: k.fingerprint,
        public_key: crate::v2::jose::pem_to_b64(&k.public_key),
        expiration_date: k.expires_at.map(format_micros),
        creation_date: format_micros(k.created_at),
        change_date: format_micros(k.changed_at),
    }
}

// ---------- conditions ----------

/// Full names of every RPC a request/response condition may name (not the ActionService's own).
pub fn known_methods() -> Vec<String> {
    let mut all: Vec<String> = super::rpcs().iter().filter(|r| r.service != SERVICE).map(|r| r.full_name()).collect();
    all.sort();
    all.dedup();
    all
}

pub fn known_services() -> Vec<String> {
    let mut all: Vec<String> =
        super::rpcs().iter().filter(|r| r.service != SERVICE).map(|r| r.service.to_string()).collect();
    all.sort();
    all.dedup();
    all
}

fn condition_unknown(message: String) -> ApiError {
    err(Kind::NotFound, "Errors.Execution.ConditionInvalid", message)
}

fn condition_forbidden(message: String) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Execution.ConditionInvalid", message)
}

fn is_event_group(group: &str) -> bool {
    !group.is_empty() && EVENT_TYPES.iter().any(|t| t.strip_prefix(group).is_some_and(|rest| rest.starts_with('.')))
}

/// The execution id of a condition. `check` also verifies that what it names exists.
fn condition_id(msg: &str, c: &Condition, check: bool) -> ApiResult<String> {
    let set =
        c.request.is_some() as u8 + c.response.is_some() as u8 + c.function.is_some() as u8 + c.event.is_some() as u8;
    if set != 1 {
        return Err(invalid_execution(format!(
            "invalid {msg}: exactly one of request, response, function and event must be set"
        )));
    }
    if let Some((prefix, r)) =
        c.request.as_ref().map(|r| ("request", r)).or_else(|| c.response.as_ref().map(|r| ("response", r)))
    {
        let forms = r.method.is_some() as u8 + r.service.is_some() as u8 + r.all.is_some() as u8;
        if forms != 1 {
            return Err(invalid_execution(format!(
                "invalid {msg}.{}: exactly one of method, service and all must be set",
                if prefix == "request" { "Request" } else { "Response" }
            )));
        }
        if let Some(method) = &r.method {
            if check {
                if method.strip_prefix('/').and_then(|m| m.split_once('/')).is_some_and(|(svc, _)| svc == SERVICE) {
                    return Err(condition_forbidden(format!(
                        "the ActionService's own method {method} cannot be a condition"
                    )));
                }
                if !known_methods().contains(method) {
                    return Err(condition_unknown(format!("unknown method {method:?}")));
                }
            }
            return Ok(format!("{prefix}/{method}"));
        }
        if let Some(service) = &r.service {
            if check {
                if service == SERVICE {
                    return Err(condition_forbidden(format!("the {SERVICE} cannot be a condition")));
                }
                if !known_services().contains(service) {
                    return Err(condition_unknown(format!("unknown service {service:?}")));
                }
            }
            return Ok(format!("{prefix}/{service}"));
        }
        return Ok(prefix.to_string());
    }
    if let Some(f) = &c.function {
        if check && !FUNCTIONS.contains(&f.name.as_str()) {
            return Err(condition_unknown(format!("unknown function {:?}", f.name)));
        }
        return Ok(format!("function/{}", f.name));
    }
    let e = c.event.as_ref().expect("one condition is set");
    let forms = e.event.is_some() as u8 + e.group.is_some() as u8 + e.all.is_some() as u8;
    if forms != 1 {
        return Err(invalid_execution(format!("invalid {msg}.Event: exactly one of event, group and all must be set")));
    }
    if let Some(ty) = &e.event {
        if check && !EVENT_TYPES.contains(&ty.as_str()) {
            return Err(condition_unknown(format!("unknown event type {ty:?}")));
        }
        return Ok(format!("event/{ty}"));
    }
    if let Some(group) = &e.group {
        let group = group.strip_suffix(".*").unwrap_or(group);
        if check && !is_event_group(group) {
            return Err(condition_unknown(format!("unknown event group {group:?}")));
        }
        return Ok(format!("event/{group}.*"));
    }
    Ok("event".into())
}

/// The condition an execution id stands for (inverse of [`condition_id`]).
fn condition_of(id: &str) -> (ExecutionType, Condition) {
    let (kind, rest) = match id.split_once('/') {
        Some((k, r)) => (k, Some(r)),
        None => (id, None),
    };
    let request_form = |rest: Option<&str>| match rest {
        None => RequestExecution { all: Some(true), ..Default::default() },
        Some(m) if m.starts_with('/') => RequestExecution { method: Some(m.to_string()), ..Default::default() },
        Some(svc) => RequestExecution { service: Some(svc.to_string()), ..Default::default() },
    };
    match kind {
        "request" => (ExecutionType::Request, Condition { request: Some(request_form(rest)), ..Default::default() }),
        "response" => (ExecutionType::Response, Condition { response: Some(request_form(rest)), ..Default::default() }),
        "function" => (
            ExecutionType::Function,
            Condition {
                function: Some(FunctionExecution { name: rest.unwrap_or_default().to_string() }),
                ..Default::default()
            },
        ),
        _ => {
            let event = match rest {
                None => EventExecution { all: Some(true), ..Default::default() },
                Some(g) if g.ends_with(".*") => {
                    EventExecution { group: Some(g.trim_end_matches(".*").to_string()), ..Default::default() }
                }
                Some(t) => EventExecution { event: Some(t.to_string()), ..Default::default() },
            };
            (ExecutionType::Event, Condition { event: Some(event), ..Default::default() })
        }
    }
}

fn text_matches(method: TextFilterMethod, value: &str, wanted: &str) -> bool {
    use TextFilterMethod::*;
    let (v, w) = match method {
        EqualsIgnoreCase | StartsWithIgnoreCase | ContainsIgnoreCase | EndsWithIgnoreCase => {
            (fold(value), fold(wanted))
        }
        _ => (value.to_string(), wanted.to_string()),
    };
    match method {
        Equals | EqualsIgnoreCase => v == w,
        StartsWith | StartsWithIgnoreCase => v.starts_with(&w),
        Contains | ContainsIgnoreCase => v.contains(&w),
        EndsWith | EndsWithIgnoreCase => v.ends_with(&w),
    }
}

// ---------- handlers ----------

const R400: &str = "Invalid request (see the error table)";

#[utoipa::path(post, path = "/v2/actions/targets", tag = "ActionService",
    operation_id = "ActionService_CreateTarget", summary = "Create a target",
    request_body = CreateTargetRequest,
    responses((status = 200, body = CreateTargetResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 409, description = "A target with this name exists (Errors.Target.AlreadyExists)", body = GatewayError)))]
pub async fn create_target(s: AppState, c: Caller, r: CreateTargetRequest) -> ApiResult<CreateTargetResponse> {
    const MSG: &str = "CreateTargetRequest";
    check_name(MSG, &r.name)?;
    let (target_type, interrupt) = target_kind(MSG, r.rest_webhook, r.rest_call, r.rest_async)?.ok_or_else(|| {
        invalid_target(format!("invalid {MSG}: one of restWebhook, restCall and restAsync is required"))
    })?;
    let timeout_nanos = check_timeout(MSG, r.timeout)?;
    check_endpoint(&s, MSG, &r.endpoint)?;
    let signing_key = generate_signing_key();
    let new = store::NewTarget {
        name: r.name,
        target_type,
        interrupt_on_error: interrupt,
        endpoint: r.endpoint,
        timeout_nanos,
        payload_type: payload_number(r.payload_type),
        signing_key_enc: encrypt_key(&s, &signing_key)?,
    };
    let model = store::create_target(&s.store, new, c.token_id, c.token_org).await?;
    Ok(CreateTargetResponse { id: model.id.to_string(), creation_date: format_micros(model.created_at), signing_key })
}

#[utoipa::path(post, path = "/v2/actions/targets/{id}", tag = "ActionService",
    operation_id = "ActionService_UpdateTarget",
    summary = "Update a target partially (absent fields are unchanged); expirationSigningKey rotates the signing key",
    params(("id" = String, Path, description = "Target id")),
    request_body = UpdateTargetRequest,
    responses((status = 200, body = UpdateTargetResponse),
        (status = 400, description = R400, body = GatewayError), (status = 401, body = GatewayError),
        (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError),
        (status = 409, description = "A target with this name exists (Errors.Target.AlreadyExists)", body = GatewayError)))]
pub async fn update_target(s: AppState, c: Caller, r: UpdateTargetRequest) -> ApiResult<UpdateTargetResponse> {
    const MSG: &str = "UpdateTargetRequest";
    let id = parse_target_id(&r.id)?;
    if let Some(name) = &r.name {
        check_name(MSG, name)?;
    }
    let target_type = target_kind(MSG, r.rest_webhook, r.rest_call, r.rest_async)?;
    let timeout_nanos = match r.timeout {
        Some(t) => Some(check_timeout(MSG, Some(t))?),
        None => None,
    };
    if let Some(endpoint) = &r.endpoint {
        check_endpoint(&s, MSG, endpoint)?;
    }
    let (new_key, grace_micros) = match r.expiration_signing_key {
        Some(d) if d.nanos < 0 => {
            return Err(invalid_target(format!("invalid {MSG}.ExpirationSigningKey: must not be negative")))
        }
        // Rounded up, so that any positive grace period keeps the old key a little.
        Some(d) => (Some(generate_signing_key()), d.nanos.saturating_add(999) / 1000),
        None => (None, 0),
    };
    let patch = store::TargetPatch {
        name: r.name,
        target_type,
        endpoint: r.endpoint,
        timeout_nanos,
        payload_type: r.payload_type.map(|p| payload_number(Some(p))),
        signing_key_enc: new_key.as_deref().map(|k| encrypt_key(&s, k)).transpose()?,
        signing_key_grace_micros: grace_micros,
    };
    let model = store::update_target(&s.store, id, patch, c.token_id, c.token_org).await?;
    Ok(UpdateTargetResponse { change_date: format_micros(model.changed_at), signing_key: new_key })
}

#[utoipa::path(delete, path = "/v2/actions/targets/{id}", tag = "ActionService",
    operation_id = "ActionService_DeleteTarget",
    summary = "Delete a target (idempotent) and remove it from every execution",
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = DeleteTargetResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn delete_target(s: AppState, c: Caller, r: TargetIdRequest) -> ApiResult<DeleteTargetResponse> {
    let Some(id) = crate::domain::id::parse(&r.id) else {
        return Ok(DeleteTargetResponse { deletion_date: None });
    };
    let at = store::delete_target(&s.store, id, c.token_id, c.token_org).await?;
    Ok(DeleteTargetResponse { deletion_date: at.map(format_micros) })
}

#[utoipa::path(get, path = "/v2/actions/targets/{id}", tag = "ActionService",
    operation_id = "ActionService_GetTarget", summary = "Get a target, with its signing key",
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = GetTargetResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn get_target(s: AppState, _c: Caller, r: TargetIdRequest) -> ApiResult<GetTargetResponse> {
    let id = parse_target_id(&r.id)?;
    let t = store::get_target(&s.store.db, id).await?.ok_or_else(store::not_found)?;
    Ok(GetTargetResponse { target: target_msg(&s, t)? })
}

#[utoipa::path(post, path = "/v2/actions/targets/search", tag = "ActionService",
    operation_id = "ActionService_ListTargets", summary = "List and filter targets",
    request_body = ListTargetsRequest,
    responses((status = 200, body = ListTargetsResponse),
        (status = 400, description = "Limit over 1000 (Errors.Query.LimitExceeded) or a bad filter", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_targets(s: AppState, _c: Caller, r: ListTargetsRequest) -> ApiResult<ListTargetsResponse> {
    let (offset, limit, asc) = page_bounds(&r.pagination)?;
    for (i, f) in r.filters.iter().enumerate() {
        if f.target_name_filter.is_some() == f.in_target_ids_filter.is_some() {
            return Err(ApiError::invalid(format!(
                "invalid ListTargetsRequest.Filters[{i}]: exactly one of targetNameFilter and inTargetIdsFilter must be set"
            )));
        }
    }
    let mut rows: Vec<target::Model> = store::all_targets(&s.store.db)
        .await?
        .into_iter()
        .filter(|t| {
            r.filters.iter().all(|f| {
                if let Some(n) = &f.target_name_filter {
                    return text_matches(n.method, &t.name, &n.target_name);
                }
                if let Some(ids) = &f.in_target_ids_filter {
                    return ids.target_ids.iter().any(|i| *i == t.id.to_string());
                }
                true
            })
        })
        .collect();
    match r.sorting_column {
        TargetFieldName::ChangedDate => rows.sort_by_key(|t| (t.changed_at, t.id)),
        TargetFieldName::Name => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        TargetFieldName::TargetType => rows.sort_by(|a, b| a.target_type.cmp(&b.target_type).then(a.id.cmp(&b.id))),
        TargetFieldName::Url => rows.sort_by(|a, b| a.endpoint.cmp(&b.endpoint).then(a.id.cmp(&b.id))),
        TargetFieldName::Timeout => rows.sort_by_key(|t| (t.timeout_nanos, t.id)),
        TargetFieldName::InterruptOnError => rows.sort_by_key(|t| (t.interrupt_on_error, t.id)),
        _ => rows.sort_by_key(|t| t.id),
    }
    if !asc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let targets = page(rows, offset, limit).into_iter().map(|t| target_msg(&s, t)).collect::<ApiResult<_>>()?;
    Ok(ListTargetsResponse { pagination: PaginationResponse { total_result: total, applied_limit: limit }, targets })
}

#[utoipa::path(put, path = "/v2/actions/executions", tag = "ActionService",
    operation_id = "ActionService_SetExecution",
    summary = "Set the ordered targets of a condition ([] clears it)",
    request_body = SetExecutionRequest,
    responses((status = 200, body = SetExecutionResponse),
        (status = 400, description = "Bad condition (Errors.Execution.Invalid) or an ActionService method or service \
            (Errors.Execution.ConditionInvalid)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown method, service, function, event type or group \
            (Errors.Execution.ConditionInvalid), or unknown target (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn set_execution(s: AppState, c: Caller, r: SetExecutionRequest) -> ApiResult<SetExecutionResponse> {
    const MSG: &str = "SetExecutionRequest.Condition";
    let condition = r
        .condition
        .ok_or_else(|| invalid_execution("invalid SetExecutionRequest.Condition: a condition is required"))?;
    let id = condition_id(MSG, &condition, true)?;
    let mut targets = Vec::with_capacity(r.targets.len());
    for raw in &r.targets {
        let t = parse_target_id(raw)?;
        if targets.contains(&t) {
            return Err(invalid_execution(format!(
                "invalid SetExecutionRequest.Targets: target {raw} is listed twice"
            )));
        }
        targets.push(t);
    }
    let at = store::set_execution(&s.store, id, targets, c.token_id, c.token_org).await?;
    Ok(SetExecutionResponse { set_date: format_micros(at) })
}

#[utoipa::path(post, path = "/v2/actions/executions/search", tag = "ActionService",
    operation_id = "ActionService_ListExecutions", summary = "List and filter executions",
    request_body = ListExecutionsRequest,
    responses((status = 200, body = ListExecutionsResponse),
        (status = 400, description = "Limit over 1000 (Errors.Query.LimitExceeded) or a bad filter", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_executions(s: AppState, _c: Caller, r: ListExecutionsRequest) -> ApiResult<ListExecutionsResponse> {
    let (offset, limit, asc) = page_bounds(&r.pagination)?;
    // Each filter resolved to a predicate input up front, so shape errors come before any read.
    enum F {
        Ids(Vec<String>),
        Type(ExecutionType),
        Target(String),
    }
    let mut filters = Vec::new();
    for (i, f) in r.filters.iter().enumerate() {
        let set = f.in_conditions_filter.is_some() as u8
            + f.execution_type_filter.is_some() as u8
            + f.target_filter.is_some() as u8;
        if set != 1 {
            return Err(ApiError::invalid(format!(
                "invalid ListExecutionsRequest.Filters[{i}]: exactly one of inConditionsFilter, executionTypeFilter \
                 and targetFilter must be set"
            )));
        }
        if let Some(c) = &f.in_conditions_filter {
            let ids = c
                .conditions
                .iter()
                .enumerate()
                .map(|(j, cond)| {
                    condition_id(
                        &format!("ListExecutionsRequest.Filters[{i}].InConditionsFilter.Conditions[{j}]"),
                        cond,
                        false,
                    )
                })
                .collect::<ApiResult<_>>()?;
            filters.push(F::Ids(ids));
        } else if let Some(t) = &f.execution_type_filter {
            filters.push(F::Type(t.execution_type));
        } else if let Some(t) = &f.target_filter {
            filters.push(F::Target(t.target_id.clone()));
        }
    }
    let mut rows: Vec<(execution::Model, Vec<String>)> = store::all_executions(&s.store.db)
        .await?
        .into_iter()
        .map(|e| {
            let targets = store::target_ids(&e);
            (e, targets)
        })
        .filter(|(e, targets)| {
            filters.iter().all(|f| match f {
                F::Ids(ids) => ids.contains(&e.id),
                F::Type(t) => t.is_zero() || condition_of(&e.id).0 == *t,
                F::Target(t) => targets.contains(t),
            })
        })
        .collect();
    match r.sorting_column {
        ExecutionFieldName::CreatedDate => {
            rows.sort_by(|a, b| a.0.created_at.cmp(&b.0.created_at).then(a.0.id.cmp(&b.0.id)))
        }
        ExecutionFieldName::ChangedDate => {
            rows.sort_by(|a, b| a.0.changed_at.cmp(&b.0.changed_at).then(a.0.id.cmp(&b.0.id)))
        }
        _ => rows.sort_by(|a, b| a.0.id.cmp(&b.0.id)),
    }
    if !asc {
        rows.reverse();
    }
    let total = rows.len() as u64;
    let executions = page(rows, offset, limit)
        .into_iter()
        .map(|(e, targets)| Execution {
            condition: condition_of(&e.id).1,
            targets,
            creation_date: format_micros(e.created_at),
            change_date: format_micros(e.changed_at),
        })
        .collect();
    Ok(ListExecutionsResponse {
        pagination: PaginationResponse { total_result: total, applied_limit: limit },
        executions,
    })
}

#[utoipa::path(get, path = "/v2/actions/executions/functions", tag = "ActionService",
    operation_id = "ActionService_ListExecutionFunctions", summary = "Functions a function condition may name",
    responses((status = 200, body = ListExecutionFunctionsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_execution_functions(
    _s: AppState,
    _c: Caller,
    _r: EmptyRequest,
) -> ApiResult<ListExecutionFunctionsResponse> {
    Ok(ListExecutionFunctionsResponse { functions: FUNCTIONS.iter().map(|f| f.to_string()).collect() })
}

#[utoipa::path(get, path = "/v2/actions/executions/methods", tag = "ActionService",
    operation_id = "ActionService_ListExecutionMethods",
    summary = "Methods a request or response condition may name (every RPC but the ActionService's)",
    responses((status = 200, body = ListExecutionMethodsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_execution_methods(
    _s: AppState,
    _c: Caller,
    _r: EmptyRequest,
) -> ApiResult<ListExecutionMethodsResponse> {
    Ok(ListExecutionMethodsResponse { methods: known_methods() })
}

#[utoipa::path(get, path = "/v2/actions/executions/services", tag = "ActionService",
    operation_id = "ActionService_ListExecutionServices",
    summary = "Services a request or response condition may name (every service but the ActionService)",
    responses((status = 200, body = ListExecutionServicesResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_execution_services(
    _s: AppState,
    _c: Caller,
    _r: EmptyRequest,
) -> ApiResult<ListExecutionServicesResponse> {
    Ok(ListExecutionServicesResponse { services: known_services() })
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys", tag = "ActionService",
    operation_id = "ActionService_AddPublicKey",
    summary = "Add a public key to a target (inactive until activated); JWE payloads are encrypted to the active key",
    params(("targetId" = String, Path, description = "Target id")),
    request_body = AddPublicKeyRequest,
    responses((status = 200, body = AddPublicKeyResponse),
        (status = 400, description = "Not a PEM PUBLIC KEY block (RSA or EC P-256), over 8192 bytes, or an expiration \
            in the past (Errors.Target.InvalidPublicKey)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn add_public_key(s: AppState, c: Caller, r: AddPublicKeyRequest) -> ApiResult<AddPublicKeyResponse> {
    const MSG: &str = "AddPublicKeyRequest";
    let target_id = parse_target_id(&r.target_id)?;
    let (public_key, fingerprint) = check_public_key(MSG, &r.public_key)?;
    let expires_at = match r.expiration_date.as_deref() {
        None => None,
        Some(raw) => {
            let at = crate::domain::time::parse_rfc3339(raw).ok_or_else(|| {
                invalid_public_key(format!("invalid {MSG}.ExpirationDate: not an RFC 3339 timestamp"))
            })?;
            if at <= crate::domain::time::now_micros() {
                return Err(invalid_public_key(format!("invalid {MSG}.ExpirationDate: must be in the future")));
            }
            Some(at)
        }
    };
    let new = store::NewKey { public_key, fingerprint, expires_at };
    let key = store::add_key(&s.store, target_id, new, c.token_id, c.token_org).await?;
    Ok(AddPublicKeyResponse { key_id: key.id.to_string(), creation_date: format_micros(key.created_at) })
}

fn parse_key_id(raw: &str) -> ApiResult<i64> {
    crate::domain::id::parse(raw).ok_or_else(store::key_not_found)
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys/{keyId}/activate", tag = "ActionService",
    operation_id = "ActionService_ActivatePublicKey",
    summary = "Activate a public key; the target's previously active key is deactivated",
    params(("targetId" = String, Path, description = "Target id"), ("keyId" = String, Path, description = "Key id")),
    responses((status = 200, body = ActivatePublicKeyResponse),
        (status = 400, description = "The key has expired (Errors.Target.InvalidPublicKey)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target or key not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn activate_public_key(
    s: AppState,
    c: Caller,
    r: PublicKeyIdRequest,
) -> ApiResult<ActivatePublicKeyResponse> {
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = parse_key_id(&r.key_id)?;
    let now = crate::domain::time::now_micros();
    let key = store::activate_key(&s.store, target_id, key_id, now, c.token_id, c.token_org).await?;
    Ok(ActivatePublicKeyResponse { change_date: format_micros(key.changed_at) })
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys/{keyId}/deactivate", tag = "ActionService",
    operation_id = "ActionService_DeactivatePublicKey",
    summary = "Deactivate a public key (a JWE target without an active key fails its calls)",
    params(("targetId" = String, Path, description = "Target id"), ("keyId" = String, Path, description = "Key id")),
    responses((status = 200, body = DeactivatePublicKeyResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target or key not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn deactivate_public_key(
    s: AppState,
    c: Caller,
    r: PublicKeyIdRequest,
) -> ApiResult<DeactivatePublicKeyResponse> {
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = parse_key_id(&r.key_id)?;
    let key = store::deactivate_key(&s.store, target_id, key_id, c.token_id, c.token_org).await?;
    Ok(DeactivatePublicKeyResponse { change_date: format_micros(key.changed_at) })
}

#[utoipa::path(delete, path = "/v2/actions/targets/{targetId}/publickeys/{keyId}", tag = "ActionService",
    operation_id = "ActionService_RemovePublicKey",
    summary = "Remove an inactive public key (idempotent: an unknown key id answers without deletionDate)",
    params(("targetId" = String, Path, description = "Target id"), ("keyId" = String, Path, description = "Key id")),
    responses((status = 200, body = RemovePublicKeyResponse),
        (status = 400, description = "The key is active (code 9, Errors.Target.PublicKeyActive)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn remove_public_key(s: AppState, c: Caller, r: PublicKeyIdRequest) -> ApiResult<RemovePublicKeyResponse> {
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = crate::domain::id::parse(&r.key_id);
    let at = store::remove_key(&s.store, target_id, key_id, c.token_id, c.token_org).await?;
    Ok(RemovePublicKeyResponse { deletion_date: at.map(format_micros) })
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys/search", tag = "ActionService",
    operation_id = "ActionService_ListPublicKeys", summary = "List a target's public keys, oldest first",
    params(("targetId" = String, Path, description = "Target id")),
    request_body = ListPublicKeysRequest,
    responses((status = 200, body = ListPublicKeysResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn list_public_keys(s: AppState, _c: Caller, r: ListPublicKeysRequest) -> ApiResult<ListPublicKeysResponse> {
    let target_id = parse_target_id(&r.target_id)?;
    store::get_target(&s.store.db, target_id).await?.ok_or_else(store::not_found)?;
    let keys = store::list_keys(&s.store.db, target_id).await?;
    Ok(ListPublicKeysResponse { public_keys: keys.into_iter().map(public_key_msg).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_ids_round_trip() {
        for id in [
            "request",
            "request//zitadel.management.v1.ManagementService/CreateAction",
            "request/zitadel.management.v1.ManagementService",
            "response",
            "response/zitadel.admin.v1.AdminService",
            "function/preuserinfo",
            "event",
            "event/action.added",
            "event/org.flow.*",
        ] {
            let (_, c) = condition_of(id);
            assert_eq!(condition_id("C", &c, true).unwrap(), id);
        }
    }

    #[test]
    fn event_groups_are_dot_prefixes() {
        assert!(is_event_group("action"));
        assert!(is_event_group("org.flow"));
        assert!(is_event_group("target.key"));
        assert!(!is_event_group("act"));
        assert!(!is_event_group("action.added"));
        assert!(!is_event_group(""));
    }

    #[test]
    fn signing_keys_are_36_alphanumerics() {
        let k = generate_signing_key();
        assert_eq!(k.len(), 36);
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(k, generate_signing_key());
    }
}
