//! Targets: create, update, delete, get and list.

use super::*;

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
    check_endpoint(&s, MSG, &r.endpoint).await?;
    let signing_key = generate_signing_key();
    let new = store::NewTarget {
        name: r.name,
        target_type,
        interrupt_on_error: interrupt,
        endpoint: r.endpoint,
        timeout_nanos,
        payload_type: stored_payload_type(r.payload_type),
        signing_key_enc: encrypt_key(&s, &signing_key)?,
    };
    let model = store::create_target(&s.store, new, c.token_id, instance_owner(&s, &c)).await?;
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
    check_id(MSG, "Id", &r.id)?;
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
        check_endpoint(&s, MSG, endpoint).await?;
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
        payload_type: r.payload_type.map(|p| stored_payload_type(Some(p))),
        rotation: match new_key.as_deref() {
            Some(key) => Some(store::KeyRotation {
                key_enc: encrypt_key(&s, key)?,
                grace_micros,
                encryption_key: encryption_key(&s).to_string(),
            }),
            None => None,
        },
    };
    let model = store::update_target(&s.store, id, patch, c.token_id, instance_owner(&s, &c)).await?;
    Ok(UpdateTargetResponse { change_date: format_micros(model.changed_at), signing_key: new_key })
}

#[utoipa::path(delete, path = "/v2/actions/targets/{id}", tag = "ActionService",
    operation_id = "ActionService_DeleteTarget",
    summary = "Delete a target (idempotent) and remove it from every execution",
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = DeleteTargetResponse),
        (status = 400, description = "An id empty or over 200 characters", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn delete_target(s: AppState, c: Caller, r: TargetIdRequest) -> ApiResult<DeleteTargetResponse> {
    check_id("DeleteTargetRequest", "Id", &r.id)?;
    let Some(id) = crate::domain::id::parse(&r.id) else {
        return Ok(DeleteTargetResponse { deletion_date: None });
    };
    let at = store::delete_target(&s.store, id, c.token_id, instance_owner(&s, &c)).await?;
    Ok(DeleteTargetResponse { deletion_date: at.map(format_micros) })
}

#[utoipa::path(get, path = "/v2/actions/targets/{id}", tag = "ActionService",
    operation_id = "ActionService_GetTarget", summary = "Get a target, with its signing key",
    params(("id" = String, Path, description = "Target id")),
    responses((status = 200, body = GetTargetResponse),
        (status = 400, description = "An id empty or over 200 characters", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Target not found (Errors.Target.NotFound)", body = GatewayError)))]
pub async fn get_target(s: AppState, _c: Caller, r: TargetIdRequest) -> ApiResult<GetTargetResponse> {
    check_id("GetTargetRequest", "Id", &r.id)?;
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
    // Each filter prepared once for all the rows: a name folded once, ids in a set.
    enum Filter<'a> {
        Name(Option<crate::store::actions::TextMatch>),
        Ids(std::collections::HashSet<&'a str>),
    }
    let filters: Vec<Filter> = r
        .filters
        .iter()
        .map(|f| match (&f.target_name_filter, &f.in_target_ids_filter) {
            (Some(n), _) => Filter::Name(text_matcher(n.method, &n.target_name)),
            (None, Some(ids)) => Filter::Ids(ids.target_ids.iter().map(String::as_str).collect()),
            (None, None) => unreachable!("checked above"),
        })
        .collect();
    let mut rows: Vec<target::Model> = store::all_targets(&s.store.db)
        .await?
        .into_iter()
        .filter(|t| {
            filters.iter().all(|f| match f {
                Filter::Name(m) => m.as_ref().is_some_and(|m| m.is_match(&t.name)),
                Filter::Ids(ids) => ids.contains(t.id.to_string().as_str()),
            })
        })
        .collect();
    match r.sorting_column {
        TargetFieldName::ChangedDate => rows.sort_by_key(|t| (t.changed_at, t.id)),
        TargetFieldName::Name => rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id))),
        // By ZITADEL's type numbers (restWebhook, restCall, restAsync), not the stored spelling.
        TargetFieldName::TargetType => rows.sort_by_key(|t| (t.target_type.zitadel_number(), t.id)),
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
