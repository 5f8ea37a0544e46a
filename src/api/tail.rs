//! `GET /management/v1/runs/_tail` (authoring.md §5): the organization's run records as they
//! complete, as server-sent events (`event: run`, the record with its logs as JSON data).

use super::auth::Caller;
use super::execute::{run_msg, Outcome, Run};
use super::{error_response, AppState, Transport};
use crate::domain::role::Permission;
use crate::domain::{FlowType, TriggerType};
use crate::error::{ApiError, ApiResult, Kind};
use crate::service::tail::{TailEvent, TailFilter};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use std::time::Duration;

pub const TAIL_PATH: &str = "/management/v1/runs/_tail";
/// How often an open tail checks that its token is still valid.
const TOKEN_CHECK: Duration = Duration::from_millis(500);
/// The comment line that keeps idle streams (and the proxies between) alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn router() -> Router<AppState> {
    Router::new().route(TAIL_PATH, get(tail))
}

/// The query filters; all optional, all given must match.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct TailQuery {
    /// Runs of this action.
    #[serde(alias = "action_id")]
    pub action_id: Option<String>,
    /// Flow type id (1..4).
    #[serde(alias = "flow_type")]
    pub flow_type: Option<String>,
    /// Trigger type id (1..6).
    #[serde(alias = "trigger_type")]
    pub trigger_type: Option<String>,
    /// `OUTCOME_SUCCEEDED`, `OUTCOME_FAILED`, … (or the number).
    pub outcome: Option<String>,
    /// Runs of one connector connection's calls.
    #[serde(alias = "connection_id")]
    pub connection_id: Option<String>,
}

fn invalid(field: &str, value: &str) -> ApiError {
    ApiError::invalid(format!("invalid TailRunsRequest.{field}: unknown value {value:?}"))
}

fn filter_of(q: TailQuery) -> ApiResult<TailFilter> {
    let id = |field: &str, v: Option<String>| -> ApiResult<Option<i64>> {
        v.filter(|v| !v.is_empty()).map(|v| crate::domain::id::parse(&v).ok_or_else(|| invalid(field, &v))).transpose()
    };
    let flow_type = match q.flow_type.filter(|v| !v.is_empty()) {
        Some(v) => Some(FlowType::parse(&v).ok_or_else(|| invalid("FlowType", &v))?.0),
        None => None,
    };
    let trigger_type = match q.trigger_type.filter(|v| !v.is_empty()) {
        Some(v) => Some(TriggerType::parse(&v).ok_or_else(|| invalid("TriggerType", &v))?.0),
        None => None,
    };
    // A pair that names no trigger (a trigger of another flow) could never match: refused like
    // the trigger documents, `_execute` and `_replay` refuse it.
    if let (Some(f), Some(t)) = (flow_type, trigger_type) {
        if crate::domain::Trigger::new(FlowType(f), TriggerType(t)).is_none() {
            return Err(ApiError::new(Kind::InvalidArgument, "COMMAND-Dfgh6", "TriggerType is invalid"));
        }
    }
    let outcome = match q.outcome.filter(|v| !v.is_empty()) {
        Some(v) => {
            let parsed = Outcome::from_name(&v).or_else(|| v.parse().ok().and_then(Outcome::from_number));
            match parsed {
                Some(Outcome::Unspecified) => None,
                Some(o) => Some(o.stored().ok_or_else(|| invalid("Outcome", &v))?),
                None => return Err(invalid("Outcome", &v)),
            }
        }
        None => None,
    };
    Ok(TailFilter {
        action_id: id("ActionId", q.action_id)?,
        flow_type,
        trigger_type,
        outcome,
        connection_id: id("ConnectionId", q.connection_id)?,
    })
}

/// Whether the caller's token still exists and has not expired.
async fn token_valid(s: &AppState, caller: &Caller) -> bool {
    use sea_orm::EntityTrait;
    match entity::token::Entity::find_by_id(caller.token_id).one(&s.store.db).await {
        Ok(Some(t)) => t.expires_at.is_none_or(|exp| exp > crate::domain::time::now_micros()),
        Ok(None) => false,
        // A database hiccup does not end the stream; the next check decides.
        Err(_) => true,
    }
}

#[utoipa::path(get, path = "/management/v1/runs/_tail", tag = "ManagementService",
    operation_id = "ManagementService_TailRuns",
    summary = "Stream the organization's run records as they complete (server-sent events)",
    description = "Every run record of the organization completed from now on, as `event: run` with the \
        record (logs included) as JSON `data`; a comment line every 15 s. A reader 1,000 events behind gets \
        `event: overflow` and the stream ends; it also ends within a second of its token being revoked and \
        at shutdown. At most 10 tails per organization. REST only (not a Connect RPC).",
    params(TailQuery),
    responses((status = 200, description = "`event: run` per completed run record", content_type = "text/event-stream", body = Run),
        (status = 400, description = "Unknown filter value", body = super::messages::GatewayError),
        (status = 401, body = super::messages::GatewayError), (status = 403, body = super::messages::GatewayError),
        (status = 429, description = "10 tails of this organization are open (RUN-t41l5)", body = super::messages::GatewayError)))]
pub fn tail_doc() {}

/// An open tail's lease; given back when the stream ends or its client goes away.
struct Lease {
    store: std::sync::Arc<crate::store::Store>,
    id: i64,
    /// Where the release is registered, so that a shutdown waits for it.
    releases: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (store, id) = (self.store.clone(), self.id);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let release = runtime.spawn(async move {
                if let Err(e) = crate::store::tails::release(&store, id).await {
                    // It expires by itself (store::tails::LEASE).
                    tracing::warn!(error = %e, "giving a live tail's lease back failed");
                }
            });
            if let Ok(mut releases) = self.releases.lock() {
                releases.retain(|r| !r.is_finished());
                releases.push(release);
            }
        }
    }
}

async fn tail(
    State(s): State<AppState>,
    query: Result<Query<TailQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let caller = match super::authenticate(&s, &headers, Permission::Read, true).await {
        Ok(c) => c,
        Err(e) => return error_response(&e, Transport::Gateway),
    };
    let Ok(Query(query)) = query else {
        return error_response(
            &ApiError::invalid("invalid TailRunsRequest: malformed query string"),
            Transport::Gateway,
        );
    };
    let filter = match filter_of(query) {
        Ok(f) => f,
        Err(e) => return error_response(&e, Transport::Gateway),
    };
    let limit = crate::service::tail::MAX_TAILS_PER_ORG;
    let too_many = || {
        let e =
            ApiError::new(Kind::ResourceExhausted, "RUN-t41l5", format!("at most {limit} live tails per organization"));
        error_response(&e, Transport::Gateway)
    };
    let Some(subscription) = s.store.tail.subscribe(caller.org, filter) else { return too_many() };
    // The limit holds across replicas: each open tail holds a lease in the database.
    let lease = match crate::store::tails::acquire(&s.store, caller.org, limit).await {
        Ok(Some(id)) => Lease { store: s.store.clone(), id, releases: s.lease_releases.clone() },
        Ok(None) => return too_many(),
        Err(e) => return error_response(&e, Transport::Gateway),
    };
    let mut closing = s.closing.subscribe();
    let stream = async_stream::stream! {
        // Moved whole into the stream: its slot and lease are held for as long as the stream lives.
        let mut subscription = subscription;
        let _lease = lease;
        let mut check = tokio::time::interval(TOKEN_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if *closing.borrow() {
                break;
            }
            tokio::select! {
                event = subscription.events.recv() => match event {
                    Some(TailEvent::Run(run)) => {
                        // Encoded once for all the tails that get this record.
                        let data = run.data.get_or_init(|| {
                            serde_json::to_string(&run_msg(run.record.clone(), true)).unwrap_or_default()
                        });
                        yield Ok::<Event, std::convert::Infallible>(Event::default().event("run").data(data.as_str()));
                    }
                    Some(TailEvent::Overflow) => {
                        yield Ok(Event::default().event("overflow").data("the reader fell 1000 events behind"));
                        break;
                    }
                    None => break,
                },
                _ = check.tick() => {
                    if !token_valid(&s, &caller).await {
                        break;
                    }
                }
                _ = closing.changed() => break,
            }
        }
    };
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response()
}
