//! Authoring (contract: authoring.md): action secrets and action versions with rollback.
//! RPCs of the ManagementService, organization-scoped like the actions they belong to.

use super::auth::Caller;
use super::json::is_false;
use super::management::{validate_action, UpdateActionRequest, SERVICE};
use super::messages::{GatewayError, ListDetails, ObjectDetails};
use super::{AppState, BodyMode, Rpc};
use crate::domain::role::Permission;
use crate::domain::Duration;
use crate::error::{ApiError, ApiResult};
use crate::rpc_call;
use crate::service::execute::effective_timeout;
use crate::store::crypto;
use crate::store::{actions as action_store, secrets as secret_store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use validator::Validate;

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    use Permission::{Read, Write};
    vec![
        Rpc::org::<__path_set_action_secret>(
            SERVICE,
            Whole,
            Write,
            rpc_call!(set_action_secret, check = check_set_secret),
        ),
        Rpc::org::<__path_list_action_secrets>(SERVICE, Whole, Read, rpc_call!(list_action_secrets)),
        Rpc::org::<__path_remove_action_secret>(SERVICE, Ignored, Write, rpc_call!(remove_action_secret)),
        Rpc::org::<__path_list_action_versions>(SERVICE, Ignored, Read, rpc_call!(list_action_versions)),
        Rpc::org::<__path_get_action_version>(SERVICE, Ignored, Read, rpc_call!(get_action_version)),
        Rpc::org::<__path_rollback_action>(SERVICE, Ignored, Write, rpc_call!(rollback_action)),
    ]
}

// ---------- secrets ----------

/// The most bytes a secret value may have.
pub const MAX_SECRET_BYTES: usize = 4096;
const NAME_PATTERN: &str = "^[A-Z][A-Z0-9_]{0,63}$";

/// Whether `name` matches `^[A-Z][A-Z0-9_]{0,63}$`.
pub fn valid_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=64).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b[1..].iter().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

fn check_secret_value(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty() || value.len() > MAX_SECRET_BYTES {
        return Err(ApiError::invalid(format!(
            "invalid {field}: value length must be between 1 and {MAX_SECRET_BYTES} bytes, inclusive"
        )));
    }
    Ok(())
}

/// Checks the `secrets` override map of a dry run (`_test`, `_replay`): names and values follow
/// the rules of SetActionSecret.
pub fn check_secret_overrides(message: &str, secrets: &BTreeMap<String, String>) -> ApiResult<()> {
    for (name, value) in secrets {
        if !valid_secret_name(name) {
            return Err(ApiError::invalid(format!(
                "invalid {message}.Secrets[{name:?}]: key does not match regex pattern \"{NAME_PATTERN}\""
            )));
        }
        check_secret_value(&format!("{message}.Secrets[{name:?}]"), value)?;
    }
    Ok(())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct SetActionSecretRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub name: String,
    /// 1..4096 bytes of UTF-8; never returned by any API.
    #[serde(default)]
    #[schema(example = "sk_live_...")]
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct SecretNameRequest {
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ListActionSecretsRequest {}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionSecret {
    #[schema(example = "CRM_API_KEY")]
    pub name: String,
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListActionSecretsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<ActionSecret>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretDetailsResponse {
    pub details: ObjectDetails,
}

fn check_set_secret(_s: &AppState, r: &SetActionSecretRequest) -> ApiResult<()> {
    if !valid_secret_name(&r.name) {
        return Err(ApiError::invalid(format!(
            "invalid SetActionSecretRequest.Name: value does not match regex pattern \"{NAME_PATTERN}\""
        )));
    }
    check_secret_value("SetActionSecretRequest.Value", &r.value)
}

#[utoipa::path(put, path = "/management/v1/actions/secrets/{name}", tag = "ManagementService",
    operation_id = "ManagementService_SetActionSecret",
    summary = "Create or replace an action secret (scripts read it with require(\"zitadel/secrets\").get)",
    params(("name" = String, Path, description = "Secret name, ^[A-Z][A-Z0-9_]{0,63}$")),
    request_body = SetActionSecretRequest,
    responses((status = 200, body = SecretDetailsResponse),
        (status = 400, description = "Invalid name or value", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 429, description = "100 secrets per organization (ACTION-s3cr3t)", body = GatewayError)))]
pub async fn set_action_secret(s: AppState, c: Caller, r: SetActionSecretRequest) -> ApiResult<SecretDetailsResponse> {
    check_set_secret(&s, &r)?;
    let key = s.config.encryption_key.as_deref().unwrap_or("");
    let enc = crypto::encrypt(key, &r.value).map_err(ApiError::internal)?;
    let w = secret_store::set(&s.store, c.org, c.token_id, r.name, enc).await?;
    s.execute.invalidate_secrets(c.org);
    Ok(SecretDetailsResponse { details: ObjectDetails::written(w.sequence, w.created_at, c.org) })
}

#[utoipa::path(post, path = "/management/v1/actions/secrets/_search", tag = "ManagementService",
    operation_id = "ManagementService_ListActionSecrets", summary = "List the organization's action secrets (names only)",
    request_body = ListActionSecretsRequest,
    responses((status = 200, body = ListActionSecretsResponse),
        (status = 400, description = "The body is not a JSON object", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_action_secrets(
    s: AppState,
    c: Caller,
    _r: ListActionSecretsRequest,
) -> ApiResult<ListActionSecretsResponse> {
    let position = s.store.last_position().await?;
    let rows = secret_store::list(&s.store.db, c.org).await?;
    Ok(ListActionSecretsResponse {
        details: ListDetails::new(rows.len() as u64, position),
        result: rows
            .into_iter()
            .map(|r| ActionSecret {
                details: ObjectDetails::read(r.sequence, r.created_at, r.changed_at, r.org_id),
                name: r.name,
            })
            .collect(),
    })
}

#[utoipa::path(delete, path = "/management/v1/actions/secrets/{name}", tag = "ManagementService",
    operation_id = "ManagementService_RemoveActionSecret", summary = "Remove an action secret",
    params(("name" = String, Path, description = "Secret name")),
    responses((status = 200, body = SecretDetailsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "ACTION-s3cnf", body = GatewayError)))]
pub async fn remove_action_secret(s: AppState, c: Caller, r: SecretNameRequest) -> ApiResult<SecretDetailsResponse> {
    if !valid_secret_name(&r.name) {
        return Err(secret_store::not_found());
    }
    let w = secret_store::remove(&s.store, c.org, c.token_id, r.name).await?;
    s.execute.invalidate_secrets(c.org);
    // A removal answers its change date, as the management API's other removals do.
    Ok(SecretDetailsResponse { details: ObjectDetails::changed(w.sequence, w.created_at, c.org) })
}

// ---------- versions ----------

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionVersion {
    #[schema(example = "2")]
    pub version: String,
    pub name: String,
    pub script: String,
    #[schema(example = "10s")]
    pub timeout: String,
    #[serde(skip_serializing_if = "is_false")]
    pub allowed_to_fail: bool,
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListActionVersionsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<ActionVersion>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetActionVersionResponse {
    pub version: ActionVersion,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RollbackActionResponse {
    pub details: ObjectDetails,
    /// The new version (with the content of the one rolled back to).
    #[schema(example = "4")]
    pub version: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionVersionRequest {
    #[serde(default)]
    pub id: String,
    #[serde(default, deserialize_with = "super::json::int64_text::deserialize")]
    pub version: String,
}

fn version_msg(v: entity::action_version::Model, max: Duration) -> ActionVersion {
    ActionVersion {
        version: v.version.to_string(),
        timeout: effective_timeout(v.timeout_nanos, max).to_string(),
        details: ObjectDetails::read(v.sequence, v.created_at, v.created_at, v.org_id),
        name: v.name,
        script: v.script,
        allowed_to_fail: v.allowed_to_fail,
    }
}

fn action_not_found() -> ApiError {
    ApiError::not_found("QUERY-GEfnb", "Action not found")
}

fn parse_version(raw: &str) -> Option<i64> {
    raw.parse::<i64>().ok().filter(|v| *v > 0)
}

#[utoipa::path(get, path = "/management/v1/actions/{id}/versions", tag = "ManagementService",
    operation_id = "ManagementService_ListActionVersions", summary = "The kept versions of an action (the 50 newest), newest first",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = ListActionVersionsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "QUERY-GEfnb", body = GatewayError)))]
pub async fn list_action_versions(
    s: AppState,
    c: Caller,
    r: ActionVersionRequest,
) -> ApiResult<ListActionVersionsResponse> {
    let id = crate::domain::id::parse(&r.id).ok_or_else(action_not_found)?;
    let position = s.store.last_position().await?;
    let rows = action_store::versions(&s.store.db, c.org, id).await?.ok_or_else(action_not_found)?;
    let max = s.config.max_action_timeout;
    Ok(ListActionVersionsResponse {
        details: ListDetails::new(rows.len() as u64, position),
        result: rows.into_iter().map(|v| version_msg(v, max)).collect(),
    })
}

#[utoipa::path(get, path = "/management/v1/actions/{id}/versions/{version}", tag = "ManagementService",
    operation_id = "ManagementService_GetActionVersion", summary = "One kept version of an action",
    params(("id" = String, Path, description = "Action id"), ("version" = String, Path, description = "Version number (an int64)")),
    responses((status = 200, body = GetActionVersionResponse),
        (status = 400, description = "A version that is not an int64", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown action (QUERY-GEfnb), unknown or pruned version (ACTION-v3rs0)", body = GatewayError)))]
pub async fn get_action_version(
    s: AppState,
    c: Caller,
    r: ActionVersionRequest,
) -> ApiResult<GetActionVersionResponse> {
    let id = crate::domain::id::parse(&r.id).ok_or_else(action_not_found)?;
    let found = match parse_version(&r.version) {
        Some(v) => action_store::version(&s.store.db, c.org, id, v).await?,
        None => None,
    };
    match found {
        Some(v) => Ok(GetActionVersionResponse { version: version_msg(v, s.config.max_action_timeout) }),
        None if action_store::exists(&s.store.db, c.org, id).await? => Err(action_store::version_not_found()),
        None => Err(action_not_found()),
    }
}

#[utoipa::path(post, path = "/management/v1/actions/{id}/versions/{version}/_rollback", tag = "ManagementService",
    operation_id = "ManagementService_RollbackAction",
    summary = "Give the action the content of a kept version, recorded as a new version",
    params(("id" = String, Path, description = "Action id"), ("version" = String, Path, description = "Version number")),
    responses((status = 200, body = RollbackActionResponse),
        (status = 400, description = "The action already has that content (ACTION-r0llb), or it fails today's validation", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown action (COMMAND-Sfg2t), unknown or pruned version (ACTION-v3rs0)", body = GatewayError),
        (status = 409, description = "The version's name is taken now (V3-DKcYh)", body = GatewayError)))]
pub async fn rollback_action(s: AppState, c: Caller, r: ActionVersionRequest) -> ApiResult<RollbackActionResponse> {
    let not_found = || ApiError::not_found("COMMAND-Sfg2t", "Action not found");
    let id = crate::domain::id::parse(&r.id).ok_or_else(not_found)?;
    let Some(to) = parse_version(&r.version) else {
        return Err(if action_store::exists(&s.store.db, c.org, id).await? {
            action_store::version_not_found()
        } else {
            not_found()
        });
    };
    let max = s.config.max_action_timeout;
    // The version's name and script pass today's UpdateAction rules (limits may have changed
    // since). Its timeout is read as every stored timeout is, reads and runs alike: one above a
    // lowered maximum counts as the maximum (the version reads show that), so it is no reason to
    // refuse the rollback.
    let check = move |input: &action_store::ActionInput| {
        let as_update =
            UpdateActionRequest { name: input.name.clone(), script: input.script.clone(), ..Default::default() };
        let timeout = Some(effective_timeout(input.timeout_nanos, max));
        validate_action("RollbackActionRequest", as_update.validate(), timeout, max)
    };
    let changed = action_store::rollback(&s.store, c.org, c.token_id, id, to, check).await?;
    s.execute.invalidate(c.org);
    let w = changed.written;
    Ok(RollbackActionResponse {
        details: ObjectDetails::written(w.sequence, w.created_at, c.org),
        version: changed.version.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::valid_secret_name;

    #[test]
    fn secret_names() {
        for ok in ["A", "API_KEY", "K9", &format!("A{}", "B".repeat(63))] {
            assert!(valid_secret_name(ok), "{ok}");
        }
        for bad in ["", "a", "_A", "9A", "A-B", "Ab", "A B", "Ä", &format!("A{}", "B".repeat(64))] {
            assert!(!valid_secret_name(bad), "{bad}");
        }
    }
}
