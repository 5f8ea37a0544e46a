//! Opening the database: the connection pools, their limits, and the checks that keep a
//! connection whose transaction went wrong out of the pool.
//!
//! Three pools per process:
//! - `db`, for reads (and every PostgreSQL write);
//! - `writer` (SQLite only): the one connection writers take in turn. SQLite has one writer at a
//!   time anyway; giving writers their own connection lets the store check it after every
//!   transaction (see [`sqlite_writer_clean`]) without slowing reads;
//! - `health`: one connection with a short timeout for `/debug/ready`, so readiness answers even
//!   while the request pools are exhausted or the database does not answer.

use sea_orm::sqlx::{self, pool::PoolConnectionMetadata, ConnectOptions as _, Executor as _, TransactionManager};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, RuntimeErr, SqlxPostgresConnector,
    SqlxSqliteConnector, Statement, TransactionTrait,
};
use std::time::Duration;

/// How requests wait for the database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Longest wait for a pooled connection (a new connection included) before a request fails
    /// with 503 Unavailable.
    pub acquire_timeout: Duration,
    /// SQLite: the largest size the database file may grow to (a quota; writes past it fail like
    /// a full disk). None: no limit but the disk.
    pub sqlite_max_size: Option<u64>,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions { acquire_timeout: Duration::from_secs(2), sqlite_max_size: None }
    }
}

/// The pools of one process (see the module documentation).
pub struct Databases {
    pub db: DatabaseConnection,
    pub writer: DatabaseConnection,
    pub health: DatabaseConnection,
    /// [`DbOptions::acquire_timeout`], also the bound for waiting on SQLite's single writer.
    pub acquire_timeout: Duration,
}

/// How many transactions the driver believes are open on `conn`.
fn depth<DB: sqlx::Database>(conn: &DB::Connection) -> usize {
    DB::TransactionManager::get_transaction_depth(conn)
}

/// How long `/debug/ready` waits for the database.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

const SQLITE_PAGE_SIZE: u64 = 4096;

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(e))
}

/// Opens the pools with the settings each backend needs to be safe, and applies migrations.
pub async fn connect(url: &str, schema: Option<&str>, opts: &DbOptions) -> Result<Databases, DbErr> {
    let dbs = connect_unmigrated(url, schema, opts).await?;
    migrate(&dbs.db).await?;
    Ok(dbs)
}

/// Opens the pools without applying migrations (see [`migrate`]): a start checks what it must
/// before it changes the schema.
pub async fn connect_unmigrated(url: &str, schema: Option<&str>, opts: &DbOptions) -> Result<Databases, DbErr> {
    if url.starts_with("sqlite:") {
        sqlite(url, opts).await
    } else {
        postgres(url, schema, opts).await
    }
}

/// A setting as stored before any migration runs: None where there is none, or no settings table
/// yet (a new database).
pub async fn setting_before_migrations(db: &DatabaseConnection, key: &str) -> Option<String> {
    let stmt = super::stmt(db.get_database_backend(), "SELECT value FROM settings WHERE key = $1", vec![key.into()]);
    let row = db.query_one(stmt).await.ok()??;
    row.try_get::<String>("", "value").ok()
}

/// Applies the migrations the database lacks, all of them in one transaction.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    // All or nothing (both backends' schema changes are transactional): a migration stopped by a
    // full disk or SQLite's size quota leaves no half-made tables, so the next start runs it
    // again instead of failing on a table that already exists.
    let txn = db.begin().await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Two replicas starting together must not both run the migrations.
        txn.execute(Statement::from_string(DatabaseBackend::Postgres, "SELECT pg_advisory_xact_lock(7261001)")).await?;
    }
    migration::Migrator::up(&txn, None).await?;
    txn.commit().await
}

/// A new database file is made readable by its owner only (0600): it holds run logs and recorded
/// contexts. SQLite gives its `-wal` and `-shm` files the database file's permissions. An
/// existing file keeps its own.
fn create_private(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path.exists() {
        return;
    }
    // An empty file is a new database to SQLite; if this fails, SQLite creates the file itself.
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

async fn sqlite(url: &str, opts: &DbOptions) -> Result<Databases, DbErr> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
    let mut connect: SqliteConnectOptions = url.parse().map_err(conn_err)?;
    connect = connect
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .create_if_missing(true)
        .disable_statement_logging();
    if let Some(max) = opts.sqlite_max_size {
        connect = connect.pragma("max_page_count", (max / SQLITE_PAGE_SIZE).max(1).to_string());
    }
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    if !in_memory {
        create_private(connect.get_filename());
    }
    // No ping before each use: a connection to a local file cannot be cut off, and each ping is a
    // round trip to the connection's thread (as costly as the query itself for a point read).
    // A failing database still fails the query itself, as fast.
    let base = || {
        SqlitePoolOptions::new()
            .test_before_acquire(false)
            .acquire_timeout(opts.acquire_timeout)
            // A connection left inside a transaction never goes back to the pool.
            .after_release(|conn, _meta| Box::pin(async move { Ok(depth::<sqlx::Sqlite>(conn) == 0) }))
    };
    if in_memory {
        // One in-memory database lives in one connection: every pool is that connection.
        let pool = base()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(conn_err)?;
        let db = SqlxSqliteConnector::from_sqlx_sqlite_pool(pool);
        return Ok(Databases { db: db.clone(), writer: db.clone(), health: db, acquire_timeout: opts.acquire_timeout });
    }
    let read = base().max_connections(8).min_connections(1).connect_with(connect.clone()).await.map_err(conn_err)?;
    let writer = SqlitePoolOptions::new()
        .test_before_acquire(false)
        .acquire_timeout(opts.acquire_timeout)
        .max_connections(1)
        .min_connections(1)
        .after_release(|conn, meta| Box::pin(sqlite_writer_clean(conn, meta)))
        .connect_with(connect.clone())
        .await
        .map_err(conn_err)?;
    let health = SqlitePoolOptions::new()
        .acquire_timeout(HEALTH_TIMEOUT)
        .max_connections(1)
        .min_connections(0)
        .connect_lazy_with(connect);
    Ok(Databases {
        db: SqlxSqliteConnector::from_sqlx_sqlite_pool(read),
        writer: SqlxSqliteConnector::from_sqlx_sqlite_pool(writer),
        health: SqlxSqliteConnector::from_sqlx_sqlite_pool(health),
        acquire_timeout: opts.acquire_timeout,
    })
}

/// Whether the writer connection may be used again after a transaction.
///
/// When a statement or a COMMIT fails with SQLITE_FULL or SQLITE_IOERR, SQLite may roll the whole
/// transaction back on its own, so the driver's idea of "inside a transaction" and the
/// connection's real state part ways; reused, such a connection turns the next transaction into
/// a savepoint of a transaction that never commits (an acknowledged write that is lost). So the
/// connection goes back only when both agree that no transaction is open: `BEGIN` succeeds only
/// outside one (queued after any pending rollback of the driver, so it sees the final state).
async fn sqlite_writer_clean(conn: &mut sqlx::SqliteConnection, _meta: PoolConnectionMetadata) -> sqlx::Result<bool> {
    if conn.execute("BEGIN").await.is_err() {
        tracing::warn!("the database writer connection was left inside a transaction; discarding it");
        return Ok(false);
    }
    if conn.execute("ROLLBACK").await.is_err() {
        return Ok(false);
    }
    if depth::<sqlx::Sqlite>(conn) != 0 {
        tracing::warn!("the database writer connection's transaction state is out of step; discarding it");
        return Ok(false);
    }
    Ok(true)
}

async fn postgres(url: &str, schema: Option<&str>, opts: &DbOptions) -> Result<Databases, DbErr> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let mut connect: PgConnectOptions = url.parse().map_err(conn_err)?;
    // A statement the server takes but does not finish (a lock held elsewhere, a slow plan) is
    // cancelled, and so is a transaction left idle: no request waits on them for minutes.
    connect = connect
        .disable_statement_logging()
        .options([("statement_timeout", "30s"), ("idle_in_transaction_session_timeout", "60s")]);
    if let Some(schema) = schema {
        connect = connect.options([("search_path", schema)]);
    }
    let pool = PgPoolOptions::new()
        .max_connections(32)
        .min_connections(2)
        .acquire_timeout(opts.acquire_timeout)
        // A connection still inside a transaction (a COMMIT or ROLLBACK that failed half-way) is
        // closed instead of reused.
        .after_release(|conn, _meta| Box::pin(async move { Ok(depth::<sqlx::Postgres>(conn) == 0) }))
        .connect_with(connect.clone())
        .await
        .map_err(conn_err)?;
    let health = PgPoolOptions::new()
        .acquire_timeout(HEALTH_TIMEOUT)
        .max_connections(1)
        .min_connections(0)
        .idle_timeout(Duration::from_secs(30))
        .connect_lazy_with(connect);
    let db = SqlxPostgresConnector::from_sqlx_postgres_pool(pool);
    Ok(Databases {
        writer: db.clone(),
        db,
        health: SqlxPostgresConnector::from_sqlx_postgres_pool(health),
        acquire_timeout: opts.acquire_timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database and its WAL are readable by their owner only.
    #[tokio::test]
    async fn a_new_database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let dbs = connect(&url, None, &DbOptions::default()).await.expect("connect");
        for file in [path.clone(), dir.path().join("p.db-wal")] {
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", file.display());
        }
        drop(dbs);
    }

    /// A first migration that the size quota stops part-way leaves nothing behind: the next start
    /// migrates the same file.
    #[tokio::test]
    async fn an_interrupted_migration_is_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
        let mut stopped = 0;
        for size in [48 << 10, 64 << 10, 96 << 10, 128 << 10, 160 << 10] {
            let small = DbOptions { sqlite_max_size: Some(size), ..Default::default() };
            if connect(&url, None, &small).await.is_err() {
                stopped += 1;
            }
        }
        assert!(stopped > 0, "the quota never stopped the migration");
        let dbs = connect(&url, None, &DbOptions::default()).await.expect("migrates after the quota is lifted");
        use migration::MigratorTrait;
        assert!(migration::Migrator::get_pending_migrations(&dbs.db).await.unwrap().is_empty());
    }
}
