//! Delivery records of the durable queue (our extension of `zitadel.action.v2.ActionService`):
//! ListDeliveries and RetryDelivery, IAM_OWNER only.

use super::{page_bounds, PaginationRequest, PaginationResponse, SERVICE};
use crate::api::auth::Caller;
use crate::api::json;
use crate::api::messages::GatewayError;
use crate::api::{check_id, AppState, BodyMode, Rpc};
use crate::domain::time::format_micros;
use crate::error::{ApiError, ApiResult};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::deliveries as store;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn rpcs() -> Vec<Rpc> {
    use BodyMode::{Ignored, Whole};
    vec![
        Rpc::instance::<__path_list_deliveries>(SERVICE, Whole, rpc_call!(list_deliveries)),
        Rpc::instance::<__path_retry_delivery>(SERVICE, Ignored, rpc_call!(retry_delivery)),
    ]
}

proto_enum!(
    /// Where a delivery stands.
    DeliveryState {
        Unspecified = 0 => "DELIVERY_STATE_UNSPECIFIED",
        Pending = 1 => "DELIVERY_STATE_PENDING",
        Succeeded = 2 => "DELIVERY_STATE_SUCCEEDED",
        Failed = 3 => "DELIVERY_STATE_FAILED",
        Dead = 4 => "DELIVERY_STATE_DEAD",
    }
);

impl From<store::DeliveryState> for DeliveryState {
    fn from(s: store::DeliveryState) -> Self {
        match s {
            store::DeliveryState::Pending => DeliveryState::Pending,
            store::DeliveryState::Succeeded => DeliveryState::Succeeded,
            store::DeliveryState::Failed => DeliveryState::Failed,
            store::DeliveryState::Dead => DeliveryState::Dead,
        }
    }
}

impl DeliveryState {
    /// The stored state (none for unspecified).
    fn stored(self) -> Option<store::DeliveryState> {
        match self {
            DeliveryState::Unspecified => None,
            DeliveryState::Pending => Some(store::DeliveryState::Pending),
            DeliveryState::Succeeded => Some(store::DeliveryState::Succeeded),
            DeliveryState::Failed => Some(store::DeliveryState::Failed),
            DeliveryState::Dead => Some(store::DeliveryState::Dead),
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetIdFilter {
    #[serde(default, alias = "target_id")]
    pub target_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionIdFilter {
    #[serde(default, alias = "connection_id")]
    pub connection_id: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct StateFilter {
    #[serde(default)]
    pub state: DeliveryState,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeFilter {
    #[serde(default, alias = "event_type")]
    pub event_type: String,
}

/// Exactly one of the filters.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySearchFilter {
    #[serde(default, alias = "target_id_filter", deserialize_with = "json::message_opt::deserialize")]
    pub target_id_filter: Option<TargetIdFilter>,
    #[serde(default, alias = "state_filter", deserialize_with = "json::message_opt::deserialize")]
    pub state_filter: Option<StateFilter>,
    #[serde(default, alias = "event_type_filter", deserialize_with = "json::message_opt::deserialize")]
    pub event_type_filter: Option<EventTypeFilter>,
    /// The deliveries that apply a connector connection's effects through ZITADEL's API.
    #[serde(default, alias = "connection_id_filter", deserialize_with = "json::message_opt::deserialize")]
    pub connection_id_filter: Option<ConnectionIdFilter>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListDeliveriesRequest {
    #[serde(default, deserialize_with = "json::message_opt::deserialize")]
    pub pagination: Option<PaginationRequest>,
    #[serde(default, deserialize_with = "json::messages::deserialize")]
    pub filters: Vec<DeliverySearchFilter>,
}

/// One delivery: a queued call of one target for one event or restAsync request, or (with
/// `connectionId` and no `targetId`) an effect a connector call applies through ZITADEL's API.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    pub execution_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "json::is_zero_i32")]
    pub attempts: i32,
    #[serde(skip_serializing_if = "json::is_zero_i32")]
    pub last_status: i32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    /// When the next attempt is due (pending and failed deliveries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_date: Option<String>,
    pub creation_date: String,
    pub change_date: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListDeliveriesResponse {
    pub pagination: PaginationResponse,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RetryDeliveryRequest {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryDeliveryResponse {
    pub change_date: String,
}

fn delivery_msg(d: entity::delivery::Model) -> Delivery {
    let open = matches!(d.state, store::DeliveryState::Pending | store::DeliveryState::Failed);
    Delivery {
        id: d.id.to_string(),
        target_id: if d.connection_id.is_some() { String::new() } else { d.target_id.to_string() },
        connection_id: d.connection_id.map(|c| c.to_string()),
        execution_id: d.execution_id,
        event_type: d.event_type.filter(|e| !e.is_empty()),
        state: d.state.into(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        next_attempt_date: open.then(|| format_micros(d.next_attempt_at)),
        creation_date: format_micros(d.created_at),
        change_date: format_micros(d.changed_at),
    }
}

#[utoipa::path(post, path = "/v2/actions/deliveries/search", tag = "ActionService",
    operation_id = "ActionService_ListDeliveries",
    summary = "List delivery records of the durable queue (newest first unless pagination.asc)",
    request_body = ListDeliveriesRequest,
    responses((status = 200, body = ListDeliveriesResponse),
        (status = 400, description = "Bad filter, or limit over 1000 (Errors.Query.LimitExceeded)", body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_deliveries(s: AppState, _c: Caller, r: ListDeliveriesRequest) -> ApiResult<ListDeliveriesResponse> {
    let (offset, limit, asc) = page_bounds(&r.pagination)?;
    let mut q = store::ListQuery { offset, limit, asc, ..Default::default() };
    let mut empty = false;
    for (i, f) in r.filters.into_iter().enumerate() {
        let set = [
            f.target_id_filter.is_some(),
            f.state_filter.is_some(),
            f.event_type_filter.is_some(),
            f.connection_id_filter.is_some(),
        ];
        if set.iter().filter(|x| **x).count() != 1 {
            return Err(ApiError::invalid(format!(
                "invalid ListDeliveriesRequest.Filters[{i}]: exactly one of targetIdFilter, stateFilter, \
                 eventTypeFilter and connectionIdFilter must be set"
            )));
        }
        if let Some(c) = f.connection_id_filter {
            match crate::domain::id::parse(&c.connection_id) {
                Some(id) => q.filters.push(store::DeliveryFilter::Connection(id)),
                None => empty = true,
            }
        }
        if let Some(t) = f.target_id_filter {
            match crate::domain::id::parse(&t.target_id) {
                Some(id) => q.filters.push(store::DeliveryFilter::Target(id)),
                None => empty = true,
            }
        }
        if let Some(st) = f.state_filter {
            if st.state.is_zero() {
                return Err(ApiError::invalid(format!(
                    "invalid ListDeliveriesRequest.Filters[{i}].StateFilter.State: a delivery state is required"
                )));
            }
            q.filters.extend(st.state.stored().map(store::DeliveryFilter::State));
        }
        if let Some(e) = f.event_type_filter {
            q.filters.push(store::DeliveryFilter::EventType(e.event_type));
        }
    }
    if empty {
        return Ok(ListDeliveriesResponse {
            pagination: PaginationResponse { total_result: 0, applied_limit: limit },
            deliveries: Vec::new(),
        });
    }
    let (rows, total) = store::list(&s.store.db, q).await?;
    Ok(ListDeliveriesResponse {
        pagination: PaginationResponse { total_result: total, applied_limit: limit },
        deliveries: rows.into_iter().map(delivery_msg).collect(),
    })
}

#[utoipa::path(post, path = "/v2/actions/deliveries/{id}/retry", tag = "ActionService",
    operation_id = "ActionService_RetryDelivery",
    summary = "Make a failed or dead delivery pending again, with its next attempt now",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, body = RetryDeliveryResponse),
        (status = 400, description = "The delivery is pending or succeeded (code 9, Errors.Delivery.NotRetryable)",
            body = GatewayError),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown delivery (Errors.Delivery.NotFound)", body = GatewayError)))]
pub async fn retry_delivery(s: AppState, _c: Caller, r: RetryDeliveryRequest) -> ApiResult<RetryDeliveryResponse> {
    check_id("RetryDeliveryRequest", "Id", &r.id)?;
    let id = crate::domain::id::parse(&r.id).ok_or_else(store::not_found)?;
    let at = store::retry(&s.store, id).await?;
    s.store.changes.wake_deliveries();
    Ok(RetryDeliveryResponse { change_date: format_micros(at) })
}
