//! The v1 JavaScript runtime seen through `_execute` and `_test` (README, "How scripts are contained"):
//! what `ctx` holds for each trigger, what every `api` function does to the effects, the order and
//! data passing between the actions of a trigger, failures, the response shape, and the modules.

use crate::common;

use common::{b64, metadata_effect, metadata_json, Reply, TestServer};
use serde_json::{json, Value};

const EXECUTE: &str = "_execute";

fn auth_request() -> Value {
    json!({"id": "ar-42", "clientId": "web-app", "scopes": ["openid", "profile"], "prompt": ["login"]})
}

fn http_request() -> Value {
    json!({"method": "POST", "url": "https://login.example.com/ui/login", "headers": {"user-agent": ["Mozilla/5.0"]},
        "remoteAddr": "203.0.113.7"})
}

/// A User as the host sends it: enum names for state and gender (as the host sends it).
fn user_context(state: &str, gender: &str) -> Value {
    json!({
        "id": "219000000000000001", "creationDate": "2024-01-02T03:04:05Z", "changeDate": "2024-02-03T04:05:06Z",
        "resourceOwner": "219000000000000000", "sequence": "7", "state": state, "username": "jdoe",
        "loginNames": ["jdoe@acme.example", "john.doe@acme.example"], "preferredLoginName": "jdoe@acme.example",
        "human": {"firstName": "John", "lastName": "Doe", "nickName": "JD", "displayName": "John Doe",
            "avatarKey": "avatars/1", "preferredLanguage": "en", "gender": gender, "email": "",
            "isEmailVerified": false, "phone": "", "isPhoneVerified": false}
    })
}

/// The user as JS must see it: the same with integers for state and gender, and the sequence
/// (a uint64 the host sends as a string of digits, as protobuf's JSON writes it) a number, as
/// upstream scripts get it.
fn user_seen(state: i64, gender: i64) -> Value {
    let mut u = user_context("", "");
    u["sequence"] = json!(7);
    u["state"] = json!(state);
    u["human"]["gender"] = json!(gender);
    u
}

#[track_caller]
fn ok(r: &Reply) -> &Value {
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    assert!(r.body.get("error").is_none(), "no error on success: {r:?}");
    &r.body["effects"]
}

#[track_caller]
fn failed(r: &Reply) -> &Value {
    assert_eq!(r.status, 200, "a failing action is still a 200: {r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_FAILED", "{r:?}");
    assert!(r.body.get("effects").is_none(), "no effects on failure: {r:?}");
    &r.body
}

/// `actual` is `expected`, optionally followed by ` at <function> (<line>:<column>)` (README, "How scripts are contained").
#[track_caller]
fn assert_error_text(actual: &Value, expected: &str) {
    let a = actual.as_str().unwrap_or_else(|| panic!("error is not a string: {actual}"));
    assert!(a == expected || a.starts_with(&format!("{expected} at ")), "error {a:?}, expected {expected:?}");
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn outcomes(r: &Reply) -> Vec<String> {
    r.body["runs"].as_array().unwrap().iter().map(|x| x["outcome"].as_str().unwrap_or("").to_string()).collect()
}

/// Dry-runs an inline script through `_test`.
async fn test_inline(s: &TestServer, name: &str, script: &str, flow: &str, trigger: &str, context: Value) -> Reply {
    let r = s
        .test_action(
            &s.admin,
            json!({"name": name, "script": script, "flowType": flow, "triggerType": trigger, "context": context}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    r
}

async fn deactivate(s: &TestServer, id: &str) {
    let r = s.post(&format!("/management/v1/actions/{id}/_deactivate"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Flow 1 / trigger 1: External Authentication, Post Authentication
// ---------------------------------------------------------------------------------------------

const EXT_POST_AUTH: &str = r#"
function extPostAuth(ctx, api) {
  var seen = {
    accessToken: ctx.accessToken, idToken: ctx.idToken, refreshToken: ctx.refreshToken,
    sub: ctx.getClaim("sub"), groups: ctx.getClaim("groups"), missing: ctx.getClaim("no-such-claim"),
    claims: JSON.parse(ctx.claimsJSON()),
    externalId: ctx.v1.externalUser.externalId, externalIdpId: ctx.v1.externalUser.externalIdpId,
    preferredUsername: ctx.v1.externalUser.preferredUsername, human: ctx.v1.externalUser.human,
    authError: ctx.v1.authError, authRequest: ctx.v1.authRequest, httpRequest: ctx.v1.httpRequest,
    providerInfo: ctx.v1.providerInfo, orgMetadata: ctx.v1.org.getMetadata(),
    prefilled: api.metadata.map(function (m) { return { key: m.key, value: m.value }; })
  };
  api.setFirstName(42);
  api.setLastName("Smith");
  api.setNickName();
  api.setDisplayName({ toString: function () { return "Johnny S."; } });
  api.setPreferredLanguage(ctx.getClaim("locale"));
  api.setPreferredUsername("johnny");
  api.setEmail("johnny@corp.example");
  api.setEmailVerified(1);
  api.setPhone(41791234567);
  api.setPhoneVerified("");
  for (var i = 0; i < api.metadata.length; i++) {
    if (api.metadata[i].key === "changed") api.metadata[i].value = "new";
  }
  api.metadata.push({ key: "lang", value: "de" });
  api.v1.user.appendMetadata("count", 1);
  api.v1.user.appendMetadata("count", 2);
  api.v1.user.appendMetadata("seen", seen);
}
"#;

const EXT_POST_AUTH_SECOND: &str = r#"
function extSecond(ctx, api) {
  api.v1.user.appendMetadata("second", {
    firstName: ctx.v1.externalUser.human.firstName,
    items: api.metadata.map(function (m) { return m.key + "=" + JSON.stringify(m.value); })
  });
}
"#;

async fn external_post_authentication(s: &TestServer) {
    let id = s.create_script_action("extPostAuth", EXT_POST_AUTH).await;
    s.bind_trigger(&s.admin, "1", "1", &[&id]).await;
    let human = json!({"firstName": "John", "lastName": "Doe", "nickName": "jd", "displayName": "John Doe",
        "preferredLanguage": "en", "email": "john@idp.example", "isEmailVerified": false, "phone": "+41000",
        "isPhoneVerified": false});
    let context = json!({
        "externalUser": {"externalId": "ext-123", "externalIdpId": "idp-9", "preferredUsername": "jdoe@idp",
            "human": human.clone(),
            "metadata": [{"key": "plain", "value": b64("hello")}, {"key": "json", "value": b64("{\"a\": [1, 2]}")},
                {"key": "changed", "value": b64("\"old\"")}]},
        "authError": "user canceled",
        "authRequest": auth_request(), "httpRequest": http_request(),
        "providerInfo": {"id": "idp-9", "name": "Okta", "type": "OIDC", "tenant": null},
        "accessToken": "at-1", "idToken": "it-1", "refreshToken": "rt-1",
        "idTokenClaims": {"sub": "ext-123", "groups": ["a", "b"], "email_verified": true, "locale": "de-CH",
            "middle_name": null, "address": {"lines": ["x", null], "region": null}},
        "org": {"id": "219000000000000000", "name": "ACME", "metadata": [{"key": "tier", "value": b64("\"gold\"")},
            {"key": "raw", "value": b64("not json")}]}
    });
    let r = s.execute_trigger(&s.admin, "1", "1", context).await;
    let effects = ok(&r);
    assert_eq!(keys(effects), ["externalUser", "metadata"], "{r:?}");

    // What the script saw.
    let seen = metadata_json(effects, "seen");
    assert_eq!(seen["accessToken"], "at-1");
    assert_eq!(seen["idToken"], "it-1");
    assert_eq!(seen["refreshToken"], "rt-1");
    assert_eq!(seen["sub"], "ext-123");
    assert_eq!(seen["groups"], json!(["a", "b"]));
    assert_eq!(seen["missing"], Value::Null, "getClaim of an absent claim is null");
    // Free-form members are passed through as given, their nulls included (a typed field's null
    // is an absent field).
    assert_eq!(
        seen["claims"],
        json!({"sub": "ext-123", "groups": ["a", "b"], "email_verified": true, "locale": "de-CH",
            "middle_name": null, "address": {"lines": ["x", null], "region": null}})
    );
    assert_eq!(seen["externalId"], "ext-123");
    assert_eq!(seen["externalIdpId"], "idp-9");
    assert_eq!(seen["preferredUsername"], "jdoe@idp");
    assert_eq!(seen["human"], human, "ctx.v1.externalUser is the snapshot before the setters");
    assert_eq!(seen["authError"], "user canceled");
    assert_eq!(seen["authRequest"], auth_request());
    assert_eq!(seen["httpRequest"], http_request());
    assert_eq!(seen["providerInfo"], json!({"id": "idp-9", "name": "Okta", "type": "OIDC", "tenant": null}));
    assert_eq!(seen["orgMetadata"]["count"], 2, "{seen}");
    assert_eq!(seen["orgMetadata"]["metadata"][0]["key"], "tier");
    assert_eq!(seen["orgMetadata"]["metadata"][0]["value"], "gold", "JSON bytes are parsed");
    assert_eq!(seen["orgMetadata"]["metadata"][1]["value"], "not json", "other bytes are a string");
    assert_eq!(
        seen["prefilled"],
        json!([{"key": "plain", "value": "hello"}, {"key": "json", "value": {"a": [1, 2]}}, {"key": "changed", "value": "old"}]),
        "api.metadata is pre-filled with the external user's metadata, decoded"
    );

    // The setters' conversions.
    let ext = &effects["externalUser"];
    assert_eq!(ext["externalId"], "ext-123");
    assert_eq!(ext["externalIdpId"], "idp-9");
    assert_eq!(ext["preferredUsername"], "johnny");
    let h = &ext["human"];
    assert_eq!(h["firstName"], "42", "String(v)");
    assert_eq!(h["lastName"], "Smith");
    assert!(h.get("nickName").is_none(), "a missing argument is the zero value, omitted: {ext}");
    assert_eq!(h["displayName"], "Johnny S.", "String(v) calls toString");
    assert_eq!(h["preferredLanguage"], "de-CH");
    assert_eq!(h["email"], "johnny@corp.example");
    assert_eq!(h["isEmailVerified"], true, "Boolean(1)");
    assert_eq!(h["phone"], "41791234567");
    assert!(h.get("isPhoneVerified").is_none(), "Boolean(\"\") is false, omitted: {ext}");

    // Metadata: JSON-encoded, one per key with the last write winning, unchanged pre-filled items left out.
    let md = metadata_effect(effects);
    assert_eq!(
        effects["metadata"].as_array().unwrap().iter().find(|m| m["key"] == "lang").unwrap()["value"],
        "ImRlIg=="
    );
    assert_eq!(md["lang"], "\"de\"");
    assert_eq!(md["count"], "2", "last write wins: {md:?}");
    assert_eq!(md["changed"], "\"new\"", "a changed pre-filled item is in the effects");
    assert!(
        !md.contains_key("plain") && !md.contains_key("json"),
        "unchanged pre-filled items are not repeated: {md:?}"
    );
    assert_eq!(md.keys().collect::<Vec<_>>(), ["changed", "count", "lang", "seen"]);

    // Defaults: nothing but a locale claim in the context; an invalid language becomes `und`.
    let r = s.execute_trigger(&s.admin, "1", "1", json!({"idTokenClaims": {"locale": "not a language!"}})).await;
    let effects = ok(&r);
    let seen = metadata_json(effects, "seen");
    assert_eq!(seen["accessToken"], "");
    assert_eq!(seen["idToken"], "");
    assert_eq!(seen["refreshToken"], "");
    assert_eq!(seen["authError"], "none", "authError defaults to \"none\"");
    assert_eq!(seen["sub"], Value::Null);
    assert_eq!(seen["prefilled"], json!([]));
    assert_eq!(effects["externalUser"]["human"]["preferredLanguage"], "und", "{r:?}");
    let md = metadata_effect(effects);
    assert_eq!(md.keys().collect::<Vec<_>>(), ["count", "lang", "seen"]);

    // A second action sees the first one's external user and the pre-filled metadata (plus what it added).
    let second = s.create_script_action("extSecond", EXT_POST_AUTH_SECOND).await;
    s.bind_trigger(&s.admin, "1", "1", &[&id, &second]).await;
    let r = s
        .execute_trigger(
            &s.admin,
            "1",
            "1",
            json!({"externalUser": {"externalId": "e", "human": {"firstName": "Ann"},
                "metadata": [{"key": "plain", "value": b64("hello")}]}}),
        )
        .await;
    let effects = ok(&r);
    let second_seen = metadata_json(effects, "second");
    assert_eq!(second_seen["firstName"], "42", "action 2 sees action 1's setters: {second_seen}");
    let items: Vec<String> =
        second_seen["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(items.contains(&"plain=\"hello\"".to_string()), "action 2's api.metadata is pre-filled: {items:?}");
    assert!(items.contains(&"lang=\"de\"".to_string()), "action 2's api.metadata has action 1's items: {items:?}");
    assert!(!metadata_effect(effects).contains_key("plain"), "{effects}");
}

// ---------------------------------------------------------------------------------------------
// Pre Creation (flows 1 and 3, trigger 2)
// ---------------------------------------------------------------------------------------------

const PRE_CREATION: &str = r#"
function preCreation(ctx, api) {
  var seen = { user: ctx.v1.user, authRequest: ctx.v1.authRequest, httpRequest: ctx.v1.httpRequest,
    metadataLength: api.metadata.length };
  api.setFirstName("Jane");
  api.setLastName(7);
  api.setNickName(true);
  api.setDisplayName("Jane Roe");
  api.setPreferredLanguage("fr");
  api.setGender(3);
  api.setUsername("jane.roe");
  api.setEmailVerified(true);
  api.setPhoneVerified(true);
  api.setPhone("+41791234567");
  api.setPhoneVerified("yes");
  if (ctx.v1.user.human.email === "") api.setEmail("jane@example.com");
  api.metadata.push({ key: "source", value: { idp: "okta", groups: ["a"] } });
  api.v1.user.appendMetadata("lang", "fr");
  api.v1.user.appendMetadata("lang", "de");
  api.v1.user.appendMetadata("seen", seen);
}
"#;

async fn pre_creation(s: &TestServer) {
    let id = s.create_script_action("preCreation", PRE_CREATION).await;
    for flow in ["1", "3"] {
        s.bind_trigger(&s.admin, flow, "2", &[&id]).await;
        let context = json!({"user": user_context("USER_STATE_ACTIVE", "GENDER_FEMALE"),
            "authRequest": auth_request(), "httpRequest": http_request()});
        let r = s.execute_trigger(&s.admin, flow, "2", context).await;
        let effects = ok(&r);
        assert_eq!(keys(effects), ["metadata", "user"], "flow {flow}: {r:?}");
        let seen = metadata_json(effects, "seen");
        assert_eq!(seen["user"], user_seen(1, 1), "flow {flow}: state and gender names become integers");
        assert_eq!(seen["authRequest"], auth_request());
        assert_eq!(seen["httpRequest"], http_request());
        assert_eq!(seen["metadataLength"], 0);

        let u = &effects["user"];
        assert_eq!(u["id"], "219000000000000001");
        assert_eq!(u["username"], "jane.roe");
        assert_eq!(u["state"], 1, "state is an integer in effects");
        assert_eq!(u["loginNames"], json!(["jdoe@acme.example", "john.doe@acme.example"]));
        let h = &u["human"];
        assert_eq!(h["firstName"], "Jane");
        assert_eq!(h["lastName"], "7");
        assert_eq!(h["nickName"], "true");
        assert_eq!(h["displayName"], "Jane Roe");
        assert_eq!(h["preferredLanguage"], "fr");
        assert_eq!(h["gender"], 3);
        assert_eq!(h["email"], "jane@example.com");
        assert!(h.get("isEmailVerified").is_none(), "setEmailVerified without an email is a no-op: {u}");
        assert_eq!(h["phone"], "+41791234567");
        assert_eq!(h["isPhoneVerified"], true, "Boolean(\"yes\") once there is a phone");

        let md = metadata_effect(effects);
        assert_eq!(md["lang"], "\"de\"");
        assert_eq!(serde_json::from_str::<Value>(&md["source"]).unwrap(), json!({"idp": "okta", "groups": ["a"]}));
        assert_eq!(md.len(), 3, "{md:?}");

        // With an email, setEmailVerified works; with a phone from the start, setPhoneVerified(true) sticks.
        let mut user = user_context("USER_STATE_INITIAL", "GENDER_MALE");
        user["human"]["email"] = json!("john@acme.example");
        let r = s.execute_trigger(&s.admin, flow, "2", json!({"user": user})).await;
        let effects = ok(&r);
        assert_eq!(metadata_json(effects, "seen")["user"]["state"], 6);
        assert_eq!(metadata_json(effects, "seen")["user"]["human"]["gender"], 2);
        assert_eq!(effects["user"]["human"]["email"], "john@acme.example");
        assert_eq!(effects["user"]["human"]["isEmailVerified"], true, "{r:?}");
        assert_eq!(effects["user"]["state"], 6);
    }
}

/// `api.metadata` and `api.userGrants` are fields upstream (Go slices): an assignment replaces
/// the list, the `append…` functions then add to the new one, `null` is the empty list, and a
/// value that is not a list fails the run.
async fn assigned_lists_are_the_effects(s: &TestServer) {
    let metadata = s
        .create_script_action(
            "assignedMetadata",
            "function assignedMetadata(ctx, api) { api.metadata = [{key: 'x', value: 1}]; \
               api.v1.user.appendMetadata('y', 2); }",
        )
        .await;
    s.bind_trigger(&s.admin, "3", "1", &[&metadata]).await;
    let r = s.execute_trigger(&s.admin, "3", "1", json!({"authMethod": "password"})).await;
    let md = metadata_effect(ok(&r));
    assert_eq!(md.into_iter().collect::<Vec<_>>(), [("x".into(), "1".into()), ("y".into(), "2".into())], "{r:?}");
    let grants = s
        .create_script_action(
            "assignedGrants",
            "function assignedGrants(ctx, api) { api.userGrants = [{projectID: 'p', roles: ['r']}]; \
               api.v1.appendUserGrant({projectId: 'q', roles: []}); }",
        )
        .await;
    let nulled = s
        .create_script_action(
            "nulledGrants",
            "function nulledGrants(ctx, api) { api.userGrants = null; api.v1.appendUserGrant({projectId: 'z', roles: ['a']}); }",
        )
        .await;
    s.bind_trigger(&s.admin, "1", "3", &[&grants]).await;
    let r = s.execute_trigger(&s.admin, "1", "3", json!({})).await;
    assert_eq!(ok(&r)["userGrants"], json!([{"projectId": "p", "roles": ["r"]}, {"projectId": "q"}]), "{r:?}");
    s.bind_trigger(&s.admin, "1", "3", &[&grants, &nulled]).await;
    let r = s.execute_trigger(&s.admin, "1", "3", json!({})).await;
    assert_eq!(ok(&r)["userGrants"], json!([{"projectId": "z", "roles": ["a"]}]), "{r:?}");
    // A list rebuilt from copies of the pre-filled entries repeats none of them; a key written to
    // another value and back is a write (the last one wins).
    let rebuilt = s
        .create_script_action(
            "rebuilt",
            "function rebuilt(ctx, api) { api.metadata = api.metadata.map(function (m) { \
               return {key: m.key, value: m.value}; }); \
               api.metadata.push({key: 'plain', value: 'other'}, {key: 'plain', value: 'hello'}); }",
        )
        .await;
    s.bind_trigger(&s.admin, "1", "1", &[&rebuilt]).await;
    let context = json!({"externalUser": {"externalId": "e1", "metadata": [
        {"key": "plain", "value": b64("hello")}, {"key": "json", "value": b64("{\"a\": [1, 2]}")}]}});
    let r = s.execute_trigger(&s.admin, "1", "1", context).await;
    let md = metadata_effect(ok(&r));
    assert_eq!(md.into_iter().collect::<Vec<_>>(), [("plain".into(), "\"hello\"".into())], "{r:?}");
    let broken = s.create_script_action("notAList", "function notAList(ctx, api) { api.metadata = 5; }").await;
    s.bind_trigger(&s.admin, "3", "1", &[&broken]).await;
    let r = s.execute_trigger(&s.admin, "3", "1", json!({"authMethod": "password"})).await;
    assert_eq!((r.status.as_u16(), r.body["outcome"].clone()), (200, json!("OUTCOME_FAILED")), "{r:?}");
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("api.metadata must be an array")), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Post Creation (flows 1 and 3, trigger 3)
// ---------------------------------------------------------------------------------------------

const POST_CREATION: &str = r#"
function postCreation(ctx, api) {
  var err = "no error";
  try { api.v1.appendUserGrant({ roles: ["x"] }); } catch (e) { err = (e instanceof TypeError) + " " + e.name; }
  api.userGrants.push({ projectID: "p1", roles: ["admin", "viewer"] });
  api.userGrants.push({ projectID: "p2", projectGrantID: "pg2", roles: ["user"] });
  api.v1.appendUserGrant({ projectId: "p3", roles: ["r3"] });
  api.v1.appendUserGrant({ projectId: "p4", projectGrantId: "pg4", roles: ["r4"] });
  api.v1.appendUserGrant({ projectID: "p5", projectGrantID: "pg5", roles: ["r5"] });
  var seen = { user: ctx.v1.getUser(), authRequest: ctx.v1.authRequest, httpRequest: ctx.v1.httpRequest, err: err };
  api.v1.appendUserGrant({ projectId: "seen", roles: [JSON.stringify(seen)] });
}
"#;

async fn post_creation(s: &TestServer) {
    let id = s.create_script_action("postCreation", POST_CREATION).await;
    for flow in ["1", "3"] {
        s.bind_trigger(&s.admin, flow, "3", &[&id]).await;
        let context = json!({"user": user_context("USER_STATE_LOCKED", "GENDER_DIVERSE"),
            "authRequest": auth_request(), "httpRequest": http_request()});
        let r = s.execute_trigger(&s.admin, flow, "3", context).await;
        let effects = ok(&r);
        assert_eq!(keys(effects), ["userGrants"], "flow {flow}: {r:?}");
        let grants = effects["userGrants"].as_array().unwrap();
        assert_eq!(grants.len(), 6, "{r:?}");
        assert_eq!(
            grants[..5],
            [
                json!({"projectId": "p1", "roles": ["admin", "viewer"]}),
                json!({"projectId": "p2", "projectGrantId": "pg2", "roles": ["user"]}),
                json!({"projectId": "p3", "roles": ["r3"]}),
                json!({"projectId": "p4", "projectGrantId": "pg4", "roles": ["r4"]}),
                json!({"projectId": "p5", "projectGrantId": "pg5", "roles": ["r5"]}),
            ],
            "both spellings are normalized, pushed or appended"
        );
        assert_eq!(grants[5]["projectId"], "seen");
        let seen: Value = serde_json::from_str(grants[5]["roles"][0].as_str().unwrap()).unwrap();
        assert_eq!(seen["user"], user_seen(4, 3));
        assert_eq!(seen["authRequest"], auth_request());
        assert_eq!(seen["httpRequest"], http_request());
        assert_eq!(seen["err"], "true TypeError", "missing projectId is a catchable TypeError");
    }

    // Uncaught, the TypeError fails the run.
    let r = test_inline(
        s,
        "grantNoProject",
        "function grantNoProject(ctx, api) { api.v1.appendUserGrant({roles: ['a']}); }",
        "3",
        "3",
        json!({}),
    )
    .await;
    failed(&r);
    let error = r.body["runs"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("TypeError"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Flow 3 / trigger 1: Internal Authentication, Post Authentication
// ---------------------------------------------------------------------------------------------

const INTERNAL_POST_AUTH: &str = r#"
function internalPostAuth(ctx, api) {
  var seen = { authMethod: ctx.v1.authMethod, authError: ctx.v1.authError, authRequest: ctx.v1.authRequest,
    httpRequest: ctx.v1.httpRequest, metadataLength: api.metadata.length };
  api.v1.user.appendMetadata("lang", "en");
  api.metadata.push({ key: "lang", value: "de" });
  api.metadata.push({ key: "last-login", value: { method: ctx.v1.authMethod, ok: ctx.v1.authError === "none" } });
  api.v1.user.appendMetadata("n", 42);
  api.v1.user.appendMetadata("seen", seen);
}
"#;

async fn internal_post_authentication(s: &TestServer) {
    let id = s.create_script_action("internalPostAuth", INTERNAL_POST_AUTH).await;
    s.bind_trigger(&s.admin, "3", "1", &[&id]).await;
    for method in ["password", "OTP", "OTP SMS", "OTP Email", "U2F", "passwordless"] {
        let context = json!({"authMethod": method, "authError": "wrong password", "authRequest": auth_request(),
            "httpRequest": http_request()});
        let r = s.execute_trigger(&s.admin, "3", "1", context).await;
        let effects = ok(&r);
        assert_eq!(keys(effects), ["metadata"], "{r:?}");
        let seen = metadata_json(effects, "seen");
        assert_eq!(
            seen,
            json!({"authMethod": method, "authError": "wrong password", "authRequest": auth_request(),
                "httpRequest": http_request(), "metadataLength": 0})
        );
        let md = metadata_effect(effects);
        assert_eq!(md["lang"], "\"de\"", "last write wins");
        assert_eq!(md["n"], "42");
        assert_eq!(serde_json::from_str::<Value>(&md["last-login"]).unwrap(), json!({"method": method, "ok": false}));
        assert_eq!(md.len(), 4);
        let lang = effects["metadata"].as_array().unwrap().iter().find(|m| m["key"] == "lang").unwrap();
        assert_eq!(lang["value"], "ImRlIg==");
    }
    let r = s.execute_trigger(&s.admin, "3", "1", json!({"authMethod": "password"})).await;
    let seen = metadata_json(ok(&r), "seen");
    assert_eq!(seen["authError"], "none", "authError defaults to \"none\"");
    // A later action of the trigger finds what earlier ones put in api.metadata, decoded.
    let later = s
        .create_script_action(
            "laterInternal",
            "function laterInternal(ctx, api) { api.metadata.push({key: 'saw', value: api.metadata.map( \
               function (m) { return m.key + '=' + JSON.stringify(m.value); }).sort()}); }",
        )
        .await;
    s.bind_trigger(&s.admin, "3", "1", &[&id, &later]).await;
    let r = s.execute_trigger(&s.admin, "3", "1", json!({"authMethod": "OTP"})).await;
    let effects = ok(&r);
    let saw = metadata_json(effects, "saw");
    assert_eq!(saw.as_array().map(Vec::len), Some(4), "{r:?}");
    assert!(saw.as_array().unwrap().contains(&json!("lang=\"de\"")), "{saw}");
    assert!(saw.as_array().unwrap().contains(&json!("n=42")), "{saw}");
    assert_eq!(metadata_effect(effects).len(), 5, "the four earlier entries are not repeated: {r:?}");
}

// ---------------------------------------------------------------------------------------------
// Flow 2 / triggers 4 and 5: Complement Token
// ---------------------------------------------------------------------------------------------

const COMPLEMENT: &str = r#"
function complement(ctx, api) {
  var seen = { claims: ctx.v1.claims, user: ctx.v1.getUser(), userMetadata: ctx.v1.user.getMetadata(),
    grants: ctx.v1.user.grants, orgMetadata: ctx.v1.org.getMetadata(),
    clientId: ctx.v1.application.getClientId(), actor: ctx.v1.actor };
  api.v1.user.setMetadata("seen", seen);
  api.v1.claims.setClaim("year", 2026);
  api.v1.claims.setClaim("sub", "someone else");
  api.v1.claims.setClaim("urn:zitadel:iam:org:project:roles", { admin: {} });
  api.v1.claims.setClaim("urn:zitadel:iamfoo", "also reserved");
  api.v1.userinfo.setClaim("roles", ["a", "b"]);
  api.v1.claims.setClaim("year", 1999);
  api.v1.claims.setClaim("flag", false);
  api.v1.claims.appendLogIntoClaims("hello");
  api.v1.userinfo.appendLogIntoClaims(42);
  api.v1.user.setMetadata("lang", "de");
  api.v1.user.setMetadata("lang", "fr");
  api.v1.user.setMetadata("obj", { x: [1] });
}
"#;

fn complement_context() -> Value {
    json!({
        "claims": {"sub": "219000000000000001", "email": "jdoe@acme.example", "urn:zitadel:iam:org:id": "219000000000000000"},
        "user": user_context("USER_STATE_ACTIVE", "GENDER_MALE"),
        "userMetadata": [{"key": "lang", "value": b64("\"en\"")}, {"key": "plain", "value": b64("hello")},
            {"key": "obj", "value": b64("{\"a\": 1}")}, {"key": "num", "value": b64("42")}],
        "userGrants": [{"id": "g1", "projectId": "p1", "projectName": "Portal", "roles": ["admin", "user"], "state": 1},
            {"projectId": "p2", "projectGrantId": "pg2", "roles": []}],
        "org": {"id": "219000000000000000", "name": "ACME", "primaryDomain": "acme.example",
            "metadata": [{"key": "tier", "value": b64("gold")}]},
        "application": {"clientId": "219000000000000099@portal"},
        "actor": {"issuer": "https://issuer.example", "subject": "admin-1"}
    })
}

async fn complement_token(s: &TestServer) {
    let id = s.create_script_action("complement", COMPLEMENT).await;
    for trigger in ["4", "5"] {
        s.bind_trigger(&s.admin, "2", trigger, &[&id]).await;
        let r = s.execute_trigger(&s.admin, "2", trigger, complement_context()).await;
        let effects = ok(&r);
        assert_eq!(keys(effects), ["claims", "metadata"], "trigger {trigger}: {r:?}");
        assert_eq!(
            effects["claims"],
            json!({"year": 2026, "roles": ["a", "b"], "flag": false,
                "urn:zitadel:iam:action:complement:log":
                    ["key \"sub\" already exists", "key \"year\" already exists", "hello", "42"]}),
            "trigger {trigger}"
        );

        let seen = metadata_json(effects, "seen");
        assert_eq!(seen["claims"], complement_context()["claims"]);
        assert_eq!(seen["user"], user_seen(1, 2));
        assert_eq!(seen["userMetadata"]["count"], 4, "{seen}");
        let values: Vec<(Value, Value)> = seen["userMetadata"]["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["key"].clone(), m["value"].clone()))
            .collect();
        assert_eq!(
            values,
            [
                (json!("lang"), json!("en")),
                (json!("plain"), json!("hello")),
                (json!("obj"), json!({"a": 1})),
                (json!("num"), json!(42))
            ]
        );
        assert_eq!(seen["grants"]["count"], 2);
        assert_eq!(seen["grants"]["grants"][0]["projectId"], "p1");
        assert_eq!(seen["grants"]["grants"][0]["roles"], json!(["admin", "user"]));
        assert_eq!(seen["grants"]["grants"][1]["projectGrantId"], "pg2");
        assert_eq!(seen["orgMetadata"]["count"], 1);
        assert_eq!(seen["orgMetadata"]["metadata"][0]["key"], "tier");
        assert_eq!(seen["orgMetadata"]["metadata"][0]["value"], "gold");
        assert_eq!(seen["clientId"], "219000000000000099@portal");
        assert_eq!(seen["actor"], json!({"issuer": "https://issuer.example", "subject": "admin-1"}));

        let md = metadata_effect(effects);
        assert_eq!(md.keys().collect::<Vec<_>>(), ["lang", "obj", "seen"]);
        assert_eq!(md["lang"], "\"fr\"");
        assert_eq!(md["obj"], "{\"x\":[1]}");

        // Without an actor, ctx.v1.actor is null.
        let mut context = complement_context();
        context.as_object_mut().unwrap().remove("actor");
        let r = s.execute_trigger(&s.admin, "2", trigger, context).await;
        assert_eq!(metadata_json(ok(&r), "seen")["actor"], Value::Null, "{r:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Flow 4 / trigger 6: Complement SAMLResponse
// ---------------------------------------------------------------------------------------------

const SAML: &str = r#"
function saml(ctx, api) {
  var seen = { user: ctx.v1.getUser(), userMetadata: ctx.v1.user.getMetadata(), grants: ctx.v1.user.grants,
    orgMetadata: ctx.v1.org.getMetadata() };
  api.v1.user.setMetadata("seen", seen);
  var basic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";
  api.v1.attributes.setCustomAttribute("Roles", basic, "p:admin", "p:user");
  api.v1.attributes.setCustomAttribute("Roles", "", "ignored");
  api.v1.attributes.setCustomAttribute("Dept", "", 42, true);
  api.v1.attributes.setCustomAttribute("Dept", basic, "ignored too");
  api.v1.user.setMetadata("saml", "yes");
}
"#;

async fn complement_saml(s: &TestServer) {
    let id = s.create_script_action("saml", SAML).await;
    s.bind_trigger(&s.admin, "4", "6", &[&id]).await;
    let context = json!({
        "user": user_context("USER_STATE_INACTIVE", "GENDER_UNSPECIFIED"),
        "userMetadata": [{"key": "dept", "value": b64("\"R&D\"")}],
        "userGrants": [{"projectId": "p1", "roles": ["admin"]}],
        "org": {"id": "219000000000000000", "name": "ACME", "primaryDomain": "acme.example",
            "metadata": [{"key": "k", "value": b64("[1,2]")}]}
    });
    let r = s.execute_trigger(&s.admin, "4", "6", context).await;
    let effects = ok(&r);
    assert_eq!(keys(effects), ["attributes", "metadata"], "{r:?}");
    assert_eq!(
        effects["attributes"],
        json!([
            {"name": "Roles", "nameFormat": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", "values": ["p:admin", "p:user"]},
            {"name": "Dept", "values": ["42", "true"]}
        ]),
        "first value set for a name wins; an empty nameFormat is omitted"
    );
    let seen = metadata_json(effects, "seen");
    assert_eq!(seen["user"], user_seen(2, 0));
    assert_eq!(seen["userMetadata"]["count"], 1);
    assert_eq!(seen["userMetadata"]["metadata"][0]["value"], "R&D");
    assert_eq!(seen["grants"], json!({"count": 1, "grants": [{"projectId": "p1", "roles": ["admin"]}]}));
    assert_eq!(seen["orgMetadata"]["metadata"][0]["value"], json!([1, 2]));
    assert_eq!(metadata_effect(effects)["saml"], "\"yes\"");
}

// ---------------------------------------------------------------------------------------------
// Several actions on one trigger
// ---------------------------------------------------------------------------------------------

async fn order_and_data_passing(s: &TestServer) {
    let a1 = s
        .create_script_action(
            "first",
            r#"function first(ctx, api) {
                 api.v1.claims.setClaim('step', 1);
                 api.v1.claims.appendLogIntoClaims('one');
                 api.v1.user.setMetadata('shared', 'from first');
                 api.v1.user.setMetadata('firstOnly', 1);
                 ctx.v1.claims.mutated = true;
               }"#,
        )
        .await;
    let a2 =
        s.create_script_action("inactive", "function inactive(ctx, api) { api.v1.claims.setClaim('x', 1); }").await;
    deactivate(s, &a2).await;
    let a3 = s
        .create_script_action(
            "third",
            r#"function third(ctx, api) {
                 api.v1.claims.setClaim('sawStep', ctx.v1.claims.step);
                 api.v1.claims.setClaim('sawLog', ctx.v1.claims['urn:zitadel:iam:action:first:log']);
                 api.v1.claims.setClaim('sawInactive', 'x' in ctx.v1.claims);
                 api.v1.claims.setClaim('sawMutation', 'mutated' in ctx.v1.claims);
                 api.v1.claims.setClaim('step', 3);
                 api.v1.user.setMetadata('shared', 'from third');
               }"#,
        )
        .await;
    s.bind_trigger(&s.admin, "2", "4", &[&a1, &a2, &a3]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "u"}})).await;
    let effects = ok(&r);
    assert_eq!(
        effects["claims"],
        json!({"step": 1, "urn:zitadel:iam:action:first:log": ["one"], "sawStep": 1, "sawLog": ["one"],
            "sawInactive": false, "sawMutation": false,
            "urn:zitadel:iam:action:third:log": ["key \"step\" already exists"]}),
        "ctx is a snapshot: mutating it changes nothing"
    );
    let md = metadata_effect(effects);
    assert_eq!(md.len(), 2, "one entry per key across actions: {md:?}");
    assert_eq!(md["shared"], "\"from third\"", "the last write wins across actions");
    assert_eq!(md["firstOnly"], "1");
    assert_eq!(outcomes(&r), ["OUTCOME_SUCCEEDED", "OUTCOME_SKIPPED", "OUTCOME_SUCCEEDED"]);
    let runs = r.body["runs"].as_array().unwrap();
    assert_eq!(runs[0]["actionId"], a1.as_str());
    assert_eq!(runs[1]["actionId"], a2.as_str());
    assert_eq!(runs[1]["actionName"], "inactive");
    assert!(runs[1].get("id").is_none(), "a skipped action did not start: no id: {r:?}");
    assert!(runs[0]["id"].is_string() && runs[2]["id"].is_string());
    assert_ne!(runs[0]["id"], runs[2]["id"]);
}

async fn failing_action_stops_the_trigger(s: &TestServer) {
    let b1 = s.create_script_action("b1", "function b1(ctx, api) { api.v1.claims.setClaim('b1', true); }").await;
    let b2 = s
        .create_script_action("b2", "function b2(ctx, api) { api.v1.claims.setClaim('b2', true); throw 'boom'; }")
        .await;
    let b3 = s.create_script_action("b3", "function b3(ctx, api) { api.v1.claims.setClaim('b3', true); }").await;
    let b4 = s.create_script_action("b4", "function b4(ctx, api) {}").await;
    deactivate(s, &b4).await;
    s.bind_trigger(&s.admin, "2", "5", &[&b1, &b2, &b3, &b4]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", json!({})).await;
    let body = failed(&r);
    assert_error_text(&body["error"], "action \"b2\": boom");
    assert_eq!(outcomes(&r), ["OUTCOME_SUCCEEDED", "OUTCOME_FAILED", "OUTCOME_NOT_RUN", "OUTCOME_SKIPPED"]);
    let runs = body["runs"].as_array().unwrap();
    assert_error_text(&runs[1]["error"], "boom");
    assert!(runs[1].get("allowedToFail").is_none(), "allowedToFail false is omitted: {r:?}");
    assert!(runs[1]["id"].is_string());
    assert!(runs[2].get("id").is_none(), "a run that did not start has no id: {r:?}");
    assert_eq!(runs[2]["actionName"], "b3");
    assert!(runs[2].get("error").is_none());
}

async fn allowed_to_fail_continues(s: &TestServer) {
    let c1 = s
        .create_action_body(
            &s.admin,
            json!({"name": "mayFail", "allowedToFail": true,
                "script": "function mayFail(ctx, api) { api.v1.claims.setClaim('lost', 1); api.v1.claims.appendLogIntoClaims('lost'); api.v1.user.setMetadata('lost', 1); throw new Error('tolerated'); }"}),
        )
        .await;
    let c2 = s
        .create_script_action(
            "after",
            "function after(ctx, api) { api.v1.claims.setClaim('sawLost', ctx.v1.claims.lost === undefined ? 'no' : 'yes'); }",
        )
        .await;
    s.bind_trigger(&s.admin, "2", "4", &[&c1, &c2]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    let effects = ok(&r);
    assert_eq!(effects, &json!({"claims": {"sawLost": "no"}}), "the failed action's effects are discarded: {r:?}");
    assert_eq!(outcomes(&r), ["OUTCOME_FAILED", "OUTCOME_SUCCEEDED"]);
    let run = &r.body["runs"][0];
    assert_eq!(run["allowedToFail"], true, "{r:?}");
    assert_error_text(&run["error"], "Error: tolerated");
    assert!(run["id"].is_string());
}

async fn thrown_values_and_missing_function(s: &TestServer) {
    let cases = [
        ("throw 'plain text';", "plain text"),
        ("throw new Error('bad thing');", "Error: bad thing"),
        ("throw new TypeError('wrong type');", "TypeError: wrong type"),
        ("throw 42;", "42"),
        ("throw null;", "null"),
        ("throw { toString: function () { return 'custom'; } };", "custom"),
        ("throw ['a', 'b'];", "a,b"),
        ("throw Symbol('s');", "Symbol(s)"),
    ];
    for (body, expected) in cases {
        let script = format!("function thrower(ctx, api) {{ {body} }}");
        let r = test_inline(s, "thrower", &script, "2", "4", json!({})).await;
        failed(&r);
        assert_error_text(&r.body["runs"][0]["error"], expected);
        assert_eq!(r.body["runs"][0]["outcome"], "OUTCOME_FAILED");
    }

    // A thrown text is kept up to 64 KiB, then cut, saying how much was dropped.
    let script = "function huge(ctx, api) { var t = 'e'; while (t.length < 1048576) t = t + t; throw t; }";
    let r = test_inline(s, "huge", script, "2", "4", json!({})).await;
    failed(&r);
    let error = r.body["runs"][0]["error"].as_str().unwrap();
    assert!(error.len() < 64 * 1024 + 100, "{} bytes", error.len());
    assert!(
        error.starts_with("eeee") && error.contains(&format!("… ({} more bytes)", 1048576 - 64 * 1024)),
        "{}",
        &error[error.len() - 60..]
    );

    // Values leaving the script are kept up to 100 levels deep; deeper is a catchable RangeError
    // (never a silent null, never a lost answer), which says so also past the 128 levels a JSON
    // reader takes (200 here).
    let script =
        "function deep(ctx, api) { var o = 1; for (var i = 0; i < 100; i++) o = [o]; api.v1.claims.setClaim('ok', o); \
        var d = 1; for (var j = 0; j < 200; j++) d = [d]; \
        try { api.v1.claims.setClaim('deep', d); } catch (e) { api.v1.claims.setClaim('caught', e.name); } \
        api.v1.user.setMetadata('deep', d); }";
    let r = test_inline(s, "deep", script, "2", "4", json!({})).await;
    let error = failed(&r)["error"].as_str().unwrap();
    assert!(error.starts_with("action \"deep\": RangeError: the value is nested deeper than 100 levels"), "{error}");
    let script =
        "function deep(ctx, api) { var o = 1; for (var i = 0; i < 100; i++) o = [o]; api.v1.claims.setClaim('ok', o); \
        var d = 1; for (var j = 0; j < 126; j++) d = [d]; \
        try { api.v1.claims.setClaim('deep', d); } catch (e) { api.v1.claims.setClaim('caught', e.name); } }";
    let r = test_inline(s, "deep", script, "2", "4", json!({})).await;
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    let claims = &r.body["effects"]["claims"];
    assert_eq!(claims["caught"], "RangeError", "{r:?}");
    let mut kept = &claims["ok"];
    for _ in 0..100 {
        kept = &kept[0];
    }
    assert_eq!(kept, &json!(1), "the 100-level value arrives whole");

    // A dry run of an action that may fail in a trigger still says that the script failed.
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "tolerated", "script": "function tolerated(ctx, api) { throw new Error('x'); }",
                   "allowedToFail": true, "flowType": "2", "triggerType": "4"}),
        )
        .await;
    assert_error_text(&failed(&r)["error"], "action \"tolerated\": Error: x");

    // Through _execute: the top-level error names the action.
    let id = s.create_script_action("missing", "function other(ctx, api) {}").await;
    s.bind_trigger(&s.admin, "3", "2", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "3", "2", json!({})).await;
    assert_eq!(failed(&r)["error"], "action \"missing\": function \"missing\" not found");
    assert_eq!(r.body["runs"][0]["error"], "function \"missing\" not found");

    // A syntax error fails the run.
    let r = test_inline(s, "broken", "function broken(ctx, api) {", "2", "4", json!({})).await;
    failed(&r);
    assert!(r.body["runs"][0]["error"].as_str().is_some_and(|e| !e.is_empty()), "{r:?}");

    // The entry function may be any global binding: function, var, let, const.
    let mut wrong = Vec::new();
    for (name, script) in [
        ("viaVar", "var viaVar = function (ctx, api) { api.v1.claims.setClaim('ok', 'var'); };"),
        ("viaLet", "let viaLet = (ctx, api) => { api.v1.claims.setClaim('ok', 'let'); };"),
        ("viaConst", "const viaConst = function (ctx, api) { api.v1.claims.setClaim('ok', 'const'); };"),
    ] {
        let r = test_inline(s, name, script, "2", "4", json!({})).await;
        if r.body["outcome"] != "OUTCOME_SUCCEEDED" || !r.body["effects"]["claims"]["ok"].is_string() {
            wrong.push(format!("{name}: {r:?}"));
        }
    }
    assert!(wrong.is_empty(), "the global binding named like the action is called: {wrong:#?}");
}

async fn async_entry_functions(s: &TestServer) {
    let r = test_inline(
        s,
        "asyncOk",
        "async function asyncOk(ctx, api) { await null; const v = await Promise.resolve(7); api.v1.claims.setClaim('v', v); }",
        "2",
        "4",
        json!({}),
    )
    .await;
    assert_eq!(ok(&r), &json!({"claims": {"v": 7}}), "{r:?}");

    let r = test_inline(
        s,
        "asyncFail",
        "async function asyncFail(ctx, api) { await null; api.v1.claims.setClaim('v', 1); throw new Error('late failure'); }",
        "2",
        "4",
        json!({}),
    )
    .await;
    failed(&r);
    assert_error_text(&r.body["runs"][0]["error"], "Error: late failure");

    let r = test_inline(
        s,
        "rejects",
        "function rejects(ctx, api) { return Promise.reject('why not'); }",
        "2",
        "4",
        json!({}),
    )
    .await;
    failed(&r);
    assert_error_text(&r.body["runs"][0]["error"], "why not");

    for script in [
        "function pending(ctx, api) { return new Promise(function () {}); }",
        "async function pending(ctx, api) { await new Promise(function () {}); api.v1.claims.setClaim('never', 1); }",
    ] {
        let r = test_inline(s, "pending", script, "2", "4", json!({})).await;
        failed(&r);
        assert_eq!(r.body["runs"][0]["error"], "promise never settled", "{r:?}");
    }

    // The job queue is drained after a plain function returns.
    let r = test_inline(
        s,
        "queued",
        "function queued(ctx, api) { Promise.resolve().then(function () { api.v1.claims.setClaim('late', true); }); }",
        "2",
        "4",
        json!({}),
    )
    .await;
    assert_eq!(ok(&r), &json!({"claims": {"late": true}}), "{r:?}");

    // Through _execute as well.
    let id = s
        .create_script_action(
            "asyncExec",
            "async function asyncExec(ctx, api) { await null; api.v1.attributes.setCustomAttribute('A', '', 'v'); }",
        )
        .await;
    s.bind_trigger(&s.admin, "4", "6", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "4", "6", json!({})).await;
    assert_eq!(ok(&r), &json!({"attributes": [{"name": "A", "values": ["v"]}]}), "{r:?}");
}

async fn fresh_realm_per_run(s: &TestServer) {
    let script = r#"
      var counter = (typeof counter === 'number' ? counter : 0) + 1;
      function fresh(ctx, api) {
        Array.prototype.polluted = true;
        globalThis.leaked = (globalThis.leaked || 0) + 1;
        api.v1.claims.setClaim('counter', counter);
        api.v1.claims.setClaim('leaked', globalThis.leaked);
        api.v1.claims.setClaim('polluted', [].polluted === true);
      }"#;
    let id = s.create_script_action("fresh", script).await;
    let id2 = s.create_script_action("fresh2", &script.replace("function fresh(", "function fresh2(")).await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    for _ in 0..2 {
        let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
        assert_eq!(ok(&r)["claims"], json!({"counter": 1, "leaked": 1, "polluted": true}), "{r:?}");
    }
    // Two actions of one trigger do not share a realm either.
    s.bind_trigger(&s.admin, "2", "4", &[&id, &id2]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({})).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"]["counter"], 1);
    assert_eq!(effects["claims"]["leaked"], 1);
    assert_eq!(
        effects["claims"]["urn:zitadel:iam:action:fresh2:log"],
        json!(["key \"counter\" already exists", "key \"leaked\" already exists", "key \"polluted\" already exists"])
    );
}

// ---------------------------------------------------------------------------------------------
// The response and the request
// ---------------------------------------------------------------------------------------------

async fn empty_trigger(s: &TestServer) {
    for (flow, trigger) in [("1", "1"), ("2", "4"), ("4", "6")] {
        let r = s.execute_trigger(&s.admin, flow, trigger, json!({"claims": {"sub": "x"}})).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED");
        assert!(r.body.get("effects").is_none(), "no effects: {r:?}");
        assert!(r.body.get("runs").is_none(), "no runs: {r:?}");
        assert!(r.body.get("error").is_none(), "{r:?}");
    }
    // An action that does nothing: a run, but no effects.
    let id = s.create_script_action("noop", "function noop(ctx, api) {}").await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"claims": {"sub": "x"}})).await;
    assert!(r.body.get("effects").is_none(), "keys with nothing in them are omitted: {r:?}");
    assert_eq!(r.body["runs"].as_array().unwrap().len(), 1);
}

fn is_duration(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let Some(num) = s.strip_suffix('s') else { return false };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && matches!(frac.len(), 0 | 3 | 6 | 9)
        && frac.bytes().all(|b| b.is_ascii_digit())
}

fn is_id(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

async fn response_shape(s: &TestServer) {
    let quiet = s.create_script_action("quiet", "function quiet(ctx, api) { api.v1.claims.setClaim('q', 1); }").await;
    let loud = s
        .create_script_action(
            "loud",
            "function loud(ctx, api) { var log = require('zitadel/log'); log.log('hello'); log.warn('careful'); }",
        )
        .await;
    s.bind_trigger(&s.admin, "2", "5", &[&quiet, &loud]).await;
    let r = s.execute_trigger(&s.admin, "2", "5", json!({})).await;
    ok(&r);
    assert!(is_id(&r.body["runId"]), "runId: {r:?}");
    let runs = r.body["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, (id, name)) in runs.iter().zip([(&quiet, "quiet"), (&loud, "loud")]) {
        assert!(is_id(&run["id"]), "{run}");
        assert_ne!(run["id"], r.body["runId"]);
        assert_eq!(run["actionId"], id.as_str());
        assert_eq!(run["actionName"], name);
        assert_eq!(run["outcome"], "OUTCOME_SUCCEEDED");
        assert!(is_duration(&run["duration"]), "protojson duration: {run}");
        assert!(run.get("error").is_none() && run.get("allowedToFail").is_none(), "{run}");
        assert!(run.get("logs").is_none(), "_execute does not return logs: {run}");
    }
    let quiet_usage = &runs[0]["usage"];
    for counter in ["httpCalls", "logRecords", "logBytes"] {
        assert!(quiet_usage.get(counter).is_none(), "zero counters are omitted: {quiet_usage}");
    }
    let usage = &runs[1]["usage"];
    assert_eq!(usage["logRecords"], 2, "{usage}");
    assert!(usage["logBytes"].as_u64().is_some_and(|b| b > 0), "{usage}");
    assert!(usage.get("httpCalls").is_none(), "{usage}");
}

async fn bad_context_is_400(s: &TestServer) {
    let id = s.create_script_action("ctxCheck", "function ctxCheck(ctx, api) {}").await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    s.bind_trigger(&s.admin, "1", "1", &[&id]).await;
    let cases = [
        ("2", "4", json!({"claims": "not an object"}), "claims"),
        ("2", "4", json!({"userGrants": {"projectId": "p"}}), "userGrants"),
        ("2", "4", json!({"userMetadata": "x"}), "userMetadata"),
        ("2", "4", json!({"user": [1]}), "user"),
        ("2", "4", json!({"org": 5}), "org"),
        ("2", "4", json!({"application": "app"}), "application"),
        ("1", "1", json!({"accessToken": 5}), "accessToken"),
        ("1", "1", json!({"idTokenClaims": ["sub"]}), "idTokenClaims"),
        ("1", "1", json!({"externalUser": true}), "externalUser"),
        ("1", "1", json!({"authError": {}}), "authError"),
        // Known fields are checked at every depth, against the served context.schema.json.
        ("2", "4", json!({"userGrants": [{"projectId": "p", "roles": "a"}]}), "userGrants[0].roles"),
        ("2", "4", json!({"user": {"human": {"gender": 2.5}}}), "user.human.gender"),
        ("2", "4", json!({"user": {"human": {"gender": "GENDER_X"}}}), "user.human.gender"),
        ("2", "4", json!({"user": {"state": "BOGUS"}}), "user.state"),
        ("2", "4", json!({"user": {"loginNames": "a"}}), "user.loginNames"),
        ("2", "4", json!({"userMetadata": [{"key": "k", "value": "!!not base64"}]}), "userMetadata[0].value"),
        ("2", "4", json!({"userMetadata": [{"key": 1, "value": "MQ=="}]}), "userMetadata[0].key"),
        ("2", "4", json!({"application": {"clientId": 5}}), "application.clientId"),
        ("2", "4", json!({"org": {"metadata": "x"}}), "org.metadata"),
        (
            "1",
            "1",
            json!({"externalUser": {"human": {"isEmailVerified": "yes"}}}),
            "externalUser.human.isEmailVerified",
        ),
    ];
    for (flow, trigger, context, field) in cases {
        let r = s.execute_trigger(&s.admin, flow, trigger, context.clone()).await;
        assert_eq!(r.status, 400, "{context}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
        let message = r.body["message"].as_str().unwrap_or("").to_lowercase();
        assert!(message.contains(&field.to_lowercase()), "the message names {field}: {r:?}");
    }
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"userGrants": [{"projectId": "p", "roles": "a"}]})).await;
    assert_eq!(
        r.body["message"], "invalid ExecuteFlowTriggerRequest.Context.UserGrants[0].Roles: must be an array",
        "{r:?}"
    );
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "t", "script": "function t() {}", "flowType": "2", "triggerType": "4",
                   "context": {"user": {"state": "BOGUS"}}}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "_test checks the context too: {r:?}");
    assert!(
        r.body["message"].as_str().unwrap_or("").starts_with("invalid TestActionRequest.Context.User.State: must be"),
        "{r:?}"
    );
    // A sequence is a uint64: a number or a string of digits (which scripts get as a number).
    for bad in [json!("abc"), json!(-3), json!("-3"), json!(1.5), json!("18446744073709551616")] {
        let r = s
            .test_action(
                &s.admin,
                json!({"name": "t", "script": "function t() {}", "flowType": "2", "triggerType": "4",
                       "context": {"user": {"sequence": bad}}}),
            )
            .await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "sequence {bad}: {r:?}");
        assert_eq!(
            r.body["message"],
            "invalid TestActionRequest.Context.User.Sequence: must be an integer from 0 to 18446744073709551615 or a string of its digits",
            "{r:?}"
        );
    }
    let script = "function t(ctx, api) { var u = ctx.v1.getUser(); api.v1.claims.setClaim('s', [typeof u.sequence, u.sequence + 1]); }";
    for given in [json!("41"), json!(41)] {
        let r = s
            .test_action(
                &s.admin,
                json!({"name": "t", "script": script, "flowType": "2", "triggerType": "4",
                       "context": {"user": {"sequence": given}}}),
            )
            .await;
        assert_eq!(r.body["effects"]["claims"]["s"], json!(["number", 42]), "sequence {given}: {r:?}");
    }
    // Unknown fields are ignored, at every depth; enums by name or number; base64 with or without
    // padding.
    let r = s
        .execute_trigger(
            &s.admin,
            "2",
            "4",
            json!({"somethingElse": [1, 2], "claims": {}, "user": {"state": 1, "human": {"gender": "GENDER_MALE",
                   "extra": {"x": 1}}, "unknown": 5},
                   "userMetadata": [{"key": "k", "value": "MQ"}], "userGrants": [{"projectId": "p", "roles": ["a"], "state": {}}]}),
        )
        .await;
    ok(&r);
    // No context at all is fine too.
    let r = s.post("/management/v1/flows/2/trigger/4/_execute", &s.admin, json!({})).await;
    ok(&r);
}

/// Members of a context that its trigger's shape does not name are dropped before anything reads
/// the context: scripts do not see them, effects do not carry them back, and whatever they hold
/// (a NUL) is not checked. Free-form members (claims) keep all they hold.
async fn unknown_context_members_are_dropped(s: &TestServer) {
    let test = |flow: &str, trigger: &str, script: &str, context: Value| {
        s.test_action(
            &s.admin,
            json!({"name": "t", "script": script, "flowType": flow, "triggerType": trigger, "context": context}),
        )
    };
    let shown =
        "function t(ctx, api) { require('zitadel/log').log(JSON.stringify(ctx.v1.user)); api.setLastName('L'); }";
    let r = test(
        "1",
        "2",
        shown,
        json!({"user": {"id": "u", "foo": {"x": 1}, "password": "secret", "human": {"firstName": "F", "bar": 2}},
               "junk": "a\u{0}b"}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["user"], json!({"id": "u", "human": {"firstName": "F", "lastName": "L"}}), "{r:?}");
    let log = r.body["runs"][0]["logs"][0]["message"].as_str().unwrap_or_default().to_string();
    assert!(log.contains("\"firstName\":\"F\"") && !log.contains("secret") && !log.contains("bar"), "{log}");
    let r = test(
        "1",
        "1",
        "function t(ctx, api) { api.setLastName('L'); }",
        json!({"externalUser": {"externalId": "e", "junk": 1, "human": {"junk2": "a\u{0}b"}}}),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["externalUser"], json!({"externalId": "e", "human": {"lastName": "L"}}), "{r:?}");
    let grants = "function t(ctx, api) { var g = ctx.v1.user.grants.grants[0]; api.v1.claims.setClaim('g', [g.projectId, typeof g.extra]); }";
    let r = test("2", "4", grants, json!({"userGrants": [{"projectId": "p", "extra": 1}]})).await;
    assert_eq!(r.body["effects"]["claims"]["g"], json!(["p", "undefined"]), "{r:?}");
    // A NUL in a member the shape names is still refused, naming it; claims are free-form, and
    // theirs is refused too (the value reaches the token).
    for (context, field) in [
        (json!({"user": {"id": "a\u{0}b"}}), "Context.User.Id"),
        (json!({"claims": {"k": {"deep": "a\u{0}b"}}}), "Context.Claims[\"k\"][\"deep\"]"),
        (json!({"userGrants": [{"roles": ["r", "a\u{0}"]}]}), "Context.UserGrants[0].Roles[1]"),
    ] {
        let r = test("2", "4", "function t() {}", context).await;
        assert_eq!(r.status, 400, "{field}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains(field), "{field}: {r:?}");
    }
}

/// The context's known fields are read under their proto (snake_case) names too, at every depth,
/// as every request field is (contract README §2); free-form members keep their keys as sent; one
/// field under both names is a 400 naming it.
async fn context_fields_under_proto_names(s: &TestServer) {
    let script = "function t(ctx, api) { var g = ctx.v1.user.grants.grants[0]; var m = ctx.v1.user.getMetadata().metadata[0]; \
                  api.v1.claims.setClaim('seen', [g.projectId, g.projectGrantId, g.roles, m.key, ctx.v1.getUser().preferredLoginName, \
                  ctx.v1.claims.snake_key]); }";
    let context = json!({
        "user_grants": [{"project_id": "p1", "project_grant_id": "pg1", "roles": ["admin"]}],
        "user_metadata": [{"key": "k1", "value": "MQ=="}],
        "user": {"id": "u1", "preferred_login_name": "u@example.com"},
        "claims": {"snake_key": "kept"},
        "org": {"id": "o1", "primary_domain": "example.com"}
    });
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "t", "script": script, "flowType": "2", "triggerType": "4", "context": context.clone()}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["effects"]["claims"]["seen"],
        json!(["p1", "pg1", ["admin"], "k1", "u@example.com", "kept"]),
        "{r:?}"
    );
    // `_execute` reads them the same way, and checks their types under either name.
    let r = s.execute_trigger(&s.admin, "2", "4", json!({"user_grants": [{"project_id": "p", "roles": "a"}]})).await;
    assert_eq!(
        r.body["message"], "invalid ExecuteFlowTriggerRequest.Context.UserGrants[0].Roles: must be an array",
        "{r:?}"
    );
    let r = s.execute_trigger(&s.admin, "1", "1", json!({"id_token_claims": {"a": null}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    // One field under both names.
    for (context, field) in [
        (json!({"userGrants": [], "user_grants": []}), "Context.UserGrants:"),
        (
            json!({"user": {"id": "a", "preferredLoginName": "x", "preferred_login_name": "y"}}),
            "Context.User.PreferredLoginName:",
        ),
        (json!({"userGrants": [{"projectId": "a", "project_id": "b"}]}), "Context.UserGrants[0].ProjectId:"),
    ] {
        let r = s.execute_trigger(&s.admin, "2", "4", context.clone()).await;
        assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{context}: {r:?}");
        assert!(r.body["message"].as_str().unwrap_or("").contains(field), "{field}: {r:?}");
    }
    // Only a field's exact proto name: other spellings are unknown fields, ignored.
    let script = "function t(ctx, api) { api.v1.claims.setClaim('n', ctx.v1.user.grants.count); }";
    let r = s
        .test_action(
            &s.admin,
            json!({"name": "t", "script": script, "flowType": "2", "triggerType": "4",
                   "context": {"user__grants": [{"projectId": "p"}], "user_Grants": [{"projectId": "p"}],
                               "claims": {"c": 1}, "claims_": "x"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["effects"]["claims"]["n"], 0, "{r:?}");
    let r = s.execute_trigger(&s.admin, "1", "1", json!({"idTokenClaims": {}, "id_token_claims": {}})).await;
    assert_eq!((r.status.as_u16(), r.code()), (400, 3), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").contains("Context.IdTokenClaims:"), "{r:?}");
}

async fn unknown_flow_or_trigger_is_400(s: &TestServer) {
    for path in ["9/trigger/1", "0/trigger/1", "x/trigger/1", "5/trigger/6"] {
        let r = s.post(&format!("/management/v1/flows/{path}/{EXECUTE}"), &s.admin, json!({"context": {}})).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
        assert_eq!(r.error_id(), "COMMAND-Dfhj5", "{r:?}");
    }
    for path in ["2/trigger/1", "1/trigger/4", "4/trigger/5", "3/trigger/6", "1/trigger/9"] {
        let r = s.post(&format!("/management/v1/flows/{path}/{EXECUTE}"), &s.admin, json!({"context": {}})).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(r.code(), 3, "{r:?}");
        assert_eq!(r.error_id(), "COMMAND-Dfgh6", "{r:?}");
    }
    // The aliases of SetTriggerActions work here too.
    let id = s.create_script_action("alias", "function alias(ctx, api) { api.setFirstName('A'); }").await;
    s.bind_trigger(&s.admin, "1", "1", &[&id]).await;
    let r = s
        .post(
            "/management/v1/flows/FLOW_TYPE_EXTERNAL_AUTHENTICATION/trigger/TRIGGER_TYPE_POST_AUTHENTICATION/_execute",
            &s.admin,
            json!({"context": {}}),
        )
        .await;
    assert_eq!(ok(&r)["externalUser"]["human"]["firstName"], "A", "{r:?}");
}

async fn execute_permissions(s: &TestServer) {
    let id = s.create_script_action("perm", "function perm(ctx, api) { api.v1.claims.setClaim('by', 'perm'); }").await;
    s.bind_trigger(&s.admin, "2", "4", &[&id]).await;
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    let r = s.execute_trigger(&executor, "2", "4", json!({})).await;
    assert_eq!(ok(&r), &json!({"claims": {"by": "perm"}}), "ORG_EXECUTOR may execute: {r:?}");
    let owner = s.create_token("default", "ORG_OWNER").await;
    let r = s.execute_trigger(&owner, "2", "4", json!({})).await;
    ok(&r);
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let r = s.execute_trigger(&viewer, "2", "4", json!({})).await;
    assert_eq!(r.status, 403, "ORG_VIEWER may not execute: {r:?}");
    assert_eq!(r.code(), 7);
    assert_eq!(r.error_id(), "AUTH-5mWD2");

    // Another organization runs its own (empty) trigger.
    let other = s.create_org("Other Org").await;
    let other_exec = s.create_token(&other, "ORG_EXECUTOR").await;
    let r = s.execute_trigger(&other_exec, "2", "4", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("runs").is_none(), "another org's actions never run: {r:?}");
}

// ---------------------------------------------------------------------------------------------
// Modules and globals
// ---------------------------------------------------------------------------------------------

fn logs_of(r: &Reply) -> Vec<(String, String)> {
    r.body["runs"][0]["logs"]
        .as_array()
        .unwrap_or_else(|| panic!("no runs[0].logs: {r:?}"))
        .iter()
        .map(|l| (l["level"].as_str().unwrap().to_string(), l["message"].as_str().unwrap().to_string()))
        .collect()
}

const FORMAT_SCRIPT: &str = r#"
function formats(ctx, api) {
  var log = require('zitadel/log');
  log.log('%s is %d years', 'Bob', 42);
  log.log('int %i and float %f', 42.9, '3.25');
  log.log('json %j', { a: [1, 'x'] });
  log.log('obj %o!', { a: 1 });
  log.log('100%% sure');
  log.log('a', 'b', 3);
  log.log('x=%s', 1, 2, 'three');
  log.log('missing %s and %d');
  log.log('number %d', '12');
  log.log(5, 6);
  log.log('string %s', 'plain');
  log.log('caught', new TypeError('boom'));
  log.log('as %s', new RangeError('far'));
}
"#;

async fn log_formatting(s: &TestServer) {
    let r = test_inline(s, "formats", FORMAT_SCRIPT, "2", "4", json!({})).await;
    ok(&r);
    let logs = logs_of(&r);
    let messages: Vec<&str> = logs.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(messages.len(), 13, "{messages:?}");
    assert_eq!(messages[11..], ["caught TypeError: boom", "as RangeError: far"], "errors read as String(err)");
    assert_eq!(messages[0], "Bob is 42 years");
    assert_eq!(messages[1], "int 42 and float 3.25");
    assert_eq!(messages[2], "json {\"a\":[1,\"x\"]}");
    assert!(
        messages[3].starts_with("obj ")
            && messages[3].ends_with('!')
            && messages[3].contains('a')
            && messages[3].contains('1')
            && !messages[3].contains("%o"),
        "%o renders the object: {:?}",
        messages[3]
    );
    assert_eq!(messages[4], "100% sure");
    assert_eq!(messages[5], "a b 3", "extra arguments are space-joined");
    assert_eq!(messages[6], "x=1 2 three");
    assert_eq!(messages[7], "missing %s and %d", "placeholders without arguments stay");
    assert_eq!(messages[8], "number 12");
    assert_eq!(messages[9], "5 6");
    assert_eq!(messages[10], "string plain");
    assert!(logs.iter().all(|(level, _)| level == "info"), "{logs:?}");
}

/// The directives follow Node's `util.format` for every primitive (the expected texts are what
/// Node prints), and a log call never throws for one: a BigInt keeps its `n`, a symbol is `NaN` for
/// the numeric directives, `%i` is `parseInt`, `%f` `parseFloat`, negative zero reads `-0`.
async fn log_formatting_follows_node(s: &TestServer) {
    let cases: [(&str, &str, &str); 25] = [
        ("%d", "5n", "5n"),
        ("%i", "5n", "5n"),
        ("%f", "5n", "5"),
        ("%s", "5n", "5n"),
        ("%o", "5n", "5n"),
        ("%i", "'12abc'", "12"),
        ("%i", "'0x1A'", "26"),
        ("%i", "42.9", "42"),
        ("%i", "1e21", "1"),
        ("%i", "-0", "0"),
        ("%d", "'12abc'", "NaN"),
        ("%d", "-0", "-0"),
        ("%d", "-1.5", "-1.5"),
        ("%d", "null", "0"),
        ("%d", "true", "1"),
        ("%s", "-0", "-0"),
        ("%s", "1e21", "1e+21"),
        ("%f", "'12.5px'", "12.5"),
        ("%f", "-0", "0"),
        ("%d", "Symbol('x')", "NaN"),
        ("%i", "Symbol('x')", "NaN"),
        ("%f", "Symbol('x')", "NaN"),
        ("%s", "Symbol('x')", "Symbol(x)"),
        ("%j", "new Date(0)", "\"1970-01-01T00:00:00.000Z\""),
        ("%j", "(function () { var o = {}; o.o = o; return o; })()", "[Circular]"),
    ];
    let calls: String = cases.iter().map(|(d, arg, _)| format!("console.log('{d}', {arg});\n")).collect();
    let script = format!("function node(ctx, api) {{\n{calls}console.log('x', -0, 5n, Symbol('s'));\n}}");
    let r = test_inline(s, "node", &script, "2", "4", json!({})).await;
    ok(&r);
    let messages: Vec<String> = logs_of(&r).into_iter().map(|(_, m)| m).collect();
    assert_eq!(messages.len(), cases.len() + 1, "{messages:?}");
    for ((directive, arg, expected), got) in cases.iter().zip(&messages) {
        assert_eq!(got, expected, "console.log('{directive}', {arg})");
    }
    assert_eq!(messages[cases.len()], "x -0 5n Symbol(s)", "extra arguments");
}

async fn log_levels_and_console(s: &TestServer) {
    let script = r#"
      function levels(ctx, api) {
        var log = require('zitadel/log');
        log.log('l'); log.info('i'); log.debug('d'); log.warn('w'); log.error('e');
        console.log('cl %d', 1); console.info('ci'); console.debug('cd'); console.warn('cw'); console.error('ce', 'x');
      }"#;
    let r = test_inline(s, "levels", script, "3", "1", json!({})).await;
    ok(&r);
    let logs = logs_of(&r);
    let expected: Vec<(String, String)> = [
        ("info", "l"),
        ("info", "i"),
        ("debug", "d"),
        ("warn", "w"),
        ("error", "e"),
        ("info", "cl 1"),
        ("info", "ci"),
        ("debug", "cd"),
        ("warn", "cw"),
        ("error", "ce x"),
    ]
    .iter()
    .map(|(l, m)| (l.to_string(), m.to_string()))
    .collect();
    assert_eq!(logs, expected);
    for record in r.body["runs"][0]["logs"].as_array().unwrap() {
        let time = record["time"].as_str().unwrap_or("");
        assert!(time.ends_with('Z') && time.contains('T') && time.len() >= 20, "RFC 3339 UTC time: {record}");
        assert_eq!(keys(record), ["level", "message", "time"]);
    }
    assert_eq!(r.body["runs"][0]["usage"]["logRecords"], 10, "{r:?}");

    // Logs of a failed run are kept too.
    let r = test_inline(
        s,
        "logThenFail",
        "function logThenFail() { console.warn('before'); throw 'x'; }",
        "2",
        "4",
        json!({}),
    )
    .await;
    failed(&r);
    assert_eq!(logs_of(&r), [("warn".to_string(), "before".to_string())]);
}

fn is_uuid(s: &str, version: char) -> bool {
    let b = s.as_bytes();
    s.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| b[i] == b'-')
        && s.chars().enumerate().all(|(i, c)| [8, 13, 18, 23].contains(&i) || c.is_ascii_hexdigit())
        && s.chars().all(|c| !c.is_ascii_uppercase())
        && b[14] as char == version
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

async fn uuid_module(s: &TestServer) {
    let script = r#"
      function ids(ctx, api) {
        var uuid = require('zitadel/uuid');
        var c = api.v1.claims;
        c.setClaim('v1', uuid.v1()); c.setClaim('v1b', uuid.v1());
        c.setClaim('v4', uuid.v4()); c.setClaim('v4b', uuid.v4());
        c.setClaim('v7', uuid.v7()); c.setClaim('v7b', uuid.v7());
        c.setClaim('v3dns', uuid.v3(uuid.namespaceDNS, 'example.com'));
        c.setClaim('v3dnsAgain', uuid.v3(uuid.namespaceDNS, 'example.com'));
        c.setClaim('v5dns', uuid.v5(uuid.namespaceDNS, 'example.com'));
        c.setClaim('v5dnsAgain', uuid.v5(uuid.namespaceDNS, 'example.com'));
        c.setClaim('v5url', uuid.v5(uuid.namespaceURL, 'https://example.com/'));
        c.setClaim('v3url', uuid.v3(uuid.namespaceURL, 'https://example.com/'));
        c.setClaim('ns', [uuid.namespaceDNS, uuid.namespaceURL, uuid.namespaceOID, uuid.namespaceX500]);
      }"#;
    let r = test_inline(s, "ids", script, "2", "4", json!({})).await;
    let claims = ok(&r)["claims"].clone();
    let get = |k: &str| claims[k].as_str().unwrap_or_else(|| panic!("claim {k}: {claims}")).to_string();
    for (key, version) in [("v1", '1'), ("v1b", '1'), ("v4", '4'), ("v4b", '4'), ("v7", '7'), ("v7b", '7')] {
        assert!(is_uuid(&get(key), version), "{key} = {}", get(key));
    }
    assert_ne!(get("v1"), get("v1b"));
    assert_ne!(get("v4"), get("v4b"));
    assert_ne!(get("v7"), get("v7b"));
    assert_eq!(get("v3dns"), "9073926b-929f-31c2-abc9-fad77ae3e8eb");
    assert_eq!(get("v3dnsAgain"), get("v3dns"));
    assert_eq!(get("v5dns"), "cfbff0d1-9375-5685-968c-48ce8b15ae17");
    assert_eq!(get("v5dnsAgain"), get("v5dns"));
    assert_eq!(get("v5url"), "dd2c1780-811a-5296-81c5-178a0ef488bc");
    assert_eq!(get("v3url"), "b9dcdff8-af4a-365d-8043-0f8361942709");
    assert_eq!(
        claims["ns"],
        json!([
            "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "6ba7b811-9dad-11d1-80b4-00c04fd430c8",
            "6ba7b812-9dad-11d1-80b4-00c04fd430c8",
            "6ba7b814-9dad-11d1-80b4-00c04fd430c8"
        ])
    );

    // Deterministic across runs as well.
    let r2 = test_inline(s, "ids", script, "2", "4", json!({})).await;
    assert_eq!(ok(&r2)["claims"]["v5url"], claims["v5url"]);
}

async fn require_unknown_module(s: &TestServer) {
    let script = r#"
      function req(ctx, api) {
        var messages = [];
        ['other', 'fs', 'zitadel/nope', 'http'].forEach(function (name) {
          try { require(name); messages.push('loaded ' + name); } catch (e) { messages.push(String(e) + '|' + (e instanceof Error)); }
        });
        api.v1.claims.setClaim('messages', messages);
        api.v1.claims.setClaim('known', [typeof require('zitadel/http').fetch, typeof require('zitadel/log').log,
          typeof require('zitadel/uuid').v4]);
        api.v1.claims.setClaim('globals', [typeof setTimeout, typeof process, typeof Buffer, typeof console.log]);
      }"#;
    let r = test_inline(s, "req", script, "2", "4", json!({})).await;
    let claims = &ok(&r)["claims"];
    assert_eq!(
        claims["messages"],
        json!([
            "Error: module \"other\" not found|true",
            "Error: module \"fs\" not found|true",
            "Error: module \"zitadel/nope\" not found|true",
            "Error: module \"http\" not found|true"
        ])
    );
    assert_eq!(claims["known"], json!(["function", "function", "function"]));
    assert_eq!(claims["globals"], json!(["undefined", "undefined", "undefined", "function"]));

    // Bad fetch arguments are catchable TypeErrors, thrown before any connection is made (a failed
    // connection would be a plain Error).
    let script = r#"
      function badfetch(ctx, api) {
        var http = require('zitadel/http'), seen = [];
        [[5], ['http://example.com/', 5], ['http://example.com/', 'GET'], ['http://example.com/', {headers: 'x'}]]
          .forEach(function (args) {
            try { http.fetch.apply(null, args); seen.push('sent'); } catch (e) { seen.push(e instanceof TypeError); }
          });
        api.v1.claims.setClaim('seen', seen);
      }"#;
    let r = test_inline(s, "badfetch", script, "2", "4", json!({})).await;
    assert_eq!(ok(&r)["claims"]["seen"], json!([true, true, true, true]), "{r:?}");

    // Uncaught, it fails the run with that text.
    let r = test_inline(s, "reqFail", "function reqFail() { require('other'); }", "2", "4", json!({})).await;
    failed(&r);
    assert_error_text(&r.body["runs"][0]["error"], "Error: module \"other\" not found");
}

/// ZITADEL ≥ 2.51: each user grant may carry its organization's metadata; scripts read it through
/// the grant's getOrgMetadata(), decoded like getMetadata(); a grant without it gives an empty list.
async fn grant_org_metadata(s: &TestServer) {
    let script = r#"function grantmeta(ctx, api) {
  var grants = ctx.v1.user.grants.grants;
  var seen = grants.map(function (g) { return g.getOrgMetadata(); });
  api.v1.user.setMetadata('seen', {seen: seen, raw: grants.map(function (g) { return g.orgMetadata === undefined; })});
}"#;
    let id = s.create_script_action("grantmeta", script).await;
    for (flow, trigger) in [("2", "4"), ("2", "5"), ("4", "6")] {
        s.bind_trigger(&s.admin, flow, trigger, &[&id]).await;
        let context = json!({"userGrants": [
            {"projectId": "p1", "roles": ["a"], "orgMetadata": [
                {"key": "tier", "value": b64("gold")}, {"key": "limits", "value": b64("{\"seats\":5}")}]},
            {"projectId": "p2", "roles": ["b"]}
        ]});
        let r = s.execute_trigger(&s.admin, flow, trigger, context).await;
        let effects = ok(&r);
        let seen = metadata_json(effects, "seen");
        assert_eq!(seen["raw"], json!([true, true]), "the raw base64 list is not on the grant: {seen}");
        let first = &seen["seen"][0];
        assert_eq!(first["count"], 2, "{seen}");
        let pairs: Vec<(Value, Value)> =
            first["metadata"].as_array().unwrap().iter().map(|m| (m["key"].clone(), m["value"].clone())).collect();
        assert_eq!(pairs, [(json!("tier"), json!("gold")), (json!("limits"), json!({"seats": 5}))], "{flow}/{trigger}");
        assert_eq!(seen["seen"][1], json!({"count": 0, "metadata": []}), "{flow}/{trigger}");
    }
}

/// setGender takes the numbers 0..3 or the enum names; anything else is 0 (unspecified), so the
/// effect always fits its schema.
async fn set_gender_values(s: &TestServer) {
    for (arg, expected) in [("2", 2), ("'GENDER_DIVERSE'", 3), ("1.7", 1), ("9", 0), ("-1", 0), ("'x'", 0), ("NaN", 0)]
    {
        let script = format!("function g(ctx, api) {{ api.setGender({arg}); }}");
        let r = test_inline(s, "g", &script, "3", "2", json!({"user": {"human": {"firstName": "A"}}})).await;
        let gender = ok(&r)["user"]["human"]["gender"].as_i64().unwrap_or(0);
        assert_eq!(gender, expected, "setGender({arg}): {r:?}");
    }
}

/// `null` given to a string setter is the zero value, like `undefined` (upstream converts both to
/// ""): mapping a claim the IdP did not send sets nothing, not the text "null".
async fn null_in_string_setters(s: &TestServer) {
    let script = "function m(ctx, api) { api.setFirstName(ctx.getClaim('given_name')); api.setNickName(null); \
        api.setDisplayName(ctx.getClaim('name')); api.setPhone(undefined); }";
    let context = json!({"idTokenClaims": {"name": "Ada L"},
        "externalUser": {"externalId": "e1", "human": {"firstName": "Old", "nickName": "Nick", "phone": "+41"}}});
    let r = test_inline(s, "m", script, "1", "1", context).await;
    let human = &ok(&r)["externalUser"]["human"];
    assert_eq!(human["displayName"], "Ada L", "{r:?}");
    for field in ["firstName", "nickName", "phone"] {
        assert!(human.get(field).is_none(), "{field} set to the zero value (omitted), not \"null\": {r:?}");
    }
    // A symbol reads as String(v) does; a pushed metadata item without a key has the empty key.
    let script = "function y(ctx, api) { api.setNickName(Symbol('s')); api.metadata.push({value: 1}); }";
    let r = test_inline(s, "y", script, "1", "1", json!({"externalUser": {"externalId": "e"}})).await;
    let effects = ok(&r);
    assert_eq!(effects["externalUser"]["human"]["nickName"], "Symbol(s)", "{r:?}");
    assert_eq!(effects["metadata"], json!([{"key": "", "value": b64("1")}]), "{r:?}");
    // SAML attribute values too.
    let script =
        "function a(ctx, api) { api.v1.attributes.setCustomAttribute('groups', null, 'x', null, undefined, 0); }";
    let r = test_inline(s, "a", script, "4", "6", json!({})).await;
    assert_eq!(ok(&r)["attributes"], json!([{"name": "groups", "values": ["x", "", "", "0"]}]), "{r:?}");
}

/// A lone surrogate (half of an emoji: `"😀".substring(0, 1)`) leaves a script as U+FFFD
/// wherever it goes: claim keys and values, metadata keys and values, log lines, error texts.
async fn lone_surrogates_leave_as_replacement_characters(s: &TestServer) {
    let script = r#"function u(ctx, api) {
        var half = "\ud83d\ude00".substring(0, 1);
        api.v1.claims.setClaim("k" + half, "x" + half + "y");
        api.v1.user.setMetadata("m" + half, "v" + half);
        console.log("l" + half + "g");
    }"#;
    let r = test_inline(s, "u", script, "2", "4", json!({})).await;
    let effects = ok(&r);
    assert_eq!(effects["claims"], json!({"k\u{FFFD}": "x\u{FFFD}y"}), "{r:?}");
    assert_eq!(
        metadata_effect(effects).into_iter().collect::<Vec<_>>(),
        [("m\u{FFFD}".to_string(), "\"v\u{FFFD}\"".to_string())]
    );
    assert_eq!(logs_of(&r), [("info".to_string(), "l\u{FFFD}g".to_string())]);
    let script = r#"function t(ctx, api) { throw new Error("e" + "\ud800" + "r"); }"#;
    let r = test_inline(s, "t", script, "2", "4", json!({})).await;
    assert_error_text(&failed(&r)["error"], "action \"t\": Error: e\u{FFFD}r");
}

mod json_out {
    use super::*;
    use common::receiver::{Answer, Receiver};

    fn loopback(c: &mut actionsd::config::Config) {
        common::allow_loopback(c);
    }

    /// What leaves a script as JSON (claim and metadata values, a fetch body) goes through
    /// `JSON.stringify`: `toJSON` honoured (dates as ISO strings), functions and `undefined` dropped,
    /// `-0` as 0, members in the script's order; replacing the global `JSON.stringify` changes nothing.
    async fn values_leave_as_json_stringify_gives_them(s: &TestServer) {
        let z = Receiver::start().await;
        let script = format!(
            "function conv(ctx, api) {{
              JSON.stringify = function () {{ return '\"hijacked\"'; }};
              var t = {{toJSON: function () {{ return 'x'; }}}};
              require('zitadel/http').fetch('{}', {{method: 'POST',
                body: {{b: 1, a: new Date(0), f: function () {{}}, u: undefined, z: -0, t: t}}}});
              api.v1.claims.setClaim('date', new Date(0));
              api.v1.claims.setClaim('obj', {{b: 1, f: function () {{}}, t: t}});
              api.v1.claims.setClaim('zero', -0);
              api.v1.user.setMetadata('when', new Date(0));
            }}",
            z.url("/hook")
        );
        let r = test_inline(s, "conv", &script, "2", "4", json!({})).await;
        let effects = ok(&r);
        assert_eq!(effects["claims"]["date"], "1970-01-01T00:00:00.000Z", "{r:?}");
        assert_eq!(effects["claims"]["obj"], json!({"b": 1, "t": "x"}), "{r:?}");
        assert_eq!(effects["claims"]["zero"], json!(0), "{r:?}");
        assert_eq!(metadata_json(effects, "when"), json!("1970-01-01T00:00:00.000Z"), "{r:?}");
        let sent = z.requests_to("/hook");
        assert_eq!(sent.len(), 1, "{r:?}");
        assert_eq!(String::from_utf8_lossy(&sent[0].body), r#"{"b":1,"a":"1970-01-01T00:00:00.000Z","z":0,"t":"x"}"#);
    }

    /// No `fetch` connection outlives its run: runs of two organizations, one after the other,
    /// each reach the receiver over a connection of their own (a new source port every time).
    async fn fetch_connections_do_not_outlive_the_run(s: &TestServer) {
        let z = Receiver::start().await;
        let other = s.create_org(&format!("fetching org {}", uuid::Uuid::new_v4().simple())).await;
        let other_token = s.create_token(&other, "ORG_OWNER").await;
        let script = format!("function hop(ctx, api) {{ require('zitadel/http').fetch('{}'); }}", z.url("/hop"));
        let body = json!({"name": "hop", "script": script, "flowType": "2", "triggerType": "4", "context": {}});
        for token in [&s.admin, &other_token, &s.admin, &other_token, &s.admin, &other_token] {
            let r = s.test_action(token, body.clone()).await;
            assert_eq!(r.status, 200, "{r:?}");
            ok(&r);
        }
        let ports: Vec<u16> = z.requests_to("/hop").iter().map(|r| r.peer.port()).collect();
        assert_eq!(ports.len(), 6);
        let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len(), "a connection was reused across runs: {ports:?}");
    }

    /// Bodies up to the 10 MiB cap are read within the run's memory limit (64 MiB by default):
    /// one buffer sized by Content-Length, the text shared by `body` and `text()`.
    async fn fetch_reads_bodies_up_to_the_cap(s: &TestServer) {
        let z = Receiver::start().await;
        let cap = 10 * 1024 * 1024;
        for (path, len) in [("/eight", 8 * 1024 * 1024), ("/cap", cap)] {
            let mut answer = Answer::status(200).with_header("content-type", "text/plain");
            answer.body = "a".repeat(len);
            z.reply_at(path, answer);
        }
        let mut over = Answer::status(200);
        over.body = "a".repeat(cap + 1);
        z.reply_at("/over", over);
        let restarted = || async {
            let r = s.call(reqwest::Method::GET, "/metrics", None, &[], None).await;
            let text = r.body.as_str().unwrap_or_default().to_string();
            let line = text.lines().find(|l| l.starts_with("actionsd_sandbox_workers_restarted_total ")).unwrap();
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        // Small runs leave their worker as it was.
        let before = restarted().await;
        for _ in 0..3 {
            ok(&test_inline(
                s,
                "small",
                "function small(ctx, api) { api.v1.claims.setClaim('a', 1); }",
                "2",
                "4",
                json!({}),
            )
            .await);
        }
        assert_eq!(restarted().await, before, "small runs keep their worker");
        // One body per run, as a script would fetch one document (each run has its own limit).
        for (path, len) in [("/eight", 8 * 1024 * 1024), ("/cap", cap)] {
            let script = format!(
                "function big(ctx, api) {{
                  var r = require('zitadel/http').fetch('{url}');
                  api.v1.claims.setClaim('lengths', [r.text().length, r.body.length, r.text() === r.body]);
                }}",
                url = z.url(path),
            );
            let r = test_inline(s, "big", &script, "2", "4", json!({})).await;
            assert_eq!(ok(&r)["claims"]["lengths"], json!([len, len, true]), "{path}: {r:?}");
        }
        let script = format!(
            "function big(ctx, api) {{
              var over;
              try {{ require('zitadel/http').fetch('{url}'); over = 'read'; }} catch (e) {{ over = String(e); }}
              api.v1.claims.setClaim('over', over);
            }}",
            url = z.url("/over"),
        );
        let r = test_inline(s, "big", &script, "2", "4", json!({})).await;
        assert!(ok(&r)["claims"]["over"].as_str().unwrap().contains("exceeds"), "{r:?}");
        // A worker whose data segment grew past half of the limit (the allocator keeps what a
        // large run mapped) is replaced, so the next run, maybe another org's, has its full limit.
        assert!(restarted().await > before, "the workers of the large runs were replaced");
    }

    /// `response.json()` builds what `JSON.parse(response.text())` builds: members in the body's
    /// order at every level, a later duplicate winning, `__proto__` an ordinary member; text that is
    /// not JSON is a catchable Error.
    async fn response_json_is_json_parse(s: &TestServer) {
        let z = Receiver::start().await;
        let body = r#"{"z":1,"a":[{"y":true,"b":null}],"m":{"k":"v","c":2.5,"k":"w"},"__proto__":{"x":1},"big":12345678901234}"#;
        let mut doc = Answer::status(200).with_header("content-type", "application/json");
        doc.body = body.to_string();
        z.reply_at("/doc", doc);
        let mut text = Answer::status(200);
        text.body = "{\"a\":1} trailing".to_string();
        z.reply_at("/text", text);
        let script = format!(
            "function parse(ctx, api) {{
              var http = require('zitadel/http');
              var r = http.fetch('{doc}');
              var v = r.json();
              api.v1.claims.setClaim('same', JSON.stringify(v) === JSON.stringify(JSON.parse(r.text())));
              api.v1.claims.setClaim('text', JSON.stringify(v));
              api.v1.claims.setClaim('keys', Object.keys(v));
              api.v1.claims.setClaim('proto', Object.getPrototypeOf(v) === Object.prototype && v.__proto__.x === 1);
              var bad;
              try {{ http.fetch('{text}').json(); bad = 'parsed'; }} catch (e) {{ bad = e instanceof Error && e.message; }}
              api.v1.claims.setClaim('bad', bad);
            }}",
            doc = z.url("/doc"),
            text = z.url("/text"),
        );
        let r = test_inline(s, "parse", &script, "2", "4", json!({})).await;
        let claims = &ok(&r)["claims"];
        assert_eq!(claims["same"], true, "{r:?}");
        assert_eq!(
            claims["text"],
            r#"{"z":1,"a":[{"y":true,"b":null}],"m":{"k":"w","c":2.5},"__proto__":{"x":1},"big":12345678901234}"#,
            "{r:?}"
        );
        assert_eq!(claims["keys"], json!(["z", "a", "m", "__proto__", "big"]), "{r:?}");
        assert_eq!(claims["proto"], true, "{r:?}");
        assert!(claims["bad"].as_str().unwrap_or("").starts_with("fetch: response is not valid JSON"), "{r:?}");
    }

    backend_tests_with!(loopback; values_leave_as_json_stringify_gives_them, fetch_connections_do_not_outlive_the_run,
        fetch_reads_bodies_up_to_the_cap, response_json_is_json_parse);
}

/// Post Creation: `api.userGrants` holds what earlier actions added (one list across the
/// trigger's actions, as upstream shares it); a failed action's changes are discarded.
async fn user_grants_carry_across_actions(s: &TestServer) {
    let first = s
        .create_script_action(
            "grantFirst",
            "function grantFirst(ctx, api) { api.userGrants.push({projectID: 'a', roles: ['r']}); }",
        )
        .await;
    let broken = s
        .create_action_body(
            &s.admin,
            json!({"name": "grantBroken", "allowedToFail": true,
                "script": "function grantBroken(ctx, api) { api.userGrants.length = 0; throw new Error('no'); }"}),
        )
        .await;
    let second = s
        .create_script_action(
            "grantSecond",
            "function grantSecond(ctx, api) { var seen = api.userGrants.map(function (g) { return g.projectId; });
               api.userGrants.push({projectID: 'b', roles: seen}); api.v1.appendUserGrant({projectId: 'c', roles: []}); }",
        )
        .await;
    s.bind_trigger(&s.admin, "3", "3", &[&first, &broken, &second]).await;
    let r = s.execute_trigger(&s.admin, "3", "3", json!({})).await;
    assert_eq!(
        ok(&r)["userGrants"],
        json!([{"projectId": "a", "roles": ["r"]}, {"projectId": "b", "roles": ["a"]}, {"projectId": "c"}]),
        "{r:?}"
    );
}

/// `ctx.v1.externalUser` has every member of its shape (runtime-v1.md §4.5), missing ones as zero
/// values (the host may send only ids), its `metadata` a copy of what `api.metadata` starts with;
/// URL-safe base64 metadata is decoded like the standard alphabet.
async fn external_user_shape_and_metadata_alphabets(s: &TestServer) {
    let script = "function e(ctx, api) { var u = ctx.v1.externalUser;
        api.v1.user.appendMetadata('seen', {email: u.human.email, verified: u.human.isEmailVerified,
          user: u.preferredUsername, meta: api.metadata.map(function (m) { return m.value; }),
          keys: Object.keys(u).sort(), ctxMeta: u.metadata}); }";
    let context = json!({"externalUser": {"externalId": "x", "externalIdpId": "i",
        "metadata": [{"key": "std", "value": "eyJrIjoifn5+In0="}, {"key": "url", "value": "eyJrIjoifn5-In0"}]}});
    let r = test_inline(s, "e", script, "1", "1", context.clone()).await;
    let seen = metadata_json(ok(&r), "seen");
    assert_eq!(
        seen,
        json!({"email": "", "verified": false, "user": "", "meta": [{"k": "~~~"}, {"k": "~~~"}],
            "keys": ["externalId", "externalIdpId", "human", "metadata", "preferredUsername"],
            "ctxMeta": [{"key": "std", "value": {"k": "~~~"}}, {"key": "url", "value": {"k": "~~~"}}]}),
        "{r:?}"
    );
    // The second action sees the first one's entries in the copy too; the effects' externalUser
    // still carries no metadata (it is `effects.metadata`).
    let first = "function extMetaA(ctx, api) {
        api.v1.user.appendMetadata('url', 'new'); api.metadata.push({key: 'n', value: 1}); }";
    let second = "function extMetaB(ctx, api) { api.v1.user.appendMetadata('copy', ctx.v1.externalUser.metadata); }";
    let a = s.create_script_action("extMetaA", first).await;
    let b = s.create_script_action("extMetaB", second).await;
    s.bind_trigger(&s.admin, "1", "1", &[&a, &b]).await;
    let r = s.execute_trigger(&s.admin, "1", "1", context).await;
    let effects = ok(&r);
    assert_eq!(
        metadata_json(effects, "copy"),
        json!([{"key": "std", "value": {"k": "~~~"}}, {"key": "url", "value": "new"}, {"key": "n", "value": 1}]),
        "{r:?}"
    );
    assert!(effects["externalUser"].get("metadata").is_none(), "{r:?}");
    s.bind_trigger(&s.admin, "1", "1", &[]).await;
    // An empty authError is no error: "none", as when it is absent.
    let script = "function n(ctx, api) { api.v1.user.appendMetadata('err', ctx.v1.authError); }";
    for flow in ["1", "3"] {
        let r = test_inline(s, "n", script, flow, "1", json!({"authError": ""})).await;
        assert_eq!(metadata_json(ok(&r), "err"), "none", "flow {flow}: {r:?}");
    }
}

/// `setPreferredLanguage` keeps a BCP-47 tag in its canonical case (`_` read as `-`, as upstream's
/// parser does) and turns anything else into `und`.
async fn preferred_language_tags(s: &TestServer) {
    for (arg, expected) in [
        ("'de-CH'", "de-CH"),
        ("'de_CH'", "de-CH"),
        ("'EN-us'", "en-US"),
        ("'zh-hant-tw'", "zh-Hant-TW"),
        ("'fr'", "fr"),
        ("'en-US-u-ca-gregory'", "en-US-u-ca-gregory"),
        ("'DE-u-CO-phonebk'", "de-u-co-phonebk"),
        ("'en-US-x-Twain'", "en-US-x-twain"),
        ("'x-private'", "x-private"),
        ("'en-u'", "und"),
        ("'en-x'", "und"),
        ("'not a tag'", "und"),
        ("'x'", "und"),
        ("null", "und"),
        ("''", "und"),
    ] {
        let script = format!("function l(ctx, api) {{ api.setPreferredLanguage({arg}); }}");
        let r = test_inline(s, "l", &script, "3", "2", json!({"user": {"human": {"firstName": "A"}}})).await;
        assert_eq!(ok(&r)["user"]["human"]["preferredLanguage"], expected, "setPreferredLanguage({arg}): {r:?}");
    }
}

/// Pre Creation's `ctx.v1.user` is the whole User shape with `human`, as upstream hands over its
/// struct: what the host left out (protobuf's JSON omits zero values), or the whole user, reads as
/// zero values; a lone surrogate in a value leaving the script becomes U+FFFD.
async fn pre_creation_user_is_whole(s: &TestServer) {
    let script = r#"function a(ctx, api) {
        api.v1.user.appendMetadata('seen', ctx.v1.user);
        api.v1.user.appendMetadata('phoneLength', ctx.v1.user.human.phone.length);
        api.v1.user.appendMetadata('lone', 'a\ud800b');
    }"#;
    let human_zero = json!({"firstName": "", "lastName": "", "nickName": "", "displayName": "", "avatarKey": "",
        "preferredLanguage": "", "gender": 0, "email": "", "isEmailVerified": false, "phone": "", "isPhoneVerified": false});
    for (context, first_name) in [
        (json!({"user": {"id": "u1", "human": {"firstName": "A"}}}), "A"),
        (json!({}), ""),
        (json!({"user": {"id": "u2"}}), ""),
    ] {
        let r = test_inline(s, "a", script, "3", "2", context.clone()).await;
        assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{context}: {r:?}");
        let seen = metadata_json(&r.body["effects"], "seen");
        let mut expected = human_zero.clone();
        expected["firstName"] = json!(first_name);
        assert_eq!(seen["human"], expected, "{context}: {seen}");
        for key in ["id", "creationDate", "changeDate", "resourceOwner", "username", "preferredLoginName"] {
            assert!(seen[key].is_string(), "{key} in {seen}");
        }
        assert_eq!(
            (&seen["sequence"], &seen["state"], &seen["loginNames"]),
            (&json!(0), &json!(0), &json!([])),
            "{seen}"
        );
        assert_eq!(metadata_json(&r.body["effects"], "phoneLength"), 0);
        assert_eq!(metadata_json(&r.body["effects"], "lone"), "a\u{FFFD}b");
    }
}

backend_tests!(
    pre_creation_user_is_whole,
    user_grants_carry_across_actions,
    external_user_shape_and_metadata_alphabets,
    preferred_language_tags,
    null_in_string_setters,
    lone_surrogates_leave_as_replacement_characters,
    set_gender_values,
    grant_org_metadata,
    external_post_authentication,
    pre_creation,
    post_creation,
    assigned_lists_are_the_effects,
    internal_post_authentication,
    complement_token,
    complement_saml,
    order_and_data_passing,
    failing_action_stops_the_trigger,
    allowed_to_fail_continues,
    thrown_values_and_missing_function,
    async_entry_functions,
    fresh_realm_per_run,
    empty_trigger,
    response_shape,
    bad_context_is_400,
    unknown_context_members_are_dropped,
    context_fields_under_proto_names,
    unknown_flow_or_trigger_is_400,
    execute_permissions,
    log_formatting,
    log_formatting_follows_node,
    log_levels_and_console,
    uuid_module,
    require_unknown_module,
);
