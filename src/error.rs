//! One error type for every RPC, rendered per transport (gateway JSON or Connect JSON).

use axum::http::StatusCode;
use serde_json::json;

/// The gRPC status kinds the contract uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Unauthenticated,
    ResourceExhausted,
    DeadlineExceeded,
    Unimplemented,
    Unavailable,
    Internal,
}

impl Kind {
    pub fn grpc_code(self) -> i32 {
        match self {
            Kind::InvalidArgument => 3,
            Kind::FailedPrecondition => 9,
            Kind::NotFound => 5,
            Kind::AlreadyExists => 6,
            Kind::PermissionDenied => 7,
            Kind::Unauthenticated => 16,
            Kind::ResourceExhausted => 8,
            Kind::DeadlineExceeded => 4,
            Kind::Unimplemented => 12,
            Kind::Unavailable => 14,
            Kind::Internal => 13,
        }
    }

    pub fn connect_code(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "invalid_argument",
            Kind::FailedPrecondition => "failed_precondition",
            Kind::NotFound => "not_found",
            Kind::AlreadyExists => "already_exists",
            Kind::PermissionDenied => "permission_denied",
            Kind::Unauthenticated => "unauthenticated",
            Kind::ResourceExhausted => "resource_exhausted",
            Kind::DeadlineExceeded => "deadline_exceeded",
            Kind::Unimplemented => "unimplemented",
            Kind::Unavailable => "unavailable",
            Kind::Internal => "internal",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Kind::InvalidArgument | Kind::FailedPrecondition => StatusCode::BAD_REQUEST,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::AlreadyExists => StatusCode::CONFLICT,
            Kind::PermissionDenied => StatusCode::FORBIDDEN,
            Kind::Unauthenticated => StatusCode::UNAUTHORIZED,
            Kind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Kind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Kind::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: kind, optional stable id (e.g. `COMMAND-Sfg2t`) and a human message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: Kind,
    pub id: Option<&'static str>,
    pub message: String,
    /// Overrides the HTTP status (405 for a wrong method, 413 for a large body, 503 for a full queue).
    pub status: Option<StatusCode>,
    /// Extra response headers (e.g. `Retry-After`).
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(kind: Kind, id: &'static str, message: impl Into<String>) -> Self {
        ApiError { kind, id: Some(id), message: message.into(), status: None, retry_after: None }
    }

    /// An error without a stable id (framework-level errors, request validation).
    pub fn bare(kind: Kind, message: impl Into<String>) -> Self {
        ApiError { kind, id: None, message: message.into(), status: None, retry_after: None }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::bare(Kind::InvalidArgument, message)
    }

    pub fn not_found(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, id, message)
    }

    pub fn precondition(id: &'static str, message: impl Into<String>) -> Self {
        Self::new(Kind::FailedPrecondition, id, message)
    }

    pub fn permission_denied() -> Self {
        Self::new(Kind::PermissionDenied, "AUTH-5mWD2", "No matching permissions found")
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::bare(Kind::Unauthenticated, message)
    }

    /// An internal failure: the detail goes to the log, never to the client.
    #[track_caller]
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::error!(error = %detail, location = %at, "internal error");
        Self::new(Kind::Internal, "INTERNAL-1", "Internal error")
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn http_status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    /// `<text> (<ID>)`, or just the text for errors without an id.
    pub fn full_message(&self) -> String {
        self.message_with_id(&self.message)
    }

    /// `text` in place of the message, as [`Self::full_message`] writes it.
    pub fn message_with_id(&self, text: &str) -> String {
        match self.id {
            Some(id) => format!("{text} ({id})"),
            None => text.to_string(),
        }
    }

    pub fn gateway_body(&self) -> serde_json::Value {
        // `details` is always there (as the OpenAPI document says): empty when there is no id.
        let details = match self.id {
            Some(id) => json!([{
                "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
                "id": id,
                "message": self.message,
            }]),
            None => json!([]),
        };
        json!({"code": self.kind.grpc_code(), "message": self.full_message(), "details": details})
    }

    pub fn connect_body(&self) -> serde_json::Value {
        json!({"code": self.kind.connect_code(), "message": self.full_message()})
    }
}

/// Seconds a client is asked to wait (`Retry-After`) when the database is unavailable.
pub const DB_RETRY_AFTER_SECS: u64 = 2;

impl ApiError {
    /// The database cannot serve the request now (outage, full disk, exhausted pool): 503 code 14
    /// with `Retry-After`; the detail goes to the log.
    #[track_caller]
    pub fn db_unavailable(detail: impl std::fmt::Display) -> Self {
        let at = std::panic::Location::caller();
        tracing::warn!(error = %detail, location = %at, "database unavailable");
        let mut e = Self::new(Kind::Unavailable, "STORE-Unav1", "Database unavailable, try again later");
        e.retry_after = Some(DB_RETRY_AFTER_SECS);
        e
    }

    /// A database error: 503 when it is transient (see [`crate::store::is_transient`]), else 500.
    #[track_caller]
    pub fn from_db(err: sea_orm::DbErr) -> Self {
        if crate::store::is_transient(&err) {
            ApiError::db_unavailable(err)
        } else {
            ApiError::internal(err)
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    #[track_caller]
    fn from(err: sea_orm::DbErr) -> Self {
        ApiError::from_db(err)
    }
}

impl From<sea_orm::TransactionError<ApiError>> for ApiError {
    #[track_caller]
    fn from(err: sea_orm::TransactionError<ApiError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => ApiError::from_db(e),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}
