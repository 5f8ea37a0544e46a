//! The editor documents of a trigger (authoring.md §3): TypeScript declarations and the JSON
//! Schemas of `_execute`'s context and effects, rendered from the runtime's own table
//! (`runtime::api::surface`). REST only, like `/openapi.json`; roles as GetFlow.

use super::execute::parse_flow_trigger;
use super::{error_response, AppState, Transport};
use crate::domain::role::Permission;
use crate::domain::Trigger;
use crate::runtime::api::surface;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const BASE: &str = "/management/v1/flows/{flowType}/trigger/{triggerType}";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/types.d.ts"), get(|s, p, h| document(s, p, h, Doc::Declarations)))
        .route(&format!("{BASE}/context.schema.json"), get(|s, p, h| document(s, p, h, Doc::Context)))
        .route(&format!("{BASE}/effects.schema.json"), get(|s, p, h| document(s, p, h, Doc::Effects)))
}

#[derive(Clone, Copy)]
enum Doc {
    Declarations,
    Context,
    Effects,
}

async fn document(
    State(s): State<AppState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
    headers: HeaderMap,
    doc: Doc,
) -> Response {
    if let Err(e) = super::authenticate(&s, &headers, Permission::Read, true).await {
        return error_response(&e, Transport::Gateway);
    }
    let Path((flow, trigger)) = match path {
        Ok(path) => path,
        Err(rejection) => return error_response(&super::path_error(&rejection, None), Transport::Gateway),
    };
    let trigger: Trigger = match parse_flow_trigger(&flow, &trigger) {
        Ok(t) => t,
        Err(e) => return error_response(&e, Transport::Gateway),
    };
    let (media, body) = match doc {
        Doc::Declarations => ("text/plain; charset=utf-8", surface::declarations(trigger)),
        Doc::Context => ("application/schema+json", pretty(&surface::served_context_schema(trigger))),
        Doc::Effects => ("application/schema+json", pretty(&surface::effects_schema(trigger))),
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static(media))], body).into_response()
}

fn pretty(v: &serde_json::Value) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

#[utoipa::path(get, path = "/management/v1/flows/{flowType}/trigger/{triggerType}/types.d.ts", tag = "ManagementService",
    operation_id = "ManagementService_GetTriggerTypes",
    summary = "TypeScript declarations of ctx, api and the modules for this trigger (for editors and tsc --checkJs)",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    responses((status = 200, description = "The declarations", content_type = "text/plain; charset=utf-8", body = String),
        (status = 400, description = "FlowType missing (COMMAND-Dfhj5) or TriggerType is invalid (COMMAND-Dfgh6)", body = super::messages::GatewayError),
        (status = 401, body = super::messages::GatewayError), (status = 403, body = super::messages::GatewayError)))]
pub fn types_doc() {}

#[utoipa::path(get, path = "/management/v1/flows/{flowType}/trigger/{triggerType}/context.schema.json", tag = "ManagementService",
    operation_id = "ManagementService_GetTriggerContextSchema",
    summary = "JSON Schema (2020-12) of _execute's context for this trigger",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    responses((status = 200, description = "The schema", content_type = "application/schema+json", body = std::collections::HashMap<String, serde_json::Value>),
        (status = 400, description = "FlowType missing (COMMAND-Dfhj5) or TriggerType is invalid (COMMAND-Dfgh6)", body = super::messages::GatewayError),
        (status = 401, body = super::messages::GatewayError), (status = 403, body = super::messages::GatewayError)))]
pub fn context_schema_doc() {}

#[utoipa::path(get, path = "/management/v1/flows/{flowType}/trigger/{triggerType}/effects.schema.json", tag = "ManagementService",
    operation_id = "ManagementService_GetTriggerEffectsSchema",
    summary = "JSON Schema (2020-12) of the effects _execute can answer for this trigger",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    responses((status = 200, description = "The schema", content_type = "application/schema+json", body = std::collections::HashMap<String, serde_json::Value>),
        (status = 400, description = "FlowType missing (COMMAND-Dfhj5) or TriggerType is invalid (COMMAND-Dfgh6)", body = super::messages::GatewayError),
        (status = 401, body = super::messages::GatewayError), (status = 403, body = super::messages::GatewayError)))]
pub fn effects_schema_doc() {}
