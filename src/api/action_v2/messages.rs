//! The ActionService's request and response messages (protojson shapes, OpenAPI schemas).

use super::*;

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
    /// Present: the new endpoint, an absolute http(s) URL of at most 2048 characters. Every field
    /// left out keeps its stored value.
    #[serde(default)]
    #[schema(example = "https://hooks.example.com/zitadel")]
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
pub(in crate::api) fn page_bounds(p: &Option<PaginationRequest>) -> ApiResult<(u64, u64, bool)> {
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

pub(super) fn page<T>(mut rows: Vec<T>, offset: u64, limit: u64) -> Vec<T> {
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
    /// Combined with AND; a key without an expiration date matches no `expirationDateFilter`.
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub filters: Vec<PublicKeySearchFilter>,
}

/// Exactly one filter per entry.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeySearchFilter {
    #[serde(default, alias = "key_ids_filter", deserialize_with = "json::message_opt::deserialize")]
    pub key_ids_filter: Option<InIdsFilter>,
    /// Only the active key (true) or only the others (false).
    #[serde(default, alias = "active_filter")]
    pub active_filter: Option<bool>,
    #[serde(default, alias = "expiration_date_filter", deserialize_with = "json::message_opt::deserialize")]
    pub expiration_date_filter: Option<TimestampFilter>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InIdsFilter {
    #[serde(default)]
    pub ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimestampFilter {
    /// RFC 3339.
    #[serde(default)]
    pub timestamp: String,
    #[serde(default)]
    pub method: TimestampFilterMethod,
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
