//! Running a trigger (`_execute`, `_test`): the trigger's action list (cached), the v1 run in
//! the sandbox, the v2 function targets after it, and the run records.

use super::targets::{Chain, ChainEnd, Targets};
use crate::domain::execution::ExecutionId;
use crate::domain::{Duration, Outcome, Trigger};
use crate::error::{ApiError, ApiResult, Kind};
use crate::metrics::Metrics;
use crate::runtime::pool::SandboxPool;
use crate::runtime::secrets::Secrets;
use crate::runtime::trigger::{ActionSpec, RunReport, TriggerReport, TriggerRun};
use crate::store::recordings::Settings;
use crate::store::runs::RunWriter;
use crate::store::{flows as flow_store, runs as run_store, secrets as secret_store, Store};
use crate::v2::functions;
use entity::target;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// How long `_execute` may reuse a trigger's action list. Writes through this server clear it at
/// once; other replicas see a change within this bound (the contract allows 1 s).
const TRIGGER_CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(250);

type TriggerKey = (i64, Trigger);

/// Recently loaded per-organization data (trigger action lists, secrets), so `_execute` usually
/// costs no database round trip.
///
/// A load that began before a write and ends after the write's `invalidate` holds what the write
/// replaced: such a value is answered to its own caller but not kept (the generation, bumped by
/// every invalidation, has moved on), so the server reads its own writes at once.
struct OrgCache<K, V> {
    inner: Mutex<CacheEntries<K, V>>,
}

struct CacheEntries<K, V> {
    generation: u64,
    entries: HashMap<K, (std::time::Instant, Arc<V>)>,
}

impl<K, V> Default for OrgCache<K, V> {
    fn default() -> Self {
        Self { inner: Mutex::new(CacheEntries { generation: 0, entries: HashMap::new() }) }
    }
}

impl<K: std::hash::Hash + Eq + Copy, V> OrgCache<K, V> {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries<K, V>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached value, or the generation to hand to `put` with the value loaded now.
    fn get(&self, key: K) -> Result<Arc<V>, u64> {
        let inner = self.lock();
        match inner.entries.get(&key).filter(|(at, _)| at.elapsed() < TRIGGER_CACHE_TTL) {
            Some((_, v)) => Ok(v.clone()),
            None => Err(inner.generation),
        }
    }

    /// The value kept for `key` however old it is (an invalidation removes it): for a load to
    /// compare with, so that an unchanged value is shared instead of held twice.
    fn expired(&self, key: K) -> Option<Arc<V>> {
        self.lock().entries.get(&key).map(|(_, v)| v.clone())
    }

    /// Keeps a value loaded after `get` answered `generation`, unless an invalidation came since.
    fn put(&self, key: K, value: Arc<V>, generation: u64) {
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        if inner.entries.len() > 10_000 {
            inner.entries.retain(|_, (at, _)| at.elapsed() < TRIGGER_CACHE_TTL);
        }
        inner.entries.insert(key, (std::time::Instant::now(), value));
    }

    fn invalidate(&self, keep: impl Fn(&K) -> bool) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.retain(|k, _| keep(k));
    }
}

/// The limits a trigger runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The budget of a whole trigger (all actions and function targets).
    pub max_trigger_time: Duration,
    /// The most any one action may run; also what a stored timeout of 0 means.
    pub max_action_timeout: Duration,
}

/// What an `_execute` call did.
#[derive(Debug)]
pub struct Executed {
    pub report: TriggerReport,
    /// The id shared by the run records of this call (none when no action is configured).
    pub run_id: Option<i64>,
    /// The record id of each run of `report.runs` that started.
    pub record_ids: Vec<Option<i64>>,
}

/// What a connector call adds to its run records.
#[derive(Debug, Clone, Default)]
pub struct RunTag {
    pub connection_id: i64,
    pub condition: String,
    pub warnings: Vec<String>,
}

/// What a dry run (`_test`, `_replay`) changes about running actions.
#[derive(Debug, Default, Clone, Copy)]
pub struct DryRun<'a> {
    /// Secret values over the stored ones.
    pub secrets: Option<&'a std::collections::BTreeMap<String, String>>,
    /// Every `fetch` throws.
    pub deny_fetch: bool,
}

/// The trigger use case, shared by every transport.
pub struct ExecuteTrigger {
    pub(crate) store: Arc<Store>,
    sandbox: Arc<SandboxPool>,
    targets: Arc<Targets>,
    metrics: Arc<Metrics>,
    pub run_writer: RunWriter,
    cache: OrgCache<TriggerKey, Vec<ActionSpec>>,
    /// One load of a trigger's action list at a time: calls that miss the cache together wait for
    /// the first one's load instead of each reading (and holding) every script.
    loading: std::sync::Mutex<HashMap<TriggerKey, Arc<tokio::sync::Mutex<()>>>>,
    secrets: OrgCache<i64, Secrets>,
    settings: OrgCache<i64, Settings>,
    encryption_key: String,
    pub limits: Limits,
}

fn overloaded() -> ApiError {
    let mut e = ApiError::new(Kind::Unavailable, "RUNTIME-q0eue", "All sandbox workers are busy, retry later");
    e.retry_after = Some(1);
    e
}

/// The timeout an action runs with: its own, or the maximum when it has none or more.
pub fn effective_timeout(stored_nanos: i64, max: Duration) -> Duration {
    if stored_nanos <= 0 || stored_nanos > max.nanos {
        max
    } else {
        Duration { nanos: stored_nanos }
    }
}

impl ExecuteTrigger {
    pub fn new(
        store: Arc<Store>,
        sandbox: Arc<SandboxPool>,
        targets: Arc<Targets>,
        metrics: Arc<Metrics>,
        run_writer: RunWriter,
        limits: Limits,
        encryption_key: String,
    ) -> Self {
        Self {
            store,
            sandbox,
            targets,
            metrics,
            run_writer,
            cache: OrgCache::default(),
            loading: Default::default(),
            secrets: OrgCache::default(),
            settings: OrgCache::default(),
            encryption_key,
            limits,
        }
    }

    /// Forgets the cached action lists of an organization (after any change to its actions or flows).
    pub fn invalidate(&self, org: i64) {
        self.cache.invalidate(|(o, _)| *o != org);
    }

    /// Forgets the cached secrets of an organization (after one was set or removed).
    pub fn invalidate_secrets(&self, org: i64) {
        self.secrets.invalidate(|o| *o != org);
    }

    /// Forgets the cached action settings of an organization (after they changed).
    pub fn invalidate_settings(&self, org: i64) {
        self.settings.invalidate(|o| *o != org);
    }

    /// The organization's action settings (cached like the action lists).
    pub async fn settings(&self, org: i64) -> ApiResult<Settings> {
        let generation = match self.settings.get(org) {
            Ok(s) => return Ok(*s),
            Err(generation) => generation,
        };
        let settings = crate::store::recordings::settings(&self.store.db, org).await?;
        self.settings.put(org, Arc::new(settings), generation);
        Ok(settings)
    }

    /// The organization's secrets, decrypted (cached like the action lists). A value that does not
    /// decrypt (the encryption key changed) is left out, with a warning: the script sees `undefined`.
    pub async fn secrets(&self, org: i64) -> ApiResult<Arc<Secrets>> {
        let generation = match self.secrets.get(org) {
            Ok(s) => return Ok(s),
            Err(generation) => generation,
        };
        let mut values = std::collections::BTreeMap::new();
        for row in secret_store::list(&self.store.db, org).await? {
            match crate::store::crypto::decrypt(&self.encryption_key, &row.value_enc) {
                Ok(v) => {
                    values.insert(row.name, v);
                }
                Err(e) => tracing::warn!(org, secret = %row.name, "action secret unreadable: {e}"),
            }
        }
        let secrets = Arc::new(Secrets::new(values));
        self.secrets.put(org, secrets.clone(), generation);
        Ok(secrets)
    }

    /// The action list of a trigger, in order (inactive actions included; they are skipped).
    pub(crate) async fn action_specs(&self, org: i64, trigger: Trigger) -> ApiResult<Arc<Vec<ActionSpec>>> {
        let key = (org, trigger);
        if let Ok(list) = self.cache.get(key) {
            return Ok(list);
        }
        let turn = self.loading.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        let loaded = {
            let _turn = turn.lock().await;
            self.load_action_specs(key).await
        };
        // The last one out removes the key's lock (the map holds one reference, `turn` another).
        let mut loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::strong_count(&turn) == 2 {
            loading.remove(&key);
        }
        loaded
    }

    /// [`Self::action_specs`] past the cache, one caller per key at a time: the list another
    /// caller loaded meanwhile, or a load from the database.
    async fn load_action_specs(&self, key: TriggerKey) -> ApiResult<Arc<Vec<ActionSpec>>> {
        let (org, trigger) = key;
        let generation = match self.cache.get(key) {
            Ok(list) => return Ok(list),
            Err(generation) => generation,
        };
        let max = self.limits.max_action_timeout;
        let list: Vec<ActionSpec> =
            flow_store::trigger_actions(&self.store.db, org, trigger.flow(), trigger.trigger_type())
                .await?
                .into_iter()
                .map(|a| ActionSpec {
                    id: a.id,
                    timeout: effective_timeout(a.timeout_nanos, max),
                    active: a.state == crate::store::actions::ActionState::Active,
                    name: a.name,
                    script: a.script,
                    allowed_to_fail: a.allowed_to_fail,
                    version: a.version,
                })
                .collect();
        // The same list as the one kept before (each action at the same version and state): that
        // one is answered and kept again, so that calls which started at different times share one
        // copy of the scripts (a long list held by each call in flight grew the server by its size
        // per call).
        let same = |kept: &Vec<ActionSpec>| {
            kept.len() == list.len()
                && kept.iter().zip(&list).all(|(a, b)| {
                    (a.id, a.version, a.active, a.timeout, a.allowed_to_fail)
                        == (b.id, b.version, b.active, b.timeout, b.allowed_to_fail)
                })
        };
        let list = match self.cache.expired(key).filter(|kept| same(kept)) {
            Some(kept) => kept,
            None => Arc::new(list),
        };
        self.cache.put(key, list.clone(), generation);
        Ok(list)
    }

    /// Runs actions in the sandbox (one slot of the organization for the whole trigger), within
    /// `ACTIONSD_MAX_TRIGGER_TIME` ending at `trigger_deadline`.
    pub(crate) async fn run_actions(
        &self,
        org: i64,
        trigger: Trigger,
        context: &Value,
        actions: &[ActionSpec],
        trigger_deadline: Instant,
        dry: &DryRun<'_>,
    ) -> ApiResult<TriggerReport> {
        let budget = self.limits.max_trigger_time;
        self.run_actions_within(org, trigger, context, actions, trigger_deadline, budget, dry).await
    }

    /// [`Self::run_actions`] within another budget (a connection's `callTimeout`): `budget` is
    /// what a run stopped by `trigger_deadline` names in its error (`trigger timeout after <t>`).
    #[allow(clippy::too_many_arguments)]
    async fn run_actions_within(
        &self,
        org: i64,
        trigger: Trigger,
        context: &Value,
        actions: &[ActionSpec],
        trigger_deadline: Instant,
        budget: Duration,
        dry: &DryRun<'_>,
    ) -> ApiResult<TriggerReport> {
        let stored = self.secrets(org).await?;
        let overridden;
        let secrets: &Secrets = match dry.secrets {
            Some(o) if !o.is_empty() => {
                overridden = stored.overridden(o);
                &overridden
            }
            _ => &stored,
        };
        let slot = self.sandbox.acquire(org).await.ok_or_else(overloaded)?;
        let run = TriggerRun {
            secrets,
            deny_fetch: dry.deny_fetch,
            pool: &self.sandbox,
            slot: &slot,
            trigger,
            context,
            trigger_deadline,
            trigger_budget: budget,
        };
        let report = run.run(actions).await;
        for r in &report.runs {
            if let Some(d) = r.duration {
                self.metrics.observe_run(r.outcome.name(), d);
            }
        }
        Ok(report)
    }

    /// `_execute`: the trigger's actions, then its v2 function targets, with run records (records
    /// of failed runs are committed before answering, the others are batched).
    pub async fn execute(&self, org: i64, trigger: Trigger, context: &Value) -> ApiResult<Executed> {
        let deadline = Instant::now() + self.limits.max_trigger_time.as_std();
        self.run_and_record(org, trigger, context, deadline).await
    }

    /// Whether the org has actions for the trigger (from the trigger cache).
    pub async fn has_actions(&self, org: i64, trigger: Trigger) -> ApiResult<bool> {
        Ok(!self.action_specs(org, trigger).await?.is_empty())
    }

    /// A connector call's actions within `deadline`, the end of the connection's `callTimeout`
    /// (`budget`, the length named when it stops a run), without actionsd's own v2 function
    /// targets (a ZITADEL function calling back into ZITADEL's would loop). Nothing is stored: the
    /// caller records the runs with [`Self::record_connector_run`] once it knows the call's
    /// warnings and effects. The connector's dry run is this call alone.
    pub async fn run_for_connector(
        &self,
        org: i64,
        trigger: Trigger,
        context: &Value,
        deadline: Instant,
        budget: Duration,
    ) -> ApiResult<TriggerReport> {
        let actions = self.action_specs(org, trigger).await?;
        if actions.is_empty() {
            return Ok(TriggerReport::succeeded(Map::new()));
        }
        self.run_actions_within(org, trigger, context, actions.as_slice(), deadline, budget, &DryRun::default()).await
    }

    /// Stores a connector call's run records, and the deliveries that apply its effects through
    /// ZITADEL's API in the same transaction (committed before the reply goes to ZITADEL).
    /// Without deliveries the records go through the batching writer like `_execute`'s.
    pub async fn record_connector_run(
        &self,
        org: i64,
        trigger: Trigger,
        report: &TriggerReport,
        tag: &RunTag,
        deliveries: Vec<crate::store::deliveries::NewDelivery>,
        context: &Value,
    ) -> ApiResult<()> {
        let run_id = self.store.new_id();
        let records: Vec<entity::run::Model> = report
            .runs
            .iter()
            .filter(|r| r.started_at.is_some())
            .filter_map(|r| run_record(r, self.store.new_id(), run_id, org, trigger, Some(tag)))
            .collect();
        let recorded = self.recording(org, trigger, Some(run_id), context).await?;
        if deliveries.is_empty() {
            return self.write_records(records, recorded).await;
        }
        let committed = records.clone();
        self.store
            .write(&[], move |txn| {
                Box::pin(async move {
                    run_store::insert_in(txn, &records).await?;
                    crate::store::recordings::insert_in(txn, recorded.as_slice()).await?;
                    crate::store::deliveries::insert(txn, deliveries).await.map(|_| ())
                })
            })
            .await?;
        self.store.runs_committed(&committed);
        Ok(())
    }

    /// Records a connector call's context when no action ran for it (and the organization records
    /// contexts). A failure to queue it is logged, not answered: the call itself did nothing.
    pub async fn record_context_only(&self, org: i64, trigger: Trigger, context: &Value) {
        let written = match self.recording(org, trigger, None, context).await {
            Ok(Some(recorded)) => self.write_records(vec![], Some(recorded)).await,
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::warn!(org, error = %e, "recording a connector call's context failed");
        }
    }

    /// The context to record for a call (when the organization records them and it fits), under
    /// the call's `run_id`, or a new one for a call that has none (no action ran).
    async fn recording(
        &self,
        org: i64,
        trigger: Trigger,
        run_id: Option<i64>,
        context: &Value,
    ) -> ApiResult<Option<entity::recorded_context::Model>> {
        if !self.settings(org).await?.record_contexts {
            return Ok(None);
        }
        Ok(super::replay::record(org, trigger, run_id.unwrap_or_else(|| self.store.new_id()), context))
    }

    async fn run_and_record(
        &self,
        org: i64,
        trigger: Trigger,
        context: &Value,
        deadline: Instant,
    ) -> ApiResult<Executed> {
        let actions = self.action_specs(org, trigger).await?;
        if actions.is_empty() {
            let mut effects = Map::new();
            let error = self.run_function(trigger, context, deadline, &mut effects).await?;
            let report = match error {
                None => TriggerReport::succeeded(effects),
                Some(error) => TriggerReport::failed(error),
            };
            // While the organization records contexts, a call has a run id even when no action
            // ran, and even when its context is too large to be stored.
            let run_id = self.settings(org).await?.record_contexts.then(|| self.store.new_id());
            let recorded = match run_id {
                Some(id) => self.recording(org, trigger, Some(id), context).await?,
                None => None,
            };
            if recorded.is_some() {
                self.write_records(vec![], recorded).await?;
            }
            return Ok(Executed { report, run_id, record_ids: vec![] });
        }
        let mut report =
            self.run_actions(org, trigger, context, actions.as_slice(), deadline, &DryRun::default()).await?;
        // v2 function targets run after the v1 actions, unless the trigger already failed.
        if let Some(effects) = report.effects.as_mut() {
            if let Some(error) = self.run_function(trigger, context, deadline, effects).await? {
                report.outcome = Outcome::Failed;
                report.error = Some(error);
                report.effects = None;
            }
        }
        let run_id = self.store.new_id();
        let record_ids: Vec<Option<i64>> =
            report.runs.iter().map(|r| r.started_at.map(|_| self.store.new_id())).collect();
        let records: Vec<entity::run::Model> = report
            .runs
            .iter()
            .zip(&record_ids)
            .filter_map(|(r, id)| run_record(r, (*id)?, run_id, org, trigger, None))
            .collect();
        let recorded = self.recording(org, trigger, Some(run_id), context).await?;
        self.write_records(records, recorded).await?;
        Ok(Executed { report, run_id: Some(run_id), record_ids })
    }

    /// Run records: those of failed runs committed before answering, the others batched.
    async fn write_records(
        &self,
        records: Vec<entity::run::Model>,
        recorded: Option<entity::recorded_context::Model>,
    ) -> ApiResult<()> {
        let failed = records.iter().any(|r| r.outcome == Outcome::Failed);
        let pending = run_store::Pending { runs: records, contexts: recorded.into_iter().collect() };
        let write_now = if failed { Some(pending) } else { self.run_writer.submit(pending).err() };
        if let Some(pending) = write_now {
            let pending = Arc::new(pending);
            run_store::insert_pending(&self.store, pending.clone()).await?;
            self.store.runs_committed(&pending.runs);
        }
        Ok(())
    }

    /// `_test`: one action as a dry run (no function targets, nothing stored); `secrets` override
    /// the stored values for this run only.
    pub async fn test(
        &self,
        org: i64,
        action: ActionSpec,
        trigger: Trigger,
        context: &Value,
        secrets: &std::collections::BTreeMap<String, String>,
    ) -> ApiResult<TriggerReport> {
        let deadline = Instant::now() + self.limits.max_trigger_time.as_std();
        let dry = DryRun { secrets: Some(secrets), deny_fetch: false };
        let mut report = self.run_actions(org, trigger, context, std::slice::from_ref(&action), deadline, &dry).await?;
        // A dry run says whether the script works (execute.md §2: a script that fails is
        // `OUTCOME_FAILED` with the error), also when the action may fail in a trigger.
        if report.outcome == Outcome::Succeeded {
            if let Some(error) = report.runs.iter().find(|r| r.outcome == Outcome::Failed).and_then(|r| r.error.clone())
            {
                report.outcome = Outcome::Failed;
                report.error = Some(format!("action \"{}\": {error}", action.name));
                report.effects = None;
            }
        }
        Ok(report)
    }

    /// Runs the targets of the trigger's function execution (if any), adding to `effects`.
    /// `Ok(Some(error))`: the chain failed and so does the trigger.
    async fn run_function(
        &self,
        trigger: Trigger,
        context: &Value,
        deadline: Instant,
        effects: &mut Map<String, Value>,
    ) -> ApiResult<Option<String>> {
        let Some(name) = functions::function_name(trigger) else {
            return Ok(None);
        };
        let execution = ExecutionId::Function(name.to_string()).to_string();
        let snap = self.targets.v2.registry.snapshot(&self.store).await?;
        let Some((execution_id, targets)) = snap.resolve(std::slice::from_ref(&execution)) else {
            return Ok(None);
        };
        let (execution_id, targets) = (execution_id.to_string(), targets.to_vec());
        drop(snap);
        let mut chain =
            FunctionChain { name, execution: &execution, flow: trigger.flow(), context, effects, log: Vec::new() };
        let end = self.targets.run_chain(&execution_id, &targets, Some(deadline), &mut chain).await?;
        let FunctionChain { log, effects, .. } = chain;
        let error = match end {
            ChainEnd::Completed => {
                functions::finish(name, trigger.flow(), effects, log);
                return Ok(None);
            }
            ChainEnd::OutOfTime => format!("trigger timeout after {}", self.limits.max_trigger_time),
            ChainEnd::Interrupted { target, error } => format!("target \"{target}\": {}", error.message),
        };
        Ok(Some(error))
    }
}

/// A function execution: every target gets the payload built from the context and the effects
/// so far; restCall replies add to the effects with the v1 rules.
struct FunctionChain<'a> {
    name: &'static str,
    execution: &'a str,
    flow: crate::domain::FlowType,
    context: &'a Value,
    effects: &'a mut Map<String, Value>,
    log: Vec<String>,
}

impl Chain for FunctionChain<'_> {
    fn body(&self) -> ApiResult<Vec<u8>> {
        serde_json::to_vec(&functions::payload(self.execution, self.flow, self.context, self.effects))
            .map_err(|e| ApiError::internal(format!("encoding the function payload: {e}")))
    }

    fn reply(&mut self, _target: &target::Model, reply: Vec<u8>) -> ApiResult<()> {
        let reply = functions::parse_reply(&reply)?;
        functions::apply_reply(self.name, self.flow, self.context, self.effects, &mut self.log, reply);
        Ok(())
    }
}

/// The run record of one action run that started.
fn run_record(
    r: &RunReport,
    id: i64,
    run_id: i64,
    org: i64,
    trigger: Trigger,
    tag: Option<&RunTag>,
) -> Option<entity::run::Model> {
    Some(entity::run::Model {
        id,
        run_id,
        org_id: org,
        action_id: r.action_id,
        action_name: r.action_name.clone(),
        flow_type: trigger.flow().0,
        trigger_type: trigger.trigger_type().0,
        outcome: r.outcome,
        allowed_to_fail: r.allowed_to_fail,
        error: crate::store::storable(r.error.clone().unwrap_or_default()),
        started_at: r.started_at?,
        duration_nanos: r.duration.map(|d| d.as_nanos() as i64).unwrap_or(0),
        logs: serde_json::to_string(&r.logs).unwrap_or_else(|_| "[]".into()),
        http_calls: r.http_calls as i32,
        log_records: r.logs.len() as i32,
        log_bytes: r.log_bytes.min(i32::MAX as u64) as i32,
        connection_id: tag.map(|t| t.connection_id),
        condition: tag.map(|t| crate::store::storable(t.condition.clone())),
        warnings: tag
            .filter(|t| !t.warnings.is_empty())
            .map(|t| serde_json::to_string(&t.warnings).unwrap_or_else(|_| "[]".into())),
        action_version: r.action_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value loaded across an invalidation (the load began before a write and ended after it)
    /// is not kept: the next reader loads again and sees the write.
    #[test]
    fn a_load_that_crossed_an_invalidation_is_not_cached() {
        let cache: OrgCache<i64, &str> = OrgCache::default();
        let generation = cache.get(1).unwrap_err();
        cache.invalidate(|org| *org != 1); // the write's, while the load ran
        cache.put(1, Arc::new("old"), generation);
        let generation = cache.get(1).expect_err("the stale load was kept");
        cache.put(1, Arc::new("new"), generation);
        assert_eq!(*cache.get(1).unwrap(), "new");
        // Another organization's invalidation forgets nothing of this one's.
        cache.invalidate(|org| *org != 2);
        assert_eq!(*cache.get(1).unwrap(), "new");
        // What a reload compares with: the kept value, the very same allocation, until an
        // invalidation of its organization.
        let kept = cache.get(1).unwrap();
        assert!(Arc::ptr_eq(&cache.expired(1).unwrap(), &kept));
        cache.invalidate(|org| *org != 1);
        assert!(cache.expired(1).is_none(), "a value kept across a write of its organization");
    }
}
