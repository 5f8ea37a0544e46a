//! Run records: written in batches (failed runs at once), listed newest first, pruned by age and count.

use super::Store;
use crate::error::ApiResult;
use entity::{recorded_context, run};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub async fn insert(store: &Store, rows: Arc<Vec<run::Model>>) -> ApiResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let written = rows.clone();
    store.write(&[], move |txn| Box::pin(async move { insert_in(txn, &written).await })).await?;
    store.runs_committed(&rows);
    Ok(())
}

/// Inserts run records in the caller's transaction (on PostgreSQL, with the NOTIFY that brings
/// them to every replica's live tails at commit; see [`Store::runs_committed`]).
pub async fn insert_in<C: sea_orm::ConnectionTrait>(conn: &C, rows: &[run::Model]) -> ApiResult<()> {
    for chunk in rows.chunks(200) {
        super::texts::insert_rows(conn, chunk).await?;
    }
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // A payload stays far below PostgreSQL's 8000-byte limit: 300 ids of up to 20 digits.
        for chunk in rows.chunks(300) {
            let ids: Vec<String> = chunk.iter().map(|r| r.id.to_string()).collect();
            conn.execute(sea_orm::Statement::from_sql_and_values(
                sea_orm::DatabaseBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [crate::service::tail::NOTIFY_CHANNEL.into(), ids.join(",").into()],
            ))
            .await?;
        }
    }
    Ok(())
}

/// Run records by id (for the live tail of PostgreSQL replicas).
pub async fn by_ids<C: ConnectionTrait>(conn: &C, ids: Vec<i64>) -> ApiResult<Vec<run::Model>> {
    Ok(run::Entity::find().filter(run::Column::Id.is_in(ids)).order_by_asc(run::Column::Id).all(conn).await?)
}

/// Most run records held back while the database is unavailable (the oldest go first past it).
const MAX_PENDING: usize = 200_000;

/// Batches of run records the writer holds before callers write their records themselves.
const QUEUE_BATCHES: usize = 4096;

/// Most bytes of run records and recorded contexts the writer holds (queued, or kept while the
/// database is unavailable): past it, callers write their records themselves (and so, in an
/// outage, are answered 503) instead of the server's memory growing by the size of what they
/// send (a record and a context may each be 64 KiB and more).
const MAX_HELD_BYTES: usize = 64 << 20;

/// What the writer stores in one transaction: run records and recorded contexts.
#[derive(Debug, Default, Clone)]
pub struct Pending {
    pub runs: Vec<run::Model>,
    pub contexts: Vec<recorded_context::Model>,
}

impl Pending {
    fn len(&self) -> usize {
        self.runs.len() + self.contexts.len()
    }

    /// About what the records take in memory: their texts, and a little for the rest.
    fn bytes(&self) -> usize {
        let runs: usize = self
            .runs
            .iter()
            .map(|r| {
                256 + r.action_name.len()
                    + r.error.len()
                    + r.logs.len()
                    + r.condition.as_ref().map_or(0, String::len)
                    + r.warnings.as_ref().map_or(0, String::len)
            })
            .sum();
        let contexts: usize = self.contexts.iter().map(|c| 64 + c.context.len()).sum();
        runs + contexts
    }

    fn extend(&mut self, more: Pending) {
        self.runs.extend(more.runs);
        self.contexts.extend(more.contexts);
    }

    /// Drops the oldest `n` items (run records first).
    fn drop_oldest(&mut self, n: usize) {
        let from_runs = n.min(self.runs.len());
        self.runs.drain(..from_runs);
        let from_contexts = (n - from_runs).min(self.contexts.len());
        self.contexts.drain(..from_contexts);
    }
}

/// Writes run records and recorded contexts in one transaction.
pub async fn insert_pending(store: &Store, pending: Arc<Pending>) -> ApiResult<()> {
    if pending.len() == 0 {
        return Ok(());
    }
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                insert_in(txn, &pending.runs).await?;
                super::recordings::insert_in(txn, &pending.contexts).await
            })
        })
        .await
}

/// Collects run records (and recorded contexts) and writes them in one transaction per batch (at
/// most ~200 ms late).
#[derive(Clone)]
pub struct RunWriter {
    tx: mpsc::Sender<Pending>,
    /// Bytes queued or held by the writer task ([`Pending::bytes`]), bounded by [`MAX_HELD_BYTES`].
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl RunWriter {
    pub fn start(
        store: Arc<Store>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE_BATCHES);
        let held = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let release = {
            let held = held.clone();
            move |bytes: usize| held.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed)
        };
        let task = tokio::spawn(async move {
            loop {
                // (Checked first: a retry below may already have seen the stop signal, and
                // `changed` would then wait for another one that never comes.)
                if *stop.borrow_and_update() {
                    break;
                }
                let first = tokio::select! {
                    batch = rx.recv() => batch,
                    _ = stop.changed() => None,
                };
                let Some(mut rows) = first else { break };
                let flush_at = tokio::time::Instant::now() + Duration::from_millis(200);
                while rows.len() < 2000 {
                    match tokio::time::timeout_at(flush_at, rx.recv()).await {
                        Ok(Some(more)) => rows.extend(more),
                        _ => break,
                    }
                }
                // While the database is unavailable the batch is kept and tried again (with what
                // arrives meanwhile), so an outage delays run records instead of losing them.
                let mut wait = Duration::from_millis(250);
                loop {
                    let batch = Arc::new(std::mem::take(&mut rows));
                    let result = insert_pending(&store, batch.clone()).await;
                    rows = Arc::try_unwrap(batch).unwrap_or_else(|shared| shared.as_ref().clone());
                    match result {
                        Ok(()) => {
                            store.runs_committed(&rows.runs);
                            release(rows.bytes());
                            break;
                        }
                        Err(e) if e.kind == crate::error::Kind::Unavailable && !*stop.borrow() => {
                            tracing::warn!(error = %e, pending = rows.len(), "writing run records failed; retrying");
                            tokio::select! {
                                _ = tokio::time::sleep(wait) => {}
                                _ = stop.changed() => {}
                            }
                            wait = (wait * 2).min(Duration::from_secs(5));
                            while let Ok(more) = rx.try_recv() {
                                rows.extend(more);
                            }
                            if rows.len() > MAX_PENDING {
                                let dropped = rows.len() - MAX_PENDING;
                                let before = rows.bytes();
                                rows.drop_oldest(dropped);
                                release(before - rows.bytes());
                                tracing::error!(dropped, "run records dropped: the database is unavailable too long");
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, dropped = rows.len(), "writing run records failed");
                            release(rows.bytes());
                            break;
                        }
                    }
                }
            }
            // Shutting down: write whatever is still queued.
            rx.close();
            let mut rest = Pending::default();
            while let Ok(more) = rx.try_recv() {
                rest.extend(more);
            }
            if let Err(e) = insert_pending(&store, Arc::new(rest)).await {
                tracing::error!(error = %e, "writing run records at shutdown failed");
            }
        });
        (RunWriter { tx, held }, task)
    }

    /// A writer without a batching task: every submit gives the records back to be written at once
    /// (one-shot commands, which start no background jobs).
    pub fn direct() -> Self {
        let (tx, _) = mpsc::channel(1);
        RunWriter { tx, held: Arc::default() }
    }

    /// Queues records for the next batch; gives them back when the queue is full (the writer
    /// falls behind, e.g. while the database is unavailable) or closed, so that the caller writes
    /// them itself: memory stays bounded and the load pushes back on the callers.
    pub fn submit(&self, pending: Pending) -> Result<(), Pending> {
        use std::sync::atomic::Ordering;
        let bytes = pending.bytes();
        if self.held.fetch_add(bytes, Ordering::Relaxed) + bytes > MAX_HELD_BYTES {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
            return Err(pending);
        }
        self.tx.try_send(pending).map_err(|e| {
            self.held.fetch_sub(bytes, Ordering::Relaxed);
            e.into_inner()
        })
    }
}

pub enum RunFilter {
    Action(i64),
    Outcome(crate::domain::Outcome),
    Flow(i32),
    RunId(i64),
    Connection(i64),
    Nothing,
}

pub async fn list(
    store: &Store,
    org: i64,
    filters: &[RunFilter],
    offset: u64,
    limit: u64,
) -> ApiResult<(u64, Vec<run::Model>)> {
    let mut q = run::Entity::find().filter(run::Column::OrgId.eq(org));
    for f in filters {
        q = match f {
            RunFilter::Action(id) => q.filter(run::Column::ActionId.eq(*id)),
            RunFilter::Outcome(o) => q.filter(run::Column::Outcome.eq(*o)),
            RunFilter::Flow(t) => q.filter(run::Column::FlowType.eq(*t)),
            RunFilter::RunId(id) => q.filter(run::Column::RunId.eq(*id)),
            RunFilter::Connection(id) => q.filter(run::Column::ConnectionId.eq(*id)),
            RunFilter::Nothing => q.filter(Expr::cust("1 = 0")),
        };
    }
    let snapshot = store.read_snapshot().await?;
    let total = q.clone().count(&snapshot).await?;
    let rows = q
        .order_by_desc(run::Column::Id)
        .offset(super::sql_count(offset))
        .limit(super::sql_count(limit))
        .all(&snapshot)
        .await?;
    snapshot.commit().await?;
    Ok((total, rows))
}

pub async fn get(store: &Store, org: i64, id: i64) -> ApiResult<Option<run::Model>> {
    Ok(run::Entity::find_by_id(id).filter(run::Column::OrgId.eq(org)).one(&store.db).await?)
}

/// Deletes records older than `retention` and, per org, all but the newest `max_rows`.
pub async fn prune(store: &Store, retention: Duration, max_rows: u64) -> ApiResult<u64> {
    prune_in_batches(store, retention, max_rows, super::PRUNE_BATCH).await
}

/// [`prune`], at most `batch` rows per transaction.
pub async fn prune_in_batches(store: &Store, retention: Duration, max_rows: u64, batch: u64) -> ApiResult<u64> {
    super::prune_in_passes(store, "prune-runs", batch, move |txn| {
        Box::pin(async move { prune_in(txn, retention, max_rows, batch).await })
    })
    .await
}

async fn prune_in<C: ConnectionTrait>(conn: &C, retention: Duration, max_rows: u64, batch: u64) -> ApiResult<u64> {
    let cutoff = crate::domain::time::now_micros() - retention.as_micros() as i64;
    let by_age = sea_orm::Condition::all().add(run::Column::StartedAt.lt(cutoff));
    let removed = super::delete_some::<run::Entity, _>(conn, run::Column::Id, by_age, batch).await?;
    if removed == batch {
        return Ok(removed);
    }
    let orgs = super::orgs_with_rows::<run::Entity, _>(conn, run::Column::OrgId).await?;
    let (org, key) = (run::Column::OrgId, run::Column::Id);
    Ok(removed + super::keep_newest_of_orgs::<run::Entity, _>(conn, org, key, &orgs, max_rows, batch - removed).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(bytes: usize) -> Pending {
        let c = recorded_context::Model {
            run_id: 1,
            org_id: 1,
            flow_type: 2,
            trigger_type: 4,
            context: "x".repeat(bytes),
            created_at: 0,
        };
        Pending { runs: Vec::new(), contexts: vec![c] }
    }

    /// What the writer holds is bounded in bytes, not only in batches: past the budget the
    /// records go back to the caller (who writes them itself), and what the writer releases can
    /// be queued again.
    #[tokio::test]
    async fn the_writer_holds_a_bounded_number_of_bytes() {
        let (tx, mut rx) = mpsc::channel::<Pending>(QUEUE_BATCHES);
        let writer = RunWriter { tx, held: Arc::default() };
        let mut accepted = 0;
        let given_back = loop {
            match writer.submit(context(1 << 20)) {
                Ok(()) => accepted += 1,
                Err(back) => break back,
            }
            assert!(accepted <= 64, "held more than 64 MiB");
        };
        assert_eq!(given_back.contexts[0].context.len(), 1 << 20, "the caller gets its records back whole");
        assert!(accepted >= 60, "{accepted} MiB accepted");
        // Small records still fit beside them; a second large one does not until bytes are released.
        assert!(writer.submit(context(100)).is_ok());
        assert!(writer.submit(context(1 << 20)).is_err());
        let taken = rx.recv().await.unwrap();
        writer.held.fetch_sub(taken.bytes(), std::sync::atomic::Ordering::Relaxed);
        assert!(writer.submit(context(1 << 20)).is_ok());
    }
}
