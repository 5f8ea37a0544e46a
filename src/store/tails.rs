//! Leases of the live tails open on every replica (`tail_leases`), so that the limit of tails per
//! organization holds across replicas. A process renews the leases of its open tails while they
//! live; those of a process that died expire and are dropped by the next tail opened in their
//! organization.

use super::{org_lock, stmt, Store};
use crate::domain::time::now_micros;
use crate::error::ApiResult;
use sea_orm::ConnectionTrait;
use std::time::Duration;

/// How long a lease lasts without renewal. Long enough that a stalled renewal (a slow database,
/// a paused process) does not let another replica count a live tail as gone; the leases of a
/// process that died free their slots within it (a SQLite start frees them at once: see
/// [`release_all`]).
pub const LEASE: Duration = Duration::from_secs(10);
/// How often a process renews the leases of its open tails (one write, only while some are open).
pub const RENEW_EVERY: Duration = Duration::from_secs(2);

/// Takes a lease for one more tail of `org` when it holds fewer than `limit` live ones (counted
/// under the organization's lock); `None` when it holds `limit`.
pub async fn acquire(store: &Store, org: i64, limit: usize) -> ApiResult<Option<i64>> {
    let (backend, node, id) = (store.backend, store.node, store.new_id());
    let taken = store
        .write(&[org_lock(org)], move |txn| {
            Box::pin(async move {
                let now = now_micros();
                txn.execute(stmt(
                    backend,
                    "DELETE FROM tail_leases WHERE org_id = $1 AND expires_at < $2",
                    vec![org.into(), now.into()],
                ))
                .await?;
                let live = txn
                    .query_one(stmt(
                        backend,
                        "SELECT COUNT(*) AS n FROM tail_leases WHERE org_id = $1",
                        vec![org.into()],
                    ))
                    .await?
                    .map(|row| row.try_get::<i64>("", "n"))
                    .transpose()?
                    .unwrap_or(0);
                if live >= limit as i64 {
                    return Ok(None);
                }
                let until = now + LEASE.as_micros() as i64;
                txn.execute(stmt(
                    backend,
                    "INSERT INTO tail_leases (id, org_id, node, expires_at) VALUES ($1, $2, $3, $4)",
                    vec![id.into(), org.into(), node.into(), until.into()],
                ))
                .await?;
                Ok(Some(id))
            })
        })
        .await?;
    if let Some(id) = taken {
        store.tail_leases.lock().unwrap_or_else(|e| e.into_inner()).insert(id, org);
    }
    Ok(taken)
}

/// Extends the leases of this process's open tails, and puts back any that another process
/// dropped as expired while this one could not renew (a stall longer than the lease): the tails
/// are still open, so they count. The end is taken when the statement runs, not before it waits
/// for the writer.
pub async fn renew(store: &Store) -> ApiResult<()> {
    let (backend, node) = (store.backend, store.node);
    if store.tail_leases.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
        return Ok(());
    }
    let held = store.tail_leases.clone();
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                // Read when the statement runs: a lease given back while this waited for the
                // writer is not put back.
                let open: Vec<(i64, i64)> =
                    held.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(id, org)| (*id, *org)).collect();
                let until = now_micros() + LEASE.as_micros() as i64;
                for chunk in open.chunks(200) {
                    let mut values = Vec::with_capacity(chunk.len() * 4);
                    let rows: Vec<String> = chunk
                        .iter()
                        .enumerate()
                        .map(|(i, (id, org))| {
                            values.extend([(*id).into(), (*org).into(), node.into(), until.into()]);
                            format!("(${}, ${}, ${}, ${})", i * 4 + 1, i * 4 + 2, i * 4 + 3, i * 4 + 4)
                        })
                        .collect();
                    let sql = format!(
                        "INSERT INTO tail_leases (id, org_id, node, expires_at) VALUES {} \
                         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at",
                        rows.join(", ")
                    );
                    txn.execute(stmt(backend, &sql, values)).await?;
                }
                Ok(())
            })
        })
        .await
}

/// Gives a closed tail's lease back.
pub async fn release(store: &Store, id: i64) -> ApiResult<()> {
    store.tail_leases.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let backend = store.backend;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                txn.execute(stmt(backend, "DELETE FROM tail_leases WHERE id = $1", vec![id.into()])).await?;
                Ok(())
            })
        })
        .await
}

/// Drops every tail lease: for the start of a SQLite server, the database's only process, so any
/// lease found then is one of a process that died (its streams closed with it).
pub async fn release_all(store: &Store) -> ApiResult<()> {
    let backend = store.backend;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                txn.execute(stmt(backend, "DELETE FROM tail_leases", vec![])).await?;
                Ok(())
            })
        })
        .await
}
