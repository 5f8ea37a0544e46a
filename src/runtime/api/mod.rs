//! `ctx`, `api`, `require` and `console` for one v1 action run, built natively (no JS prelude to
//! parse per run). The run's state lives in the run's own `Context` (its host-defined data): a
//! worker makes a fresh context for every run, and [`begin`] installs the state in it.

mod bindings;
mod console;
mod getters;
mod modules;
mod setters;
pub mod surface;
pub use modules::parse_json;

use console::*;
use getters::*;
use modules::*;
use setters::*;

use super::http::{self, FetchRequest};
use super::LogRecord;
use crate::domain::Trigger;
use base64::Engine;
use boa_engine::object::builtins::JsArray;
use boa_engine::object::{FunctionObjectBuilder, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsArgs, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction};
use serde_json::{json, Map, Value};
use std::cell::RefCell;

pub const MAX_LOG_RECORDS: usize = 1000;
pub const MAX_LOG_BYTES: u64 = 64 * 1024;
/// The state key (not an effect) listing the user fields setters wrote, e.g. `user.human.nickName`
/// or `externalUser.preferredUsername`. A setter writing a zero value clears the field, and the
/// effects leave zero values out, so only this tells "cleared" from "left alone" (the connector
/// applies exactly these fields to the request it returns).
pub const FIELDS_SET: &str = "fieldsSet";

/// The user fields setters wrote, from a run's or a trigger's state (see [`FIELDS_SET`]).
pub fn fields_set(state: &Value) -> Vec<String> {
    state
        .get(FIELDS_SET)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

type NativeFn = fn(&JsValue, &[JsValue], &mut Context) -> JsResult<JsValue>;

#[derive(Default)]
struct RunState {
    name: String,
    context: Value,
    claims_input: Map<String, Value>,
    claims_added: Map<String, Value>,
    action_log: Vec<String>,
    /// Metadata written by actions: (key, base64 value), one per key, last write wins.
    metadata: Vec<(String, String)>,
    external_user: Value,
    user: Value,
    /// The fields of `externalUser` / `user` a setter wrote, as paths (`user.human.nickName`),
    /// over all actions so far: see [`FIELDS_SET`].
    fields_set: Vec<String>,
    grants: Vec<Value>,
    attributes: Vec<Value>,
    logs: Vec<LogRecord>,
    log_bytes: u64,
    truncated: bool,
    http_calls: u32,
    /// The organization's secrets, for `require("zitadel/secrets").get(name)`.
    secrets: std::collections::BTreeMap<String, String>,
    /// Their redaction, made at the first text that needs it (a run that neither logs nor fails
    /// costs nothing).
    redaction: Option<super::secrets::Redaction>,
    /// The run's own clocks for `zitadel/uuid`'s time-based ids: v1's clock sequence (from a
    /// random start, made at the run's first v1 id) and v7's counter. The uuid crate's are the
    /// process's, so one run could count another's ids (runtime-v1 §1: module state is new every
    /// run).
    uuid_v1_clock: Option<uuid::timestamp::context::ContextV1>,
    uuid_v7_clock: uuid::timestamp::context::ContextV7,
}

impl RunState {
    /// `text` with the run's secrets redacted: before any bound is applied to it, so that a cut
    /// never splits a value and what is kept is measured as it is stored.
    fn redact(&mut self, text: &mut String) {
        if self.secrets.is_empty() {
            return;
        }
        let secrets = &self.secrets;
        self.redaction.get_or_insert_with(|| super::secrets::Redaction::new(secrets)).redact_in(text);
    }
}

/// `text` (a thrown value's) with the current run's secrets redacted.
pub fn redact_run_text(ctx: &Context, text: &mut String) {
    if let Some(run) = ctx.get_data::<RefCell<RunState>>() {
        run.borrow_mut().redact(text);
    }
}

/// A worker's network access (its guarded client and the policy), handed to each run's context;
/// without it `fetch` fails.
#[derive(Clone)]
pub struct Net {
    pub client: reqwest::blocking::Client,
    pub policy: std::sync::Arc<http::NetPolicy>,
}

/// Runs `f` on the run's state, which [`begin`] keeps in the context (one context per run).
fn with_run<T>(ctx: &Context, f: impl FnOnce(&RefCell<RunState>) -> T) -> T {
    f(ctx.get_data::<RefCell<RunState>>().expect("api::begin installs the run state"))
}

/// What a run produced besides its effects.
pub struct Usage {
    pub logs: Vec<LogRecord>,
    pub http_calls: u32,
    pub log_bytes: u64,
}

/// A pre-filled `api.metadata` item: its key and its stored (base64) value.
type Prefilled = (String, String);

/// The objects handed to the script, and what `finish` needs to read back.
pub struct Bindings {
    pub ctx: JsValue,
    pub api: JsValue,
    pub require: JsValue,
    pub console: JsValue,
    /// Whether the trigger has `api.metadata` (flows 1 and 3), with the entries it was pre-filled with.
    metadata_prefilled: Option<Vec<Prefilled>>,
    /// Whether the trigger has `api.userGrants` (post creation).
    has_grants: bool,
    trigger: Trigger,
}

fn err(msg: impl Into<String>) -> boa_engine::JsError {
    JsNativeError::error().with_message(msg.into()).into()
}

fn type_err(msg: impl Into<String>) -> boa_engine::JsError {
    JsNativeError::typ().with_message(msg.into()).into()
}

fn js_str(s: &str) -> JsValue {
    JsValue::from(JsString::from(s))
}

fn func(ctx: &mut Context, name: &str, length: usize, f: NativeFn) -> JsValue {
    FunctionObjectBuilder::new(ctx.realm(), NativeFunction::from_fn_ptr(f))
        .name(JsString::from(name))
        .length(length)
        .build()
        .into()
}

fn set(obj: &JsObject, key: &str, value: JsValue, ctx: &mut Context) -> JsResult<()> {
    obj.set(JsString::from(key), value, true, ctx).map(|_| ())
}

fn child(obj: &JsObject, key: &str, ctx: &mut Context) -> JsResult<JsObject> {
    match obj.get(JsString::from(key), ctx)?.as_object() {
        Some(o) => Ok(o.clone()),
        None => {
            let o = JsObject::with_object_proto(ctx.intrinsics());
            set(obj, key, o.clone().into(), ctx)?;
            Ok(o)
        }
    }
}

/// `String(v)`, with a missing, `undefined` or `null` argument as "" (upstream converts both to
/// the string's zero value: `api.setFirstName(ctx.getClaim('given_name'))` without that claim
/// sets "", not "null").
fn arg_string(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    string_param(args.get_or_undefined(i), ctx)
}

/// A string parameter as upstream's setters take it: `null` and `undefined` are the zero value,
/// a symbol its description (`String(v)`, which unlike ToString does not throw), anything else
/// ToString.
fn string_param(v: &JsValue, ctx: &mut Context) -> JsResult<String> {
    if v.is_null_or_undefined() {
        return Ok(String::new());
    }
    if let Some(symbol) = v.as_symbol() {
        return Ok(symbol.descriptive_string().to_std_string_lossy());
    }
    Ok(v.to_string(ctx)?.to_std_string_lossy())
}

fn arg_json(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<Value> {
    json_value(args.get_or_undefined(i), ctx)
}

/// The realm's own `JSON.stringify`, taken by [`begin`] before the script runs (a script
/// replacing the global one changes nothing here).
struct Stringify(JsObject);

/// `JSON.stringify(v)`: `toJSON` honoured (a `Date` becomes its ISO string), functions and
/// `undefined` members dropped, `-0` as `0`, members in insertion order; `None` where
/// `JSON.stringify` gives `undefined` (a function, `undefined`, a symbol).
fn stringify(v: &JsValue, ctx: &mut Context) -> JsResult<Option<String>> {
    let f = match ctx.get_data::<Stringify>() {
        Some(f) => f.0.clone(),
        None => return Err(JsNativeError::typ().with_message("sandbox: JSON.stringify was not taken").into()),
    };
    let out = f.call(&JsValue::undefined(), std::slice::from_ref(v), ctx)?;
    Ok(out.as_string().map(|s| s.to_std_string_lossy()))
}

/// Deepest nesting a value leaving a script (a claim, a metadata value) may have: it travels a few
/// levels down in the worker's answer, which JSON readers take up to 128 levels deep.
pub const MAX_VALUE_DEPTH: usize = 100;

/// A script value as JSON, through `JSON.stringify` (`null` where that gives `undefined`). A
/// value nested deeper than [`MAX_VALUE_DEPTH`] is a catchable `RangeError`, never a silent
/// `null` or a lost answer.
fn json_value(v: &JsValue, ctx: &mut Context) -> JsResult<Value> {
    let Some(text) = stringify(v, ctx)? else { return Ok(Value::Null) };
    // `JSON.stringify` writes a lone surrogate as its escape, which no UTF-8 text can hold: it
    // becomes U+FFFD, as upstream's conversion of script strings to Go strings makes it.
    let parsed = crate::domain::json_text::from_slice_as_go(text.as_bytes());
    match parsed {
        Ok(value) if crate::domain::nesting::depth(&value) <= MAX_VALUE_DEPTH => Ok(value),
        Ok(_) => Err(JsNativeError::range()
            .with_message(format!("the value is nested deeper than {MAX_VALUE_DEPTH} levels"))
            .into()),
        // serde_json stops at 128 levels before the check above could: the same limit, said so.
        Err(e) if crate::domain::nesting::too_deep(&e) => Err(JsNativeError::range()
            .with_message(format!("the value is nested deeper than {MAX_VALUE_DEPTH} levels"))
            .into()),
        Err(e) => Err(JsNativeError::range().with_message(format!("the value is not valid JSON: {e}")).into()),
    }
}

/// `obj[a]`, or `obj[b]` when that is null or undefined: a field scripts may spell two ways
/// (`projectId` / upstream's `projectID`).
fn either_spelling(obj: &JsObject, a: &str, b: &str, ctx: &mut Context) -> JsResult<JsValue> {
    let v = obj.get(JsString::from(a), ctx)?;
    if v.is_null_or_undefined() {
        obj.get(JsString::from(b), ctx)
    } else {
        Ok(v)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A metadata value as scripts see it: JSON bytes parsed, anything else a string.
fn decode_metadata_value(raw: &str) -> Value {
    let bytes = crate::domain::bytes::decode_base64(raw.trim()).unwrap_or_else(|| raw.as_bytes().to_vec());
    serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn encode_metadata_value(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

fn set_metadata_entry(state: &mut RunState, key: String, encoded: String) {
    match state.metadata.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = encoded,
        None => state.metadata.push((key, encoded)),
    }
}

fn metadata_result(items: &[Value]) -> Value {
    let list: Vec<Value> = items
        .iter()
        .map(|m| {
            let mut out = Map::new();
            out.insert("key".into(), m.get("key").cloned().unwrap_or(Value::String(String::new())));
            out.insert("value".into(), decode_metadata_value(m.get("value").and_then(Value::as_str).unwrap_or("")));
            // Every member of the Metadata result, as upstream gives them.
            let members = [
                ("creationDate", json!("")),
                ("changeDate", json!("")),
                ("resourceOwner", json!("")),
                ("sequence", json!(0)),
            ];
            for (k, _) in &members {
                if let Some(v) = m.get(*k) {
                    out.insert((*k).into(), v.clone());
                }
            }
            fill_missing(&mut out, &members);
            sequence_as_number(&mut out);
            Value::Object(out)
        })
        .collect();
    json!({"count": list.len(), "metadata": list})
}

/// User metadata from the context with the actions' writes applied.
fn merged_user_metadata(state: &RunState) -> Vec<Value> {
    let mut list: Vec<Value> = state.context.get("userMetadata").and_then(Value::as_array).cloned().unwrap_or_default();
    for (k, v) in &state.metadata {
        let item = json!({"key": k, "value": v});
        match list.iter_mut().find(|m| m.get("key").and_then(Value::as_str) == Some(k)) {
            Some(existing) => *existing = item,
            None => list.push(item),
        }
    }
    list
}

/// An enum given by name (or as a number in a string) as its number; anything else is 0.
pub(crate) fn enum_number(v: Option<&Value>, names: &[&str]) -> Value {
    match v {
        Some(Value::String(s)) => {
            let n = names.iter().position(|n| n == s).map(|p| p as i64).or_else(|| s.parse().ok()).unwrap_or(0);
            json!(n)
        }
        Some(Value::Number(n)) => Value::Number(n.clone()),
        _ => json!(0),
    }
}

pub(crate) const GENDERS: &[&str] = &["GENDER_UNSPECIFIED", "GENDER_FEMALE", "GENDER_MALE", "GENDER_DIVERSE"];
pub(crate) const USER_STATES: &[&str] = &[
    "USER_STATE_UNSPECIFIED",
    "USER_STATE_ACTIVE",
    "USER_STATE_INACTIVE",
    "USER_STATE_DELETED",
    "USER_STATE_LOCKED",
    "USER_STATE_SUSPEND",
    "USER_STATE_INITIAL",
];

/// A `sequence` (a uint64) as scripts get it upstream: a number, also when the host sent it as
/// protobuf's JSON writes 64-bit integers, a string of digits (`"5"` → 5).
fn sequence_as_number(map: &mut Map<String, Value>) {
    if let Some(Value::String(text)) = map.get("sequence") {
        if let Ok(n) = text.parse::<u64>() {
            map.insert("sequence".into(), json!(n));
        }
    }
}

/// The zero value of each of `members` that `map` lacks (or holds as `null`): protobuf's JSON
/// omits zero values, upstream's structs give them to scripts.
fn fill_missing(map: &mut Map<String, Value>, members: &[(&str, Value)]) {
    for (name, zero) in members {
        if map.get(*name).is_none_or(Value::is_null) {
            map.insert((*name).to_string(), zero.clone());
        }
    }
}

/// `ctx.v1.getUser()`: the user of [`normalize_user`] with every member of runtime-v1 §4.5's User
/// present, as upstream's structs give them to scripts: what the host left out (protobuf's JSON
/// omits zero values) reads as `""`, `0`, `false` or `[]`, so `getUser().human.phone.startsWith(…)`
/// works for a user without a phone. Without a user in the context, a user of zero values.
fn zero_filled_user(user: Option<&Value>) -> Value {
    let mut user = match normalize_user(user) {
        Value::Object(u) => u,
        _ => Map::new(),
    };
    sequence_as_number(&mut user);
    let text = || Value::String(String::new());
    fill_missing(
        &mut user,
        &[
            ("id", text()),
            ("creationDate", text()),
            ("changeDate", text()),
            ("resourceOwner", text()),
            ("sequence", json!(0)),
            ("state", json!(0)),
            ("username", text()),
            ("loginNames", json!([])),
            ("preferredLoginName", text()),
        ],
    );
    if let Some(Value::Object(human)) = user.get_mut("human") {
        fill_missing(
            human,
            &[
                ("firstName", text()),
                ("lastName", text()),
                ("nickName", text()),
                ("displayName", text()),
                ("avatarKey", text()),
                ("preferredLanguage", text()),
                ("gender", json!(0)),
                ("email", text()),
                ("isEmailVerified", json!(false)),
                ("phone", text()),
                ("isPhoneVerified", json!(false)),
            ],
        );
    }
    if let Some(Value::Object(machine)) = user.get_mut("machine") {
        fill_missing(machine, &[("name", text()), ("description", text())]);
    }
    Value::Object(user)
}

fn normalize_user(user: Option<&Value>) -> Value {
    let Some(Value::Object(u)) = user else { return Value::Null };
    let mut u = u.clone();
    if u.contains_key("state") {
        let n = enum_number(u.get("state"), USER_STATES);
        u.insert("state".into(), n);
    }
    if let Some(Value::Object(h)) = u.get_mut("human") {
        let n = enum_number(h.get("gender"), GENDERS);
        h.insert("gender".into(), n);
    }
    Value::Object(u)
}

/// A BCP-47 tag in its canonical case (`EN-us` → `en-US`, `zh_hant_tw` → `zh-Hant-TW`; `_` is
/// taken as `-`, as upstream's language parser does), or `None` when it is not a well-formed tag.
/// Extensions (`-u-ca-gregory`) and private use (`-x-twain`, or a tag of private use only) are
/// kept, in lower case.
fn canonical_locale(s: &str) -> Option<String> {
    /// Where a subtag stands: in the language part, or after a singleton (`u`, `x`) with this
    /// many subtags of its own so far.
    enum Part {
        Language,
        Extension(usize),
        Private(usize),
    }
    let alphanumeric = |p: &str| p.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut parts = s.split(['-', '_']);
    let first = parts.next().unwrap_or("");
    let (mut out, mut part) = if first.eq_ignore_ascii_case("x") {
        ("x".to_string(), Part::Private(0))
    } else if (2..=3).contains(&first.len()) && first.bytes().all(|b| b.is_ascii_alphabetic()) {
        (first.to_ascii_lowercase(), Part::Language)
    } else {
        return None;
    };
    for p in parts {
        let singleton = p.len() == 1 && alphanumeric(p);
        match part {
            // Private use runs to the end: subtags of 1..8 characters.
            Part::Private(n) if (1..=8).contains(&p.len()) && alphanumeric(p) => part = Part::Private(n + 1),
            Part::Private(_) => return None,
            // An extension's subtags have 2..8 characters; a singleton starts the next one.
            Part::Extension(n) if !singleton => {
                if !(2..=8).contains(&p.len()) || !alphanumeric(p) {
                    return None;
                }
                part = Part::Extension(n + 1);
            }
            Part::Extension(0) => return None,
            Part::Extension(_) | Part::Language if singleton => {
                part = if p.eq_ignore_ascii_case("x") { Part::Private(0) } else { Part::Extension(0) };
            }
            Part::Extension(_) | Part::Language => {
                if !(2..=8).contains(&p.len()) || !alphanumeric(p) {
                    return None;
                }
                out.push('-');
                let alphabetic = p.bytes().all(|b| b.is_ascii_alphabetic());
                match p.len() {
                    4 if alphabetic => {
                        out.push_str(&p[..1].to_ascii_uppercase());
                        out.push_str(&p[1..].to_ascii_lowercase());
                    }
                    2 if alphabetic => out.push_str(&p.to_ascii_uppercase()),
                    _ => out.push_str(&p.to_ascii_lowercase()),
                }
                continue;
            }
        }
        // Singletons, extensions and private use are lower case.
        out.push('-');
        out.push_str(&p.to_ascii_lowercase());
    }
    // A singleton needs at least one subtag after it.
    match part {
        Part::Extension(0) | Part::Private(0) => None,
        _ => Some(out),
    }
}

/// Resets the per-run state and builds the bindings for one flow/trigger.
pub fn begin(ctx: &mut Context, trigger: Trigger, job: &super::Job) -> JsResult<Bindings> {
    let (name, context, state) = (job.name.as_str(), &job.context, &job.state);
    let claims_input = context.get("claims").and_then(Value::as_object).cloned().unwrap_or_default();
    let metadata = state
        .get("metadata")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some((m.get("key")?.as_str()?.to_string(), m.get("value")?.as_str().unwrap_or("").to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    let external_user = state.get("externalUser").cloned().or_else(|| context.get("externalUser").cloned());
    let user = state.get("user").cloned().unwrap_or_else(|| normalize_user(context.get("user")));
    ctx.insert_data(RefCell::new(RunState {
        name: name.to_string(),
        context: context.clone(),
        claims_input,
        claims_added: state.get("claims").and_then(Value::as_object).cloned().unwrap_or_default(),
        metadata,
        external_user: external_user.unwrap_or_else(|| json!({})),
        user,
        fields_set: fields_set(state),
        grants: state.get("userGrants").and_then(Value::as_array).cloned().unwrap_or_default(),
        attributes: state.get("attributes").and_then(Value::as_array).cloned().unwrap_or_default(),
        secrets: job.secrets.clone(),
        ..Default::default()
    }));
    let stringify = ctx.intrinsics().objects().json().get(js_string!("stringify"), ctx)?;
    let stringify =
        stringify.as_object().ok_or_else(|| JsNativeError::typ().with_message("sandbox: JSON.stringify is missing"))?;
    ctx.insert_data(Stringify(stringify));
    let require = require_fn(ctx);
    let console: JsValue = logger(ctx).into();
    let built = bindings::build(ctx, trigger, context)?;
    Ok(Bindings {
        ctx: built.ctx,
        api: built.api,
        require,
        console,
        metadata_prefilled: built.metadata_prefilled,
        has_grants: built.has_grants,
        trigger,
    })
}

/// A `userGrants` effect item from an item of `api.userGrants`: both spellings of the ids, the
/// roles as strings.
fn grant_effect(obj: &JsObject, ctx: &mut Context) -> JsResult<Value> {
    let project = either_spelling(obj, "projectId", "projectID", ctx)?;
    let project =
        if project.is_null_or_undefined() { String::new() } else { project.to_string(ctx)?.to_std_string_lossy() };
    let mut grant = json!({"projectId": project});
    let pg = either_spelling(obj, "projectGrantId", "projectGrantID", ctx)?;
    if !pg.is_null_or_undefined() {
        let pg = pg.to_string(ctx)?.to_std_string_lossy();
        if !pg.is_empty() {
            grant["projectGrantId"] = Value::String(pg);
        }
    }
    let roles = obj.get(js_string!("roles"), ctx)?;
    let mut list = Vec::new();
    if let Some(r) = roles.as_object().and_then(|o| JsArray::from_object(o.clone()).ok()) {
        for j in 0..r.length(ctx)? {
            list.push(Value::String(r.get(j, ctx)?.to_string(ctx)?.to_std_string_lossy()));
        }
    }
    grant["roles"] = Value::Array(list);
    Ok(grant)
}

/// After a successful run: the new effects state.
pub fn finish(b: &Bindings, ctx: &mut Context) -> JsResult<Value> {
    let api = b.api.as_object().ok_or_else(|| err("sandbox: api is not an object"))?;
    // What `api.metadata` / `api.userGrants` hold now, also when the script assigned them.
    let metadata = match &b.metadata_prefilled {
        Some(originals) => setters::current_array(&api, "metadata", ctx)?.map(|arr| (arr, originals)),
        None => None,
    };
    if let Some((arr, originals)) = metadata {
        // An item equal to a pre-filled entry of its key is no write (runtime-v1 §4.5: not
        // repeated unless changed), whether it is that entry's object or a copy (a list rebuilt
        // with `map`), unless the key was written to something else before it in the list.
        let mut written = std::collections::HashSet::new();
        for i in 0..arr.length(ctx)? {
            let item = arr.get(i, ctx)?;
            let Some(obj) = item.as_object() else { continue };
            // A missing key is the empty one, as for appendMetadata (not "undefined").
            let key = string_param(&obj.get(js_string!("key"), ctx)?, ctx)?;
            let value = json_value(&obj.get(js_string!("value"), ctx)?, ctx)?;
            let encoded = encode_metadata_value(&value);
            let unchanged = !written.contains(&key)
                && originals
                    .iter()
                    .any(|(k, raw)| *k == key && (*raw == encoded || decode_metadata_value(raw) == value));
            if !unchanged {
                written.insert(key.clone());
                with_run(ctx, |r| set_metadata_entry(&mut r.borrow_mut(), key, encoded));
            }
        }
    }
    if b.has_grants {
        let mut grants = Vec::new();
        // `null` or `undefined`: no grants.
        if let Some(arr) = setters::current_array(&api, "userGrants", ctx)? {
            for i in 0..arr.length(ctx)? {
                if let Some(obj) = arr.get(i, ctx)?.as_object() {
                    grants.push(grant_effect(&obj, ctx)?);
                }
            }
        }
        with_run(ctx, |r| r.borrow_mut().grants = grants);
    }
    Ok(with_run(ctx, |r| {
        let r = r.borrow();
        let metadata: Vec<Value> = r.metadata.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        use Trigger::*;
        let mut state = match b.trigger {
            ExternalPostAuthentication => {
                let mut e = r.external_user.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("metadata");
                }
                json!({"externalUser": e, "metadata": metadata})
            }
            ExternalPreCreation | InternalPreCreation => json!({"user": r.user, "metadata": metadata}),
            ExternalPostCreation | InternalPostCreation => json!({"userGrants": r.grants}),
            InternalPostAuthentication => json!({"metadata": metadata}),
            PreUserinfoCreation | PreAccessTokenCreation => {
                let mut claims = r.claims_added.clone();
                if !r.action_log.is_empty() {
                    claims.insert(format!("urn:zitadel:iam:action:{}:log", r.name), json!(r.action_log));
                }
                json!({"claims": claims, "metadata": metadata})
            }
            PreSamlResponseCreation => json!({"attributes": r.attributes, "metadata": metadata}),
        };
        if !r.fields_set.is_empty() {
            state[FIELDS_SET] = json!(r.fields_set);
        }
        state
    }))
}

/// Logs and counters of the run (also after a failure).
pub fn usage(ctx: &Context) -> Usage {
    with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        Usage { logs: std::mem::take(&mut r.logs), http_calls: r.http_calls, log_bytes: r.log_bytes }
    })
}
