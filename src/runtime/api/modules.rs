//! `require`: `zitadel/http` (`fetch` through the worker's guarded client), `zitadel/uuid`,
//! `zitadel/log` and `zitadel/secrets`.

use super::*;

pub(super) fn fetch(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let url = args.get_or_undefined(0);
    if !url.is_string() {
        return Err(type_err("fetch: url must be a string"));
    }
    let mut req =
        FetchRequest { url: url.to_string(ctx)?.to_std_string_lossy(), method: None, headers: None, body: None };
    let options = args.get_or_undefined(1);
    if !options.is_null_or_undefined() && !options.is_object() {
        return Err(type_err("fetch: options must be an object {method?, headers?, body?}"));
    }
    if let Some(options) = options.as_object() {
        let method = options.get(js_string!("method"), ctx)?;
        if !method.is_null_or_undefined() {
            req.method = Some(method.to_string(ctx)?.to_std_string_lossy().to_uppercase());
        }
        let headers = options.get(js_string!("headers"), ctx)?;
        if !headers.is_null_or_undefined() && !headers.is_object() {
            return Err(type_err("fetch: headers must be an object of names to values"));
        }
        if let Some(h) = headers.as_object() {
            let mut map = std::collections::BTreeMap::new();
            for key in h.own_property_keys(ctx)? {
                let name = match &key {
                    boa_engine::property::PropertyKey::String(s) => s.to_std_string_lossy(),
                    boa_engine::property::PropertyKey::Index(i) => i.get().to_string(),
                    boa_engine::property::PropertyKey::Symbol(_) => continue,
                };
                let v = h.get(key, ctx)?;
                let values = if let Some(arr) = v.as_object().and_then(|o| JsArray::from_object(o.clone()).ok()) {
                    let len = arr.length(ctx)?;
                    let mut out = Vec::new();
                    for i in 0..len {
                        out.push(arr.get(i, ctx)?.to_string(ctx)?.to_std_string_lossy());
                    }
                    out
                } else {
                    v.to_string(ctx)?.to_std_string_lossy().split(',').map(|s| s.trim().to_string()).collect()
                };
                map.insert(name, values);
            }
            req.headers = Some(map);
        }
        let body = options.get(js_string!("body"), ctx)?;
        if !body.is_undefined() {
            req.body = stringify(&body, ctx)?;
        }
    }
    if ctx.get_data::<super::super::FetchDenied>().is_some() {
        return Err(err("fetch: denied in this replay (FETCH_DENY)"));
    }
    let count = with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        r.http_calls += 1;
        r.http_calls
    });
    if let Some(spill) = ctx.get_data::<std::rc::Rc<crate::runtime::LogSpill>>() {
        spill.http_call(count);
    }
    let result = match ctx.get_data::<Net>() {
        Some(net) => http::fetch_blocking(&net.client, &net.policy, req),
        None => Err("fetch: networking is not available".into()),
    };
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

pub(super) fn response_body(this: &JsValue, ctx: &mut Context) -> JsResult<String> {
    let obj = this.as_object().ok_or_else(|| type_err("not a fetch response"))?;
    Ok(obj.get(js_string!("body"), ctx)?.to_string(ctx)?.to_std_string_lossy())
}

pub(super) fn response_text(this: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let obj = this.as_object().ok_or_else(|| type_err("not a fetch response"))?;
    // The body string itself (shared, not copied: a body may be 10 MiB).
    Ok(obj.get(js_string!("body"), ctx)?.to_string(ctx)?.into())
}

pub(super) fn response_json(this: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let body = response_body(this, ctx)?;
    read_json(&body, ctx).map_err(|e| err(format!("fetch: response is not valid JSON: {e}")))
}

/// `text` read into script values as `JSON.parse` builds them; None where the reader refuses it
/// (malformed text, nesting past 128 levels, a number past the double range).
pub fn parse_json(text: &str, ctx: &mut Context) -> Option<JsValue> {
    read_json(text, ctx).ok()
}

/// JSON text read into script values. An escape of a lone surrogate, which JSON allows and the
/// reader refuses, gives the string that code unit (as `JSON.parse` does): the text is read again
/// with such escapes marked ([`crate::domain::json_text::mark_lone_surrogates`]).
fn read_json(text: &str, ctx: &mut Context) -> serde_json::Result<JsValue> {
    let read = |text: &str, marked: bool, ctx: &mut Context| {
        let mut de = serde_json::Deserializer::from_str(text);
        let value = serde::de::DeserializeSeed::deserialize(JsonToJs { ctx, marked }, &mut de)?;
        de.end().map(|()| value)
    };
    read(text, false, ctx).or_else(|strict| match crate::domain::json_text::mark_lone_surrogates(text) {
        Some(marked) => read(&marked, true, ctx),
        None => Err(strict),
    })
}

/// Reads JSON text straight into script values, as `JSON.parse` builds them: members in the
/// order of the text (a later duplicate wins), `__proto__` an ordinary member.
struct JsonToJs<'a> {
    ctx: &'a mut Context,
    /// Strings hold marked lone surrogates, to be restored.
    marked: bool,
}

impl JsonToJs<'_> {
    fn string(&self, v: &str) -> JsString {
        if self.marked && v.contains(crate::domain::json_text::MARK) {
            JsString::from(&crate::domain::json_text::unmark(v)[..])
        } else {
            JsString::from(v)
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for JsonToJs<'_> {
    type Value = JsValue;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<JsValue, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonToJs<'_> {
    type Value = JsValue;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<JsValue, E> {
        Ok(JsValue::null())
    }
    fn visit_bool<E>(self, v: bool) -> Result<JsValue, E> {
        Ok(JsValue::new(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<JsValue, E> {
        Ok(i32::try_from(v).map_or_else(|_| JsValue::new(v as f64), JsValue::new))
    }
    fn visit_u64<E>(self, v: u64) -> Result<JsValue, E> {
        Ok(i32::try_from(v).map_or_else(|_| JsValue::new(v as f64), JsValue::new))
    }
    fn visit_f64<E>(self, v: f64) -> Result<JsValue, E> {
        Ok(JsValue::new(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<JsValue, E> {
        Ok(JsValue::from(self.string(v)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<JsValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(JsonToJs { ctx: &mut *self.ctx, marked: self.marked })? {
            items.push(item);
        }
        Ok(JsArray::from_iter(items, self.ctx).into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsValue, A::Error> {
        let object = JsObject::with_object_proto(self.ctx.intrinsics());
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(JsonToJs { ctx: &mut *self.ctx, marked: self.marked })?;
            object
                .create_data_property_or_throw(self.string(&key), value, self.ctx)
                .map_err(|e| serde::de::Error::custom(e.to_string()))?;
        }
        Ok(object.into())
    }
}

pub(super) fn uuid_str(id: uuid::Uuid) -> JsValue {
    js_str(&id.to_string())
}

pub(super) fn uuid_v1(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let mut node = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut node);
    let at = with_run(ctx, |run| {
        let mut run = run.borrow_mut();
        let clock = run.uuid_v1_clock.get_or_insert_with(|| uuid::timestamp::context::ContextV1::new(rand::random()));
        uuid::Timestamp::now(&*clock)
    });
    Ok(uuid_str(uuid::Uuid::new_v1(at, &node)))
}
pub(super) fn uuid_v4(_: &JsValue, _: &[JsValue], _: &mut Context) -> JsResult<JsValue> {
    Ok(uuid_str(uuid::Uuid::new_v4()))
}
pub(super) fn uuid_v7(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let at = with_run(ctx, |run| uuid::Timestamp::now(&run.borrow().uuid_v7_clock));
    Ok(uuid_str(uuid::Uuid::new_v7(at)))
}
pub(super) fn uuid_named(args: &[JsValue], ctx: &mut Context) -> JsResult<(uuid::Uuid, String)> {
    let ns = arg_string(args, 0, ctx)?;
    let name = arg_string(args, 1, ctx)?;
    let ns = uuid::Uuid::parse_str(&ns).map_err(|_| type_err(format!("uuid: invalid namespace {ns:?}")))?;
    Ok((ns, name))
}
pub(super) fn uuid_v3(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let (ns, name) = uuid_named(args, ctx)?;
    Ok(uuid_str(uuid::Uuid::new_v3(&ns, name.as_bytes())))
}
pub(super) fn uuid_v5(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let (ns, name) = uuid_named(args, ctx)?;
    Ok(uuid_str(uuid::Uuid::new_v5(&ns, name.as_bytes())))
}

pub(super) fn uuid_module(ctx: &mut Context) -> JsObject {
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

/// `get(name)`: the secret's value as a string, or `undefined` when the organization has none of
/// that name.
pub(super) fn secret_get(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let name = args.get_or_undefined(0);
    if !name.is_string() {
        return Err(type_err("secrets.get: name must be a string"));
    }
    let name = name.to_string(ctx)?.to_std_string_lossy();
    Ok(with_run(ctx, |r| r.borrow().secrets.get(&name).map(|v| js_str(v)).unwrap_or_default()))
}

pub(super) fn secrets_module(ctx: &mut Context) -> JsObject {
    ObjectInitializer::new(ctx).function(NativeFunction::from_fn_ptr(secret_get), js_string!("get"), 1).build()
}

pub(super) fn require_fn(ctx: &mut Context) -> JsValue {
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
                    // Built on first use: most scripts never ask for it.
                    "zitadel/secrets" => Ok(secrets_module(ctx).into()),
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
