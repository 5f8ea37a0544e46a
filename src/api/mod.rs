//! The transport layer: every RPC is one handler, reachable through its REST gateway path and
//! through Connect unary JSON, with one authentication, permission check and validation.

pub mod action_v2;
pub mod admin;
pub mod auth;
pub mod authoring;
pub mod connector;
pub mod connector_call;
pub mod execute;
pub mod grpc;
pub mod intercept;
pub mod json;
pub mod management;
pub mod messages;
pub mod openapi;
pub mod ops;
pub mod protojson;
pub mod replay;
pub mod tail;
pub mod types;

use crate::config::Config;
use crate::domain::flow::lang_from_header;
use crate::domain::role::Permission;
use crate::error::{ApiError, ApiResult, Kind};
use crate::metrics::Metrics;
use crate::store::Store;
use auth::{AuthCache, Caller};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Most `queries` one list request may combine (they are ANDed; a list of thousands would only
/// build a statement too deep to render).
pub const MAX_QUERIES: usize = 100;

/// 400 naming the field when a list request combines more than [`MAX_QUERIES`] queries, or unless
/// exactly one kind of each query's oneof is set (`kinds`: how many are set, per query; `query`:
/// the query message's name).
pub fn check_query_kinds(message: &str, query: &str, kinds: impl ExactSizeIterator<Item = u8>) -> ApiResult<()> {
    if kinds.len() > MAX_QUERIES {
        return Err(ApiError::invalid(format!(
            "invalid {message}.Queries: value must contain at most {MAX_QUERIES} item(s)"
        )));
    }
    for (i, set) in kinds.enumerate() {
        if set != 1 {
            let why = if set == 0 { "value is required" } else { "only one of the query kinds may be set" };
            return Err(ApiError::invalid(format!(
                "invalid {message}.Queries[{i}]: embedded message failed validation | caused by: invalid {query}.Query: {why}"
            )));
        }
    }
    Ok(())
}

/// 400 naming the field unless `raw` holds 1..200 characters: the rule ZITADEL's request messages
/// put on their id fields (`validate.rules` `min_len: 1, max_len: 200`). Only a body-carrying
/// transport (Connect, gRPC) can send an empty one.
pub fn check_id(message: &str, field: &str, raw: &str) -> ApiResult<()> {
    if raw.is_empty() || raw.chars().nth(200).is_some() {
        return Err(ApiError::invalid(format!(
            "invalid {message}.{field}: value length must be between 1 and 200 runes, inclusive"
        )));
    }
    Ok(())
}

/// `raw` read as an absolute `http`/`https` URL with a host (a target's endpoint, ZITADEL's API
/// base URL), or why it is not one.
pub fn absolute_http_url(raw: &str) -> Result<url::Url, &'static str> {
    // As Go's url.Parse (upstream) refuses them; the URL parser would drop them silently, and the
    // URL stored would not be the one called.
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the URL contains a control character or white space");
    }
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the scheme must be http or https");
    }
    // `http:host` parses (the scheme is a special one) but is no absolute URL: `//` must follow.
    // `http:///host` parses too (the parser skips extra slashes), but its authority is empty.
    let authority =
        raw.get(url.scheme().len()..).is_some_and(|rest| rest.starts_with("://") && !rest.starts_with(":///"));
    if !authority || url.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host");
    }
    Ok(url)
}

/// Request bodies above this are rejected with 413.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub struct Inner {
    pub v2: Arc<crate::v2::V2>,
    pub store: Arc<Store>,
    pub sandbox: Arc<crate::runtime::pool::SandboxPool>,
    /// Calling targets (interception, functions, the delivery queue).
    pub targets: Arc<crate::service::targets::Targets>,
    /// Running triggers (`_execute`, `_test`, connector calls).
    pub execute: crate::service::execute::ExecuteTrigger,
    /// Connector call counters not yet added to the stored health.
    pub connector_health: Arc<crate::service::connector::Health>,
    /// Connections and organization links recently read by connector calls.
    pub connector_cache: crate::service::connector::ConnectionCache,
    /// Stops the background jobs (run writer, pruning) at shutdown.
    pub background_stop: tokio::sync::watch::Sender<bool>,
    /// Set when the server starts shutting down: long-lived streams (live tails) end first.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// The background jobs, by name; joined at shutdown.
    pub background_tasks: std::sync::Mutex<Vec<(&'static str, tokio::task::JoinHandle<()>)>>,
    /// Live tails' leases being given back; a shutdown waits for them before the database closes.
    pub lease_releases: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// Triggers run on tasks of their own (`_execute`, connector calls), so that a caller going
    /// away does not cancel runs that started; a shutdown waits for them (within its grace
    /// period) before the run writer stops, so their records are stored.
    pub detached: tokio_util::task::TaskTracker,
    pub config: Config,
    pub auth: AuthCache,
    pub metrics: Arc<Metrics>,
    pub default_org: i64,
    /// The protobuf descriptors of every RPC (gRPC, gRPC-web, Connect proto).
    pub protos: Arc<grpc::Protos>,
    /// Kibibytes of large request bodies calls in flight may hold (`ACTIONSD_MAX_BODY_BYTES_IN_FLIGHT`).
    pub bodies_in_flight: Arc<tokio::sync::Semaphore>,
}

/// Bodies up to this size are not counted against `bodies_in_flight`.
const SMALL_BODY: usize = 16 << 10;

/// Holds a large body's share of [`Inner::bodies_in_flight`] for as long as its call runs: a
/// request parsed into a message takes many times its size in memory, so the calls holding large
/// bodies at once are bounded. Waits up to `ACTIONSD_QUEUE_TIMEOUT` for a share, then 503 with
/// Retry-After. No body is read past [`MAX_BODY_BYTES`], so an announced length over it (which
/// the read refuses) takes that much, never more: an announced terabyte cannot hold the whole
/// budget and keep every later large call waiting.
pub(crate) async fn hold_body(state: &AppState, len: usize) -> ApiResult<Option<tokio::sync::OwnedSemaphorePermit>> {
    if len <= SMALL_BODY {
        return Ok(None);
    }
    let budget = u32::try_from(state.config.max_body_bytes_in_flight >> 10).unwrap_or(u32::MAX);
    let want = u32::try_from(len.min(MAX_BODY_BYTES).div_ceil(1024)).unwrap_or(u32::MAX).min(budget);
    let wait = state.config.queue_timeout.as_std();
    let acquire = state.bodies_in_flight.clone().acquire_many_owned(want);
    match tokio::time::timeout(wait, acquire).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        _ => {
            let mut e = ApiError::new(
                Kind::Unavailable,
                "API-b0d1s",
                "Too many large requests in flight (ACTIONSD_MAX_BODY_BYTES_IN_FLIGHT), retry later",
            );
            e.retry_after = Some(1);
            Err(e)
        }
    }
}

impl Inner {
    /// The name of a background job that has ended before shutdown (they all run until the stop
    /// signal, so it failed), for readiness.
    pub fn stopped_background_job(&self) -> Option<&'static str> {
        if *self.background_stop.borrow() {
            return None;
        }
        let tasks = self.background_tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.iter().find(|(_, task)| task.is_finished()).map(|(name, _)| *name)
    }
}

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// The request message is the JSON body (plus path parameters).
    Whole,
    /// The body is ignored; only path parameters count.
    Ignored,
}

pub type RpcFn =
    fn(AppState, Caller, serde_json::Value, &'static Rpc) -> BoxFuture<'static, ApiResult<serde_json::Value>>;

/// An RPC's handler, and a decode-only check of its request message (run before request
/// targets, so that they never see a request the handler could not even read).
#[derive(Clone, Copy)]
pub struct RpcCall {
    pub call: RpcFn,
    pub decode: fn(&AppState, &serde_json::Value, &'static Rpc) -> ApiResult<()>,
}

/// Decodes `value` as the request type of `handler` (for [`RpcCall::decode`]).
pub fn decode_with<R, F, Fut>(_handler: F, value: &serde_json::Value, rpc: &Rpc) -> ApiResult<()>
where
    F: Fn(AppState, Caller, R) -> Fut,
    R: DeserializeOwned,
{
    parse_request::<R>(value.clone(), rpc).map(|_| ())
}

/// One RPC: its names, its REST route, what it needs, and its handler. The HTTP method, the path
/// and the operation id (hence the RPC's method name) are declared once, in the handler's
/// `#[utoipa::path]`, and read from there; the OpenAPI document is built from this table too.
pub struct Rpc {
    pub service: &'static str,
    pub method: &'static str,
    pub http: Method,
    pub path: &'static str,
    pub body: BodyMode,
    pub permission: Permission,
    /// Whether `x-zitadel-orgid` selects the organization (not for admin and v2 RPCs).
    pub org_scoped: bool,
    pub call: RpcCall,
    /// The RPC's part of the OpenAPI document.
    pub doc: fn() -> RpcDoc,
}

/// What the OpenAPI document holds for one RPC, from its handler's `#[utoipa::path]`.
pub struct RpcDoc {
    pub path: String,
    pub method: utoipa::openapi::path::HttpMethod,
    /// The operation, with its tags.
    pub operation: utoipa::openapi::path::Operation,
    /// The schemas its request and responses refer to.
    pub schemas: Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
}

/// A handler's `#[utoipa::path]` item (the `__path_<handler>` type utoipa generates).
pub trait PathItem: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static> + 'static {}

impl<T> PathItem for T where T: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static> + 'static {}

pub(crate) fn doc_of<P: PathItem>() -> RpcDoc {
    let mut operation = P::operation();
    let tags: Vec<String> = <P as utoipa::__dev::Tags>::tags().into_iter().map(String::from).collect();
    if !tags.is_empty() {
        operation.tags = Some(tags);
    }
    let mut schemas = Vec::new();
    <P as utoipa::__dev::SchemaReferences>::schemas(&mut schemas);
    let method = P::methods().into_iter().next().expect("a #[utoipa::path] names its HTTP method");
    RpcDoc { path: P::path(), method, operation, schemas }
}

fn http_method(m: &utoipa::openapi::path::HttpMethod) -> Method {
    use utoipa::openapi::path::HttpMethod as H;
    match m {
        H::Get => Method::GET,
        H::Post => Method::POST,
        H::Put => Method::PUT,
        H::Delete => Method::DELETE,
        H::Patch => Method::PATCH,
        H::Head => Method::HEAD,
        H::Options => Method::OPTIONS,
        H::Trace => Method::TRACE,
    }
}

impl Rpc {
    /// An organization-scoped RPC: `x-zitadel-orgid` selects the organization. `P` is the
    /// handler's `__path_<handler>` type.
    pub fn org<P: PathItem>(service: &'static str, body: BodyMode, permission: Permission, call: RpcCall) -> Rpc {
        Self::declared::<P>(service, body, permission, true, call)
    }

    /// An instance RPC: IAM_OWNER only, `x-zitadel-orgid` ignored.
    pub fn instance<P: PathItem>(service: &'static str, body: BodyMode, call: RpcCall) -> Rpc {
        Self::declared::<P>(service, body, Permission::Instance, false, call)
    }

    fn declared<P: PathItem>(
        service: &'static str,
        body: BodyMode,
        permission: Permission,
        org_scoped: bool,
        call: RpcCall,
    ) -> Rpc {
        let doc = doc_of::<P>();
        let operation_id = doc.operation.operation_id.clone().unwrap_or_default();
        let short = service.rsplit('.').next().unwrap_or(service);
        let method = match operation_id.split_once('_') {
            Some((s, m)) if s == short && !m.is_empty() => m.to_string(),
            _ => panic!("the operation id of {} must be {short}_<Method>, not {operation_id:?}", doc.path),
        };
        // Built once per process (the table is cached), so leaking the two names is bounded.
        Rpc {
            service,
            method: Box::leak(method.into_boxed_str()),
            http: http_method(&doc.method),
            path: Box::leak(doc.path.into_boxed_str()),
            body,
            permission,
            org_scoped,
            call,
            doc: doc_of::<P>,
        }
    }

    pub fn full_name(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }

    /// The short service name used in OpenAPI operation ids (`ManagementService`).
    pub fn service_short(&self) -> &'static str {
        self.service.rsplit('.').next().unwrap_or(self.service)
    }

    pub fn operation_id(&self) -> String {
        format!("{}_{}", self.service_short(), self.method)
    }

    pub fn message_name(&self) -> String {
        format!("{}Request", self.method)
    }
}

/// Builds an [`RpcCall`] from a typed handler `async fn(AppState, Caller, Req) -> ApiResult<Resp>`.
#[macro_export]
macro_rules! rpc_call {
    // The handler call shared by both forms: decode, run, encode.
    (@call $handler:path) => {
        |state, caller, value, rpc| {
            Box::pin(async move {
                let request = $crate::api::parse_request(value, rpc)?;
                let response = $handler(state, caller, request).await?;
                $crate::api::to_value(response)
            })
        }
    };
    ($handler:path) => {
        $crate::api::RpcCall {
            call: $crate::rpc_call!(@call $handler),
            decode: |_state, value, rpc| $crate::api::decode_with($handler, value, rpc),
        }
    };
    // With a field check that also runs before request targets (the handler runs it again).
    ($handler:path, check = $check:path) => {
        $crate::api::RpcCall {
            call: $crate::rpc_call!(@call $handler),
            decode: |state, value, rpc| {
                let request = $crate::api::parse_request(value.clone(), rpc)?;
                $check(state, &request)
            },
        }
    };
}

/// Deserializes a request message, naming the offending field on failure.
pub fn parse_request<T: DeserializeOwned>(value: serde_json::Value, rpc: &Rpc) -> ApiResult<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        // "." is the message itself (e.g. an error of fields flattened into it).
        let mut path = Some(e.path().to_string()).filter(|p| p != ".").unwrap_or_default();
        let mut inner = e.inner().to_string();
        if let Some((sub, rest)) = json::split_path(&inner) {
            let sep = if sub.starts_with('[') || path.is_empty() { "" } else { "." };
            path = format!("{path}{sep}{sub}");
            inner = rest.to_string();
        }
        // A key of the secret overrides (the requests' one map field) is named as sent, as the
        // overrides' own checks name it (`Secrets["CRM_KEY"]`), not re-cased like a field.
        let field = match path.strip_prefix("secrets.") {
            Some(key) => format!("Secrets[{key:?}]"),
            None => field_path(&path),
        };
        let msg = if field.is_empty() { rpc.message_name() } else { format!("{}.{}", rpc.message_name(), field) };
        invalid_shape(rpc, format!("invalid {msg}: {inner}"))
    })
}

/// A request that is not its message (malformed JSON, a wrong type): 400, with the RPC's shape
/// error key where it has one.
fn invalid_shape(rpc: &Rpc, text: String) -> ApiError {
    match shape_error_key(rpc) {
        Some(key) => ApiError::new(Kind::InvalidArgument, key, text),
        None => ApiError::invalid(text),
    }
}

/// The error key a request of the wrong shape carries, where the contract gives one (actions-v2.md
/// §2: a target or a condition that is not the message it must be).
fn shape_error_key(rpc: &Rpc) -> Option<&'static str> {
    if rpc.service != action_v2::SERVICE {
        return None;
    }
    match rpc.method {
        "CreateTarget" | "UpdateTarget" => Some("Errors.Target.Invalid"),
        "SetExecution" | "ListExecutions" => Some("Errors.Execution.Invalid"),
        _ => None,
    }
}

/// The contract's 400 for a path parameter the router could not hand over (a percent-escape that
/// does not decode to UTF-8), naming it as a field of `message` (the request message of an RPC),
/// or as a path parameter on the routes without one; never the framework's plain-text answer.
pub(crate) fn path_error(rejection: &axum::extract::rejection::PathRejection, message: Option<&str>) -> ApiError {
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    let (key, why) = match rejection {
        PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => (Some(key.as_str()), "not valid UTF-8"),
            ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
                (Some(key.as_str()), "malformed")
            }
            _ => (None, "malformed"),
        },
        _ => (None, "missing"),
    };
    ApiError::invalid(match (key, message) {
        (Some(key), Some(message)) => format!("invalid {message}.{}: {why}", field_path(key)),
        (Some(key), None) => format!("invalid path parameter {key}: {why}"),
        (None, _) => format!("invalid path parameter: {why}"),
    })
}

/// `query.limit` → `Query.Limit`, `allowed_to_fail` → `AllowedToFail` (proto field style).
pub(crate) fn field_path(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    path.split('.')
        .map(|seg| {
            let mut out = String::new();
            let mut upper = true;
            for c in seg.chars() {
                if c == '_' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join(".")
}

pub fn to_value<T: Serialize>(v: T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Gateway,
    Connect,
}

/// Whether `err` answers a request whose body was not read to its end (413, 408).
fn unread_body(err: &ApiError) -> bool {
    matches!(err.http_status(), StatusCode::PAYLOAD_TOO_LARGE | StatusCode::REQUEST_TIMEOUT)
}

/// The gateway's body for `err`: over the size limit (or too slow to send) in the shape of its
/// other transport-level errors (unknown route 404, wrong method 405), `{code, message}`.
pub(crate) fn gateway_error_body(err: &ApiError) -> serde_json::Value {
    if unread_body(err) {
        serde_json::json!({"code": err.kind.grpc_code(), "message": err.full_message()})
    } else {
        err.gateway_body()
    }
}

pub fn error_response(err: &ApiError, transport: Transport) -> Response {
    let body = match transport {
        Transport::Gateway => gateway_error_body(err),
        Transport::Connect => err.connect_body(),
    };
    let mut resp = (err.http_status(), axum::Json(body)).into_response();
    if unread_body(err) {
        // The rest of the body is not read: the connection cannot be reused.
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(secs) = err.retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header that must come once: None when it is missing or given more than once (then it is
/// ambiguous: a proxy in front may have read another of its values).
pub(crate) fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.to_str().ok()).flatten()
}

/// Authenticates a request from its headers (`authorization`, `x-zitadel-orgid`,
/// `accept-language`): the RPCs and the REST-only endpoints (live tail, trigger documents).
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    permission: Permission,
    org_scoped: bool,
) -> ApiResult<Caller> {
    // Two `Authorization` headers are no credentials (401, like a malformed one); two
    // organizations are no organization (where the header chooses one; elsewhere it is ignored).
    if org_scoped && headers.get_all("x-zitadel-orgid").iter().nth(1).is_some() {
        return Err(ApiError::invalid("x-zitadel-orgid must be given once"));
    }
    state
        .auth
        .authenticate(
            &state.store,
            single_header(headers, "authorization"),
            // Not text (a byte outside visible ASCII) is still an organization asked for, one
            // that cannot exist: read lossily, it is refused like any unknown id rather than
            // ignored (which would act in the token's own organization).
            headers.get("x-zitadel-orgid").map(|v| String::from_utf8_lossy(v.as_bytes())).as_deref(),
            permission,
            org_scoped,
            lang_from_header(header_str(headers, "accept-language")),
        )
        .await
}

/// Whether an HTTP/1 request announces (`Content-Length`) a body over [`MAX_BODY_BYTES`]: 413
/// before any of it is read. (An HTTP/2 stream is read up to the limit first.)
fn announced_over_limit(body: &Body, version: axum::http::Version) -> bool {
    version <= axum::http::Version::HTTP_11 && http_body::Body::size_hint(body).lower() > MAX_BODY_BYTES as u64
}

/// 413: a request body over [`MAX_BODY_BYTES`].
pub(crate) fn body_too_large() -> ApiError {
    ApiError::bare(Kind::ResourceExhausted, format!("request body too large (limit {MAX_BODY_BYTES} bytes)"))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// The request body, at most [`MAX_BODY_BYTES`] and within `timeout` (408: a client sending its
/// body too slowly does not hold a request). Over HTTP/1 a body announced over the limit is 413 at
/// once; an HTTP/2 stream is read up to the limit first (answering while the client still sends
/// resets the stream, and clients then report the reset instead of the 413).
pub(crate) async fn read_body(
    body: Body,
    version: axum::http::Version,
    timeout: crate::domain::Duration,
) -> ApiResult<Bytes> {
    use http_body_util::BodyExt;
    if announced_over_limit(&body, version) {
        return Err(body_too_large());
    }
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match tokio::time::timeout(timeout.as_std(), limited.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(body_too_large()),
        Ok(Err(_)) => Err(ApiError::invalid("could not read the request body")),
        Err(_) => Err(body_too_slow(timeout)),
    }
}

/// 408: a request body that did not arrive within `timeout`.
pub(crate) fn body_too_slow(timeout: crate::domain::Duration) -> ApiError {
    ApiError::bare(Kind::DeadlineExceeded, format!("the request body did not arrive within {timeout}"))
        .with_status(StatusCode::REQUEST_TIMEOUT)
}

/// How long an HTTP/1 body that will not be used (an unknown caller's) is waited for.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// An HTTP/1 request body that an early answer leaves unused (401, 403): read and dropped, at most
/// [`MAX_BODY_BYTES`] within [`DRAIN_WAIT`], so that the connection can carry the next request and
/// a client that writes its body after its headers (Connect's Node client) is not cut off half-way
/// (it would see a broken pipe instead of the answer). Nothing of it is kept. Whether it was read
/// to its end; if not (too large, too slow, or a client waiting for `100 Continue`, which is not
/// asked for), the answer closes the connection.
async fn drain_body(body: Body, parts: &axum::http::request::Parts, read_timeout: crate::domain::Duration) -> bool {
    use http_body_util::BodyExt;
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if parts.version > axum::http::Version::HTTP_11 || expects_continue || announced_over_limit(&body, parts.version) {
        return false;
    }
    let mut limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let drain = async {
        while let Some(frame) = limited.frame().await {
            if frame.is_err() {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_WAIT.min(read_timeout.as_std()), drain).await.unwrap_or(false)
}

/// Builds the request message from the body and the path parameters (which win).
pub(crate) fn request_value(
    protos: &grpc::Protos,
    rpc: &Rpc,
    body: &[u8],
    params: Vec<(String, String)>,
    transport: Transport,
) -> ApiResult<serde_json::Value> {
    let use_body = transport == Transport::Connect || rpc.body == BodyMode::Whole;
    let value = if use_body { json_message(rpc, body)? } else { serde_json::Value::Object(Default::default()) };
    normalize_message(protos, rpc, value, params)
}

/// A JSON request message (REST and Connect bodies, gRPC's `+json` codec); an empty body is the
/// empty message.
pub(crate) fn json_message(rpc: &Rpc, body: &[u8]) -> ApiResult<serde_json::Value> {
    // JSON's own whitespace only (a form feed is not JSON, though ASCII counts it as white).
    if body.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    json::from_slice_unique_keys(body)
        .map_err(|e| invalid_shape(rpc, format!("invalid {}: malformed JSON: {e}", rpc.message_name())))
}

/// The fields of a request message that are path parameters of the RPC's REST path
/// (`/management/v1/actions/{id}` → `id`), with their values as the request has them (an absent
/// one as empty: a reply cannot add it either).
fn path_fields(rpc: &Rpc, value: &serde_json::Value) -> Vec<(String, String)> {
    rpc.path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let given = value.get(name).or_else(|| value.get(crate::domain::case::snake(name).as_str()));
            let text = match given {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (name.to_string(), text)
        })
        .collect()
}

/// Applies the path parameters (which win over the body), drops nulls and refuses NUL characters.
pub(crate) fn normalize_message(
    protos: &grpc::Protos,
    rpc: &Rpc,
    mut value: serde_json::Value,
    params: Vec<(String, String)>,
) -> ApiResult<serde_json::Value> {
    let serde_json::Value::Object(map) = &mut value else {
        return Err(ApiError::invalid(format!("invalid {}: the body must be a JSON object", rpc.message_name())));
    };
    for (k, v) in params {
        // The parameter replaces the field under either spelling.
        let snake = crate::domain::case::snake(&k);
        if snake != k {
            map.remove(&snake);
        }
        map.insert(k, serde_json::Value::String(v));
    }
    // A `null` is an absent field, except inside the context's free-form members (the claims of
    // an ID token, an auth request, …), where it is a value as given: `google.protobuf.Struct`'s
    // null, which scripts see (`ctx.claimsJSON()`).
    let free = match rpc.method {
        "ExecuteFlowTrigger" | "TestAction" => take_free_form(&mut value),
        _ => Vec::new(),
    };
    // A dry run's ZITADEL payload is read as the connector reads a real call's body: as sent.
    let as_sent: &[&str] = if rpc.method == "TestConnectionCall" { &["payload"] } else { &[] };
    with_aside(&mut value, as_sent, json::strip_nulls);
    if let Some(serde_json::Value::Object(context)) = value.get_mut("context") {
        context.extend(free);
    }
    // A secret's value is stored encrypted, never as text, and may be any UTF-8 (authoring.md §1);
    // its name is held to a pattern that has no NUL anyway.
    if rpc.method == "SetActionSecret" {
        return Ok(value);
    }
    // So may the values of a dry run's secret overrides, which are never stored at all. A
    // trigger's context is checked against its trigger's shape, where its unknown members are
    // dropped before NULs are looked for (execute.rs, `check_context`).
    let own_check: &[&str] = match rpc.method {
        "TestAction" => &["secrets", "context"],
        "ReplayTrigger" => &["secrets"],
        "ExecuteFlowTrigger" => &["context"],
        _ => &[],
    };
    let mut path = Vec::new();
    // Only in the message's own fields: unknown ones are ignored, whatever they hold.
    let desc = grpc::request_descriptor(protos, rpc);
    let has_nul = with_aside(&mut value, own_check, |value| json::find_nul(desc, value, &mut path));
    if has_nul {
        // `queries`, `[0]`, `name` → `Queries[0].Name`, as serde's paths read.
        let mut joined = String::new();
        for segment in &path {
            if !joined.is_empty() && !segment.starts_with('[') {
                joined.push('.');
            }
            joined.push_str(segment);
        }
        return Err(ApiError::invalid(format!(
            "invalid {}.{}: must not contain NUL characters",
            rpc.message_name(),
            field_path(&joined)
        )));
    }
    Ok(value)
}

/// Runs `step` on a message with its members `names` set aside (absent while it runs), then puts
/// them back as they were.
fn with_aside<R>(value: &mut serde_json::Value, names: &[&str], step: impl FnOnce(&mut serde_json::Value) -> R) -> R {
    let aside: Vec<(String, serde_json::Value)> = match value.as_object_mut() {
        Some(map) => names.iter().filter_map(|name| map.remove_entry(*name)).collect(),
        None => Vec::new(),
    };
    let result = step(value);
    if let Some(map) = value.as_object_mut() {
        map.extend(aside);
    }
    result
}

/// The members of a trigger context that are passed through as given (runtime-v1 §4.5), taken
/// out of the request's `context` with their values (a `null` member itself is absent).
fn take_free_form(value: &mut serde_json::Value) -> Vec<(String, serde_json::Value)> {
    const FREE_FORM: [&str; 6] = ["idTokenClaims", "claims", "authRequest", "httpRequest", "providerInfo", "actor"];
    let Some(serde_json::Value::Object(context)) = value.get_mut("context") else { return Vec::new() };
    // Under its proto name too (`id_token_claims`); with both names given, both stay for
    // `check_context` to refuse.
    for name in FREE_FORM {
        let snake = crate::domain::case::snake(name);
        if snake != name && !context.contains_key(name) {
            if let Some(member) = context.remove(&snake) {
                context.insert(name.to_string(), member);
            }
        }
    }
    FREE_FORM.iter().filter_map(|name| context.remove_entry(*name)).filter(|(_, v)| !v.is_null()).collect()
}

async fn dispatch(
    state: AppState,
    rpc: &'static Rpc,
    transport: Transport,
    params: Vec<(String, String)>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let protocol = match transport {
        Transport::Gateway => grpc::Protocol::ConnectJson,
        Transport::Connect => grpc::Protocol::from_headers(&parts.headers),
    };
    if transport == Transport::Connect && protocol == grpc::Protocol::ConnectJson {
        if let Some(media) = grpc::unsupported_media(&parts.headers) {
            let err = ApiError::bare(
                Kind::Unimplemented,
                format!("unsupported content type {media:?}: send one of {}", grpc::ACCEPTED_MEDIA),
            );
            let mut response = error_response(&err, Transport::Connect);
            *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
            response.headers_mut().insert("accept-post", HeaderValue::from_static(grpc::ACCEPTED_MEDIA));
            state.metrics.observe_request(rpc.method, 415, started.elapsed());
            return response;
        }
    }
    // `grpc-timeout` / `connect-timeout-ms`: the call's deadline, counted from its arrival.
    let deadline = match transport {
        Transport::Connect => grpc::deadline(&parts.headers),
        Transport::Gateway => None,
    };
    let exceeded = |limit: std::time::Duration| {
        ApiError::bare(Kind::DeadlineExceeded, format!("deadline exceeded after {} ms", limit.as_millis()))
    };
    // Whether the request's body was read: an error answered before that closes an HTTP/1
    // connection (the rest of the body would be read as the next request).
    let has_body = !http_body::Body::is_end_stream(&body);
    let body_read = std::sync::atomic::AtomicBool::new(false);
    let result = async {
        // The caller is known before the body is read: a client without a valid token cannot
        // make the server hold its bodies (a body announced over the limit is still 413 first).
        if announced_over_limit(&body, parts.version) {
            return Err(body_too_large());
        }
        let caller = match authenticate(&state, &parts.headers, rpc.permission, rpc.org_scoped).await {
            Ok(caller) => caller,
            Err(e) => {
                if has_body && drain_body(body, &parts, state.config.request_read_timeout).await {
                    body_read.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                return Err(e);
            }
        };
        // A large body's share of the in-flight budget is held from before it is read (when its
        // length is announced) until the call has answered (its message lives as long).
        let announced = usize::try_from(http_body::Body::size_hint(&body).lower()).unwrap_or(usize::MAX);
        let mut body_share = hold_body(&state, announced).await?;
        // The body is read within the deadline too, when that comes before the read timeout.
        let read = read_body(body, parts.version, state.config.request_read_timeout);
        let body = match deadline {
            Some(limit) if limit < state.config.request_read_timeout.as_std() => {
                tokio::time::timeout(limit, read).await.map_err(|_| exceeded(limit))??
            }
            _ => read.await?,
        };
        body_read.store(true, std::sync::atomic::Ordering::Relaxed);
        if body_share.is_none() {
            body_share = hold_body(&state, body.len()).await?;
        }
        let _body_share = body_share;
        if transport == Transport::Connect && !matches!(protocol, grpc::Protocol::Grpc(..)) {
            grpc::check_connect_headers(&parts.headers)?;
        }
        // No transport's body is compressed here (gRPC's own per-message compression is refused
        // where the frame says so): an encoded body is refused, not read as a malformed message.
        grpc::check_content_encoding(&parts.headers)?;
        let value = match grpc::request_json(&state.protos, rpc, protocol, &parts.headers, &body)? {
            Some(message) => normalize_message(&state.protos, rpc, message, params.clone())?,
            None => request_value(&state.protos, rpc, &body, params.clone(), transport)?,
        };
        // Over Connect and gRPC the REST path's parameters are body fields: they are taken from
        // the request as sent, so that a request target's reply cannot change them either.
        let params = match transport {
            Transport::Gateway => params,
            Transport::Connect => path_fields(rpc, &value),
        };
        let call = intercept::run(&state, caller, rpc, &parts.headers, &parts.uri, value, params);
        let value = match deadline {
            Some(limit) => {
                // A call whose deadline passed before it could start (`grpc-timeout: 1n`, or
                // while its body was read) is not started: no action runs for a caller that
                // already gave up.
                let left = limit
                    .checked_sub(started.elapsed())
                    .filter(|left| !left.is_zero())
                    .ok_or_else(|| exceeded(limit))?;
                tokio::time::timeout(left, call).await.map_err(|_| exceeded(limit))??
            }
            None => call.await?,
        };
        if protocol == grpc::Protocol::ConnectJson && state.config.check_proto_answers {
            grpc::check_answer(&state.protos, rpc, &value)?;
        }
        grpc::success(&state.protos, rpc, protocol, value)
    };
    // A handler that panics answers like any internal error, in the transport's own form (the
    // router's outer panic layer only knows the gateway's).
    let result = match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(result)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::internal(format!("handler of {} panicked", rpc.method))),
    };
    let (mut response, status) = match result {
        Ok(response) => (response, StatusCode::OK),
        Err(err) => match protocol {
            grpc::Protocol::Grpc(framing, codec) => (grpc::error(&err, framing, codec), err.http_status()),
            _ => {
                let response = error_response(&err, transport);
                let status = response.status();
                (response, status)
            }
        },
    };
    if has_body
        && !body_read.load(std::sync::atomic::Ordering::Relaxed)
        && parts.version <= axum::http::Version::HTTP_11
    {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    state.metrics.observe_request(rpc.method, status.as_u16(), started.elapsed());
    response
}

/// Whether request/response executions may apply to a service's RPCs: never to the ActionService
/// and the ConnectorService, so that a broken target can always be fixed.
pub fn interceptable(service: &str) -> bool {
    service != action_v2::SERVICE && service != connector::SERVICE
}

/// All RPCs served by this build.
pub fn rpcs() -> &'static [Rpc] {
    static ALL: std::sync::OnceLock<Vec<Rpc>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = management::rpcs();
        all.extend(execute::rpcs());
        all.extend(authoring::rpcs());
        all.extend(replay::rpcs());
        all.extend(admin::rpcs());
        all.extend(action_v2::rpcs());
        all.extend(action_v2::deliveries::rpcs());
        all.extend(connector::rpcs());
        all
    })
}

fn method_filter(m: &Method) -> MethodFilter {
    match *m {
        Method::GET => MethodFilter::GET,
        Method::PUT => MethodFilter::PUT,
        Method::DELETE => MethodFilter::DELETE,
        Method::PATCH => MethodFilter::PATCH,
        _ => MethodFilter::POST,
    }
}

/// The API router: REST gateway routes and Connect routes for every RPC.
pub fn api_router() -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, axum::routing::MethodRouter<AppState>> = BTreeMap::new();
    let mut router = Router::new();
    for rpc in rpcs() {
        let rest = move |State(state): State<AppState>,
                         params: Result<Path<Vec<(String, String)>>, axum::extract::rejection::PathRejection>,
                         req: Request| async move {
            match params {
                Ok(Path(params)) => dispatch(state, rpc, Transport::Gateway, params, req).await,
                Err(rejection) => {
                    error_response(&path_error(&rejection, Some(&rpc.message_name())), Transport::Gateway)
                }
            }
        };
        let entry = by_path.remove(rpc.path).unwrap_or_default();
        by_path.insert(rpc.path, entry.on(method_filter(&rpc.http), rest));
        let connect = move |State(state): State<AppState>, req: Request| async move {
            dispatch(state, rpc, Transport::Connect, Vec::new(), req).await
        };
        router = router.route(&rpc.full_name(), on(MethodFilter::POST, connect));
    }
    for (path, method_router) in by_path {
        router = router.route(path, method_router);
    }
    router
}

fn is_connect_path(path: &str) -> bool {
    path.starts_with("/zitadel.") || path.starts_with("/actionsd.")
}

/// A path shaped like a Connect procedure of any service (`/<package.Service>/<Method>`: two
/// segments, the first a dotted name whose last part is capitalized, as service names are); no
/// REST route has that shape (`/openapi.json/x` does not either).
fn is_procedure_path(path: &str) -> bool {
    let mut segments = path.strip_prefix('/').unwrap_or("").split('/');
    let (Some(service), Some(method), None) = (segments.next(), segments.next(), segments.next()) else {
        return false;
    };
    let service_name = service.rsplit_once('.').map(|(_, name)| name);
    !method.is_empty() && service_name.is_some_and(|name| name.starts_with(|c: char| c.is_ascii_uppercase()))
}

/// A gRPC or gRPC-web request by its content type: errors go in its status fields.
fn grpc_protocol(req: &Request) -> Option<(grpc::Framing, grpc::Codec)> {
    match grpc::Protocol::from_headers(req.headers()) {
        grpc::Protocol::Grpc(framing, codec) => Some((framing, codec)),
        _ => None,
    }
}

pub async fn not_found(req: Request) -> Response {
    if let Some((framing, codec)) = grpc_protocol(&req) {
        let err = ApiError::bare(Kind::Unimplemented, format!("unknown method {}", req.uri().path()));
        return grpc::error(&err, framing, codec);
    }
    let procedure = req.method() == Method::POST && is_procedure_path(req.uri().path());
    if is_connect_path(req.uri().path()) || procedure {
        // Connect's `unimplemented`, with its HTTP status from the error table (501), also for a
        // service this server does not have.
        let err = ApiError::bare(Kind::Unimplemented, format!("unknown procedure {}", req.uri().path()));
        return error_response(&err, Transport::Connect);
    }
    route_error(StatusCode::NOT_FOUND)
}

/// The gateway's answer for an unknown route (404) or another method on a known one (405):
/// `{code, message}` as the contract gives them (README §3.1); any other status as it is.
pub fn route_error(status: StatusCode) -> Response {
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (5, "Not Found"),
        StatusCode::METHOD_NOT_ALLOWED => (12, "Method Not Allowed"),
        other => return other.into_response(),
    };
    (status, axum::Json(serde_json::json!({"code": code, "message": message}))).into_response()
}

pub async fn method_not_allowed(req: Request) -> Response {
    if let Some((framing, codec)) = grpc_protocol(&req) {
        let err = ApiError::bare(Kind::Unimplemented, "gRPC requests use POST");
        return grpc::error(&err, framing, codec);
    }
    if is_connect_path(req.uri().path()) {
        let err = ApiError::bare(Kind::Unimplemented, "Method Not Allowed: Connect requests use POST")
            .with_status(StatusCode::METHOD_NOT_ALLOWED);
        return error_response(&err, Transport::Connect);
    }
    route_error(StatusCode::METHOD_NOT_ALLOWED)
}

#[cfg(test)]
mod table_tests {
    use std::collections::HashSet;

    /// Each RPC has one route and one name, and the OpenAPI document holds exactly its operations.
    #[test]
    fn every_rpc_is_one_route_one_name_and_one_operation() {
        let rpcs = super::rpcs();
        let (mut routes, mut names) = (HashSet::new(), HashSet::new());
        for r in rpcs {
            assert!(routes.insert((r.http.clone(), r.path)), "{} {} twice", r.http, r.path);
            assert!(names.insert(r.full_name()), "{} twice", r.full_name());
            assert_eq!((r.doc)().operation.operation_id, Some(r.operation_id()));
        }
        let doc = super::openapi::ApiDoc::openapi_doc();
        let operations: usize = doc
            .paths
            .paths
            .values()
            .map(|i| {
                [&i.get, &i.put, &i.post, &i.delete, &i.options, &i.head, &i.patch, &i.trace]
                    .iter()
                    .filter(|o| o.is_some())
                    .count()
            })
            .sum();
        assert_eq!(operations, rpcs.len() + 5, "every RPC, the connector's call, the live tail, the trigger documents");
    }
}
