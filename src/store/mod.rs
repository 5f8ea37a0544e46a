//! Database access. Every change goes through [`Store::write`], which serializes writers on
//! one aggregate and appends the event log in the same transaction as the read-table change.

pub mod actions;
pub mod changes;
pub mod connect;
pub mod connections;
pub mod crypto;
pub mod deliveries;
pub mod events;
pub mod flows;
pub mod group;
pub mod nodes;
pub mod orgs;
pub mod recordings;
pub mod runs;
pub mod secrets;
pub mod tails;
pub mod targets;
pub mod texts;
pub mod tokens;

use crate::domain::id::IdGenerator;
use crate::error::{ApiError, ApiResult};
pub use connect::{connect, Databases, DbOptions};
use futures::future::BoxFuture;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, Set, SqlErr,
    Statement, TransactionTrait,
};

pub struct Store {
    /// Reads (and, on PostgreSQL, writes).
    pub db: DatabaseConnection,
    /// The connection write transactions run on (SQLite: a pool of its own; see [`connect`]).
    writer: DatabaseConnection,
    /// `/debug/ready`'s own connection.
    health: DatabaseConnection,
    /// The readiness probe under way, if any: callers that arrive while it runs take its result
    /// (a flood of probes does not queue each behind the other on the one connection and time
    /// out). It runs in a task of its own, so a caller that goes away does not end it.
    health_probe: std::sync::Arc<std::sync::Mutex<Option<tokio::sync::watch::Receiver<Option<bool>>>>>,
    pub backend: DatabaseBackend,
    /// PostgreSQL: the schema this store's tables are in, when it is not `public`; it scopes the
    /// advisory locks (which are per database) to the deployment, so that servers on other schemas
    /// of one database neither wait for nor skip each other's jobs.
    lock_scope: Option<String>,
    /// SQLite has one writer at a time anyway; queueing writers here avoids SQLITE_BUSY storms.
    sqlite_writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// SQLite: the write transactions queued while one commits are committed together.
    group: Option<group::GroupCommit>,
    acquire_timeout: std::time::Duration,
    pub ids: std::sync::Arc<IdGenerator>,
    /// What committed writes changed (per store: the v2 snapshot and the delivery worker follow it).
    pub changes: std::sync::Arc<changes::Changes>,
    /// This process's row in `nodes`, unique per start: the owner of its delivery leases and of
    /// its node-number lease (the node number itself is `ids.node()`).
    pub node: i64,
    /// When the node-number lease ends (microseconds), and one renewal at a time.
    node_lease_until: std::sync::atomic::AtomicI64,
    node_lease_renewal: tokio::sync::Mutex<()>,
    /// The live tails of run records open in this process.
    pub tail: std::sync::Arc<crate::service::tail::TailHub>,
    /// The leases of this process's open tails (lease id → organization), renewed and, if another
    /// process dropped one during a stall, put back (see `tails::renew`).
    pub(crate) tail_leases: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<i64, i64>>>,
}

/// The tables whose keys the id generator mints, and the columns. (A connector effect's delivery
/// `seq` is minted before the delivery's own id, which covers it.)
const MINTED_IDS: [(&str, &str); 12] = [
    ("actions", "id"),
    ("orgs", "id"),
    ("tokens", "id"),
    ("targets", "id"),
    ("target_keys", "id"),
    ("deliveries", "id"),
    ("connections", "id"),
    ("connection_rejections", "id"),
    ("runs", "id"),
    ("runs", "run_id"),
    // A call's run id is kept here too when only its context was recorded (no action ran).
    ("recorded_contexts", "run_id"),
    ("tail_leases", "id"),
];

/// The highest minted id stored (None in an empty database).
async fn highest_id(db: &DatabaseConnection) -> Result<Option<i64>, DbErr> {
    let parts: Vec<String> =
        MINTED_IDS.iter().map(|(table, column)| format!("SELECT MAX({column}) AS m FROM {table}")).collect();
    let sql = format!("SELECT MAX(m) AS m FROM ({}) AS minted", parts.join(" UNION ALL "));
    let row = db.query_one(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await?;
    Ok(row.and_then(|r| r.try_get::<Option<i64>>("", "m").ok().flatten()))
}

/// Rows the pruning jobs delete in one transaction: a backlog (a lowered retention, a long
/// downtime) is removed in several, so that on SQLite other writers get the single writer between
/// them instead of waiting seconds for one large delete.
pub const PRUNE_BATCH: u64 = 10_000;

/// Runs the pruning job `name` in passes of one transaction each until a pass removes fewer than
/// `batch` rows (or another replica holds the job). Answers the rows removed.
pub(crate) async fn prune_in_passes<F>(store: &Store, name: &str, batch: u64, pass: F) -> ApiResult<u64>
where
    F: for<'c> Fn(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<u64>> + Send + Sync,
{
    let mut removed = 0;
    loop {
        let Some(n) = store.exclusive_job(name, |txn| pass(txn)).await? else { break };
        removed += n;
        if n < batch {
            break;
        }
    }
    Ok(removed)
}

/// Deletes at most `limit` rows of `E` that match `condition`, picked by `key`. Answers the rows
/// deleted.
pub(crate) async fn delete_some<E, C>(
    conn: &C,
    key: E::Column,
    condition: sea_orm::Condition,
    limit: u64,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter};
    if limit == 0 {
        return Ok(0);
    }
    let some = sea_orm::sea_query::Query::select()
        .column(key)
        .from(E::default().table_ref())
        .cond_where(condition)
        .limit(limit)
        .to_owned();
    Ok(E::delete_many().filter(key.in_subquery(some)).exec(conn).await?.rows_affected)
}

/// Deletes all but the newest `keep` rows of an organization, newest by `key` (a time-ordered
/// minted id): what keeps run records and recorded contexts to `ACTIONSD_RUN_MAX_ROWS` per org.
/// At most `limit` rows go; answers the rows deleted.
pub(crate) async fn keep_newest_of_org<E, C>(
    conn: &C,
    org_column: E::Column,
    key: E::Column,
    org: i64,
    keep: u64,
    limit: u64,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
    let boundary: Option<i64> = E::find()
        .select_only()
        .column(key)
        .filter(org_column.eq(org))
        .order_by_desc(key)
        // An offset past i64::MAX cannot be bound (and no table holds that many rows).
        .offset(sql_count(keep.saturating_sub(1)))
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    let Some(boundary) = boundary else { return Ok(0) };
    delete_some::<E, C>(conn, key, sea_orm::Condition::all().add(org_column.eq(org)).add(key.lt(boundary)), limit).await
}

/// The organizations that hold rows of `E`.
pub(crate) async fn orgs_with_rows<E: EntityTrait, C: ConnectionTrait>(
    conn: &C,
    org_column: E::Column,
) -> Result<Vec<i64>, DbErr> {
    use sea_orm::QuerySelect;
    E::find().select_only().column(org_column).distinct().into_tuple().all(conn).await
}

/// [`keep_newest_of_org`] for each of `orgs`, at most `limit` rows in all; answers the rows deleted.
pub(crate) async fn keep_newest_of_orgs<E, C>(
    conn: &C,
    org_column: E::Column,
    key: E::Column,
    orgs: &[i64],
    keep: u64,
    limit: u64,
) -> Result<u64, DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let mut removed = 0;
    for &org in orgs {
        if removed == limit {
            break;
        }
        removed += keep_newest_of_org::<E, C>(conn, org_column, key, org, keep, limit - removed).await?;
    }
    Ok(removed)
}

impl Store {
    /// A read-only transaction whose statements all read one snapshot: a list's count and its
    /// page agree even while rows are written. PostgreSQL: REPEATABLE READ (READ COMMITTED takes a
    /// snapshot per statement); SQLite: a deferred transaction keeps the WAL snapshot of its first
    /// read until it ends.
    pub async fn read_snapshot(&self) -> Result<DatabaseTransaction, DbErr> {
        if self.backend == DatabaseBackend::Postgres {
            self.db
                .begin_with_config(Some(sea_orm::IsolationLevel::RepeatableRead), Some(sea_orm::AccessMode::ReadOnly))
                .await
        } else {
            self.db.begin().await
        }
    }

    /// Registers this process and leases a node number for id generation.
    pub async fn new(dbs: Databases) -> Result<Self, DbErr> {
        let Databases { db, writer, health, acquire_timeout } = dbs;
        let backend = db.get_database_backend();
        let node = entity::node::Entity::insert(entity::node::ActiveModel {
            started_at: Set(crate::domain::time::now_micros()),
            ..Default::default()
        })
        .exec(&writer)
        .await?
        .last_insert_id;
        let (node_no, lease_until) = nodes::claim(&writer, node).await?;
        let ids = IdGenerator::new(node_no);
        // Ids are time-ordered from the wall clock: after a restart on a clock that is behind
        // the last process's (an NTP step, a restored snapshot, another host), minting from it
        // would repeat ids already stored. The first ids come after the highest one in use.
        if let Some(highest) = highest_id(&writer).await? {
            ids.advance_past(highest);
        }
        let lock_scope = match backend {
            DatabaseBackend::Postgres => {
                let stmt = Statement::from_string(DatabaseBackend::Postgres, "SELECT current_schema() AS s");
                let schema = writer.query_one(stmt).await?.and_then(|row| row.try_get::<String>("", "s").ok());
                schema.filter(|s| s != "public")
            }
            _ => None,
        };
        let sqlite_writer = std::sync::Arc::new(tokio::sync::Mutex::new(()));
        let changes = std::sync::Arc::new(changes::Changes::default());
        let group = (backend == DatabaseBackend::Sqlite)
            .then(|| group::GroupCommit::start(writer.clone(), sqlite_writer.clone(), changes.clone()));
        Ok(Store {
            db,
            writer,
            health,
            health_probe: Default::default(),
            backend,
            lock_scope,
            sqlite_writer,
            group,
            acquire_timeout,
            ids: std::sync::Arc::new(ids),
            node_lease_until: std::sync::atomic::AtomicI64::new(lease_until),
            node_lease_renewal: tokio::sync::Mutex::new(()),
            changes,
            node,
            tail: Default::default(),
            tail_leases: Default::default(),
        })
    }

    /// After run records committed: SQLite hands them to this process's tails at once;
    /// PostgreSQL's transaction sent their ids with NOTIFY, and every replica's listener does it.
    pub fn runs_committed(&self, rows: &[entity::run::Model]) {
        if self.backend == DatabaseBackend::Sqlite {
            self.tail.deliver(rows);
        }
    }

    /// SQLite: the committed write groups so far (None on PostgreSQL, which commits each
    /// transaction by itself).
    pub fn group_commits(&self) -> Option<&group::GroupStats> {
        self.group.as_ref().map(|g| g.stats())
    }

    pub fn new_id(&self) -> i64 {
        self.ids.next()
    }

    /// Renews the node-number lease; if it was lost, leases another number and mints with it.
    pub async fn renew_node_lease(&self) -> ApiResult<()> {
        use std::sync::atomic::Ordering;
        let _one = self.node_lease_renewal.lock().await;
        let current = self.ids.node();
        let until = match nodes::renew(&self.writer, current, self.node).await? {
            Some(until) => until,
            None => {
                let (node_no, until) = nodes::claim(&self.writer, self.node).await?;
                tracing::warn!(lost = current, now = node_no, "the node-number lease was lost; took another number");
                self.ids.set_node(node_no);
                until
            }
        };
        self.node_lease_until.store(until, Ordering::Relaxed);
        Ok(())
    }

    /// Before a write: renews the lease first when it is close to its end (e.g. after an outage).
    async fn ensure_node_lease(&self) -> ApiResult<()> {
        let left = self.node_lease_until.load(std::sync::atomic::Ordering::Relaxed) - crate::domain::time::now_micros();
        if left < nodes::RENEW_BEFORE_WRITE.as_micros() as i64 {
            self.renew_node_lease().await?;
        }
        Ok(())
    }

    /// Begins a write transaction. On SQLite every writer queues on the single-writer lock first:
    /// a second writer could make a deferred transaction's upgrade from read to write fail at once
    /// (SQLITE_BUSY_SNAPSHOT).
    async fn begin_writer(&self) -> Result<(Option<tokio::sync::MutexGuard<'_, ()>>, DatabaseTransaction), DbErr> {
        let guard = match self.backend {
            DatabaseBackend::Sqlite => {
                // Bounded like a pool acquire: a writer stuck behind a stalled one gets 503, not a hang.
                match tokio::time::timeout(self.acquire_timeout, self.sqlite_writer.lock()).await {
                    Ok(guard) => Some(guard),
                    Err(_) => return Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
                }
            }
            _ => None,
        };
        let txn = match self.backend {
            DatabaseBackend::Sqlite => group::begin_immediate(&self.writer).await?,
            _ => self.writer.begin().await?,
        };
        Ok((guard, txn))
    }

    /// Runs `f` in a transaction, serialized with every other writer holding one of `locks`
    /// (PostgreSQL: transaction-scoped advisory locks; SQLite: the single writer).
    ///
    /// On SQLite the transactions of concurrent writers are committed together (one fsync for the
    /// group, see [`group`]); each caller still gets its answer only after its commit.
    pub async fn write<T, F>(&self, locks: &[String], f: F) -> ApiResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<T>> + Send + 'static,
    {
        // A write that arrives after the node-number lease ran out (the process was frozen, or
        // cut off from the database, for longer than the lease) may carry ids minted with a
        // number another process has taken since: when the renewal finds the number lost, the
        // write is refused (503, retried by the caller with new ids) instead of storing them.
        let lapsed =
            self.node_lease_until.load(std::sync::atomic::Ordering::Relaxed) < crate::domain::time::now_micros();
        let node = self.ids.node();
        self.ensure_node_lease().await?;
        if lapsed && self.ids.node() != node {
            return Err(ApiError::db_unavailable(format!(
                "a write with ids minted under the lost node number {node} was refused; retry"
            )));
        }
        if let Some(group) = &self.group {
            return group.write(self.ids.clone(), self.acquire_timeout, f).await;
        }
        let (_guard, txn) = self.begin_writer().await?;
        if self.backend == DatabaseBackend::Postgres {
            let mut keys: Vec<i64> = locks.iter().map(|k| self.lock_key(k)).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                txn.execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [key.into()],
                ))
                .await?;
            }
        }
        let (result, marks) = changes::scoped(self.ids.clone(), f(&txn)).await;
        match result {
            Ok(v) => {
                txn.commit().await?;
                self.changes.committed(&marks);
                Ok(v)
            }
            Err(e) => {
                // The request's own error wins over a failed rollback (nothing was committed either
                // way; the connection is checked before it is reused).
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rolling back a failed write failed");
                }
                Err(e)
            }
        }
    }

    /// Global position of the newest event (ListDetails.processedSequence).
    pub async fn last_position(&self) -> ApiResult<i64> {
        events::last_position(&self.db).await
    }

    /// Runs a background job on one replica at a time: inside a transaction holding a
    /// transaction-level advisory lock on PostgreSQL (skipped when another replica holds it).
    pub async fn exclusive_job<T, F>(&self, name: &str, f: F) -> ApiResult<Option<T>>
    where
        T: Send,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<T>> + Send,
    {
        let (_guard, txn) = self.begin_writer().await?;
        if self.backend == DatabaseBackend::Postgres {
            let stmt = Statement::from_sql_and_values(
                DatabaseBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock($1) AS locked",
                [self.lock_key(name).into()],
            );
            let locked = match txn.query_one(stmt).await? {
                Some(row) => row.try_get::<bool>("", "locked").unwrap_or(false),
                None => false,
            };
            if !locked {
                txn.rollback().await?;
                return Ok(None);
            }
        }
        let (value, marks) = changes::scoped(self.ids.clone(), f(&txn)).await;
        let value = value?;
        txn.commit().await?;
        self.changes.committed(&marks);
        Ok(Some(value))
    }

    /// Whether the database answers within [`connect::HEALTH_TIMEOUT`] (on its own connection, so
    /// busy request pools do not delay the answer).
    pub async fn ping(&self) -> bool {
        let mut result = {
            let mut under_way = self.health_probe.lock().unwrap_or_else(|e| e.into_inner());
            match &*under_way {
                Some(result) => result.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    *under_way = Some(rx.clone());
                    let (health, backend, slot) = (self.health.clone(), self.backend, self.health_probe.clone());
                    tokio::spawn(async move {
                        let probe = health.execute(Statement::from_string(backend, "SELECT 1"));
                        let ok = matches!(tokio::time::timeout(connect::HEALTH_TIMEOUT, probe).await, Ok(Ok(_)));
                        *slot.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        let _ = tx.send(Some(ok));
                    });
                    rx
                }
            }
        };
        let ok = result.wait_for(Option::is_some).await.map(|v| *v == Some(true));
        ok.unwrap_or(false)
    }

    /// Closes every pool (at shutdown), giving the node number back first.
    pub async fn close(&self) {
        if let Err(e) = nodes::release(&self.writer, self.ids.node(), self.node).await {
            tracing::warn!(error = %e, "releasing the node number failed (it expires by itself)");
        }
        let _ = self.health.clone().close().await;
        let _ = self.writer.clone().close().await;
        let _ = self.db.clone().close().await;
    }
}

/// A statement written with PostgreSQL's `$n` placeholders, rewritten to SQLite's `?n` there.
pub(crate) fn stmt(backend: DatabaseBackend, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_string(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// A stable 64-bit key for an advisory lock name (FNV-1a; stable across builds and replicas).
impl Store {
    /// The advisory lock of `name` in this store's scope (the `public` schema's keys are the
    /// names' alone, as before there were scopes).
    fn lock_key(&self, name: &str) -> i64 {
        match &self.lock_scope {
            Some(schema) => lock_key(&format!("{schema}/{name}")),
            None => lock_key(name),
        }
    }
}

fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf29ce484222325;
    for b in name.bytes() {
        hash ^= b as u64;
        hash = hash.wrapping_mul(0x100000001b3);
    }
    hash as i64
}

pub fn org_lock(org_id: i64) -> String {
    format!("org:{org_id}")
}

pub const INSTANCE_LOCK: &str = "instance";

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Maps a unique-constraint violation to the given error, anything else as [`ApiError::from_db`].
#[track_caller]
pub fn unique_or_internal(err: DbErr, on_unique: ApiError) -> ApiError {
    if is_unique_violation(&err) {
        on_unique
    } else {
        ApiError::from_db(err)
    }
}

/// The driver's own error under a connection, statement or query error.
fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    use sea_orm::RuntimeErr;
    match err {
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => Some(e),
        _ => None,
    }
}

/// Whether a database error is a passing condition rather than a bug: the database cannot be
/// reached or has no room, a connection broke, the pool had nothing free in time, a statement
/// was cancelled or lost a lock conflict. Nothing was committed; the client may try again.
pub fn is_transient(err: &DbErr) -> bool {
    use sea_orm::ConnAcquireErr;
    let sqlx_err = match (err, sqlx_error(err)) {
        (DbErr::ConnectionAcquire(ConnAcquireErr::Timeout | ConnAcquireErr::ConnectionClosed), _) => return true,
        (_, Some(e)) => e,
        (DbErr::Conn(_), None) => return true,
        _ => return false,
    };
    use sea_orm::sqlx::Error as E;
    match sqlx_err {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => true,
        // The two databases' codes overlap as text (a SQLSTATE such as 57014 is all digits too), so
        // the error's database decides how its code reads.
        E::Database(db) => match db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>() {
            Some(_) => db.code().and_then(|code| code.parse().ok()).is_some_and(sqlite_transient),
            None => db.code().is_some_and(|code| {
                // 55000 is "object not in prerequisite state" in general, but with this text it is
                // a database that takes no connections for now (`ALLOW_CONNECTIONS false`).
                sqlstate_transient(&code)
                    || (code == "55000" && db.message().contains("not currently accepting connections"))
            }),
        },
        _ => false,
    }
}

/// A database or disk that is full: SQLITE_FULL (13), PostgreSQL's `disk_full` (53100).
pub fn is_full(err: &DbErr) -> bool {
    let Some(sea_orm::sqlx::Error::Database(db)) = sqlx_error(err) else { return false };
    match db.try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>() {
        Some(_) => db.code().and_then(|code| code.parse::<i64>().ok()).is_some_and(|code| code & 0xff == 13),
        None => db.code().is_some_and(|code| code == "53100"),
    }
}

/// SQLite result codes that mean "not now" (the primary code is the low byte of an extended one):
/// SQLITE_BUSY 5, SQLITE_LOCKED 6, SQLITE_NOMEM 7, SQLITE_IOERR 10, SQLITE_FULL 13,
/// SQLITE_CANTOPEN 14, SQLITE_PROTOCOL 15.
fn sqlite_transient(code: i64) -> bool {
    matches!(code & 0xff, 5 | 6 | 7 | 10 | 13 | 14 | 15)
}

/// PostgreSQL SQLSTATEs that mean "not now": 08 connection exception; 53 insufficient resources
/// (disk full, out of memory, too many connections); 57014 statement timeout or cancel; 57P01–57P05
/// shutdown, crash recovery, idle session timeout; 40001 serialization failure; 40P01 deadlock;
/// 55P03 lock not available; 58030 I/O error.
fn sqlstate_transient(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "57014" | "40001" | "40P01" | "55P03" | "58030")
}

/// Text as both databases can store it: PostgreSQL refuses NUL in text columns, so a NUL that a
/// script or a remote party put into an error text is kept as U+FFFD, on both backends (the same
/// record whichever database holds it).
pub fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

/// An offset or limit as SQL takes it: the databases' integers are signed 64-bit, and a request may
/// ask for any unsigned one (nothing lies that far anyway).
pub fn sql_count(n: u64) -> u64 {
    n.min(i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A renewal puts back the lease of an open tail that another process dropped as expired (a
    /// stall longer than the lease), and never one given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn renewal_puts_back_the_leases_of_open_tails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("tails.db").display());
        let store =
            Store::new(connect(&url, None, &DbOptions::default()).await.expect("connect")).await.expect("store");
        let count = || async {
            let row = store
                .db
                .query_one(Statement::from_string(store.backend, "SELECT COUNT(*) AS n FROM tail_leases"))
                .await
                .expect("count")
                .expect("row");
            row.try_get::<i64>("", "n").expect("n")
        };
        let open = tails::acquire(&store, 7, 10).await.expect("acquire").expect("a slot");
        let closed = tails::acquire(&store, 7, 10).await.expect("acquire").expect("a slot");
        tails::release(&store, closed).await.expect("release");
        store.db.execute(Statement::from_string(store.backend, "DELETE FROM tail_leases")).await.expect("drop");
        assert_eq!(count().await, 0);
        tails::renew(&store).await.expect("renew");
        assert_eq!(count().await, 1, "the open tail's lease is back, the closed one's is not");
        let back = store
            .db
            .query_one(Statement::from_string(store.backend, "SELECT id, org_id FROM tail_leases"))
            .await
            .expect("row")
            .expect("row");
        assert_eq!((back.try_get::<i64>("", "id").unwrap(), back.try_get::<i64>("", "org_id").unwrap()), (open, 7));
    }

    /// A write arriving after the node-number lease ran out, whose renewal finds the number taken
    /// by another process, is refused (its ids may be that process's); the next one goes through
    /// with the new number.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_after_the_node_number_was_lost_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("lapse.db").display());
        let store =
            Store::new(connect(&url, None, &DbOptions::default()).await.expect("connect")).await.expect("store");
        let lost = store.ids.node();
        let write = || {
            store.write(&[], |txn| {
                Box::pin(async move {
                    txn.execute(Statement::from_string(txn.get_database_backend(), "SELECT 1")).await?;
                    Ok(())
                })
            })
        };
        write().await.expect("a write under a live lease");
        // Frozen past its lease, meanwhile another process took the number.
        store.node_lease_until.store(1, std::sync::atomic::Ordering::Relaxed);
        let taken = format!("UPDATE node_leases SET owner = -1 WHERE node_no = {lost}");
        store.db.execute(Statement::from_string(store.backend, taken)).await.expect("take the number");
        let refused = write().await.expect_err("a write with ids of the lost number");
        assert_eq!(refused.kind, crate::error::Kind::Unavailable, "{refused:?}");
        assert_ne!(store.ids.node(), lost, "minting with a new number");
        write().await.expect("the retried write");
    }

    /// Each database's codes are read as that database means them: PostgreSQL's all-digit
    /// SQLSTATEs are not SQLite result codes (57014 & 0xff is no SQLite code of "not now").
    #[test]
    fn transient_codes_by_database() {
        for code in ["57014", "40001", "58030", "53100", "53300", "08006", "57P01", "40P01", "55P03"] {
            assert!(sqlstate_transient(code), "{code}");
        }
        for code in ["23505", "42P01", "42601", "22P02", "00000", "5", "13"] {
            assert!(!sqlstate_transient(code), "{code}");
        }
        // SQLITE_BUSY, SQLITE_FULL, SQLITE_IOERR_WRITE (778), SQLITE_BUSY_SNAPSHOT (517).
        for code in [5, 13, 778, 517, 6, 7, 14, 15] {
            assert!(sqlite_transient(code), "{code}");
        }
        // SQLITE_CONSTRAINT_UNIQUE (2067), SQLITE_ERROR, SQLITE_CORRUPT, SQLITE_READONLY.
        for code in [2067, 1, 11, 8] {
            assert!(!sqlite_transient(code), "{code}");
        }
    }
}
