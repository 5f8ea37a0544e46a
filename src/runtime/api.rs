//! `ctx`, `api`, `require` and `console` for one v1 action run, built natively (no JS prelude to
//! parse per run). Per-run state lives in a thread-local: a worker runs one job at a time on one
//! thread, and [`begin`] resets it for every run.

use super::http::{self, FetchRequest};
use super::LogRecord;
use base64::Engine;
use boa_engine::object::builtins::JsArray;
use boa_engine::object::{FunctionObjectBuilder, ObjectInitializer};
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsArgs, JsNativeError, JsObject, JsResult, JsString, JsValue, NativeFunction};
use serde_json::{json, Map, Value};
use std::cell::RefCell;

pub const MAX_LOG_RECORDS: usize = 1000;
pub const MAX_LOG_BYTES: u64 = 64 * 1024;

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
    grants: Vec<Value>,
    attributes: Vec<Value>,
    logs: Vec<LogRecord>,
    log_bytes: u64,
    truncated: bool,
    http_calls: u32,
}

thread_local! {
    static RUN: RefCell<RunState> = RefCell::new(RunState::default());
    pub(super) static NET: RefCell<Option<(reqwest::blocking::Client, std::sync::Arc<http::NetPolicy>)>> =
        const { RefCell::new(None) };
}

/// What a run produced besides its effects.
pub struct Usage {
    pub logs: Vec<LogRecord>,
    pub http_calls: u32,
    pub log_bytes: u64,
}

/// A pre-filled `api.metadata` item: the object, its key and its stored (base64) value.
type Prefilled = (JsObject, String, String);

/// The objects handed to the script, and what `finish` needs to read back.
pub struct Bindings {
    pub ctx: JsValue,
    pub api: JsValue,
    pub require: JsValue,
    pub console: JsValue,
    /// `api.metadata` (flows 1 and 3), with the items it was pre-filled with.
    metadata_array: Option<(JsObject, Vec<Prefilled>)>,
    /// `api.userGrants` (post creation).
    grants_array: Option<JsObject>,
    flow: i32,
    trigger: i32,
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

/// `String(v)`, with a missing/undefined argument as "".
fn arg_string(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<String> {
    let v = args.get_or_undefined(i);
    if v.is_undefined() {
        return Ok(String::new());
    }
    Ok(v.to_string(ctx)?.to_std_string_escaped())
}

fn arg_json(args: &[JsValue], i: usize, ctx: &mut Context) -> JsResult<Value> {
    Ok(args.get_or_undefined(i).to_json(ctx)?.unwrap_or(Value::Null))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A metadata value as scripts see it: JSON bytes parsed, anything else a string.
fn decode_metadata_value(raw: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(raw.trim()))
        .unwrap_or_else(|_| raw.as_bytes().to_vec());
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
            for k in ["creationDate", "changeDate", "resourceOwner", "sequence"] {
                if let Some(v) = m.get(k) {
                    out.insert(k.into(), v.clone());
                }
            }
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

fn valid_locale(s: &str) -> bool {
    let mut parts = s.split('-');
    let first = parts.next().unwrap_or("");
    (2..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

// ---------- logging ----------

fn inspect(v: &JsValue, ctx: &mut Context) -> String {
    if let Some(s) = v.as_string() {
        return s.to_std_string_escaped();
    }
    if v.is_undefined() {
        return "undefined".into();
    }
    if !v.is_callable() {
        if let Ok(Some(json)) = v.to_json(ctx) {
            return json.to_string();
        }
    }
    v.to_string(ctx).map(|s| s.to_std_string_escaped()).unwrap_or_else(|_| "[object]".into())
}

/// `util.format`: `%s %d %i %f %j %o %O %%`, extra arguments space-joined.
fn format(args: &[JsValue], ctx: &mut Context) -> JsResult<String> {
    let Some(first) = args.first() else { return Ok(String::new()) };
    let mut rest = 1;
    let mut out = String::new();
    if let Some(fmt) = first.as_string() {
        let fmt = fmt.to_std_string_escaped();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.peek().copied() {
                Some('%') => {
                    chars.next();
                    out.push('%');
                }
                Some(f @ ('s' | 'd' | 'i' | 'f' | 'j' | 'o' | 'O')) if rest < args.len() => {
                    chars.next();
                    let a = &args[rest];
                    rest += 1;
                    match f {
                        's' => out.push_str(&inspect(a, ctx)),
                        'd' | 'i' => {
                            let n = a.to_number(ctx)?;
                            let n = if f == 'i' { n.trunc() } else { n };
                            out.push_str(&JsValue::from(n).to_string(ctx)?.to_std_string_escaped());
                        }
                        'f' => {
                            let n = a.to_number(ctx)?;
                            out.push_str(&JsValue::from(n).to_string(ctx)?.to_std_string_escaped());
                        }
                        _ => out.push_str(&inspect(a, ctx)),
                    }
                }
                _ => out.push('%'),
            }
        }
    } else {
        out = inspect(first, ctx);
    }
    for a in &args[rest..] {
        out.push(' ');
        out.push_str(&inspect(a, ctx));
    }
    Ok(out)
}

fn record(level: &str, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let message = format(args, ctx)?;
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        if r.truncated {
            return;
        }
        let bytes = message.len() as u64;
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        if r.logs.len() >= MAX_LOG_RECORDS || r.log_bytes + bytes > MAX_LOG_BYTES {
            r.truncated = true;
            r.logs.push(LogRecord {
                level: "warn".into(),
                message: "log truncated: a run keeps at most 1000 records and 64 KiB".into(),
                time,
            });
            return;
        }
        r.log_bytes += bytes;
        r.logs.push(LogRecord { level: level.into(), message, time });
    });
    Ok(JsValue::undefined())
}

fn log_info(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("info", args, ctx)
}
fn log_debug(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("debug", args, ctx)
}
fn log_warn(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("warn", args, ctx)
}
fn log_error(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    record("error", args, ctx)
}

fn logger(ctx: &mut Context) -> JsObject {
    let mut init = ObjectInitializer::new(ctx);
    for (name, f) in [
        ("log", log_info as NativeFn),
        ("info", log_info),
        ("debug", log_debug),
        ("warn", log_warn),
        ("error", log_error),
    ] {
        init.function(NativeFunction::from_fn_ptr(f), JsString::from(name), 0);
    }
    init.build()
}

// ---------- modules ----------

fn fetch(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let url = args.get_or_undefined(0);
    if !url.is_string() {
        return Err(type_err("fetch: url must be a string"));
    }
    let mut req =
        FetchRequest { url: url.to_string(ctx)?.to_std_string_escaped(), method: None, headers: None, body: None };
    if let Some(options) = args.get_or_undefined(1).as_object() {
        let method = options.get(js_string!("method"), ctx)?;
        if !method.is_null_or_undefined() {
            req.method = Some(method.to_string(ctx)?.to_std_string_escaped().to_uppercase());
        }
        let headers = options.get(js_string!("headers"), ctx)?;
        if let Some(h) = headers.as_object() {
            let mut map = std::collections::BTreeMap::new();
            for key in h.own_property_keys(ctx)? {
                let name = match &key {
                    boa_engine::property::PropertyKey::String(s) => s.to_std_string_escaped(),
                    boa_engine::property::PropertyKey::Index(i) => i.get().to_string(),
                    boa_engine::property::PropertyKey::Symbol(_) => continue,
                };
                let v = h.get(key, ctx)?;
                let values = if let Some(arr) = v.as_object().and_then(|o| JsArray::from_object(o.clone()).ok()) {
                    let len = arr.length(ctx)?;
                    let mut out = Vec::new();
                    for i in 0..len {
                        out.push(arr.get(i, ctx)?.to_string(ctx)?.to_std_string_escaped());
                    }
                    out
                } else {
                    v.to_string(ctx)?.to_std_string_escaped().split(',').map(|s| s.trim().to_string()).collect()
                };
                map.insert(name, values);
            }
            req.headers = Some(map);
        }
        let body = options.get(js_string!("body"), ctx)?;
        if !body.is_undefined() {
            if let Some(json) = body.to_json(ctx)? {
                req.body = Some(json.to_string());
            }
        }
    }
    RUN.with(|r| r.borrow_mut().http_calls += 1);
    let result = NET.with(|n| match n.borrow().as_ref() {
        Some((client, policy)) => http::fetch_blocking(client, policy, req),
        None => Err("fetch: networking is not available".into()),
    });
    let resp = result.map_err(err)?;
    let headers = JsValue::from_json(&json!(resp.headers), ctx)?;
    let obj = ObjectInitializer::new(ctx)
        .property(js_string!("status"), resp.status, Attribute::all())
        .property(js_string!("body"), JsString::from(resp.body.as_str()), Attribute::all())
        .property(js_string!("headers"), headers, Attribute::all())
        .function(NativeFunction::from_fn_ptr(response_text), js_string!("text"), 0)
        .function(NativeFunction::from_fn_ptr(response_json), js_string!("json"), 0)
        .build();
    Ok(obj.into())
}

fn response_body(this: &JsValue, ctx: &mut Context) -> JsResult<String> {
    let obj = this.as_object().ok_or_else(|| type_err("not a fetch response"))?;
    Ok(obj.get(js_string!("body"), ctx)?.to_string(ctx)?.to_std_string_escaped())
}

fn response_text(this: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    Ok(js_str(&response_body(this, ctx)?))
}

fn response_json(this: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let body = response_body(this, ctx)?;
    let v: Value = serde_json::from_str(&body).map_err(|e| err(format!("fetch: response is not valid JSON: {e}")))?;
    JsValue::from_json(&v, ctx)
}

fn uuid_str(id: uuid::Uuid) -> JsValue {
    js_str(&id.to_string())
}

fn uuid_v1(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    let mut node = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut node);
    Ok(uuid_str(uuid::Uuid::now_v1(&node)))
}
fn uuid_v4(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(uuid_str(uuid::Uuid::new_v4()))
}
fn uuid_v7(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(uuid_str(uuid::Uuid::now_v7()))
}
fn uuid_named(args: &[JsValue], ctx: &mut Context) -> JsResult<(uuid::Uuid, String)> {
    let ns = arg_string(args, 0, ctx)?;
    let name = arg_string(args, 1, ctx)?;
    let ns = uuid::Uuid::parse_str(&ns).map_err(|_| type_err(format!("uuid: invalid namespace {ns:?}")))?;
    Ok((ns, name))
}
fn uuid_v3(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let (ns, name) = uuid_named(args, ctx)?;
    Ok(uuid_str(uuid::Uuid::new_v3(&ns, name.as_bytes())))
}
fn uuid_v5(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let (ns, name) = uuid_named(args, ctx)?;
    Ok(uuid_str(uuid::Uuid::new_v5(&ns, name.as_bytes())))
}

fn uuid_module(ctx: &mut Context) -> JsObject {
    let mut init = ObjectInitializer::new(ctx);
    for (name, f, len) in
        [("v1", uuid_v1 as NativeFn, 0), ("v4", uuid_v4, 0), ("v7", uuid_v7, 0), ("v3", uuid_v3, 2), ("v5", uuid_v5, 2)]
    {
        init.function(NativeFunction::from_fn_ptr(f), JsString::from(name), len);
    }
    for (name, ns) in [
        ("namespaceDNS", uuid::Uuid::NAMESPACE_DNS),
        ("namespaceURL", uuid::Uuid::NAMESPACE_URL),
        ("namespaceOID", uuid::Uuid::NAMESPACE_OID),
        ("namespaceX500", uuid::Uuid::NAMESPACE_X500),
    ] {
        init.property(JsString::from(name), JsString::from(ns.to_string().as_str()), Attribute::all());
    }
    init.build()
}

fn require_fn(ctx: &mut Context) -> JsValue {
    let http = ObjectInitializer::new(ctx).function(NativeFunction::from_fn_ptr(fetch), js_string!("fetch"), 2).build();
    let log = logger(ctx);
    let uuid = uuid_module(ctx);
    FunctionObjectBuilder::new(
        ctx.realm(),
        NativeFunction::from_copy_closure_with_captures(
            |_, args, modules: &(JsObject, JsObject, JsObject), ctx| {
                let name = arg_string(args, 0, ctx)?;
                match name.as_str() {
                    "zitadel/http" => Ok(modules.0.clone().into()),
                    "zitadel/log" => Ok(modules.1.clone().into()),
                    "zitadel/uuid" => Ok(modules.2.clone().into()),
                    other => Err(err(format!("module \"{other}\" not found"))),
                }
            },
            (http, log, uuid),
        ),
    )
    .name(js_string!("require"))
    .length(1)
    .build()
    .into()
}

// ---------- ctx getters ----------

fn context_field(path: &[&str]) -> Value {
    RUN.with(|r| {
        let r = r.borrow();
        let mut v = &r.context;
        for p in path {
            v = match v.get(*p) {
                Some(next) => next,
                None => return Value::Null,
            };
        }
        v.clone()
    })
}

fn get_user(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let user = normalize_user(Some(&context_field(&["user"])));
    JsValue::from_json(&user, ctx)
}

fn get_user_metadata(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let items = RUN.with(|r| merged_user_metadata(&r.borrow()));
    JsValue::from_json(&metadata_result(&items), ctx)
}

fn get_org_metadata(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let items = context_field(&["org", "metadata"]).as_array().cloned().unwrap_or_default();
    JsValue::from_json(&metadata_result(&items), ctx)
}

fn get_client_id(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(js_str(context_field(&["application", "clientId"]).as_str().unwrap_or("")))
}

fn get_claim(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let name = arg_string(args, 0, ctx)?;
    match context_field(&["idTokenClaims", &name]) {
        Value::Null => Ok(JsValue::null()),
        v => JsValue::from_json(&v, ctx),
    }
}

fn claims_json(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    let claims = context_field(&["idTokenClaims"]);
    let claims = if claims.is_null() { json!({}) } else { claims };
    Ok(js_str(&claims.to_string()))
}

// ---------- api functions ----------

fn human_setter(target: fn(&mut RunState) -> &mut Value, field: &str, value: Value) {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        let obj = target(&mut r);
        if !obj.is_object() {
            *obj = json!({});
        }
        let human = obj.as_object_mut().expect("object").entry("human").or_insert_with(|| json!({}));
        if !human.is_object() {
            *human = json!({});
        }
        human.as_object_mut().expect("object").insert(field.into(), value);
    });
}

/// Sets a top-level field of the external user or the user being built.
fn top_setter(target: fn(&mut RunState) -> &mut Value, field: &str, value: Value) {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        let obj = target(&mut r);
        if !obj.is_object() {
            *obj = json!({});
        }
        obj[field] = value;
    });
}

fn ext(r: &mut RunState) -> &mut Value {
    &mut r.external_user
}
fn usr(r: &mut RunState) -> &mut Value {
    &mut r.user
}

macro_rules! string_setter {
    ($fn_name:ident, $target:ident, $field:literal) => {
        fn $fn_name(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
            let v = arg_string(args, 0, ctx)?;
            human_setter($target, $field, Value::String(v));
            Ok(JsValue::undefined())
        }
    };
}

string_setter!(ext_first_name, ext, "firstName");
string_setter!(ext_last_name, ext, "lastName");
string_setter!(ext_nick_name, ext, "nickName");
string_setter!(ext_display_name, ext, "displayName");
string_setter!(ext_email, ext, "email");
string_setter!(ext_phone, ext, "phone");
string_setter!(usr_first_name, usr, "firstName");
string_setter!(usr_last_name, usr, "lastName");
string_setter!(usr_nick_name, usr, "nickName");
string_setter!(usr_display_name, usr, "displayName");
string_setter!(usr_email, usr, "email");
string_setter!(usr_phone, usr, "phone");

fn locale_arg(args: &[JsValue], ctx: &mut Context) -> JsResult<Value> {
    let v = arg_string(args, 0, ctx)?;
    Ok(Value::String(if valid_locale(&v) { v } else { "und".into() }))
}

fn ext_language(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = locale_arg(args, ctx)?;
    human_setter(ext, "preferredLanguage", v);
    Ok(JsValue::undefined())
}
fn usr_language(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = locale_arg(args, ctx)?;
    human_setter(usr, "preferredLanguage", v);
    Ok(JsValue::undefined())
}
fn ext_email_verified(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    human_setter(ext, "isEmailVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    Ok(JsValue::undefined())
}
fn ext_phone_verified(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    human_setter(ext, "isPhoneVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    Ok(JsValue::undefined())
}
fn ext_preferred_username(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = arg_string(args, 0, ctx)?;
    top_setter(ext, "preferredUsername", Value::String(v));
    Ok(JsValue::undefined())
}
fn user_has(field: &str) -> bool {
    RUN.with(|r| {
        r.borrow().user.get("human").and_then(|h| h.get(field)).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
    })
}
fn usr_email_verified(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    if user_has("email") {
        human_setter(usr, "isEmailVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    }
    Ok(JsValue::undefined())
}
fn usr_phone_verified(_: &JsValue, args: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    if user_has("phone") {
        human_setter(usr, "isPhoneVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    }
    Ok(JsValue::undefined())
}
fn usr_gender(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = args.get_or_undefined(0);
    let n = if let Some(s) = v.as_string() {
        let s = s.to_std_string_escaped();
        GENDERS.iter().position(|g| *g == s).map(|p| p as f64).unwrap_or_else(|| s.parse().unwrap_or(0.0))
    } else if v.is_undefined() {
        0.0
    } else {
        v.to_number(ctx)?
    };
    let n = if n.is_finite() { n.trunc() as i64 } else { 0 };
    human_setter(usr, "gender", json!(n));
    Ok(JsValue::undefined())
}
fn usr_username(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = arg_string(args, 0, ctx)?;
    top_setter(usr, "username", Value::String(v));
    Ok(JsValue::undefined())
}

fn set_claim(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let key = arg_string(args, 0, ctx)?;
    let value = arg_json(args, 1, ctx)?;
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        if key.starts_with("urn:zitadel:iam") {
            return;
        }
        if r.claims_input.contains_key(&key) || r.claims_added.contains_key(&key) {
            r.action_log.push(format!("key \"{key}\" already exists"));
            return;
        }
        r.claims_added.insert(key, value);
    });
    Ok(JsValue::undefined())
}

fn append_log_into_claims(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let entry = arg_string(args, 0, ctx)?;
    RUN.with(|r| r.borrow_mut().action_log.push(entry));
    Ok(JsValue::undefined())
}

fn set_metadata(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let key = arg_string(args, 0, ctx)?;
    let value = arg_json(args, 1, ctx)?;
    RUN.with(|r| set_metadata_entry(&mut r.borrow_mut(), key, encode_metadata_value(&value)));
    Ok(JsValue::undefined())
}

fn set_custom_attribute(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let name = arg_string(args, 0, ctx)?;
    let name_format = match args.get_or_undefined(1) {
        v if v.is_null_or_undefined() => String::new(),
        v => v.to_string(ctx)?.to_std_string_escaped(),
    };
    let mut values = Vec::new();
    for arg in args.iter().skip(2) {
        values.push(Value::String(arg.to_string(ctx)?.to_std_string_escaped()));
    }
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        if r.attributes.iter().any(|a| a.get("name").and_then(Value::as_str) == Some(name.as_str())) {
            return;
        }
        let mut attr = json!({"name": name, "values": values});
        if !name_format.is_empty() {
            attr["nameFormat"] = Value::String(name_format);
        }
        r.attributes.push(attr);
    });
    Ok(JsValue::undefined())
}

/// A named native function that captures one array of the run's `api` object.
fn array_fn<F>(ctx: &mut Context, name: &str, length: usize, array: &JsObject, f: F) -> JsValue
where
    F: Fn(&JsValue, &[JsValue], &JsObject, &mut Context) -> JsResult<JsValue> + Copy + 'static,
{
    FunctionObjectBuilder::new(ctx.realm(), NativeFunction::from_copy_closure_with_captures(f, array.clone()))
        .name(JsString::from(name))
        .length(length)
        .build()
        .into()
}

/// `appendMetadata(key, value)`: pushes `{key, value}` onto the captured `api.metadata` array.
fn append_metadata_fn(ctx: &mut Context, array: &JsObject) -> JsValue {
    array_fn(ctx, "appendMetadata", 2, array, |_, args, array, ctx| {
        let key = arg_string(args, 0, ctx)?;
        let item = ObjectInitializer::new(ctx)
            .property(js_string!("key"), JsString::from(key.as_str()), Attribute::all())
            .property(js_string!("value"), args.get_or_undefined(1).clone(), Attribute::all())
            .build();
        let arr = JsArray::from_object(array.clone())?;
        arr.push(item, ctx)?;
        Ok(JsValue::undefined())
    })
}

/// `v1.appendUserGrant({projectId, projectGrantId?, roles})` onto the captured `api.userGrants`.
fn append_user_grant_fn(ctx: &mut Context, array: &JsObject) -> JsValue {
    array_fn(ctx, "appendUserGrant", 1, array, |_, args, array, ctx| {
        let grant = args.get_or_undefined(0);
        let Some(obj) = grant.as_object() else {
            return Err(type_err("appendUserGrant: a grant object {projectId, roles} is required"));
        };
        let project = obj.get(js_string!("projectId"), ctx)?;
        if project.is_null_or_undefined() || project.as_string().is_some_and(|s| s.is_empty()) {
            return Err(type_err("appendUserGrant: projectId is required"));
        }
        let item = ObjectInitializer::new(ctx).property(js_string!("projectId"), project, Attribute::all()).build();
        for key in ["projectGrantId", "roles"] {
            let v = obj.get(JsString::from(key), ctx)?;
            item.set(JsString::from(key), v, true, ctx)?;
        }
        JsArray::from_object(array.clone())?.push(item, ctx)?;
        Ok(JsValue::undefined())
    })
}

fn object_with(ctx: &mut Context, fns: &[(&str, usize, NativeFn)]) -> JsObject {
    let mut init = ObjectInitializer::new(ctx);
    for (name, len, f) in fns {
        init.function(NativeFunction::from_fn_ptr(*f), JsString::from(*name), *len);
    }
    init.build()
}

fn string_or_empty(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        _ => Value::String(String::new()),
    }
}

/// Resets the per-run state and builds the bindings for one flow/trigger.
pub fn begin(
    ctx: &mut Context,
    flow: i32,
    trigger: i32,
    name: &str,
    context: &Value,
    state: &Value,
) -> JsResult<Bindings> {
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
    RUN.with(|r| {
        *r.borrow_mut() = RunState {
            name: name.to_string(),
            context: context.clone(),
            claims_input,
            claims_added: state.get("claims").and_then(Value::as_object).cloned().unwrap_or_default(),
            metadata,
            external_user: external_user.unwrap_or_else(|| json!({})),
            user,
            grants: state.get("userGrants").and_then(Value::as_array).cloned().unwrap_or_default(),
            attributes: state.get("attributes").and_then(Value::as_array).cloned().unwrap_or_default(),
            ..Default::default()
        }
    });
    let require = require_fn(ctx);
    let console: JsValue = logger(ctx).into();
    let c = |k: &str| context.get(k).cloned().unwrap_or(Value::Null);
    let mut metadata_array = None;
    let mut grants_array = None;
    let (ctx_value, api_value): (JsValue, JsValue) = match (flow, trigger) {
        (1, 1) => {
            let ext_user = RUN.with(|r| r.borrow().external_user.clone());
            let mut ext_view = ext_user.clone();
            if let Some(o) = ext_view.as_object_mut() {
                o.remove("metadata");
            }
            let data = json!({
                "accessToken": string_or_empty(&c("accessToken")),
                "idToken": string_or_empty(&c("idToken")),
                "refreshToken": string_or_empty(&c("refreshToken")),
                "v1": {
                    "externalUser": ext_view,
                    "authError": c("authError").as_str().unwrap_or("none"),
                    "authRequest": c("authRequest"), "httpRequest": c("httpRequest"), "providerInfo": c("providerInfo"),
                    "org": {},
                },
            });
            let ctx_obj = JsValue::from_json(&data, ctx)?;
            let o = ctx_obj.as_object().expect("object").clone();
            let f = func(ctx, "getClaim", 1, get_claim);
            set(&o, "getClaim", f, ctx)?;
            let f = func(ctx, "claimsJSON", 0, claims_json);
            set(&o, "claimsJSON", f, ctx)?;
            let v1 = child(&o, "v1", ctx)?;
            let org = child(&v1, "org", ctx)?;
            let f = func(ctx, "getMetadata", 0, get_org_metadata);
            set(&org, "getMetadata", f, ctx)?;
            // api.metadata is pre-filled with the external user's metadata, values decoded.
            let mut prefill: Vec<Value> = context
                .get("externalUser")
                .and_then(|e| e.get("metadata"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (k, v) in RUN.with(|r| r.borrow().metadata.clone()) {
                let item = json!({"key": k, "value": v});
                match prefill.iter_mut().find(|m| m.get("key").and_then(Value::as_str) == Some(k.as_str())) {
                    Some(existing) => *existing = item,
                    None => prefill.push(item),
                }
            }
            let arr = JsArray::new(ctx)?;
            let mut originals = Vec::new();
            for m in prefill {
                let key = m.get("key").and_then(Value::as_str).unwrap_or("").to_string();
                let raw = m.get("value").and_then(Value::as_str).unwrap_or("").to_string();
                let value = JsValue::from_json(&decode_metadata_value(&raw), ctx)?;
                let item = ObjectInitializer::new(ctx)
                    .property(js_string!("key"), JsString::from(key.as_str()), Attribute::all())
                    .property(js_string!("value"), value, Attribute::all())
                    .build();
                arr.push(item.clone(), ctx)?;
                originals.push((item, key, raw));
            }
            let arr_obj: JsObject = arr.into();
            let api = object_with(
                ctx,
                &[
                    ("setFirstName", 1, ext_first_name),
                    ("setLastName", 1, ext_last_name),
                    ("setNickName", 1, ext_nick_name),
                    ("setDisplayName", 1, ext_display_name),
                    ("setPreferredLanguage", 1, ext_language),
                    ("setPreferredUsername", 1, ext_preferred_username),
                    ("setEmail", 1, ext_email),
                    ("setEmailVerified", 1, ext_email_verified),
                    ("setPhone", 1, ext_phone),
                    ("setPhoneVerified", 1, ext_phone_verified),
                ],
            );
            set(&api, "metadata", arr_obj.clone().into(), ctx)?;
            let append = append_metadata_fn(ctx, &arr_obj);
            let v1api = child(&api, "v1", ctx)?;
            let user = child(&v1api, "user", ctx)?;
            set(&user, "appendMetadata", append, ctx)?;
            metadata_array = Some((arr_obj, originals));
            (ctx_obj, api.into())
        }
        (1 | 3, 2) => {
            let user = RUN.with(|r| r.borrow().user.clone());
            let data = json!({"v1": {"user": user, "authRequest": c("authRequest"), "httpRequest": c("httpRequest")}});
            let ctx_obj = JsValue::from_json(&data, ctx)?;
            let api = object_with(
                ctx,
                &[
                    ("setFirstName", 1, usr_first_name),
                    ("setLastName", 1, usr_last_name),
                    ("setNickName", 1, usr_nick_name),
                    ("setDisplayName", 1, usr_display_name),
                    ("setPreferredLanguage", 1, usr_language),
                    ("setGender", 1, usr_gender),
                    ("setUsername", 1, usr_username),
                    ("setEmail", 1, usr_email),
                    ("setEmailVerified", 1, usr_email_verified),
                    ("setPhone", 1, usr_phone),
                    ("setPhoneVerified", 1, usr_phone_verified),
                ],
            );
            let arr_obj: JsObject = JsArray::new(ctx)?.into();
            set(&api, "metadata", arr_obj.clone().into(), ctx)?;
            let append = append_metadata_fn(ctx, &arr_obj);
            let v1api = child(&api, "v1", ctx)?;
            let u = child(&v1api, "user", ctx)?;
            set(&u, "appendMetadata", append, ctx)?;
            metadata_array = Some((arr_obj, Vec::new()));
            (ctx_obj, api.into())
        }
        (1 | 3, 3) => {
            let data = json!({"v1": {"authRequest": c("authRequest"), "httpRequest": c("httpRequest")}});
            let ctx_obj = JsValue::from_json(&data, ctx)?;
            let v1 = child(&ctx_obj.as_object().expect("object"), "v1", ctx)?;
            let f = func(ctx, "getUser", 0, get_user);
            set(&v1, "getUser", f, ctx)?;
            let api = JsObject::with_object_proto(ctx.intrinsics());
            let arr_obj: JsObject = JsArray::new(ctx)?.into();
            set(&api, "userGrants", arr_obj.clone().into(), ctx)?;
            let append = append_user_grant_fn(ctx, &arr_obj);
            let v1api = child(&api, "v1", ctx)?;
            set(&v1api, "appendUserGrant", append, ctx)?;
            grants_array = Some(arr_obj);
            (ctx_obj, api.into())
        }
        (3, 1) => {
            let data = json!({"v1": {
                "authMethod": string_or_empty(&c("authMethod")),
                "authError": c("authError").as_str().unwrap_or("none"),
                "authRequest": c("authRequest"), "httpRequest": c("httpRequest"),
            }});
            let ctx_obj = JsValue::from_json(&data, ctx)?;
            let api = JsObject::with_object_proto(ctx.intrinsics());
            let arr_obj: JsObject = JsArray::new(ctx)?.into();
            set(&api, "metadata", arr_obj.clone().into(), ctx)?;
            let append = append_metadata_fn(ctx, &arr_obj);
            let v1api = child(&api, "v1", ctx)?;
            let u = child(&v1api, "user", ctx)?;
            set(&u, "appendMetadata", append, ctx)?;
            metadata_array = Some((arr_obj, Vec::new()));
            (ctx_obj, api.into())
        }
        (2, 4 | 5) | (4, 6) => {
            let grants = c("userGrants").as_array().cloned().unwrap_or_default();
            let mut v1 = json!({"user": {"grants": {"count": grants.len(), "grants": grants}}, "org": {}});
            if flow == 2 {
                let claims = RUN.with(|r| {
                    let r = r.borrow();
                    let mut all = r.claims_input.clone();
                    for (k, v) in &r.claims_added {
                        all.insert(k.clone(), v.clone());
                    }
                    all
                });
                v1["claims"] = Value::Object(claims);
                v1["application"] = json!({});
                v1["actor"] = c("actor");
            }
            let ctx_obj = JsValue::from_json(&json!({ "v1": v1 }), ctx)?;
            let v1o = child(&ctx_obj.as_object().expect("object"), "v1", ctx)?;
            let f = func(ctx, "getUser", 0, get_user);
            set(&v1o, "getUser", f, ctx)?;
            let user = child(&v1o, "user", ctx)?;
            let f = func(ctx, "getMetadata", 0, get_user_metadata);
            set(&user, "getMetadata", f, ctx)?;
            let org = child(&v1o, "org", ctx)?;
            let f = func(ctx, "getMetadata", 0, get_org_metadata);
            set(&org, "getMetadata", f, ctx)?;
            let api = JsObject::with_object_proto(ctx.intrinsics());
            let v1api = child(&api, "v1", ctx)?;
            let u = object_with(ctx, &[("setMetadata", 2, set_metadata)]);
            set(&v1api, "user", u.into(), ctx)?;
            if flow == 2 {
                let app = child(&v1o, "application", ctx)?;
                let f = func(ctx, "getClientId", 0, get_client_id);
                set(&app, "getClientId", f, ctx)?;
                let claims =
                    object_with(ctx, &[("setClaim", 2, set_claim), ("appendLogIntoClaims", 1, append_log_into_claims)]);
                set(&v1api, "claims", claims.clone().into(), ctx)?;
                set(&v1api, "userinfo", claims.into(), ctx)?;
            } else {
                let attrs = object_with(ctx, &[("setCustomAttribute", 3, set_custom_attribute)]);
                set(&v1api, "attributes", attrs.into(), ctx)?;
            }
            (ctx_obj, api.into())
        }
        _ => return Err(type_err(format!("unsupported flow/trigger {flow}/{trigger}"))),
    };
    Ok(Bindings { ctx: ctx_value, api: api_value, require, console, metadata_array, grants_array, flow, trigger })
}

/// After a successful run: the new effects state.
pub fn finish(b: &Bindings, ctx: &mut Context) -> JsResult<Value> {
    if let Some((arr, originals)) = &b.metadata_array {
        let arr = JsArray::from_object(arr.clone())?;
        let len = arr.length(ctx)?;
        for i in 0..len {
            let item = arr.get(i, ctx)?;
            let Some(obj) = item.as_object() else { continue };
            let key = obj.get(js_string!("key"), ctx)?.to_string(ctx)?.to_std_string_escaped();
            let value = obj.get(js_string!("value"), ctx)?.to_json(ctx)?.unwrap_or(Value::Null);
            let encoded = encode_metadata_value(&value);
            let unchanged = originals.iter().any(|(o, k, raw)| {
                JsObject::equals(o, &obj) && *k == key && (*raw == encoded || decode_metadata_value(raw) == value)
            });
            if !unchanged {
                RUN.with(|r| set_metadata_entry(&mut r.borrow_mut(), key, encoded));
            }
        }
    }
    if let Some(arr) = &b.grants_array {
        let arr = JsArray::from_object(arr.clone())?;
        let len = arr.length(ctx)?;
        let mut grants = Vec::new();
        for i in 0..len {
            let item = arr.get(i, ctx)?;
            let Some(obj) = item.as_object() else { continue };
            let pick = |a: &str, b: &str, ctx: &mut Context| -> JsResult<JsValue> {
                let v = obj.get(JsString::from(a), ctx)?;
                if v.is_null_or_undefined() {
                    obj.get(JsString::from(b), ctx)
                } else {
                    Ok(v)
                }
            };
            let project = pick("projectId", "projectID", ctx)?;
            let project = if project.is_null_or_undefined() {
                String::new()
            } else {
                project.to_string(ctx)?.to_std_string_escaped()
            };
            let mut grant = json!({"projectId": project});
            let pg = pick("projectGrantId", "projectGrantID", ctx)?;
            if !pg.is_null_or_undefined() {
                let pg = pg.to_string(ctx)?.to_std_string_escaped();
                if !pg.is_empty() {
                    grant["projectGrantId"] = Value::String(pg);
                }
            }
            let roles = obj.get(js_string!("roles"), ctx)?;
            let mut list = Vec::new();
            if let Some(r) = roles.as_object().and_then(|o| JsArray::from_object(o.clone()).ok()) {
                for j in 0..r.length(ctx)? {
                    list.push(Value::String(r.get(j, ctx)?.to_string(ctx)?.to_std_string_escaped()));
                }
            }
            grant["roles"] = Value::Array(list);
            grants.push(grant);
        }
        RUN.with(|r| r.borrow_mut().grants.extend(grants));
    }
    Ok(RUN.with(|r| {
        let r = r.borrow();
        let metadata: Vec<Value> = r.metadata.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        match (b.flow, b.trigger) {
            (1, 1) => {
                let mut e = r.external_user.clone();
                if let Some(o) = e.as_object_mut() {
                    o.remove("metadata");
                }
                json!({"externalUser": e, "metadata": metadata})
            }
            (1 | 3, 2) => json!({"user": r.user, "metadata": metadata}),
            (1 | 3, 3) => json!({"userGrants": r.grants}),
            (3, 1) => json!({"metadata": metadata}),
            (2, _) => {
                let mut claims = r.claims_added.clone();
                if !r.action_log.is_empty() {
                    claims.insert(format!("urn:zitadel:iam:action:{}:log", r.name), json!(r.action_log));
                }
                json!({"claims": claims, "metadata": metadata})
            }
            _ => json!({"attributes": r.attributes, "metadata": metadata}),
        }
    }))
}

/// Logs and counters of the run (also after a failure).
pub fn usage() -> Usage {
    RUN.with(|r| {
        let mut r = r.borrow_mut();
        Usage { logs: std::mem::take(&mut r.logs), http_calls: r.http_calls, log_bytes: r.log_bytes }
    })
}
