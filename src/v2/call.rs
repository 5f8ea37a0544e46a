//! Calling a target: encoding, signing (ZITADEL-Signature and Standard Webhooks headers), the
//! guarded HTTP request, and turning the answer into a result for the caller.

use super::payload;
use super::V2;
use crate::error::{ApiError, ApiResult, Kind};
use crate::store::Store;
use base64::Engine;
use entity::target;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, Instant};

/// Response bodies above this are an error.
pub const MAX_RESPONSE_BYTES: usize = 20 << 20;

/// What came back from a target that answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds (only the delta-seconds form).
    pub retry_after: Option<u64>,
}

/// Why a call got no answer.
#[derive(Debug)]
pub enum CallFailure {
    Timeout,
    /// Connection, DNS, denied address, oversize body.
    Failed(String),
    /// The call could not be made as configured (e.g. a JWE target without an active key).
    Refused(ApiError),
}

impl CallFailure {
    pub fn describe(&self) -> String {
        match self {
            CallFailure::Timeout => "the target did not answer in time".into(),
            CallFailure::Failed(m) => m.clone(),
            CallFailure::Refused(e) => e.full_message(),
        }
    }
}

fn hmac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().to_vec()
}

/// `t=<ts>,v1=<hex>[,v1=<hex>]` over `"<t>.<body>"`, one `v1` per valid key.
pub fn zitadel_signature(keys: &[String], timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    let mut out = format!("t={ts}");
    for key in keys {
        out.push_str(",v1=");
        out.push_str(&hex::encode(hmac(key, &[ts.as_bytes(), b".", body])));
    }
    out
}

/// `v1,<base64>` entries (space-separated) over `"<id>.<timestamp>.<body>"`.
pub fn standard_webhooks_signature(keys: &[String], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    keys.iter()
        .map(|key| {
            let mac = hmac(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
            format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends one signed call. `webhook_id` is stable across retries of one delivery.
pub async fn send(
    v2: &V2,
    store: &Store,
    encryption_key: &str,
    t: &target::Model,
    webhook_id: &str,
    json: Vec<u8>,
    timeout: Duration,
) -> Result<Answer, CallFailure> {
    let url = url::Url::parse(&t.endpoint).map_err(|e| CallFailure::Failed(format!("invalid endpoint: {e}")))?;
    v2.policy.check_url(&url).map_err(CallFailure::Failed)?;
    let encoded = payload::encode(store, &v2.keys, t, json).await.map_err(CallFailure::Refused)?;
    let now = chrono::Utc::now();
    let keys =
        payload::signing_keys(encryption_key, t, now.timestamp_micros()).map_err(|e| CallFailure::Failed(e.message))?;
    let ts = now.timestamp();
    let request = v2
        .client
        .post(url)
        .timeout(timeout)
        .header(reqwest::header::CONTENT_TYPE, encoded.content_type)
        .header("ZITADEL-Signature", zitadel_signature(&keys, ts, &encoded.body))
        .header("webhook-id", webhook_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", standard_webhooks_signature(&keys, webhook_id, ts, &encoded.body))
        .body(encoded.body);
    exchange(request, timeout).await
}

/// Sends a built request and reads the answer (status, body up to the response limit,
/// `Retry-After`), all within `timeout`.
pub async fn exchange(request: reqwest::RequestBuilder, timeout: Duration) -> Result<Answer, CallFailure> {
    let request = request.timeout(timeout);
    let deadline = Instant::now() + timeout;
    let attempt = async {
        let mut resp = request.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        if resp.content_length().is_some_and(|l| l > MAX_RESPONSE_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, body, retry_after })
    };
    // reqwest's timeout covers the body too; this also bounds anything around it.
    match tokio::time::timeout_at(deadline.into(), attempt).await {
        Ok(r) => r,
        Err(_) => Err(CallFailure::Timeout),
    }
}

/// `Retry-After` as delta-seconds or as an HTTP date (seconds from `now`, at least 0).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.timestamp() - now.timestamp()).max(0) as u64)
}

fn too_large() -> CallFailure {
    CallFailure::Failed(format!("response body exceeds {MAX_RESPONSE_BYTES} bytes"))
}

fn classify(e: reqwest::Error) -> CallFailure {
    if e.is_timeout() {
        CallFailure::Timeout
    } else {
        CallFailure::Failed(crate::runtime::http::describe_error(&e))
    }
}

pub fn failed(message: impl Into<String>) -> ApiError {
    ApiError::new(Kind::FailedPrecondition, "Errors.Execution.Failed", message)
}

pub fn timed_out(message: impl Into<String>) -> ApiError {
    ApiError::new(Kind::DeadlineExceeded, "Errors.Execution.Timeout", message)
}

fn forwarded_kind(status: i64) -> Kind {
    match status {
        400 => Kind::InvalidArgument,
        401 => Kind::Unauthenticated,
        403 => Kind::PermissionDenied,
        404 => Kind::NotFound,
        409 => Kind::AlreadyExists,
        429 => Kind::ResourceExhausted,
        _ => Kind::FailedPrecondition,
    }
}

/// The result of a waited-for call (restWebhook, restCall): the 2xx body, or the error the
/// caller's operation fails with (a forwarded error keeps its status and message).
pub fn interpret(t: &target::Model, result: Result<Answer, CallFailure>) -> ApiResult<Vec<u8>> {
    let answer = match result {
        Ok(a) => a,
        Err(CallFailure::Timeout) => {
            return Err(timed_out(format!("target {} did not answer within its timeout", t.name)))
        }
        Err(CallFailure::Failed(m)) => return Err(failed(format!("calling target {} failed: {m}", t.name))),
        Err(CallFailure::Refused(e)) => return Err(e),
    };
    if !(200..300).contains(&answer.status) {
        return Err(failed(format!("target {} answered with HTTP {}", t.name, answer.status)));
    }
    if let Ok(serde_json::Value::Object(map)) = crate::domain::json_text::from_slice_as_go(&answer.body) {
        // As ZITADEL reads them: in any letter case (Go's encoding/json).
        let code = super::gojson::get(&map, "forwardedStatusCode").or_else(|| map.get("forwarded_status_code"));
        let message = super::gojson::get(&map, "forwardedErrorMessage").or_else(|| map.get("forwarded_error_message"));
        let code_num = code.and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.parse().ok())));
        let message_text = message.and_then(|m| m.as_str()).unwrap_or("");
        if code_num.is_some_and(|c| c != 0) || !message_text.is_empty() {
            let text = if message_text.is_empty() {
                format!("target {} returned an error", t.name)
            } else {
                message_text.to_string()
            };
            return Err(ApiError::new(forwarded_kind(code_num.unwrap_or(0)), "Errors.Execution.Forwarded", text));
        }
    }
    Ok(answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zitadel_signature_is_hex_hmac_over_timestamp_and_body() {
        let sig = zitadel_signature(&["secret".into()], 1700000000, b"{}");
        let expected = hex::encode(hmac("secret", &[b"1700000000.{}"]));
        assert_eq!(sig, format!("t=1700000000,v1={expected}"));
        let two = zitadel_signature(&["a".into(), "b".into()], 1, b"x");
        assert_eq!(two.matches(",v1=").count(), 2);
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().to_utc();
        assert_eq!(parse_retry_after("120", now), Some(120));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now), Some(30));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn standard_webhooks_signature_has_one_entry_per_key() {
        let one = standard_webhooks_signature(&["k".into()], "id1", 5, b"body");
        assert!(one.starts_with("v1,"));
        let two = standard_webhooks_signature(&["k".into(), "l".into()], "id1", 5, b"body");
        assert_eq!(two.split(' ').count(), 2);
        assert_eq!(two.split(' ').next(), Some(one.as_str()));
    }
}
