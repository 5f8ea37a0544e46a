//! The `api` functions: setters of the external user and the user being created, claims,
//! metadata, SAML attributes and user grants, writing to the run's state.

use super::*;

/// Whose fields a setter writes: the external user (External Authentication) or the user being
/// created (Pre Creation). The name is the effect key, used in the paths of [`RunState::fields_set`].
#[derive(Clone, Copy)]
pub(super) enum Target {
    External,
    User,
}

impl Target {
    fn value(self, r: &mut RunState) -> &mut Value {
        match self {
            Target::External => &mut r.external_user,
            Target::User => &mut r.user,
        }
    }

    fn key(self) -> &'static str {
        match self {
            Target::External => "externalUser",
            Target::User => "user",
        }
    }
}

/// Notes that a setter wrote `path` (e.g. `user.human.nickName`), whatever the value: a setter
/// writing the zero value clears the field, which the zero-omitting effects cannot tell apart
/// from a field left alone.
fn note_set(r: &mut RunState, path: String) {
    if !r.fields_set.contains(&path) {
        r.fields_set.push(path);
    }
}

pub(super) fn human_setter(ctx: &Context, target: Target, field: &str, value: Value) {
    with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        note_set(&mut r, format!("{}.human.{field}", target.key()));
        let obj = target.value(&mut r);
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
pub(super) fn top_setter(ctx: &Context, target: Target, field: &str, value: Value) {
    with_run(ctx, |r| {
        let mut r = r.borrow_mut();
        note_set(&mut r, format!("{}.{field}", target.key()));
        let obj = target.value(&mut r);
        if !obj.is_object() {
            *obj = json!({});
        }
        obj[field] = value;
    });
}

macro_rules! string_setter {
    ($fn_name:ident, $target:expr, $field:literal) => {
        pub(super) fn $fn_name(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
            let v = arg_string(args, 0, ctx)?;
            human_setter(ctx, $target, $field, Value::String(v));
            Ok(JsValue::undefined())
        }
    };
}

string_setter!(ext_first_name, Target::External, "firstName");
string_setter!(ext_last_name, Target::External, "lastName");
string_setter!(ext_nick_name, Target::External, "nickName");
string_setter!(ext_display_name, Target::External, "displayName");
string_setter!(ext_email, Target::External, "email");
string_setter!(ext_phone, Target::External, "phone");
string_setter!(usr_first_name, Target::User, "firstName");
string_setter!(usr_last_name, Target::User, "lastName");
string_setter!(usr_nick_name, Target::User, "nickName");
string_setter!(usr_display_name, Target::User, "displayName");
string_setter!(usr_email, Target::User, "email");
string_setter!(usr_phone, Target::User, "phone");

pub(super) fn locale_arg(args: &[JsValue], ctx: &mut Context) -> JsResult<Value> {
    let v = arg_string(args, 0, ctx)?;
    Ok(Value::String(canonical_locale(&v).unwrap_or_else(|| "und".into())))
}

pub(super) fn ext_language(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = locale_arg(args, ctx)?;
    human_setter(ctx, Target::External, "preferredLanguage", v);
    Ok(JsValue::undefined())
}
pub(super) fn usr_language(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = locale_arg(args, ctx)?;
    human_setter(ctx, Target::User, "preferredLanguage", v);
    Ok(JsValue::undefined())
}
pub(super) fn ext_email_verified(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    human_setter(ctx, Target::External, "isEmailVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    Ok(JsValue::undefined())
}
pub(super) fn ext_phone_verified(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    human_setter(ctx, Target::External, "isPhoneVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    Ok(JsValue::undefined())
}
pub(super) fn ext_preferred_username(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = arg_string(args, 0, ctx)?;
    top_setter(ctx, Target::External, "preferredUsername", Value::String(v));
    Ok(JsValue::undefined())
}
pub(super) fn user_has(ctx: &Context, field: &str) -> bool {
    with_run(ctx, |r| {
        r.borrow().user.get("human").and_then(|h| h.get(field)).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
    })
}
pub(super) fn usr_email_verified(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    if user_has(ctx, "email") {
        human_setter(ctx, Target::User, "isEmailVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    }
    Ok(JsValue::undefined())
}
pub(super) fn usr_phone_verified(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    if user_has(ctx, "phone") {
        human_setter(ctx, Target::User, "isPhoneVerified", Value::Bool(args.get_or_undefined(0).to_boolean()));
    }
    Ok(JsValue::undefined())
}
pub(super) fn usr_gender(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = args.get_or_undefined(0);
    let n = if let Some(s) = v.as_string() {
        let s = s.to_std_string_lossy();
        GENDERS.iter().position(|g| *g == s).map(|p| p as f64).unwrap_or_else(|| s.parse().unwrap_or(0.0))
    } else if v.is_undefined() {
        0.0
    } else {
        v.to_number(ctx)?
    };
    // Anything but the four genders is "unspecified", like an unknown name.
    let n = if n.is_finite() && (0.0..4.0).contains(&n) { n.trunc() as i64 } else { 0 };
    human_setter(ctx, Target::User, "gender", json!(n));
    Ok(JsValue::undefined())
}
pub(super) fn usr_username(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let v = arg_string(args, 0, ctx)?;
    top_setter(ctx, Target::User, "username", Value::String(v));
    Ok(JsValue::undefined())
}

pub(super) fn set_claim(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let key = arg_string(args, 0, ctx)?;
    let value = arg_json(args, 1, ctx)?;
    with_run(ctx, |r| {
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

pub(super) fn append_log_into_claims(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let entry = arg_string(args, 0, ctx)?;
    with_run(ctx, |r| r.borrow_mut().action_log.push(entry));
    Ok(JsValue::undefined())
}

pub(super) fn set_metadata(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let key = arg_string(args, 0, ctx)?;
    let value = arg_json(args, 1, ctx)?;
    with_run(ctx, |r| set_metadata_entry(&mut r.borrow_mut(), key, encode_metadata_value(&value)));
    Ok(JsValue::undefined())
}

pub(super) fn set_custom_attribute(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let name = arg_string(args, 0, ctx)?;
    let name_format = string_param(args.get_or_undefined(1), ctx)?;
    let mut values = Vec::new();
    for arg in args.iter().skip(2) {
        values.push(Value::String(string_param(arg, ctx)?));
    }
    with_run(ctx, |r| {
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
pub(super) fn array_fn<F>(ctx: &mut Context, name: &str, length: usize, array: &JsObject, f: F) -> JsValue
where
    F: Fn(&JsValue, &[JsValue], &JsObject, &mut Context) -> JsResult<JsValue> + Copy + 'static,
{
    FunctionObjectBuilder::new(ctx.realm(), NativeFunction::from_copy_closure_with_captures(f, array.clone()))
        .name(JsString::from(name))
        .length(length)
        .build()
        .into()
}

/// The array `api.<name>` holds now: a script may have assigned another (upstream's field is a Go
/// slice, which an assignment replaces); `null` or `undefined` is the empty list (a nil slice).
pub(super) fn current_array(api: &JsObject, name: &str, ctx: &mut Context) -> JsResult<Option<JsArray>> {
    let value = api.get(JsString::from(name), ctx)?;
    if value.is_null_or_undefined() {
        return Ok(None);
    }
    match value.as_object().filter(|o| o.is_array()) {
        Some(o) => Ok(Some(JsArray::from_object(o.clone())?)),
        None => Err(super::type_err(format!("api.{name} must be an array"))),
    }
}

/// Pushes `item` onto the array `api.<name>` holds now (a new one when it holds none).
fn push_onto(api: &JsObject, name: &str, item: JsValue, ctx: &mut Context) -> JsResult<()> {
    let arr = match current_array(api, name, ctx)? {
        Some(arr) => arr,
        None => {
            let arr = JsArray::new(ctx)?;
            api.set(JsString::from(name), arr.clone(), true, ctx)?;
            arr
        }
    };
    arr.push(item, ctx)?;
    Ok(())
}

/// `appendMetadata(key, value)`: pushes `{key, value}` onto `api.metadata`.
pub(super) fn append_metadata_fn(ctx: &mut Context, api: &JsObject) -> JsValue {
    array_fn(ctx, "appendMetadata", 2, api, |_, args, api, ctx| {
        let key = arg_string(args, 0, ctx)?;
        let item = ObjectInitializer::new(ctx)
            .property(js_string!("key"), JsString::from(key.as_str()), Attribute::all())
            .property(js_string!("value"), args.get_or_undefined(1).clone(), Attribute::all())
            .build();
        push_onto(api, "metadata", item.into(), ctx)?;
        Ok(JsValue::undefined())
    })
}

/// `v1.appendUserGrant({projectId, projectGrantId?, roles})` onto `api.userGrants`.
pub(super) fn append_user_grant_fn(ctx: &mut Context, api: &JsObject) -> JsValue {
    array_fn(ctx, "appendUserGrant", 1, api, |_, args, api, ctx| {
        let grant = args.get_or_undefined(0);
        let Some(obj) = grant.as_object() else {
            return Err(type_err("appendUserGrant: a grant object {projectId, roles} is required"));
        };
        // Both spellings, as for items pushed onto `api.userGrants` (upstream's field is `projectID`).
        let project = super::either_spelling(&obj, "projectId", "projectID", ctx)?;
        if project.is_null_or_undefined() || project.as_string().is_some_and(|s| s.is_empty()) {
            return Err(type_err("appendUserGrant: projectId is required"));
        }
        let grant_id = super::either_spelling(&obj, "projectGrantId", "projectGrantID", ctx)?;
        let roles = obj.get(js_string!("roles"), ctx)?;
        let item = ObjectInitializer::new(ctx).property(js_string!("projectId"), project, Attribute::all()).build();
        item.set(js_string!("projectGrantId"), grant_id, true, ctx)?;
        item.set(js_string!("roles"), roles, true, ctx)?;
        push_onto(api, "userGrants", item.into(), ctx)?;
        Ok(JsValue::undefined())
    })
}

pub(super) fn object_with(ctx: &mut Context, fns: &[(&str, usize, NativeFn)]) -> JsObject {
    let mut init = ObjectInitializer::new(ctx);
    for (name, len, f) in fns {
        init.function(NativeFunction::from_fn_ptr(*f), JsString::from(*name), *len);
    }
    init.build()
}

pub(super) fn string_or_empty(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        _ => Value::String(String::new()),
    }
}
