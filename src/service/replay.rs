//! Recording `_execute` and connector contexts (redacted) and replaying a draft action against
//! them (authoring.md §4).

use super::execute::{DryRun, ExecuteTrigger};
use crate::domain::Trigger;
use crate::error::ApiResult;
use crate::runtime::trigger::{ActionSpec, TriggerReport};
use crate::runtime::LogRecord;
use crate::store::recordings::{self, Pick};
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// Contexts larger than this (as JSON) are not recorded.
pub const MAX_RECORDED_BYTES: usize = 64 * 1024;

/// Key names (lower case, without `_` and `-`) whose string values are never recorded.
const REDACTED_KEYS: [&str; 7] =
    ["accesstoken", "idtoken", "refreshtoken", "password", "clientsecret", "authorization", "cookie"];

fn redacted_key(key: &str) -> bool {
    let normalized: String = key.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect();
    REDACTED_KEYS.contains(&normalized.as_str())
}

/// `value` with the string values under credential-like keys replaced by `"[redacted]"`,
/// anywhere in the object; also each string of a list under such a key (`headers` carry
/// `{"authorization": ["Bearer …"]}`).
pub fn redact_context(value: &Value) -> Value {
    let hidden = || Value::String("[redacted]".into());
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(_) if redacted_key(k) => hidden(),
                        Value::Array(items) if redacted_key(k) => Value::Array(
                            items
                                .iter()
                                .map(|item| if item.is_string() { hidden() } else { redact_context(item) })
                                .collect(),
                        ),
                        _ => redact_context(v),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_context).collect()),
        other => other.clone(),
    }
}

/// The record of one call's context, or None when it is too large to keep.
pub fn record(org: i64, trigger: Trigger, run_id: i64, context: &Value) -> Option<entity::recorded_context::Model> {
    let text = serde_json::to_string(&redact_context(context)).ok()?;
    (text.len() <= MAX_RECORDED_BYTES).then(|| entity::recorded_context::Model {
        run_id,
        org_id: org,
        flow_type: trigger.flow().0,
        trigger_type: trigger.trigger_type().0,
        context: text,
        created_at: crate::domain::time::now_micros(),
    })
}

/// A replay: the draft, where it goes, and which recorded calls it runs against.
pub struct Replay {
    pub draft: ActionSpec,
    /// The bound action the draft replaces (None: the draft runs after the bound actions).
    pub replaces: Option<i64>,
    pub pick: Pick,
    pub secrets: BTreeMap<String, String>,
    pub deny_fetch: bool,
}

/// One recorded call, run as bound now (`before`) and with the draft (`after`).
pub struct Replayed {
    pub run_id: i64,
    pub context_time: i64,
    pub before: TriggerReport,
    pub after: TriggerReport,
    /// The draft's own log records in the `after` run.
    pub after_logs: Vec<LogRecord>,
}

impl ExecuteTrigger {
    /// Replays `replay` against the recorded contexts of `trigger`, within the trigger budget;
    /// returns the results that fit and whether some did not. Nothing is stored and no v2 target
    /// is called.
    pub async fn replay(&self, org: i64, trigger: Trigger, replay: Replay) -> ApiResult<ReplayOutcome> {
        let bound = self.action_specs(org, trigger).await?;
        let position = match replay.replaces {
            Some(id) => match bound.iter().position(|a| a.id == id) {
                Some(p) => p,
                None => return Ok(ReplayOutcome::NotBound),
            },
            None => bound.len(),
        };
        let mut with_draft: Vec<ActionSpec> = bound.as_ref().clone();
        if replay.replaces.is_some() {
            with_draft[position] = replay.draft.clone();
        } else {
            with_draft.push(replay.draft.clone());
        }
        let retention = self.settings(org).await?.retention_secs;
        let not_before = crate::domain::time::now_micros() - retention * 1_000_000;
        let recorded = recordings::contexts(
            &self.store.db,
            org,
            trigger.flow().0,
            trigger.trigger_type().0,
            replay.pick,
            not_before,
        )
        .await?;
        let deadline = Instant::now() + self.limits.max_trigger_time.as_std();
        let dry = DryRun { secrets: Some(&replay.secrets), deny_fetch: replay.deny_fetch };
        let mut results = Vec::with_capacity(recorded.len());
        let mut truncated = false;
        for rec in recorded {
            let Ok(context) = serde_json::from_str::<Value>(&rec.context) else { continue };
            if Instant::now() >= deadline {
                truncated = true;
                break;
            }
            let before = self.run_actions(org, trigger, &context, &bound, deadline, &dry).await?;
            let after = self.run_actions(org, trigger, &context, &with_draft, deadline, &dry).await?;
            if Instant::now() >= deadline {
                // This pair may have been cut short by the budget: it did not fit.
                truncated = true;
                break;
            }
            let after_logs = after.runs.get(position).map(draft_logs).unwrap_or_default();
            results.push(Replayed { run_id: rec.run_id, context_time: rec.created_at, before, after, after_logs });
        }
        Ok(ReplayOutcome::Done { results, truncated })
    }
}

/// The draft's log records in `after`, and, when the draft failed but was allowed to (the trigger
/// went on, so `after` has no error), its failure as a last `error` record: a draft that throws on
/// every recorded call must not read as harmless.
fn draft_logs(run: &crate::runtime::trigger::RunReport) -> Vec<crate::runtime::LogRecord> {
    let mut logs = run.logs.clone();
    if run.outcome == crate::domain::Outcome::Failed && run.allowed_to_fail {
        logs.push(crate::runtime::LogRecord {
            level: "error".into(),
            message: format!(
                "the action failed (allowed to fail, so the trigger went on): {}",
                run.error.as_deref().unwrap_or("action failed")
            ),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        });
    }
    logs
}

pub enum ReplayOutcome {
    Done {
        results: Vec<Replayed>,
        truncated: bool,
    },
    /// The draft's `actionId` is not bound to the trigger.
    NotBound,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_are_redacted_anywhere() {
        let ctx = json!({
            "accessToken": "at", "id_token": "it", "Refresh-Token": "rt",
            "user": {"password": "pw", "name": "alice", "PASSWORD": {"nested": "kept-object"}},
            "httpRequest": {"headers": {"Authorization": "Bearer x", "cookie": "c=1", "x-client_secret": "no"}},
            "list": [{"client_secret": "cs"}, {"clientSecret": 5}],
            "headers": {"authorization": ["Bearer y"], "Cookie": ["a=1", {"password": "p"}, 3], "accept": ["*/*"]},
        });
        let r = redact_context(&ctx);
        assert_eq!(r["accessToken"], "[redacted]");
        assert_eq!(r["id_token"], "[redacted]");
        assert_eq!(r["Refresh-Token"], "[redacted]");
        assert_eq!(r["user"]["password"], "[redacted]");
        assert_eq!(r["user"]["name"], "alice");
        assert_eq!(r["user"]["PASSWORD"]["nested"], "kept-object");
        assert_eq!(r["httpRequest"]["headers"]["Authorization"], "[redacted]");
        assert_eq!(r["httpRequest"]["headers"]["cookie"], "[redacted]");
        // Only the exact names count ("xclientsecret" is not "clientsecret").
        assert_eq!(r["httpRequest"]["headers"]["x-client_secret"], "no");
        assert_eq!(r["list"][0]["client_secret"], "[redacted]");
        assert_eq!(r["list"][1]["clientSecret"], 5);
        // Header lists: every string under a credential name, nested objects by their own keys.
        assert_eq!(r["headers"]["authorization"], json!(["[redacted]"]));
        assert_eq!(r["headers"]["Cookie"], json!(["[redacted]", {"password": "[redacted]"}, 3]));
        assert_eq!(r["headers"]["accept"], json!(["*/*"]));
    }

    #[test]
    fn large_contexts_are_not_recorded() {
        let trigger = Trigger::new(crate::domain::FlowType(2), crate::domain::TriggerType(4)).unwrap();
        assert!(record(1, trigger, 2, &json!({"claims": {"a": "b"}})).is_some());
        let big = json!({"claims": {"a": "x".repeat(MAX_RECORDED_BYTES)}});
        assert!(record(1, trigger, 2, &big).is_none());
    }
}
