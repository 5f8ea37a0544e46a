//! The `ctx` and `api` objects of each trigger (README, "How scripts are contained"), one builder per kind of trigger.

use super::*;
use crate::domain::{FlowType, Trigger};

/// One trigger's `ctx` and `api`, and which of `api`'s lists `finish` reads back.
pub(super) struct Built {
    pub ctx: JsValue,
    pub api: JsValue,
    /// The trigger has `api.metadata`, pre-filled with these entries.
    pub metadata_prefilled: Option<Vec<Prefilled>>,
    /// The trigger has `api.userGrants`.
    pub has_grants: bool,
}

/// The bindings of `trigger`, from the run's context (`context`) and state.
pub(super) fn build(ctx: &mut Context, trigger: Trigger, context: &Value) -> JsResult<Built> {
    use Trigger::*;
    match trigger {
        ExternalPostAuthentication => external_post_authentication(ctx, context),
        ExternalPreCreation | InternalPreCreation => pre_creation(ctx, context),
        ExternalPostCreation | InternalPostCreation => post_creation(ctx, context),
        InternalPostAuthentication => internal_post_authentication(ctx, context),
        PreUserinfoCreation | PreAccessTokenCreation | PreSamlResponseCreation => complement(ctx, context, trigger),
    }
}

fn field(context: &Value, key: &str) -> Value {
    context.get(key).cloned().unwrap_or(Value::Null)
}

/// External Authentication / Post Authentication: the external user and its metadata, tokens of the IdP.
fn external_post_authentication(ctx: &mut Context, context: &Value) -> JsResult<Built> {
    let ext_user = with_run(ctx, |r| r.borrow().external_user.clone());
    let mut ext_view = ext_user.clone();
    if !ext_view.is_object() {
        ext_view = json!({});
    }
    // api.metadata is pre-filled with the external user's metadata, values decoded.
    let given = context.get("externalUser").and_then(|e| e.get("metadata"));
    let entries = metadata_so_far(ctx, given);
    let so_far: Vec<Value> =
        entries.iter().map(|(key, raw)| json!({"key": key, "value": decode_metadata_value(raw)})).collect();
    if let Some(o) = ext_view.as_object_mut() {
        // Every member of the shape is there (as upstream's object of a Go struct), the missing
        // ones as zero values, so that `ctx.v1.externalUser.human.email` never throws. Its
        // `metadata` is a copy of what `api.metadata` starts with (values decoded); scripts
        // change the user's metadata through `api.metadata`.
        o.insert("metadata".into(), Value::Array(so_far));
        for key in ["externalId", "externalIdpId", "preferredUsername"] {
            o.entry(key).or_insert_with(|| json!(""));
        }
        let human = o.entry("human").or_insert_with(|| json!({}));
        if let Some(h) = human.as_object_mut() {
            for key in ["firstName", "lastName", "nickName", "displayName", "preferredLanguage", "email", "phone"] {
                h.entry(key).or_insert_with(|| json!(""));
            }
            for key in ["isEmailVerified", "isPhoneVerified"] {
                h.entry(key).or_insert_with(|| json!(false));
            }
        }
    }
    let data = json!({
        "accessToken": string_or_empty(&field(context, "accessToken")),
        "idToken": string_or_empty(&field(context, "idToken")),
        "refreshToken": string_or_empty(&field(context, "refreshToken")),
        "v1": {
            "externalUser": ext_view,
            "authError": field(context, "authError").as_str().filter(|e| !e.is_empty()).unwrap_or("none"),
            "authRequest": field(context, "authRequest"), "httpRequest": field(context, "httpRequest"), "providerInfo": field(context, "providerInfo"),
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
    let (arr_obj, originals) = prefilled_metadata(ctx, entries)?;
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
    let append = append_metadata_fn(ctx, &api);
    let v1api = child(&api, "v1", ctx)?;
    let user = child(&v1api, "user", ctx)?;
    set(&user, "appendMetadata", append, ctx)?;
    Ok(Built { ctx: ctx_obj, api: api.into(), metadata_prefilled: Some(originals), has_grants: false })
}

/// `api.metadata` pre-filled with `entries` (from [`metadata_so_far`]), values decoded like
/// `getMetadata()`; with the items as filled in.
fn prefilled_metadata(ctx: &mut Context, entries: Vec<(String, String)>) -> JsResult<(JsObject, Vec<Prefilled>)> {
    let arr = JsArray::new(ctx)?;
    let mut originals = Vec::new();
    for (key, raw) in entries {
        let value = JsValue::from_json(&decode_metadata_value(&raw), ctx)?;
        let item = ObjectInitializer::new(ctx)
            .property(js_string!("key"), JsString::from(key.as_str()), Attribute::all())
            .property(js_string!("value"), value, Attribute::all())
            .build();
        arr.push(item, ctx)?;
        originals.push((key, raw));
    }
    Ok((arr.into(), originals))
}

/// The metadata given in the context, with the entries earlier actions of the call wrote
/// replacing or following them: (key, stored value as base64).
fn metadata_so_far(ctx: &mut Context, given: Option<&Value>) -> Vec<(String, String)> {
    let mut entries: Vec<(String, String)> = given
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| {
            let key = m.get("key").and_then(Value::as_str).unwrap_or("");
            (key.to_string(), m.get("value").and_then(Value::as_str).unwrap_or("").to_string())
        })
        .collect();
    for (k, v) in with_run(ctx, |r| r.borrow().metadata.clone()) {
        match entries.iter_mut().find(|(key, _)| *key == k) {
            Some(existing) => existing.1 = v,
            None => entries.push((k, v)),
        }
    }
    entries
}

/// Pre Creation (external and internal): the user about to be created; `metadata` in the
/// context (an extension: the connector passes a registration's metadata) pre-fills `api.metadata`.
fn pre_creation(ctx: &mut Context, context: &Value) -> JsResult<Built> {
    // The whole User shape with `human` (upstream hands over its struct), whatever members the
    // host or earlier actions left out: `ctx.v1.user.human.phone.length` never throws.
    let mut user = with_run(ctx, |r| r.borrow().user.clone());
    if !user.is_object() {
        user = json!({});
    }
    if let Some(u) = user.as_object_mut() {
        u.entry("human").or_insert_with(|| json!({}));
    }
    let user = zero_filled_user(Some(&user));
    let data = json!({"v1": {"user": user, "authRequest": field(context, "authRequest"), "httpRequest": field(context, "httpRequest")}});
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
    let entries = metadata_so_far(ctx, context.get("metadata"));
    let (arr_obj, originals) = prefilled_metadata(ctx, entries)?;
    set(&api, "metadata", arr_obj.clone().into(), ctx)?;
    let append = append_metadata_fn(ctx, &api);
    let v1api = child(&api, "v1", ctx)?;
    let u = child(&v1api, "user", ctx)?;
    set(&u, "appendMetadata", append, ctx)?;
    Ok(Built { ctx: ctx_obj, api: api.into(), metadata_prefilled: Some(originals), has_grants: false })
}

/// Post Creation (external and internal): user grants to add.
fn post_creation(ctx: &mut Context, context: &Value) -> JsResult<Built> {
    let data =
        json!({"v1": {"authRequest": field(context, "authRequest"), "httpRequest": field(context, "httpRequest")}});
    let ctx_obj = JsValue::from_json(&data, ctx)?;
    let v1 = child(&ctx_obj.as_object().expect("object"), "v1", ctx)?;
    let f = func(ctx, "getUser", 0, get_user);
    set(&v1, "getUser", f, ctx)?;
    let api = JsObject::with_object_proto(ctx.intrinsics());
    // Pre-filled with the grants earlier actions added (as upstream shares one list across the
    // trigger's actions); what the list holds after a successful run is the new list.
    let earlier = with_run(ctx, |r| r.borrow().grants.clone());
    let arr = JsArray::new(ctx)?;
    for grant in earlier {
        arr.push(JsValue::from_json(&grant, ctx)?, ctx)?;
    }
    let arr_obj: JsObject = arr.into();
    set(&api, "userGrants", arr_obj.clone().into(), ctx)?;
    let append = append_user_grant_fn(ctx, &api);
    let v1api = child(&api, "v1", ctx)?;
    set(&v1api, "appendUserGrant", append, ctx)?;
    Ok(Built { ctx: ctx_obj, api: api.into(), metadata_prefilled: None, has_grants: true })
}

/// Internal Authentication / Post Authentication: metadata of the authenticated user (`api.metadata`
/// starts empty; a later action of the trigger sees the entries of earlier ones, as upstream).
fn internal_post_authentication(ctx: &mut Context, context: &Value) -> JsResult<Built> {
    let data = json!({"v1": {
        "authMethod": string_or_empty(&field(context, "authMethod")),
        "authError": field(context, "authError").as_str().filter(|e| !e.is_empty()).unwrap_or("none"),
        "authRequest": field(context, "authRequest"), "httpRequest": field(context, "httpRequest"),
    }});
    let ctx_obj = JsValue::from_json(&data, ctx)?;
    let api = JsObject::with_object_proto(ctx.intrinsics());
    // Empty for the trigger's first action; later ones see what earlier ones added.
    let entries = metadata_so_far(ctx, None);
    let (arr_obj, originals) = prefilled_metadata(ctx, entries)?;
    set(&api, "metadata", arr_obj.clone().into(), ctx)?;
    let append = append_metadata_fn(ctx, &api);
    let v1api = child(&api, "v1", ctx)?;
    let u = child(&v1api, "user", ctx)?;
    set(&u, "appendMetadata", append, ctx)?;
    Ok(Built { ctx: ctx_obj, api: api.into(), metadata_prefilled: Some(originals), has_grants: false })
}

/// Complement Token and Complement SAMLResponse: claims or attributes, user metadata.
fn complement(ctx: &mut Context, context: &Value, trigger: Trigger) -> JsResult<Built> {
    let mut grants = field(context, "userGrants").as_array().cloned().unwrap_or_default();
    // A grant's organization metadata is read through its getOrgMetadata() (values decoded).
    for grant in &mut grants {
        if let Some(g) = grant.as_object_mut() {
            g.remove("orgMetadata");
        }
    }
    let grant_count = grants.len();
    let mut v1 = json!({"user": {"grants": {"count": grants.len(), "grants": grants}}, "org": {}});
    if trigger.flow() == FlowType::COMPLEMENT_TOKEN {
        let claims = with_run(ctx, |r| {
            let r = r.borrow();
            let mut all = r.claims_input.clone();
            for (k, v) in &r.claims_added {
                all.insert(k.clone(), v.clone());
            }
            all
        });
        v1["claims"] = Value::Object(claims);
        v1["application"] = json!({});
        v1["actor"] = field(context, "actor");
    }
    let ctx_obj = JsValue::from_json(&json!({ "v1": v1 }), ctx)?;
    let v1o = child(&ctx_obj.as_object().expect("object"), "v1", ctx)?;
    let f = func(ctx, "getUser", 0, get_user);
    set(&v1o, "getUser", f, ctx)?;
    let user = child(&v1o, "user", ctx)?;
    let f = func(ctx, "getMetadata", 0, get_user_metadata);
    set(&user, "getMetadata", f, ctx)?;
    // Each grant gets getOrgMetadata() from a prototype of its own kind (not as an own property,
    // so a grant a script serializes keeps its data shape); the method finds its grant by
    // identity among the original grant objects.
    let items = child(&child(&user, "grants", ctx)?, "grants", ctx)?;
    let originals = JsArray::new(ctx)?;
    let proto = JsObject::with_object_proto(ctx.intrinsics());
    for index in 0..grant_count {
        let item = items.get(index as u32, ctx)?;
        if let Some(grant) = item.as_object() {
            grant.set_prototype(Some(proto.clone()));
        }
        originals.push(item, ctx)?;
    }
    let f = array_fn(ctx, "getOrgMetadata", 0, &originals.into(), |this, _, originals, ctx| {
        let len = originals.get(js_string!("length"), ctx)?.to_length(ctx)?;
        for index in 0..len {
            if let (Some(original), Some(this)) = (originals.get(index, ctx)?.as_object(), this.as_object()) {
                if JsObject::equals(&original, &this) {
                    return get_grant_org_metadata(index as usize, ctx);
                }
            }
        }
        get_grant_org_metadata(usize::MAX, ctx)
    });
    set(&proto, "getOrgMetadata", f, ctx)?;
    let org = child(&v1o, "org", ctx)?;
    let f = func(ctx, "getMetadata", 0, get_org_metadata);
    set(&org, "getMetadata", f, ctx)?;
    let api = JsObject::with_object_proto(ctx.intrinsics());
    let v1api = child(&api, "v1", ctx)?;
    let u = object_with(ctx, &[("setMetadata", 2, set_metadata)]);
    set(&v1api, "user", u.into(), ctx)?;
    if trigger.flow() == FlowType::COMPLEMENT_TOKEN {
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
    Ok(Built { ctx: ctx_obj, api: api.into(), metadata_prefilled: None, has_grants: false })
}
