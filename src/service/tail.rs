//! The live tail of run records (`GET /management/v1/runs/_tail`): every run record committed from
//! now on goes to the tails of its organization whose filters it matches.
//!
//! SQLite (one process): the writer hands committed records to the hub directly. PostgreSQL: the
//! transaction that inserts records also sends their ids with `NOTIFY`; every replica's listener
//! reads those records back and hands them to its own hub, so a tail sees the runs of all replicas.

use entity::run;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The channel whose notifications carry committed run record ids (comma-separated).
pub const NOTIFY_CHANNEL: &str = "actionsd_runs";
/// Tails an organization may have open at once.
pub const MAX_TAILS_PER_ORG: usize = 10;
/// Events a slow reader may fall behind before its stream ends with `overflow`.
pub const BUFFER: usize = 1000;

/// A committed run record as the tails of its organization share it: the record, and its event
/// data, encoded once by the first tail that sends it.
#[derive(Debug)]
pub struct TailedRun {
    pub record: run::Model,
    pub data: std::sync::OnceLock<String>,
}

/// What a tail receives.
#[derive(Debug, Clone)]
pub enum TailEvent {
    Run(Arc<TailedRun>),
    /// The reader fell [`BUFFER`] events behind; nothing more follows.
    Overflow,
}

/// A tail's query filters (all optional; all given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailFilter {
    pub action_id: Option<i64>,
    pub flow_type: Option<i32>,
    pub trigger_type: Option<i32>,
    pub outcome: Option<crate::domain::Outcome>,
    pub connection_id: Option<i64>,
}

impl TailFilter {
    fn matches(&self, r: &run::Model) -> bool {
        self.action_id.is_none_or(|a| a == r.action_id)
            && self.flow_type.is_none_or(|f| f == r.flow_type)
            && self.trigger_type.is_none_or(|t| t == r.trigger_type)
            && self.outcome.is_none_or(|o| o == r.outcome)
            && self.connection_id.is_none_or(|c| Some(c) == r.connection_id)
    }
}

struct Subscriber {
    id: u64,
    filter: TailFilter,
    tx: mpsc::Sender<TailEvent>,
}

/// The open tails of this process.
#[derive(Default)]
pub struct TailHub {
    by_org: Mutex<HashMap<i64, Vec<Subscriber>>>,
    open: AtomicUsize,
    next_id: AtomicU64,
}

/// One open tail; dropping it frees its slot.
pub struct Tail {
    pub events: mpsc::Receiver<TailEvent>,
    _slot: Slot,
}

struct Slot {
    hub: Arc<TailHub>,
    org: i64,
    id: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.hub.remove(self.org, self.id);
    }
}

impl TailHub {
    /// Opens a tail for `org`; `None` when the organization has [`MAX_TAILS_PER_ORG`] open.
    pub fn subscribe(self: &Arc<Self>, org: i64, filter: TailFilter) -> Option<Tail> {
        let mut by_org = self.by_org.lock().unwrap_or_else(|e| e.into_inner());
        let subs = by_org.entry(org).or_default();
        if subs.len() >= MAX_TAILS_PER_ORG {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // One more than the buffer: room for the overflow notice.
        let (tx, events) = mpsc::channel(BUFFER + 1);
        subs.push(Subscriber { id, filter, tx });
        self.open.fetch_add(1, Ordering::SeqCst);
        Some(Tail { events, _slot: Slot { hub: self.clone(), org, id } })
    }

    fn remove(&self, org: i64, id: u64) {
        let mut by_org = self.by_org.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subs) = by_org.get_mut(&org) {
            let before = subs.len();
            subs.retain(|s| s.id != id);
            self.open.fetch_sub(before - subs.len(), Ordering::SeqCst);
            if subs.is_empty() {
                by_org.remove(&org);
            }
        }
    }

    /// Tails open in this process (all organizations).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Tails open for one organization.
    pub fn open_for(&self, org: i64) -> usize {
        self.by_org.lock().unwrap_or_else(|e| e.into_inner()).get(&org).map_or(0, Vec::len)
    }

    /// Hands committed records to the matching tails. A tail that is [`BUFFER`] events behind
    /// gets [`TailEvent::Overflow`] and is closed.
    pub fn deliver(&self, rows: &[run::Model]) {
        if self.open() == 0 || rows.is_empty() {
            return;
        }
        let mut by_org = self.by_org.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let Some(subs) = by_org.get_mut(&row.org_id) else { continue };
            let mut shared = None;
            subs.retain(|s| {
                if s.tx.is_closed() || !s.filter.matches(row) {
                    return !s.tx.is_closed();
                }
                if s.tx.capacity() <= 1 {
                    let _ = s.tx.try_send(TailEvent::Overflow);
                    return false;
                }
                let record = shared
                    .get_or_insert_with(|| Arc::new(TailedRun { record: row.clone(), data: Default::default() }))
                    .clone();
                s.tx.try_send(TailEvent::Run(record)).is_ok()
            });
        }
        let open: usize = by_org.values().map(Vec::len).sum();
        self.open.store(open, Ordering::SeqCst);
    }
}

/// PostgreSQL: hands the run records any replica commits to this process's tails (read back by
/// the ids their transaction notified). Does nothing while no tail is open here.
pub async fn listen(store: Arc<crate::store::Store>, mut stop: tokio::sync::watch::Receiver<bool>) {
    use sea_orm::sqlx::postgres::PgListener;
    use std::time::Duration;
    let pool = store.db.get_postgres_connection_pool().clone();
    let mut listener = loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut l) => match l.listen(NOTIFY_CHANNEL).await {
                Ok(()) => break l,
                Err(e) => tracing::warn!(error = %e, "LISTEN for run records failed; retrying"),
            },
            Err(e) => tracing::warn!(error = %e, "connecting the run-record listener failed; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = stop.changed() => return,
        }
    };
    loop {
        tokio::select! {
            n = listener.recv() => match n {
                Ok(n) => {
                    if store.tail.open() == 0 {
                        continue;
                    }
                    let ids: Vec<i64> = n.payload().split(',').filter_map(|id| id.parse().ok()).collect();
                    match crate::store::runs::by_ids(&store.db, ids).await {
                        Ok(rows) => store.tail.deliver(&rows),
                        Err(e) => tracing::warn!(error = %e, "reading notified run records failed"),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "run-record listener lost its connection");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(org: i64, id: i64) -> run::Model {
        run::Model {
            id,
            run_id: id,
            org_id: org,
            action_id: 7,
            action_name: "a".into(),
            flow_type: 2,
            trigger_type: 4,
            outcome: crate::domain::Outcome::Succeeded,
            allowed_to_fail: false,
            error: String::new(),
            started_at: 0,
            duration_nanos: 0,
            logs: "[]".into(),
            http_calls: 0,
            log_records: 0,
            log_bytes: 0,
            connection_id: None,
            condition: None,
            warnings: None,
            action_version: Some(1),
        }
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_gets_overflow_and_is_closed() {
        let hub = Arc::new(TailHub::default());
        let mut slow = hub.subscribe(1, TailFilter::default()).unwrap();
        let rows: Vec<run::Model> = (0..BUFFER as i64 + 5).map(|i| record(1, i)).collect();
        hub.deliver(&rows);
        for i in 0..BUFFER as i64 {
            match slow.events.recv().await {
                Some(TailEvent::Run(r)) => assert_eq!(r.record.id, i),
                other => panic!("event {i}: {other:?}"),
            }
        }
        assert!(matches!(slow.events.recv().await, Some(TailEvent::Overflow)));
        assert!(slow.events.recv().await.is_none(), "nothing after the overflow");
        assert_eq!(hub.open(), 0, "the overflowed tail lost its slot");
    }

    #[tokio::test]
    async fn slots_filters_and_organizations() {
        let hub = Arc::new(TailHub::default());
        let tails: Vec<Tail> =
            (0..MAX_TAILS_PER_ORG).map(|_| hub.subscribe(1, TailFilter::default()).unwrap()).collect();
        assert!(hub.subscribe(1, TailFilter::default()).is_none());
        let mut other = hub.subscribe(2, TailFilter { action_id: Some(8), ..Default::default() }).unwrap();
        hub.deliver(&[record(2, 1)]);
        assert!(other.events.try_recv().is_err(), "filtered out");
        let mut matching = record(2, 2);
        matching.action_id = 8;
        hub.deliver(&[matching]);
        assert!(matches!(other.events.try_recv(), Ok(TailEvent::Run(r)) if r.record.id == 2));
        drop(tails);
        assert_eq!(hub.open_for(1), 0);
        assert!(hub.subscribe(1, TailFilter::default()).is_some());
    }
}
