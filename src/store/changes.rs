//! Change signals of one [`Store`](super::Store): what its committed write transactions touched,
//! for the caches and workers that follow them (the v2 execution/target snapshot, the delivery
//! worker). Each store owns its own, so several stores in one process (tests start many servers)
//! never see each other's changes.
//!
//! Code deep inside a write transaction (appending an event, inserting deliveries) records what
//! it did with [`mark`]; the marks live in a task-local scope that [`Store::write`](super::Store::write)
//! opens around the transaction's body, and are turned into signals only after the commit.

use crate::domain::id::IdGenerator;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// What a write transaction changed that someone watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// An event on a target or an execution (the v2 snapshot is stale after the commit).
    TargetsOrExecutions,
    /// Delivery rows were inserted (the local delivery worker has work after the commit).
    DeliveriesQueued,
}

/// The signals, per store.
#[derive(Default)]
pub struct Changes {
    v2_generation: AtomicU64,
    deliveries: Notify,
}

impl Changes {
    /// Bumped after every commit that changed a target or an execution.
    pub fn v2_generation(&self) -> u64 {
        self.v2_generation.load(Ordering::Acquire)
    }

    /// Notified after commits that queued deliveries (and by [`wake_deliveries`](Self::wake_deliveries)).
    pub fn deliveries_waker(&self) -> &Notify {
        &self.deliveries
    }

    pub fn wake_deliveries(&self) {
        self.deliveries.notify_one();
    }

    /// Applies the marks of a committed transaction.
    pub(super) fn committed(&self, marks: &TxMarks) {
        if marks.v2.get() {
            self.v2_generation.fetch_add(1, Ordering::Release);
        }
        if marks.deliveries.get() {
            self.wake_deliveries();
        }
    }
}

/// What the running write transaction did so far, and the store's id generator for rows minted
/// inside it.
pub(super) struct TxScope {
    pub marks: TxMarks,
    pub ids: Arc<IdGenerator>,
}

#[derive(Default, Clone)]
pub(super) struct TxMarks {
    v2: Cell<bool>,
    deliveries: Cell<bool>,
}

tokio::task_local! {
    pub(super) static TX: TxScope;
}

/// Runs a write transaction's body in a fresh change-marks scope (ids minted with `ids`); returns
/// its result and what it marked.
pub(super) async fn scoped<T>(ids: Arc<IdGenerator>, body: impl std::future::Future<Output = T>) -> (T, TxMarks) {
    let scope = TxScope { marks: Default::default(), ids };
    TX.scope(scope, async {
        let value = body.await;
        (value, TX.with(|tx| tx.marks.clone()))
    })
    .await
}

/// Records that the running write transaction did `what`. Outside a write transaction (which the
/// store never does) the mark has nothing to attach to and is dropped.
pub fn mark(what: Mark) {
    let _ = TX.try_with(|tx| match what {
        Mark::TargetsOrExecutions => tx.marks.v2.set(true),
        Mark::DeliveriesQueued => tx.marks.deliveries.set(true),
    });
}

/// A new id from the generator of the store whose write transaction is running (None outside one).
pub fn tx_id() -> Option<i64> {
    TX.try_with(|tx| tx.ids.next()).ok()
}
