//! Runs the actions of one trigger in order, carrying effects from one action to the next.

use super::pool::{Failed, RunFailure, SandboxPool, Slot};
use super::secrets::Secrets;
use super::{Job, LogRecord};
use crate::domain::{Duration, Outcome, Trigger};
use serde_json::Value;
use std::sync::Arc;
use tokio::time::Instant;

pub const TOP_LEVEL_MAX_MS: u64 = 5000;

#[derive(Debug, Clone)]
pub struct ActionSpec {
    pub id: i64,
    pub name: String,
    pub script: String,
    pub timeout: Duration,
    pub allowed_to_fail: bool,
    pub active: bool,
    /// The action's version (0: an inline script of `_test`).
    pub version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub action_id: i64,
    pub action_name: String,
    /// The version that ran (None for an inline script).
    pub action_version: Option<i64>,
    pub outcome: Outcome,
    pub allowed_to_fail: bool,
    pub error: Option<String>,
    /// Set when the run started (microseconds since the epoch).
    pub started_at: Option<i64>,
    pub duration: Option<std::time::Duration>,
    pub logs: Vec<LogRecord>,
    pub http_calls: u32,
    pub log_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct TriggerReport {
    pub outcome: Outcome,
    pub error: Option<String>,
    /// The effects (only the trigger's keys, non-empty), absent on failure.
    pub effects: Option<serde_json::Map<String, Value>>,
    /// The user fields the actions' setters wrote (`user.human.nickName`, …; see
    /// [`super::api::FIELDS_SET`]), empty on failure. The connector applies exactly these to the
    /// request it returns, zero values included.
    pub fields_set: Vec<String>,
    pub runs: Vec<RunReport>,
}

impl TriggerReport {
    /// A trigger that succeeded with these effects (no setter fields, no runs yet).
    pub fn succeeded(effects: serde_json::Map<String, Value>) -> Self {
        TriggerReport {
            outcome: Outcome::Succeeded,
            error: None,
            effects: Some(effects),
            fields_set: vec![],
            runs: vec![],
        }
    }

    /// A trigger that failed with this error (no runs yet).
    pub fn failed(error: String) -> Self {
        TriggerReport { outcome: Outcome::Failed, error: Some(error), effects: None, fields_set: vec![], runs: vec![] }
    }
}

/// The effect keys a trigger produces.
pub fn effect_keys(trigger: Trigger) -> &'static [&'static str] {
    use Trigger::*;
    match trigger {
        ExternalPostAuthentication => &["externalUser", "metadata"],
        ExternalPreCreation | InternalPreCreation => &["user", "metadata"],
        ExternalPostCreation | InternalPostCreation => &["userGrants"],
        InternalPostAuthentication => &["metadata"],
        PreUserinfoCreation | PreAccessTokenCreation => &["claims", "metadata"],
        PreSamlResponseCreation => &["attributes", "metadata"],
    }
}

/// Null, `{}` or `[]`: an effect that is left out of a result.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

pub fn effects_of(trigger: Trigger, state: &Value) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for key in effect_keys(trigger) {
        if let Some(v) = state.get(*key) {
            let mut v = v.clone();
            // The typed effects are protobuf messages: their zero values are left out, as in every
            // response. Claims and metadata are the scripts' own values and stay as they are.
            if matches!(*key, "externalUser" | "user" | "userGrants" | "attributes") {
                strip_zero_fields(&mut v);
            }
            if !is_empty(&v) {
                out.insert((*key).to_string(), v);
            }
        }
    }
    out
}

/// Removes the members of every object (at any depth) that are `""`, `0`, `false`, `null`, or
/// empty arrays and objects (once their own zero members are gone). Array items are kept.
fn strip_zero_fields(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for member in map.values_mut() {
                strip_zero_fields(member);
            }
            map.retain(|_, member| !is_zero(member));
        }
        Value::Array(items) => items.iter_mut().for_each(strip_zero_fields),
        _ => {}
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        other => is_empty(other),
    }
}

pub struct TriggerRun<'a> {
    pub pool: &'a Arc<SandboxPool>,
    pub slot: &'a Slot,
    pub trigger: Trigger,
    pub context: &'a Value,
    /// When the whole trigger must be done, and its budget for error texts.
    pub trigger_deadline: Instant,
    pub trigger_budget: Duration,
    /// The organization's secrets; their values are redacted from logs and error texts.
    pub secrets: &'a Secrets,
    /// Every `fetch` throws (a replay with `FETCH_DENY`).
    pub deny_fetch: bool,
}

impl TriggerRun<'_> {
    pub async fn run(&self, actions: &[ActionSpec]) -> TriggerReport {
        let mut state = Value::Object(Default::default());
        let mut runs = Vec::with_capacity(actions.len());
        let mut failure: Option<String> = None;
        for action in actions {
            let mut report = RunReport {
                action_id: action.id,
                action_name: action.name.clone(),
                action_version: (action.version > 0).then_some(action.version),
                allowed_to_fail: action.allowed_to_fail,
                ..Default::default()
            };
            if !action.active {
                report.outcome = Outcome::Skipped;
                runs.push(report);
                continue;
            }
            if failure.is_some() {
                report.outcome = Outcome::NotRun;
                runs.push(report);
                continue;
            }
            let (result, trigger_timed_out) = self.run_one(action, &state, &mut report).await;
            match result {
                Ok(new_state) => {
                    report.outcome = Outcome::Succeeded;
                    state = new_state;
                }
                Err(error) => {
                    // The text the answer and the run record both carry: a NUL (which PostgreSQL
                    // cannot store) reads as U+FFFD in both.
                    let error = crate::store::storable(error);
                    report.outcome = Outcome::Failed;
                    report.error = Some(error.clone());
                    if trigger_timed_out {
                        failure = Some(error);
                    } else if !action.allowed_to_fail {
                        failure = Some(format!("action \"{}\": {error}", action.name));
                    }
                }
            }
            runs.push(report);
        }
        match failure {
            Some(error) => TriggerReport { runs, ..TriggerReport::failed(error) },
            None => TriggerReport {
                fields_set: super::api::fields_set(&state),
                runs,
                ..TriggerReport::succeeded(effects_of(self.trigger, &state))
            },
        }
    }

    /// Runs one action; returns the new state or the error text, and whether the trigger budget ran out.
    async fn run_one(
        &self,
        action: &ActionSpec,
        state: &Value,
        report: &mut RunReport,
    ) -> (Result<Value, String>, bool) {
        let started = Instant::now();
        report.started_at = Some(crate::domain::time::now_micros());
        let own_deadline = started + action.timeout.as_std();
        let trigger_bound = self.trigger_deadline < own_deadline;
        let deadline = own_deadline.min(self.trigger_deadline);
        let job = Job {
            script: action.script.clone(),
            name: action.name.clone(),
            flow: self.trigger.flow().0,
            trigger: self.trigger.trigger_type().0,
            context: self.context.clone(),
            state: state.clone(),
            top_level_ms: (action.timeout.as_std().as_millis() as u64).min(TOP_LEVEL_MAX_MS),
            deadline_ms: (deadline.saturating_duration_since(Instant::now()).as_millis() as u64).max(1),
            secrets: self.secrets.values().clone(),
            deny_fetch: self.deny_fetch,
        };
        let outcome = if Instant::now() >= deadline {
            Err(RunFailure::Timeout.into())
        } else {
            self.pool.run(self.slot, &job, deadline).await
        };
        report.duration = Some(started.elapsed());
        match outcome {
            // Logs and error texts come redacted from the worker, which applies the secrets
            // before it bounds them.
            Ok(result) => {
                report.logs = result.logs;
                report.http_calls = result.http_calls;
                // The counters describe the records kept (the truncation note included), as for
                // a run stopped by a limit below.
                report.log_bytes = report.logs.iter().map(|r| r.message.len() as u64).sum();
                if result.ok {
                    (Ok(result.state.unwrap_or_else(|| state.clone())), false)
                } else {
                    (Err(result.error.unwrap_or_else(|| "action failed".into())), false)
                }
            }
            Err(Failed { failure, logs, http_calls }) => {
                // What the run had logged and called before it was stopped (read from its
                // worker's file).
                report.http_calls = http_calls;
                report.log_bytes = logs.iter().map(|r| r.message.len() as u64).sum();
                report.logs = logs;
                match failure {
                    RunFailure::Timeout if trigger_bound => {
                        (Err(format!("trigger timeout after {}", self.trigger_budget)), true)
                    }
                    RunFailure::Timeout => (Err(format!("timeout after {}", action.timeout)), false),
                    RunFailure::TopLevelTimeout(bound) => {
                        let bound = Duration { nanos: bound.as_nanos() as i64 };
                        (Err(format!("timeout after {bound}")), false)
                    }
                    RunFailure::Memory => (Err("memory limit exceeded".into()), false),
                    RunFailure::Crashed(reason) => (Err(format!("sandbox crashed: {reason}")), false),
                }
            }
        }
    }
}
