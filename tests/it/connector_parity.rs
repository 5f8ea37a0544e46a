//! Typical v1 scripts of each flow give the same effects through the connector as through
//! `_execute` (README, "Use actionsd with ZITADEL"): one table of cases, each run both ways in the
//! same organization — the connector with ZITADEL's payload, `_execute` with the context of
//! execute.md that payload stands for. The effects of `_execute` are turned into what ZITADEL
//! applies (the reply, or the requests to its API) and compared with what the connector did; the
//! scripts' logs (what they saw) must be the same too.

use crate::common::receiver::{Answer, Receiver, Recorded};
use crate::common::TestServer;
use crate::connector_call::{bind, signed_call, CONNECTIONS};
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn fast(c: &mut actionsd::config::Config) {
    crate::common::allow_loopback(c);
    c.delivery_retry_schedule = actionsd::config::Schedule(vec![Duration::from_millis(200)]);
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Where a case's effects show up on the connector's side.
#[derive(Clone, Copy)]
enum Seen {
    /// The function reply (claims, log claims, metadata, SAML attributes).
    FunctionReply,
    /// The changed AddHumanUser request.
    Request,
    /// `addHumanUser` of the intent's response.
    Intent,
    /// Requests to ZITADEL's API (user grants, metadata).
    Api,
}

struct Case {
    name: &'static str,
    flow: &'static str,
    trigger: &'static str,
    script: &'static str,
    payload: Value,
    context: Value,
    seen: Seen,
}

fn user_snake() -> Value {
    json!({"id": "312", "creation_date": "2026-01-01T00:00:00Z", "resource_owner": "zorg", "state": 1,
        "username": "ann", "preferred_login_name": "ann@example.com",
        "human": {"first_name": "Ann", "last_name": "Lee", "display_name": "Ann Lee", "preferred_language": "en",
            "gender": 1, "email": "ann@example.com", "is_email_verified": true}})
}

fn user_camel() -> Value {
    json!({"id": "312", "creationDate": "2026-01-01T00:00:00Z", "resourceOwner": "zorg", "state": 1,
        "username": "ann", "preferredLoginName": "ann@example.com",
        "human": {"firstName": "Ann", "lastName": "Lee", "displayName": "Ann Lee", "preferredLanguage": "en",
            "gender": 1, "email": "ann@example.com", "isEmailVerified": true}})
}

fn id_token(claims: Value) -> String {
    let e = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!("{}.{}.{}", e(br#"{"alg":"RS256"}"#), e(claims.to_string().as_bytes()), e(b"sig"))
}

fn intent(raw: Value, claims: Value) -> Value {
    json!({"fullMethod": "/zitadel.user.v2.UserService/RetrieveIdentityProviderIntent",
        "request": {"idpIntentId": "i1", "idpIntentToken": "t"},
        "response": {"details": {"sequence": "2"},
            "idpInformation": {"idpId": "idp1", "userId": "ext-7", "userName": "ann@idp", "rawInformation": raw,
                "oauth": {"accessToken": "at-1", "idToken": id_token(claims)}},
            "addHumanUser": {"username": "ann@idp", "organization": {"orgId": "zorg"},
                "profile": {"givenName": "", "familyName": ""}, "email": {"email": "ann@idp.example"},
                "idpLinks": [{"idpId": "idp1", "userId": "ext-7", "userName": "ann@idp"}]}}})
}

fn intent_context(raw: Value, claims: Value) -> Value {
    json!({"externalUser": {"externalId": "ext-7", "externalIdpId": "idp1", "preferredUsername": "ann@idp",
            "human": {"firstName": "", "lastName": "", "nickName": "", "displayName": "", "preferredLanguage": "",
                "email": "ann@idp.example", "isEmailVerified": false, "phone": "", "isPhoneVerified": false}},
        "providerInfo": raw, "accessToken": "at-1", "idToken": id_token(claims.clone()), "idTokenClaims": claims,
        "authError": "none"})
}

fn cases() -> Vec<Case> {
    let token_payload = json!({"function": "function/preaccesstoken",
        "userinfo": {"sub": "312", "email": "ann@example.com"}, "user": user_snake(),
        "user_metadata": [{"key": "tier", "value": b64("\"gold\"")}],
        "org": {"id": "zorg", "name": "Connected", "primary_domain": "example.com"},
        "user_grants": [{"id": "g1", "project_id": "p1", "grant_id": "pg1", "roles": ["admin", "dev"], "project_name": "App"}],
        "application": {"client_id": "client-1"}});
    let token_context = json!({"claims": {"sub": "312", "email": "ann@example.com"}, "user": user_camel(),
        "userMetadata": [{"key": "tier", "value": b64("\"gold\"")}],
        "userGrants": [{"id": "g1", "projectId": "p1", "projectGrantId": "pg1", "roles": ["admin", "dev"], "projectName": "App"}],
        "org": {"id": "zorg", "name": "Connected", "primaryDomain": "example.com"},
        "application": {"clientId": "client-1"}});
    let github = json!({"login": "annlee", "name": "Ann Lee", "email": "ann@github.example", "id": 4242});
    let okta_claims = json!({"sub": "00u1", "given_name": "Ann", "family_name": "Lee", "email": "ann@okta.example",
        "groups": ["Everyone", "Admins"]});
    let registration = json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
        "request": {"username": "ann", "organization": {"orgId": "zorg"},
            "profile": {"givenName": "Ann", "familyName": "Lee"},
            "email": {"email": "ann@example.com", "sendCode": {}},
            "metadata": [{"key": "origin", "value": b64("\"signup\"")}]}});
    let created = json!({"fullMethod": "/zitadel.user.v2.UserService/AddHumanUser",
        "request": registration["request"].clone(),
        "response": {"userId": "312", "details": {"sequence": "5", "resourceOwner": "zorg"}}});
    let new_user = json!({"username": "ann", "human": {"firstName": "Ann", "lastName": "Lee", "nickName": "",
        "displayName": "", "preferredLanguage": "", "gender": 0, "email": "ann@example.com", "isEmailVerified": false,
        "phone": "", "isPhoneVerified": false}});
    let mut created_user = new_user.clone();
    created_user["id"] = json!("312");
    created_user["resourceOwner"] = json!("zorg");
    vec![
        Case {
            name: "claims_from_grants",
            flow: "2",
            trigger: "5",
            script: "function claimsFromGrants(ctx, api) {
                const roles = [];
                ctx.v1.user.grants.grants.forEach(g => g.roles.forEach(r => roles.push(g.projectId + ':' + r)));
                api.v1.claims.setClaim('roles', roles);
                api.v1.claims.setClaim('client', ctx.v1.application.getClientId());
                api.v1.claims.appendLogIntoClaims('grants ' + ctx.v1.user.grants.count);
                api.v1.user.setMetadata('seen_tier', ctx.v1.user.getMetadata().metadata[0].value);
                console.log(JSON.stringify(ctx.v1.getUser()), JSON.stringify(ctx.v1.claims));
            }",
            payload: token_payload.clone(),
            context: token_context.clone(),
            seen: Seen::FunctionReply,
        },
        Case {
            name: "github_attribute_mapping",
            flow: "1",
            trigger: "1",
            script: "function github(ctx, api) {
                const info = ctx.v1.providerInfo;
                const [first, last] = info.name.split(' ');
                api.setFirstName(first); api.setLastName(last); api.setNickName(info.login);
                api.setEmail(info.email); api.setEmailVerified(true);
                api.setPreferredUsername(info.login);
                api.v1.user.appendMetadata('github_id', info.id);
                console.log(JSON.stringify(ctx.v1.externalUser), ctx.accessToken);
            }",
            payload: intent(github.clone(), json!({"sub": "4242"})),
            context: intent_context(github, json!({"sub": "4242"})),
            seen: Seen::Intent,
        },
        Case {
            name: "okta_claims_mapping",
            flow: "1",
            trigger: "1",
            script: "function okta(ctx, api) {
                api.setFirstName(ctx.getClaim('given_name')); api.setLastName(ctx.getClaim('family_name'));
                api.setEmail(ctx.getClaim('email')); api.setEmailVerified(true);
                api.metadata.push({key: 'groups', value: ctx.getClaim('groups')});
                console.log(ctx.claimsJSON());
            }",
            payload: intent(json!({}), okta_claims.clone()),
            context: intent_context(json!({}), okta_claims),
            seen: Seen::Intent,
        },
        Case {
            name: "email_verification_at_registration",
            flow: "3",
            trigger: "2",
            script: "function verify(ctx, api) {
                const h = ctx.v1.user.human;
                if (h.email.endsWith('@example.com')) { api.setEmailVerified(true); }
                api.setDisplayName(h.firstName + ' ' + h.lastName);
                api.v1.user.appendMetadata('source', 'registration');
                console.log(JSON.stringify(ctx.v1.user), JSON.stringify(api.metadata));
            }",
            payload: registration,
            context: json!({"user": new_user, "metadata": [{"key": "origin", "value": b64("\"signup\"")}]}),
            seen: Seen::Request,
        },
        Case {
            name: "user_grant_after_registration",
            flow: "3",
            trigger: "3",
            script: "function grant(ctx, api) {
                const user = ctx.v1.getUser();
                api.userGrants.push({projectID: 'p1', roles: ['user']});
                api.v1.appendUserGrant({projectId: 'p2', projectGrantId: 'pg2', roles: ['viewer', user.id]});
                console.log(JSON.stringify(user));
            }",
            payload: created,
            context: json!({"user": created_user}),
            seen: Seen::Api,
        },
        Case {
            name: "saml_attributes",
            flow: "4",
            trigger: "6",
            script: "function saml(ctx, api) {
                const u = ctx.v1.getUser();
                api.v1.attributes.setCustomAttribute('Email', 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic', u.human.email);
                api.v1.attributes.setCustomAttribute('Roles', '', ...ctx.v1.user.grants.grants.map(g => g.roles.join(',')));
                console.log(JSON.stringify(u));
            }",
            payload: json!({"function": "function/presamlresponse", "user": user_snake(),
                "user_grants": [{"project_id": "p1", "grant_id": "pg1", "roles": ["admin", "dev"]}]}),
            context: json!({"user": user_camel(), "userGrants": [{"projectId": "p1", "projectGrantId": "pg1", "roles": ["admin", "dev"]}]}),
            seen: Seen::FunctionReply,
        },
        Case {
            name: "logging_post_authentication",
            flow: "3",
            trigger: "1",
            script: "function audit(ctx, api) {
                console.log('login', ctx.v1.authMethod, ctx.v1.authError);
                api.v1.user.appendMetadata('last_login_method', ctx.v1.authMethod);
            }",
            payload: json!({"aggregateID": "312", "aggregateType": "user", "resourceOwner": "zorg", "instanceID": "inst",
                "version": "v2", "sequence": 9, "event_type": "user.human.password.check.succeeded",
                "created_at": "2026-12-02T10:00:00Z", "userID": "312", "event_payload": {}}),
            context: json!({"authMethod": "password", "authError": "none"}),
            seen: Seen::Api,
        },
    ]
}

/// What ZITADEL would apply for `_execute`'s effects, in the form the connector delivers it.
fn expected(case: &Case, effects: &Value) -> Value {
    let metadata = effects["metadata"].as_array().cloned().unwrap_or_default();
    match case.seen {
        Seen::FunctionReply => {
            let mut out = serde_json::Map::new();
            if let Some(claims) = effects["claims"].as_object() {
                let (logs, plain): (Vec<_>, Vec<_>) =
                    claims.iter().partition(|(k, _)| k.starts_with("urn:zitadel:iam:action:"));
                if !plain.is_empty() {
                    out.insert(
                        "append_claims".into(),
                        plain.iter().map(|(k, v)| json!({"key": k, "value": v})).collect(),
                    );
                }
                let mut lines = Vec::new();
                for (key, entries) in logs {
                    let action = key.trim_start_matches("urn:zitadel:iam:action:").trim_end_matches(":log");
                    for e in entries.as_array().into_iter().flatten() {
                        lines.push(json!(format!("{action}: {}", e.as_str().unwrap_or(""))));
                    }
                }
                if !lines.is_empty() {
                    out.insert("append_log_claims".into(), Value::Array(lines));
                }
            }
            if let Some(attrs) = effects["attributes"].as_array() {
                let list = attrs
                    .iter()
                    .map(|a| json!({"name": a["name"], "name_format": a.get("nameFormat").cloned().unwrap_or(json!("")), "value": a["values"]}))
                    .collect();
                out.insert("append_attribute".into(), Value::Array(list));
            }
            if !metadata.is_empty() {
                out.insert("set_user_metadata".into(), Value::Array(metadata));
            }
            Value::Object(out)
        }
        Seen::Request | Seen::Intent => {
            let user = if matches!(case.seen, Seen::Request) { &effects["user"] } else { &effects["externalUser"] };
            let h = &user["human"];
            json!({
                "givenName": h["firstName"], "familyName": h["lastName"], "displayName": h.get("displayName").cloned().unwrap_or(Value::Null),
                "email": h["email"], "isVerified": h["isEmailVerified"],
                "username": if matches!(case.seen, Seen::Request) { user["username"].clone() } else { user["preferredUsername"].clone() },
                "metadata": metadata,
            })
        }
        Seen::Api => {
            let mut calls: Vec<Value> = effects["userGrants"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    let mut body = json!({"projectId": g["projectId"], "roleKeys": g["roles"]});
                    if let Some(pg) = g.get("projectGrantId") {
                        body["projectGrantId"] = pg.clone();
                    }
                    json!({"path": "/management/v1/users/312/grants", "body": body})
                })
                .collect();
            calls.extend(metadata.iter().map(|m| {
                json!({"path": format!("/management/v1/users/312/metadata/{}", m["key"].as_str().unwrap()), "body": {"value": m["value"]}})
            }));
            Value::Array(calls)
        }
    }
}

/// What the connector did, in the form of [`expected`].
fn observed(case: &Case, reply: &Value, api_calls: &[Recorded]) -> Value {
    match case.seen {
        Seen::FunctionReply => reply.clone(),
        Seen::Request | Seen::Intent => {
            let m = if matches!(case.seen, Seen::Request) { reply } else { &reply["addHumanUser"] };
            // The request's own metadata is kept; the effects are the entries added after it.
            let given = case.payload.pointer("/request/metadata").and_then(Value::as_array).map_or(0, Vec::len);
            let added: Vec<Value> = m["metadata"].as_array().into_iter().flatten().skip(given).cloned().collect();
            json!({
                "givenName": m["profile"]["givenName"], "familyName": m["profile"]["familyName"],
                "displayName": m["profile"].get("displayName").cloned().unwrap_or(Value::Null),
                "email": m["email"]["email"], "isVerified": m["email"].get("isVerified").cloned().unwrap_or(json!(false)),
                "username": m["username"], "metadata": added,
            })
        }
        Seen::Api => {
            let mut calls: Vec<&Recorded> = api_calls.iter().collect();
            calls.sort_by_key(|r| (!r.path.ends_with("/grants"), r.at));
            Value::Array(calls.iter().map(|r| json!({"path": r.path, "body": r.json()})).collect())
        }
    }
}

/// Empty strings as absent (the connector leaves a field out where the v1 shape has `""`).
fn nz(v: Value) -> Value {
    match v {
        Value::String(s) if s.is_empty() => Value::Null,
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, nz(v))).collect()),
        other => other,
    }
}

fn log_messages(run: &Value) -> Vec<Value> {
    run["logs"].as_array().into_iter().flatten().map(|l| l["message"].clone()).collect()
}

async fn typical_scripts_behave_the_same_both_ways(s: &TestServer) {
    for case in cases() {
        let z = Receiver::start().await;
        z.set_default(Answer::json(200, json!({"details": {"sequence": "1"}})));
        let api = json!({"zitadelApi": {"baseUrl": z.url(""), "token": "pat"}});
        let (url, id, org, token) = crate::connector_call::setup(s, api).await;
        // The action is named like its function (v1 calls the function of the action's name).
        let function = case.script.trim_start().trim_start_matches("function ").split('(').next().unwrap().trim();
        bind(s, &token, &org, case.flow, case.trigger, &[(function, case.script, false)]).await;
        // _execute with the context the payload stands for.
        let r = s.execute_trigger(&token, case.flow, case.trigger, case.context.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.body["outcome"].as_str()),
            (200, Some("OUTCOME_SUCCEEDED")),
            "{}: {r:?}",
            case.name
        );
        let want = expected(&case, &r.body["effects"]);
        // The connector with ZITADEL's payload.
        let reply = signed_call(s, &url, &case.payload).await;
        assert_eq!(reply.status, 200, "{}: {reply:?}", case.name);
        let api_calls = if matches!(case.seen, Seen::Api) {
            let n = want.as_array().map_or(0, Vec::len);
            z.wait_until(Duration::from_secs(10), case.name, |rs| rs.len() >= n).await
        } else {
            Vec::new()
        };
        assert_eq!(nz(observed(&case, &reply.body, &api_calls)), nz(want), "{}: effects differ", case.name);
        // The scripts saw the same: their logs are the same both ways.
        let deadline = Instant::now() + Duration::from_secs(5);
        let runs = loop {
            let r = s.list_runs(&token, json!({})).await;
            let runs = r.body["result"].as_array().cloned().unwrap_or_default();
            if runs.len() >= 2 || Instant::now() >= deadline {
                break runs;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let connector_run = runs.iter().find(|r| r["connectionId"] == id.as_str()).expect("the connector's run");
        let execute_run = runs.iter().find(|r| r.get("connectionId").is_none()).expect("the _execute run");
        let logs = |run: &Value| {
            let id = run["id"].as_str().unwrap().to_string();
            let token = token.clone();
            async move {
                let r = s.get(&format!("/management/v1/runs/{id}"), &token).await;
                assert_eq!(r.status, 200, "{r:?}");
                log_messages(&r.body["run"])
            }
        };
        let (connector_logs, execute_logs) = (logs(connector_run).await, logs(execute_run).await);
        assert_eq!(connector_logs, execute_logs, "{}: the scripts saw different inputs", case.name);
        assert!(!execute_logs.is_empty(), "{}", case.name);
        let r = s.delete(&format!("{CONNECTIONS}/{id}"), &s.admin).await;
        assert_eq!(r.status, 200, "{r:?}");
    }
}

backend_tests_with!(fast; typical_scripts_behave_the_same_both_ways);
