//! Function executions inside `_execute` (docs/v2-functions.md): after the v1 actions of flow 2
//! triggers 4/5 and flow 4 trigger 6, the targets of the execution `function/<name>` run in order
//! and add to the same effects as the v1 actions. This module holds the payload and reply
//! mappings; `service::execute` runs the chain.

use crate::domain::{FlowType, Trigger};
use crate::error::{ApiError, ApiResult, Kind};
use crate::runtime::api::{enum_number, GENDERS, USER_STATES};
use crate::runtime::trigger::is_empty;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The function a trigger runs after its v1 actions, if any.
pub fn function_name(trigger: Trigger) -> Option<&'static str> {
    match trigger {
        Trigger::PreUserinfoCreation => Some("preuserinfo"),
        Trigger::PreAccessTokenCreation => Some("preaccesstoken"),
        Trigger::PreSamlResponseCreation => Some("presamlresponse"),
        _ => None,
    }
}

/// The claim the log entries of a function go to (`urn:zitadel:iam:action:function/<name>:log`).
pub fn log_claim(name: &str) -> String {
    format!("urn:zitadel:iam:action:function/{name}:log")
}

/// Claim keys with this prefix are reserved and silently ignored.
const RESERVED_CLAIM_PREFIX: &str = "urn:zitadel:iam";

/// A restCall reply (snake_case as upstream; camelCase accepted too). Unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Reply {
    #[serde(alias = "setUserMetadata", deserialize_with = "null_default")]
    pub set_user_metadata: Vec<ReplyMetadata>,
    #[serde(alias = "appendClaims", deserialize_with = "null_default")]
    pub append_claims: Vec<ReplyClaim>,
    #[serde(alias = "appendLogClaims", deserialize_with = "null_default")]
    pub append_log_claims: Vec<String>,
    #[serde(alias = "appendAttribute", deserialize_with = "null_default")]
    pub append_attribute: Vec<ReplyAttribute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplyMetadata {
    pub key: String,
    /// Base64 of the bytes to store (protobuf `bytes` in JSON).
    #[serde(deserialize_with = "null_default")]
    pub value: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplyClaim {
    pub key: String,
    pub value: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReplyAttribute {
    pub name: String,
    #[serde(alias = "nameFormat", deserialize_with = "null_default")]
    pub name_format: String,
    #[serde(deserialize_with = "null_default")]
    pub value: Vec<String>,
}

/// `null` reads as the default (as Go's encoding/json leaves a nil slice).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parses a restCall reply; an empty body is an empty reply.
pub fn parse_reply(body: &[u8]) -> ApiResult<Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Reply::default());
    }
    let mut value: Value = crate::domain::json_text::from_slice_as_go(body).map_err(|_| {
        ApiError::new(
            Kind::FailedPrecondition,
            "Errors.Execution.ResponseIsNotValidJSON",
            "the target's reply is not valid JSON",
        )
    })?;
    // Member names in any letter case, as ZITADEL reads them (its own guide's target answers
    // `{"Key": …, "Value": …}` items).
    use super::gojson::{fold_items, fold_keys};
    fold_keys(&mut value, &["set_user_metadata", "append_claims", "append_log_claims", "append_attribute"]);
    fold_items(&mut value, "set_user_metadata", &["key", "value"]);
    fold_items(&mut value, "append_claims", &["key", "value"]);
    fold_items(&mut value, "append_attribute", &["name", "name_format", "value"]);
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            Kind::FailedPrecondition,
            "Errors.Execution.ResponseIsNotValidJSON",
            format!("the target's reply is not a valid function response: {e}"),
        )
    })
}

/// Completes a function's effects after its chain ran: its log entries become the log claim
/// (flow 2 only) and empty effects are dropped.
pub fn finish(name: &str, flow: FlowType, effects: &mut Map<String, Value>, log: Vec<String>) {
    if flow == FlowType::COMPLEMENT_TOKEN && !log.is_empty() {
        let claims = claims_mut(effects);
        match claims.get_mut(&log_claim(name)) {
            Some(Value::Array(existing)) => existing.extend(log.into_iter().map(Value::String)),
            _ => {
                claims.insert(log_claim(name), json!(log));
            }
        }
    }
    effects.retain(|_, v| !is_empty(v));
}

fn claims_mut(effects: &mut Map<String, Value>) -> &mut Map<String, Value> {
    let entry = effects.entry("claims").or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("claims is an object")
}

fn array_mut<'a>(effects: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let entry = effects.entry(key).or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    entry.as_array_mut().expect("an array")
}

/// Decodes base64 (standard or URL-safe, padded or not) and re-encodes it standard, padded.
fn normalize_base64(value: &str) -> Option<String> {
    use base64::engine::general_purpose::STANDARD;
    let bytes = crate::domain::bytes::decode_base64(value.trim())?;
    Some(STANDARD.encode(bytes))
}

/// Adds a restCall reply to the effects with the v1 rules (README, "How scripts are contained"). Only the
/// parts meaningful for the trigger apply: claims and log entries for flow 2, attributes for
/// flow 4, metadata for both.
pub fn apply_reply(
    name: &str,
    flow: FlowType,
    context: &Value,
    effects: &mut Map<String, Value>,
    log: &mut Vec<String>,
    reply: Reply,
) {
    for m in reply.set_user_metadata {
        // A key and a value are both required (upstream's metadata is valid only with both).
        let value = normalize_base64(&m.value).filter(|v| !v.is_empty());
        let (true, Some(value)) = (!m.key.is_empty(), value) else {
            if flow == FlowType::COMPLEMENT_TOKEN {
                log.push(format!("failed to set user metadata key {:?}", m.key));
            }
            tracing::warn!(function = name, key = ?m.key, "function reply: invalid metadata entry ignored");
            continue;
        };
        let list = array_mut(effects, "metadata");
        let item = json!({"key": m.key, "value": value});
        match list.iter_mut().find(|e| e.get("key").and_then(Value::as_str) == Some(m.key.as_str())) {
            Some(existing) => *existing = item,
            None => list.push(item),
        }
    }
    if flow == FlowType::COMPLEMENT_TOKEN {
        let input = context.get("claims").and_then(Value::as_object);
        for c in reply.append_claims {
            if c.key.starts_with(RESERVED_CLAIM_PREFIX) {
                continue;
            }
            let claims = claims_mut(effects);
            if input.is_some_and(|i| i.contains_key(&c.key)) || claims.contains_key(&c.key) {
                log.push(format!("key \"{}\" already exists", c.key));
                continue;
            }
            claims.insert(c.key, c.value);
        }
        log.extend(reply.append_log_claims);
    }
    if flow == FlowType::COMPLEMENT_SAML_RESPONSE {
        for a in reply.append_attribute {
            let list = array_mut(effects, "attributes");
            if list.iter().any(|e| e.get("name").and_then(Value::as_str) == Some(a.name.as_str())) {
                continue;
            }
            // Zero values omitted, as every effect renders (and as a script's attribute does).
            let mut attr = Map::new();
            if !a.name.is_empty() {
                attr.insert("name".into(), Value::String(a.name));
            }
            if !a.name_format.is_empty() {
                attr.insert("nameFormat".into(), Value::String(a.name_format));
            }
            if !a.value.is_empty() {
                attr.insert("values".into(), json!(a.value));
            }
            list.push(Value::Object(attr));
        }
    }
}

/// The payload a function target receives: `{function, userinfo, user, user_metadata, org,
/// user_grants}` with snake_case keys as upstream, from the context and the effects so far.
pub fn payload(function: &str, flow: FlowType, context: &Value, effects: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("function".into(), Value::String(function.to_string()));
    if flow == FlowType::COMPLEMENT_TOKEN {
        // Claim names are kept as they are (no case conversion).
        let mut userinfo = context.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
        if let Some(added) = effects.get("claims").and_then(Value::as_object) {
            for (k, v) in added {
                userinfo.insert(k.clone(), v.clone());
            }
        }
        out.insert("userinfo".into(), Value::Object(userinfo));
    }
    if let Some(user) = context.get("user").filter(|u| u.is_object()) {
        out.insert("user".into(), snake_keys(&normalize_user(user)));
    }
    let mut metadata: Vec<Value> = context.get("userMetadata").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(set) = effects.get("metadata").and_then(Value::as_array) {
        for item in set {
            let key = item.get("key").and_then(Value::as_str);
            match metadata.iter_mut().find(|m| m.get("key").and_then(Value::as_str) == key) {
                Some(existing) => *existing = item.clone(),
                None => metadata.push(item.clone()),
            }
        }
    }
    if !metadata.is_empty() {
        out.insert("user_metadata".into(), snake_keys(&Value::Array(metadata)));
    }
    if let Some(org) = context.get("org").filter(|o| o.is_object()) {
        out.insert("org".into(), snake_keys(org));
    }
    if let Some(grants) = context.get("userGrants").filter(|g| g.as_array().is_some_and(|a| !a.is_empty())) {
        out.insert("user_grants".into(), upstream_grants(snake_keys(grants)));
    }
    // Upstream sends the client of the token (`application.client_id`) and, after a token
    // exchange or impersonation, its `actor` chain (`{actor, user_id, issuer}`).
    if let Some(client_id) = context.pointer("/application/clientId").filter(|c| c.is_string()) {
        out.insert("application".into(), json!({ "client_id": client_id }));
    }
    if let Some(actor) = context.get("actor").filter(|a| a.is_object()) {
        out.insert("actor".into(), snake_keys(actor));
    }
    Value::Object(out)
}

/// Upstream names a grant's project grant `grant_id` (its `query.UserGrant`), where the
/// context says `projectGrantId`.
fn upstream_grants(mut grants: Value) -> Value {
    for grant in grants.as_array_mut().into_iter().flatten().filter_map(Value::as_object_mut) {
        if let Some(id) = grant.remove("project_grant_id") {
            grant.entry("grant_id").or_insert(id);
        }
    }
    grants
}

/// `gender` and `state` given by name become their numbers, and a `sequence` given as a string
/// of digits a number (as upstream sends them: its `query.User` has a `uint64` sequence).
fn normalize_user(user: &Value) -> Value {
    let mut u = user.clone();
    if let Some(sequence) = u.get_mut("sequence") {
        if let Some(n) = sequence.as_str().and_then(|t| t.parse::<u64>().ok()) {
            *sequence = Value::from(n);
        }
    }
    if let Some(state) = u.get_mut("state").filter(|v| v.is_string()) {
        *state = enum_number(Some(state), USER_STATES);
    }
    if let Some(gender) = u.get_mut("human").and_then(|h| h.get_mut("gender")).filter(|v| v.is_string()) {
        *gender = enum_number(Some(gender), GENDERS);
    }
    u
}

/// Object keys converted to snake_case, recursively.
fn snake_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (crate::domain::case::snake(k), snake_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(snake_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_accepts_both_spellings_and_nulls() {
        let r = parse_reply(br#"{"appendClaims":[{"key":"a","value":1}],"append_log_claims":null,
            "set_user_metadata":[{"key":"k","value":"dg=="}],"appendAttribute":[{"name":"n","nameFormat":"f","value":["x"]}]}"#)
        .unwrap();
        assert_eq!(r.append_claims.len(), 1);
        assert!(r.append_log_claims.is_empty());
        assert_eq!(r.set_user_metadata[0].value, "dg==");
        assert_eq!(r.append_attribute[0].name_format, "f");
        assert!(parse_reply(b"").unwrap().append_claims.is_empty());
        assert!(parse_reply(b"not json").is_err());
        assert!(parse_reply(br#"{"append_claims": "x"}"#).is_err());
    }

    #[test]
    fn claim_rules_match_v1() {
        let ctx = json!({"claims": {"sub": "u1"}});
        let mut effects = Map::new();
        effects.insert("claims".into(), json!({"v1": true}));
        let mut log = Vec::new();
        let reply = parse_reply(
            br#"{"append_claims":[{"key":"urn:zitadel:iam:x","value":1},{"key":"sub","value":2},
            {"key":"v1","value":3},{"key":"new","value":4}],"append_log_claims":["hello"],
            "append_attribute":[{"name":"ignored","value":["x"]}]}"#,
        )
        .unwrap();
        apply_reply("preaccesstoken", FlowType::COMPLEMENT_TOKEN, &ctx, &mut effects, &mut log, reply);
        assert_eq!(effects["claims"], json!({"v1": true, "new": 4}));
        assert_eq!(log, vec!["key \"sub\" already exists", "key \"v1\" already exists", "hello"]);
        assert!(!effects.contains_key("attributes"));
    }

    #[test]
    fn attributes_omit_zero_values() {
        let mut effects = Map::new();
        let reply = parse_reply(
            br#"{"append_attribute":[{"name":"","name_format":"","value":[]},{"name":"m","value":[""]},
            {"name":"f","name_format":"urn:x","value":["a","b"]}]}"#,
        )
        .unwrap();
        apply_reply(
            "presamlresponse",
            FlowType::COMPLEMENT_SAML_RESPONSE,
            &json!({}),
            &mut effects,
            &mut Vec::new(),
            reply,
        );
        assert_eq!(
            effects["attributes"],
            json!([{}, {"name": "m", "values": [""]}, {"name": "f", "nameFormat": "urn:x", "values": ["a", "b"]}])
        );
    }
}
