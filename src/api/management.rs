//! `zitadel.management.v1.ManagementService`: actions, flows and triggers, orgs.

use super::auth::Caller;
use super::json::{self, is_false};
use super::messages::{Empty, GatewayError, ListDetails, ListQuery, LocalizedMessage, ObjectDetails};
use super::{AppState, BodyMode, Rpc};
use crate::domain::flow::Lang;
use crate::domain::role::Permission;
use crate::domain::{Duration, FlowType, TriggerType};
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::actions::{self as action_store, ActionFilter, ActionInput, ListParams, SortColumn, TextMethod};
use crate::store::{flows as flow_store, orgs as org_store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

pub const SERVICE: &str = "zitadel.management.v1.ManagementService";

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    use Permission::{Any, Instance, Read, Write};
    vec![
        Rpc::org::<__path_list_actions>(SERVICE, Whole, Read, rpc_call!(list_actions, check = check_list_actions)),
        Rpc::org::<__path_get_action>(SERVICE, Ignored, Read, rpc_call!(get_action)),
        Rpc::org::<__path_create_action>(SERVICE, Whole, Write, rpc_call!(create_action, check = check_create_action)),
        Rpc::org::<__path_update_action>(SERVICE, Whole, Write, rpc_call!(update_action, check = check_update_action)),
        Rpc::org::<__path_deactivate_action>(SERVICE, Ignored, Write, rpc_call!(deactivate_action)),
        Rpc::org::<__path_reactivate_action>(SERVICE, Ignored, Write, rpc_call!(reactivate_action)),
        Rpc::org::<__path_delete_action>(SERVICE, Ignored, Write, rpc_call!(delete_action)),
        Rpc::org::<__path_list_flow_types>(SERVICE, Ignored, Read, rpc_call!(list_flow_types)),
        Rpc::org::<__path_list_flow_trigger_types>(SERVICE, Ignored, Read, rpc_call!(list_flow_trigger_types)),
        Rpc::org::<__path_get_flow>(SERVICE, Ignored, Read, rpc_call!(get_flow)),
        Rpc::org::<__path_clear_flow>(SERVICE, Ignored, Write, rpc_call!(clear_flow)),
        Rpc::org::<__path_set_trigger_actions>(
            SERVICE,
            Whole,
            Write,
            rpc_call!(set_trigger_actions, check = check_set_trigger_actions),
        ),
        Rpc::org::<__path_add_org>(SERVICE, Whole, Instance, rpc_call!(add_org, check = check_add_org)),
        Rpc::org::<__path_get_my_org>(SERVICE, Ignored, Any, rpc_call!(get_my_org)),
    ]
}

proto_enum!(
    /// Action state (ZITADEL numbering).
    ActionState {
        Unspecified = 0 => "ACTION_STATE_UNSPECIFIED",
        Inactive = 1 => "ACTION_STATE_INACTIVE",
        Active = 2 => "ACTION_STATE_ACTIVE",
    }
);

impl From<action_store::ActionState> for ActionState {
    fn from(s: action_store::ActionState) -> Self {
        match s {
            action_store::ActionState::Inactive => ActionState::Inactive,
            action_store::ActionState::Active => ActionState::Active,
        }
    }
}

impl ActionState {
    /// The stored state (none for unspecified).
    fn stored(self) -> Option<action_store::ActionState> {
        match self {
            ActionState::Unspecified => None,
            ActionState::Inactive => Some(action_store::ActionState::Inactive),
            ActionState::Active => Some(action_store::ActionState::Active),
        }
    }
}

proto_enum!(
    /// Column to sort ListActions by.
    ActionFieldName {
        Unspecified = 0 => "ACTION_FIELD_NAME_UNSPECIFIED",
        Name = 1 => "ACTION_FIELD_NAME_NAME",
        Id = 2 => "ACTION_FIELD_NAME_ID",
        State = 3 => "ACTION_FIELD_NAME_STATE",
    }
);

proto_enum!(
    /// How a text query compares.
    TextQueryMethod {
        Equals = 0 => "TEXT_QUERY_METHOD_EQUALS",
        EqualsIgnoreCase = 1 => "TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE",
        StartsWith = 2 => "TEXT_QUERY_METHOD_STARTS_WITH",
        StartsWithIgnoreCase = 3 => "TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE",
        Contains = 4 => "TEXT_QUERY_METHOD_CONTAINS",
        ContainsIgnoreCase = 5 => "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE",
        EndsWith = 6 => "TEXT_QUERY_METHOD_ENDS_WITH",
        EndsWithIgnoreCase = 7 => "TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE",
    }
);

proto_enum!(
    FlowState {
        Unspecified = 0 => "FLOW_STATE_UNSPECIFIED",
        Inactive = 1 => "FLOW_STATE_INACTIVE",
        Active = 2 => "FLOW_STATE_ACTIVE",
    }
);

proto_enum!(
    OrgState {
        Unspecified = 0 => "ORG_STATE_UNSPECIFIED",
        Active = 1 => "ORG_STATE_ACTIVE",
        Inactive = 2 => "ORG_STATE_INACTIVE",
        Removed = 3 => "ORG_STATE_REMOVED",
    }
);

// ---------- messages ----------

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[schema(example = "293485729384756231")]
    pub id: String,
    pub details: ObjectDetails,
    #[serde(skip_serializing_if = "ActionState::is_zero")]
    pub state: ActionState,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub script: String,
    /// Duration, e.g. "10s"; never 0 (a stored 0 reads as the configured maximum).
    #[schema(example = "10s")]
    pub timeout: String,
    #[serde(skip_serializing_if = "is_false")]
    pub allowed_to_fail: bool,
    /// The current version (int64 as a string), from "1"; see ListActionVersions.
    #[schema(example = "3")]
    pub version: String,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateActionRequest {
    #[serde(default)]
    #[validate(length(min = 1, max = 200))]
    #[schema(example = "addGroupClaim")]
    pub name: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 10000))]
    #[schema(example = "function addGroupClaim(ctx, api) { api.v1.claims.setClaim('group', 'admin') }")]
    pub script: String,
    #[serde(default)]
    /// Duration as "<seconds>s", 0s..max (0 = the maximum).
    #[serde(deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    #[serde(alias = "allowed_to_fail")]
    pub allowed_to_fail: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreateActionResponse {
    pub id: String,
    pub details: ObjectDetails,
    /// The action's first version, "1".
    #[schema(example = "1")]
    pub version: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UpdateActionResponse {
    pub details: ObjectDetails,
    /// The version this change recorded.
    #[schema(example = "2")]
    pub version: String,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateActionRequest {
    #[serde(default)]
    #[schema(ignore)]
    pub id: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 10000))]
    pub script: String,
    #[serde(default)]
    #[serde(deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "10s")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    #[serde(alias = "allowed_to_fail")]
    pub allowed_to_fail: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct IdRequest {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DetailsResponse {
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetActionResponse {
    pub action: Action,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListActionsRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
    #[serde(default)]
    #[serde(alias = "sorting_column")]
    pub sorting_column: ActionFieldName,
    #[serde(default)]
    #[serde(deserialize_with = "json::messages::deserialize")]
    pub queries: Vec<ActionQuery>,
}

/// Exactly one of the three queries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionQuery {
    #[serde(default)]
    #[serde(alias = "action_id_query", deserialize_with = "json::message_opt::deserialize")]
    pub action_id_query: Option<ActionIdQuery>,
    #[serde(default)]
    #[serde(alias = "action_name_query", deserialize_with = "json::message_opt::deserialize")]
    pub action_name_query: Option<ActionNameQuery>,
    #[serde(default)]
    #[serde(alias = "action_state_query", deserialize_with = "json::message_opt::deserialize")]
    pub action_state_query: Option<ActionStateQuery>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionIdQuery {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionNameQuery {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub method: TextQueryMethod,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct ActionStateQuery {
    #[serde(default)]
    pub state: ActionState,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListActionsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "ActionFieldName::is_zero")]
    pub sorting_column: ActionFieldName,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Action>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FlowTypeMsg {
    #[schema(example = "2")]
    pub id: String,
    pub name: LocalizedMessage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriggerTypeMsg {
    #[schema(example = "5")]
    pub id: String,
    pub name: LocalizedMessage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListFlowTypesResponse {
    pub result: Vec<FlowTypeMsg>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListFlowTriggerTypesResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<TriggerTypeMsg>,
}

#[derive(Debug, Default, Deserialize)]
pub struct FlowTypeRequest {
    #[serde(default)]
    #[serde(rename = "type", deserialize_with = "json::num_or_str::deserialize")]
    pub flow_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerActions {
    pub trigger_type: TriggerTypeMsg,
    pub actions: Vec<Action>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    #[serde(rename = "type")]
    pub flow_type: FlowTypeMsg,
    pub details: ObjectDetails,
    pub state: FlowState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trigger_actions: Vec<TriggerActions>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetFlowResponse {
    pub flow: Flow,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetTriggerActionsRequest {
    #[serde(default)]
    #[serde(alias = "flow_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub flow_type: String,
    #[serde(default)]
    #[serde(alias = "trigger_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub trigger_type: String,
    #[serde(default)]
    /// Ordered action ids; `[]` empties the trigger.
    #[serde(alias = "action_ids")]
    pub action_ids: Vec<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AddOrgRequest {
    #[serde(default)]
    #[schema(example = "ACME")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddOrgResponse {
    pub id: String,
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    pub id: String,
    pub details: ObjectDetails,
    pub state: OrgState,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetMyOrgResponse {
    pub org: Org,
}

// ---------- conversions ----------

pub fn action_msg(a: entity::action::Model, max: Duration) -> Action {
    Action {
        id: a.id.to_string(),
        details: ObjectDetails::read(a.sequence, a.created_at, a.changed_at, a.org_id),
        state: a.state.into(),
        timeout: crate::service::execute::effective_timeout(a.timeout_nanos, max).to_string(),
        name: a.name,
        script: a.script,
        allowed_to_fail: a.allowed_to_fail,
        version: a.version.to_string(),
    }
}

pub fn flow_type_msg(f: FlowType, lang: Lang) -> FlowTypeMsg {
    FlowTypeMsg {
        id: f.0.to_string(),
        name: LocalizedMessage { key: f.key().into(), localized_message: f.name(lang).into() },
    }
}

pub fn trigger_type_msg(t: TriggerType, lang: Lang) -> TriggerTypeMsg {
    TriggerTypeMsg {
        id: t.0.to_string(),
        name: LocalizedMessage { key: t.key().into(), localized_message: t.name(lang).into() },
    }
}

pub fn org_msg(o: entity::org::Model) -> Org {
    Org {
        id: o.id.to_string(),
        details: ObjectDetails::read(o.sequence, o.created_at, o.changed_at, o.id),
        state: OrgState::Active,
        name: o.name,
    }
}

/// Checks name, script and timeout in that order and reports the first violation.
pub fn validate_action(
    message: &str,
    errors: Result<(), validator::ValidationErrors>,
    timeout: Option<Duration>,
    max: Duration,
) -> ApiResult<()> {
    if let Err(errors) = errors {
        let fields = errors.field_errors();
        if fields.contains_key("name") {
            return Err(ApiError::invalid(format!(
                "invalid {message}.Name: value length must be between 1 and 200 runes, inclusive"
            )));
        }
        if fields.contains_key("script") {
            return Err(ApiError::invalid(format!(
                "invalid {message}.Script: value length must be between 1 and 10000 runes, inclusive"
            )));
        }
    }
    if let Some(t) = timeout {
        if t.nanos < 0 || t > max {
            return Err(ApiError::invalid(format!(
                "invalid {message}.Timeout: value must be inside range [0s, {max}]"
            )));
        }
    }
    Ok(())
}

fn action_id(raw: &str, not_found: ApiError) -> ApiResult<i64> {
    crate::domain::id::parse(raw).ok_or(not_found)
}

// ---------- handlers ----------

fn check_create_action(s: &AppState, r: &CreateActionRequest) -> ApiResult<()> {
    validate_action("CreateActionRequest", r.validate(), r.timeout, s.config.max_action_timeout)
}

fn check_update_action(s: &AppState, r: &UpdateActionRequest) -> ApiResult<()> {
    // ZITADEL's UpdateActionRequest validates the id first.
    super::check_id("UpdateActionRequest", "Id", &r.id)?;
    validate_action("UpdateActionRequest", r.validate(), r.timeout, s.config.max_action_timeout)
}

#[utoipa::path(post, path = "/management/v1/actions", tag = "ManagementService",
    operation_id = "ManagementService_CreateAction", summary = "Create an action",
    request_body = CreateActionRequest,
    responses((status = 200, body = CreateActionResponse),
        (status = 400, description = "Invalid name, script or timeout", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 409, description = "Name already used in this organization (V3-DKcYh)", body = GatewayError)))]
pub async fn create_action(s: AppState, c: Caller, r: CreateActionRequest) -> ApiResult<CreateActionResponse> {
    check_create_action(&s, &r)?;
    let input = ActionInput {
        name: r.name,
        script: r.script,
        timeout_nanos: r.timeout.unwrap_or_default().nanos,
        allowed_to_fail: r.allowed_to_fail,
    };
    let (id, w) = action_store::create(&s.store, c.org, c.token_id, input).await?;
    Ok(CreateActionResponse {
        id: id.to_string(),
        details: ObjectDetails::written(w.sequence, w.created_at, c.org),
        version: "1".into(),
    })
}

#[utoipa::path(get, path = "/management/v1/actions/{id}", tag = "ManagementService",
    operation_id = "ManagementService_GetAction", summary = "Get an action by id",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = GetActionResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "QUERY-GEfnb", body = GatewayError)))]
pub async fn get_action(s: AppState, c: Caller, r: IdRequest) -> ApiResult<GetActionResponse> {
    let not_found = || ApiError::not_found("QUERY-GEfnb", "Action not found");
    let id = action_id(&r.id, not_found())?;
    let a = action_store::get(&s.store.db, c.org, id).await?.ok_or_else(not_found)?;
    Ok(GetActionResponse { action: action_msg(a, s.config.max_action_timeout) })
}

#[utoipa::path(put, path = "/management/v1/actions/{id}", tag = "ManagementService",
    operation_id = "ManagementService_UpdateAction", summary = "Replace an action's name, script, timeout and allowedToFail",
    params(("id" = String, Path, description = "Action id")),
    request_body = UpdateActionRequest,
    responses((status = 200, body = UpdateActionResponse),
        (status = 400, description = "Validation error, or No changes (ACTION-dg4t2)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "COMMAND-Sfg2t", body = GatewayError),
        (status = 409, description = "V3-DKcYh", body = GatewayError)))]
pub async fn update_action(s: AppState, c: Caller, r: UpdateActionRequest) -> ApiResult<UpdateActionResponse> {
    check_update_action(&s, &r)?;
    let id = action_id(&r.id, ApiError::not_found("COMMAND-Sfg2t", "Action not found"))?;
    let input = ActionInput {
        name: r.name,
        script: r.script,
        timeout_nanos: r.timeout.unwrap_or_default().nanos,
        allowed_to_fail: r.allowed_to_fail,
    };
    let changed = action_store::update(&s.store, c.org, c.token_id, id, input).await?;
    s.execute.invalidate(c.org);
    let w = changed.written;
    Ok(UpdateActionResponse {
        details: ObjectDetails::written(w.sequence, w.created_at, c.org),
        version: changed.version.to_string(),
    })
}

#[utoipa::path(post, path = "/management/v1/actions/{id}/_deactivate", tag = "ManagementService",
    operation_id = "ManagementService_DeactivateAction", summary = "Deactivate an action (it stays in its flows and is skipped)",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = "Action is not active (COMMAND-Dgj92)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "COMMAND-NRmhu", body = GatewayError)))]
pub async fn deactivate_action(s: AppState, c: Caller, r: IdRequest) -> ApiResult<DetailsResponse> {
    let id = action_id(&r.id, ApiError::not_found("COMMAND-NRmhu", "Action not found"))?;
    let w = action_store::set_state(&s.store, c.org, c.token_id, id, false).await?;
    s.execute.invalidate(c.org);
    Ok(DetailsResponse { details: ObjectDetails::written(w.sequence, w.created_at, c.org) })
}

#[utoipa::path(post, path = "/management/v1/actions/{id}/_reactivate", tag = "ManagementService",
    operation_id = "ManagementService_ReactivateAction", summary = "Reactivate an inactive action",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = "Action is not inactive (COMMAND-J53zh)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "COMMAND-Aa22g", body = GatewayError)))]
pub async fn reactivate_action(s: AppState, c: Caller, r: IdRequest) -> ApiResult<DetailsResponse> {
    let id = action_id(&r.id, ApiError::not_found("COMMAND-Aa22g", "Action not found"))?;
    let w = action_store::set_state(&s.store, c.org, c.token_id, id, true).await?;
    s.execute.invalidate(c.org);
    Ok(DetailsResponse { details: ObjectDetails::written(w.sequence, w.created_at, c.org) })
}

#[utoipa::path(delete, path = "/management/v1/actions/{id}", tag = "ManagementService",
    operation_id = "ManagementService_DeleteAction", summary = "Delete an action and remove it from every flow",
    params(("id" = String, Path, description = "Action id")),
    responses((status = 200, body = Empty),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "COMMAND-Dgh4h", body = GatewayError)))]
pub async fn delete_action(s: AppState, c: Caller, r: IdRequest) -> ApiResult<Empty> {
    let id = action_id(&r.id, ApiError::not_found("COMMAND-Dgh4h", "Action not found"))?;
    action_store::delete(&s.store, c.org, c.token_id, id).await?;
    s.execute.invalidate(c.org);
    Ok(Empty {})
}

/// The field rules of ListActions (also run before request targets): the page bounds and exactly
/// one kind per query.
fn check_list_actions(_s: &AppState, r: &ListActionsRequest) -> ApiResult<()> {
    ListQuery::bounds(&r.query)?;
    super::check_query_kinds(
        "ListActionsRequest",
        "ActionQuery",
        r.queries.iter().map(|q| {
            q.action_id_query.is_some() as u8
                + q.action_name_query.is_some() as u8
                + q.action_state_query.is_some() as u8
        }),
    )
}

#[utoipa::path(post, path = "/management/v1/actions/_search", tag = "ManagementService",
    operation_id = "ManagementService_ListActions", summary = "Search the organization's actions",
    request_body = ListActionsRequest,
    responses((status = 200, body = ListActionsResponse),
        (status = 400, description = "Invalid query, or Limit exceeded (QUERY-4M0fs)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_actions(s: AppState, c: Caller, r: ListActionsRequest) -> ApiResult<ListActionsResponse> {
    check_list_actions(&s, &r)?;
    let (offset, limit, asc) = ListQuery::bounds(&r.query)?;
    let mut filters = Vec::with_capacity(r.queries.len());
    for q in r.queries {
        filters.push(if let Some(q) = q.action_id_query {
            crate::domain::id::parse(&q.id).map(ActionFilter::Id).unwrap_or(ActionFilter::Nothing)
        } else if let Some(q) = q.action_name_query {
            let method = TextMethod::from_number(q.method.number()).unwrap_or(TextMethod::Equals);
            ActionFilter::Name(q.name, method)
        } else if let Some(q) = q.action_state_query {
            q.state.stored().map(ActionFilter::State).unwrap_or(ActionFilter::Nothing)
        } else {
            unreachable!("exactly one query kind is set")
        });
    }
    let sort = match r.sorting_column {
        ActionFieldName::Unspecified => SortColumn::Unspecified,
        ActionFieldName::Name => SortColumn::Name,
        ActionFieldName::Id => SortColumn::Id,
        ActionFieldName::State => SortColumn::State,
    };
    let page = action_store::list(&s.store, c.org, ListParams { offset, limit, asc, sort, filters }).await?;
    let max = s.config.max_action_timeout;
    Ok(ListActionsResponse {
        details: ListDetails::new(page.total, page.position),
        sorting_column: r.sorting_column,
        result: page.rows.into_iter().map(|a| action_msg(a, max)).collect(),
    })
}

#[utoipa::path(post, path = "/management/v1/flows/types/_search", tag = "ManagementService",
    operation_id = "ManagementService_ListFlowTypes", summary = "List the flow types",
    responses((status = 200, body = ListFlowTypesResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_flow_types(_s: AppState, c: Caller, _r: Empty) -> ApiResult<ListFlowTypesResponse> {
    Ok(ListFlowTypesResponse { result: FlowType::ALL.iter().map(|f| flow_type_msg(*f, c.lang)).collect() })
}

#[utoipa::path(post, path = "/management/v1/flows/{type}/triggers/_search", tag = "ManagementService",
    operation_id = "ManagementService_ListFlowTriggerTypes", summary = "List the trigger types of a flow",
    params(("type" = String, Path, description = "Flow type id (1..4)")),
    responses((status = 200, body = ListFlowTriggerTypesResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown flow type (MANAG-P2OBk)", body = GatewayError)))]
pub async fn list_flow_trigger_types(
    _s: AppState,
    c: Caller,
    r: FlowTypeRequest,
) -> ApiResult<ListFlowTriggerTypesResponse> {
    let flow =
        FlowType::parse(&r.flow_type).ok_or_else(|| ApiError::not_found("MANAG-P2OBk", "Flow type not found"))?;
    Ok(ListFlowTriggerTypesResponse { result: flow.triggers().iter().map(|t| trigger_type_msg(*t, c.lang)).collect() })
}

fn flow_missing(id: &'static str) -> ApiError {
    ApiError::new(Kind::InvalidArgument, id, "FlowType missing")
}

#[utoipa::path(get, path = "/management/v1/flows/{type}", tag = "ManagementService",
    operation_id = "ManagementService_GetFlow", summary = "Get a flow with its triggers and actions in order",
    params(("type" = String, Path, description = "Flow type id (1..4)")),
    responses((status = 200, body = GetFlowResponse),
        (status = 400, description = "FlowType missing (COMMAND-Dfw2h)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn get_flow(s: AppState, c: Caller, r: FlowTypeRequest) -> ApiResult<GetFlowResponse> {
    let flow = FlowType::parse(&r.flow_type).ok_or_else(|| flow_missing("COMMAND-Dfw2h"))?;
    let view = flow_store::get_flow(&s.store.db, c.org, flow).await?;
    let max = s.config.max_action_timeout;
    let details = view
        .details
        .map(|d| ObjectDetails {
            sequence: d.sequence,
            creation_date: None,
            change_date: Some(crate::domain::time::format_micros(d.changed_at)),
            resource_owner: d.org_id.to_string(),
        })
        .unwrap_or_default();
    Ok(GetFlowResponse {
        flow: Flow {
            flow_type: flow_type_msg(flow, c.lang),
            details,
            state: FlowState::Active,
            trigger_actions: view
                .triggers
                .into_iter()
                .map(|(t, actions)| TriggerActions {
                    trigger_type: trigger_type_msg(t, c.lang),
                    actions: actions.into_iter().map(|a| action_msg(a, max)).collect(),
                })
                .collect(),
        },
    })
}

#[utoipa::path(post, path = "/management/v1/flows/{type}/_clear", tag = "ManagementService",
    operation_id = "ManagementService_ClearFlow", summary = "Remove every action from every trigger of a flow",
    params(("type" = String, Path, description = "Flow type id (1..4)")),
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = "FlowType missing (COMMAND-Dfw2h) or Flow is already empty (COMMAND-DgGh3)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn clear_flow(s: AppState, c: Caller, r: FlowTypeRequest) -> ApiResult<DetailsResponse> {
    let flow = FlowType::parse(&r.flow_type).ok_or_else(|| flow_missing("COMMAND-Dfw2h"))?;
    let w = flow_store::clear_flow(&s.store, c.org, c.token_id, flow).await?;
    s.execute.invalidate(c.org);
    Ok(DetailsResponse { details: ObjectDetails::changed(w.sequence, w.created_at, c.org) })
}

fn flow_and_trigger(r: &SetTriggerActionsRequest) -> ApiResult<(FlowType, TriggerType)> {
    let flow = FlowType::parse(&r.flow_type).ok_or_else(|| flow_missing("COMMAND-Dfhj5"))?;
    let trigger = TriggerType::parse(&r.trigger_type)
        .filter(|t| flow.triggers().contains(t))
        .ok_or_else(|| ApiError::new(Kind::InvalidArgument, "COMMAND-Dfgh6", "TriggerType is invalid"))?;
    Ok((flow, trigger))
}

fn check_set_trigger_actions(_s: &AppState, r: &SetTriggerActionsRequest) -> ApiResult<()> {
    flow_and_trigger(r).map(|_| ())
}

#[utoipa::path(post, path = "/management/v1/flows/{flowType}/trigger/{triggerType}", tag = "ManagementService",
    operation_id = "ManagementService_SetTriggerActions", summary = "Replace one trigger's ordered list of actions",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    request_body = SetTriggerActionsRequest,
    responses((status = 200, body = DetailsResponse),
        (status = 400, description = "COMMAND-Dfhj5, COMMAND-Dfgh6, COMMAND-Nfh52 or COMMAND-dg422", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn set_trigger_actions(s: AppState, c: Caller, r: SetTriggerActionsRequest) -> ApiResult<DetailsResponse> {
    let (flow, trigger) = flow_and_trigger(&r)?;
    let w = flow_store::set_trigger_actions(&s.store, c.org, c.token_id, flow, trigger, r.action_ids).await?;
    s.execute.invalidate(c.org);
    Ok(DetailsResponse { details: ObjectDetails::written(w.sequence, w.created_at, c.org) })
}

fn check_add_org(_s: &AppState, r: &AddOrgRequest) -> ApiResult<()> {
    checked_org_name(&r.name).map(|_| ())
}

/// An organization's name as stored, wherever it is given (AddOrg, `actionsd org create`):
/// without surrounding white space (as upstream trims it), so that `" Org2 "` is the same name as
/// `Org2`; a name of only white space is refused.
pub fn checked_org_name(name: &str) -> ApiResult<&str> {
    let len = name.chars().count();
    if !(1..=200).contains(&len) {
        return Err(ApiError::invalid(
            "invalid AddOrgRequest.Name: value length must be between 1 and 200 runes, inclusive",
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid("invalid AddOrgRequest.Name: must not be blank"));
    }
    Ok(name)
}

#[utoipa::path(post, path = "/management/v1/orgs", tag = "ManagementService",
    operation_id = "ManagementService_AddOrg", summary = "Create an organization (IAM_OWNER)",
    request_body = AddOrgRequest,
    responses((status = 200, body = AddOrgResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 409, description = "Name already used (ORG-lapo2m)", body = GatewayError)))]
pub async fn add_org(s: AppState, c: Caller, r: AddOrgRequest) -> ApiResult<AddOrgResponse> {
    let name = checked_org_name(&r.name)?.to_string();
    let org = org_store::add_org(&s.store, name, c.token_id).await?;
    s.auth.add_org(org.id);
    Ok(AddOrgResponse { id: org.id.to_string(), details: ObjectDetails::written(org.sequence, org.created_at, org.id) })
}

#[utoipa::path(get, path = "/management/v1/orgs/me", tag = "ManagementService",
    operation_id = "ManagementService_GetMyOrg", summary = "The organization in context",
    responses((status = 200, body = GetMyOrgResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn get_my_org(s: AppState, c: Caller, _r: Empty) -> ApiResult<GetMyOrgResponse> {
    let org = org_store::get_org(&s.store.db, c.org)
        .await?
        .ok_or_else(|| ApiError::not_found("ORG-gQTYP", "Organisation not found"))?;
    Ok(GetMyOrgResponse { org: org_msg(org) })
}
