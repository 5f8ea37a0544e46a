//! Request and response executions (README, "Actions v2"): the most specific execution for an
//! RPC runs its targets around the handler. The ActionService's own RPCs are never intercepted,
//! so a broken target can always be fixed.

use super::auth::Caller;
use super::{AppState, Rpc};
use crate::domain::execution::{ExecutionId, Phase};
use crate::error::{ApiError, ApiResult};
use crate::service::targets::{Chain, ChainEnd};
use axum::http::{HeaderMap, Uri};
use entity::target;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Headers forwarded to request/response targets.
const FORWARDED_HEADERS: [&str; 5] = ["Content-Type", "X-Forwarded-For", "X-Forwarded-Host", "Host", "Origin"];

/// Execution ids for an RPC, most specific first: method, service, all.
fn candidates(phase: Phase, rpc: &Rpc) -> Vec<String> {
    ExecutionId::for_rpc(phase, rpc.service, &rpc.full_name()).iter().map(ExecutionId::to_string).collect()
}

fn forwarded_headers(headers: &HeaderMap, uri: &Uri) -> Value {
    let mut out = Map::new();
    for name in FORWARDED_HEADERS {
        // As text, UTF-8 included (an IDN host a proxy did not punycode); a byte that is not UTF-8
        // reads as U+FFFD.
        let mut values: Vec<Value> =
            headers.get_all(name).iter().map(|v| Value::String(String::from_utf8_lossy(v.as_bytes()).into())).collect();
        // HTTP/2 carries the host as `:authority`, not as a Host header.
        if name == "Host" && values.is_empty() {
            values.extend(uri.authority().map(|a| Value::String(a.to_string())));
        }
        if !values.is_empty() {
            out.insert(name.to_string(), Value::Array(values));
        }
    }
    Value::Object(out)
}

/// `allowed_to_fail` → `allowedToFail`; other keys (claims, metadata keys, URNs) stay as they are.
fn camel_key(key: &str) -> Option<String> {
    let proto_like = key.contains('_')
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    proto_like.then(|| crate::domain::case::lower_camel(key))
}

/// The request in our JSON form (README §2), as targets see it: the message read by the RPC's
/// protobuf descriptor and written back by the JSON mapping (lowerCamelCase names, zero values
/// omitted, 64-bit integers as strings, enums by name, timestamps in UTC, durations with 0, 3, 6
/// or 9 digits), whichever spelling the client used. Free-form data (an `_execute` context) is
/// passed as given. A message the descriptor does not read keeps its values, with its names
/// in lowerCamelCase.
fn canonical_request(state: &AppState, rpc: &Rpc, value: &Value) -> Value {
    let named = camel_names(value);
    let Some(mut canonical) = super::grpc::canonical_message(&state.protos, rpc, &named) else {
        return named;
    };
    if let (Some(context), Some(map)) = (named.get("context"), canonical.as_object_mut()) {
        map.insert("context".into(), context.clone());
    }
    canonical
}

/// Proto field names as lowerCamelCase (requests may use either); free-form data (an `_execute`
/// context) is left untouched.
fn camel_names(value: &Value) -> Value {
    fn walk(v: &Value, free_form: bool) -> Value {
        match v {
            Value::Object(map) if !free_form => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let key = camel_key(k).unwrap_or_else(|| k.clone());
                        let inner = walk(v, key == "context");
                        (key, inner)
                    })
                    .collect(),
            ),
            Value::Array(items) if !free_form => Value::Array(items.iter().map(|i| walk(i, false)).collect()),
            other => other.clone(),
        }
    }
    walk(value, false)
}

/// Runs the handler of `rpc` with its request and response executions.
pub async fn run(
    state: &AppState,
    caller: Caller,
    rpc: &'static Rpc,
    headers: &HeaderMap,
    uri: &Uri,
    value: Value,
    params: Vec<(String, String)>,
) -> ApiResult<Value> {
    if !super::interceptable(rpc.service) {
        return (rpc.call.call)(state.clone(), caller, value, rpc).await;
    }
    let snapshot = state.v2.registry.snapshot(&state.store).await?;
    if snapshot.is_empty() {
        return (rpc.call.call)(state.clone(), caller, value, rpc).await;
    }
    let request_exec = snapshot.resolve(&candidates(Phase::Request, rpc));
    let response_exec = snapshot.resolve(&candidates(Phase::Response, rpc));
    if request_exec.is_none() && response_exec.is_none() {
        return (rpc.call.call)(state.clone(), caller, value, rpc).await;
    }
    // Targets never see a request the handler could not even decode.
    (rpc.call.decode)(state, &value, rpc)?;
    let base = json!({
        "fullMethod": rpc.full_name(),
        "instanceID": state.v2.instance_id,
        "orgID": caller.org.to_string(),
        "userID": caller.token_id.to_string(),
        "headers": forwarded_headers(headers, uri),
    });
    let mut request = value;
    if let Some((execution_id, targets)) = request_exec {
        let mut payload = base.clone();
        payload["request"] = canonical_request(state, rpc, &request);
        let chain = Replace { state, rpc, params: &params, payload, field: "request", replaced: None };
        if let Some(replacement) = run_targets(state, execution_id, targets, chain).await? {
            // The bare replacement request, path parameters already re-applied; the
            // organization stays the caller's.
            (rpc.call.decode)(state, &replacement, rpc)?;
            request = replacement;
        }
    }
    let response = (rpc.call.call)(state.clone(), caller, request.clone(), rpc).await?;
    if let Some((execution_id, targets)) = response_exec {
        let mut payload = base;
        payload["request"] = canonical_request(state, rpc, &request);
        payload["response"] = response.clone();
        let chain = Replace { state, rpc, params: &params, payload, field: "response", replaced: None };
        if let Some(replacement) = run_targets(state, execution_id, targets, chain).await? {
            return Ok(replacement);
        }
    }
    Ok(response)
}

/// A request or response execution: each target gets the payload with the latest `field`
/// (chained: a restCall's output replaces it for the next target and for the caller).
struct Replace<'a> {
    state: &'a AppState,
    rpc: &'static Rpc,
    /// The path parameters, re-applied over every request replacement (each later target and
    /// the handler see the request the caller pointed at).
    params: &'a [(String, String)],
    payload: Value,
    field: &'static str,
    replaced: Option<Value>,
}

impl Chain for Replace<'_> {
    fn body(&self) -> ApiResult<Vec<u8>> {
        serde_json::to_vec(&self.payload).map_err(ApiError::internal)
    }

    fn reply(&mut self, t: &target::Model, reply: Vec<u8>) -> ApiResult<()> {
        let v @ Value::Object(_) = crate::domain::json_text::from_slice_as_go(&reply).unwrap_or(Value::Null) else {
            return Err(crate::v2::call::failed(format!(
                "target {} answered with a body that is not a JSON object",
                t.name
            )));
        };
        if self.field == "request" {
            let v = super::normalize_message(&self.state.protos, self.rpc, v, self.params.to_vec())?;
            self.payload[self.field] = canonical_request(self.state, self.rpc, &v);
            self.replaced = Some(v);
        } else {
            let v = super::grpc::read_reply(&self.state.protos, self.rpc, v)?.map_err(|why| {
                crate::v2::call::failed(format!("target {} answered with a body that is {why}", t.name))
            })?;
            self.payload[self.field] = v.clone();
            self.replaced = Some(v);
        }
        Ok(())
    }
}

/// Calls the targets in order. Returns the last restCall output, if any restCall ran.
async fn run_targets(
    state: &AppState,
    execution_id: &str,
    targets: &[Arc<target::Model>],
    mut chain: Replace<'_>,
) -> ApiResult<Option<Value>> {
    match state.targets.run_chain(execution_id, targets, None, &mut chain).await? {
        ChainEnd::Interrupted { error, .. } => Err(error),
        ChainEnd::Completed | ChainEnd::OutOfTime => Ok(chain.replaced),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_rendered_with_camel_case_field_names() {
        let given = json!({"allowed_to_fail": true, "name": "a", "action_ids": ["1"],
            "context": {"user_metadata": [{"my_key": "v"}], "urn:zitadel:iam:x": 1},
            "nested": [{"flow_type": "2"}]});
        assert_eq!(
            camel_names(&given),
            json!({"allowedToFail": true, "name": "a", "actionIds": ["1"],
                "context": {"user_metadata": [{"my_key": "v"}], "urn:zitadel:iam:x": 1},
                "nested": [{"flowType": "2"}]})
        );
    }
}
