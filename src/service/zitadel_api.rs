//! The connector's calls into a ZITADEL instance's API (README, "Use actionsd with ZITADEL"):
//! lookups during a call (a user's organization, a session's factors, org and user metadata, the
//! JWKS that JWT payloads are verified against), each behind a short cache, and the requests
//! that apply effects (AddUserGrant, SetUserMetadata), which the delivery queue sends.
//! Every call goes through the guarded HTTP client (deny/allow lists as for targets).

use crate::v2::call::{self as v2call, Answer, CallFailure};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a user's organization is remembered.
pub const USER_ORG_TTL: Duration = Duration::from_secs(300);
/// How long org and user metadata are remembered.
pub const METADATA_TTL: Duration = Duration::from_secs(30);
/// How long ZITADEL's signing keys are remembered (an unknown `kid` refetches at once).
pub const JWKS_TTL: Duration = Duration::from_secs(300);
/// The timeout of one effect request.
pub const EFFECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most metadata entries read per org or user.
const METADATA_LIMIT: u64 = 1000;

/// The API settings of one connection, with the token decrypted.
#[derive(Clone, Debug)]
pub struct Access {
    pub connection_id: i64,
    pub base_url: String,
    pub token: Option<String>,
}

impl Access {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url.trim_end_matches('/'), path)
    }

    fn cache_key(&self, item: String) -> (i64, String, String) {
        (self.connection_id, self.base_url.trim_end_matches('/').to_string(), item)
    }
}

/// Values remembered for a while; entries past their age are dropped when the map grows.
struct TtlCache<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn new(ttl: Duration) -> Self {
        TtlCache { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
        }
        entries.insert(key, (Instant::now(), value));
    }
}

/// Lookups and effect requests against ZITADEL, shared by every connector call.
pub struct ZitadelApi {
    client: reqwest::Client,
    /// The deny/allow lists of targets, checked on every URL before the call.
    policy: Arc<crate::runtime::http::NetPolicy>,
    /// Keyed by connection, the ZITADEL it points at and the user (or `org:`/`user:` id): a
    /// connection repointed to another ZITADEL never reads the answers of the one before.
    user_orgs: TtlCache<(i64, String, String), Option<String>>,
    metadata: TtlCache<(i64, String, String), Arc<Vec<Value>>>,
    jwks: TtlCache<String, Arc<Vec<Value>>>,
}

/// What one lookup answered, or why it did not.
pub type Lookup<T> = Result<T, String>;

impl ZitadelApi {
    pub fn new(client: reqwest::Client, policy: Arc<crate::runtime::http::NetPolicy>) -> Self {
        ZitadelApi {
            client,
            policy,
            user_orgs: TtlCache::new(USER_ORG_TTL),
            metadata: TtlCache::new(METADATA_TTL),
            jwks: TtlCache::new(JWKS_TTL),
        }
    }

    /// One call with the connection's token, within the deadline (and at most 10 s).
    async fn call(
        &self,
        access: &Access,
        method: reqwest::Method,
        path: &str,
        org: Option<&str>,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Lookup<Answer> {
        let left = deadline.saturating_duration_since(Instant::now()).min(EFFECT_TIMEOUT);
        if left.is_zero() {
            return Err("callTimeout reached before the ZITADEL API answered".into());
        }
        let request = self.request(access, method, path, org, body)?;
        v2call::exchange(request, left).await.map_err(|e| e.describe())
    }

    fn request(
        &self,
        access: &Access,
        method: reqwest::Method,
        path: &str,
        org: Option<&str>,
        body: Option<&Value>,
    ) -> Lookup<reqwest::RequestBuilder> {
        let url = access.url(path);
        let parsed = url::Url::parse(&url).map_err(|e| format!("invalid zitadelApi.baseUrl: {e}"))?;
        self.policy.check_url(&parsed)?;
        let mut request = self.client.request(method, parsed).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = access.token.as_deref().filter(|t| !t.is_empty()) {
            request = request.bearer_auth(token);
        }
        if let Some(org) = org.filter(|o| !o.is_empty()) {
            request = request.header("x-zitadel-orgid", org);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Ok(request)
    }

    /// A 2xx answer's JSON body; anything else as an error text naming what was asked.
    fn json_of(what: &str, answer: Answer) -> Lookup<Value> {
        if !(200..300).contains(&answer.status) {
            let snippet: String = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
            return Err(format!("{what}: HTTP {} {snippet}", answer.status).trim_end().to_string());
        }
        serde_json::from_slice(&answer.body).map_err(|e| format!("{what}: the answer is not JSON: {e}"))
    }

    /// The organization a user belongs to (`GET /v2/users/{id}` → `user.details.resourceOwner`);
    /// `Ok(None)` when ZITADEL does not know the user.
    pub async fn user_org(&self, access: &Access, user_id: &str, deadline: Instant) -> Lookup<Option<String>> {
        let key = access.cache_key(user_id.to_string());
        if let Some(org) = self.user_orgs.get(&key) {
            return Ok(org);
        }
        let path = format!("/v2/users/{}", path_id("looking up the user", user_id)?);
        let answer = self.call(access, reqwest::Method::GET, &path, None, None, deadline).await?;
        if answer.status == 404 {
            self.user_orgs.put(key, None);
            return Ok(None);
        }
        let body = Self::json_of("looking up the user", answer)?;
        let org = body
            .pointer("/user/details/resourceOwner")
            .or_else(|| body.pointer("/user/details/resource_owner"))
            .and_then(Value::as_str)
            .filter(|o| !o.is_empty())
            .map(str::to_string);
        self.user_orgs.put(key, org.clone());
        Ok(org)
    }

    /// A session as ZITADEL shows it (`GET /v2/sessions/{id}` → `session`), not cached: its
    /// factors change with every check.
    pub async fn session(&self, access: &Access, session_id: &str, deadline: Instant) -> Lookup<Value> {
        let path = format!("/v2/sessions/{}", path_id("looking up the session", session_id)?);
        let answer = self.call(access, reqwest::Method::GET, &path, None, None, deadline).await?;
        let body = Self::json_of("looking up the session", answer)?;
        body.get("session").filter(|s| s.is_object()).cloned().ok_or_else(|| "the session lookup has no session".into())
    }

    /// An organization's metadata as `{key, value}` items (values base64, as ZITADEL stores them).
    pub async fn org_metadata(&self, access: &Access, org_id: &str, deadline: Instant) -> Lookup<Arc<Vec<Value>>> {
        let key = access.cache_key(format!("org:{org_id}"));
        if let Some(items) = self.metadata.get(&key) {
            return Ok(items);
        }
        let answer = self
            .call(
                access,
                reqwest::Method::POST,
                "/management/v1/metadata/_search",
                Some(org_id),
                Some(&search()),
                deadline,
            )
            .await?;
        let what = "reading the org metadata";
        let items = Arc::new(metadata_items(what, &Self::json_of(what, answer)?)?);
        self.metadata.put(key, items.clone());
        Ok(items)
    }

    /// A user's metadata as `{key, value}` items.
    pub async fn user_metadata(
        &self,
        access: &Access,
        user_id: &str,
        org: Option<&str>,
        deadline: Instant,
    ) -> Lookup<Arc<Vec<Value>>> {
        let key = access.cache_key(format!("user:{user_id}"));
        if let Some(items) = self.metadata.get(&key) {
            return Ok(items);
        }
        let what = "reading the user metadata";
        let path = format!("/management/v1/users/{}/metadata/_search", path_id(what, user_id)?);
        let answer = self.call(access, reqwest::Method::POST, &path, org, Some(&search()), deadline).await?;
        let items = Arc::new(metadata_items(what, &Self::json_of(what, answer)?)?);
        self.metadata.put(key, items.clone());
        Ok(items)
    }

    /// ZITADEL's public signing keys (`GET /oauth/v2/keys`), from the cache unless `refetch`.
    pub async fn jwks(&self, base_url: &str, refetch: bool, deadline: Instant) -> Lookup<Arc<Vec<Value>>> {
        if !refetch {
            if let Some(keys) = self.jwks.get(&base_url.to_string()) {
                return Ok(keys);
            }
        }
        let access = Access { connection_id: 0, base_url: base_url.to_string(), token: None };
        let answer = self.call(&access, reqwest::Method::GET, "/oauth/v2/keys", None, None, deadline).await?;
        let body = Self::json_of("reading ZITADEL's keys", answer)?;
        let keys = Arc::new(body.get("keys").and_then(Value::as_array).cloned().unwrap_or_default());
        self.jwks.put(base_url.to_string(), keys.clone());
        Ok(keys)
    }

    /// Sends one effect (a queued delivery): `POST <baseUrl><path>` with the token and org header.
    pub async fn send_effect(&self, access: &Access, effect: &ApiEffect) -> Result<Answer, CallFailure> {
        let request = self
            .request(access, reqwest::Method::POST, &effect.path, effect.zitadel_org.as_deref(), Some(&effect.body))
            .map_err(CallFailure::Failed)?;
        v2call::exchange(request, EFFECT_TIMEOUT).await
    }
}

/// Reverses [`segment`].
fn unsegment(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `text` can be one path segment of a URL: not empty, `.` or `..`, which URL parsers
/// resolve away (escaped as `%2E` too), so that the request would go to another path.
pub fn is_path_segment(text: &str) -> bool {
    !matches!(text, "" | "." | "..")
}

/// `id` as a path segment of a lookup, or the lookup's failure when it cannot be one (it would
/// ask another of ZITADEL's paths, with the connection's token).
fn path_id(what: &str, id: &str) -> Lookup<String> {
    if is_path_segment(id) {
        Ok(segment(id))
    } else {
        Err(format!("{what}: the id {id:?} is not a path segment"))
    }
}

/// A path segment from an id taken from a payload (ids are digits; anything else is escaped).
pub fn segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn search() -> Value {
    json!({"query": {"offset": "0", "limit": METADATA_LIMIT, "asc": true}})
}

/// `{key, value}` items of a ListOrgMetadata / ListUserMetadata answer.
/// The `{key, value}` items of a metadata search answer (`result` is left out when empty); an
/// answer of another shape (a proxy's page answered with 200) is a failed lookup, not an empty
/// list: it leaves a warning and is not remembered.
fn metadata_items(what: &str, body: &Value) -> Lookup<Vec<Value>> {
    let unreadable = || format!("{what}: the answer is not a metadata list");
    let Some(answer) = body.as_object() else { return Err(unreadable()) };
    let Some(result) = answer.get("result") else { return Ok(Vec::new()) };
    let items = result.as_array().ok_or_else(unreadable)?;
    items
        .iter()
        .map(|m| {
            let key = m.get("key").and_then(Value::as_str).ok_or_else(unreadable)?;
            Ok(json!({"key": key, "value": m.get("value").cloned().unwrap_or(Value::String(String::new()))}))
        })
        .collect()
}

/// What kind of effect a queued API request applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectKind {
    UserGrant,
    Metadata,
}

impl EffectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::UserGrant => "userGrant",
            EffectKind::Metadata => "metadata",
        }
    }
}

/// One request to ZITADEL's management API that applies an effect: what a delivery row holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiEffect {
    pub kind: EffectKind,
    pub user_id: String,
    /// The ZITADEL org (`x-zitadel-orgid`), when known.
    pub zitadel_org: Option<String>,
    pub path: String,
    pub body: Value,
}

impl ApiEffect {
    /// AddUserGrant for a `userGrants` effect item (`{projectId, projectGrantId?, roles}`).
    pub fn user_grant(user_id: &str, zitadel_org: Option<&str>, grant: &Value) -> ApiEffect {
        let mut body = json!({
            "projectId": grant.get("projectId").cloned().unwrap_or(Value::String(String::new())),
            "roleKeys": grant.get("roles").cloned().unwrap_or(json!([])),
        });
        if let Some(g) = grant.get("projectGrantId").and_then(Value::as_str).filter(|g| !g.is_empty()) {
            body["projectGrantId"] = Value::String(g.to_string());
        }
        ApiEffect {
            kind: EffectKind::UserGrant,
            user_id: user_id.to_string(),
            zitadel_org: zitadel_org.map(str::to_string),
            path: format!("/management/v1/users/{}/grants", segment(user_id)),
            body,
        }
    }

    /// SetUserMetadata for a `metadata` effect item (`{key, value}`, value base64).
    pub fn metadata(user_id: &str, zitadel_org: Option<&str>, item: &Value) -> ApiEffect {
        let key = item.get("key").and_then(Value::as_str).unwrap_or("");
        ApiEffect {
            kind: EffectKind::Metadata,
            user_id: user_id.to_string(),
            zitadel_org: zitadel_org.map(str::to_string),
            path: format!("/management/v1/users/{}/metadata/{}", segment(user_id), segment(key)),
            body: json!({"value": item.get("value").cloned().unwrap_or(Value::String(String::new()))}),
        }
    }

    /// As stored in a delivery row's payload.
    pub fn to_payload(&self) -> String {
        json!({
            "kind": self.kind.as_str(),
            "userId": self.user_id,
            "zitadelOrgId": self.zitadel_org,
            "path": self.path,
            "body": self.body,
        })
        .to_string()
    }

    /// From a delivery row's payload.
    pub fn from_payload(text: &str) -> Option<ApiEffect> {
        let v: Value = serde_json::from_str(text).ok()?;
        let kind = match v.get("kind")?.as_str()? {
            "userGrant" => EffectKind::UserGrant,
            "metadata" => EffectKind::Metadata,
            _ => return None,
        };
        Some(ApiEffect {
            kind,
            user_id: v.get("userId")?.as_str()?.to_string(),
            zitadel_org: v.get("zitadelOrgId").and_then(Value::as_str).map(str::to_string),
            path: v.get("path")?.as_str()?.to_string(),
            body: v.get("body").cloned().unwrap_or(Value::Null),
        })
    }

    /// As the dry run shows it (`pendingApiEffects`); a metadata effect also names its key (its
    /// body holds only the value).
    pub fn preview(&self) -> Value {
        let mut out = json!({"kind": self.kind.as_str(), "userId": self.user_id, "body": self.body});
        if self.kind == EffectKind::Metadata {
            out["key"] = Value::String(unsegment(self.path.rsplit('/').next().unwrap_or("")));
        }
        out
    }
}

/// How an answer of ZITADEL to an effect counts: 2xx and 409 (already there) are done; other 4xx
/// except 408 and 429 cannot succeed by retrying; the rest is retried.
#[derive(Debug, PartialEq, Eq)]
pub enum EffectVerdict {
    Done,
    Hopeless,
    Retry,
}

pub fn verdict(status: u16) -> EffectVerdict {
    match status {
        200..=299 | 409 => EffectVerdict::Done,
        408 | 429 => EffectVerdict::Retry,
        400..=499 => EffectVerdict::Hopeless,
        _ => EffectVerdict::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_refuse_ids_that_are_no_path_segment() {
        assert_eq!(path_id("looking up the session", "312"), Ok("312".to_string()));
        assert_eq!(path_id("looking up the session", "a/.."), Ok("a%2F..".to_string()));
        assert_eq!(path_id("looking up the session", "..."), Ok("...".to_string()));
        for id in ["", ".", ".."] {
            let e = path_id("looking up the session", id).unwrap_err();
            assert_eq!(e, format!("looking up the session: the id {id:?} is not a path segment"));
        }
    }

    #[test]
    fn effects_round_trip_through_the_delivery_payload() {
        let g = ApiEffect::user_grant(
            "u 1",
            Some("zorg"),
            &json!({"projectId": "p", "projectGrantId": "g", "roles": ["r"]}),
        );
        assert_eq!(g.path, "/management/v1/users/u%201/grants");
        assert_eq!(g.body, json!({"projectId": "p", "projectGrantId": "g", "roleKeys": ["r"]}));
        assert_eq!(ApiEffect::from_payload(&g.to_payload()), Some(g));
        let m = ApiEffect::metadata("u1", None, &json!({"key": "team/a", "value": "YQ=="}));
        assert_eq!(m.path, "/management/v1/users/u1/metadata/team%2Fa");
        assert_eq!(m.body, json!({"value": "YQ=="}));
        assert_eq!(ApiEffect::from_payload(&m.to_payload()), Some(m));
        assert_eq!(ApiEffect::from_payload("{}"), None);
    }

    #[test]
    fn a_metadata_preview_names_its_key() {
        for key in ["team/a", "ä ö%2F", "plain_key-1.x~", "%"] {
            let m = ApiEffect::metadata("u1", None, &json!({"key": key, "value": "YQ=="}));
            assert_eq!(m.preview(), json!({"kind": "metadata", "userId": "u1", "key": key, "body": {"value": "YQ=="}}));
        }
        let g = ApiEffect::user_grant("u1", None, &json!({"projectId": "p", "roles": []}));
        assert!(g.preview().get("key").is_none(), "{}", g.preview());
    }

    #[test]
    fn metadata_answers_of_another_shape_are_failed_lookups() {
        let what = "reading the org metadata";
        assert_eq!(
            metadata_items(what, &json!({"details": {}, "result": [{"key": "k", "value": "dg=="}, {"key": "e"}]})),
            Ok(vec![json!({"key": "k", "value": "dg=="}), json!({"key": "e", "value": ""})])
        );
        assert_eq!(metadata_items(what, &json!({"details": {"totalResult": "0"}})), Ok(vec![]), "empty: no result");
        for body in [json!({"result": "notalist"}), json!([]), json!("<html>"), json!({"result": [{"value": "dg=="}]})]
        {
            assert_eq!(
                metadata_items(what, &body),
                Err("reading the org metadata: the answer is not a metadata list".to_string()),
                "{body}"
            );
        }
    }

    #[test]
    fn answers_count_as_zitadel_means_them() {
        assert_eq!(verdict(200), EffectVerdict::Done);
        assert_eq!(verdict(409), EffectVerdict::Done);
        assert_eq!(verdict(400), EffectVerdict::Hopeless);
        assert_eq!(verdict(404), EffectVerdict::Hopeless);
        assert_eq!(verdict(408), EffectVerdict::Retry);
        assert_eq!(verdict(429), EffectVerdict::Retry);
        assert_eq!(verdict(503), EffectVerdict::Retry);
    }
}
