//! `POST /connector/v1/connections/{id}/call`: where a ZITADEL target of the connector points
//! (README, "Use actionsd with ZITADEL"). REST only, no Bearer token: the `ZITADEL-Signature` header
//! authenticates the call. Checks in the contract's order; nothing runs and no run is stored
//! unless every check passed.

use super::action_v2::PayloadType;
use super::AppState;
use crate::error::{ApiError, ApiResult, Kind};
use crate::service::connector::{self as conn, reason, resolve, Condition};
use crate::store::connections::{self as store, ConnectionState, FailMode};
use crate::store::crypto;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use std::time::{Duration, Instant};

pub const CALL_PATH: &str = "/connector/v1/connections/{id}/call";

pub fn router() -> Router<AppState> {
    Router::new().route(CALL_PATH, post(call))
}

fn error(err: ApiError) -> Response {
    super::error_response(&err, super::Transport::Gateway)
}

/// The answer to a verified call; `null` (no message to hand back) is an empty body.
fn reply(body: Value) -> Response {
    if body.is_null() {
        return StatusCode::OK.into_response();
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// An answer given before the body is read (an unknown connection): over HTTP/1 the body is read
/// and dropped first, as for a refused token on every route, so that the connection carries
/// ZITADEL's next call (its client reuses connections and does not retry a POST); a body that
/// cannot be read so closes the connection with the answer, instead of leaving its rest to be
/// read as the next request.
async fn before_the_body(s: &AppState, parts: &axum::http::request::Parts, body: Body, err: ApiError) -> Response {
    let mut response = error(err);
    if parts.version <= axum::http::Version::HTTP_11
        && !http_body::Body::is_end_stream(&body)
        && !super::drain_body(body, parts, s.config.request_read_timeout).await
    {
        response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// The outcome of a verified call, for the metric and the health counters.
struct Done {
    body: Value,
    outcome: &'static str,
    failure: Option<String>,
}

async fn call(
    State(s): State<AppState>,
    raw_id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let remote =
        req.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_default();
    let (parts, body) = req.into_parts();
    // 1. The connection. An id that is not one (also one whose escapes are not UTF-8) names none.
    let Some(id) = raw_id.ok().and_then(|Path(raw)| crate::domain::id::parse(&raw)) else {
        return before_the_body(&s, &parts, body, store::not_found()).await;
    };
    let cached = match connection_of(&s, id).await {
        Ok(Some(c)) => c,
        Ok(None) => return before_the_body(&s, &parts, body, store::not_found()).await,
        Err(e) => return before_the_body(&s, &parts, body, e).await,
    };
    let connection = &cached.model;
    // ZITADEL sends plain JSON (or a JWT): a body in another encoding is refused as on every
    // route (501), not read as a malformed one.
    if let Err(e) = super::grpc::check_content_encoding(&parts.headers) {
        return before_the_body(&s, &parts, body, e).await;
    }
    // 2. The body limit. A large body's share of the in-flight budget is held from before it is
    // read (when its length is announced) until the call has answered, as on every RPC: a caller
    // that only knows a connection's id cannot make the server hold bodies past the budget.
    let announced = usize::try_from(http_body::Body::size_hint(&body).lower()).unwrap_or(usize::MAX);
    let mut body_share = match super::hold_body(&s, announced).await {
        Ok(share) => share,
        Err(e) => return error(e),
    };
    let body = match super::read_body(body, parts.version, s.config.request_read_timeout).await {
        Ok(b) => b,
        // Refused in §2 like a bad signature: counted in `calls` and `rejected`, with the
        // contract's reason for a body that cannot be read (its list of reasons is closed).
        Err(e) if e.kind == Kind::ResourceExhausted => {
            return rejected(&s, id, reason::MALFORMED_BODY, remote, started, e).await;
        }
        Err(e) => return error(e),
    };
    if body_share.is_none() {
        body_share = match super::hold_body(&s, body.len()).await {
            Ok(share) => share,
            Err(e) => return error(e),
        };
    }
    let _body_share = body_share;
    // 3. Signature and timestamp.
    let now = crate::domain::time::now_micros();
    let keys: Vec<String> =
        cached.keys.iter().filter(|(_, expires)| expires.is_none_or(|at| at > now)).map(|(k, _)| k.clone()).collect();
    // ZITADEL sends one; several are malformed (another reader may take another of them).
    let header = super::single_header(&parts.headers, "zitadel-signature");
    let tolerance = connection.timestamp_tolerance_nanos / 1_000_000_000;
    if let Err(why) = conn::verify_signature(header, &body, &keys, tolerance, now / 1_000_000) {
        return rejected(
            &s,
            id,
            why,
            remote,
            started,
            ApiError::new(Kind::Unauthenticated, "CONN-s1gn4", format!("signature check failed: {why}")),
        )
        .await;
    }
    // 4. An inactive connection passes everything through.
    let payload = match decode(&s, connection, &body).await {
        Ok(p) => p,
        Err((why, err)) => {
            if connection.state == ConnectionState::Inactive {
                // Verified, so the kill switch applies before the body is looked at. Which
                // condition called is unknown here, so the answer is an empty body: ZITADEL applies
                // only a non-empty one (`{}` would reset a request or response message).
                s.connector_health.count(id, false, false, None);
                s.metrics.observe_connector_call("none", "inactive", started.elapsed());
                return StatusCode::OK.into_response();
            }
            return rejected(&s, id, why, remote, started, err).await;
        }
    };
    let condition = Condition::of(&payload);
    let label = condition.as_ref().map(Condition::metric_label).unwrap_or("none");
    if connection.state == ConnectionState::Inactive {
        s.connector_health.count(id, false, false, None);
        s.metrics.observe_connector_call(label, "inactive", started.elapsed());
        return reply(conn::pass_through(condition.as_ref(), &payload));
    }
    // On a task of its own: ZITADEL giving up on the call (its own timeout, a dropped connection)
    // does not cancel runs that started; their records and the health counters are still stored.
    let s2 = s.clone();
    let task = s.detached.spawn(async move {
        let done = run(&s2, &cached.model, condition.as_ref(), &payload).await;
        let failed = done.failure.is_some();
        // Debug formatting: the label comes from the signed payload and is quoted and escaped, so it
        // cannot start a line of its own or carry control characters into the log.
        tracing::info!(connection_id = id, condition = ?condition.as_ref().map(Condition::label).unwrap_or_default(),
            outcome = done.outcome, "connector call");
        s2.connector_health.count(id, false, failed, done.failure);
        s2.metrics.observe_connector_call(label, done.outcome, started.elapsed());
        reply(done.body)
    });
    task.await.unwrap_or_else(|e| error(ApiError::internal(e)))
}

async fn rejected(
    s: &AppState,
    id: i64,
    why: &'static str,
    remote: String,
    started: Instant,
    err: ApiError,
) -> Response {
    tracing::warn!(connection_id = id, reason = why, remote = %remote, "connector call refused");
    if let Err(e) = store::reject(&s.store, id, why, remote).await {
        tracing::warn!(connection_id = id, error = %e.message, "recording a refused connector call failed");
    }
    s.connector_health.count(id, true, false, Some(why.to_string()));
    s.metrics.observe_connector_call("none", "rejected", started.elapsed());
    error(err)
}

/// Step 5: the body as JSON, or a JWT (verified against ZITADEL's JWKS) or JWE (decrypted with
/// the connection's key pair, then verified as a JWT) whose payload is that JSON.
async fn decode(
    s: &AppState,
    connection: &entity::connection::Model,
    body: &[u8],
) -> Result<Value, (&'static str, ApiError)> {
    let allowed = store::payload_types_of(connection);
    let text = std::str::from_utf8(body).map(str::trim).unwrap_or("");
    let unquoted = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    let parts = unquoted.split('.').count();
    let is_jose = !unquoted.is_empty()
        && (parts == 3 || parts == 5)
        && unquoted.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='));
    let type_refused = |what: &str| {
        (
            reason::PAYLOAD_TYPE,
            ApiError::new(
                Kind::InvalidArgument,
                "CONN-typ3s",
                format!("the connection does not accept {what} payloads"),
            ),
        )
    };
    let json = if is_jose {
        let (kind, name) = if parts == 3 { (PayloadType::Jwt, "JWT") } else { (PayloadType::Jwe, "JWE") };
        if !allowed.contains(&(kind.number() as i32)) {
            return Err(type_refused(name));
        }
        let deadline = std::time::Instant::now() + Duration::from_nanos(connection.call_timeout_nanos.max(0) as u64);
        verified_jose(s, connection, unquoted, deadline).await.map_err(|why| {
            (
                reason::BAD_JOSE,
                ApiError::new(Kind::Unauthenticated, "CONN-j0se1", format!("{name} payload refused: {why}")),
            )
        })?
    } else {
        if !allowed.contains(&(PayloadType::Json.number() as i32)) {
            return Err(type_refused("JSON"));
        }
        body.to_vec()
    };
    match serde_json::from_slice::<Value>(&json) {
        Ok(v @ Value::Object(_)) => Ok(v),
        // JSON is read up to 128 levels deep, as everywhere in the API.
        Err(e) if crate::domain::nesting::too_deep(&e) => Err((
            reason::MALFORMED_BODY,
            ApiError::new(Kind::InvalidArgument, "CONN-b0dy1", "the body is nested deeper than 128 levels"),
        )),
        _ => Err((
            reason::MALFORMED_BODY,
            ApiError::new(Kind::InvalidArgument, "CONN-b0dy1", "the body is not a JSON object"),
        )),
    }
}

/// The payload of a JWT or JWE body, checked: a JWE is decrypted with the connection's private
/// key; the JWS is verified against ZITADEL's JWKS, fetched again once when it names a key the
/// cached set lacks (only calls with a valid HMAC signature get this far).
async fn verified_jose(
    s: &AppState,
    c: &entity::connection::Model,
    compact: &str,
    deadline: std::time::Instant,
) -> Result<Vec<u8>, String> {
    use crate::service::connector::jose;
    let jws = if compact.split('.').count() == 5 {
        let sealed = c.jwe_private_key_enc.as_deref().ok_or("the connection has no JWE key pair")?;
        let pem = crypto::decrypt(s.config.encryption_key.as_deref().unwrap_or(""), sealed)
            .map_err(|_| "the connection's JWE key cannot be read".to_string())?;
        let plain = jose::decrypt_jwe(compact, &pem).map_err(|e| e.describe())?;
        let text = String::from_utf8(plain).map_err(|_| "the JWE content is not a JWS".to_string())?;
        let text = text.trim();
        text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text).to_string()
    } else {
        compact.to_string()
    };
    let base = c.zitadel_base_url.as_deref().ok_or("the connection has no zitadelApi.baseUrl")?;
    let api = &s.targets.zitadel;
    let keys = api.jwks(base, false, deadline).await?;
    match jose::verify_jws(&jws, &keys) {
        Err(jose::JoseError::UnknownKid(_)) => {
            let keys = api.jwks(base, true, deadline).await?;
            jose::verify_jws(&jws, &keys).map_err(|e| e.describe())
        }
        other => other.map_err(|e| e.describe()),
    }
}

/// A verified call: the org, the v1 trigger, the reply; the runs and the effects through
/// ZITADEL's API stored (in one transaction) before the reply goes out.
async fn run(s: &AppState, c: &entity::connection::Model, condition: Option<&Condition>, payload: &Value) -> Done {
    let call_timeout = Duration::from_nanos(c.call_timeout_nanos.max(0) as u64);
    let deadline = tokio::time::Instant::now() + call_timeout;
    // The trigger ends itself at the deadline; the outer bound only catches what does not (a wait
    // for the database or ZITADEL's API), a little later so that the trigger's own answer wins.
    let bounded = tokio::time::timeout_at(deadline + Duration::from_millis(250), async {
        let e = evaluate(s, c, condition, payload, deadline).await?;
        match (&e.mapped, e.org, &e.report) {
            (Some(mapped), Some(org), Some(report)) => {
                let tag = crate::service::execute::RunTag {
                    connection_id: c.id,
                    condition: condition.map(Condition::label).unwrap_or_default(),
                    warnings: mapped.warnings.clone(),
                };
                let deliveries = e.api_effects.iter().map(|effect| delivery_of(s, c, condition, effect)).collect();
                s.execute.record_connector_run(org, mapped.trigger, report, &tag, deliveries, &mapped.context).await?;
            }
            // No action ran: the context is still recorded for replay (when the org records them).
            (Some(mapped), Some(org), None) => {
                let mut context = mapped.context.clone();
                crate::runtime::api::surface::prune_context(mapped.trigger, &mut context);
                s.execute.record_context_only(org, mapped.trigger, &context).await
            }
            _ => {}
        }
        Ok::<_, ApiError>(e)
    });
    let e = match bounded.await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => return unavailable(c, condition, payload, &e.message),
        Err(_) => return unavailable(c, condition, payload, &budget_spent(c)),
    };
    if timed_out(&e, deadline) {
        return unavailable(c, condition, payload, &budget_spent(c));
    }
    Done { body: e.reply, outcome: e.outcome, failure: e.failure }
}

/// A queued request to ZITADEL's API, ordered per (connection, user).
fn delivery_of(
    s: &AppState,
    c: &entity::connection::Model,
    condition: Option<&Condition>,
    effect: &crate::service::zitadel_api::ApiEffect,
) -> crate::store::deliveries::NewDelivery {
    crate::store::deliveries::NewDelivery {
        target_id: 0,
        connection_id: Some(c.id),
        execution_id: crate::store::storable(condition.map(Condition::label).unwrap_or_default()),
        event_type: match condition {
            Some(Condition::Event(t)) => Some(crate::store::storable(t.clone())),
            _ => None,
        },
        aggregate_key: format!("connection:{}:user:{}", c.id, ordering_key(&effect.user_id)),
        seq: s.store.new_id(),
        payload: effect.to_payload(),
    }
}

/// A user id as the deliveries' ordering key holds it: as it is when it looks like an id, else
/// (NUL, which PostgreSQL refuses in text, or longer than an index entry may be) its SHA-256, so
/// that the effects of one user still go out in order on both backends.
fn ordering_key(user_id: &str) -> String {
    if user_id.len() <= 200 && !user_id.contains('\0') {
        return user_id.to_string();
    }
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(user_id.as_bytes())))
}

/// What a verified call comes to before anything is stored (a call and its dry run share it).
pub(crate) struct Evaluated {
    pub reply: Value,
    /// `succeeded`, `failed` or `passthrough`.
    pub outcome: &'static str,
    pub failure: Option<String>,
    pub mapped: Option<conn::Mapped>,
    pub org: Option<i64>,
    pub report: Option<crate::runtime::trigger::TriggerReport>,
    pub api_effects: Vec<crate::service::zitadel_api::ApiEffect>,
}

/// §3–§5: the mapping (with the lookups through ZITADEL's API), the org, the actions, the reply
/// and the effects for the API. Errors mean the actions could not run (no worker free, the
/// database unavailable).
pub(crate) async fn evaluate(
    s: &AppState,
    c: &entity::connection::Model,
    condition: Option<&Condition>,
    payload: &Value,
    deadline: tokio::time::Instant,
) -> ApiResult<Evaluated> {
    let pass = |mapped: Option<conn::Mapped>, org: Option<i64>| Evaluated {
        reply: conn::pass_through(condition, payload),
        outcome: "passthrough",
        failure: None,
        mapped,
        org,
        report: None,
        api_effects: Vec::new(),
    };
    let Some(condition_ref) = condition else { return Ok(pass(None, None)) };
    let access = s.targets.zitadel_access(c);
    let api = &s.targets.zitadel;
    let lookup_deadline = deadline.into_std();
    let mapped = match condition_ref {
        Condition::Function(name) => conn::map_function(name, payload),
        Condition::Request(method) => conn::map_request(method, payload),
        Condition::Response(method) => {
            resolve::map_response_with_api(api, access.as_ref(), method, payload, lookup_deadline).await
        }
        Condition::Event(event_type) => conn::map_event(event_type, payload),
    };
    let Some(mut mapped) = mapped else { return Ok(pass(None, None)) };
    let Some(org) = org_for(s, c, mapped.zitadel_org.as_deref()).await? else { return Ok(pass(Some(mapped), None)) };
    if !s.execute.has_actions(org, mapped.trigger).await? {
        return Ok(pass(Some(mapped), Some(org)));
    }
    resolve::add_metadata(api, access.as_ref(), &mut mapped, payload, lookup_deadline).await;
    // What ZITADEL sends beyond the trigger's context (fields of newer versions) is not the
    // scripts' to see, as with `_execute`: dropped once the lookups have read what they need.
    crate::runtime::api::surface::prune_context(mapped.trigger, &mut mapped.context);
    let budget = crate::domain::Duration { nanos: c.call_timeout_nanos };
    let report = s.execute.run_for_connector(org, mapped.trigger, &mapped.context, deadline, budget).await?;
    if report.runs.is_empty() {
        return Ok(pass(Some(mapped), Some(org)));
    }
    let (reply, outcome, failure, api_effects) = match (&report.effects, &report.error) {
        (Some(effects), None) => {
            let names: Vec<String> = report.runs.iter().map(|r| r.action_name.clone()).collect();
            let reply = success_reply(condition_ref, mapped.trigger, payload, effects, &report.fields_set, &names);
            let has_add = payload.pointer("/response/addHumanUser").is_some_and(Value::is_object);
            let (list, warnings) = resolve::api_effects(condition_ref, &mapped, effects, access.as_ref(), has_add);
            mapped.warnings.extend(warnings);
            (reply, "succeeded", None, list)
        }
        (_, error) => {
            let message = error.clone().unwrap_or_else(|| "the actions failed".into());
            (failure_reply(condition_ref, payload, &message), "failed", Some(message), Vec::new())
        }
    };
    Ok(Evaluated { reply, outcome, failure, mapped: Some(mapped), org: Some(org), report: Some(report), api_effects })
}

/// After the actions failed: functions and requests get the forwarded error (ZITADEL aborts the
/// operation when its target interrupts on error); responses and events already happened, so
/// the failure is only recorded and the reply is the unchanged response or `{}`.
fn failure_reply(condition: &Condition, payload: &Value, message: &str) -> Value {
    match condition {
        Condition::Function(_) | Condition::Request(_) => conn::forwarded_error(message),
        other => conn::pass_through(Some(other), payload),
    }
}

/// The reply after the actions succeeded: the function response, or the changed request.
fn success_reply(
    condition: &Condition,
    trigger: crate::domain::Trigger,
    payload: &Value,
    effects: &serde_json::Map<String, Value>,
    fields_set: &[String],
    action_names: &[String],
) -> Value {
    match condition {
        Condition::Request(method) => {
            conn::request_reply(method, payload.get("request").unwrap_or(&Value::Null), effects, fields_set)
        }
        Condition::Function(_) => conn::function_reply(trigger, effects, action_names),
        Condition::Response(_) if trigger == crate::domain::Trigger::ExternalPostAuthentication => {
            conn::intent_reply(payload, effects, fields_set)
        }
        // Their effects (metadata) would go through the ZITADEL API; the reply is unchanged.
        other => conn::pass_through(Some(other), payload),
    }
}

/// Why a call whose budget ran out could not run its actions.
fn budget_spent(c: &entity::connection::Model) -> String {
    format!("callTimeout {} reached", crate::domain::Duration { nanos: c.call_timeout_nanos })
}

/// What a call answers when its actions failed: the evaluated reply, unless the failure came
/// when the call's budget had run out, which is the connection's fail mode's answer (a dry run
/// predicts the call's answer with it).
pub(crate) fn reply_after(
    c: &entity::connection::Model,
    condition: Option<&Condition>,
    payload: &Value,
    e: &Evaluated,
    deadline: tokio::time::Instant,
) -> Value {
    if timed_out(e, deadline) {
        return unavailable(c, condition, payload, &budget_spent(c)).body;
    }
    e.reply.clone()
}

/// Whether the actions failed because the call's budget ran out.
fn timed_out(e: &Evaluated, deadline: tokio::time::Instant) -> bool {
    e.outcome == "failed" && tokio::time::Instant::now() >= deadline
}

/// The actions cannot run: the forwarded error (fail closed) or a pass-through (fail open).
fn unavailable(c: &entity::connection::Model, condition: Option<&Condition>, payload: &Value, why: &str) -> Done {
    let failure = Some(format!("actions unavailable: {why}"));
    let blocking = matches!(condition, Some(Condition::Function(_) | Condition::Request(_)));
    match c.fail_mode {
        FailMode::Closed if blocking => Done {
            body: conn::forwarded_error(failure.as_deref().unwrap_or_default()),
            outcome: "unavailable",
            failure,
        },
        _ => Done { body: conn::pass_through(condition, payload), outcome: "unavailable", failure },
    }
}

/// The connection with its decrypted keys, from the cache or the database.
async fn connection_of(
    s: &AppState,
    id: i64,
) -> ApiResult<Option<std::sync::Arc<crate::service::connector::CachedConnection>>> {
    if let Some(cached) = s.connector_cache.connection(id) {
        return Ok(cached);
    }
    let model = match store::get(&s.store.db, id).await {
        Ok(model) => model,
        // The database is unavailable: the last copy read keeps the fail mode working.
        Err(e) => return s.connector_cache.stale_connection(id).ok_or(e),
    };
    let loaded = model.map(|model| {
        let key = s.config.encryption_key.as_deref().unwrap_or("");
        let keys = store::keys_of(&model)
            .into_iter()
            .filter_map(|k| crypto::decrypt(key, &k.enc).ok().map(|plain| (plain, k.expires_at)))
            .collect();
        std::sync::Arc::new(crate::service::connector::CachedConnection { model, keys })
    });
    s.connector_cache.put_connection(id, loaded.clone());
    Ok(loaded)
}

/// The linked actionsd org of the ZITADEL org, else the connection's default org.
async fn org_for(s: &AppState, c: &entity::connection::Model, zitadel_org: Option<&str>) -> ApiResult<Option<i64>> {
    if let Some(z) = zitadel_org {
        let linked = match s.connector_cache.link(c.id, z) {
            Some(cached) => cached,
            None => {
                let loaded = match store::linked_org(&s.store.db, c.id, z).await {
                    Ok(loaded) => loaded,
                    Err(e) => s.connector_cache.stale_link(c.id, z).ok_or(e)?,
                };
                s.connector_cache.put_link(c.id, z, loaded);
                loaded
            }
        };
        if let Some(org) = linked {
            return Ok(Some(org));
        }
    }
    Ok(c.default_org_id)
}

/// The call as the OpenAPI document shows it (served by [`call`], outside the RPC table).
#[utoipa::path(post, path = "/connector/v1/connections/{id}/call", tag = "ConnectorService",
    operation_id = "ConnectorService_Call",
    summary = "Where a ZITADEL target points: run the linked organization's v1 actions for an Actions v2 call",
    description = "REST only, authenticated by ZITADEL's signature header (no Bearer token). Function conditions \
        (preuserinfo, preaccesstoken, presamlresponse), the requests and responses of AddHumanUser and CreateUser, the \
        responses of RetrieveIdentityProviderIntent, CreateSession and SetSession and the password-check events run \
        the mapped v1 trigger; other conditions pass through. Bodies are JSON, or a JWT (verified against ZITADEL's \
        JWKS) or JWE (to the connection's public key) as the connection's payloadTypes allow.",
    params(("id" = String, Path, description = "Connection id")),
    request_body(content = std::collections::HashMap<String, serde_json::Value>, description = "ZITADEL's Actions v2 payload", content_type = "application/json"),
    responses((status = 200, description = "The reply ZITADEL applies (or a forwarded error)", body = std::collections::HashMap<String, serde_json::Value>),
        (status = 400, description = "Payload type not accepted (CONN-typ3s) or malformed body (CONN-b0dy1)", body = super::messages::GatewayError),
        (status = 401, description = "Signature or timestamp check failed (CONN-s1gn4), or a JWT/JWE body refused (CONN-j0se1)", body = super::messages::GatewayError),
        (status = 404, description = "Connection not found (CONN-n0tFd)", body = super::messages::GatewayError),
        (status = 413, description = "Body over 1 MiB", body = super::messages::GatewayError)),
    security(("zitadelSignature" = [])))]
pub fn call_doc() {}
