//! The durable delivery queue (event executions and restAsync targets): a transactional outbox.
//!
//! Rows are inserted in the transaction of the event (or by the intercepted request for restAsync)
//! and claimed by the queue workers of any replica with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; SQLite has one writer anyway). A delivery waits while an earlier one of the same
//! (target, aggregate) is still open, so one aggregate's events reach a target in order.

use super::stmt;
use super::Store;
use crate::domain::execution::ExecutionId;
use crate::domain::time::now_micros;
use crate::error::{ApiError, ApiResult, Kind};
use entity::delivery;
use sea_orm::{
    ActiveEnum, ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, QueryResult, Set, Statement,
};

/// PostgreSQL channel on which a commit that queued deliveries wakes every replica's worker.
pub const NOTIFY_CHANNEL: &str = "actionsd_deliveries";

pub use entity::enums::DeliveryState;

// The stored numbers of the states, for the hand-written statements below (a test checks them
// against `DeliveryState`).
const PENDING: i32 = 1;
const SUCCEEDED: i32 = 2;
const FAILED: i32 = 3;
const DEAD: i32 = 4;

pub struct NewDelivery {
    pub target_id: i64,
    pub connection_id: Option<i64>,
    pub execution_id: String,
    pub event_type: Option<String>,
    pub aggregate_key: String,
    pub seq: i64,
    pub payload: String,
}

/// Inserts deliveries (in the caller's transaction); returns their ids.
pub async fn insert<C: ConnectionTrait>(conn: &C, rows: Vec<NewDelivery>) -> ApiResult<Vec<i64>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_micros();
    let mut ids = Vec::with_capacity(rows.len());
    let mut models: Vec<delivery::ActiveModel> = Vec::with_capacity(rows.len());
    for r in rows {
        let id = super::changes::tx_id()
            .ok_or_else(|| crate::error::ApiError::internal("deliveries inserted outside a write transaction"))?;
        ids.push(id);
        models.push(delivery::ActiveModel {
            id: Set(id),
            target_id: Set(r.target_id),
            connection_id: Set(r.connection_id),
            execution_id: Set(r.execution_id),
            event_type: Set(r.event_type),
            aggregate_key: Set(r.aggregate_key),
            seq: Set(r.seq),
            payload: Set(r.payload),
            state: Set(DeliveryState::Pending),
            attempts: Set(0),
            last_status: Set(0),
            last_error: Set(String::new()),
            next_attempt_at: Set(now),
            lease_until: Set(0),
            lease_owner: Set(0),
            created_at: Set(now),
            changed_at: Set(now),
        });
    }
    delivery::Entity::insert_many(models).exec_without_returning(conn).await?;
    if conn.get_database_backend() == DatabaseBackend::Postgres {
        // Delivered to every replica's listener when (and only if) the transaction commits.
        conn.execute(Statement::from_string(DatabaseBackend::Postgres, format!("NOTIFY {NOTIFY_CHANNEL}"))).await?;
    }
    super::changes::mark(super::changes::Mark::DeliveriesQueued);
    Ok(ids)
}

/// Inserts deliveries in a transaction of their own (restAsync targets); the worker is woken
/// after the commit.
pub async fn enqueue(store: &Store, rows: Vec<NewDelivery>) -> ApiResult<Vec<i64>> {
    store.write(&[], move |txn| Box::pin(async move { insert(txn, rows).await })).await
}

/// Queues one call of a restAsync target (request/response or function execution); such a
/// delivery is ordered after nothing (an aggregate of its own).
pub async fn enqueue_async(store: &Store, target_id: i64, execution_id: &str, payload: Vec<u8>) -> ApiResult<()> {
    let payload = String::from_utf8(payload).map_err(ApiError::internal)?;
    let row = NewDelivery {
        target_id,
        connection_id: None,
        execution_id: execution_id.to_string(),
        event_type: None,
        aggregate_key: format!("async:{}", store.new_id()),
        seq: 0,
        payload,
    };
    enqueue(store, vec![row]).await.map(|_| ())
}

/// The execution ids an event type matches, most specific first: `event/<type>`, the group
/// prefixes from longest to shortest (`event/<group>.*`), then `event`.
pub fn event_execution_ids(event_type: &str) -> Vec<String> {
    ExecutionId::for_event(event_type).iter().map(ExecutionId::to_string).collect()
}

/// An event just appended, as the outbox needs it.
pub struct EventInfo<'a> {
    pub aggregate_type: super::events::Aggregate,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub resource_owner: &'a str,
    pub creator: &'a str,
    pub created_at: i64,
    pub payload: &'a serde_json::Value,
}

/// The transactional outbox: queues the event for the targets of the most specific event
/// execution visible to this transaction.
pub async fn on_event<C: ConnectionTrait>(conn: &C, e: EventInfo<'_>) -> ApiResult<()> {
    queue_event(conn, &e).await?;
    if e.aggregate_type == super::events::Aggregate::Target && e.event_type == "target.removed" {
        target_removed(conn, e.aggregate_id).await?;
    }
    Ok(())
}

/// A removed target's open deliveries are given up in the removal's transaction, so none of them
/// waits for (or is attempted at) a retry hours later.
async fn target_removed<C: ConnectionTrait>(conn: &C, target_id: &str) -> ApiResult<()> {
    let Some(target_id) = crate::domain::id::parse(target_id) else { return Ok(()) };
    // An attempt in flight (leased, its lease running) is left to end: its result is recorded
    // (the receiver may well have taken the event), and a later attempt finds no target and
    // gives up. A lease that ran out belongs to a node that is gone.
    let sql = format!(
        "UPDATE deliveries SET state = {DEAD}, last_error = 'the target was removed', lease_until = 0, changed_at = $1
         WHERE target_id = $2 AND state IN ({PENDING}, {FAILED}) AND lease_until < $1"
    );
    conn.execute(stmt(conn.get_database_backend(), &sql, vec![now_micros().into(), target_id.into()])).await?;
    Ok(())
}

async fn queue_event<C: ConnectionTrait>(conn: &C, e: &EventInfo<'_>) -> ApiResult<()> {
    use sea_orm::FromQueryResult;
    let candidates = event_execution_ids(e.event_type);
    // Every write asks this: the statement is written here, not rendered by sea-query.
    let marks: Vec<String> = (1..=candidates.len()).map(|n| format!("${n}")).collect();
    let sql = format!("SELECT * FROM executions WHERE id IN ({})", marks.join(", "));
    let values = candidates.iter().map(|c| c.as_str().into()).collect();
    let found =
        entity::execution::Model::find_by_statement(stmt(conn.get_database_backend(), &sql, values)).all(conn).await?;
    let Some(execution) = candidates.iter().find_map(|id| found.iter().find(|x| &x.id == id)) else {
        return Ok(());
    };
    let targets = super::targets::target_ids(execution);
    if targets.is_empty() {
        return Ok(());
    }
    let instance_id = super::tokens::instance_id(conn).await?;
    let created = chrono::DateTime::from_timestamp_micros(e.created_at)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let body = serde_json::json!({
        "aggregateID": e.aggregate_id,
        "aggregateType": e.aggregate_type.as_str(),
        "resourceOwner": e.resource_owner,
        "instanceID": instance_id,
        "version": "v1",
        "sequence": e.sequence,
        "event_type": e.event_type,
        "created_at": created,
        "userID": e.creator,
        "event_payload": e.payload,
    })
    .to_string();
    let rows = targets
        .iter()
        .filter_map(|t| crate::domain::id::parse(t))
        .map(|target_id| NewDelivery {
            target_id,
            connection_id: None,
            execution_id: execution.id.clone(),
            event_type: Some(e.event_type.to_string()),
            aggregate_key: format!("{}:{}", e.aggregate_type.as_str(), e.aggregate_id),
            seq: e.sequence,
            payload: body.clone(),
        })
        .collect();
    insert(conn, rows).await?;
    Ok(())
}

/// Claims up to `limit` due deliveries for this node until `lease_until`. Due rows are taken
/// in no particular order (sorting every open row per claim cost more than it bought: all of
/// them are due); per-aggregate order is kept by the NOT EXISTS condition.
pub async fn claim(store: &Store, limit: u64, lease_until: i64) -> ApiResult<Vec<delivery::Model>> {
    let now = now_micros();
    let backend = store.backend;
    let node = store.node;
    // Looked for on a read connection first: an idle queue polls often, and a claim that finds
    // nothing due need not queue for the writer (on SQLite, the one writer every request shares).
    let due = format!(
        "SELECT 1 FROM deliveries WHERE state IN ({PENDING}, {FAILED}) AND next_attempt_at <= $1 AND lease_until < $1 LIMIT 1"
    );
    if store.db.query_one(stmt(backend, &due, vec![now.into()])).await?.is_none() {
        return Ok(Vec::new());
    }
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE deliveries SET lease_until = $1, lease_owner = $2 WHERE id IN (
            SELECT d.id FROM deliveries d
            WHERE d.state IN ({PENDING}, {FAILED}) AND d.next_attempt_at <= $3 AND d.lease_until < $3
              AND NOT EXISTS (SELECT 1 FROM deliveries e
                  WHERE e.target_id = d.target_id AND e.aggregate_key = d.aggregate_key
                    AND e.seq < d.seq AND e.state IN ({PENDING}, {FAILED}))
            LIMIT $4 {lock})
         RETURNING *"
    );
    let values = vec![lease_until.into(), node.into(), now.into(), (limit as i64).into()];
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                let rows = txn.query_all(stmt(backend, &sql, values)).await?;
                rows.iter().map(|r| delivery::Model::from_query_result(r, "").map_err(ApiError::from)).collect()
            })
        })
        .await
}

/// Gives up, unsent, the open deliveries whose max age ran out while they waited (behind an
/// earlier delivery of their target and aggregate, or for a retry the queue took up late): no
/// attempt is made after creationDate + max age (actions-v2 §6), and a queue stuck behind one
/// slow receiver must not keep thousands of them PENDING for as long as it takes to reach each.
/// Not those in flight, nor one a RetryDelivery scheduled past its age on purpose. At most
/// `limit` per call; answers how many.
pub async fn expire(store: &Store, max_age: std::time::Duration, limit: u64) -> ApiResult<u64> {
    let now = now_micros();
    let age = i64::try_from(max_age.as_micros()).unwrap_or(i64::MAX);
    let backend = store.backend;
    let expired = format!(
        "state IN ({PENDING}, {FAILED}) AND created_at < $1 AND next_attempt_at <= created_at + $2 AND lease_until < $3"
    );
    let values = || vec![now.saturating_sub(age).into(), age.into(), now.into()];
    // Looked for on a read connection first, so that a queue with nothing to give up costs the
    // writer nothing.
    let any = format!("SELECT 1 FROM deliveries WHERE {expired} LIMIT 1");
    if store.db.query_one(stmt(backend, &any, values())).await?.is_none() {
        return Ok(0);
    }
    let lock = if backend == DatabaseBackend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let why = format!("not sent: still queued past ACTIONSD_DELIVERY_MAX_AGE ({}s); ", max_age.as_secs());
    let sql = format!(
        "UPDATE deliveries SET state = {DEAD}, lease_until = 0, changed_at = $3,
            last_error = CASE WHEN last_error = '' THEN $4 ELSE $5 || last_error END
         WHERE id IN (SELECT id FROM deliveries WHERE {expired} ORDER BY id LIMIT $6 {lock})"
    );
    let mut values = values();
    values.extend([
        format!("{why}no earlier attempt").into(),
        format!("{why}last error: ").into(),
        i64::try_from(limit).unwrap_or(i64::MAX).into(),
    ]);
    store
        .write(&[], move |txn| {
            Box::pin(async move { Ok(txn.execute(stmt(backend, &sql, values)).await?.rows_affected()) })
        })
        .await
}

/// Extends the leases of deliveries still in flight on this node.
pub async fn renew(store: &Store, ids: &[i64], lease_until: i64) -> ApiResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let backend = store.backend;
    let sql = format!(
        "UPDATE deliveries SET lease_until = $1 WHERE lease_owner = $2 AND id IN ({})",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let values = vec![lease_until.into(), store.node.into()];
    let ids = ids.to_vec();
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                lock_in_order(txn, &ids).await?;
                txn.execute(stmt(backend, &sql, values)).await?;
                Ok(())
            })
        })
        .await
}

/// PostgreSQL: locks the rows of `ids` in id order, first thing in a transaction that updates
/// several of them. Lease renewal and the recording of results update overlapping rows, the
/// latter in several statements; in different orders they deadlock (one of them then fails), in
/// one order the later waits.
async fn lock_in_order<C: ConnectionTrait>(conn: &C, ids: &[i64]) -> ApiResult<()> {
    let backend = conn.get_database_backend();
    if backend != DatabaseBackend::Postgres || ids.len() < 2 {
        return Ok(());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT id FROM deliveries WHERE id IN ({list}) ORDER BY id FOR UPDATE");
    conn.query_all(stmt(backend, &sql, vec![])).await?;
    Ok(())
}

/// Gives claimed deliveries back (shutdown): claimable again at once by any replica.
pub async fn release(store: &Store, ids: &[i64]) -> ApiResult<()> {
    renew(store, ids, 0).await
}

/// Gives back every lease of open deliveries: for the start of a SQLite server, the only process
/// that may serve the database (it holds the file's lock), so whatever holds a lease is a process
/// that died without giving it back, and its attempts in flight are made again at once instead
/// of after their lease. The number of deliveries given back.
pub async fn release_stale_leases(store: &Store) -> ApiResult<u64> {
    let backend = store.backend;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                let sql = format!(
                    "UPDATE deliveries SET lease_until = 0 WHERE lease_until > 0 AND state IN ({PENDING}, {FAILED})"
                );
                Ok(txn.execute(stmt(backend, &sql, vec![])).await?.rows_affected())
            })
        })
        .await
}

/// The result of one attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub id: i64,
    pub state: DeliveryState,
    pub status: i32,
    pub error: String,
    pub next_attempt_at: i64,
    /// Whether a call was made (counted in `attempts`); not for a delivery given up unsent.
    pub sent: bool,
}

/// Records attempt results (only for deliveries this node still holds).
pub async fn record(store: &Store, results: Vec<AttemptResult>) -> ApiResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let backend = store.backend;
    let node = store.node;
    store
        .write(&[], move |txn| {
            Box::pin(async move {
                let ids: Vec<i64> = results.iter().map(|r| r.id).collect();
                lock_in_order(txn, &ids).await?;
                let now = now_micros();
                // Successes with the same status in one statement each.
                let mut ok_by_status: std::collections::BTreeMap<i32, Vec<i64>> = Default::default();
                for r in results.iter().filter(|r| r.state == DeliveryState::Succeeded) {
                    ok_by_status.entry(r.status).or_default().push(r.id);
                }
                for (status, ids) in ok_by_status {
                    let sql = format!(
                        "UPDATE deliveries SET state = {SUCCEEDED}, attempts = attempts + 1, last_status = $1,
                         last_error = '', lease_until = 0, changed_at = $2, payload = ''
                         WHERE lease_owner = $3 AND state IN ({PENDING}, {FAILED}) AND id IN ({})",
                        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
                    );
                    txn.execute(stmt(backend, &sql, vec![status.into(), now.into(), node.into()])).await?;
                }
                // A failed attempt whose target was removed while it ran is the last one.
                for r in results.into_iter().filter(|r| r.state != DeliveryState::Succeeded) {
                    let sql = format!(
                        "UPDATE deliveries SET state = CASE WHEN connection_id IS NULL
                            AND NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = deliveries.target_id)
                            THEN {DEAD} ELSE $1 END, attempts = attempts + {sent}, last_status = $2,
                         last_error = $3, next_attempt_at = $4, lease_until = 0, changed_at = $5
                         WHERE id = $6 AND lease_owner = $7 AND state IN ({PENDING}, {FAILED})",
                        sent = i32::from(r.sent)
                    );
                    let values = vec![
                        r.state.to_value().into(),
                        r.status.into(),
                        super::storable(r.error).into(),
                        r.next_attempt_at.into(),
                        now.into(),
                        r.id.into(),
                        node.into(),
                    ];
                    txn.execute(stmt(backend, &sql, values)).await?;
                }
                Ok(())
            })
        })
        .await
}

pub fn not_found() -> ApiError {
    ApiError::new(Kind::NotFound, "Errors.Delivery.NotFound", "Delivery not found")
}

/// RetryDelivery: a FAILED or DEAD delivery becomes PENDING with its next attempt now.
pub async fn retry(store: &Store, id: i64) -> ApiResult<i64> {
    store
        .write(&[format!("delivery:{id}")], move |txn| {
            Box::pin(async move {
                // PostgreSQL: the row is locked before it is read, so that an attempt's result
                // recorded meanwhile (SUCCEEDED, its body cleared) is not overwritten by PENDING.
                if txn.get_database_backend() == DatabaseBackend::Postgres {
                    txn.execute(stmt(
                        DatabaseBackend::Postgres,
                        "SELECT id FROM deliveries WHERE id = $1 FOR UPDATE",
                        vec![id.into()],
                    ))
                    .await?;
                }
                let row = delivery::Entity::find_by_id(id).one(txn).await?.ok_or_else(not_found)?;
                if !matches!(row.state, DeliveryState::Failed | DeliveryState::Dead) {
                    return Err(ApiError::new(
                        Kind::FailedPrecondition,
                        "Errors.Delivery.NotRetryable",
                        "Only a failed or dead delivery can be retried",
                    ));
                }
                // A delivery outlives its target (or, for a connector's API effect, its
                // connection) only as a record: nothing is left to call.
                let removed = match row.connection_id {
                    None => {
                        entity::target::Entity::find_by_id(row.target_id).one(txn).await?.is_none().then_some("target")
                    }
                    Some(connection) => entity::connection::Entity::find_by_id(connection)
                        .one(txn)
                        .await?
                        .is_none()
                        .then_some("connection"),
                };
                if let Some(what) = removed {
                    return Err(ApiError::new(
                        Kind::FailedPrecondition,
                        "Errors.Delivery.NotRetryable",
                        format!("The delivery's {what} was removed"),
                    ));
                }
                let now = now_micros();
                // An attempt in flight (a retry on the schedule, leased by a replica) keeps its
                // lease: it is the retry, and its result is recorded as usual. Freeing the lease
                // would let the delivery be claimed and sent a second time while it runs.
                let in_flight = row.lease_until > now;
                let mut am: delivery::ActiveModel = row.into();
                am.state = Set(DeliveryState::Pending);
                am.next_attempt_at = Set(now);
                if !in_flight {
                    am.lease_until = Set(0);
                }
                am.changed_at = Set(now);
                use sea_orm::ActiveModelTrait;
                am.update(txn).await?;
                Ok(now)
            })
        })
        .await
}

/// One ListDeliveries filter; a query's filters are ANDed (two of a kind with different values
/// match nothing).
#[derive(Debug, Clone)]
pub enum DeliveryFilter {
    Target(i64),
    Connection(i64),
    State(DeliveryState),
    EventType(String),
}

#[derive(Debug, Default)]
pub struct ListQuery {
    pub filters: Vec<DeliveryFilter>,
    pub offset: u64,
    pub limit: u64,
    pub asc: bool,
}

/// ListDeliveries: newest first unless `asc`; returns the page and the total.
pub async fn list<C: ConnectionTrait>(conn: &C, q: ListQuery) -> ApiResult<(Vec<delivery::Model>, u64)> {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
    // ANDed equalities: one condition per kind at most (a repeated one adds nothing, two different
    // values of a kind match nothing). A request may carry thousands of filters; one nested AND
    // each was past SQLite's expression depth and, deeper, past the stack of the statement builder.
    let (mut target, mut connection, mut state, mut event_type) = (None, None, None, None);
    fn keep<T: PartialEq>(slot: &mut Option<T>, value: T) -> bool {
        match slot {
            Some(kept) => *kept == value,
            None => {
                *slot = Some(value);
                true
            }
        }
    }
    for f in q.filters {
        let consistent = match f {
            DeliveryFilter::Target(t) => keep(&mut target, t),
            DeliveryFilter::Connection(c) => keep(&mut connection, c),
            DeliveryFilter::State(s) => keep(&mut state, s),
            DeliveryFilter::EventType(e) => keep(&mut event_type, e),
        };
        if !consistent {
            return Ok((Vec::new(), 0));
        }
    }
    let mut select = delivery::Entity::find();
    if let Some(t) = target {
        select = select.filter(delivery::Column::TargetId.eq(t));
    }
    if let Some(c) = connection {
        select = select.filter(delivery::Column::ConnectionId.eq(c));
    }
    if let Some(s) = state {
        select = select.filter(delivery::Column::State.eq(s));
    }
    if let Some(e) = event_type {
        select = select.filter(delivery::Column::EventType.eq(e));
    }
    let total = select.clone().count(conn).await?;
    let order = if q.asc { sea_orm::Order::Asc } else { sea_orm::Order::Desc };
    let rows = select
        .order_by(delivery::Column::Id, order)
        .offset(super::sql_count(q.offset))
        .limit(q.limit)
        .all(conn)
        .await?;
    Ok((rows, total))
}

/// Open deliveries and the creation time of the oldest one (queue metrics).
pub async fn open_stats<C: ConnectionTrait>(conn: &C, backend: DatabaseBackend) -> ApiResult<(i64, Option<i64>)> {
    let sql =
        format!("SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM deliveries WHERE state IN ({PENDING}, {FAILED})");
    let row: Option<QueryResult> = conn.query_one(stmt(backend, &sql, vec![])).await?;
    let Some(row) = row else { return Ok((0, None)) };
    let n: i64 = row.try_get("", "n").unwrap_or(0);
    let oldest: Option<i64> = row.try_get("", "oldest").unwrap_or(None);
    Ok((n, oldest))
}

/// Removes finished deliveries (succeeded or dead) last changed before `before` (µs).
pub async fn prune(store: &Store, before: i64) -> ApiResult<u64> {
    prune_in_batches(store, before, super::PRUNE_BATCH).await
}

/// [`prune`], at most `batch` rows per transaction: a large backlog does not hold the writer (on
/// SQLite, every other write) for the whole deletion.
pub async fn prune_in_batches(store: &Store, before: i64, batch: u64) -> ApiResult<u64> {
    super::prune_in_passes(store, "prune_deliveries", batch, move |txn| {
        Box::pin(async move {
            use sea_orm::ColumnTrait;
            let finished = sea_orm::Condition::all()
                .add(delivery::Column::State.is_in([DeliveryState::Succeeded, DeliveryState::Dead]))
                .add(delivery::Column::ChangedAt.lt(before));
            Ok(super::delete_some::<delivery::Entity, _>(txn, delivery::Column::Id, finished, batch).await?)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_numbers_are_the_stored_states() {
        assert_eq!(DeliveryState::Pending.to_value(), PENDING);
        assert_eq!(DeliveryState::Succeeded.to_value(), SUCCEEDED);
        assert_eq!(DeliveryState::Failed.to_value(), FAILED);
        assert_eq!(DeliveryState::Dead.to_value(), DEAD);
    }

    #[test]
    fn execution_ids_most_specific_first() {
        assert_eq!(
            event_execution_ids("org.flow.cleared"),
            vec!["event/org.flow.cleared", "event/org.flow.*", "event/org.*", "event"]
        );
        assert_eq!(event_execution_ids("x"), vec!["event/x", "event"]);
    }
}
