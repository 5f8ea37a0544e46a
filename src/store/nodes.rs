//! Node numbers under a lease: the 10 bits of every generated id that tell processes apart.
//!
//! A process claims the lowest number whose lease is free or expired, renews it in the background
//! (and before a write when it is close to running out), and gives it back at shutdown. A lost
//! lease (the database was unreachable for longer than [`LEASE`] and another process took the
//! number) is noticed at the next renewal, which claims a new number. So two live processes never
//! mint ids with the same node number.

use super::stmt;
use crate::domain::time::now_micros;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use std::time::Duration;

/// How long a claimed node number stays reserved without renewal.
pub const LEASE: Duration = Duration::from_secs(60);
/// How often the background task renews.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);
/// A write renews first when less than this is left of the lease.
pub const RENEW_BEFORE_WRITE: Duration = Duration::from_secs(30);

const NODE_NUMBERS: i64 = 1024;

fn micros(d: Duration) -> i64 {
    d.as_micros() as i64
}

/// Claims the lowest free or expired node number for `owner` (the process's `nodes` row id);
/// returns it and the lease's end. One statement, so concurrent starts cannot take the same one.
pub async fn claim(db: &DatabaseConnection, owner: i64) -> Result<(i64, i64), DbErr> {
    for _ in 0..8 {
        let now = now_micros();
        let until = now + micros(LEASE);
        let sql = format!(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {last}) \
             INSERT INTO node_leases (node_no, owner, lease_until) \
             SELECT n, $1, $2 FROM seq \
             WHERE NOT EXISTS (SELECT 1 FROM node_leases l WHERE l.node_no = seq.n AND l.lease_until >= $3) \
             ORDER BY n LIMIT 1 \
             ON CONFLICT (node_no) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until \
             WHERE node_leases.lease_until < $3 \
             RETURNING node_no",
            last = NODE_NUMBERS - 1
        );
        let row =
            db.query_one(stmt(db.get_database_backend(), &sql, vec![owner.into(), until.into(), now.into()])).await?;
        if let Some(row) = row {
            return Ok((row.try_get::<i64>("", "node_no")?, until));
        }
        // Either every number is leased, or another process took the chosen one at the same
        // moment: look again.
        let free: Option<i64> = db
            .query_one(stmt(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM node_leases WHERE lease_until >= $1",
                vec![now.into()],
            ))
            .await?
            .map(|r| r.try_get::<i64>("", "n"))
            .transpose()?;
        if free.unwrap_or(0) >= NODE_NUMBERS {
            break;
        }
    }
    Err(DbErr::Custom(format!("all {NODE_NUMBERS} node numbers are leased by live processes")))
}

/// Extends the lease if `owner` still holds `node`; None when the lease was lost.
pub async fn renew(db: &DatabaseConnection, node: i64, owner: i64) -> Result<Option<i64>, DbErr> {
    let until = now_micros() + micros(LEASE);
    let done = db
        .execute(stmt(
            db.get_database_backend(),
            "UPDATE node_leases SET lease_until = $1 WHERE node_no = $2 AND owner = $3",
            vec![until.into(), node.into(), owner.into()],
        ))
        .await?;
    Ok((done.rows_affected() == 1).then_some(until))
}

/// Gives the number back (at shutdown), so the next start can take it at once.
pub async fn release(db: &DatabaseConnection, node: i64, owner: i64) -> Result<(), DbErr> {
    db.execute(stmt(
        db.get_database_backend(),
        "DELETE FROM node_leases WHERE node_no = $1 AND owner = $2",
        vec![node.into(), owner.into()],
    ))
    .await?;
    Ok(())
}
