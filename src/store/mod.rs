//! Database access. Every change goes through [`Store::write`], which serializes writers on
//! one aggregate and appends the event log in the same transaction as the read-table change.

pub mod actions;
pub mod crypto;
pub mod deliveries;
pub mod events;
pub mod flows;
pub mod orgs;
pub mod runs;
pub mod targets;
pub mod tokens;

use crate::domain::id::IdGenerator;
use crate::error::{ApiError, ApiResult};
use futures::future::BoxFuture;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, Set, SqlErr, Statement, TransactionTrait,
};
use std::time::Duration;

pub struct Store {
    pub db: DatabaseConnection,
    pub backend: DatabaseBackend,
    /// SQLite has one writer at a time anyway; queueing writers here avoids SQLITE_BUSY storms.
    sqlite_writer: tokio::sync::Mutex<()>,
    pub ids: IdGenerator,
    /// This process's node number (also the owner of delivery leases).
    pub node: i64,
}

/// Opens the database with the settings each backend needs to be safe, and applies migrations.
pub async fn connect(url: &str, schema: Option<&str>) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_string());
    opts.sqlx_logging(false).connect_timeout(Duration::from_secs(10)).acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        opts.max_connections(8).min_connections(1).map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .create_if_missing(true)
        });
    } else {
        opts.max_connections(32).min_connections(2);
        if let Some(schema) = schema {
            opts.set_schema_search_path(schema.to_string());
        }
    }
    let db = Database::connect(opts).await?;
    use migration::MigratorTrait;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        // Two replicas starting together must not both run the migrations.
        let txn = db.begin().await?;
        txn.execute(Statement::from_string(DatabaseBackend::Postgres, "SELECT pg_advisory_xact_lock(7261001)")).await?;
        migration::Migrator::up(&txn, None).await?;
        txn.commit().await?;
    } else {
        migration::Migrator::up(&db, None).await?;
    }
    Ok(db)
}

impl Store {
    /// Takes a node number for id generation from the database.
    pub async fn new(db: DatabaseConnection) -> Result<Self, DbErr> {
        let backend = db.get_database_backend();
        let node = entity::node::Entity::insert(entity::node::ActiveModel {
            started_at: Set(crate::domain::time::now_micros()),
            ..Default::default()
        })
        .exec(&db)
        .await?
        .last_insert_id;
        crate::domain::id::set_process_node(node);
        Ok(Store { db, backend, sqlite_writer: tokio::sync::Mutex::new(()), ids: IdGenerator::new(node), node })
    }

    pub fn new_id(&self) -> i64 {
        self.ids.next()
    }

    /// Begins a write transaction. On SQLite every writer queues on the single-writer lock first:
    /// a second writer could make a deferred transaction's upgrade from read to write fail at once
    /// (SQLITE_BUSY_SNAPSHOT).
    async fn begin_writer(&self) -> Result<(Option<tokio::sync::MutexGuard<'_, ()>>, DatabaseTransaction), DbErr> {
        let guard = match self.backend {
            DatabaseBackend::Sqlite => Some(self.sqlite_writer.lock().await),
            _ => None,
        };
        Ok((guard, self.db.begin().await?))
    }

    /// Runs `f` in a transaction, serialized with every other writer holding one of `locks`
    /// (PostgreSQL: transaction-scoped advisory locks; SQLite: the single writer).
    pub async fn write<T, F>(&self, locks: &[String], f: F) -> ApiResult<T>
    where
        T: Send,
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> BoxFuture<'c, ApiResult<T>> + Send,
    {
        let (_guard, txn) = self.begin_writer().await?;
        if self.backend == DatabaseBackend::Postgres {
            let mut keys: Vec<i64> = locks.iter().map(|k| lock_key(k)).collect();
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
        let queued = deliveries::enqueued_count();
        let v2_written = crate::v2::registry::written_count();
        match f(&txn).await {
            Ok(v) => {
                txn.commit().await?;
                if deliveries::enqueued_count() != queued {
                    deliveries::wake();
                }
                if crate::v2::registry::written_count() != v2_written {
                    crate::v2::registry::note_committed();
                }
                Ok(v)
            }
            Err(e) => {
                txn.rollback().await?;
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
                [lock_key(name).into()],
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
        let value = f(&txn).await?;
        txn.commit().await?;
        Ok(Some(value))
    }

    pub async fn ping(&self) -> bool {
        self.db.execute(Statement::from_string(self.backend, "SELECT 1")).await.is_ok()
    }
}

/// A stable 64-bit key for an advisory lock name (FNV-1a; stable across builds and replicas).
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

/// Maps a unique-constraint violation to the given error, anything else to an internal error.
#[track_caller]
pub fn unique_or_internal(err: DbErr, on_unique: ApiError) -> ApiError {
    if is_unique_violation(&err) {
        on_unique
    } else {
        ApiError::internal(err)
    }
}
