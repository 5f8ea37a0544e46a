//! Executions: set and list, and the lists of known functions, methods and services.

use super::*;

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
    let at = store::set_execution(&s.store, id, targets, c.token_id, instance_owner(&s, &c)).await?;
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
            // Keyed as the request's other shape errors (a filter holds conditions).
            return Err(super::invalid_execution(format!(
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
        ExecutionFieldName::Id => rows.sort_by(|a, b| a.0.id.cmp(&b.0.id)),
        ExecutionFieldName::ChangedDate => {
            rows.sort_by(|a, b| a.0.changed_at.cmp(&b.0.changed_at).then(a.0.id.cmp(&b.0.id)))
        }
        // The creation date, also when unspecified (ZITADEL's default, like ListTargets').
        _ => rows.sort_by(|a, b| a.0.created_at.cmp(&b.0.created_at).then(a.0.id.cmp(&b.0.id))),
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
