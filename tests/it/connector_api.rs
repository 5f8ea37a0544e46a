//! The connector with ZITADEL's API (README, "Use actionsd with ZITADEL"): a local stand-in for a
//! ZITADEL instance serves user and session lookups, org and user metadata searches and the JWKS,
//! and records the AddUserGrant / SetUserMetadata calls the delivery queue makes. JWT and JWE
//! bodies, and a hostile script that must not hold up other calls. On SQLite and PostgreSQL.

use crate::common::receiver::{Answer, Receiver};
use crate::common::{assert_error, TestServer};
use crate::connector_call::{
    bind, now, post_call, runs_of, setup, signature, signed_call, token_payload, CONNECTIONS, KEY,
};
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const PAT: &str = "pat-of-the-service-user";

fn fast(c: &mut actionsd::config::Config) {
    crate::common::allow_loopback(c);
    c.delivery_retry_schedule =
        actionsd::config::Schedule(vec![Duration::from_millis(200), Duration::from_millis(400)]);
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn api(z: &Receiver) -> Value {
    json!({"zitadelApi": {"baseUrl": z.url(""), "token": PAT}})
}

/// The connection's deliveries once `done` holds for them (bounded: about 10 s).
async fn deliveries_of(s: &TestServer, connection: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let filter = json!({"filters": [{"connectionIdFilter": {"connectionId": connection}}]});
        let r = s.post("/v2/actions/deliveries/search", &s.admin, filter).await;
        assert_eq!(r.status, 200, "{r:?}");
        let list = r.body["deliveries"].as_array().cloned().unwrap_or_default();
        if done(&list) || Instant::now() >= deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The requests the stand-in received at `path` once there are `n` (bounded).
async fn received(z: &Receiver, path: &str, n: usize) -> Vec<crate::common::receiver::Recorded> {
    z.wait_until(Duration::from_secs(10), path, |rs| rs.iter().filter(|r| r.path == path).count() >= n).await;
    z.requests_to(path)
}

/// ZITADEL's answer to `GET /v2/sessions/s1`: user 312, checked with WebAuthn and user verification.
fn passwordless_session() -> Answer {
    Answer::json(
        200,
        json!({"session": {"id": "s1", "factors": {
        "user": {"id": "312", "loginName": "ann", "verifiedAt": "2026-12-02T10:00:00Z"},
        "webAuthN": {"verifiedAt": "2026-12-02T10:00:01Z", "userVerified": true}}}}),
    )
}

/// CreateSession with only a user check in the request: the session lookup says which factor
/// was verified and whose session it is; the user lookup gives the org (cached); the metadata
/// effect goes to SetUserMetadata. An intent of an existing user: the same for its user.
async fn sessions_and_intents_find_their_user_through_the_api(s: &TestServer) {
    let z = Receiver::start().await;
    z.reply_at("/v2/sessions/s1", passwordless_session());
    z.reply_at(
        "/v2/users/312",
        Answer::json(
            200,
            json!({"details": {"sequence": "9"}, "user": {"userId": "312",
            "details": {"sequence": "3", "resourceOwner": "zorg"}, "username": "ann"}}),
        ),
    );
    // No default org: only the lookup can route these calls to zorg's linked org.
    let (url, id, org, token) = setup(s, api(&z)).await;
    let audit = "function audit(ctx, api) { api.v1.user.appendMetadata('last_method', ctx.v1.authMethod); }";
    bind(s, &token, &org, "3", "1", &[("audit", audit, false)]).await;
    let session = json!({"fullMethod": "/zitadel.session.v2.SessionService/CreateSession",
        "instanceID": "inst", "orgID": "login-client-org", "userID": "login-client",
        "request": {"checks": {"user": {"loginName": "ann"}}},
        "response": {"sessionId": "s1", "sessionToken": "tok", "details": {"sequence": "1"}}});
    let r = signed_call(s, &url, &session).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &session["response"]), "the response unchanged: {r:?}");
    let lookups = z.requests_to("/v2/sessions/s1");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].header("authorization"), format!("Bearer {PAT}"));
    let sets = received(&z, "/management/v1/users/312/metadata/last_method", 1).await;
    assert_eq!(sets[0].header("x-zitadel-orgid"), "zorg");
    assert_eq!(sets[0].header("authorization"), format!("Bearer {PAT}"));
    assert_eq!(sets[0].json(), json!({"value": b64("\"passwordless\"")}));
    let list = deliveries_of(s, &id, |l| l.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED")).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["connectionId"], id.as_str());
    assert!(list[0].get("targetId").is_none(), "{list:?}");
    assert_eq!(list[0]["executionId"], "response/zitadel.session.v2.SessionService/CreateSession");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["condition"], "response/zitadel.session.v2.SessionService/CreateSession");
    assert!(runs[0].get("warnings").is_none(), "{runs:?}");
    // The user's org is remembered; the session's factors are read every time.
    signed_call(s, &url, &session).await;
    assert_eq!(z.requests_to("/v2/users/312").len(), 1);
    assert_eq!(z.requests_to("/v2/sessions/s1").len(), 2);

    // An intent of a user that exists already (no addHumanUser): metadata through the API.
    let team = "function team(ctx, api) { api.v1.user.appendMetadata('idp_user', ctx.v1.externalUser.externalId); }";
    bind(s, &token, &org, "1", "1", &[("team", team, false)]).await;
    let intent = json!({"fullMethod": "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent",
        "request": {"idpIntentId": "i1", "idpIntentToken": "t"},
        "response": {"details": {"sequence": "4"}, "userId": "312",
            "idpInformation": {"idpId": "idp1", "userId": "ext-1", "userName": "ann@idp", "rawInformation": {}}}});
    let r = signed_call(s, &url, &intent).await;
    assert_eq!(r.body, intent["response"], "{r:?}");
    let sets = received(&z, "/management/v1/users/312/metadata/idp_user", 1).await;
    assert_eq!(sets[0].json(), json!({"value": b64("\"ext-1\"")}));
    assert_eq!(sets[0].header("x-zitadel-orgid"), "zorg");
    // Repointed to another ZITADEL, the connection asks that one: nothing remembered of the
    // first is used (there the user belongs to an org without a link, so no action runs).
    let other = Receiver::start().await;
    other.reply_at("/v2/sessions/s1", passwordless_session());
    other.reply_at(
        "/v2/users/312",
        Answer::json(200, json!({"user": {"userId": "312", "details": {"sequence": "3", "resourceOwner": "zother"}}})),
    );
    let name = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await.body["connection"]["name"].clone();
    let repointed = json!({"name": name, "zitadelApi": {"baseUrl": other.url(""), "token": PAT}});
    let r = s.put(&format!("{CONNECTIONS}/{id}"), &s.admin, repointed).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = signed_call(s, &url, &session).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &session["response"]), "{r:?}");
    assert_eq!(other.requests_to("/v2/sessions/s1").len(), 1, "the session is read at the new ZITADEL");
    assert_eq!(other.requests_to("/v2/users/312").len(), 1, "the user is looked up at the new ZITADEL");
    assert_eq!(z.requests_to("/v2/users/312").len(), 1, "and not again at the old one");
}

/// Post Authentication runs once per verified step, with that step's method, as v1 ran it: the
/// TOTP step after the password names `"OTP"` though the session verified both, and a SetSession
/// that checks nothing (a challenge request, a new lifetime) passes through without a lookup.
async fn session_steps_run_once_with_their_method(s: &TestServer) {
    let z = Receiver::start().await;
    z.reply_at(
        "/v2/sessions/s2",
        Answer::json(
            200,
            json!({"session": {"id": "s2", "factors": {
            "user": {"id": "312", "loginName": "ann", "verifiedAt": "2026-12-02T10:00:00Z"},
            "password": {"verifiedAt": "2026-12-02T10:00:01Z"},
            "totp": {"verifiedAt": "2026-12-02T10:00:02Z"}}}}),
        ),
    );
    z.reply_at(
        "/v2/users/312",
        Answer::json(200, json!({"user": {"userId": "312", "details": {"sequence": "3", "resourceOwner": "zorg"}}})),
    );
    let (url, _, org, token) = setup(s, api(&z)).await;
    let audit = "function audit(ctx, api) { api.v1.user.appendMetadata('last_method', ctx.v1.authMethod); }";
    bind(s, &token, &org, "3", "1", &[("audit", audit, false)]).await;
    let set_session = |request: Value| {
        json!({"fullMethod": "/zitadel.session.v2.SessionService/SetSession", "instanceID": "inst",
            "request": request, "response": {"details": {"sequence": "5"}, "sessionToken": "tok"}})
    };
    for request in [
        json!({"sessionId": "s2", "challenges": {"otpSms": {"returnCode": false}}}),
        json!({"sessionId": "s2", "lifetime": "3600s"}),
        json!({"sessionId": "s2", "checks": {}}),
    ] {
        let payload = set_session(request);
        let r = signed_call(s, &url, &payload).await;
        assert_eq!((r.status.as_u16(), &r.body), (200, &payload["response"]), "passed through: {r:?}");
    }
    assert!(z.requests_to("/v2/sessions/s2").is_empty(), "no lookup for a call that checked nothing");
    let payload = set_session(json!({"sessionId": "s2", "checks": {"totp": {"code": "123456"}}}));
    let r = signed_call(s, &url, &payload).await;
    assert_eq!((r.status.as_u16(), &r.body), (200, &payload["response"]), "{r:?}");
    let sets = received(&z, "/management/v1/users/312/metadata/last_method", 1).await;
    assert_eq!(sets[0].json(), json!({"value": b64("\"OTP\"")}), "the step's own method");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs.len(), 1, "one run, for the call that checked a factor: {runs:?}");
}

/// Org metadata for `ctx.v1.org.getMetadata()` and SAML user metadata, which ZITADEL does not
/// send, come from its metadata searches; a failing search leaves a warning and empty metadata.
async fn metadata_zitadel_does_not_send(s: &TestServer) {
    let z = Receiver::start().await;
    z.reply_at(
        "/management/v1/metadata/_search",
        Answer::json(
            200,
            json!({"details": {"totalResult": "1"}, "result": [{"details": {"sequence": "2",
            "resourceOwner": "zorg"}, "key": "plan", "value": b64("\"gold\"")}]}),
        ),
    );
    z.reply_at(
        "/management/v1/users/312/metadata/_search",
        Answer::json(200, json!({"result": [{"key": "dept", "value": b64("\"sales\"")}]})),
    );
    let (url, _, org, token) = setup(s, api(&z)).await;
    let plan = "function plan(ctx, api) { const m = ctx.v1.org.getMetadata(); \
                api.v1.claims.setClaim('plan', m.count > 0 ? m.metadata[0].value : 'none'); }";
    bind(s, &token, &org, "2", "5", &[("plan", plan, false)]).await;
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "plan", "value": "gold"}]), "{r:?}");
    let searches = z.requests_to("/management/v1/metadata/_search");
    assert_eq!(searches.len(), 1);
    assert_eq!(searches[0].header("x-zitadel-orgid"), "zorg");
    assert_eq!(searches[0].header("authorization"), format!("Bearer {PAT}"));
    // SAML payloads carry no user metadata: looked up for the payload's user.
    let dept = "function dept(ctx, api) { const m = ctx.v1.user.getMetadata(); \
                api.v1.attributes.setCustomAttribute('dept', '', m.count > 0 ? m.metadata[0].value : 'none'); }";
    bind(s, &token, &org, "4", "6", &[("dept", dept, false)]).await;
    let saml = json!({"function": "function/presamlresponse",
        "user": {"id": "312", "resource_owner": "zorg", "username": "ann", "human": {"first_name": "Ann"}},
        "user_grants": []});
    let r = signed_call(s, &url, &saml).await;
    assert_eq!(r.body, json!({"append_attribute": [{"name": "dept", "name_format": "", "value": ["sales"]}]}), "{r:?}");
    assert_eq!(z.requests_to("/management/v1/users/312/metadata/_search")[0].header("x-zitadel-orgid"), "zorg");

    // A ZITADEL whose searches fail: empty metadata and a warning on the run.
    let broken = Receiver::start().await;
    broken.set_default(Answer::json(503, json!({"code": 14, "message": "unavailable"})));
    let (url, _, org, token) = setup(s, api(&broken)).await;
    bind(s, &token, &org, "2", "5", &[("plan", plan, false)]).await;
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "plan", "value": "none"}]), "{r:?}");
    assert_metadata_warning(s, &token, "503").await;

    // One that answers 200 with something else (a proxy's page): the same failed lookup, and
    // nothing remembered, so the next call asks again and finds the metadata.
    let odd = Receiver::start().await;
    odd.reply_at("/management/v1/metadata/_search", Answer::json(200, json!({"result": "notalist"})));
    let (url, _, org, token) = setup(s, api(&odd)).await;
    bind(s, &token, &org, "2", "5", &[("plan", plan, false)]).await;
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "plan", "value": "none"}]), "{r:?}");
    assert_metadata_warning(s, &token, "not a metadata list").await;
    odd.reply_at(
        "/management/v1/metadata/_search",
        Answer::json(200, json!({"result": [{"key": "plan", "value": b64("\"gold\"")}]})),
    );
    let r = signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await;
    assert_eq!(r.body["append_claims"], json!([{"key": "plan", "value": "gold"}]), "{r:?}");
    assert_eq!(odd.requests_to("/management/v1/metadata/_search").len(), 2);
}

/// The one run of `token`'s organization warns that the org metadata lookup failed, saying `why`.
async fn assert_metadata_warning(s: &TestServer, token: &str, why: &str) {
    let runs = runs_of(s, token, 1).await;
    let warnings = runs[0]["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with("org metadata lookup failed") && w.contains(why))),
        "{runs:?}"
    );
}

/// The metadata of each grant's organization (`getOrgMetadata()`) is read from ZITADEL with
/// the org's `x-zitadel-orgid`, once per distinct organization and call, and cached like the
/// user's org metadata; a grant without an organization has none.
async fn grant_organizations_metadata(s: &TestServer) {
    let z = Receiver::start().await;
    let search = "/management/v1/metadata/_search";
    let items = |key: &str, value: &str| Answer::json(200, json!({"result": [{"key": key, "value": b64(value)}]}));
    z.reply_at_with_header(search, "x-zitadel-orgid", "zorg", items("plan", "\"gold\""));
    z.reply_at_with_header(search, "x-zitadel-orgid", "zGrantOrg", items("tier", "\"silver\""));
    z.reply_at_with_header(search, "x-zitadel-orgid", "zGrant2", items("region", "\"eu\""));
    let (url, _, org, token) = setup(s, api(&z)).await;
    let script = "function orgs(ctx, api) { api.v1.claims.setClaim('grant_orgs', ctx.v1.user.grants.grants.map(function (g) { \
                  return g.getOrgMetadata().metadata.map(function (m) { return m.key + '=' + m.value; }).join(','); })); \
                  api.v1.claims.setClaim('org', ctx.v1.org.getMetadata().metadata[0].value); }";
    bind(s, &token, &org, "2", "5", &[("orgs", script, false)]).await;
    let mut payload = token_payload("preaccesstoken", "zorg");
    payload["user_grants"] = json!([
        {"id": "g1", "project_id": "p1", "roles": ["r"], "resource_owner": "zGrantOrg", "user_resource_owner": "zorg"},
        {"id": "g2", "projectId": "p2", "resourceOwner": "zGrantOrg"},
        {"ID": "g3", "ProjectID": "p3", "ResourceOwner": "zGrant2"},
        {"id": "g4", "project_id": "p4", "resource_owner": "zorg"},
        {"id": "g5", "project_id": "p5"}
    ]);
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(
        r.body["append_claims"],
        json!([{"key": "grant_orgs", "value": ["tier=silver", "tier=silver", "region=eu", "plan=gold", ""]},
               {"key": "org", "value": "gold"}]),
        "{r:?}"
    );
    let mut asked: Vec<String> = z.requests_to(search).iter().map(|r| r.header("x-zitadel-orgid")).collect();
    asked.sort();
    assert_eq!(asked, ["zGrant2", "zGrantOrg", "zorg"], "one search per organization");
    assert!(z.requests_to(search).iter().all(|r| r.header("authorization") == format!("Bearer {PAT}")));
    // Cached: a second call reads nothing again.
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.body["append_claims"][0]["value"][2], "region=eu", "{r:?}");
    assert_eq!(z.requests_to(search).len(), 3);
    let runs = runs_of(s, &token, 2).await;
    assert!(runs.iter().all(|r| r.get("warnings").is_none()), "{runs:?}");

    // A grant organization whose search fails: empty metadata and one warning for it.
    let broken = Receiver::start().await;
    broken.reply_at_with_header(search, "x-zitadel-orgid", "zorg", items("plan", "\"gold\""));
    broken.set_default(Answer::json(503, json!({"code": 14, "message": "unavailable"})));
    let (url, _, org, token) = setup(s, api(&broken)).await;
    bind(s, &token, &org, "2", "5", &[("orgs", script, false)]).await;
    let r = signed_call(s, &url, &payload).await;
    assert_eq!(r.body["append_claims"][0]["value"], json!(["", "", "", "plan=gold", ""]), "{r:?}");
    let runs = runs_of(s, &token, 1).await;
    let warnings: Vec<String> = runs[0]["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(|w| w.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.starts_with("metadata lookup of the grant organization") && w.contains("503")));
}

/// Post Creation user grants go to AddUserGrant as deliveries: retried through an outage, 409
/// counted as done, other client errors dead at once; without zitadelApi a warning.
async fn effects_through_the_api_are_durable(s: &TestServer) {
    let z = Receiver::start().await;
    let (url, id, org, token) = setup(s, api(&z)).await;
    let grant = "function grant(ctx, api) { api.v1.appendUserGrant({projectId: 'p1', projectGrantId: 'pg1', roles: ['reader']}); }";
    bind(s, &token, &org, "3", "3", &[("grant", grant, false)]).await;
    let created = |user: &str| {
        json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
            "request": {"username": "ann", "organization": {"orgId": "zorg"}, "profile": {"givenName": "Ann", "familyName": "Lee"},
                "email": {"email": "ann@example.com"}},
            "response": {"userId": user, "details": {"sequence": "1", "resourceOwner": "zorg"}}})
    };
    // The dry run shows what a call would queue, and writes nothing.
    let r = s.post(&format!("{CONNECTIONS}/{id}/_test"), &s.admin, json!({"payload": created("u12")})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.body["pendingApiEffects"],
        json!([{"kind": "userGrant", "userId": "u12", "body": {"projectId": "p1", "projectGrantId": "pg1", "roleKeys": ["reader"]}}]),
        "{r:?}"
    );
    assert_eq!(r.body["reply"], created("u12")["response"]);
    // A payload without its message object is answered with an empty body: the dry run leaves
    // the reply out (it is never `null`), on both transports.
    let bare = json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser", "request": null});
    let r = s.post(&format!("{CONNECTIONS}/{id}/_test"), &s.admin, json!({"payload": bare})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("reply").is_none(), "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    let r = s
        .post(
            "/actionsd.connector.v1.ConnectorService/TestConnectionCall",
            &s.admin,
            json!({"id": id, "payload": bare}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.get("reply").is_none(), "{r:?}");
    // ZITADEL is down when the call comes: the reply goes out, the grant waits in the queue.
    z.pause().await;
    let first = created("u9");
    let r = signed_call(s, &url, &first).await;
    assert_eq!(r.body, first["response"], "{r:?}");
    let list = deliveries_of(s, &id, |l| l.iter().any(|d| d["state"] == "DELIVERY_STATE_FAILED")).await;
    assert_eq!(list.len(), 1, "committed before the reply: {list:?}");
    assert_eq!(list[0]["state"], "DELIVERY_STATE_FAILED", "{list:?}");
    z.resume().await;
    let grants = received(&z, "/management/v1/users/u9/grants", 1).await;
    assert_eq!(grants[0].json(), json!({"projectId": "p1", "projectGrantId": "pg1", "roleKeys": ["reader"]}));
    assert_eq!(grants[0].header("x-zitadel-orgid"), "zorg");
    assert_eq!(grants[0].header("authorization"), format!("Bearer {PAT}"));
    let list = deliveries_of(s, &id, |l| l.iter().all(|d| d["state"] == "DELIVERY_STATE_SUCCEEDED")).await;
    assert_eq!(list[0]["state"], "DELIVERY_STATE_SUCCEEDED", "{list:?}");
    // Already there (409): done. A refused request (400): dead after one attempt.
    z.reply_at("/management/v1/users/u10/grants", Answer::json(409, json!({"code": 6, "message": "exists"})));
    z.reply_at("/management/v1/users/u11/grants", Answer::json(400, json!({"code": 3, "message": "no such role"})));
    signed_call(s, &url, &created("u10")).await;
    signed_call(s, &url, &created("u11")).await;
    assert!(z.requests_to("/management/v1/users/u12/grants").is_empty(), "the dry run wrote nothing");
    let list = deliveries_of(s, &id, |l| {
        l.len() == 3
            && l.iter().all(|d| matches!(d["state"].as_str(), Some("DELIVERY_STATE_SUCCEEDED" | "DELIVERY_STATE_DEAD")))
    })
    .await;
    let states: Vec<(String, i64, i64)> = list
        .iter()
        .map(|d| {
            (
                d["state"].as_str().unwrap_or("").to_string(),
                d["lastStatus"].as_i64().unwrap_or(0),
                d["attempts"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(states.contains(&("DELIVERY_STATE_SUCCEEDED".into(), 409, 1)), "{states:?}");
    assert!(states.contains(&("DELIVERY_STATE_DEAD".into(), 400, 1)), "{states:?}");
    // A dead effect of a connection that is then removed has nothing left to call: it cannot be
    // retried (as a delivery whose target was removed), and no attempt is counted.
    let dead = list.iter().find(|d| d["state"] == "DELIVERY_STATE_DEAD").expect("a dead delivery").clone();
    let dead_id = dead["id"].as_str().expect("delivery id").to_string();
    let r = s.post(&format!("/v2/actions/deliveries/{dead_id}/retry"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "retryable while its connection exists: {r:?}");
    let list = deliveries_of(s, &id, |l| l.iter().all(|d| d["state"] != "DELIVERY_STATE_PENDING")).await;
    let dead = list.iter().find(|d| d["id"] == dead_id.as_str()).expect("the delivery").clone();
    assert_eq!((dead["state"].as_str(), dead["attempts"].as_i64()), (Some("DELIVERY_STATE_DEAD"), Some(2)), "{dead}");
    let r = s.delete(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = s.post(&format!("/v2/actions/deliveries/{dead_id}/retry"), &s.admin, json!({})).await;
    assert_error(&r, 400, 9, "Errors.Delivery.NotRetryable", "the retry of a removed connection's delivery");
    assert!(r.body["message"].as_str().unwrap_or("").contains("connection was removed"), "{r:?}");
    let r = s.post("/v2/actions/deliveries/search", &s.admin, json!({})).await;
    let after = r.body["deliveries"].as_array().and_then(|l| l.iter().find(|d| d["id"] == dead_id.as_str()).cloned());
    assert_eq!(after.as_ref(), Some(&dead), "unchanged: {r:?}");

    // Without zitadelApi: nothing queued, the run says why, the reply is the same.
    let (url, plain, org, token) = setup(s, json!({})).await;
    bind(s, &token, &org, "3", "3", &[("grant", grant, false)]).await;
    let r = signed_call(s, &url, &first).await;
    assert_eq!(r.body, first["response"], "{r:?}");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs[0]["warnings"], json!(["userGrants not applied: the connection has no zitadelApi"]), "{runs:?}");
    assert!(deliveries_of(s, &plain, |_| true).await.is_empty());
}

/// Ids ZITADEL would never send (NUL, longer than an index entry) are odd input, not a database
/// outage: the same on both backends — the user's effects queued, the runs recorded, an org id
/// that no link can have is an org without a link.
async fn odd_ids_in_payloads_are_not_database_errors(s: &TestServer) {
    let z = Receiver::start().await;
    let (url, id, org, token) = setup(s, api(&z)).await;
    let grant = "function grant(ctx, api) { api.v1.appendUserGrant({projectId: 'p1', roles: ['reader']}); }";
    bind(s, &token, &org, "3", "3", &[("grant", grant, false)]).await;
    let created = |user: &str, zorg: &str| {
        json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
            "request": {"username": "ann", "organization": {"orgId": zorg}, "profile": {"givenName": "Ann", "familyName": "Lee"}},
            "response": {"userId": user, "details": {"sequence": "1", "resourceOwner": zorg}}})
    };
    let long = "9".repeat(3000);
    let calls = [
        created("u\u{0}x", "zorg"),
        created(&long, "zorg"),
        created("u20", "z\u{0}"),
        created("u21", &"z".repeat(300)),
    ];
    for call in &calls {
        let r = signed_call(s, &url, call).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body, call["response"], "{r:?}");
    }
    // The first two ran in the linked org; the org ids no link can have passed through.
    let list = deliveries_of(s, &id, |l| l.len() >= 2).await;
    assert_eq!(list.len(), 2, "one queued grant per run: {list:?}");
    assert_eq!(runs_of(s, &token, 2).await.len(), 2);
    let grants = received(&z, &format!("/management/v1/users/{long}/grants"), 1).await;
    assert_eq!(grants[0].json()["projectId"], "p1");
}

/// JWT bodies verified against ZITADEL's JWKS (refetched once for an unknown key id), JWE bodies
/// decrypted with the connection's key pair; every refusal a 4xx with nothing run.
async fn jwt_and_jwe_payloads(s: &TestServer) {
    use actionsd::v2::jose::{encrypt_jwe, parse_public_key_pem, SigningKey};
    let (a, b) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
    let z = Receiver::start().await;
    z.reply_at("/oauth/v2/keys", Answer::json(200, json!({"keys": [a.jwk()]})));
    let types = json!({"zitadelApi": {"baseUrl": z.url("")}, "payloadTypes": ["PAYLOAD_TYPE_JWT", "PAYLOAD_TYPE_JWE"]});
    let (url, id, org, token) = setup(s, types).await;
    let mark = "function mark(ctx, api) { api.v1.claims.setClaim('ran', ctx.v1.claims.sub); }";
    bind(s, &token, &org, "2", "5", &[("mark", mark, false)]).await;
    let payload = serde_json::to_vec(&token_payload("preaccesstoken", "zorg")).unwrap();
    let url = url.as_str();
    let send = |body: Vec<u8>| async move {
        let sig = signature(KEY, now(), &body);
        post_call(s, url, &body, Some(&sig)).await
    };
    // Refused first (nothing may run): a JSON body, B's key not published, a tampered payload,
    // a JWE to a stranger's key.
    let r = send(payload.clone()).await;
    assert_error(&r, 400, 3, "CONN-typ3s", "JSON to a JWT/JWE-only connection");
    let by_b = b.sign_jwt(&payload).unwrap();
    let fetched = z.requests_to("/oauth/v2/keys").len();
    let r = send(by_b.clone().into_bytes()).await;
    assert_error(&r, 401, 16, "CONN-j0se1", "unknown kid");
    assert_eq!(z.requests_to("/oauth/v2/keys").len(), fetched + 2, "fetched, then fetched again for the unknown kid");
    let by_a = a.sign_jwt(&payload).unwrap();
    let mut parts: Vec<String> = by_a.split('.').map(str::to_string).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"function":"function/preaccesstoken"}"#);
    let r = send(parts.join(".").into_bytes()).await;
    assert_error(&r, 401, 16, "CONN-j0se1", "tampered JWS");
    let stranger = SigningKey::generate().unwrap();
    let to_stranger = parse_public_key_pem(&stranger.public_key_pem().unwrap()).unwrap();
    let jwe = encrypt_jwe(&to_stranger.key, "k", Some("JWT"), by_a.as_bytes()).unwrap();
    let r = send(jwe.into_bytes()).await;
    assert_error(&r, 401, 16, "CONN-j0se1", "JWE to another key");
    // Accepted: a JWT (raw and as a JSON string), a JWE to the connection's own public key.
    let r = send(by_a.clone().into_bytes()).await;
    assert_eq!(r.body, json!({"append_claims": [{"key": "ran", "value": "312"}]}), "{r:?}");
    let runs = runs_of(s, &token, 1).await;
    assert_eq!(runs.len(), 1, "the refused calls ran nothing: {runs:?}");
    let r = send(serde_json::to_vec(&Value::String(by_a.clone())).unwrap()).await;
    assert_eq!(r.body["append_claims"][0]["value"], "312", "{r:?}");
    let c = s.get(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
    let pem = c.body["connection"]["jwe"]["publicKeyPem"].as_str().expect("a JWE public key").to_string();
    let own = parse_public_key_pem(&pem).unwrap();
    let jwe = encrypt_jwe(&own.key, "zitadel-key-id", Some("JWT"), by_a.as_bytes()).unwrap();
    let r = send(jwe.into_bytes()).await;
    assert_eq!(r.body["append_claims"][0]["value"], "312", "{r:?}");
    // ZITADEL rotated its keys: B is published now and found by the refetch.
    z.reply_at("/oauth/v2/keys", Answer::json(200, json!({"keys": [a.jwk(), b.jwk()]})));
    let r = send(by_b.into_bytes()).await;
    assert_eq!(r.body["append_claims"][0]["value"], "312", "{r:?}");
}

/// A script that never ends holds one worker until the connection's callTimeout; calls for
/// another organization go on meanwhile.
async fn hostile_scripts_do_not_stall_other_calls(s: &TestServer) {
    let (hostile_url, _, hostile_org, hostile_token) = setup(s, json!({"callTimeout": "5s"})).await;
    bind(s, &hostile_token, &hostile_org, "2", "5", &[("spin", "function spin(ctx, api) { while (true) {} }", false)])
        .await;
    let (url, _, org, token) = setup(s, json!({})).await;
    bind(s, &token, &org, "2", "5", &[("ok", "function ok(ctx, api) { api.v1.claims.setClaim('ok', 1); }", false)])
        .await;
    let hostile_done = std::sync::atomic::AtomicBool::new(false);
    let hostile = async {
        let r = signed_call(s, &hostile_url, &token_payload("preaccesstoken", "zorg")).await;
        hostile_done.store(true, std::sync::atomic::Ordering::SeqCst);
        r
    };
    let others = async {
        // Once the spinning script holds a worker…
        let deadline = Instant::now() + Duration::from_secs(5);
        let busy = || async {
            let text = s.client.get(format!("{}/metrics", s.base)).send().await.unwrap().text().await.unwrap();
            text.contains("actionsd_sandbox_workers{state=\"busy\"} 1")
        };
        while !busy().await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // …other organizations' calls are answered while it spins.
        let mut replies = Vec::new();
        for _ in 0..5 {
            replies.push(signed_call(s, &url, &token_payload("preaccesstoken", "zorg")).await);
        }
        (replies, hostile_done.load(std::sync::atomic::Ordering::SeqCst))
    };
    let (hostile_reply, (replies, hostile_finished_first)) = tokio::join!(hostile, others);
    assert!(!hostile_finished_first, "the other calls waited for the spinning script");
    for r in replies {
        assert_eq!(r.body, json!({"append_claims": [{"key": "ok", "value": 1}]}), "{r:?}");
    }
    assert_eq!(hostile_reply.body["forwardedStatusCode"], 400, "{hostile_reply:?}");
}

backend_tests_with!(
    fast;
    sessions_and_intents_find_their_user_through_the_api,
    session_steps_run_once_with_their_method,
    metadata_zitadel_does_not_send,
    grant_organizations_metadata,
    effects_through_the_api_are_durable,
    odd_ids_in_payloads_are_not_database_errors,
    jwt_and_jwe_payloads,
    hostile_scripts_do_not_stall_other_calls
);
