//! Messages shared by several services: details, list queries, localized names, error bodies.

use super::json::{self, is_zero_i64, is_zero_u64};
use crate::domain::time::format_micros;
use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Object details: which of the dates is set depends on the call (see the contract).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDetails {
    #[serde(skip_serializing_if = "is_zero_i64", serialize_with = "json::int64::serialize")]
    #[schema(value_type = String, example = "3")]
    pub sequence: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-11-23T10:11:12.123456Z")]
    pub creation_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026-11-23T10:11:12.123456Z")]
    pub change_date: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(example = "293485729384756231")]
    pub resource_owner: String,
}

impl ObjectDetails {
    /// Details of a write: sequence, creation date (= the event's time) and owner.
    pub fn written(sequence: i64, at: i64, owner: i64) -> Self {
        ObjectDetails {
            sequence,
            creation_date: Some(format_micros(at)),
            change_date: None,
            resource_owner: owner.to_string(),
        }
    }

    /// Details of a removal or reset (ClearFlow, RemoveToken): sequence, change date (= the
    /// event's time) and owner.
    pub fn changed(sequence: i64, at: i64, owner: i64) -> Self {
        ObjectDetails {
            sequence,
            creation_date: None,
            change_date: Some(format_micros(at)),
            resource_owner: owner.to_string(),
        }
    }

    /// Details of an object read: sequence, both dates and owner.
    pub fn read(sequence: i64, created: i64, changed: i64, owner: i64) -> Self {
        ObjectDetails {
            sequence,
            creation_date: Some(format_micros(created)),
            change_date: Some(format_micros(changed)),
            resource_owner: owner.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListDetails {
    #[serde(skip_serializing_if = "is_zero_u64", serialize_with = "json::uint64_str::serialize")]
    #[schema(value_type = String, example = "2")]
    pub total_result: u64,
    #[serde(skip_serializing_if = "is_zero_i64", serialize_with = "json::int64::serialize")]
    #[schema(value_type = String, example = "42")]
    pub processed_sequence: i64,
    pub view_timestamp: String,
}

impl ListDetails {
    pub fn new(total: u64, processed_sequence: i64) -> Self {
        ListDetails {
            total_result: total,
            processed_sequence,
            view_timestamp: format_micros(crate::domain::time::now_micros()),
        }
    }
}

/// Paging: `limit` 0 means 1000; more than 1000 is refused.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ListQuery {
    #[serde(default)]
    #[serde(deserialize_with = "json::int64::deserialize")]
    #[schema(value_type = String, example = "0")]
    pub offset: u64,
    #[serde(default)]
    #[serde(deserialize_with = "json::uint32::deserialize")]
    #[schema(value_type = u32, example = 100)]
    pub limit: u32,
    #[serde(default)]
    pub asc: bool,
}

pub const MAX_LIST_LIMIT: u64 = 1000;

impl ListQuery {
    /// (offset, limit) after the contract's defaults and bounds.
    pub fn bounds(query: &Option<ListQuery>) -> ApiResult<(u64, u64, bool)> {
        let q = query.clone().unwrap_or_default();
        let limit = match q.limit as u64 {
            0 => MAX_LIST_LIMIT,
            n if n > MAX_LIST_LIMIT => {
                return Err(ApiError::new(crate::error::Kind::InvalidArgument, "QUERY-4M0fs", "Limit exceeded"))
            }
            n => n,
        };
        // Offsets beyond i64::MAX cannot be passed to the database and match nothing anyway.
        Ok((q.offset.min(i64::MAX as u64), limit, q.asc))
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalizedMessage {
    pub key: String,
    pub localized_message: String,
}

/// Error body of the REST gateway.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayError {
    /// The numeric gRPC status code.
    #[schema(example = 5)]
    pub code: i32,
    #[schema(example = "Action not found (COMMAND-Sfg2t)")]
    pub message: String,
    /// Always present on an RPC's errors: one ErrorDetail with the error's id, or empty for an
    /// error without one (a request that fails validation). Left out of the transport's own errors
    /// (unknown route, wrong method, a body over 1 MiB or too slow), which are `{code, message}` only.
    #[schema(required = false)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    #[serde(rename = "@type")]
    #[schema(rename = "@type", example = "type.googleapis.com/zitadel.v1.ErrorDetail")]
    pub type_url: String,
    /// Stable, greppable error id.
    #[schema(example = "COMMAND-Sfg2t")]
    pub id: String,
    #[schema(example = "Action not found")]
    pub message: String,
}

/// An empty response message.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Empty {}
