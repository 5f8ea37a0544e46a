//! Group commit for SQLite: the write transactions that queue up while one commits are run
//! together in the next transaction, each in a savepoint of its own, and committed with one
//! fsync. Every writer is answered only after the commit that holds its changes (or with the
//! error that kept it out), so "acknowledged" still means "durable".
//!
//! One task (the committer) owns the writer connection's turn. A writer hands it its
//! transaction body and waits for the answer. Per group:
//! - a body that fails with a domain error (not found, already exists, a precondition) is rolled
//!   back to its savepoint; the others commit;
//! - a body that fails with a database error (full disk, I/O, an unexpected statement error),
//!   or whose savepoint cannot be released or rolled back, poisons the group: SQLite may have
//!   rolled the whole transaction back by itself, so nothing of the group may be committed.
//!   The members that ran are answered with that error; those still queued go to the next group.
//! - A writer that stops waiting before its body ran (its bounded wait ran out, or the request
//!   was cancelled) is skipped: its body never runs.

use super::changes::{scoped, Changes, TxMarks};
use crate::domain::id::IdGenerator;
use crate::error::{ApiError, ApiResult, Kind};
use futures::future::BoxFuture;
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The most transactions committed together.
const MAX_GROUP: usize = 64;

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const ABANDONED: u8 = 2;

/// Answers one writer with its group's outcome.
type Answer = Box<dyn FnOnce(Result<(), ApiError>, &Changes) + Send>;

/// What a member's body left behind, and how to answer its writer once the group's fate is known.
struct Ran {
    /// The group must not commit (see the module documentation).
    poison: Option<ApiError>,
    /// Answers the writer with the group's outcome.
    answer: Answer,
}

type Body = Box<dyn for<'c> FnOnce(&'c DatabaseTransaction, bool) -> BoxFuture<'c, Ran> + Send>;

struct Member {
    state: Arc<AtomicU8>,
    body: Body,
    /// Answers a member that is not run (the transaction could not begin).
    fail: Box<dyn FnOnce(ApiError) + Send>,
}

/// The queue of writers in front of the committer.
pub(super) struct GroupCommit {
    tx: mpsc::UnboundedSender<Member>,
    stats: Arc<GroupStats>,
}

/// How many transactions the committer committed, and how many writers' bodies they held.
#[derive(Debug, Default)]
pub struct GroupStats {
    pub commits: std::sync::atomic::AtomicU64,
    pub writes: std::sync::atomic::AtomicU64,
}

/// Marks a queued member abandoned when its writer stops waiting before the body ran.
struct Waiting(Arc<AtomicU8>);

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.0.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

fn db_fault(e: &ApiError) -> bool {
    matches!(e.kind, Kind::Unavailable | Kind::Internal)
}

impl GroupCommit {
    /// Starts the committer over `writer` (SQLite's single writer connection). It ends when the
    /// store is dropped.
    pub(super) fn start(writer: DatabaseConnection, turn: Arc<tokio::sync::Mutex<()>>, changes: Arc<Changes>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(GroupStats::default());
        tokio::spawn(committer(writer, turn, changes, stats.clone(), rx));
        GroupCommit { tx, stats }
    }

    pub(super) fn stats(&self) -> &GroupStats {
        &self.stats
    }

    /// Runs `f` in the next group, waiting at most `queue_wait` for it to start.
    pub(super) async fn write<T, F>(&self, ids: Arc<IdGenerator>, queue_wait: std::time::Duration, f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<T>> + Send + 'static,
    {
        let state = Arc::new(AtomicU8::new(QUEUED));
        let (answer_tx, answer_rx) = oneshot::channel::<ApiResult<T>>();
        let answer_tx = Arc::new(std::sync::Mutex::new(Some(answer_tx)));
        let send = {
            let slot = answer_tx.clone();
            move |value: ApiResult<T>| {
                if let Some(tx) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    let _ = tx.send(value);
                }
            }
        };
        let fail = {
            let send = send.clone();
            Box::new(move |e: ApiError| send(Err(e)))
        };
        let body: Body = Box::new(move |txn: &DatabaseTransaction, alone: bool| {
            Box::pin(async move { run_member(txn, alone, ids, f, send).await })
        });
        let _waiting = Waiting(state.clone());
        if self.tx.send(Member { state: state.clone(), body, fail }).is_err() {
            return Err(ApiError::db_unavailable(DbErr::Custom("the database writer has stopped".into())));
        }
        let mut answer_rx = answer_rx;
        match tokio::time::timeout(queue_wait, &mut answer_rx).await {
            Ok(answer) => answer.unwrap_or_else(|_| Err(stopped())),
            Err(_) => {
                // Not started in time: give up unless the body already runs (then its outcome is
                // on the way and is the truth to report).
                if state.compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                    return Err(ApiError::db_unavailable(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)));
                }
                answer_rx.await.unwrap_or_else(|_| Err(stopped()))
            }
        }
    }
}

fn stopped() -> ApiError {
    ApiError::db_unavailable(DbErr::Custom("the database writer stopped before answering".into()))
}

/// One member's body: in a savepoint of the group's transaction (or directly in it when the
/// member is alone), in a change-marks scope of its own.
async fn run_member<T, F>(
    txn: &DatabaseTransaction,
    alone: bool,
    ids: Arc<IdGenerator>,
    f: F,
    send: impl FnOnce(ApiResult<T>) + Clone + Send + 'static,
) -> Ran
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<T>> + Send,
{
    if alone {
        let (result, marks) = scoped(ids, f(txn)).await;
        return match result {
            Ok(v) => committed_answer(v, marks, send),
            // Alone in the group: rolling the whole transaction back is its savepoint's rollback.
            Err(e) => poisoned(e, send),
        };
    }
    let sp = match txn.begin().await {
        Ok(sp) => sp,
        Err(e) => return poisoned(ApiError::from_db(e), send),
    };
    let (result, marks) = scoped(ids, f(&sp)).await;
    match result {
        Ok(v) => match sp.commit().await {
            Ok(()) => committed_answer(v, marks, send),
            Err(e) => poisoned(ApiError::from_db(e), send),
        },
        Err(e) => {
            let rolled_back = sp.rollback().await;
            if db_fault(&e) || rolled_back.is_err() {
                return poisoned(e, send);
            }
            Ran { poison: None, answer: Box::new(move |_, _| send(Err(e))) }
        }
    }
}

/// A member that keeps its group from committing, answered with its own error.
fn poisoned<T: Send + 'static>(e: ApiError, send: impl FnOnce(ApiResult<T>) + Send + 'static) -> Ran {
    Ran { poison: Some(e.clone()), answer: Box::new(move |_, _| send(Err(e))) }
}

fn committed_answer<T: Send + 'static>(
    value: T,
    marks: TxMarks,
    send: impl FnOnce(ApiResult<T>) + Send + 'static,
) -> Ran {
    Ran {
        poison: None,
        answer: Box::new(move |outcome, changes| match outcome {
            Ok(()) => {
                changes.committed(&marks);
                send(Ok(value))
            }
            Err(e) => send(Err(e)),
        }),
    }
}

/// Begins a write transaction that holds SQLite's write lock from its first statement, as `BEGIN
/// IMMEDIATE` would (sea-orm begins deferred). A deferred transaction reads first and takes the
/// lock at its first write; had another process (a one-shot command beside the server) committed
/// in between, SQLite refuses that transaction at once ("database is locked", not retried by the
/// busy timeout). A statement that writes nothing but takes the lock makes another process's write
/// a wait within the busy timeout instead.
pub(super) async fn begin_immediate(writer: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    use sea_orm::ConnectionTrait;
    let txn = writer.begin().await?;
    let lock =
        sea_orm::Statement::from_string(sea_orm::DatabaseBackend::Sqlite, "UPDATE settings SET value = value WHERE 0");
    if let Err(e) = txn.execute(lock).await {
        let _ = txn.rollback().await;
        return Err(e);
    }
    Ok(txn)
}

async fn committer(
    writer: DatabaseConnection,
    turn: Arc<tokio::sync::Mutex<()>>,
    changes: Arc<Changes>,
    stats: Arc<GroupStats>,
    mut rx: mpsc::UnboundedReceiver<Member>,
) {
    let mut carried: Vec<Member> = Vec::new();
    loop {
        if carried.is_empty() {
            match rx.recv().await {
                Some(m) => carried.push(m),
                None => return,
            }
        }
        while carried.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(m) => carried.push(m),
                Err(_) => break,
            }
        }
        // Writers that gave up before their turn are dropped unanswered (nobody listens).
        carried.retain(|m| m.state.load(Ordering::Acquire) == QUEUED);
        if carried.is_empty() {
            continue;
        }
        let batch: Vec<Member> = std::mem::take(&mut carried);
        let _turn = turn.lock().await;
        let txn = match begin_immediate(&writer).await {
            Ok(txn) => txn,
            Err(e) => {
                let e = ApiError::from_db(e);
                for m in batch {
                    if m.state.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                        (m.fail)(e.clone());
                    }
                }
                continue;
            }
        };
        let alone = batch.len() == 1;
        let mut ran: Vec<Ran> = Vec::with_capacity(batch.len());
        let mut poison: Option<ApiError> = None;
        let mut rest = batch.into_iter();
        for m in rest.by_ref() {
            if m.state.compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire).is_err() {
                continue;
            }
            let r = (m.body)(&txn, alone).await;
            let stop = r.poison.is_some();
            if stop {
                poison = r.poison.clone();
            }
            ran.push(r);
            if stop {
                break;
            }
        }
        // Members after a poisoned one did not run; they go to the next group.
        carried.extend(rest);
        let outcome = match poison {
            Some(e) => {
                if let Err(rb) = txn.rollback().await {
                    tracing::warn!(error = %rb, "rolling back a failed write group failed");
                }
                Err(e)
            }
            None => txn.commit().await.map_err(ApiError::from_db),
        };
        if outcome.is_ok() {
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(ran.len() as u64, Ordering::Relaxed);
        }
        drop(_turn);
        for r in ran {
            (r.answer)(outcome.clone(), &changes);
        }
    }
}
