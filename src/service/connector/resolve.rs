//! The parts of a connector call that need ZITADEL's API: whose organization a session or an
//! intent belongs to, which factors a session verified, the metadata ZITADEL does not send, and
//! the effects that only the API can apply (user grants, metadata of users that already exist).
//! Without `zitadelApi` on the connection, each falls back as the README describes.

use super::{map_response, Condition, Mapped};
use crate::domain::Trigger;
use crate::service::zitadel_api::{Access, ApiEffect, ZitadelApi};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// Maps a response condition, completing what the payload lacks through the API: for
/// CreateSession / SetSession the session's verified factors and its user, for sessions and
/// intents the user's organization. None: the condition passes through.
pub async fn map_response_with_api(
    api: &ZitadelApi,
    access: Option<&Access>,
    method: &str,
    payload: &Value,
    deadline: Instant,
) -> Option<Mapped> {
    let mut warnings = Vec::new();
    let mut mapped = if super::is_session(method) {
        // A call without checks verified nothing: it passes through without asking ZITADEL.
        if !super::checks_something(payload.get("request")?) {
            return None;
        }
        let mut from_session = None;
        if let (Some(access), Some(session_id)) = (access, super::session_id(payload)) {
            match api.session(access, &session_id, deadline).await {
                Ok(session) => from_session = Some(session),
                Err(e) => warnings.push(format!("session lookup failed: {e}")),
            }
        }
        match from_session {
            Some(session) => {
                let method = super::checked_factors_auth_method(&session, payload.get("request")?)?;
                let user_id = super::session_checked_user(payload)
                    .or_else(|| session.pointer("/factors/user/id").and_then(Value::as_str).map(str::to_string));
                Mapped {
                    trigger: Trigger::InternalPostAuthentication,
                    context: json!({"authMethod": method, "authError": "none"}),
                    zitadel_org: None,
                    user_id,
                    warnings: Vec::new(),
                }
            }
            None => map_response(method, payload)?,
        }
    } else {
        map_response(method, payload)?
    };
    let needs_user_org = super::is_session(method) || mapped.trigger == Trigger::ExternalPostAuthentication;
    if let (true, Some(access), Some(user_id)) = (needs_user_org, access, mapped.user_id.clone()) {
        match api.user_org(access, &user_id, deadline).await {
            Ok(Some(org)) => mapped.zitadel_org = Some(org),
            Ok(None) => warnings.push(format!("user {user_id} not found in ZITADEL")),
            Err(e) => warnings.push(format!("user lookup failed: {e}")),
        }
    }
    mapped.warnings.extend(warnings);
    Some(mapped)
}

/// How many organization metadata searches of one call run at a time.
const PARALLEL_LOOKUPS: usize = 8;

/// The organization that owns each of the payload's `user_grants` (`resource_owner`, in any of
/// ZITADEL's spellings), by index; None where the grant names none.
fn grant_orgs(payload: &Value) -> Vec<Option<String>> {
    let Some(grants) = payload.get("user_grants").and_then(Value::as_array) else { return vec![] };
    grants
        .iter()
        .map(|g| {
            ["resource_owner", "resourceOwner", "ResourceOwner"]
                .iter()
                .find_map(|k| g.get(*k).and_then(Value::as_str))
                .filter(|o| !o.is_empty())
                .map(str::to_string)
        })
        .collect()
}

/// Adds the metadata ZITADEL does not send, once the call is known to run actions: the org's
/// metadata (`ctx.v1.org.getMetadata()`) for the Complement Token, SAML and External
/// Authentication triggers, the metadata of each grant's organization (`getOrgMetadata()`) for
/// Complement Token and SAML, and the user's metadata for SAML when the payload has none. Each
/// organization is read once per call (and cached for 30 s). Without `zitadelApi` they stay empty;
/// a failed lookup counts as empty and leaves a warning.
pub async fn add_metadata(
    api: &ZitadelApi,
    access: Option<&Access>,
    mapped: &mut Mapped,
    payload: &Value,
    deadline: Instant,
) {
    use futures::StreamExt;
    let Some(access) = access else { return };
    let wants_org = matches!(
        mapped.trigger,
        Trigger::PreUserinfoCreation
            | Trigger::PreAccessTokenCreation
            | Trigger::PreSamlResponseCreation
            | Trigger::ExternalPostAuthentication
    );
    let has_grants = matches!(
        mapped.trigger,
        Trigger::PreUserinfoCreation | Trigger::PreAccessTokenCreation | Trigger::PreSamlResponseCreation
    );
    let has_metadata = mapped.context.pointer("/org/metadata").is_some_and(Value::is_array);
    let own_org = mapped.zitadel_org.clone().filter(|_| wants_org && !has_metadata);
    // The grants the context has as objects without their organization's metadata.
    let grant_orgs: Vec<(usize, String)> = if has_grants {
        let items = mapped.context.get("userGrants").and_then(Value::as_array);
        grant_orgs(payload)
            .into_iter()
            .enumerate()
            .filter_map(|(i, org)| Some((i, org?)))
            .filter(|(i, _)| {
                items
                    .and_then(|l| l.get(*i))
                    .is_some_and(|g| g.is_object() && !g.get("orgMetadata").is_some_and(Value::is_array))
            })
            .collect()
    } else {
        vec![]
    };
    let mut orgs: Vec<String> = Vec::new();
    for org in own_org.iter().chain(grant_orgs.iter().map(|(_, o)| o)) {
        if !orgs.contains(org) {
            orgs.push(org.clone());
        }
    }
    // Built in a loop, not a closure: a closure's future would not be `Send` for every lifetime.
    let mut lookups = Vec::with_capacity(orgs.len());
    for org in &orgs {
        lookups.push(api.org_metadata(access, org, deadline));
    }
    let found: Vec<_> = futures::stream::iter(lookups).buffered(PARALLEL_LOOKUPS).collect().await;
    let found: std::collections::HashMap<&str, _> = orgs.iter().map(String::as_str).zip(found).collect();
    if let Some(org) = &own_org {
        match &found[org.as_str()] {
            Ok(items) => {
                if !mapped.context.get("org").is_some_and(Value::is_object) {
                    mapped.context["org"] = json!({"id": org});
                }
                mapped.context["org"]["metadata"] = Value::Array(items.to_vec());
            }
            Err(e) => mapped.warnings.push(format!("org metadata lookup failed: {e}")),
        }
    }
    let mut warned: Vec<&str> = own_org.iter().map(String::as_str).collect();
    for (i, org) in &grant_orgs {
        match &found[org.as_str()] {
            Ok(items) => mapped.context["userGrants"][*i]["orgMetadata"] = Value::Array(items.to_vec()),
            Err(e) if !warned.contains(&org.as_str()) => {
                warned.push(org);
                mapped.warnings.push(format!("metadata lookup of the grant organization {org} failed: {e}"));
            }
            Err(_) => {}
        }
    }
    if mapped.trigger == Trigger::PreSamlResponseCreation && mapped.context.get("userMetadata").is_none() {
        if let Some(user_id) = mapped.user_id.clone() {
            match api.user_metadata(access, &user_id, mapped.zitadel_org.as_deref(), deadline).await {
                Ok(items) => mapped.context["userMetadata"] = Value::Array(items.to_vec()),
                Err(e) => mapped.warnings.push(format!("user metadata lookup failed: {e}")),
            }
        }
    }
}

/// The effects of a successful call that only ZITADEL's API can apply, and the warnings for
/// those that cannot be applied: user grants of Post Creation (for the new user), metadata of an
/// intent's existing user, of a session's user and of an event's user. Function replies and
/// changed requests carry their effects themselves.
pub fn api_effects(
    condition: &Condition,
    mapped: &Mapped,
    effects: &Map<String, Value>,
    access: Option<&Access>,
    has_add_human_user: bool,
) -> (Vec<ApiEffect>, Vec<String>) {
    let items = |key: &str| effects.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let (kind, list) = match (condition, mapped.trigger) {
        (Condition::Response(_), Trigger::InternalPostCreation | Trigger::ExternalPostCreation) => {
            ("userGrants", items("userGrants"))
        }
        (Condition::Response(_), Trigger::ExternalPostAuthentication) if has_add_human_user => return (vec![], vec![]),
        (Condition::Response(_) | Condition::Event(_), _) => ("metadata", items("metadata")),
        _ => return (vec![], vec![]),
    };
    if list.is_empty() {
        return (vec![], vec![]);
    }
    let Some(access) = access else {
        return (vec![], vec![format!("{kind} not applied: the connection has no zitadelApi")]);
    };
    if access.token.as_deref().is_none_or(str::is_empty) {
        return (vec![], vec![format!("{kind} not applied: the connection's zitadelApi has no token")]);
    }
    let Some(user_id) = mapped.user_id.as_deref() else {
        return (vec![], vec![format!("{kind} not applied: the user is not known")]);
    };
    if !crate::service::zitadel_api::is_path_segment(user_id) {
        return (vec![], vec![format!("{kind} not applied: the user id {user_id:?} is not a path segment")]);
    }
    let org = mapped.zitadel_org.as_deref();
    let mut warnings = Vec::new();
    let effects = list
        .iter()
        .filter_map(|item| match kind {
            "userGrants" => Some(ApiEffect::user_grant(user_id, org, item)),
            _ => {
                let key = item.get("key").and_then(Value::as_str).unwrap_or("");
                if crate::service::zitadel_api::is_path_segment(key) {
                    Some(ApiEffect::metadata(user_id, org, item))
                } else {
                    warnings
                        .push(format!("metadata {key:?} not applied: the key is not a path segment of ZITADEL's API"));
                    None
                }
            }
        })
        .collect();
    (effects, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>) -> Access {
        Access { connection_id: 1, base_url: "https://z.example.com".into(), token: token.map(str::to_string) }
    }

    fn mapped(trigger: Trigger, user: Option<&str>) -> Mapped {
        Mapped {
            trigger,
            context: json!({}),
            zitadel_org: Some("zorg".into()),
            user_id: user.map(str::to_string),
            warnings: vec![],
        }
    }

    #[test]
    fn post_creation_grants_go_through_the_api_for_the_new_user() {
        let effects = json!({"userGrants": [{"projectId": "p", "roles": ["a"]}]});
        let cond = Condition::Response("/zitadel.user.v2.UserService/AddHumanUser".into());
        let m = mapped(Trigger::InternalPostCreation, Some("u9"));
        let (list, warnings) = api_effects(&cond, &m, effects.as_object().unwrap(), Some(&access(Some("t"))), false);
        assert!(warnings.is_empty());
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].path, "/management/v1/users/u9/grants");
        assert_eq!(list[0].zitadel_org.as_deref(), Some("zorg"));
        let (none, warnings) = api_effects(&cond, &m, effects.as_object().unwrap(), None, false);
        assert!(none.is_empty());
        assert_eq!(warnings, vec!["userGrants not applied: the connection has no zitadelApi".to_string()]);
    }

    #[test]
    fn metadata_of_existing_users_goes_through_the_api_and_new_users_carry_it() {
        let effects = json!({"metadata": [{"key": "k", "value": "dg=="}]});
        let intent = Condition::Response("/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent".into());
        let m = mapped(Trigger::ExternalPostAuthentication, Some("u1"));
        let fx = effects.as_object().unwrap();
        assert_eq!(api_effects(&intent, &m, fx, Some(&access(Some("t"))), true), (vec![], vec![]), "in addHumanUser");
        let (list, _) = api_effects(&intent, &m, fx, Some(&access(Some("t"))), false);
        assert_eq!(list[0].path, "/management/v1/users/u1/metadata/k");
        let event = Condition::Event("user.human.password.check.succeeded".into());
        let (_, warnings) = api_effects(
            &event,
            &mapped(Trigger::InternalPostAuthentication, None),
            fx,
            Some(&access(Some("t"))),
            false,
        );
        assert_eq!(warnings, vec!["metadata not applied: the user is not known".to_string()]);
        let (_, warnings) = api_effects(&event, &m, fx, Some(&access(None)), false);
        assert_eq!(warnings, vec!["metadata not applied: the connection's zitadelApi has no token".to_string()]);
        let function = Condition::Function("preuserinfo".into());
        assert_eq!(api_effects(&function, &m, fx, None, false), (vec![], vec![]), "the reply carries them");
    }

    #[test]
    fn dot_keys_and_dot_user_ids_are_not_sent_to_another_path() {
        // A URL parser resolves `.` and `..` segments (escaped or not): the write would go to
        // another of ZITADEL's paths. Such keys are left out with a warning; the others go.
        let effects = json!({"metadata": [
            {"key": "..", "value": "dg=="}, {"key": ".", "value": "dg=="}, {"key": "", "value": "dg=="},
            {"key": "a.b", "value": "dg=="}, {"key": "...", "value": "dg=="}
        ]});
        let event = Condition::Event("user.human.password.check.succeeded".into());
        let fx = effects.as_object().unwrap();
        let token = access(Some("t"));
        let (list, warnings) =
            api_effects(&event, &mapped(Trigger::InternalPostAuthentication, Some("u1")), fx, Some(&token), false);
        let paths: Vec<&str> = list.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/management/v1/users/u1/metadata/a.b", "/management/v1/users/u1/metadata/..."]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(warnings[0].starts_with("metadata \"..\" not applied"), "{warnings:?}");
        for user in ["..", "."] {
            let (list, warnings) =
                api_effects(&event, &mapped(Trigger::InternalPostAuthentication, Some(user)), fx, Some(&token), false);
            assert!(list.is_empty(), "{list:?}");
            assert_eq!(warnings, vec![format!("metadata not applied: the user id {user:?} is not a path segment")]);
        }
    }

    #[test]
    fn the_factors_checked_name_the_method() {
        let method = |factors: Value, checks: Value| {
            super::super::checked_factors_auth_method(&json!({"factors": factors}), &json!({"checks": checks}))
        };
        let password = json!({"user": {"id": "u"}, "password": {"verifiedAt": "x"}});
        assert_eq!(
            method(password.clone(), json!({"user": {"userId": "u"}, "password": {"password": "p"}})),
            Some("password")
        );
        // The second step of a password + TOTP login names TOTP, though the session verified both.
        let both = json!({"user": {"id": "u"}, "password": {}, "totp": {}});
        assert_eq!(method(both.clone(), json!({"totp": {"code": "123456"}})), Some("OTP"));
        assert_eq!(method(both.clone(), json!({"otpEmail": {"code": "1"}, "totp": {"code": "1"}})), Some("OTP"));
        // A call without checks passes through: a challenge request, a new lifetime.
        assert_eq!(method(both.clone(), json!({})), None);
        assert_eq!(method(both.clone(), json!({"totp": null})), None, "a null check is no check");
        assert_eq!(super::super::checked_factors_auth_method(&json!({"factors": both.clone()}), &json!({})), None);
        // A check of only the user: the factors the session verified.
        assert_eq!(method(both.clone(), json!({"user": {"userId": "u"}})), Some("password"));
        assert_eq!(
            method(json!({"user": {}, "webAuthN": {"userVerified": true}}), json!({"user": {}})),
            Some("passwordless")
        );
        assert_eq!(method(json!({"user": {"id": "u"}, "intent": {}}), json!({"user": {}})), None);
        assert_eq!(
            super::super::checked_factors_auth_method(&json!({"factors": both}), &json!({"lifetime": "3600s"})),
            None
        );
        let webauthn = |verified: Value| json!({"webAuthN": {"userVerified": verified}});
        assert_eq!(
            method(webauthn(json!(true)), json!({"webAuthN": {"credentialAssertionData": {}}})),
            Some("passwordless")
        );
        assert_eq!(method(webauthn(json!(false)), json!({"webAuthN": {"credentialAssertionData": {}}})), Some("U2F"));
        assert_eq!(method(json!({}), json!({"webAuthN": {}})), Some("U2F"));
        assert_eq!(method(json!({"intent": {}}), json!({"idpIntent": {"idpIntentId": "i"}})), None);
    }
}
