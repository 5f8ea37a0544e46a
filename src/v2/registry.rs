//! A cached snapshot of the executions and targets, for the hot paths (interception of every
//! RPC, functions inside `_execute`, the delivery worker). Reloaded after local changes at once and otherwise at
//! least every [`MAX_AGE`], so changes through other replicas are seen within a second.

use crate::error::ApiResult;
use crate::store::Store;
use entity::target;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_millis(250);

pub struct Snapshot {
    /// When its load ended (its age for freshness) and began (what it can hold).
    loaded: Instant,
    began: Instant,
    generation: u64,
    /// Execution id → its targets in call order (targets that no longer exist are left out).
    executions: HashMap<String, Vec<Arc<target::Model>>>,
    /// Every target by id (the delivery worker also calls targets no execution lists any more).
    targets: HashMap<i64, Arc<target::Model>>,
}

impl Snapshot {
    /// The most specific of `candidates` (given most specific first) that has an execution.
    pub fn resolve(&self, candidates: &[String]) -> Option<(&str, &[Arc<target::Model>])> {
        candidates.iter().find_map(|c| self.executions.get_key_value(c).map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// A target by id (None: it does not exist).
    pub fn target(&self, id: i64) -> Option<Arc<target::Model>> {
        self.targets.get(&id).cloned()
    }

    pub fn is_empty(&self) -> bool {
        self.executions.is_empty()
    }
}

/// After a failed reload, how long requests get that failure at once instead of each trying
/// (and waiting for) the database again.
const FAILURE_HOLD: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Registry {
    current: tokio::sync::RwLock<Option<Arc<Snapshot>>>,
    reload: tokio::sync::Mutex<()>,
    /// The last failed reload: when it ended and why.
    failed: std::sync::Mutex<Option<(Instant, crate::error::ApiError)>>,
}

impl Registry {
    pub async fn snapshot(&self, store: &Store) -> ApiResult<Arc<Snapshot>> {
        if let Some(s) = self.fresh(store).await {
            return Ok(s);
        }
        let waiting_since = Instant::now();
        if let Some(e) = self.recent_failure(|at| at.elapsed() < FAILURE_HOLD) {
            return Err(e);
        }
        let _one = self.reload.lock().await;
        if let Some(s) = self.fresh(store).await {
            return Ok(s);
        }
        // A reload that failed while this request waited for the lock answers it too: with the
        // database down, requests fail after one acquire timeout, not after one per queued request.
        if let Some(e) = self.recent_failure(|at| at > waiting_since) {
            return Err(e);
        }
        let loaded = self.load(store).await;
        if let Err(e) = &loaded {
            *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), e.clone()));
        }
        loaded
    }

    /// A snapshot whose load began after `after`: the current one if it did, else a new load.
    /// For a lookup that must not miss what another replica committed before `after` (a
    /// delivery's target: a miss there would give the delivery up).
    pub async fn snapshot_after(&self, store: &Store, after: Instant) -> ApiResult<Arc<Snapshot>> {
        let _one = self.reload.lock().await;
        if let Some(s) = self.current.read().await.as_ref().filter(|s| s.began > after) {
            return Ok(s.clone());
        }
        self.load(store).await
    }

    fn recent_failure(&self, recent: impl Fn(Instant) -> bool) -> Option<crate::error::ApiError> {
        let failed = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        failed.as_ref().filter(|(at, _)| recent(*at)).map(|(_, e)| e.clone())
    }

    async fn load(&self, store: &Store) -> ApiResult<Arc<Snapshot>> {
        // When its reads began: it holds nothing committed later (for `snapshot_after`). Its age
        // for freshness counts from the end of the load, so that requests waiting for a slow
        // load take its result instead of each loading again.
        let began = Instant::now();
        let generation = store.changes.v2_generation();
        let targets: HashMap<i64, Arc<target::Model>> =
            crate::store::targets::all_targets(&store.db).await?.into_iter().map(|t| (t.id, Arc::new(t))).collect();
        let mut executions = HashMap::new();
        for e in crate::store::targets::all_executions(&store.db).await? {
            let list: Vec<Arc<target::Model>> = crate::store::targets::target_ids(&e)
                .iter()
                .filter_map(|id| crate::domain::id::parse(id))
                .filter_map(|id| targets.get(&id).cloned())
                .collect();
            if !list.is_empty() {
                executions.insert(e.id, list);
            }
        }
        let snap = Arc::new(Snapshot { loaded: Instant::now(), began, generation, executions, targets });
        *self.current.write().await = Some(snap.clone());
        Ok(snap)
    }

    async fn fresh(&self, store: &Store) -> Option<Arc<Snapshot>> {
        let guard = self.current.read().await;
        let s = guard.as_ref()?;
        (s.loaded.elapsed() < MAX_AGE && s.generation == store.changes.v2_generation()).then(|| s.clone())
    }
}
