//! The ZITADEL connector's call (README, "Use actionsd with ZITADEL"): checking ZITADEL's signature,
//! reading the condition of a payload, mapping it to a v1 trigger and context, and turning the
//! trigger's effects into the reply ZITADEL applies. The HTTP side is `api::connector_call`.
//!
//! Mapped so far: the function conditions (preuserinfo, preaccesstoken, presamlresponse), the
//! requests and responses of AddHumanUser / CreateUser, the responses of
//! RetrieveIdentityProviderIntent and CreateSession / SetSession (v2 and v2beta) and the
//! password-check events; every other condition passes through.

use crate::domain::Trigger;
use crate::store::connections::HealthDelta;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;

pub mod jose;
pub mod resolve;

/// Health counters of the calls since the last flush, per connection: counting in memory keeps
/// a write off every call; a background job adds them to the stored counters every second.
#[derive(Default)]
pub struct Health {
    pending: Mutex<HashMap<i64, HealthDelta>>,
}

impl Health {
    /// Counts one call of a connection; `error` is a rejection or failure text.
    pub fn count(&self, id: i64, rejected: bool, failed: bool, error: Option<String>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let d = pending.entry(id).or_default();
        d.calls += 1;
        d.rejected += i64::from(rejected);
        d.failed += i64::from(failed);
        d.last_call_at = Some(crate::domain::time::now_micros());
        if error.is_some() {
            d.last_error = error;
        }
    }

    /// What was counted since the last call.
    pub fn take(&self) -> Vec<(i64, HealthDelta)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner())).into_iter().collect()
    }

    /// Puts counts back after a failed flush (they are added to what came meanwhile).
    pub fn restore(&self, deltas: Vec<(i64, HealthDelta)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (id, d) in deltas {
            let p = pending.entry(id).or_default();
            p.calls += d.calls;
            p.rejected += d.rejected;
            p.failed += d.failed;
            p.last_call_at = p.last_call_at.max(d.last_call_at);
            if p.last_error.is_none() {
                p.last_error = d.last_error;
            }
        }
    }
}

/// How long a connection (with its decrypted keys) and an organization link are reused. Writes
/// through this server clear them at once; other replicas see a change within this bound.
const CACHE_TTL: std::time::Duration = std::time::Duration::from_millis(250);

/// A connection as calls need it: the row and its signing keys, decrypted.
pub struct CachedConnection {
    pub model: entity::connection::Model,
    /// The keys valid when loaded, with their expiry (µs; None: no expiry).
    pub keys: Vec<(String, Option<i64>)>,
}

type LinkKey = (i64, String);
/// When a connection was read, and what was there (None: no such connection).
type CachedEntry = (std::time::Instant, Option<std::sync::Arc<CachedConnection>>);

/// Connections and organization links recently read by calls, so that a call usually costs no
/// database read before its actions run.
#[derive(Default)]
pub struct ConnectionCache {
    connections: Mutex<HashMap<i64, CachedEntry>>,
    links: Mutex<HashMap<LinkKey, (std::time::Instant, Option<i64>)>>,
}

impl ConnectionCache {
    pub fn connection(&self, id: i64) -> Option<Option<std::sync::Arc<CachedConnection>>> {
        let entries = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, c)| c.clone())
    }

    pub fn put_connection(&self, id: i64, c: Option<std::sync::Arc<CachedConnection>>) {
        let mut entries = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(id, (std::time::Instant::now(), c));
    }

    /// The last connection read, however old: what a call uses while the database is unavailable
    /// (so that the signature can still be checked and the fail mode applied).
    pub fn stale_connection(&self, id: i64) -> Option<Option<std::sync::Arc<CachedConnection>>> {
        let entries = self.connections.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).map(|(_, c)| c.clone())
    }

    /// The last link read, however old (see [`Self::stale_connection`]).
    pub fn stale_link(&self, id: i64, zitadel_org: &str) -> Option<Option<i64>> {
        let entries = self.links.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(id, zitadel_org.to_string())).map(|(_, o)| *o)
    }

    pub fn link(&self, id: i64, zitadel_org: &str) -> Option<Option<i64>> {
        let entries = self.links.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&(id, zitadel_org.to_string())).filter(|(at, _)| at.elapsed() < CACHE_TTL).map(|(_, o)| *o)
    }

    pub fn put_link(&self, id: i64, zitadel_org: &str, org: Option<i64>) {
        let mut entries = self.links.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        }
        entries.insert((id, zitadel_org.to_string()), (std::time::Instant::now(), org));
    }

    /// Forgets a connection and its links (after any write to them).
    pub fn invalidate(&self, id: i64) {
        self.connections.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        self.links.lock().unwrap_or_else(|e| e.into_inner()).retain(|(c, _), _| *c != id);
    }
}

/// Why a call was refused (the texts of `recentRejections`).
pub mod reason {
    pub const MALFORMED_SIGNATURE: &str = "missing or malformed signature header";
    pub const BAD_SIGNATURE: &str = "bad signature";
    pub const STALE: &str = "stale timestamp";
    pub const NO_KEY: &str = "no signing key";
    pub const PAYLOAD_TYPE: &str = "payload type not allowed";
    pub const BAD_JOSE: &str = "bad JWT/JWE";
    pub const MALFORMED_BODY: &str = "malformed body";
}

/// Checks `ZITADEL-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` against the keys: one `v1`
/// must be the hex HMAC-SHA256 of `"<t>." + body` under one key (compared in constant time), and
/// `|now − t|` at most `tolerance_secs`. The error is the rejection reason.
pub fn verify_signature(
    header: Option<&str>,
    body: &[u8],
    keys: &[String],
    tolerance_secs: i64,
    now_secs: i64,
) -> Result<(), &'static str> {
    let header = header.ok_or(reason::MALFORMED_SIGNATURE)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or(reason::MALFORMED_SIGNATURE)?;
        match name.trim() {
            "t" if timestamp.is_none() => {
                timestamp = Some(value.trim().parse().map_err(|_| reason::MALFORMED_SIGNATURE)?);
            }
            "t" => return Err(reason::MALFORMED_SIGNATURE),
            // An entry that is not hex cannot match: skipped, as ZITADEL's own parser does, so
            // another entry of the header may still carry the signature.
            "v1" => signatures.extend(hex::decode(value.trim()).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(reason::MALFORMED_SIGNATURE)?;
    if signatures.is_empty() {
        return Err(reason::MALFORMED_SIGNATURE);
    }
    if keys.is_empty() {
        return Err(reason::NO_KEY);
    }
    let signed = keys.iter().any(|key| {
        signatures.iter().any(|sig| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            mac.verify_slice(sig).is_ok()
        })
    });
    if !signed {
        return Err(reason::BAD_SIGNATURE);
    }
    if now_secs.abs_diff(t) > tolerance_secs.max(0) as u64 {
        return Err(reason::STALE);
    }
    Ok(())
}

/// What ZITADEL called for, read from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `function/<name>`.
    Function(String),
    Request(String),
    Response(String),
    Event(String),
}

impl Condition {
    /// The condition of a payload (None: not a ZITADEL Actions v2 payload).
    pub fn of(payload: &Value) -> Option<Condition> {
        if let Some(f) = payload.get("function").and_then(Value::as_str) {
            let name = f.strip_prefix("function/").unwrap_or(f);
            return Some(Condition::Function(name.to_string()));
        }
        if let Some(method) = payload.get("fullMethod").and_then(Value::as_str) {
            return Some(if payload.get("response").is_some() {
                Condition::Response(method.to_string())
            } else {
                Condition::Request(method.to_string())
            });
        }
        payload
            .get("event_type")
            .or_else(|| payload.get("eventType"))
            .and_then(Value::as_str)
            .map(|t| Condition::Event(t.to_string()))
    }

    /// As run records name it: `function/<name>`, `request/<fullMethod>`, `event/<type>`.
    pub fn label(&self) -> String {
        match self {
            Condition::Function(n) => format!("function/{n}"),
            Condition::Request(m) => format!("request/{}", m.trim_start_matches('/')),
            Condition::Response(m) => format!("response/{}", m.trim_start_matches('/')),
            Condition::Event(t) => format!("event/{t}"),
        }
    }

    /// The metrics label (bounded: no method names or event types).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Condition::Function(_) => "function",
            Condition::Request(_) => "request",
            Condition::Response(_) => "response",
            Condition::Event(_) => "event",
        }
    }
}

/// A call mapped to a v1 trigger: the trigger, its context and the ZITADEL org the call is for.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub trigger: Trigger,
    pub context: Value,
    pub zitadel_org: Option<String>,
    /// The ZITADEL user the call is about (for lookups and effects through the API), when known.
    pub user_id: Option<String>,
    pub warnings: Vec<String>,
}

/// Object keys to camelCase, recursively.
fn camel_keys(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (crate::domain::case::lower_camel(k), camel_keys(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(camel_keys).collect()),
        other => other.clone(),
    }
}

/// The first of `names` present in `obj`.
fn pick<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n)).filter(|v| !v.is_null())
}

/// A user grant in any of ZITADEL's spellings, as the `userGrants` items of an `_execute` context.
fn user_grant(g: &Value) -> Value {
    let Some(obj) = g.as_object() else { return json!({}) };
    let mut out = Map::new();
    let fields: [(&str, &[&str]); 6] = [
        ("id", &["id", "ID", "grant_id_self"]),
        ("projectId", &["project_id", "projectId", "ProjectID", "projectID"]),
        ("projectGrantId", &["grant_id", "grantId", "projectGrantId", "project_grant_id", "GrantID", "ProjectGrantID"]),
        ("projectName", &["project_name", "projectName", "ProjectName"]),
        ("roles", &["roles", "Roles"]),
        ("state", &["state", "State"]),
    ];
    for (name, spellings) in fields {
        if let Some(v) = pick(obj, spellings) {
            out.insert(name.to_string(), v.clone());
        }
    }
    Value::Object(out)
}

/// The ZITADEL org of a function call: the user's resource owner, else the org's id.
fn function_org(payload: &Value, warnings: &mut Vec<String>) -> Option<String> {
    let user_org = payload
        .get("user")
        .and_then(|u| u.get("resource_owner").or_else(|| u.get("resourceOwner")))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let org = payload.get("org").and_then(|o| o.get("id")).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let (Some(u), Some(o)) = (user_org, org) {
        if u != o {
            let text = format!("the user's organization {u} differs from the payload's org {o}; the user's is used");
            tracing::warn!("{text}");
            warnings.push(text);
        }
    }
    user_org.or(org).map(str::to_string)
}

/// Maps a function call. None for a function with no v1 trigger.
pub fn map_function(name: &str, payload: &Value) -> Option<Mapped> {
    let trigger = match name {
        "preuserinfo" => Trigger::PreUserinfoCreation,
        "preaccesstoken" => Trigger::PreAccessTokenCreation,
        "presamlresponse" => Trigger::PreSamlResponseCreation,
        _ => return None,
    };
    let mut warnings = Vec::new();
    let zitadel_org = function_org(payload, &mut warnings);
    let mut ctx = Map::new();
    if trigger != Trigger::PreSamlResponseCreation {
        // Claim names are kept as they are.
        if let Some(claims) = payload.get("userinfo").filter(|v| v.is_object()) {
            ctx.insert("claims".into(), claims.clone());
        }
        if let Some(client_id) =
            payload.get("application").and_then(|a| a.get("client_id").or_else(|| a.get("clientId")))
        {
            ctx.insert("application".into(), json!({"clientId": client_id}));
        }
        if let Some(actor) = payload.get("actor").filter(|v| !v.is_null()) {
            ctx.insert("actor".into(), actor.clone());
        }
    }
    if let Some(user) = payload.get("user").filter(|v| v.is_object()) {
        ctx.insert("user".into(), camel_keys(user));
    }
    if let Some(metadata) = payload.get("user_metadata").and_then(Value::as_array) {
        let items: Vec<Value> =
            metadata.iter().map(|m| json!({"key": m.get("key").cloned().unwrap_or(Value::Null), "value": m.get("value").cloned().unwrap_or(Value::Null)})).collect();
        ctx.insert("userMetadata".into(), Value::Array(items));
    }
    if let Some(grants) = payload.get("user_grants").and_then(Value::as_array) {
        ctx.insert("userGrants".into(), Value::Array(grants.iter().map(user_grant).collect()));
    }
    if let Some(org) = payload.get("org").filter(|v| v.is_object()) {
        ctx.insert("org".into(), camel_keys(org));
    }
    let user_id = payload.get("user").and_then(|u| u.get("id")).and_then(Value::as_str).map(str::to_string);
    Some(Mapped { trigger, context: Value::Object(ctx), zitadel_org, user_id, warnings })
}

/// Whether a request condition is user creation, and under which key its human user is
/// (`None`: the request itself, AddHumanUser; `Some("human")`: CreateUser).
fn user_creation(method: &str) -> Option<Option<&'static str>> {
    let (service, rpc) = method.trim_start_matches('/').split_once('/')?;
    if service != "zitadel.user.v2.UserService" && service != "zitadel.user.v2beta.UserService" {
        return None;
    }
    match rpc {
        "AddHumanUser" => Some(None),
        "CreateUser" => Some(Some("human")),
        _ => None,
    }
}

/// The human part of a user-creation request (the request, or its `human`).
fn human_part<'a>(request: &'a Value, under: Option<&str>) -> Option<&'a Value> {
    match under {
        None => Some(request),
        Some(key) => request.get(key).filter(|h| h.is_object()),
    }
}

/// Maps a request of AddHumanUser / CreateUser (with `human`) to Pre Creation: external when the
/// request links an identity provider, else internal. None for every other request.
pub fn map_request(method: &str, payload: &Value) -> Option<Mapped> {
    let under = user_creation(method)?;
    // Without a request message there is nothing to hand back (the call answers an empty body):
    // nothing runs.
    let request = payload.get("request").filter(|r| r.is_object())?;
    let human = human_part(request, under)?;
    let has_idp_links = human.get("idpLinks").and_then(Value::as_array).is_some_and(|l| !l.is_empty());
    let trigger = if has_idp_links { Trigger::ExternalPreCreation } else { Trigger::InternalPreCreation };
    let profile = human.get("profile").cloned().unwrap_or(Value::Null);
    let email = human.get("email").cloned().unwrap_or(Value::Null);
    let phone = human.get("phone").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, key: &str| v.get(key).cloned().unwrap_or(Value::String(String::new()));
    let gender = crate::runtime::api::enum_number(profile.get("gender"), crate::runtime::api::GENDERS);
    let user = json!({
        "username": request.get("username").cloned().unwrap_or(Value::String(String::new())),
        "human": {
            "firstName": text(&profile, "givenName"),
            "lastName": text(&profile, "familyName"),
            "nickName": text(&profile, "nickName"),
            "displayName": text(&profile, "displayName"),
            "preferredLanguage": text(&profile, "preferredLanguage"),
            "gender": gender,
            "email": text(&email, "email"),
            "isEmailVerified": email.get("isVerified").and_then(Value::as_bool).unwrap_or(false),
            "phone": text(&phone, "phone"),
            "isPhoneVerified": phone.get("isVerified").and_then(Value::as_bool).unwrap_or(false),
        },
    });
    let zitadel_org = request
        .get("organization")
        .and_then(|o| o.get("orgId"))
        .or_else(|| request.get("organizationId"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    // The request's metadata pre-fills `api.metadata` (an extension of the Pre Creation context).
    let mut context = json!({ "user": user });
    if let Some(metadata) = human.get("metadata").filter(|m| m.is_array()) {
        context["metadata"] = metadata.clone();
    }
    Some(Mapped { trigger, context, zitadel_org, user_id: None, warnings: Vec::new() })
}

/// The request ZITADEL goes on with: the received request with the fields the actions' setters
/// wrote (`fields_set`, paths of the `user` effect such as `user.human.nickName`) taken from the
/// `user` effect, and the metadata effects merged by key. A setter that wrote a zero value clears
/// the field (omitted, as protojson omits zero values; `isVerified` false); every field no setter
/// wrote stays as received.
pub fn request_reply(method: &str, request: &Value, effects: &Map<String, Value>, fields_set: &[String]) -> Value {
    let mut out = request.clone();
    let Some(under) = user_creation(method) else { return out };
    let user = effects.get("user").cloned().unwrap_or(Value::Null);
    let fields: Vec<&str> = fields_set.iter().filter_map(|f| f.strip_prefix("user.")).collect();
    apply_setters(&mut out, under, &user, &fields);
    let human_target = match under {
        None => Some(&mut out),
        Some(key) => out.get_mut(key),
    };
    if let Some(target) = human_target {
        merge_metadata(target, effects.get("metadata"));
    }
    out
}

/// `obj[key]` as an object, created when absent or null; None when `obj` is no object or the
/// member is something else (a malformed request is left as it is rather than overwritten).
fn member_object<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let member = obj.as_object_mut()?.entry(key).or_insert(Value::Null);
    if member.is_null() {
        *member = Value::Object(Map::new());
    }
    member.as_object_mut()
}

/// Sets `obj[parent][key]` (or `obj[key]`) to the string, or removes it when the string is empty
/// (protojson's zero value); nothing is created to remove a member from.
fn put_text(obj: &mut Value, parent: Option<&str>, key: &str, v: &str) {
    let target = match parent {
        Some(p) if v.is_empty() => obj.get_mut(p).and_then(Value::as_object_mut),
        Some(p) => member_object(obj, p),
        None => obj.as_object_mut(),
    };
    let Some(target) = target else { return };
    if v.is_empty() {
        target.remove(key);
    } else {
        target.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// Applies a user effect (`{username, human: {firstName, …}}`) to an AddHumanUser-shaped request
/// (under `human` for CreateUser), for the `fields` the setters wrote (`username`, `human.<field>`).
fn apply_setters(out: &mut Value, under: Option<&str>, user: &Value, fields: &[&str]) {
    let written = |path: &str| fields.contains(&path);
    if written("username") {
        put_text(out, None, "username", user.get("username").and_then(Value::as_str).unwrap_or(""));
    }
    let human = user.get("human").cloned().unwrap_or(Value::Null);
    let text = |field: &str| human.get(field).and_then(Value::as_str).unwrap_or("").to_string();
    let target = match under {
        None => out,
        Some(key) => match out.get_mut(key) {
            Some(t) if t.is_object() => t,
            _ => return,
        },
    };
    let profile = [
        ("firstName", "givenName"),
        ("lastName", "familyName"),
        ("nickName", "nickName"),
        ("displayName", "displayName"),
        ("preferredLanguage", "preferredLanguage"),
    ];
    for (from, to) in profile {
        if written(&format!("human.{from}")) {
            put_text(target, Some("profile"), to, &text(from));
        }
    }
    if written("human.gender") {
        let n = human.get("gender").and_then(Value::as_i64).unwrap_or(0);
        let name = usize::try_from(n).ok().filter(|n| *n > 0).and_then(|n| crate::runtime::api::GENDERS.get(n));
        put_text(target, Some("profile"), "gender", name.copied().unwrap_or(""));
    }
    for (field, verified) in [("email", "isEmailVerified"), ("phone", "isPhoneVerified")] {
        if written(&format!("human.{field}")) {
            put_text(target, Some(field), field, &text(field));
        }
        if !written(&format!("human.{verified}")) {
            continue;
        }
        let Some(obj) = target.get_mut(field).and_then(Value::as_object_mut) else { continue };
        if human.get(verified).and_then(Value::as_bool) == Some(true) {
            // Verified replaces the other verification choices (a oneof in ZITADEL's request).
            obj.remove("sendCode");
            obj.remove("returnCode");
            obj.insert("isVerified".into(), Value::Bool(true));
        } else {
            obj.remove("isVerified");
        }
    }
}

/// Merges metadata effects (`{key, value}`) into `target.metadata`: one entry per key, the last
/// write winning (at the place of the key's first entry), effects after the received entries.
/// Without metadata effects the received list stays as it is.
fn merge_metadata(target: &mut Value, set: Option<&Value>) {
    let Some(set) = set.and_then(Value::as_array).filter(|m| !m.is_empty()) else { return };
    let received = target.get("metadata").and_then(Value::as_array).cloned().unwrap_or_default();
    let written = set.iter().map(|item| {
        json!({"key": item.get("key").cloned().unwrap_or(Value::Null), "value": item.get("value").cloned().unwrap_or(Value::Null)})
    });
    let mut list: Vec<Value> = Vec::with_capacity(received.len() + set.len());
    for entry in received.into_iter().chain(written) {
        let key = entry.get("key").and_then(Value::as_str).map(str::to_string);
        let existing = key
            .as_deref()
            .and_then(|k| list.iter_mut().find(|m: &&mut Value| m.get("key").and_then(Value::as_str) == Some(k)));
        match existing {
            Some(e) => *e = entry,
            None => list.push(entry),
        }
    }
    if let Some(obj) = target.as_object_mut() {
        obj.insert("metadata".into(), Value::Array(list));
    }
}

/// Maps a password-check event to Internal Authentication / Post Authentication; None for other
/// events. The user is the event's aggregate; the ZITADEL org its resource owner.
pub fn map_event(event_type: &str, payload: &Value) -> Option<Mapped> {
    let auth_error = match event_type {
        "user.human.password.check.succeeded" => "none",
        "user.human.password.check.failed" => "password invalid",
        _ => return None,
    };
    let zitadel_org = payload
        .get("resourceOwner")
        .or_else(|| payload.get("resource_owner"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    let context = json!({"authMethod": "password", "authError": auth_error});
    let user_id = payload
        .get("aggregateID")
        .or_else(|| payload.get("aggregateId"))
        .or_else(|| payload.get("aggregate_id"))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    Some(Mapped { trigger: Trigger::InternalPostAuthentication, context, zitadel_org, user_id, warnings: Vec::new() })
}

/// The authentication method of a session request's checks, first in ZITADEL's order; None when
/// only the user or an IdP intent was checked.
fn session_auth_method(request: &Value) -> Option<&'static str> {
    let checks = request.get("checks")?;
    let checked = |key: &str| checks.get(key).is_some_and(|v| !v.is_null());
    [("password", "password"), ("totp", "OTP"), ("otpSms", "OTP SMS"), ("otpEmail", "OTP Email"), ("webAuthN", "U2F")]
        .into_iter()
        .find(|(key, _)| checked(key))
        .map(|(_, method)| method)
}

/// Maps the response of AddHumanUser / CreateUser to Post Creation (external with IdP links,
/// else internal): the request's user with the new id and its organization.
fn map_user_created(method: &str, payload: &Value) -> Option<Mapped> {
    let as_request = json!({"request": payload.get("request")?});
    let mut mapped = map_request(method, &as_request)?;
    mapped.trigger = match mapped.trigger {
        Trigger::ExternalPreCreation => Trigger::ExternalPostCreation,
        _ => Trigger::InternalPostCreation,
    };
    let response = payload.get("response").cloned().unwrap_or(Value::Null);
    if let Some(id) = response.get("userId").or_else(|| response.get("id")).and_then(Value::as_str) {
        mapped.context["user"]["id"] = Value::String(id.to_string());
        mapped.user_id = Some(id.to_string());
    }
    if let Some(obj) = mapped.context.as_object_mut() {
        obj.remove("metadata");
    }
    if mapped.zitadel_org.is_none() {
        mapped.zitadel_org = response
            .get("details")
            .and_then(|d| d.get("resourceOwner"))
            .and_then(Value::as_str)
            .filter(|o| !o.is_empty())
            .map(str::to_string);
    }
    if let Some(org) = &mapped.zitadel_org {
        mapped.context["user"]["resourceOwner"] = Value::String(org.clone());
    }
    Some(mapped)
}

/// Whether a method is RetrieveIdentityProviderIntent (v2 or v2beta).
fn is_intent(method: &str) -> bool {
    matches!(
        method.trim_start_matches('/').split_once('/'),
        Some(("zitadel.user.v2.UserService" | "zitadel.user.v2beta.UserService", "RetrieveIdentityProviderIntent"))
    )
}

/// The payload of a JWT, decoded and not verified (ZITADEL verified the id token).
fn jwt_claims(token: &str) -> Option<Value> {
    use base64::Engine;
    let part = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok().filter(Value::is_object)
}

/// The v1 `externalUser.human` of an AddHumanUser-shaped object (`addHumanUser` of an intent).
fn external_human(add: &Value) -> Value {
    let profile = add.get("profile").cloned().unwrap_or(Value::Null);
    let email = add.get("email").cloned().unwrap_or(Value::Null);
    let phone = add.get("phone").cloned().unwrap_or(Value::Null);
    let text = |v: &Value, key: &str| v.get(key).cloned().unwrap_or(Value::String(String::new()));
    json!({
        "firstName": text(&profile, "givenName"),
        "lastName": text(&profile, "familyName"),
        "nickName": text(&profile, "nickName"),
        "displayName": text(&profile, "displayName"),
        "preferredLanguage": text(&profile, "preferredLanguage"),
        "email": text(&email, "email"),
        "isEmailVerified": email.get("isVerified").and_then(Value::as_bool).unwrap_or(false),
        "phone": text(&phone, "phone"),
        "isPhoneVerified": phone.get("isVerified").and_then(Value::as_bool).unwrap_or(false),
    })
}

/// Maps the response of RetrieveIdentityProviderIntent to External Authentication / Post
/// Authentication: the external user from the IdP information and `addHumanUser`.
fn map_intent(payload: &Value) -> Option<Mapped> {
    let response = payload.get("response")?;
    let info = response.get("idpInformation").cloned().unwrap_or(Value::Null);
    let add = response.get("addHumanUser").filter(|a| a.is_object());
    let mut external = json!({
        "externalId": info.get("userId").cloned().unwrap_or(Value::String(String::new())),
        "externalIdpId": info.get("idpId").cloned().unwrap_or(Value::String(String::new())),
        "preferredUsername": info.get("userName").cloned().unwrap_or(Value::String(String::new())),
    });
    if let Some(add) = add {
        external["human"] = external_human(add);
        if let Some(metadata) = add.get("metadata").filter(|m| m.is_array()) {
            external["metadata"] = metadata.clone();
        }
    }
    let oauth = info.get("oauth").cloned().unwrap_or(Value::Null);
    let mut context = json!({"externalUser": external, "authError": "none"});
    if let Some(raw) = info.get("rawInformation").filter(|r| r.is_object()) {
        context["providerInfo"] = raw.clone();
    }
    for (from, to) in [("accessToken", "accessToken"), ("idToken", "idToken")] {
        if let Some(t) = oauth.get(from).and_then(Value::as_str) {
            context[to] = Value::String(t.to_string());
        }
    }
    if let Some(claims) = oauth.get("idToken").and_then(Value::as_str).and_then(jwt_claims) {
        context["idTokenClaims"] = claims;
    }
    let zitadel_org = add
        .and_then(|a| a.get("organization"))
        .and_then(|o| o.get("orgId"))
        .and_then(Value::as_str)
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    let user_id = response.get("userId").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string);
    Some(Mapped { trigger: Trigger::ExternalPostAuthentication, context, zitadel_org, user_id, warnings: Vec::new() })
}

/// The intent's response with `addHumanUser` changed by the external user the actions left, for
/// the fields the setters wrote (`fields_set`, paths of the `externalUser` effect): names, email and
/// phone with their verification, and `username` from `preferredUsername` only when
/// `setPreferredUsername` ran; the metadata effects merged into `addHumanUser.metadata`.
pub fn intent_reply(payload: &Value, effects: &Map<String, Value>, fields_set: &[String]) -> Value {
    let mut out = payload.get("response").cloned().unwrap_or_else(|| json!({}));
    if !out.get("addHumanUser").is_some_and(Value::is_object) {
        return out;
    }
    let external = effects.get("externalUser").cloned().unwrap_or(Value::Null);
    let user = json!({
        "username": external.get("preferredUsername").cloned().unwrap_or(Value::Null),
        "human": external.get("human").cloned().unwrap_or(Value::Null),
    });
    let fields: Vec<&str> = fields_set
        .iter()
        .filter_map(|f| f.strip_prefix("externalUser."))
        .map(|f| if f == "preferredUsername" { "username" } else { f })
        .collect();
    let add = &mut out["addHumanUser"];
    apply_setters(add, None, &user, &fields);
    merge_metadata(add, effects.get("metadata"));
    out
}

/// Maps the response of CreateSession / SetSession to Internal Authentication / Post
/// Authentication, with the authentication method from the request's checks; and the response of
/// RetrieveIdentityProviderIntent to External Authentication / Post Authentication.
pub fn map_response(method: &str, payload: &Value) -> Option<Mapped> {
    // Without a response message there is nothing to hand back (the call answers an empty body):
    // nothing runs.
    if !payload.get("response").is_some_and(Value::is_object) {
        return None;
    }
    if is_intent(method) {
        return map_intent(payload);
    }
    if user_creation(method).is_some() {
        return map_user_created(method, payload);
    }
    if !is_session(method) {
        return None;
    }
    let auth_method = session_auth_method(payload.get("request")?)?;
    let context = json!({"authMethod": auth_method, "authError": "none"});
    // The user's organization needs a lookup through the ZITADEL API (`resolve`); without it the
    // connection's default organization runs.
    let user_id = session_checked_user(payload);
    Some(Mapped {
        trigger: Trigger::InternalPostAuthentication,
        context,
        zitadel_org: None,
        user_id,
        warnings: Vec::new(),
    })
}

/// Whether a method is CreateSession or SetSession (v2 or v2beta).
pub fn is_session(method: &str) -> bool {
    matches!(
        method.trim_start_matches('/').split_once('/'),
        Some((
            "zitadel.session.v2.SessionService" | "zitadel.session.v2beta.SessionService",
            "CreateSession" | "SetSession"
        ))
    )
}

/// The user id a session request checked (`request.checks.user.userId`).
pub fn session_checked_user(payload: &Value) -> Option<String> {
    payload.pointer("/request/checks/user/userId").and_then(Value::as_str).filter(|u| !u.is_empty()).map(str::to_string)
}

/// The session id of a CreateSession response or a SetSession request.
pub fn session_id(payload: &Value) -> Option<String> {
    payload
        .pointer("/response/sessionId")
        .or_else(|| payload.pointer("/request/sessionId"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The authentication method of a session call's checks (`request.checks`) as the session
/// (`GET /v2/sessions/{id}`) verified them. The factors the call checked come first (in ZITADEL's
/// order), the session telling how a WebAuthN check went (passwordless when the user was
/// verified, else U2F): a TOTP step after the password is `"OTP"`, as v1 ran Post Authentication
/// once per verified step with that step's method. Checks of only the user or an IdP intent take
/// the session's verified factors. A call without checks (a challenge request, a new lifetime)
/// verified nothing: None, it passes through.
pub fn checked_factors_auth_method(session: &Value, request: &Value) -> Option<&'static str> {
    if !checks_something(request) {
        return None;
    }
    match session_auth_method(request) {
        Some("U2F") if session.pointer("/factors/webAuthN/userVerified").and_then(Value::as_bool) == Some(true) => {
            Some("passwordless")
        }
        Some(method) => Some(method),
        None => factors_auth_method(session),
    }
}

/// Whether a session request checks anything (`request.checks` with a member that is not `null`).
pub fn checks_something(request: &Value) -> bool {
    request.get("checks").and_then(Value::as_object).is_some_and(|c| c.values().any(|v| !v.is_null()))
}

/// The authentication method of a session's verified factors, first in ZITADEL's order; None
/// when only the user or an IdP intent was verified.
fn factors_auth_method(session: &Value) -> Option<&'static str> {
    let factors = session.get("factors")?;
    let verified = |key: &str| factors.get(key).is_some_and(|v| v.is_object());
    if verified("password") {
        return Some("password");
    }
    for (key, method) in [("totp", "OTP"), ("otpSms", "OTP SMS"), ("otpEmail", "OTP Email")] {
        if verified(key) {
            return Some(method);
        }
    }
    let webauthn = factors.get("webAuthN").filter(|v| v.is_object())?;
    Some(if webauthn.get("userVerified").and_then(Value::as_bool) == Some(true) { "passwordless" } else { "U2F" })
}

/// The reply of a function call from the trigger's effects. `runs` are the action names in
/// run order (for their log claims).
pub fn function_reply(trigger: Trigger, effects: &Map<String, Value>, action_names: &[String]) -> Value {
    let mut out = Map::new();
    if let Some(metadata) = effects.get("metadata").and_then(Value::as_array).filter(|m| !m.is_empty()) {
        let set: Vec<Value> = metadata
            .iter()
            .map(|m| json!({"key": m.get("key").cloned().unwrap_or(Value::Null), "value": m.get("value").cloned().unwrap_or(Value::Null)}))
            .collect();
        out.insert("set_user_metadata".into(), Value::Array(set));
    }
    if trigger == Trigger::PreSamlResponseCreation {
        if let Some(attrs) = effects.get("attributes").and_then(Value::as_array).filter(|a| !a.is_empty()) {
            let list: Vec<Value> = attrs
                .iter()
                .map(|a| {
                    json!({
                        "name": a.get("name").cloned().unwrap_or(Value::Null),
                        "name_format": a.get("nameFormat").cloned().unwrap_or(Value::String(String::new())),
                        "value": a.get("values").cloned().unwrap_or(json!([])),
                    })
                })
                .collect();
            out.insert("append_attribute".into(), Value::Array(list));
        }
        return Value::Object(out);
    }
    let claims = effects.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
    let log_key = |name: &str| format!("urn:zitadel:iam:action:{name}:log");
    let log_keys: Vec<String> = action_names.iter().map(|n| log_key(n)).collect();
    let append: Vec<Value> =
        claims.iter().filter(|(k, _)| !log_keys.contains(k)).map(|(k, v)| json!({"key": k, "value": v})).collect();
    let mut logs = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in action_names {
        if !seen.insert(name) {
            continue;
        }
        if let Some(entries) = claims.get(&log_key(name)).and_then(Value::as_array) {
            for e in entries {
                let text = e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string());
                logs.push(Value::String(format!("{name}: {text}")));
            }
        }
    }
    if !append.is_empty() {
        out.insert("append_claims".into(), Value::Array(append));
    }
    if !logs.is_empty() {
        out.insert("append_log_claims".into(), Value::Array(logs));
    }
    Value::Object(out)
}

/// What ZITADEL gets when the actions failed on a function or request condition.
pub fn forwarded_error(message: &str) -> Value {
    json!({"forwardedStatusCode": 400, "forwardedErrorMessage": message})
}

/// The pass-through reply: the request or response object, `{}` for functions and events. A
/// request or response condition whose payload holds no message object to hand back gets `null`,
/// which is answered as an empty body: ZITADEL applies only a non-empty reply, and `{}` (or a
/// value that is not a message) would reset the message.
pub fn pass_through(condition: Option<&Condition>, payload: &Value) -> Value {
    let message = |name: &str| payload.get(name).filter(|v| v.is_object()).cloned().unwrap_or(Value::Null);
    match condition {
        Some(Condition::Request(_)) => message("request"),
        Some(Condition::Response(_)) => message("response"),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(key: &str, t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn pass_through_hands_back_only_a_message() {
        let method = "/zitadel.user.v2.UserService/AddHumanUser";
        let cases = [
            (json!({"fullMethod": method, "request": {"a": 1}}), json!({"a": 1})),
            (json!({"fullMethod": method}), Value::Null),
            (json!({"fullMethod": method, "request": null}), Value::Null),
            (json!({"fullMethod": method, "request": [1, 2]}), Value::Null),
            (json!({"fullMethod": method, "request": {}, "response": {"b": 2}}), json!({"b": 2})),
            (json!({"fullMethod": method, "request": {}, "response": null}), Value::Null),
            (json!({"function": "function/preuserinfo"}), json!({})),
        ];
        for (payload, expected) in cases {
            assert_eq!(pass_through(Condition::of(&payload).as_ref(), &payload), expected, "{payload}");
        }
    }

    #[test]
    fn condition_labels_have_one_slash_after_the_kind() {
        let method = "/zitadel.user.v2.UserService/AddHumanUser";
        assert_eq!(Condition::Request(method.into()).label(), "request/zitadel.user.v2.UserService/AddHumanUser");
        let bare = method.trim_start_matches('/');
        assert_eq!(Condition::Response(bare.into()).label(), "response/zitadel.user.v2.UserService/AddHumanUser");
        assert_eq!(Condition::Function("preuserinfo".into()).label(), "function/preuserinfo");
    }

    #[test]
    fn signatures_are_checked_like_zitadel_signs_them() {
        let keys = vec!["old-key-0123456789".to_string(), "new-key-0123456789".to_string()];
        let body = br#"{"function":"function/preuserinfo"}"#;
        let now = 1_700_000_000;
        let good = format!("t={now},v1={}", sign(&keys[1], now, body));
        assert_eq!(verify_signature(Some(&good), body, &keys, 300, now), Ok(()));
        // Several v1 entries: one matching is enough.
        let two = format!("t={now},v1={},v1={}", sign("other-key-000000000", now, body), sign(&keys[0], now, body));
        assert_eq!(verify_signature(Some(&two), body, &keys, 300, now), Ok(()));
        let odd_entry = format!("t={now},v1=zz,v1={}", sign(&keys[0], now, body));
        assert_eq!(verify_signature(Some(&odd_entry), body, &keys, 300, now), Ok(()), "a non-hex entry is skipped");
        assert_eq!(verify_signature(Some(&good), b"{}", &keys, 300, now), Err(reason::BAD_SIGNATURE));
        assert_eq!(verify_signature(Some(&good), body, &keys, 300, now + 301), Err(reason::STALE));
        assert_eq!(verify_signature(Some(&good), body, &keys, 300, now - 301), Err(reason::STALE), "future too");
        assert_eq!(verify_signature(Some(&good), body, &[], 300, now), Err(reason::NO_KEY));
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz", "garbage", "t=1,t=2,v1=00"] {
            assert_eq!(verify_signature(Some(bad), body, &keys, 300, now), Err(reason::MALFORMED_SIGNATURE), "{bad}");
        }
        assert_eq!(verify_signature(None, body, &keys, 300, now), Err(reason::MALFORMED_SIGNATURE));
    }

    #[test]
    fn function_payloads_map_to_the_v1_context() {
        let payload = json!({
            "function": "function/preaccesstoken",
            "userinfo": {"sub": "u1", "email": "a@b.c"},
            "user": {"id": "u1", "resource_owner": "zorg", "human": {"first_name": "Ann", "gender": 1}, "state": 1},
            "user_metadata": [{"key": "k", "value": "dg=="}],
            "org": {"id": "zorg", "primary_domain": "b.c", "name": "B"},
            "user_grants": [{"project_id": "p1", "grant_id": "g1", "roles": ["r"]}, {"ProjectID": "p2", "GrantID": "g2"}],
            "application": {"client_id": "c1"},
        });
        let Some(Condition::Function(name)) = Condition::of(&payload) else { panic!("a function") };
        let m = map_function(&name, &payload).expect("mapped");
        assert_eq!(m.trigger, Trigger::PreAccessTokenCreation);
        assert_eq!(m.zitadel_org.as_deref(), Some("zorg"));
        assert_eq!(m.context["claims"], json!({"sub": "u1", "email": "a@b.c"}));
        assert_eq!(m.context["user"]["human"]["firstName"], "Ann");
        assert_eq!(m.context["user"]["resourceOwner"], "zorg");
        assert_eq!(m.context["userMetadata"], json!([{"key": "k", "value": "dg=="}]));
        assert_eq!(
            m.context["userGrants"],
            json!([{"projectId": "p1", "projectGrantId": "g1", "roles": ["r"]}, {"projectId": "p2", "projectGrantId": "g2"}])
        );
        assert_eq!(m.context["org"]["primaryDomain"], "b.c");
        assert_eq!(m.context["application"], json!({"clientId": "c1"}));
        assert!(map_function("unknown", &payload).is_none());
    }

    #[test]
    fn user_creation_requests_map_to_pre_creation_and_back() {
        let payload = json!({
            "fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
            "request": {
                "username": "ann", "organization": {"orgId": "zorg"},
                "profile": {"givenName": "Ann", "familyName": "Lee", "gender": "GENDER_FEMALE"},
                "email": {"email": "ann@example.com", "sendCode": {}},
                "metadata": [{"key": "a", "value": "MQ=="}],
                "password": {"password": "secret"}
            }
        });
        let Some(Condition::Request(method)) = Condition::of(&payload) else { panic!("a request") };
        let m = map_request(&method, &payload).expect("mapped");
        assert_eq!(m.trigger, Trigger::InternalPreCreation);
        assert_eq!(m.zitadel_org.as_deref(), Some("zorg"));
        assert_eq!(m.context["user"]["human"]["firstName"], "Ann");
        assert_eq!(m.context["user"]["human"]["gender"], 1);
        assert_eq!(m.context["user"]["human"]["isEmailVerified"], false);
        let effects = json!({
            "user": {"username": "ann.lee", "human": {"firstName": "Anna", "lastName": "Lee", "gender": 3,
                     "email": "anna@example.com", "isEmailVerified": true}},
            "metadata": [{"key": "a", "value": "Mg=="}, {"key": "b", "value": "Mw=="}],
        });
        let set: Vec<String> = [
            "user.username",
            "user.human.firstName",
            "user.human.gender",
            "user.human.email",
            "user.human.isEmailVerified",
        ]
        .map(String::from)
        .to_vec();
        let reply = request_reply(&method, &payload["request"], effects.as_object().unwrap(), &set);
        assert_eq!(reply["username"], "ann.lee");
        assert_eq!(reply["profile"], json!({"givenName": "Anna", "familyName": "Lee", "gender": "GENDER_DIVERSE"}));
        assert_eq!(reply["email"], json!({"email": "anna@example.com", "isVerified": true}));
        assert_eq!(reply["metadata"], json!([{"key": "a", "value": "Mg=="}, {"key": "b", "value": "Mw=="}]));
        assert_eq!(reply["password"], json!({"password": "secret"}), "every other field kept");
        // CreateUser: the same under `human`; an IdP link makes it external.
        let create = json!({"fullMethod": "/zitadel.user.v2.UserService/CreateUser", "request": {
            "organizationId": "zorg", "username": "bo", "human": {"profile": {"givenName": "Bo"},
            "email": {"email": "bo@example.com"}, "idpLinks": [{"idpId": "i", "userId": "u"}]}}});
        let m = map_request("/zitadel.user.v2.UserService/CreateUser", &create).expect("mapped");
        assert_eq!(m.trigger, Trigger::ExternalPreCreation);
        let reply = request_reply(
            "/zitadel.user.v2.UserService/CreateUser",
            &create["request"],
            json!({"user": {"human": {"firstName": "Bob"}}}).as_object().unwrap(),
            &["user.human.firstName".to_string()],
        );
        assert_eq!(reply["human"]["profile"]["givenName"], "Bob");
        // A field no setter wrote stays as received, even where the effect differs.
        let reply = request_reply(
            "/zitadel.user.v2.UserService/CreateUser",
            &create["request"],
            json!({"user": {"human": {"firstName": "Bob"}}}).as_object().unwrap(),
            &[],
        );
        assert_eq!(reply, create["request"]);
        assert!(map_request("/zitadel.user.v2.UserService/ListUsers", &create).is_none());
    }

    #[test]
    fn setters_writing_zero_values_clear_the_request_fields() {
        let request = json!({
            "username": "bob", "organization": {"orgId": "z1"},
            "profile": {"givenName": "Bob", "nickName": "nick", "displayName": "disp", "gender": "GENDER_FEMALE"},
            "email": {"email": "bob@x.y", "isVerified": true},
            "phone": {"phone": "+41", "isVerified": true},
        });
        // The effect as the runtime leaves it: zero values omitted.
        let effects =
            json!({"user": {"username": "bob", "human": {"firstName": "Bob", "email": "bob@x.y", "phone": "+41"}}});
        let set: Vec<String> = [
            "user.human.nickName",
            "user.human.displayName",
            "user.human.isEmailVerified",
            "user.human.isPhoneVerified",
            "user.human.gender",
        ]
        .map(String::from)
        .to_vec();
        let method = "/zitadel.user.v2.UserService/AddHumanUser";
        let reply = request_reply(method, &request, effects.as_object().unwrap(), &set);
        assert_eq!(reply["profile"], json!({"givenName": "Bob"}));
        assert_eq!(reply["email"], json!({"email": "bob@x.y"}));
        assert_eq!(reply["phone"], json!({"phone": "+41"}));
        assert_eq!(reply["username"], "bob");
        // An empty username and a cleared field of a part the request lacks create nothing.
        let set: Vec<String> = ["user.username", "user.human.phone"].map(String::from).to_vec();
        let no_phone = json!({"username": "bob", "profile": {"givenName": "Bob"}});
        let reply = request_reply(method, &no_phone, &Map::new(), &set);
        assert_eq!(reply, json!({"profile": {"givenName": "Bob"}}));
        // setEmailVerified(false) keeps a requested code.
        let with_code = json!({"email": {"email": "a@b.c", "sendCode": {}}});
        let reply = request_reply(method, &with_code, &Map::new(), &["user.human.isEmailVerified".to_string()]);
        assert_eq!(reply, with_code);
    }

    #[test]
    fn merged_metadata_holds_one_entry_per_key() {
        let request = json!({"human": {"metadata": [
            {"key": "dup", "value": "ImEi"}, {"key": "other", "value": "MQ=="}, {"key": "dup", "value": "ImIi"}]}});
        let effects = json!({"metadata": [{"key": "dup", "value": "Im5ldyI="}, {"key": "new", "value": "Mg=="}]});
        let reply =
            request_reply("/zitadel.user.v2.UserService/CreateUser", &request, effects.as_object().unwrap(), &[]);
        assert_eq!(
            reply["human"]["metadata"],
            json!([{"key": "dup", "value": "Im5ldyI="}, {"key": "other", "value": "MQ=="}, {"key": "new", "value": "Mg=="}])
        );
        // Without metadata effects the received list is kept as it is.
        let reply = request_reply("/zitadel.user.v2.UserService/CreateUser", &request, &Map::new(), &[]);
        assert_eq!(reply, request);
    }

    #[test]
    fn password_checks_and_sessions_map_to_internal_post_authentication() {
        let event =
            json!({"aggregateID": "312", "resourceOwner": "zorg", "event_type": "user.human.password.check.failed"});
        let Some(Condition::Event(t)) = Condition::of(&event) else { panic!("an event") };
        let m = map_event(&t, &event).expect("mapped");
        assert_eq!(m.trigger, Trigger::InternalPostAuthentication);
        assert_eq!(m.context, json!({"authMethod": "password", "authError": "password invalid"}));
        assert_eq!(m.zitadel_org.as_deref(), Some("zorg"));
        assert!(map_event("user.human.added", &event).is_none());
        let session = |checks: Value| {
            json!({"fullMethod": "/zitadel.session.v2.SessionService/CreateSession",
                   "request": {"checks": checks}, "response": {"sessionId": "s1"}})
        };
        let method = "/zitadel.session.v2.SessionService/CreateSession";
        let auth = |p: &Value| map_response(method, p).map(|m| m.context["authMethod"].clone());
        assert_eq!(
            auth(&session(json!({"user": {"loginName": "a"}, "password": {"password": "x"}}))),
            Some(json!("password"))
        );
        assert_eq!(auth(&session(json!({"otpEmail": {"code": "1"}, "totp": {"code": "2"}}))), Some(json!("OTP")));
        assert_eq!(auth(&session(json!({"webAuthN": {}}))), Some(json!("U2F")));
        assert_eq!(auth(&session(json!({"user": {"loginName": "a"}}))), None, "only a user check: pass-through");
        assert!(map_response("/zitadel.user.v2.UserService/ListUsers", &session(json!({"password": {}}))).is_none());
    }

    #[test]
    fn identity_provider_intents_map_to_external_post_authentication() {
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":"ext-1","hd":"example.com"}"#);
        let id_token = format!("eyJhbGciOiJSUzI1NiJ9.{claims}.c2ln");
        let payload = json!({
            "fullMethod": "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent",
            "request": {"idpIntentId": "i1", "idpIntentToken": "t"},
            "response": {
                "details": {"sequence": "1"},
                "idpInformation": {"idpId": "idp1", "userId": "ext-1", "userName": "ann@idp",
                    "oauth": {"accessToken": "at", "idToken": id_token}, "rawInformation": {"hd": "example.com"}},
                "addHumanUser": {"username": "ann@idp", "organization": {"orgId": "zorg"},
                    "profile": {"givenName": "Ann", "familyName": "Lee"}, "email": {"email": "ann@example.com"},
                    "idpLinks": [{"idpId": "idp1", "userId": "ext-1"}]}
            }
        });
        let Some(Condition::Response(method)) = Condition::of(&payload) else { panic!("a response") };
        let m = map_response(&method, &payload).expect("mapped");
        assert_eq!(m.trigger, Trigger::ExternalPostAuthentication);
        assert_eq!(m.zitadel_org.as_deref(), Some("zorg"));
        assert_eq!(m.context["externalUser"]["externalId"], "ext-1");
        assert_eq!(m.context["externalUser"]["human"]["firstName"], "Ann");
        assert_eq!(m.context["idTokenClaims"], json!({"sub": "ext-1", "hd": "example.com"}));
        assert_eq!(m.context["providerInfo"], json!({"hd": "example.com"}));
        assert_eq!(m.context["accessToken"], "at");
        let effects = json!({
            "externalUser": {"preferredUsername": "ann.lee", "human": {"firstName": "Anna", "email": "ann@example.com", "isEmailVerified": true}},
            "metadata": [{"key": "team", "value": "YQ=="}],
        });
        let set: Vec<String> =
            ["externalUser.preferredUsername", "externalUser.human.firstName", "externalUser.human.isEmailVerified"]
                .map(String::from)
                .to_vec();
        let reply = intent_reply(&payload, effects.as_object().unwrap(), &set);
        let add = &reply["addHumanUser"];
        assert_eq!(add["username"], "ann.lee");
        assert_eq!(add["profile"]["givenName"], "Anna");
        assert_eq!(add["email"], json!({"email": "ann@example.com", "isVerified": true}));
        assert_eq!(add["metadata"], json!([{"key": "team", "value": "YQ=="}]));
        assert_eq!(add["idpLinks"], payload["response"]["addHumanUser"]["idpLinks"], "kept");
        assert_eq!(reply["details"], json!({"sequence": "1"}));
        // No setPreferredUsername: the username stays; an empty one clears it.
        let other = json!({"externalUser": {"preferredUsername": "other"}});
        assert_eq!(intent_reply(&payload, other.as_object().unwrap(), &[])["addHumanUser"]["username"], "ann@idp");
        let cleared = json!({"externalUser": {"human": {"firstName": "Ann"}}});
        let reply = intent_reply(
            &payload,
            cleared.as_object().unwrap(),
            &["externalUser.preferredUsername".to_string(), "externalUser.human.lastName".to_string()],
        );
        assert!(reply["addHumanUser"].get("username").is_none(), "{reply}");
        assert_eq!(reply["addHumanUser"]["profile"], json!({"givenName": "Ann"}));
    }

    #[test]
    fn user_creation_responses_map_to_post_creation() {
        let payload = json!({
            "fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
            "request": {"username": "ann", "profile": {"givenName": "Ann"}, "email": {"email": "a@b.c"}},
            "response": {"userId": "u9", "details": {"sequence": "1", "resourceOwner": "zorg"}}
        });
        let Some(Condition::Response(method)) = Condition::of(&payload) else { panic!("a response") };
        let m = map_response(&method, &payload).expect("mapped");
        assert_eq!(m.trigger, Trigger::InternalPostCreation);
        assert_eq!(m.zitadel_org.as_deref(), Some("zorg"), "the response's resource owner");
        assert_eq!(m.context["user"]["id"], "u9");
        assert_eq!(m.context["user"]["resourceOwner"], "zorg");
        assert_eq!(m.context["user"]["human"]["firstName"], "Ann");
    }

    #[test]
    fn replies_follow_zitadels_function_response() {
        let effects = json!({
            "claims": {"tenant": "t1", "urn:zitadel:iam:action:a:log": ["one", "two"], "urn:zitadel:iam:action:b:log": ["three"]},
            "metadata": [{"key": "k", "value": "dg=="}],
        });
        let reply = function_reply(
            Trigger::PreAccessTokenCreation,
            effects.as_object().unwrap(),
            &["b".to_string(), "a".to_string()],
        );
        assert_eq!(
            reply,
            json!({
                "append_claims": [{"key": "tenant", "value": "t1"}],
                "append_log_claims": ["b: three", "a: one", "a: two"],
                "set_user_metadata": [{"key": "k", "value": "dg=="}],
            })
        );
        let saml = json!({"attributes": [{"name": "n", "nameFormat": "f", "values": ["v"]}]});
        assert_eq!(
            function_reply(Trigger::PreSamlResponseCreation, saml.as_object().unwrap(), &[]),
            json!({"append_attribute": [{"name": "n", "name_format": "f", "value": ["v"]}]})
        );
        assert_eq!(function_reply(Trigger::PreUserinfoCreation, &Map::new(), &[]), json!({}));
    }
}
