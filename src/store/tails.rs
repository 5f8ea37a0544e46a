//! Leases of the live tails open on every replica (`tail_leases`), so that the limit of tails per
//! organization holds across replicas. A process renews the leases of its open tails while they
//! live; those of a process that died expire and are dropped by the next tail opened in their
//! organization.

use super::{org_lock, stmt, Store};
use crate::domain::time::now_micros;
use crate::error::ApiResult;
use sea_orm::ConnectionTrait;
use std::time::Duration;

/// How long a lease lasts without renewal: the slots of a process that died (its streams closed
/// with it) are free again within this, inside authoring.md's "a closed stream frees its slot
/// within 5 s".
pub const LEASE: Duration = Duration::from_secs(4);
/// How often a process renews the leases of its open tails (one write, only while some are open).
pub const RENEW_EVERY: Duration = Duration::from_secs(1);

/// Takes a lease for one more tail of `org` when it holds fewer than `limit` live ones (counted
/// under the organization's lock); `None` when it holds `limit`.
pub async fn acquire(store: &Store, org: i64, limit: usize) -> ApiResult<Option<i64>> {
    let (backend, node, id) = (store.backend, store.node, store.new_id());
    store
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
        .await
}

/// Extends the leases of this process's open tails.
pub async fn renew(store: &Store) -> ApiResult<()> {
    let (backend, node) = (store.backend, store.node);
    let until = now_micros() + LEASE.as_micros() as i64;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                txn.execute(stmt(
                    backend,
                    "UPDATE tail_leases SET expires_at = $1 WHERE node = $2",
                    vec![until.into(), node.into()],
                ))
                .await?;
                Ok(())
            })
        })
        .await
}

/// Gives a closed tail's lease back.
pub async fn release(store: &Store, id: i64) -> ApiResult<()> {
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
