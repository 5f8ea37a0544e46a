//! Bad input never produces a 5xx or a body of another shape; concurrent writes keep
//! names unique and flows consistent (README, "Decisions").

use crate::common;

use common::{Reply, TestServer};
use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;

const ACTIONS: &str = "/management/v1/actions";
const MGMT: &str = "zitadel.management.v1.ManagementService";
const ONE_MIB: usize = 1 << 20;

/// Which gRPC codes an HTTP status may carry.
fn codes_for(status: u16) -> &'static [i64] {
    match status {
        400 => &[3, 9],
        401 => &[16],
        403 => &[7],
        404 => &[5],
        405 => &[12],
        409 => &[6],
        413 | 429 => &[8],
        _ => &[],
    }
}

fn connect_codes_for(status: u16) -> &'static [&'static str] {
    match status {
        400 => &["invalid_argument", "failed_precondition"],
        401 => &["unauthenticated"],
        403 => &["permission_denied"],
        404 => &["not_found"],
        409 => &["already_exists"],
        413 | 429 => &["resource_exhausted"],
        _ => &[],
    }
}

fn short(text: String) -> String {
    if text.chars().count() > 600 {
        format!("{}…", text.chars().take(600).collect::<String>())
    } else {
        text
    }
}

/// Collects every violation of a sweep, so one run reports all of them.
#[derive(Default)]
struct Sweep(Vec<String>);

impl Sweep {
    fn check(&mut self, result: Result<(), String>) {
        if let Err(e) = result {
            self.0.push(short(e));
        }
    }

    #[track_caller]
    fn finish(self) {
        assert!(self.0.is_empty(), "{} violation(s):\n{}", self.0.len(), self.0.join("\n"));
    }
}

fn ensure(ok: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(msg())
    }
}

fn check_request_id(r: &Reply, what: &str) -> Result<(), String> {
    let id = r.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    ensure(!id.is_empty(), || format!("{what}: no x-request-id header ({r:?})"))
}

/// A 4xx in gateway form: JSON object, numeric `code` matching the status, `message`.
fn check_gateway_4xx(r: &Reply, what: &str) -> Result<(), String> {
    ensure(r.status.is_client_error(), || format!("{what}: expected a 4xx, got {r:?}"))?;
    let code = r.body.get("code").and_then(Value::as_i64);
    let message = r.body.get("message").and_then(Value::as_str);
    ensure(code.is_some() && message.is_some_and(|m| !m.is_empty()), || {
        format!("{what}: body not in the gateway shape: {r:?}")
    })?;
    ensure(codes_for(r.status.as_u16()).contains(&code.unwrap_or(-1)), || {
        format!("{what}: code does not match the status: {r:?}")
    })?;
    check_request_id(r, what)
}

/// A 4xx in Connect form.
fn check_connect_4xx(r: &Reply, what: &str) -> Result<(), String> {
    ensure(r.status.is_client_error(), || format!("{what}: expected a 4xx, got {r:?}"))?;
    let code = r.body.get("code").and_then(Value::as_str).unwrap_or("");
    ensure(connect_codes_for(r.status.as_u16()).contains(&code), || {
        format!("{what}: Connect code does not match the status: {r:?}")
    })?;
    ensure(r.body.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()), || {
        format!("{what}: no message: {r:?}")
    })?;
    check_request_id(r, what)
}

/// Exactly this status and numeric code, in the gateway shape.
fn check_status_code(r: &Reply, status: u16, code: i64, what: &str) -> Result<(), String> {
    ensure(r.status == status && r.code() == code, || format!("{what}: expected {status} code {code}, got {r:?}"))?;
    check_gateway_4xx(r, what)
}

/// 400 code 3 whose message names the field (naming the field).
fn check_invalid_naming(r: &Reply, field: &str, what: &str) -> Result<(), String> {
    check_status_code(r, 400, 3, what)?;
    let norm = |s: &str| s.to_lowercase().replace('_', "");
    let message = norm(r.body["message"].as_str().unwrap_or(""));
    ensure(message.contains(&norm(field)), || format!("{what}: message does not name the field {field:?}: {r:?}"))
}

#[track_caller]
fn assert_request_id(r: &Reply, what: &str) {
    if let Err(e) = check_request_id(r, what) {
        panic!("{e}");
    }
}

#[track_caller]
fn assert_gateway_4xx(r: &Reply, what: &str) {
    if let Err(e) = check_gateway_4xx(r, what) {
        panic!("{e}");
    }
}

#[track_caller]
fn assert_connect_4xx(r: &Reply, what: &str) {
    if let Err(e) = check_connect_4xx(r, what) {
        panic!("{e}");
    }
}

fn result_ids(r: &Reply) -> Vec<String> {
    r.body["result"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The REST endpoints that take a whole JSON body.
fn body_endpoints(action: &str) -> Vec<(&'static str, Method, String)> {
    vec![
        ("CreateAction", Method::POST, ACTIONS.to_string()),
        ("UpdateAction", Method::PUT, format!("{ACTIONS}/{action}")),
        ("ListActions", Method::POST, format!("{ACTIONS}/_search")),
        ("SetTriggerActions", Method::POST, "/management/v1/flows/1/trigger/1".to_string()),
        ("AddOrg", Method::POST, "/management/v1/orgs".to_string()),
        ("ListOrgs", Method::POST, "/admin/v1/orgs/_search".to_string()),
        ("AddToken", Method::POST, "/admin/v1/tokens".to_string()),
        ("ListTokens", Method::POST, "/admin/v1/tokens/_search".to_string()),
    ]
}

/// Everything the sweeps may have touched is as before.
async fn assert_fixture_intact(s: &TestServer, action: &str) {
    let r = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_ids(&r), vec![action.to_string()], "bad input created or removed actions: {r:?}");
    let r = s.get(&format!("{ACTIONS}/{action}"), &s.admin).await;
    assert_eq!(r.body["action"]["name"], "fixture", "{r:?}");
    assert_eq!(r.body["action"]["details"]["sequence"], "1", "bad input changed the action: {r:?}");
    let r = s.get("/management/v1/flows/1", &s.admin).await;
    assert!(r.body["flow"].get("triggerActions").is_none(), "bad input bound actions: {r:?}");
}

// ---------------------------------------------------------------------------------------------

async fn malformed_json_is_400_everywhere(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let bodies: [(&str, &[u8]); 14] = [
        ("unterminated object", b"{"),
        ("unterminated value", b"{\"name\":"),
        ("bare word", b"nope"),
        ("array", b"[]"),
        ("string", b"\"str\""),
        ("number", b"42"),
        ("trailing garbage", b"{} x"),
        ("trailing comma", b"{\"name\":\"a\",}"),
        ("single quotes", b"{'name':'a'}"),
        ("invalid UTF-8 bytes", b"\xff\xfe\xfd"),
        ("invalid UTF-8 in a string", b"{\"name\":\"\xff\xfe\",\"script\":\"function a(){}\"}"),
        ("truncated UTF-8 sequence", b"{\"name\":\"a\xc3\",\"script\":\"function a(){}\"}"),
        ("lone surrogate escape", b"{\"name\":\"\\ud800x\",\"script\":\"function a(){}\"}"),
        ("control character in a string", b"{\"name\":\"a\x01b\nc\",\"script\":\"x\"}"),
    ];
    let mut sweep = Sweep::default();
    for (rpc, method, path) in body_endpoints(&action) {
        for (label, body) in bodies {
            let r = s.call_raw(method.clone(), &path, Some(&s.admin), body.to_vec()).await;
            sweep.check(check_status_code(&r, 400, 3, &format!("{rpc} ({method} {path}) with {label}")));
        }
    }
    // The Connect transport: 400 `invalid_argument`.
    for method in ["CreateAction", "ListActions", "GetAction", "SetTriggerActions"] {
        for (label, body) in bodies {
            let r = s.call_raw(Method::POST, &format!("/{MGMT}/{method}"), Some(&s.admin), body.to_vec()).await;
            let what = format!("Connect {method} with {label}");
            sweep.check(
                ensure(r.status == 400 && r.body["code"] == "invalid_argument", || {
                    format!("{what}: expected 400 invalid_argument, got {r:?}")
                })
                .and_then(|_| check_connect_4xx(&r, &what)),
            );
        }
    }
    sweep.finish();
    assert_fixture_intact(s, &action).await;
}

async fn wrong_types_are_400_naming_the_field(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let update = format!("{ACTIONS}/{action}");
    let search = format!("{ACTIONS}/_search");
    let trigger = "/management/v1/flows/1/trigger/1".to_string();
    let cases: Vec<(Method, String, Value, &str)> = vec![
        (Method::POST, ACTIONS.into(), json!({"name": 5, "script": "function a(){}"}), "name"),
        (Method::POST, ACTIONS.into(), json!({"name": {"x": 1}, "script": "function a(){}"}), "name"),
        (Method::POST, ACTIONS.into(), json!({"name": "a", "script": ["function a(){}"]}), "script"),
        (Method::POST, ACTIONS.into(), json!({"name": "a", "script": "function a(){}", "timeout": 5}), "timeout"),
        (Method::POST, ACTIONS.into(), json!({"name": "a", "script": "function a(){}", "timeout": "1m"}), "timeout"),
        (Method::POST, ACTIONS.into(), json!({"name": "a", "script": "function a(){}", "timeout": "abc"}), "timeout"),
        (
            Method::POST,
            ACTIONS.into(),
            json!({"name": "a", "script": "function a(){}", "timeout": "1e400s"}),
            "timeout",
        ),
        (
            Method::POST,
            ACTIONS.into(),
            json!({"name": "a", "script": "function a(){}", "allowedToFail": "yes"}),
            "allowedToFail",
        ),
        (
            Method::POST,
            ACTIONS.into(),
            json!({"name": "a", "script": "function a(){}", "allowed_to_fail": 1}),
            "allowedToFail",
        ),
        (Method::PUT, update.clone(), json!({"name": 5, "script": "function a(){}"}), "name"),
        (Method::PUT, update.clone(), json!({"name": "a", "script": "function a(){}", "timeout": "1m"}), "timeout"),
        (
            Method::PUT,
            update.clone(),
            json!({"name": "a", "script": "function a(){}", "allowedToFail": []}),
            "allowedToFail",
        ),
        (Method::POST, search.clone(), json!({"query": "x"}), "query"),
        (Method::POST, search.clone(), json!({"query": []}), "query"),
        (Method::POST, search.clone(), json!({"query": ["5", 1]}), "query"),
        (Method::POST, search.clone(), json!({"queries": [{"actionNameQuery": ["a", 4]}]}), "actionNameQuery"),
        (Method::POST, search.clone(), json!({"queries": [["x"]]}), "queries"),
        (Method::POST, search.clone(), json!({"query": {"offset": "abc"}}), "offset"),
        (Method::POST, search.clone(), json!({"query": {"offset": -1}}), "offset"),
        (Method::POST, search.clone(), json!({"query": {"offset": 1e30}}), "offset"),
        (Method::POST, search.clone(), json!({"query": {"offset": "18446744073709551616"}}), "offset"),
        (Method::POST, search.clone(), json!({"query": {"limit": 99999999999u64}}), "limit"),
        (Method::POST, search.clone(), json!({"query": {"limit": "4294967296"}}), "limit"),
        (Method::POST, search.clone(), json!({"query": {"limit": -1}}), "limit"),
        (Method::POST, search.clone(), json!({"query": {"limit": 1.5}}), "limit"),
        (Method::POST, search.clone(), json!({"query": {"asc": "yes"}}), "asc"),
        (Method::POST, search.clone(), json!({"sortingColumn": "ACTION_FIELD_NAME_BOGUS"}), "sortingColumn"),
        (Method::POST, search.clone(), json!({"sorting_column": true}), "sortingColumn"),
        (Method::POST, search.clone(), json!({"queries": {}}), "queries"),
        (
            Method::POST,
            search.clone(),
            json!({"queries": [{"actionStateQuery": {"state": "ACTION_STATE_BOGUS"}}]}),
            "state",
        ),
        (
            Method::POST,
            search.clone(),
            json!({"queries": [{"actionNameQuery": {"name": "a", "method": "TEXT_QUERY_METHOD_BOGUS"}}]}),
            "method",
        ),
        (Method::POST, search.clone(), json!({"queries": [{"actionNameQuery": {"name": 7}}]}), "name"),
        (Method::POST, search.clone(), json!({"queries": [{"actionIdQuery": {"id": []}}]}), "id"),
        (Method::POST, trigger.clone(), json!({"actionIds": "x"}), "actionIds"),
        (Method::POST, trigger.clone(), json!({"actionIds": [{}]}), "actionIds"),
        (Method::POST, trigger.clone(), json!({"action_ids": {"a": 1}}), "actionIds"),
        (Method::POST, "/management/v1/orgs".into(), json!({"name": 5}), "name"),
        (Method::POST, "/management/v1/orgs".into(), json!({"name": ["x"]}), "name"),
        (Method::POST, "/admin/v1/orgs/_search".into(), json!({"query": []}), "query"),
        (Method::POST, "/admin/v1/orgs/_search".into(), json!({"query": {"offset": 1e30}}), "offset"),
        (Method::POST, "/admin/v1/tokens".into(), json!({"orgId": 5, "role": "ORG_OWNER"}), "orgId"),
        (Method::POST, "/admin/v1/tokens".into(), json!({"orgId": "default", "role": "IAM_GOD"}), "role"),
        (Method::POST, "/admin/v1/tokens".into(), json!({"orgId": "default", "role": true}), "role"),
        (
            Method::POST,
            "/admin/v1/tokens".into(),
            json!({"orgId": "default", "role": "ORG_OWNER", "expirationDate": "tomorrow"}),
            "expirationDate",
        ),
        (
            Method::POST,
            "/admin/v1/tokens".into(),
            json!({"orgId": "default", "role": "ORG_OWNER", "expirationDate": 5}),
            "expirationDate",
        ),
        (
            Method::POST,
            "/admin/v1/tokens".into(),
            json!({"orgId": "default", "role": "ORG_OWNER", "description": 5}),
            "description",
        ),
        (Method::POST, "/admin/v1/tokens/_search".into(), json!({"orgId": []}), "orgId"),
        (Method::POST, "/admin/v1/tokens/_search".into(), json!({"query": [0, 1]}), "query"),
        (Method::POST, "/admin/v1/tokens/_search".into(), json!({"query": {"limit": 99999999999u64}}), "limit"),
    ];
    let mut sweep = Sweep::default();
    for (method, path, body, field) in cases {
        let r = s.call(method.clone(), &path, Some(&s.admin), &[], Some(body.clone())).await;
        sweep.check(check_invalid_naming(&r, field, &format!("{method} {path} {body}")));
    }
    // Connect shares the validation.
    let r = s.connect(&format!("{MGMT}/CreateAction"), &s.admin, json!({"name": 5, "script": "x"})).await;
    sweep.check(ensure(
        r.status == 400
            && r.body["code"] == "invalid_argument"
            && r.body["message"].as_str().unwrap_or("").to_lowercase().contains("name"),
        || format!("Connect CreateAction with a numeric name: {r:?}"),
    ));
    sweep.finish();
    assert_fixture_intact(s, &action).await;
}

async fn numbers_at_the_edges(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let mut sweep = Sweep::default();
    for path in [format!("{ACTIONS}/_search"), "/admin/v1/orgs/_search".into(), "/admin/v1/tokens/_search".into()] {
        // Over the page limit (100).
        let r = s.post(&path, &s.admin, json!({"query": {"limit": 1001}})).await;
        sweep.check(check_status_code(&r, 400, 3, &format!("{path} limit 1001")).and_then(|_| {
            ensure(r.error_id() == "QUERY-4M0fs" && r.body["message"] == "Limit exceeded (QUERY-4M0fs)", || {
                format!("{path} limit 1001: {r:?}")
            })
        }));
        // Valid uint64/uint32 values, as strings or numbers.
        for query in [
            json!({"offset": "18446744073709551615"}),
            json!({"offset": 18446744073709551615u64}),
            json!({"offset": "9223372036854775808"}),
            json!({"offset": 9223372036854775807u64}),
        ] {
            let r = s.post(&path, &s.admin, json!({"query": query})).await;
            sweep.check(ensure(
                r.status == 200
                    && result_ids(&r).is_empty()
                    && r.body["details"]["totalResult"].as_str().is_some_and(|t| t != "0"),
                || format!("{path} with query {query}: expected 200, no result, a non-zero totalResult; got {r:?}"),
            ));
        }
        for query in [json!({"limit": "1"}), json!({"limit": 1, "offset": "0"}), json!({"limit": "1000", "asc": true})]
        {
            let r = s.post(&path, &s.admin, json!({"query": query})).await;
            sweep.check(ensure(r.status == 200 && !result_ids(&r).is_empty(), || {
                format!("{path} with query {query}: {r:?}")
            }));
        }
    }
    sweep.finish();
    // Enums as numbers.
    let r = s
        .post(
            &format!("{ACTIONS}/_search"),
            &s.admin,
            json!({"sortingColumn": 1, "queries": [{"actionStateQuery": {"state": 2}}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_ids(&r), vec![action.clone()], "{r:?}");
    // An empty body counts as `{}`.
    let r = s.call_raw(Method::POST, &format!("{ACTIONS}/_search"), Some(&s.admin), Vec::new()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_ids(&r), vec![action.clone()], "{r:?}");
    let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), Vec::new()).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.body["message"], "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive",
        "{r:?}"
    );
    assert_fixture_intact(s, &action).await;
}

async fn nul_characters_never_cause_5xx(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let cases: Vec<(Method, String, Value)> = vec![
        (Method::POST, ACTIONS.into(), json!({"name": "nul\u{0}name", "script": "function a(){}"})),
        (Method::POST, ACTIONS.into(), json!({"name": "nulscript", "script": "function a(){ '\u{0}' }"})),
        (Method::PUT, format!("{ACTIONS}/{action}"), json!({"name": "fixture", "script": "\u{0}"})),
        (
            Method::POST,
            format!("{ACTIONS}/_search"),
            json!({"queries": [{"actionNameQuery": {"name": "\u{0}", "method": 4}}]}),
        ),
        (Method::POST, format!("{ACTIONS}/_search"), json!({"queries": [{"actionIdQuery": {"id": "\u{0}"}}]})),
        (Method::POST, "/management/v1/flows/1/trigger/1".into(), json!({"actionIds": ["\u{0}"]})),
        (Method::POST, "/management/v1/orgs".into(), json!({"name": "org\u{0}"})),
        (Method::POST, "/admin/v1/tokens".into(), json!({"orgId": "\u{0}", "role": "ORG_OWNER"})),
        (
            Method::POST,
            "/admin/v1/tokens".into(),
            json!({"orgId": "default", "role": "ORG_OWNER", "description": "\u{0}"}),
        ),
        (Method::POST, "/admin/v1/tokens/_search".into(), json!({"orgId": "\u{0}"})),
    ];
    let mut sweep = Sweep::default();
    for (method, path, body) in cases {
        let r = s.call(method.clone(), &path, Some(&s.admin), &[], Some(body.clone())).await;
        let what = format!("{method} {path} {}", body.to_string().replace("\\u0000", "<NUL>"));
        if r.status != 200 {
            sweep.check(check_gateway_4xx(&r, &format!("{what} (200 or a 4xx allowed)")));
        }
    }
    let r = s.connect(&format!("{MGMT}/GetAction"), &s.admin, json!({"id": "\u{0}"})).await;
    sweep.check(check_connect_4xx(&r, "Connect GetAction with a NUL id"));
    sweep.finish();
    // The server still works.
    assert_eq!(s.get(&format!("{ACTIONS}/{action}"), &s.admin).await.status, 200);
}

async fn oversized_bodies_are_413(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let body_of = |len: usize| {
        let head = br#"{"name":"big","script":""#;
        let tail = br#""}"#;
        let mut b = head.to_vec();
        b.resize(len - tail.len(), b'x');
        b.extend_from_slice(tail);
        b
    };
    let two_mib = body_of(2 * ONE_MIB);
    let auth = format!("Bearer {}", s.admin);
    // Each on a fresh connection (see oversized_body_does_not_break_keep_alive for reuse).
    let json_headers: [(&str, &[u8]); 2] = [("authorization", auth.as_bytes()), ("content-type", b"application/json")];
    for (method, path) in [
        ("POST", ACTIONS.to_string()),
        ("PUT", format!("{ACTIONS}/{action}")),
        ("POST", format!("{ACTIONS}/_search")),
        ("POST", "/management/v1/orgs".into()),
        ("POST", "/admin/v1/tokens".into()),
    ] {
        let r = s.raw_http(method, path.as_bytes(), &json_headers, &two_mib).await;
        let what = format!("{method} {path} with 2 MiB");
        assert_eq!(r.status, 413, "{what}: {r:?}");
        assert_eq!(r.code(), 8, "{what}: {r:?}");
        assert_gateway_4xx(&r, &what);
    }
    let r = s.raw_http("POST", format!("/{MGMT}/CreateAction").as_bytes(), &json_headers, &two_mib).await;
    assert_eq!(r.status, 413, "Connect CreateAction with 2 MiB: {r:?}");
    assert_eq!(r.body["code"], "resource_exhausted", "{r:?}");
    assert_connect_4xx(&r, "Connect CreateAction with 2 MiB");
    // Chunked (no Content-Length) is limited the same way.
    let mut chunked = format!("{:x}\r\n", two_mib.len()).into_bytes();
    chunked.extend_from_slice(&two_mib);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let r = s
        .raw_http(
            "POST",
            ACTIONS.as_bytes(),
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
                ("transfer-encoding", b"chunked"),
            ],
            &chunked,
        )
        .await;
    assert_eq!(r.status, 413, "chunked 2 MiB: {r:?}");
    assert_eq!(r.code(), 8, "{r:?}");
    // Just over 1 MiB is refused; just under is read (and then fails validation on the script length).
    let r = s.raw_http("POST", ACTIONS.as_bytes(), &json_headers, &body_of(ONE_MIB + 1)).await;
    assert_eq!(r.status, 413, "1 MiB + 1 byte: {r:?}");
    let r = s.call_raw(Method::POST, ACTIONS, Some(&s.admin), body_of(ONE_MIB - 64)).await;
    assert_eq!(r.status, 400, "just under 1 MiB: {r:?}");
    assert_eq!(
        r.body["message"],
        "invalid CreateActionRequest.Script: value length must be between 1 and 10000 runes, inclusive",
        "{r:?}"
    );
    assert_fixture_intact(s, &action).await;
}

/// Reads one HTTP/1.1 response (Content-Length framed) from a kept-alive connection.
async fn read_one_response(stream: &mut tokio::net::TcpStream) -> Option<(u16, String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok())?;
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some((status, head, body))
}

/// A client that writes its whole request before reading (Python's http.client does) gets the 413
/// that was answered before its body was read: the server reads and drops what still arrives
/// for a moment after answering, instead of closing a socket with unread bytes (which resets
/// the connection: the client's writes failed with a broken pipe, the 413 was lost).
async fn a_client_writing_its_whole_body_first_reads_the_413(s: &TestServer) {
    use tokio::io::AsyncWriteExt;
    let authority = s.base.trim_start_matches("http://").to_string();
    for len in [ONE_MIB + 100_000, 4 * ONE_MIB, 8 * ONE_MIB] {
        let mut request = format!(
            "POST /management/v1/actions HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n",
            s.admin
        )
        .into_bytes();
        request.extend(std::iter::repeat_n(b' ', len));
        let mut stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
        let written = stream.write_all(&request).await;
        assert!(written.is_ok(), "{len} bytes: the body could not be written: {written:?}");
        let (status, head, body) = read_one_response(&mut stream).await.expect("a response to the oversized request");
        assert_eq!(status, 413, "{len} bytes: {head}\n{}", String::from_utf8_lossy(&body));
    }
}

/// A 413 must not silently kill a keep-alive connection: either the server says
/// `Connection: close` with the 413, or the connection still serves the next request.
/// (Otherwise pooled clients get a connection error instead of their next answer.)
async fn oversized_body_does_not_break_keep_alive(s: &TestServer) {
    use tokio::io::AsyncWriteExt;
    let authority = s.base.trim_start_matches("http://").to_string();
    let mut big = format!(
        "POST /management/v1/orgs HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        s.admin,
        2 * ONE_MIB
    )
    .into_bytes();
    big.extend(std::iter::repeat_n(b' ', 2 * ONE_MIB));
    let mut stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    let _ = stream.write_all(&big).await;
    let (status, head, body) = read_one_response(&mut stream).await.expect("a response to the oversized request");
    assert_eq!(status, 413, "{head}\n{}", String::from_utf8_lossy(&body));
    let announced_close = head.lines().any(|l| l.starts_with("connection:") && l.contains("close"));
    if !announced_close {
        let next = format!("GET /debug/healthz HTTP/1.1\r\nHost: {authority}\r\n\r\n");
        let written = stream.write_all(next.as_bytes()).await;
        let reply = match written {
            Ok(()) => read_one_response(&mut stream).await,
            Err(_) => None,
        };
        assert!(
            reply.as_ref().is_some_and(|(status, _, _)| *status == 200),
            "the server closed a keep-alive connection after a 413 without sending `Connection: close` \
             (413 head: {head:?}); the next request on it got {reply:?}"
        );
    }
}

async fn odd_path_ids_are_4xx(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let long = "9".repeat(10 * 1024);
    let long_alpha = "a".repeat(10 * 1024);
    let ids: Vec<&str> = vec![
        "%00",
        "..",
        "%2e%2e",
        "%2E%2E",
        ".",
        "%FF",
        "%ff%fe",
        "%C3",
        "%ZZ",
        "%",
        "a%2Fb",
        "%20",
        "-1",
        "0",
        "18446744073709551616",
        "99999999999999999999999999999999",
        "1e30",
        "abc",
        "%22%7D",
        long.as_str(),
        long_alpha.as_str(),
    ];
    let auth = format!("Bearer {}", s.admin);
    let headers: [(&str, &[u8]); 2] = [("authorization", auth.as_bytes()), ("content-type", b"application/json")];
    let update_body = br#"{"name":"renamed","script":"function renamed(){}"}"#.to_vec();
    let mut sweep = Sweep::default();
    for id in &ids {
        let routes: Vec<(&str, String, Vec<u8>)> = vec![
            ("GET", format!("{ACTIONS}/{id}"), vec![]),
            ("PUT", format!("{ACTIONS}/{id}"), update_body.clone()),
            ("DELETE", format!("{ACTIONS}/{id}"), vec![]),
            ("POST", format!("{ACTIONS}/{id}/_deactivate"), b"{}".to_vec()),
            ("POST", format!("{ACTIONS}/{id}/_reactivate"), b"{}".to_vec()),
            ("GET", format!("/management/v1/flows/{id}"), vec![]),
            ("POST", format!("/management/v1/flows/{id}/_clear"), b"{}".to_vec()),
            ("POST", format!("/management/v1/flows/{id}/triggers/_search"), b"{}".to_vec()),
            ("POST", format!("/management/v1/flows/{id}/trigger/1"), br#"{"actionIds":[]}"#.to_vec()),
            ("POST", format!("/management/v1/flows/1/trigger/{id}"), br#"{"actionIds":[]}"#.to_vec()),
            ("DELETE", format!("/admin/v1/tokens/{id}"), vec![]),
            // The routes outside the RPC table: the trigger documents and the connector's call.
            ("GET", format!("/management/v1/flows/{id}/trigger/4/types.d.ts"), vec![]),
            ("GET", format!("/management/v1/flows/2/trigger/{id}/context.schema.json"), vec![]),
            ("GET", format!("/management/v1/flows/2/trigger/{id}/effects.schema.json"), vec![]),
            ("POST", format!("/connector/v1/connections/{id}/call"), b"{}".to_vec()),
        ];
        for (method, path, body) in routes {
            let r = s.raw_http(method, path.as_bytes(), &headers, &body).await;
            let shown = if path.len() > 120 { format!("{}…", &path[..120]) } else { path.clone() };
            sweep.check(check_gateway_4xx(&r, &format!("{method} {shown}")));
        }
        let r = s.connect(&format!("{MGMT}/GetAction"), &s.admin, json!({"id": id})).await;
        sweep.check(check_connect_4xx(&r, &format!("Connect GetAction id {:.40}", id)));
        let r = s.connect(&format!("{MGMT}/GetFlow"), &s.admin, json!({"type": id})).await;
        sweep.check(check_connect_4xx(&r, &format!("Connect GetFlow type {:.40}", id)));
    }
    sweep.finish();
    // A path parameter whose escapes are not UTF-8 is named, as a field of the request message
    // where there is one.
    for (path, message) in [
        (format!("{ACTIONS}/%FF"), "invalid GetActionRequest.Id: not valid UTF-8"),
        (
            "/management/v1/flows/%FF/trigger/4/types.d.ts".to_string(),
            "invalid path parameter flowType: not valid UTF-8",
        ),
    ] {
        let r = s.get(&path, &s.admin).await;
        assert_eq!(
            (r.status.as_u16(), r.body["code"].as_i64(), r.body["message"].as_str()),
            (400, Some(3), Some(message)),
            "{r:?}"
        );
    }
    // The admin token was not removed by any of those, and the fixture is untouched.
    assert_fixture_intact(s, &action).await;
}

async fn unknown_route_is_404_and_wrong_method_405(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    for (method, path) in [
        (Method::GET, "/nope".to_string()),
        (Method::GET, "/management/v1".into()),
        (Method::POST, "/management/v1/nope".into()),
        (Method::GET, format!("{ACTIONS}/{action}/extra/deep")),
        (Method::POST, "/admin/v1/nope".into()),
        (Method::GET, "/v1/actions".into()),
        (Method::POST, "/management/v2/actions".into()),
    ] {
        for token in [Some(s.admin.as_str()), None] {
            let r = s.call(method.clone(), &path, token, &[], None).await;
            let what = format!("{method} {path} (token: {})", token.is_some());
            assert_eq!(r.status, 404, "{what}: {r:?}");
            assert_eq!(r.body, json!({"code": 5, "message": "Not Found"}), "{what}");
            assert_request_id(&r, &what);
        }
    }
    for (method, path) in [
        (Method::GET, ACTIONS.to_string()),
        (Method::DELETE, ACTIONS.into()),
        (Method::PATCH, format!("{ACTIONS}/{action}")),
        (Method::POST, format!("{ACTIONS}/{action}")),
        (Method::GET, format!("{ACTIONS}/{action}/_deactivate")),
        (Method::DELETE, "/management/v1/orgs".into()),
        (Method::POST, "/management/v1/orgs/me".into()),
        (Method::GET, "/management/v1/flows/1/_clear".into()),
        (Method::DELETE, "/management/v1/flows/1/trigger/1".into()),
        (Method::PUT, "/admin/v1/tokens/_search".into()),
        (Method::GET, "/admin/v1/tokens".into()),
    ] {
        let r = s.call(method.clone(), &path, Some(&s.admin), &[], None).await;
        let what = format!("{method} {path}");
        assert_eq!(r.status, 405, "{what}: {r:?}");
        assert_eq!(r.body, json!({"code": 12, "message": "Method Not Allowed"}), "{what}");
        assert_request_id(&r, &what);
    }
    assert_fixture_intact(s, &action).await;
}

async fn every_response_has_a_request_id(s: &TestServer) {
    let action = s.create_action(&s.admin, "fixture").await;
    let replies = vec![
        ("GetAction 200", s.get(&format!("{ACTIONS}/{action}"), &s.admin).await),
        ("ListActions 200", s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await),
        ("CreateAction 409", s.post(ACTIONS, &s.admin, json!({"name": "fixture", "script": "x"})).await),
        ("GetFlow 400", s.get("/management/v1/flows/9", &s.admin).await),
        ("401", s.call(Method::GET, "/management/v1/orgs/me", None, &[], None).await),
        ("Connect 200", s.connect(&format!("{MGMT}/GetMyOrg"), &s.admin, json!({})).await),
        ("Connect 404", s.connect(&format!("{MGMT}/GetAction"), &s.admin, json!({"id": "1"})).await),
        ("healthz", s.call(Method::GET, "/debug/healthz", None, &[], None).await),
        ("ready", s.call(Method::GET, "/debug/ready", None, &[], None).await),
        ("metrics", s.call(Method::GET, "/metrics", None, &[], None).await),
        ("openapi", s.call(Method::GET, "/openapi.json", None, &[], None).await),
    ];
    let mut seen = HashSet::new();
    for (what, r) in &replies {
        assert_request_id(r, what);
        let id = r.headers["x-request-id"].to_str().unwrap_or("").to_string();
        assert!(seen.insert(id.clone()), "{what}: request id {id} reused");
    }
    // A caller's id is kept when it is a plain one; one that could flood or forge a log line
    // (too long, spaces, quotes, given twice) is replaced by a generated one.
    let sent = |ids: Vec<String>| async move {
        let headers: Vec<(&str, &str)> = ids.iter().map(|id| ("x-request-id", id.as_str())).collect();
        let r = s.call(Method::GET, "/debug/healthz", None, &headers, None).await;
        r.headers["x-request-id"].to_str().unwrap().to_string()
    };
    assert_eq!(sent(vec!["trace-7f3a:1/2+x==".into()]).await, "trace-7f3a:1/2+x==");
    let odd = [
        vec!["a\" request_id=forged level=ERROR".to_string()],
        vec!["a".repeat(129)],
        vec!["one".into(), "two".into()],
    ];
    for ids in odd {
        let id = sent(ids.clone()).await;
        assert!(!ids.contains(&id) && id.len() <= 128 && !id.contains(' '), "{ids:?} -> {id}");
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

async fn parallel_creates_with_one_name(s: &TestServer) {
    let attempts = (0..50).map(|i| {
        s.post(ACTIONS, &s.admin, json!({"name": "racer", "script": format!("function racer(){{ /* {i} */ }}")}))
    });
    let replies = join_all(attempts).await;
    let ok: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    let conflicts: Vec<&Reply> = replies.iter().filter(|r| r.status == 409).collect();
    let other: Vec<&Reply> = replies.iter().filter(|r| r.status != 200 && r.status != 409).collect();
    assert!(other.is_empty(), "unexpected replies: {other:?}");
    assert_eq!(ok.len(), 1, "exactly one create may win: {ok:?}");
    assert_eq!(conflicts.len(), 49);
    for r in conflicts {
        assert_eq!(r.code(), 6, "{r:?}");
        assert_eq!(r.error_id(), "V3-DKcYh", "{r:?}");
    }
    let winner = ok[0].body["id"].as_str().expect("id").to_string();
    let list = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(result_ids(&list), vec![winner.clone()], "{list:?}");
    assert_eq!(list.body["details"]["totalResult"], "1", "{list:?}");

    // Case variants are the same name (case-insensitive uniqueness), also under contention.
    let names: Vec<String> = (0..50)
        .map(|i| {
            "Twin"
                .chars()
                .enumerate()
                .map(|(j, c)| if (i >> j) & 1 == 1 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect()
        })
        .collect();
    let replies =
        join_all(names.iter().map(|n| s.post(ACTIONS, &s.admin, json!({"name": n, "script": "function twin(){}"}))))
            .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    let conflicts = replies.iter().filter(|r| r.status == 409 && r.code() == 6).count();
    assert_eq!((ok, conflicts), (1, 49), "{:?}", replies.iter().filter(|r| r.status != 409).collect::<Vec<_>>());
    let list = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(list.body["details"]["totalResult"], "2", "{list:?}");
}

/// No trigger of any flow type lists an action twice; returns the id lists per (flow, trigger).
async fn flow_lists(s: &TestServer, flow: u32) -> Vec<(String, Vec<String>)> {
    let r = s.get(&format!("/management/v1/flows/{flow}"), &s.admin).await;
    assert_eq!(r.status, 200, "{r:?}");
    let mut out = Vec::new();
    for ta in r.body["flow"]["triggerActions"].as_array().into_iter().flatten() {
        let trigger = ta["triggerType"]["id"].as_str().unwrap_or("?").to_string();
        let ids: Vec<String> =
            ta["actions"].as_array().into_iter().flatten().filter_map(|a| a["id"].as_str().map(String::from)).collect();
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "flow {flow} trigger {trigger} lists an action twice: {r:?}");
        assert!(!ids.is_empty(), "flow {flow} trigger {trigger} listed with no actions: {r:?}");
        out.push((trigger, ids));
    }
    out
}

async fn parallel_set_trigger_actions(s: &TestServer) {
    let mut actions = Vec::new();
    for i in 0..10 {
        actions.push(s.create_action(&s.admin, &format!("act{i}")).await);
    }
    // 50 distinct lists: start i % 10, length 2 + i / 10, wrapping around.
    let lists: Vec<Vec<String>> =
        (0..50usize).map(|i| (0..2 + i / 10).map(|k| actions[(i % 10 + k) % 10].clone()).collect()).collect();
    let replies =
        join_all(lists.iter().map(|l| s.post("/management/v1/flows/1/trigger/1", &s.admin, json!({"actionIds": l}))))
            .await;
    for (l, r) in lists.iter().zip(&replies) {
        // Each list differs from every other, so none is "No Changes"; concurrency is no excuse to fail.
        assert_eq!(r.status, 200, "SetTriggerActions {l:?}: {r:?}");
    }
    let got = flow_lists(s, 1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "1");
    assert!(lists.contains(&got[0].1), "the stored list {:?} is none of the requested lists", got[0].1);

    // A second round on two triggers at once, through both transports.
    let replies = join_all(lists.iter().enumerate().map(|(i, l)| {
        let reversed: Vec<String> = l.iter().rev().cloned().collect();
        async move {
            if i % 2 == 0 {
                s.post("/management/v1/flows/1/trigger/2", &s.admin, json!({"actionIds": reversed})).await
            } else {
                s.connect(
                    &format!("{MGMT}/SetTriggerActions"),
                    &s.admin,
                    json!({"flowType": "1", "triggerType": "2", "actionIds": reversed}),
                )
                .await
            }
        }
    }))
    .await;
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
    }
    let reversed: Vec<Vec<String>> = lists.iter().map(|l| l.iter().rev().cloned().collect()).collect();
    let got = flow_lists(s, 1).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(lists.contains(&got[0].1), "{got:?}");
    assert_eq!(got[1].0, "2");
    assert!(reversed.contains(&got[1].1), "the stored list {:?} is none of the requested lists", got[1].1);
}

async fn delete_racing_set_trigger_actions(s: &TestServer) {
    let keeper = s.create_action(&s.admin, "keeper").await;
    for round in 0..25 {
        let victim = s.create_action(&s.admin, &format!("victim{round}")).await;
        let victim_path = format!("{ACTIONS}/{victim}");
        let delete = s.delete(&victim_path, &s.admin);
        let sets = join_all(
            [
                ("/management/v1/flows/1/trigger/1", json!({"actionIds": [keeper, victim]})),
                ("/management/v1/flows/2/trigger/4", json!({"actionIds": [victim]})),
                ("/management/v1/flows/3/trigger/2", json!({"actionIds": [victim, keeper]})),
                ("/management/v1/flows/4/trigger/6", json!({"actionIds": [victim]})),
            ]
            .into_iter()
            .map(|(path, body)| async move { (path, s.post(path, &s.admin, body).await) }),
        );
        let (deleted, sets) = futures::join!(delete, sets);
        assert_eq!(deleted.status, 200, "round {round}: DeleteAction: {deleted:?}");
        assert_eq!(deleted.body, json!({}), "round {round}");
        for (path, r) in &sets {
            let ok = r.status == 200 || (r.status == 400 && r.code() == 9 && r.error_id() == "COMMAND-dg422");
            assert!(ok, "round {round}: {path}: {r:?}");
        }
        for flow in 1..=4 {
            for (trigger, ids) in flow_lists(s, flow).await {
                assert!(
                    !ids.contains(&victim),
                    "round {round}: deleted action {victim} still bound to flow {flow} trigger {trigger}"
                );
            }
        }
        let r = s.get(&format!("{ACTIONS}/{victim}"), &s.admin).await;
        assert_eq!(r.status, 404, "round {round}: {r:?}");
    }
    let r = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert_eq!(result_ids(&r), vec![keeper], "{r:?}");
}

backend_tests!(
    malformed_json_is_400_everywhere,
    wrong_types_are_400_naming_the_field,
    numbers_at_the_edges,
    nul_characters_never_cause_5xx,
    oversized_bodies_are_413,
    a_client_writing_its_whole_body_first_reads_the_413,
    oversized_body_does_not_break_keep_alive,
    odd_path_ids_are_4xx,
    unknown_route_is_404_and_wrong_method_405,
    every_response_has_a_request_id,
    parallel_creates_with_one_name,
    parallel_set_trigger_actions,
    delete_racing_set_trigger_actions,
);

/// Gateway errors always carry `details` (the OpenAPI schema requires it), an empty array when the
/// error has no id: malformed JSON, an empty query object, a missing token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_errors_always_have_details() {
    let s = TestServer::sqlite().await;
    let cases = [
        s.call_raw(Method::POST, "/management/v1/actions", Some(&s.admin), b"{not json".to_vec()).await,
        s.call_raw(Method::GET, "/management/v1/orgs/me", None, Vec::new()).await,
        s.put("/management/v1/actions/1", &s.admin, json!({"name": "", "script": "x"})).await,
        s.post("/management/v1/actions", &s.admin, json!({"name": 5})).await,
    ];
    for r in cases {
        assert!(r.status.is_client_error(), "{r:?}");
        assert!(r.body["details"].is_array(), "no details array in {r:?}");
        assert!(r.body["code"].is_i64() && r.body["message"].is_string(), "{r:?}");
    }
    s.stop().await;
}

/// A client that goes away while its action runs: the request's work is dropped (the worker with
/// it, its state unknown), the busy-workers count goes back to zero, and the next run works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_leaving_mid_run_leaves_no_busy_worker_behind() {
    let s = TestServer::sqlite().await;
    let r = s
        .post(
            ACTIONS,
            &s.admin,
            json!({"name": "spin", "script": "function spin(ctx, api) { for (;;) {} }", "timeout": "3s"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let spin = r.body["id"].as_str().unwrap().to_string();
    let r = s.post("/management/v1/flows/2/trigger/4", &s.admin, json!({"actionIds": [spin]})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let impatient = reqwest::Client::builder().timeout(std::time::Duration::from_millis(300)).build().unwrap();
    let sent = impatient
        .post(format!("{}/management/v1/flows/2/trigger/4/_execute", s.base))
        .bearer_auth(&s.admin)
        .json(&json!({"context": {}}))
        .send()
        .await;
    assert!(sent.is_err(), "the run should outlast the client's patience: {sent:?}");
    let busy = || s.state.sandbox.stats.busy.load(std::sync::atomic::Ordering::Relaxed);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while busy() != 0 && std::time::Instant::now() < until {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(busy(), 0, "a cancelled run is still counted as busy");
    let r = s
        .post(
            ACTIONS,
            &s.admin,
            json!({"name": "quick", "script": "function quick(ctx, api) { api.v1.claims.setClaim('k', 'v') }"}),
        )
        .await;
    let quick = r.body["id"].as_str().unwrap().to_string();
    s.post("/management/v1/flows/2/trigger/4", &s.admin, json!({"actionIds": [quick]})).await;
    let r = s.post("/management/v1/flows/2/trigger/4/_execute", &s.admin, json!({"context": {}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["outcome"], "OUTCOME_SUCCEEDED", "{r:?}");
    s.stop().await;
}

/// What a slow or silent client gets (ACTIONSD_REQUEST_READ_TIMEOUT, 1 s here): a connection that
/// sends nothing, or stops in the middle of its headers, is closed; a body announced over the
/// limit is refused at once, before any of it is read; a body that stops arriving is 408 in the
/// transport-level shape, on each transport.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::sqlite_with(|c| c.request_read_timeout = actionsd::domain::Duration::from_secs(1)).await;
    let authority = s.base.trim_start_matches("http://").to_string();
    // Everything the server sends on a connection until it closes it (bounded, so that a
    // connection the server keeps open fails the test instead of hanging it).
    async fn until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "the server kept the connection open; it sent {:?}", String::from_utf8_lossy(&got));
        got
    }
    let mut silent = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    assert_eq!(until_closed(&mut silent).await, b"", "nothing to answer");
    let mut half = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    half.write_all(format!("GET /debug/healthz HTTP/1.1\r\nHost: {authority}\r\n").as_bytes()).await.unwrap();
    assert_eq!(until_closed(&mut half).await, b"", "headers never ended");

    let head = |path: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}",
            s.admin
        )
    };
    let answer = |raw: &[u8]| {
        let text = String::from_utf8_lossy(raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
        (
            head.lines().next().unwrap_or_default().to_string(),
            serde_json::from_str::<Value>(body).unwrap_or(Value::Null),
        )
    };
    // 2 MB announced, 2 bytes sent: refused from the announced length (this connection would
    // otherwise wait for the rest for the whole read timeout).
    let mut big = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    big.write_all(head("/management/v1/actions/_search", 2_000_000).as_bytes()).await.unwrap();
    let (status, body) = answer(&until_closed(&mut big).await);
    assert!(status.starts_with("HTTP/1.1 413"), "{status} {body}");
    assert_eq!(body["code"], 8, "{body}");
    // 100 bytes announced, 2 sent.
    for (path, code) in [
        ("/management/v1/actions/_search", json!(4)),
        ("/zitadel.management.v1.ManagementService/ListActions", json!("deadline_exceeded")),
    ] {
        let mut slow = tokio::net::TcpStream::connect(&authority).await.expect("connect");
        slow.write_all(head(path, 100).as_bytes()).await.unwrap();
        let (status, body) = answer(&until_closed(&mut slow).await);
        assert!(status.starts_with("HTTP/1.1 408"), "{path}: {status} {body}");
        assert_eq!(body["code"], code, "{path}: {body}");
        assert_eq!(body["message"], "the request body did not arrive within 1s", "{path}: {body}");
        assert!(body.get("details").is_none(), "transport-level shape: {body}");
    }
    // A Connect call's own deadline, when it comes first, bounds the body's arrival too.
    let mut slow = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    let with_deadline = head("/zitadel.management.v1.ManagementService/ListActions", 100).replacen(
        "\r\n",
        "\r\nConnect-Timeout-Ms: 200\r\n",
        1,
    );
    slow.write_all(with_deadline.as_bytes()).await.unwrap();
    let (status, body) = answer(&until_closed(&mut slow).await);
    assert!(status.starts_with("HTTP/1.1 504"), "{status} {body}");
    assert_eq!(body["code"], "deadline_exceeded", "{body}");
    assert_eq!(body["message"], "deadline exceeded after 200 ms", "{body}");
    // A client that keeps to the bound is served as before.
    let r = s.post("/management/v1/actions/_search", &s.admin, json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    s.stop().await;
}

/// Large bodies held by calls in flight are bounded (`ACTIONSD_MAX_BODY_BYTES_IN_FLIGHT`): while
/// the budget is taken, a call with a large body is answered 503 code 14 with Retry-After (here
/// at once: no queue wait), a call with a small body is served as usual, and once the budget is
/// back the large one is served too. On both transports.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_bodies_in_flight_are_bounded() {
    let s = TestServer::sqlite_with(|c| {
        c.max_body_bytes_in_flight = 1 << 20;
        c.queue_timeout = actionsd::domain::Duration::from_secs(0);
    })
    .await;
    let big = json!({"context": {"claims": {"pad": "x".repeat(200 << 10)}}});
    let path = "/management/v1/flows/2/trigger/4/_execute";
    // Another large call holding the whole budget (as a slow one would).
    let held = s.state.bodies_in_flight.clone().acquire_many_owned(1024).await.unwrap();
    let r = s.post(path, &s.admin, big.clone()).await;
    assert_eq!((r.status.as_u16(), r.code()), (503, 14), "{r:?}");
    assert!(r.headers.contains_key("retry-after"), "{r:?}");
    assert!(r.body["message"].as_str().unwrap_or("").contains("ACTIONSD_MAX_BODY_BYTES_IN_FLIGHT"), "{r:?}");
    let c = s
        .connect(
            &format!("{MGMT}/ExecuteFlowTrigger"),
            &s.admin,
            json!({"flowType": "2", "triggerType": "4", "context": big["context"]}),
        )
        .await;
    assert_eq!(c.status, 503, "{c:?}");
    assert_eq!(s.post(path, &s.admin, json!({"context": {}})).await.status, 200, "a small body waits for nothing");
    // The connector's call endpoint (its caller only needs a connection's id before the signature
    // is checked) takes its share too.
    let (call_url, _, _, _) = crate::connector_call::setup(&s, json!({})).await;
    let r = s.post(&call_url, &s.admin, big.clone()).await;
    assert_eq!((r.status.as_u16(), r.code()), (503, 14), "{r:?}");
    drop(held);
    let r = s.post(path, &s.admin, big).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(s.state.bodies_in_flight.available_permits(), 1024, "the share is given back after the call");
    s.stop().await;
}

/// The caller is known before a body is read: a client without a valid token that announces a
/// large body and sends a little of it is answered 401 within a second (the server drops what
/// arrives and does not wait longer, nor hold any of it), and the connection is closed (the unread
/// rest cannot be taken for the next request). Over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_unknown_callers_are_not_read() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::sqlite().await;
    let authority = s.base.trim_start_matches("http://").to_string();
    for auth in ["", "Authorization: Bearer not-a-token\r\n"] {
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        let head = format!(
            "POST {ACTIONS}/_search HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"query\":"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Well before the read timeout (30 s), which a server waiting for the whole body would meet.
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), read_one_response(&mut stream))
            .await
            .expect("answered without the body");
        let (status, head, body) = answer.expect("a response");
        assert_eq!(status, 401, "{auth:?}: {}", String::from_utf8_lossy(&body));
        assert!(head.contains("connection: close"), "{auth:?}: {head}");
    }
    s.stop().await;
}

/// An unknown caller's body that does arrive is read and dropped before the 401 (403), so that a
/// client writing its body after its headers (as Connect's Node client does) gets the answer
/// instead of a broken pipe, and the connection carries the next request. A client that waits for
/// `100 Continue` is answered at once instead (and never asked for its body). Over HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_unknown_callers_are_dropped_and_the_connection_kept() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::sqlite().await;
    let authority = s.base.trim_start_matches("http://").to_string();
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    let body = format!(r#"{{"name":"dropped","script":"function dropped(){{}} // {}"}}"#, "x".repeat(100_000));
    for (auth, expected) in [
        (String::new(), 401),
        ("Authorization: Bearer not-a-token\r\n".to_string(), 401),
        (format!("Authorization: Bearer {viewer}\r\n"), 403),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
        for round in 0..2 {
            let head = format!(
                "POST {ACTIONS} HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            // The headers first, the body in writes of its own.
            stream.write_all(head.as_bytes()).await.unwrap();
            stream.flush().await.unwrap();
            for part in body.as_bytes().chunks(16 * 1024) {
                stream.write_all(part).await.expect("the body is taken, not refused half-way");
            }
            let (status, head, answer) = read_one_response(&mut stream).await.expect("a response");
            assert_eq!(status, expected, "{auth:?} round {round}: {}", String::from_utf8_lossy(&answer));
            assert!(!head.contains("connection: close"), "{auth:?} round {round}: {head}");
        }
    }
    let r = s.post(&format!("{ACTIONS}/_search"), &s.admin, json!({})).await;
    assert!(r.body["result"].as_array().is_none_or(|a| a.is_empty()), "nothing was created: {r:?}");
    // Waiting for `100 Continue`: answered without it, and closed.
    let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let head = format!(
        "POST {ACTIONS} HTTP/1.1\r\nHost: {authority}\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, head, _) = tokio::time::timeout(std::time::Duration::from_secs(10), read_one_response(&mut stream))
        .await
        .expect("answered without the body")
        .expect("a response");
    assert_eq!(status, 401, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    s.stop().await;
}
