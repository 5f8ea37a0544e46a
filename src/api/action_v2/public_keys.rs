//! Target public keys (for JWE payloads): add, activate, deactivate, remove and list.

use super::*;

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
    check_id(MSG, "TargetId", &r.target_id)?;
    let target_id = parse_target_id(&r.target_id)?;
    let (public_key, fingerprint) = check_public_key(MSG, &r.public_key)?;
    let expires_at = match r.expiration_date.as_deref() {
        None => None,
        Some(raw) => {
            let at = crate::domain::time::parse_rfc3339(raw).ok_or_else(|| {
                invalid_public_key(format!(
                    "invalid {MSG}.ExpirationDate: not an RFC 3339 timestamp of years 1 to 9999"
                ))
            })?;
            if at <= crate::domain::time::now_micros() {
                return Err(invalid_public_key(format!("invalid {MSG}.ExpirationDate: must be in the future")));
            }
            Some(at)
        }
    };
    let new = store::NewKey { public_key, fingerprint, expires_at };
    let key = store::add_key(&s.store, target_id, new, c.token_id, instance_owner(&s, &c)).await?;
    Ok(AddPublicKeyResponse { key_id: key.id.to_string(), creation_date: format_micros(key.created_at) })
}

fn check_key_ids(msg: &str, r: &PublicKeyIdRequest) -> ApiResult<()> {
    check_id(msg, "TargetId", &r.target_id)?;
    check_id(msg, "KeyId", &r.key_id)
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
    check_key_ids("ActivatePublicKeyRequest", &r)?;
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = parse_key_id(&r.key_id)?;
    let now = crate::domain::time::now_micros();
    let key = store::activate_key(&s.store, target_id, key_id, now, c.token_id, instance_owner(&s, &c)).await?;
    Ok(ActivatePublicKeyResponse { change_date: format_micros(key.changed_at) })
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys/{keyId}/deactivate", tag = "ActionService",
    operation_id = "ActionService_DeactivatePublicKey",
    summary = "Deactivate a public key (a JWE target without an active key fails its calls)",
    params(("targetId" = String, Path, description = "Target id"), ("keyId" = String, Path, description = "Key id")),
    responses((status = 200, body = DeactivatePublicKeyResponse),
        (status = 400, description = "An id empty or over 200 characters", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target or key not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn deactivate_public_key(
    s: AppState,
    c: Caller,
    r: PublicKeyIdRequest,
) -> ApiResult<DeactivatePublicKeyResponse> {
    check_key_ids("DeactivatePublicKeyRequest", &r)?;
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = parse_key_id(&r.key_id)?;
    let key = store::deactivate_key(&s.store, target_id, key_id, c.token_id, instance_owner(&s, &c)).await?;
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
    check_key_ids("RemovePublicKeyRequest", &r)?;
    let target_id = parse_target_id(&r.target_id)?;
    let key_id = crate::domain::id::parse(&r.key_id);
    let at = store::remove_key(&s.store, target_id, key_id, c.token_id, instance_owner(&s, &c)).await?;
    Ok(RemovePublicKeyResponse { deletion_date: at.map(format_micros) })
}

#[utoipa::path(post, path = "/v2/actions/targets/{targetId}/publickeys/search", tag = "ActionService",
    operation_id = "ActionService_ListPublicKeys", summary = "List a target's public keys, oldest first",
    params(("targetId" = String, Path, description = "Target id")),
    request_body = ListPublicKeysRequest,
    responses((status = 200, body = ListPublicKeysResponse),
        (status = 400, description = "An id empty or over 200 characters", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn list_public_keys(s: AppState, _c: Caller, r: ListPublicKeysRequest) -> ApiResult<ListPublicKeysResponse> {
    check_id("ListPublicKeysRequest", "TargetId", &r.target_id)?;
    let target_id = parse_target_id(&r.target_id)?;
    let filters = key_filters(&r.filters)?;
    store::get_target(&s.store.db, target_id).await?.ok_or_else(store::not_found)?;
    let keys = store::list_keys(&s.store.db, target_id).await?;
    let public_keys = keys.into_iter().filter(|k| filters.iter().all(|f| f.matches(k))).map(public_key_msg).collect();
    Ok(ListPublicKeysResponse { public_keys })
}

/// One ListPublicKeys filter, read and checked.
enum KeyFilter {
    Ids(std::collections::HashSet<String>),
    Active(bool),
    Expiration(TimestampFilterMethod, i64),
}

impl KeyFilter {
    fn matches(&self, key: &entity::target_key::Model) -> bool {
        use std::cmp::Ordering::*;
        match self {
            KeyFilter::Ids(ids) => ids.contains(&key.id.to_string()),
            KeyFilter::Active(active) => key.active == *active,
            KeyFilter::Expiration(method, at) => key.expires_at.is_some_and(|expires| {
                let order = expires.cmp(at);
                match method {
                    TimestampFilterMethod::Equals => order == Equal,
                    TimestampFilterMethod::After => order == Greater,
                    TimestampFilterMethod::AfterOrEquals => order != Less,
                    TimestampFilterMethod::Before => order == Less,
                    TimestampFilterMethod::BeforeOrEquals => order != Greater,
                }
            }),
        }
    }
}

fn key_filters(filters: &[PublicKeySearchFilter]) -> ApiResult<Vec<KeyFilter>> {
    let mut out = Vec::with_capacity(filters.len());
    for (i, f) in filters.iter().enumerate() {
        let set = [f.key_ids_filter.is_some(), f.active_filter.is_some(), f.expiration_date_filter.is_some()];
        if set.iter().filter(|s| **s).count() != 1 {
            return Err(ApiError::invalid(format!(
                "invalid ListPublicKeysRequest.Filters[{i}]: exactly one of keyIdsFilter, activeFilter and \
                 expirationDateFilter must be set"
            )));
        }
        out.push(match (&f.key_ids_filter, f.active_filter, &f.expiration_date_filter) {
            (Some(ids), _, _) => KeyFilter::Ids(ids.ids.iter().cloned().collect()),
            (_, Some(active), _) => KeyFilter::Active(active),
            (_, _, Some(t)) => {
                let at = crate::domain::time::parse_rfc3339(&t.timestamp).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "invalid ListPublicKeysRequest.Filters[{i}].ExpirationDateFilter.Timestamp: not an RFC 3339 \
                         timestamp of years 1 to 9999"
                    ))
                })?;
                KeyFilter::Expiration(t.method, at)
            }
            (None, None, None) => unreachable!("checked above"),
        });
    }
    Ok(out)
}
