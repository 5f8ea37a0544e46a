//! `zitadel.action.v2.ActionService`: Actions v2 targets and executions (IAM_OWNER only).
//! Errors carry the contract's key (`Errors.Target.Invalid`, …) as their id, so it appears in
//! the message and as `details[0].id`.

use super::auth::Caller;
use super::json::{self, is_false, is_zero_u64};
use super::messages::GatewayError;
use super::{check_id, AppState, BodyMode, Rpc};
use crate::domain::execution::{EventScope, ExecutionId, Phase, RpcScope};
use crate::domain::time::format_micros;
use crate::domain::Duration;
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::targets::{PayloadType as StoredPayloadType, TargetKind};
use crate::store::{crypto, targets as store};
use entity::{execution, target};
use rand::Rng;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SERVICE: &str = "zitadel.action.v2.ActionService";

/// Functions a `function` condition may name.
pub const FUNCTIONS: &[&str] = &["preaccesstoken", "presamlresponse", "preuserinfo"];

/// Event types an `event` condition may name (the events this server writes).
pub const EVENT_TYPES: &[&str] = &[
    "action.added",
    "action.changed",
    "action.deactivated",
    "action.reactivated",
    "action.removed",
    "action.rolledback",
    "action.secret.set",
    "action.secret.removed",
    "action.settings.changed",
    "connection.added",
    "connection.changed",
    "connection.key.rotated",
    "connection.removed",
    "connection.org.linked",
    "connection.org.unlinked",
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
    vec![
        Rpc::instance::<__path_create_target>(SERVICE, Whole, rpc_call!(create_target)),
        Rpc::instance::<__path_update_target>(SERVICE, Whole, rpc_call!(update_target)),
        Rpc::instance::<__path_delete_target>(SERVICE, Ignored, rpc_call!(delete_target)),
        Rpc::instance::<__path_get_target>(SERVICE, Ignored, rpc_call!(get_target)),
        Rpc::instance::<__path_list_targets>(SERVICE, Whole, rpc_call!(list_targets)),
        Rpc::instance::<__path_set_execution>(SERVICE, Whole, rpc_call!(set_execution)),
        Rpc::instance::<__path_list_executions>(SERVICE, Whole, rpc_call!(list_executions)),
        Rpc::instance::<__path_list_execution_functions>(SERVICE, Ignored, rpc_call!(list_execution_functions)),
        Rpc::instance::<__path_list_execution_methods>(SERVICE, Ignored, rpc_call!(list_execution_methods)),
        Rpc::instance::<__path_list_execution_services>(SERVICE, Ignored, rpc_call!(list_execution_services)),
        Rpc::instance::<__path_add_public_key>(SERVICE, Whole, rpc_call!(add_public_key)),
        Rpc::instance::<__path_activate_public_key>(SERVICE, Ignored, rpc_call!(activate_public_key)),
        Rpc::instance::<__path_deactivate_public_key>(SERVICE, Ignored, rpc_call!(deactivate_public_key)),
        Rpc::instance::<__path_remove_public_key>(SERVICE, Ignored, rpc_call!(remove_public_key)),
        Rpc::instance::<__path_list_public_keys>(SERVICE, Whole, rpc_call!(list_public_keys)),
    ]
}

fn err(kind: Kind, key: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, key, message)
}

fn invalid_target(message: impl Into<String>) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Target.Invalid", message)
}

pub(super) fn invalid_execution(message: impl Into<String>) -> ApiError {
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
    /// How a timestamp filter compares (ZITADEL numbering).
    TimestampFilterMethod {
        Equals = 0 => "TIMESTAMP_FILTER_METHOD_EQUALS",
        After = 1 => "TIMESTAMP_FILTER_METHOD_AFTER",
        AfterOrEquals = 2 => "TIMESTAMP_FILTER_METHOD_AFTER_OR_EQUALS",
        Before = 3 => "TIMESTAMP_FILTER_METHOD_BEFORE",
        BeforeOrEquals = 4 => "TIMESTAMP_FILTER_METHOD_BEFORE_OR_EQUALS",
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

pub mod deliveries;
mod executions;
mod messages;
mod public_keys;
mod targets;

pub use executions::*;
pub use messages::*;
pub use public_keys::*;
pub use targets::*;

// ---------- validation ----------

fn target_kind(
    msg: &str,
    webhook: Option<RestWebhook>,
    call: Option<RestCall>,
    asynchronous: Option<RestAsync>,
) -> ApiResult<Option<(TargetKind, bool)>> {
    let count = webhook.is_some() as u8 + call.is_some() as u8 + asynchronous.is_some() as u8;
    if count > 1 {
        return Err(invalid_target(format!(
            "invalid {msg}: only one of restWebhook, restCall and restAsync may be set"
        )));
    }
    Ok(match (webhook, call, asynchronous) {
        (Some(w), _, _) => Some((TargetKind::RestWebhook, w.interrupt_on_error)),
        (_, Some(c), _) => Some((TargetKind::RestCall, c.interrupt_on_error)),
        (_, _, Some(_)) => Some((TargetKind::RestAsync, false)),
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

async fn check_endpoint(s: &AppState, msg: &str, endpoint: &str) -> ApiResult<()> {
    let invalid =
        |why: &str| err(Kind::InvalidArgument, "Errors.Target.InvalidURL", format!("invalid {msg}.Endpoint: {why}"));
    if endpoint.is_empty() || endpoint.chars().count() > MAX_ENDPOINT {
        return Err(invalid("value length must be between 1 and 2048 runes, inclusive"));
    }
    let url = super::absolute_http_url(endpoint).map_err(invalid)?;
    s.v2.policy
        .check_url_resolved(&url)
        .await
        .map_err(|why| err(Kind::InvalidArgument, "Errors.Target.DeniedURL", format!("invalid {msg}.Endpoint: {why}")))
}

/// The stored payload type: unspecified is JSON.
fn stored_payload_type(p: Option<PayloadType>) -> StoredPayloadType {
    match p.unwrap_or_default() {
        PayloadType::Unspecified | PayloadType::Json => StoredPayloadType::Json,
        PayloadType::Jwt => StoredPayloadType::Jwt,
        PayloadType::Jwe => StoredPayloadType::Jwe,
    }
}

impl From<StoredPayloadType> for PayloadType {
    fn from(p: StoredPayloadType) -> Self {
        match p {
            StoredPayloadType::Json => PayloadType::Json,
            StoredPayloadType::Jwt => PayloadType::Jwt,
            StoredPayloadType::Jwe => PayloadType::Jwe,
        }
    }
}

fn generate_signing_key() -> String {
    rand::rngs::OsRng.sample_iter(&rand::distributions::Alphanumeric).take(SIGNING_KEY_LEN).map(char::from).collect()
}

/// The resource owner of the instance's own resources (targets, executions, their keys): the
/// instance, as ZITADEL writes these events.
fn instance_owner(s: &AppState, c: &Caller) -> i64 {
    s.v2.instance_id.parse().unwrap_or(c.token_org)
}

fn encryption_key(s: &AppState) -> &str {
    s.config.encryption_key.as_deref().unwrap_or("")
}

fn encrypt_key(s: &AppState, key: &str) -> ApiResult<String> {
    crypto::encrypt(encryption_key(s), key).map_err(ApiError::internal)
}

fn target_msg(s: &AppState, t: target::Model) -> ApiResult<Target> {
    // A row this server's key cannot open (restored from another instance) is named in the log.
    let signing_key = crypto::decrypt(encryption_key(s), &t.signing_key_enc)
        .map_err(|e| ApiError::internal(format!("target {} ({:?}): its signing key: {e}", t.id, t.name)))?;
    let (mut rest_webhook, mut rest_call, mut rest_async) = (None, None, None);
    match t.target_type {
        TargetKind::RestCall => rest_call = Some(RestCall { interrupt_on_error: t.interrupt_on_error }),
        TargetKind::RestAsync => rest_async = Some(RestAsync {}),
        TargetKind::RestWebhook => rest_webhook = Some(RestWebhook { interrupt_on_error: t.interrupt_on_error }),
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
        payload_type: t.payload_type.into(),
    })
}

fn parse_target_id(raw: &str) -> ApiResult<i64> {
    crate::domain::id::parse(raw).ok_or_else(store::not_found)
}

fn invalid_public_key(message: impl Into<String>) -> ApiError {
    err(Kind::InvalidArgument, "Errors.Target.InvalidPublicKey", message)
}

/// protobuf `bytes` in JSON: standard or URL-safe base64, padded or not.
pub(crate) fn decode_bytes(raw: &str) -> Option<Vec<u8>> {
    crate::domain::bytes::decode_base64(raw)
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
    let mut all: Vec<String> =
        super::rpcs().iter().filter(|r| super::interceptable(r.service)).map(|r| r.full_name()).collect();
    all.sort();
    all.dedup();
    all
}

pub fn known_services() -> Vec<String> {
    let mut all: Vec<String> =
        super::rpcs().iter().filter(|r| super::interceptable(r.service)).map(|r| r.service.to_string()).collect();
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
    condition_execution(msg, c, check).map(|id| id.to_string())
}

/// 400 naming the field when a condition's name is empty (ZITADEL's protos require 1..1000
/// characters): an empty name is the shape of the request, not an unknown method or event.
fn check_condition_name(msg: &str, field: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() || name.chars().nth(1000).is_some() {
        return Err(invalid_execution(format!(
            "invalid {msg}.{field}: value length must be between 1 and 1000 runes, inclusive"
        )));
    }
    Ok(())
}

fn condition_execution(msg: &str, c: &Condition, check: bool) -> ApiResult<ExecutionId> {
    let set =
        c.request.is_some() as u8 + c.response.is_some() as u8 + c.function.is_some() as u8 + c.event.is_some() as u8;
    if set != 1 {
        return Err(invalid_execution(format!(
            "invalid {msg}: exactly one of request, response, function and event must be set"
        )));
    }
    if let Some((phase, r)) =
        c.request.as_ref().map(|r| (Phase::Request, r)).or_else(|| c.response.as_ref().map(|r| (Phase::Response, r)))
    {
        let in_phase = |scope| match phase {
            Phase::Request => ExecutionId::Request(scope),
            Phase::Response => ExecutionId::Response(scope),
        };
        let phase_name = if phase == Phase::Request { "Request" } else { "Response" };
        let forms = r.method.is_some() as u8 + r.service.is_some() as u8 + r.all.is_some() as u8;
        if forms != 1 {
            return Err(invalid_execution(format!(
                "invalid {msg}.{phase_name}: exactly one of method, service and all must be set"
            )));
        }
        if r.all == Some(false) {
            return Err(invalid_execution(format!("invalid {msg}.{phase_name}.All: value must equal true")));
        }
        if let Some(method) = &r.method {
            check_condition_name(msg, &format!("{phase_name}.Method"), method)?;
            if check {
                // The ActionService and the ConnectorService are never intercepted.
                if let Some((svc, _)) = method.strip_prefix('/').and_then(|m| m.split_once('/')) {
                    if !super::interceptable(svc) {
                        return Err(condition_forbidden(format!("the {svc}'s method {method} cannot be a condition")));
                    }
                }
                if !known_methods().contains(method) {
                    return Err(condition_unknown(format!("unknown method {method:?}")));
                }
            }
            return Ok(in_phase(RpcScope::Method(method.clone())));
        }
        if let Some(service) = &r.service {
            check_condition_name(msg, &format!("{phase_name}.Service"), service)?;
            if check {
                if !super::interceptable(service) {
                    return Err(condition_forbidden(format!("the {service} cannot be a condition")));
                }
                if !known_services().contains(service) {
                    return Err(condition_unknown(format!("unknown service {service:?}")));
                }
            }
            return Ok(in_phase(RpcScope::Service(service.clone())));
        }
        return Ok(in_phase(RpcScope::All));
    }
    if let Some(f) = &c.function {
        check_condition_name(msg, "Function.Name", &f.name)?;
        if check && !FUNCTIONS.contains(&f.name.as_str()) {
            return Err(condition_unknown(format!("unknown function {:?}", f.name)));
        }
        return Ok(ExecutionId::Function(f.name.clone()));
    }
    let e = c.event.as_ref().expect("one condition is set");
    let forms = e.event.is_some() as u8 + e.group.is_some() as u8 + e.all.is_some() as u8;
    if forms != 1 {
        return Err(invalid_execution(format!("invalid {msg}.Event: exactly one of event, group and all must be set")));
    }
    if e.all == Some(false) {
        return Err(invalid_execution(format!("invalid {msg}.Event.All: value must equal true")));
    }
    if let Some(ty) = &e.event {
        check_condition_name(msg, "Event.Event", ty)?;
        if check && !EVENT_TYPES.contains(&ty.as_str()) {
            return Err(condition_unknown(format!("unknown event type {ty:?}")));
        }
        return Ok(ExecutionId::Event(EventScope::Event(ty.clone())));
    }
    if let Some(group) = &e.group {
        check_condition_name(msg, "Event.Group", group)?;
        let group = group.strip_suffix(".*").unwrap_or(group);
        if check && !is_event_group(group) {
            return Err(condition_unknown(format!("unknown event group {group:?}")));
        }
        return Ok(ExecutionId::Event(EventScope::Group(group.to_string())));
    }
    Ok(ExecutionId::Event(EventScope::All))
}

/// The condition an execution id stands for (inverse of [`condition_id`]).
fn condition_of(id: &str) -> (ExecutionType, Condition) {
    let request_form = |scope: RpcScope| match scope {
        RpcScope::All => RequestExecution { all: Some(true), ..Default::default() },
        RpcScope::Method(m) => RequestExecution { method: Some(m), ..Default::default() },
        RpcScope::Service(s) => RequestExecution { service: Some(s), ..Default::default() },
    };
    // Stored ids were written by condition_id; anything else reads as "all events".
    match ExecutionId::parse(id).unwrap_or(ExecutionId::Event(EventScope::All)) {
        ExecutionId::Request(s) => {
            (ExecutionType::Request, Condition { request: Some(request_form(s)), ..Default::default() })
        }
        ExecutionId::Response(s) => {
            (ExecutionType::Response, Condition { response: Some(request_form(s)), ..Default::default() })
        }
        ExecutionId::Function(name) => {
            (ExecutionType::Function, Condition { function: Some(FunctionExecution { name }), ..Default::default() })
        }
        ExecutionId::Event(scope) => {
            let event = match scope {
                EventScope::All => EventExecution { all: Some(true), ..Default::default() },
                EventScope::Group(g) => EventExecution { group: Some(g), ..Default::default() },
                EventScope::Event(t) => EventExecution { event: Some(t), ..Default::default() },
            };
            (ExecutionType::Event, Condition { event: Some(event), ..Default::default() })
        }
    }
}

/// A name filter ready for the rows (TextFilterMethod has the numbering of the store's
/// TextMethod; an unknown method matches nothing).
fn text_matcher(method: TextFilterMethod, wanted: &str) -> Option<crate::store::actions::TextMatch> {
    crate::store::actions::TextMethod::from_number(method.number()).map(|m| m.matcher(wanted))
}

// ---------- shared by the handlers ----------

const R400: &str = "Invalid request (see the error table)";

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
