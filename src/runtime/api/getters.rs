//! The `ctx` getters: values read from the trigger's context and the run's state.

use super::*;

pub(super) fn context_field(ctx: &Context, path: &[&str]) -> Value {
    with_run(ctx, |r| {
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

pub(super) fn get_user(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let user = zero_filled_user(Some(&context_field(ctx, &["user"])));
    JsValue::from_json(&user, ctx)
}

pub(super) fn get_user_metadata(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let items = with_run(ctx, |r| merged_user_metadata(&r.borrow()));
    JsValue::from_json(&metadata_result(&items), ctx)
}

pub(super) fn get_org_metadata(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let items = context_field(ctx, &["org", "metadata"]).as_array().cloned().unwrap_or_default();
    JsValue::from_json(&metadata_result(&items), ctx)
}

/// `getOrgMetadata()` of the `index`th user grant: the metadata of the organization that owns the
/// grant (`userGrants[i].orgMetadata` of the context, ZITADEL ≥ 2.51), shaped like `getMetadata()`.
pub(super) fn get_grant_org_metadata(index: usize, ctx: &mut Context) -> JsResult<JsValue> {
    let items = with_run(ctx, |r| {
        r.borrow()
            .context
            .get("userGrants")
            .and_then(|g| g.get(index))
            .and_then(|g| g.get("orgMetadata"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    });
    JsValue::from_json(&metadata_result(&items), ctx)
}

pub(super) fn get_client_id(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    Ok(js_str(context_field(ctx, &["application", "clientId"]).as_str().unwrap_or("")))
}

pub(super) fn get_claim(_: &JsValue, args: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let name = arg_string(args, 0, ctx)?;
    match context_field(ctx, &["idTokenClaims", &name]) {
        Value::Null => Ok(JsValue::null()),
        v => JsValue::from_json(&v, ctx),
    }
}

pub(super) fn claims_json(_: &JsValue, _: &[JsValue], ctx: &mut Context) -> JsResult<JsValue> {
    let claims = context_field(ctx, &["idTokenClaims"]);
    let claims = if claims.is_null() { json!({}) } else { claims };
    Ok(js_str(&claims.to_string()))
}
