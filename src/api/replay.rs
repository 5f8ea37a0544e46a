//! Replay (authoring.md §4): the organization's action settings (recording contexts, retention)
//! and ReplayTrigger, which runs a draft against recorded calls of a trigger.

use super::auth::Caller;
use super::execute::{LogRecordMsg, Outcome};
use super::json::{self, is_false};
use super::management::{validate_action, SERVICE};
use super::messages::{GatewayError, ObjectDetails};
use super::{AppState, BodyMode, Rpc};
use crate::domain::role::Permission;
use crate::domain::Duration;
use crate::error::{ApiError, ApiResult, Kind};
use crate::proto_enum;
use crate::rpc_call;
use crate::runtime::trigger::{ActionSpec, TriggerReport};
use crate::service::execute::effective_timeout;
use crate::service::replay::{Replay, ReplayOutcome};
use crate::store::recordings::{self, Pick, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use validator::Validate;

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    use Permission::{Read, Write};
    vec![
        Rpc::org::<__path_get_action_settings>(SERVICE, Ignored, Read, rpc_call!(get_action_settings)),
        Rpc::org::<__path_set_action_settings>(
            SERVICE,
            Whole,
            Write,
            rpc_call!(set_action_settings, check = check_set_action_settings),
        ),
        Rpc::org::<__path_replay_trigger>(SERVICE, Whole, Write, rpc_call!(replay_trigger, check = check_replay)),
    ]
}

// ---------- settings ----------

const MIN_RETENTION_SECS: i64 = 60;
const MAX_RETENTION_SECS: i64 = 604_800;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActionSettings {
    /// Whether `_execute` and connector calls record their (redacted) input context for replay.
    #[serde(skip_serializing_if = "is_false")]
    pub record_contexts: bool,
    /// How long recorded contexts are kept (always shown; default "86400s").
    #[schema(example = "86400s")]
    pub retention: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GetActionSettingsResponse {
    pub settings: ActionSettings,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetActionSettingsRequest {
    #[serde(default, alias = "record_contexts")]
    pub record_contexts: bool,
    /// "60s".."604800s"; absent keeps the current retention.
    #[serde(default, deserialize_with = "json::duration_opt::deserialize")]
    #[schema(value_type = Option<String>, example = "3600s")]
    pub retention: Option<Duration>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDetailsResponse {
    pub details: ObjectDetails,
}

#[utoipa::path(get, path = "/management/v1/actions/_settings", tag = "ManagementService",
    operation_id = "ManagementService_GetActionSettings", summary = "The organization's action settings (context recording, retention)",
    responses((status = 200, body = GetActionSettingsResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn get_action_settings(
    s: AppState,
    c: Caller,
    _r: super::messages::Empty,
) -> ApiResult<GetActionSettingsResponse> {
    let settings = recordings::settings(&s.store.db, c.org).await?;
    Ok(GetActionSettingsResponse {
        settings: ActionSettings {
            record_contexts: settings.record_contexts,
            retention: format!("{}s", settings.retention_secs),
        },
    })
}

/// The retention asked for, in whole seconds: inside 60s..604800s, a fraction rounded up (records
/// are kept at least as long as asked).
fn retention_secs(r: &SetActionSettingsRequest) -> ApiResult<Option<i64>> {
    let Some(d) = r.retention else { return Ok(None) };
    let (min, max) = (MIN_RETENTION_SECS as i128 * 1_000_000_000, MAX_RETENTION_SECS as i128 * 1_000_000_000);
    if !(min..=max).contains(&(d.nanos as i128)) {
        return Err(ApiError::invalid(format!(
            "invalid SetActionSettingsRequest.Retention: value must be inside range [{MIN_RETENTION_SECS}s, {MAX_RETENTION_SECS}s]"
        )));
    }
    Ok(Some((d.nanos as i128 + 999_999_999).div_euclid(1_000_000_000) as i64))
}

/// The field rules of SetActionSettings, also run before request targets.
fn check_set_action_settings(_s: &AppState, r: &SetActionSettingsRequest) -> ApiResult<()> {
    retention_secs(r).map(|_| ())
}

#[utoipa::path(put, path = "/management/v1/actions/_settings", tag = "ManagementService",
    operation_id = "ManagementService_SetActionSettings", summary = "Turn context recording on or off, set the retention",
    request_body = SetActionSettingsRequest,
    responses((status = 200, body = SettingsDetailsResponse),
        (status = 400, description = "Retention outside 60s..604800s", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn set_action_settings(
    s: AppState,
    c: Caller,
    r: SetActionSettingsRequest,
) -> ApiResult<SettingsDetailsResponse> {
    let retention_secs = match retention_secs(&r)? {
        Some(secs) => secs,
        None => recordings::settings(&s.store.db, c.org).await?.retention_secs,
    };
    let new = Settings { record_contexts: r.record_contexts, retention_secs };
    let w = recordings::set_settings(&s.store, c.org, c.token_id, new).await?;
    s.execute.invalidate_settings(c.org);
    Ok(SettingsDetailsResponse { details: ObjectDetails::written(w.sequence, w.created_at, c.org) })
}

// ---------- replay ----------

proto_enum!(
    /// What `fetch` does during a replay; a new enum of the contract, so numbered from
    /// `FETCH_UNSPECIFIED = 0` (which means the default, live) in the order listed.
    FetchMode {
        Unspecified = 0 => "FETCH_UNSPECIFIED",
        Live = 1 => "FETCH_LIVE",
        Deny = 2 => "FETCH_DENY",
    }
);

/// The most recorded calls one replay runs against.
const MAX_REPLAYED: u32 = 100;
const DEFAULT_REPLAYED: u32 = 20;

#[derive(Debug, Default, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayDraft {
    /// The bound action the draft stands in for (absent: the draft runs after the bound actions).
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
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayTriggerRequest {
    #[serde(default, alias = "flow_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub flow_type: String,
    #[serde(default, alias = "trigger_type", deserialize_with = "json::num_or_str::deserialize")]
    #[schema(ignore)]
    pub trigger_type: String,
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub draft: Option<ReplayDraft>,
    /// The newest recorded calls to use, 1..100 (0 or absent: 20). Not together with runIds.
    #[serde(default, deserialize_with = "json::uint32::deserialize")]
    #[schema(value_type = Option<u32>, example = 20)]
    pub last: u32,
    /// These recorded calls (unknown ids are ignored), at most 100.
    #[serde(default, alias = "run_ids")]
    pub run_ids: Vec<String>,
    /// Secret values for this replay only (name → value), over the stored ones.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default)]
    pub fetch: FetchMode,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayRun {
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<std::collections::HashMap<String, serde_json::Value>>)]
    pub effects: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The draft's log records (`after` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogRecordMsg>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResult {
    pub run_id: String,
    pub context_time: String,
    pub before: ReplayRun,
    pub after: ReplayRun,
    #[serde(skip_serializing_if = "is_false")]
    pub changed: bool,
}

#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub total: u32,
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub changed: u32,
    #[serde(skip_serializing_if = "json::is_zero_u32")]
    pub failed_after: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayTriggerResponse {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ReplayResult>,
    pub summary: ReplaySummary,
    #[serde(skip_serializing_if = "is_false")]
    pub truncated: bool,
}

fn run_view(report: &TriggerReport, logs: Option<Vec<LogRecordMsg>>) -> ReplayRun {
    ReplayRun {
        outcome: report.outcome.into(),
        effects: report.effects.clone().filter(|e| !e.is_empty()),
        error: report.error.clone().unwrap_or_default(),
        logs,
    }
}

fn not_bound() -> ApiError {
    ApiError::new(Kind::FailedPrecondition, "ACTION-r3pl4", "The draft's action is not bound to this trigger")
}

/// The field rules of ReplayTrigger, in their order (also run before request targets).
fn check_replay(s: &AppState, r: &ReplayTriggerRequest) -> ApiResult<()> {
    super::execute::parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    let Some(draft) = &r.draft else {
        return Err(ApiError::invalid("invalid ReplayTriggerRequest.Draft: value is required"));
    };
    let max = s.execute.limits.max_action_timeout;
    validate_action("ReplayTriggerRequest.Draft", draft.validate(), draft.timeout, max)?;
    if r.last > 0 && !r.run_ids.is_empty() {
        return Err(ApiError::invalid("invalid ReplayTriggerRequest: give last or runIds, not both"));
    }
    if r.last > MAX_REPLAYED {
        return Err(ApiError::invalid(format!(
            "invalid ReplayTriggerRequest.Last: value must be less than or equal to {MAX_REPLAYED}"
        )));
    }
    if r.run_ids.len() > MAX_REPLAYED as usize {
        return Err(ApiError::invalid(format!(
            "invalid ReplayTriggerRequest.RunIds: value must contain no more than {MAX_REPLAYED} item(s)"
        )));
    }
    super::authoring::check_secret_overrides("ReplayTriggerRequest", &r.secrets)
}

#[utoipa::path(post, path = "/management/v1/flows/{flowType}/trigger/{triggerType}/_replay", tag = "ManagementService",
    operation_id = "ManagementService_ReplayTrigger",
    summary = "Run a draft action against recorded calls of a trigger, before and after (nothing is stored)",
    params(("flowType" = String, Path, description = "Flow type id (1..4)"),
        ("triggerType" = String, Path, description = "Trigger type id (1..6)")),
    request_body = ReplayTriggerRequest,
    responses((status = 200, body = ReplayTriggerResponse),
        (status = 400, description = "Invalid draft, last/runIds, unknown flow or trigger; draft action not bound to the trigger (ACTION-r3pl4)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 503, body = GatewayError)))]
pub async fn replay_trigger(s: AppState, c: Caller, r: ReplayTriggerRequest) -> ApiResult<ReplayTriggerResponse> {
    check_replay(&s, &r)?;
    let trigger = super::execute::parse_flow_trigger(&r.flow_type, &r.trigger_type)?;
    let Some(draft) = r.draft else {
        return Err(ApiError::invalid("invalid ReplayTriggerRequest.Draft: value is required"));
    };
    let max = s.execute.limits.max_action_timeout;
    let replaces = match draft.action_id.as_deref().filter(|id| !id.is_empty()) {
        Some(raw) => Some(crate::domain::id::parse(raw).ok_or_else(not_bound)?),
        None => None,
    };
    let pick = if r.run_ids.is_empty() {
        Pick::Last(if r.last == 0 { DEFAULT_REPLAYED } else { r.last } as u64)
    } else {
        Pick::RunIds(r.run_ids.iter().filter_map(|id| crate::domain::id::parse(id)).collect())
    };
    let spec = ActionSpec {
        id: replaces.unwrap_or(0),
        name: draft.name,
        script: draft.script,
        timeout: effective_timeout(draft.timeout.unwrap_or_default().nanos, max),
        allowed_to_fail: draft.allowed_to_fail,
        active: true,
        version: 0,
    };
    let replay = Replay { draft: spec, replaces, pick, secrets: r.secrets, deny_fetch: r.fetch == FetchMode::Deny };
    let (results, truncated) = match s.execute.replay(c.org, trigger, replay).await? {
        ReplayOutcome::NotBound => return Err(not_bound()),
        ReplayOutcome::Done { results, truncated } => (results, truncated),
    };
    let mut summary = ReplaySummary::default();
    let results: Vec<ReplayResult> = results
        .into_iter()
        .map(|x| {
            let logs = x
                .after_logs
                .into_iter()
                .map(|l| LogRecordMsg { level: l.level, message: l.message, time: l.time })
                .collect();
            let before = run_view(&x.before, None);
            let after = run_view(&x.after, Some(logs).filter(|l: &Vec<LogRecordMsg>| !l.is_empty()));
            let changed =
                before.outcome != after.outcome || before.error != after.error || before.effects != after.effects;
            summary.total += 1;
            summary.changed += changed as u32;
            summary.failed_after += (after.outcome == Outcome::Failed) as u32;
            ReplayResult {
                run_id: x.run_id.to_string(),
                context_time: crate::domain::time::format_micros(x.context_time),
                before,
                after,
                changed,
            }
        })
        .collect();
    Ok(ReplayTriggerResponse { results, summary, truncated })
}
