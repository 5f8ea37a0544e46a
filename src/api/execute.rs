//! Our extensions of the management service: ExecuteFlowTrigger, TestAction, ListRuns, GetRun.

use super::auth::Caller;
use super::json;
use super::management::validate_action;
use super::messages::{GatewayError, ListDetails, ListQuery};
use super::{AppState, BodyMode, Rpc};
use crate::domain::role::Permission;
use crate::domain::{Duration, FlowType, Trigger, TriggerType};
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::runtime::api::surface::DIGITS_PATTERN as DIGITS;
use crate::runtime::trigger::{ActionSpec, RunReport};
use crate::runtime::LogRecord;
use crate::service::execute::effective_timeout;
use crate::store::runs::RunFilter;
use crate::store::{actions as action_store, runs as run_store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use validator::Validate;

pub fn rpcs() -> Vec<Rpc> {
    vec![
        Rpc::org::<__path_execute_flow_trigger>(
            super::management::SERVICE,
            BodyMode::Whole,
            Permission::Execute,
            rpc_call!(execute_flow_trigger, check = check_execute),
        ),
        Rpc::org::<__path_test_action>(
            super::management::SERVICE,
            BodyMode::Whole,
            Permission::Write,
            rpc_call!(test_action, check = check_test_action),
        ),
        Rpc::org::<__path_list_runs>(
            super::management::SERVICE,
            BodyMode::Whole,
            Permission::Read,
            rpc_call!(list_runs, check = check_list_runs),
        ),
        Rpc::org::<__path_get_run>(super::management::SERVICE, BodyMode::Ignored, Permission::Read, rpc_call!(get_run)),
    ]
}

proto_enum!(
    /// Outcome of a trigger or of one action run.
    Outcome {
        Unspecified = 0 => "OUTCOME_UNSPECIFIED",
        Succeeded = 1 => "OUTCOME_SUCCEEDED",
        Failed = 2 => "OUTCOME_FAILED",
        Skipped = 3 => "OUTCOME_SKIPPED",
        NotRun = 4 => "OUTCOME_NOT_RUN",
    }
);

impl From<crate::domain::Outcome> for Outcome {
    fn from(o: crate::domain::Outcome) -> Self {
        use crate::domain::Outcome as O;
        match o {
            O::Succeeded => Outcome::Succeeded,
            O::Failed => Outcome::Failed,
            O::Skipped => Outcome::Skipped,
            O::NotRun => Outcome::NotRun,
        }
    }
}

impl Outcome {
    /// The stored outcome (none for unspecified).
    pub(crate) fn stored(self) -> Option<crate::domain::Outcome> {
        use crate::domain::Outcome as O;
        match self {
            Outcome::Unspecified => None,
            Outcome::Succeeded => Some(O::Succeeded),
            Outcome::Failed => Some(O::Failed),
            Outcome::Skipped => Some(O::Skipped),
            Outcome::NotRun => Some(O::NotRun),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteFlowTriggerRequest {
    #[serde(default, alias = "flow_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub flow_type: String,
    #[serde(default, alias = "trigger_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub trigger_type: String,
    /// Trigger-specific data: what the trigger's actions read (`user`, `claims`, `userGrants`, …).
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub context: Option<Value>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub http_calls: u32,
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub log_records: u32,
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub log_bytes: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LogRecordMsg {
    pub level: String,
    pub message: String,
    pub time: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action_id: String,
    pub action_name: String,
    /// The version of the action that ran (absent for an inline script).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action_version: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "json::is_false")]
    pub allowed_to_fail: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "0.000412s")]
    pub duration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Only in TestAction responses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogRecordMsg>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecuteFlowTriggerResponse {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub effects: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<RunSummary>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestActionRequest {
    #[serde(default, alias = "action_id")]
    pub action_id: Option<String>,
    #[serde(default)]
    #[validate(length(min = 1, max = 200))]
    pub name: String,
    #[serde(default)]
    #[validate(length(min = 1, max = 10000))]
    pub script: String,
    #[serde(default, deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "5s")]
    pub timeout: Option<Duration>,
    #[serde(default, alias = "allowed_to_fail")]
    pub allowed_to_fail: bool,
    #[serde(default, alias = "flow_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(value_type = String, example = "2")]
    pub flow_type: String,
    #[serde(default, alias = "trigger_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(value_type = String, example = "4")]
    pub trigger_type: String,
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, serde_json::Value>)]
    pub context: Option<Value>,
    /// Secret values for this dry run only (name → value), over the stored ones; never stored.
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, String>,
}

pub(crate) fn parse_flow_trigger(flow: &str, trigger: &str) -> ApiResult<Trigger> {
    let flow = FlowType::parse(flow)
        .ok_or_else(|| ApiError::new(Kind::InvalidArgument, "COMMAND-Dfhj5", "FlowType missing"))?;
    let trigger = TriggerType::parse(trigger)
        .and_then(|t| Trigger::new(flow, t))
        .ok_or_else(|| ApiError::new(Kind::InvalidArgument, "COMMAND-Dfgh6", "TriggerType is invalid"))?;
    Ok(trigger)
}

/// Checks the types of the known context fields (unknown ones are ignored).
fn check_execute(_s: &AppState, r: &ExecuteFlowTriggerRequest) -> ApiResult<()> {
    let trigger = parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    check_context("ExecuteFlowTriggerRequest", trigger, r.context.clone()).map(|_| ())
}

/// The context's known fields against the trigger's context schema (the one served as
/// `context.schema.json`), at every depth: a value of the wrong type, an enum name that does not
/// exist or metadata that is not base64 is a 400 naming the field. Unknown fields are ignored
/// (and `null`s are gone before this: they count as absent).
fn check_context(message: &str, trigger: Trigger, context: Option<Value>) -> ApiResult<Value> {
    let mut context = context.unwrap_or_else(|| Value::Object(Default::default()));
    if !context.is_object() {
        return Err(ApiError::invalid(format!("invalid {message}.Context: must be an object")));
    }
    let schema = context_schema(trigger);
    let mut path = Vec::new();
    if let Err(path) = camel_case_members(schema, &mut context, &mut path) {
        return Err(ApiError::invalid(format!(
            "invalid {message}.Context{path}: given twice (as its JSON name and its proto name)"
        )));
    }
    let mut path = Vec::new();
    if let Err((path, expected)) = conforms(schema, &context, &mut path) {
        return Err(ApiError::invalid(format!("invalid {message}.Context{path}: must be {expected}")));
    }
    // Unknown members are ignored: gone before a script or an answer could see them, and before
    // NULs are looked for (the free-form members, claims and the like, keep all they hold).
    crate::runtime::api::surface::prune(schema, &mut context);
    let mut path = Vec::new();
    if nul_in(schema, &context, &mut path) {
        return Err(ApiError::invalid(format!(
            "invalid {message}.Context{}: must not contain NUL characters",
            field_path(&path)
        )));
    }
    Ok(context)
}

/// The context's known fields are read under their proto names too (`user_grants`,
/// `project_id`), as every request message's fields are (contract README §2): a member the schema
/// does not name, whose lowerCamelCase form it names, takes that name. Free-form members keep
/// their keys as sent. Both spellings of one field in one object is an error (as in protojson);
/// its path is returned.
fn camel_case_members(schema: &Value, value: &mut Value, path: &mut Vec<String>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if !crate::runtime::api::surface::names_members(schema) {
                return Ok(());
            }
            let renames: Vec<(String, String)> = map
                .keys()
                .filter(|key| key.contains('_') && crate::runtime::api::surface::member_schema(schema, key).is_none())
                .filter_map(|key| {
                    // Exactly the field's proto name: `user__grants` or `claims_` stay unknown.
                    let camel = crate::domain::case::lower_camel(key);
                    let exact = crate::domain::case::snake(&camel) == *key;
                    crate::runtime::api::surface::member_schema(schema, &camel)
                        .filter(|_| exact)
                        .map(|_| (key.clone(), camel))
                })
                .collect();
            for (snake, camel) in renames {
                if map.contains_key(&camel) {
                    path.push(camel);
                    return Err(field_path(path));
                }
                if let Some(member) = map.remove(&snake) {
                    map.insert(camel, member);
                }
            }
            for (key, member) in map.iter_mut() {
                if let Some(sub) = crate::runtime::api::surface::member_schema(schema, key) {
                    path.push(key.clone());
                    camel_case_members(sub, member, path)?;
                    path.pop();
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.get("items") else { return Ok(()) };
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                camel_case_members(item_schema, item, path)?;
                path.pop();
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether a NUL is in `value` (a string or a key); `path` then leads to it: a member the schema
/// names by its field name, a key of a free-form object as sent (`["myKey"]`, escaped).
fn nul_in(schema: &Value, value: &Value, path: &mut Vec<String>) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => {
            let item_schema = schema.get("items").unwrap_or(&Value::Null);
            items.iter().enumerate().any(|(i, item)| {
                path.push(format!("[{i}]"));
                let found = nul_in(item_schema, item, path);
                if !found {
                    path.pop();
                }
                found
            })
        }
        Value::Object(map) => map.iter().any(|(key, member)| {
            let named = crate::runtime::api::surface::member_schema(schema, key);
            // A key as sent, JSON-escaped (it may hold the NUL itself).
            let quoted = serde_json::to_string(key).unwrap_or_default();
            path.push(if named.is_some() { key.clone() } else { format!("[{quoted}]") });
            let found = key.contains('\0') || nul_in(named.unwrap_or(&Value::Null), member, path);
            if !found {
                path.pop();
            }
            found
        }),
        _ => false,
    }
}

fn context_schema(trigger: Trigger) -> &'static Value {
    crate::runtime::api::surface::checked_context_schema(trigger)
}

/// `.Field.Items[0].Roles`: each name with its first letter upper-cased, as protobuf
/// validation names fields.
fn field_path(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if segment.starts_with('[') {
            out.push_str(segment);
            continue;
        }
        out.push('.');
        let mut chars = segment.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// What a schema asks for, in words.
fn expected(schema: &Value) -> String {
    if let Some(branches) = schema["anyOf"].as_array() {
        let words: Vec<String> = branches.iter().map(expected).collect();
        return words.join(" or ");
    }
    if let Some(names) = schema["enum"].as_array() {
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        return format!("one of {}", names.join(", "));
    }
    let word = |ty: &str| match ty {
        "object" => "an object",
        "array" => "an array",
        "string" => "a string",
        "integer" => "an integer",
        "number" => "a number",
        "boolean" => "a boolean",
        _ => "a value",
    };
    match &schema["type"] {
        Value::String(ty) if ty == "string" && schema["contentEncoding"] == "base64" => "base64 text".into(),
        Value::String(ty) if ty == "string" && schema["pattern"] == DIGITS => "a string of its digits".into(),
        Value::String(ty) if ty == "integer" && schema["minimum"] == 0 => {
            format!("an integer from 0 to {}", u64::MAX)
        }
        Value::String(ty) => word(ty).into(),
        Value::Array(types) => types.iter().filter_map(Value::as_str).map(word).collect::<Vec<_>>().join(" or "),
        _ => "a value".into(),
    }
}

/// Whether `value` has the JSON type `ty` (integers: numbers without a fraction).
fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

/// Whether `value` is a uint64: the non-negative integers of the context schemas are (a user's
/// sequence).
fn is_uint64(value: &Value) -> bool {
    value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0 && (0.0..super::json::TWO_POW_64).contains(&f))
}

/// The `pattern`s the context schemas use: a string of digits (a uint64 as protobuf's JSON writes
/// it), checked here, and base64, which `contentEncoding` checks by decoding. A test checks that
/// the schemas hold no other.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    // The digits of a uint64 (leading zeros allowed, as protobuf's JSON parsers read them).
    pattern != DIGITS || (text.bytes().all(|b| b.is_ascii_digit()) && text.parse::<u64>().is_ok())
}

/// The keywords the context schemas use: type, enum, anyOf, allOf, properties, items, minimum,
/// pattern and a base64 `contentEncoding`. On a violation, the field's path and what it must be.
fn conforms(schema: &Value, value: &Value, path: &mut Vec<String>) -> Result<(), (String, String)> {
    if let Some(branches) = schema["anyOf"].as_array() {
        if !branches.iter().any(|b| conforms(b, value, &mut Vec::new()).is_ok()) {
            return Err((field_path(path), expected(schema)));
        }
    }
    let typed = match &schema["type"] {
        Value::String(ty) => has_type(value, ty),
        Value::Array(types) => types.iter().filter_map(Value::as_str).any(|ty| has_type(value, ty)),
        _ => true,
    };
    if !typed {
        return Err((field_path(path), expected(schema)));
    }
    if let Some(names) = schema["enum"].as_array() {
        if !names.contains(value) {
            return Err((field_path(path), expected(schema)));
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if n < min || (schema["type"] == "integer" && min == 0.0 && !is_uint64(value)) {
            return Err((field_path(path), expected(schema)));
        }
    }
    if let (Some(pattern), Some(text)) = (schema["pattern"].as_str(), value.as_str()) {
        if !matches_pattern(pattern, text) {
            return Err((field_path(path), expected(schema)));
        }
    }
    if schema["contentEncoding"] == "base64" {
        if let Some(text) = value.as_str() {
            if super::action_v2::decode_bytes(text).is_none() {
                return Err((field_path(path), expected(schema)));
            }
        }
    }
    if let (Some(props), Some(map)) = (schema["properties"].as_object(), value.as_object()) {
        for (key, field) in map {
            if let Some(sub) = props.get(key) {
                path.push(key.clone());
                conforms(sub, field, path)?;
                path.pop();
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (i, item) in list.iter().enumerate() {
            path.push(format!("[{i}]"));
            conforms(items, item, path)?;
            path.pop();
        }
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        conforms(part, value, path)?;
    }
    Ok(())
}

pub(crate) fn summary(r: &RunReport, id: Option<i64>, with_logs: bool) -> RunSummary {
    RunSummary {
        id: id.map(|i| i.to_string()).unwrap_or_default(),
        action_id: if r.action_id > 0 { r.action_id.to_string() } else { String::new() },
        action_name: r.action_name.clone(),
        action_version: r.action_version.map(|v| v.to_string()).unwrap_or_default(),
        outcome: r.outcome.into(),
        allowed_to_fail: r.allowed_to_fail,
        error: r.error.clone().unwrap_or_default(),
        duration: r.duration.map(|d| Duration { nanos: i64::try_from(d.as_nanos()).unwrap_or(i64::MAX) }.to_string()),
        usage: r.started_at.map(|_| Usage {
            http_calls: r.http_calls,
            log_records: r.logs.len() as u32,
            log_bytes: r.log_bytes.min(u32::MAX as u64) as u32,
        }),
        logs: (with_logs && !r.logs.is_empty()).then(|| {
            r.logs
                .iter()
                .map(|l| LogRecordMsg { level: l.level.clone(), message: l.message.clone(), time: l.time.clone() })
                .collect()
        }),
    }
}

#[utoipa::path(post, path = "/management/v1/flows/{flowType}/trigger/{triggerType}/_execute", tag = "ManagementService",
    operation_id = "ManagementService_ExecuteFlowTrigger", summary = "Run a trigger's actions and return their effects",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    request_body = ExecuteFlowTriggerRequest,
    responses((status = 200, description = "The trigger ran (see outcome)", body = ExecuteFlowTriggerResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 503, description = "No sandbox worker free within the queue timeout (Retry-After)", body = GatewayError)))]
pub async fn execute_flow_trigger(
    s: AppState,
    c: Caller,
    r: ExecuteFlowTriggerRequest,
) -> ApiResult<ExecuteFlowTriggerResponse> {
    let trigger = parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    let context = check_context("ExecuteFlowTriggerRequest", trigger, r.context)?;
    // On a task of its own: a caller that goes away (its deadline, a dropped connection) does not
    // cancel runs that started, so their records are still stored (execute.md §3).
    let task_state = s.clone();
    let done = s
        .detached
        .spawn(async move { task_state.execute.execute(c.org, trigger, &context).await })
        .await
        .map_err(ApiError::internal)??;
    let report = done.report;
    Ok(ExecuteFlowTriggerResponse {
        outcome: report.outcome.into(),
        effects: report.effects.filter(|e| !e.is_empty()),
        runs: report.runs.iter().zip(&done.record_ids).map(|(r, id)| summary(r, *id, false)).collect(),
        run_id: done.run_id.map(|id| id.to_string()).unwrap_or_default(),
        error: report.error.unwrap_or_default(),
    })
}

/// The field rules of TestAction, in their order (also run before request targets); the stored
/// action of `actionId` is looked up after them.
fn check_test_action(s: &AppState, r: &TestActionRequest) -> ApiResult<()> {
    if r.action_id.as_deref().is_some_and(|id| !id.is_empty()) {
        if !r.name.is_empty() || !r.script.is_empty() {
            return Err(ApiError::invalid(
                "invalid TestActionRequest: give either actionId or an inline name and script, not both",
            ));
        }
        // A timeout given with a stored action is this dry run's, within the same bounds.
        validate_action("TestActionRequest", Ok(()), r.timeout, s.execute.limits.max_action_timeout)?;
    } else {
        validate_action("TestActionRequest", r.validate(), r.timeout, s.execute.limits.max_action_timeout)?;
    }
    let trigger = parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    check_context("TestActionRequest", trigger, r.context.clone())?;
    super::authoring::check_secret_overrides("TestActionRequest", &r.secrets)
}

#[utoipa::path(post, path = "/management/v1/actions/_test", tag = "ManagementService",
    operation_id = "ManagementService_TestAction", summary = "Dry-run an inline script or a stored action (nothing is stored)",
    request_body = TestActionRequest,
    responses((status = 200, description = "The action ran (see outcome); runs[0].logs holds its log", body = ExecuteFlowTriggerResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown actionId (QUERY-GEfnb)", body = GatewayError),
        (status = 503, body = GatewayError)))]
pub async fn test_action(s: AppState, c: Caller, r: TestActionRequest) -> ApiResult<ExecuteFlowTriggerResponse> {
    check_test_action(&s, &r)?;
    let max = s.execute.limits.max_action_timeout;
    let stored = r.action_id.as_deref().filter(|id| !id.is_empty());
    let spec = if let Some(raw_id) = stored {
        let not_found = || ApiError::not_found("QUERY-GEfnb", "Action not found");
        let id = crate::domain::id::parse(raw_id).ok_or_else(not_found)?;
        let a = action_store::get(&s.store.db, c.org, id).await?.ok_or_else(not_found)?;
        let timeout = r.timeout.map(|t| t.nanos).filter(|&nanos| nanos > 0).unwrap_or(a.timeout_nanos);
        ActionSpec {
            id: a.id,
            timeout: effective_timeout(timeout, max),
            active: true,
            name: a.name,
            script: a.script,
            allowed_to_fail: a.allowed_to_fail,
            version: a.version,
        }
    } else {
        ActionSpec {
            id: 0,
            timeout: effective_timeout(r.timeout.unwrap_or_default().nanos, max),
            active: true,
            name: r.name,
            script: r.script,
            allowed_to_fail: r.allowed_to_fail,
            version: 0,
        }
    };
    let trigger = parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    let context = check_context("TestActionRequest", trigger, r.context)?;
    // A dry run: no v2 function targets are called.
    let report = s.execute.test(c.org, spec, trigger, &context, &r.secrets).await?;
    Ok(ExecuteFlowTriggerResponse {
        outcome: report.outcome.into(),
        effects: report.effects.filter(|e| !e.is_empty()),
        runs: report.runs.iter().map(|r| summary(r, None, true)).collect(),
        run_id: String::new(),
        error: report.error.unwrap_or_default(),
    })
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListRunsRequest {
    /// Paging of run records: `limit` 0 means 100; more than 100 is refused (QUERY-4M0fs).
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub queries: Vec<RunQuery>,
}

/// Exactly one of the query kinds.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunQuery {
    #[serde(default, alias = "action_id_query", deserialize_with = "json::message_opt::deserialize")]
    pub action_id_query: Option<RunActionIdQuery>,
    #[serde(default, alias = "outcome_query", deserialize_with = "json::message_opt::deserialize")]
    pub outcome_query: Option<OutcomeQuery>,
    #[serde(default, alias = "flow_type_query", deserialize_with = "json::message_opt::deserialize")]
    pub flow_type_query: Option<FlowTypeQuery>,
    #[serde(default, alias = "run_id_query", deserialize_with = "json::message_opt::deserialize")]
    pub run_id_query: Option<RunIdQuery>,
    /// Runs of one connector connection's calls.
    #[serde(default, alias = "connection_id_query", deserialize_with = "json::message_opt::deserialize")]
    pub connection_id_query: Option<ConnectionIdQuery>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionIdQuery {
    #[serde(default, alias = "connection_id")]
    pub connection_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunActionIdQuery {
    #[serde(default, alias = "action_id")]
    pub action_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OutcomeQuery {
    #[serde(default)]
    pub outcome: Outcome,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowTypeQuery {
    #[serde(default, alias = "flow_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(value_type = String, example = "2")]
    pub flow_type: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunIdQuery {
    #[serde(default, alias = "run_id")]
    pub run_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: String,
    pub run_id: String,
    pub action_id: String,
    pub action_name: String,
    /// The version of the action that ran (absent on records written before versions existed).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action_version: String,
    pub flow_type: String,
    pub trigger_type: String,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "json::is_false")]
    pub allowed_to_fail: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    pub started_at: String,
    #[schema(example = "0.000412s")]
    pub duration: String,
    pub usage: Usage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogRecordMsg>>,
    pub resource_owner: String,
    /// The connector connection whose call ran this (connector calls only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub connection_id: String,
    /// The connector call's condition (`function/<name>`, `request/<method>`, `event/<type>`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListRunsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Run>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetRunResponse {
    pub run: Run,
}

#[derive(Debug, Default, Deserialize)]
pub struct GetRunRequest {
    #[serde(default)]
    pub id: String,
}

pub(crate) fn run_msg(r: entity::run::Model, with_logs: bool) -> Run {
    let logs = (with_logs && r.logs != "[]").then(|| {
        serde_json::from_str::<Vec<LogRecord>>(&r.logs)
            .unwrap_or_default()
            .into_iter()
            .map(|l| LogRecordMsg { level: l.level, message: l.message, time: l.time })
            .collect()
    });
    Run {
        id: r.id.to_string(),
        run_id: r.run_id.to_string(),
        action_id: r.action_id.to_string(),
        action_name: r.action_name,
        action_version: r.action_version.map(|v| v.to_string()).unwrap_or_default(),
        flow_type: r.flow_type.to_string(),
        trigger_type: r.trigger_type.to_string(),
        outcome: r.outcome.into(),
        allowed_to_fail: r.allowed_to_fail,
        error: r.error,
        started_at: crate::domain::time::format_micros(r.started_at),
        duration: Duration { nanos: r.duration_nanos }.to_string(),
        usage: Usage {
            http_calls: r.http_calls as u32,
            log_records: r.log_records as u32,
            log_bytes: r.log_bytes as u32,
        },
        logs,
        resource_owner: r.org_id.to_string(),
        connection_id: r.connection_id.map(|c| c.to_string()).unwrap_or_default(),
        condition: r.condition.unwrap_or_default(),
        warnings: r.warnings.and_then(|w| serde_json::from_str(&w).ok()).unwrap_or_default(),
    }
}

const MAX_RUNS_PAGE: u64 = 100;

/// The page size and filters of a ListRuns request, or the 400 of its first broken rule (also run
/// before request targets).
fn run_filters(r: &ListRunsRequest) -> ApiResult<(u64, Vec<RunFilter>)> {
    let limit = match r.query.as_ref().map_or(0, |q| q.limit) as u64 {
        0 => MAX_RUNS_PAGE,
        n if n > MAX_RUNS_PAGE => return Err(ApiError::new(Kind::InvalidArgument, "QUERY-4M0fs", "Limit exceeded")),
        n => n,
    };
    super::check_query_kinds(
        "ListRunsRequest",
        "RunQuery",
        r.queries.iter().map(|q| {
            q.action_id_query.is_some() as u8
                + q.outcome_query.is_some() as u8
                + q.flow_type_query.is_some() as u8
                + q.run_id_query.is_some() as u8
                + q.connection_id_query.is_some() as u8
        }),
    )?;
    let mut filters = Vec::new();
    for (i, q) in r.queries.iter().enumerate() {
        filters.push(if let Some(q) = &q.action_id_query {
            crate::domain::id::parse(&q.action_id).map(RunFilter::Action).unwrap_or(RunFilter::Nothing)
        } else if let Some(q) = &q.outcome_query {
            q.outcome.stored().map(RunFilter::Outcome).unwrap_or(RunFilter::Nothing)
        } else if let Some(q) = &q.flow_type_query {
            let flow = FlowType::parse(&q.flow_type).ok_or_else(|| {
                ApiError::invalid(format!(
                    "invalid ListRunsRequest.Queries[{i}].FlowTypeQuery.FlowType: unknown flow type {:?}",
                    q.flow_type
                ))
            })?;
            RunFilter::Flow(flow.0)
        } else if let Some(q) = &q.run_id_query {
            crate::domain::id::parse(&q.run_id).map(RunFilter::RunId).unwrap_or(RunFilter::Nothing)
        } else if let Some(q) = &q.connection_id_query {
            crate::domain::id::parse(&q.connection_id).map(RunFilter::Connection).unwrap_or(RunFilter::Nothing)
        } else {
            unreachable!("exactly one query kind is set")
        });
    }
    Ok((limit, filters))
}

fn check_list_runs(_s: &AppState, r: &ListRunsRequest) -> ApiResult<()> {
    run_filters(r).map(|_| ())
}

#[utoipa::path(post, path = "/management/v1/runs/_search", tag = "ManagementService",
    operation_id = "ManagementService_ListRuns", summary = "Search run records, newest first (without logs)",
    request_body = ListRunsRequest,
    responses((status = 200, body = ListRunsResponse),
        (status = 400, description = "Invalid query, unknown flow type, or Limit exceeded (QUERY-4M0fs)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_runs(s: AppState, c: Caller, r: ListRunsRequest) -> ApiResult<ListRunsResponse> {
    let (limit, filters) = run_filters(&r)?;
    let q = r.query.unwrap_or_default();
    let position = s.store.last_position().await?;
    let (total, rows) = run_store::list(&s.store, c.org, &filters, q.offset.min(i64::MAX as u64), limit).await?;
    Ok(ListRunsResponse {
        details: ListDetails::new(total, position),
        result: rows.into_iter().map(|r| run_msg(r, false)).collect(),
    })
}

#[utoipa::path(get, path = "/management/v1/runs/{id}", tag = "ManagementService",
    operation_id = "ManagementService_GetRun", summary = "One run record with its logs",
    params(("id" = String, Path, description = "Run record id")),
    responses((status = 200, body = GetRunResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "RUN-n0tFd", body = GatewayError)))]
pub async fn get_run(s: AppState, c: Caller, r: GetRunRequest) -> ApiResult<GetRunResponse> {
    let not_found = || ApiError::not_found("RUN-n0tFd", "Run not found");
    let id = crate::domain::id::parse(&r.id).ok_or_else(not_found)?;
    let run = run_store::get(&s.store, c.org, id).await?.ok_or_else(not_found)?;
    Ok(GetRunResponse { run: run_msg(run, true) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (k, x) in map {
                    if let (true, Some(p)) = (k == "pattern", x.as_str()) {
                        out.push(p.to_string());
                    }
                    patterns(x, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|x| patterns(x, out)),
            _ => {}
        }
    }

    /// The check understands every pattern the served context schemas hold.
    #[test]
    fn context_schemas_use_only_understood_patterns() {
        let mut all = Vec::new();
        for trigger in Trigger::ALL.iter() {
            patterns(context_schema(*trigger), &mut all);
        }
        assert!(!all.is_empty());
        let base64 = crate::runtime::api::surface::BASE64_PATTERN;
        assert!(all.iter().all(|p| p == DIGITS || p == base64), "{all:?}");
    }

    /// A user's sequence is a uint64: a number or a string of digits.
    #[test]
    fn sequence_is_a_uint64() {
        let trigger = *Trigger::ALL.iter().find(|t| context_schema(**t)["properties"].get("user").is_some()).unwrap();
        let check =
            |sequence: Value| check_context("M", trigger, Some(serde_json::json!({"user": {"sequence": sequence}})));
        for ok in [
            serde_json::json!(5),
            serde_json::json!("5"),
            serde_json::json!(0),
            serde_json::json!("18446744073709551615"),
            serde_json::json!(18446744073709551615u64),
            serde_json::json!("007"),
            serde_json::json!(1e3),
        ] {
            assert!(check(ok.clone()).is_ok(), "{ok}");
        }
        for bad in [
            serde_json::json!("abc"),
            serde_json::json!(-3),
            serde_json::json!(""),
            serde_json::json!("-3"),
            serde_json::json!(1.5),
            serde_json::json!("18446744073709551616"),
            serde_json::json!("1".repeat(5000)),
            serde_json::json!(18446744073709551616.0),
            serde_json::json!(1e300),
        ] {
            let err = check(bad.clone()).expect_err(&bad.to_string());
            assert!(err.to_string().contains("M.Context.User.Sequence"), "{bad}: {err}");
        }
    }
}
