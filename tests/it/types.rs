//! The editor documents (authoring.md §3): types.d.ts and the context/effects JSON Schemas served
//! per trigger, their media types, errors and roles; the served declarations type-check the
//! corpus in tests/types (good scripts pass, wrong ones fail) with the pinned TypeScript.

use crate::common;

use actionsd::domain::{FlowType, Trigger, TriggerType};
use common::{assert_err, TestServer};
use serde_json::{json, Value};

const ALL: [(i32, i32); 9] = [(1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (3, 1), (3, 2), (3, 3), (4, 6)];

fn base(flow: &str, trigger: &str) -> String {
    format!("/management/v1/flows/{flow}/trigger/{trigger}")
}

async fn fetch(s: &TestServer, token: Option<&str>, path: &str) -> (u16, String, String) {
    let mut req = s.client.get(format!("{}{path}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let media = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, media, resp.text().await.unwrap_or_default())
}

async fn documents_per_trigger(s: &TestServer) {
    for (flow, trigger) in ALL {
        let t = Trigger::new(FlowType(flow), TriggerType(trigger)).unwrap();
        let at = base(&flow.to_string(), &trigger.to_string());
        let (status, media, body) = fetch(s, Some(&s.admin), &format!("{at}/types.d.ts")).await;
        assert_eq!((status, media.as_str()), (200, "text/plain; charset=utf-8"), "{at}");
        assert_eq!(body, actionsd::runtime::api::surface::declarations(t), "{at}");
        assert!(body.contains("declare const ctx") && body.contains("declare const api"), "{at}");
        for (doc, expected) in [
            ("context.schema.json", actionsd::runtime::api::surface::served_context_schema(t)),
            ("effects.schema.json", actionsd::runtime::api::surface::effects_schema(t)),
        ] {
            let (status, media, body) = fetch(s, Some(&s.admin), &format!("{at}/{doc}")).await;
            assert_eq!((status, media.as_str()), (200, "application/schema+json"), "{at}/{doc}");
            let schema: Value = serde_json::from_str(&body).expect("schema JSON");
            assert_eq!(schema, expected);
            assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{at}/{doc} is not a valid schema: {e}"));
        }
    }
    // The path spellings of _execute, its 400s, and the roles of GetFlow.
    let (status, _, body) = fetch(
        s,
        Some(&s.admin),
        &format!("{}/types.d.ts", base("FLOW_TYPE_EXTERNAL_AUTHENTICATION", "TRIGGER_TYPE_POST_AUTHENTICATION")),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("setFirstName"), "external authentication declarations");
    for (flow, trigger, id) in [
        ("9", "1", "COMMAND-Dfhj5"),
        ("x", "1", "COMMAND-Dfhj5"),
        ("FLOW_TYPE_CUSTOMIZE_TOKEN", "4", "COMMAND-Dfhj5"),
        ("2", "1", "COMMAND-Dfgh6"),
        ("1", "7", "COMMAND-Dfgh6"),
        ("2", "TRIGGER_TYPE_PRE_USERINFO_CREATION", "COMMAND-Dfgh6"),
    ] {
        let r = s.get(&format!("{}/effects.schema.json", base(flow, trigger)), &s.admin).await;
        assert_err(&r, 400, 3, id);
    }
    let viewer = s.create_token("default", "ORG_VIEWER").await;
    assert_eq!(fetch(s, Some(&viewer), &format!("{}/types.d.ts", base("2", "4"))).await.0, 200);
    let executor = s.create_token("default", "ORG_EXECUTOR").await;
    assert_eq!(fetch(s, Some(&executor), &format!("{}/types.d.ts", base("2", "4"))).await.0, 403);
    assert_eq!(fetch(s, None, &format!("{}/context.schema.json", base("2", "4"))).await.0, 401);
}

/// Effects with zero-valued members (omitted, as protojson omits them) and numbers a context
/// carries through validate against the served effects schema of their trigger.
async fn served_effects_schemas_accept_zero_valued_effects(s: &TestServer) {
    let cases: [(&str, &str, Value, &str, Value); 6] = [
        (
            "1",
            "3",
            json!({}),
            "api.v1.appendUserGrant({projectId: 'p2', roles: []}); api.userGrants.push({projectID: '', roles: ['a']}); \
             api.userGrants.push({});",
            json!({"userGrants": [{"projectId": "p2"}, {"roles": ["a"]}, {}]}),
        ),
        (
            "3",
            "3",
            json!({}),
            "api.userGrants.push({projectID: 'p', projectGrantID: '', roles: []});",
            json!({"userGrants": [{"projectId": "p"}]}),
        ),
        (
            "4",
            "6",
            json!({}),
            "api.v1.attributes.setCustomAttribute('only', 'fmt'); api.v1.attributes.setCustomAttribute('', '', 'v');",
            json!({"attributes": [{"name": "only", "nameFormat": "fmt"}, {"values": ["v"]}]}),
        ),
        (
            "3",
            "2",
            json!({"user": {"username": "u", "state": 42, "human": {"firstName": "A", "gender": 7, "email": "e@x",
                "isEmailVerified": true}}}),
            "api.setFirstName(''); api.setEmailVerified(false); api.setUsername('');",
            json!({"user": {"state": 42, "human": {"gender": 7, "email": "e@x"}}}),
        ),
        (
            "1",
            "1",
            json!({"externalUser": {"externalId": "x", "preferredUsername": "p", "human": {"firstName": "A",
                "email": "e@x", "isEmailVerified": true}}}),
            "api.setFirstName(''); api.setEmailVerified(false); api.setPreferredUsername(''); \
             api.v1.user.appendMetadata('', '');",
            json!({"externalUser": {"externalId": "x", "human": {"email": "e@x"}},
                "metadata": [{"key": "", "value": "IiI="}]}),
        ),
        (
            "2",
            "4",
            json!({}),
            "api.v1.claims.setClaim('zero', 0); api.v1.claims.setClaim('empty', ''); api.v1.user.setMetadata('', null);",
            json!({"claims": {"zero": 0, "empty": ""}, "metadata": [{"key": "", "value": "bnVsbA=="}]}),
        ),
    ];
    for (flow, trigger, context, body, expected) in cases {
        let script = format!("function zeros(ctx, api) {{ {body} }}");
        let r = s
            .test_action(
                &s.admin,
                serde_json::json!({"name": "zeros", "script": script, "flowType": flow, "triggerType": trigger, "context": context}),
            )
            .await;
        assert_eq!((r.status.as_u16(), &r.body["outcome"]), (200, &json!("OUTCOME_SUCCEEDED")), "{r:?}");
        let effects = &r.body["effects"];
        assert_eq!(effects, &expected, "{flow}/{trigger}");
        let (status, _, served) =
            fetch(s, Some(&s.admin), &format!("{}/effects.schema.json", base(flow, trigger))).await;
        assert_eq!(status, 200);
        let schema: Value = serde_json::from_str(&served).expect("schema JSON");
        let validator = jsonschema::validator_for(&schema).expect("a valid schema");
        let errors: Vec<String> =
            validator.iter_errors(effects).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{flow}/{trigger}: {effects} against the served schema: {errors:?}");
    }
}

/// A host that checks its contexts with the served `context.schema.json` gets no 400 from
/// `_execute` for a context the schema accepts, and the reverse: base64 metadata values, sequences
/// and items that protobuf's JSON leaves zero-valued members out of.
async fn served_context_schema_and_execute_agree(s: &TestServer) {
    let (_, _, body) = fetch(s, Some(&s.admin), &format!("{}/context.schema.json", base("2", "4"))).await;
    let schema: Value = serde_json::from_str(&body).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let mut values: Vec<String> = [
        "",
        "YQ",
        "YQ=",
        "YQ==",
        "YWI",
        "YWI=",
        "YWJj",
        "eyJrIjoifn5+In0=",
        "eyJrIjoifn5-In0",
        "+/+/",
        "-_-_",
        "s",
        "YR",
        "YWJ",
        "YQ===",
        "YWI==",
        "+/-_",
        "YW Jj",
        "YWJj\n",
        "!!notb64",
        "YQ=a",
        "=",
        "====",
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    // And every string of up to three characters over a small alphabet with both alphabets' extras.
    let alphabet = ['A', 'Q', 'g', 'w', 'B', 'z', '0', '+', '/', '-', '_', '='];
    for a in alphabet {
        values.push(a.to_string());
        for b in alphabet {
            values.push(format!("{a}{b}"));
            for c in alphabet {
                values.push(format!("{a}{b}{c}"));
                values.push(format!("YWJj{a}{b}{c}"));
            }
        }
    }
    let mut disagree = Vec::new();
    for value in &values {
        let context = json!({"userMetadata": [{"key": "k", "value": value}]});
        let by_schema = validator.is_valid(&context);
        let by_decoder = actionsd::domain::bytes::decode_base64(value).is_some();
        if by_schema != by_decoder {
            disagree.push(format!("{value:?}: schema {by_schema}, decoder {by_decoder}"));
        }
    }
    assert!(disagree.is_empty(), "{} of {}:\n{}", disagree.len(), values.len(), disagree.join("\n"));
    // The server itself, for a sample (the decoder above is what it uses).
    for (value, ok) in [("YQ", true), ("YR", false), ("+/-_", false), ("", true)] {
        let context = json!({"userMetadata": [{"key": "k", "value": value}]});
        assert_eq!(validator.is_valid(&context), ok, "{value:?}");
        let r = s.execute_trigger(&s.admin, "2", "4", context).await;
        assert_eq!(r.status == 200, ok, "{value:?}: {r:?}");
    }
    // Zero-valued members left out, and sequences: the schema and the server agree.
    for (context, ok) in [
        (json!({"userMetadata": [{"key": "k"}], "userGrants": [{"projectId": "p"}, {}]}), true),
        (json!({"user": {"sequence": "12"}}), true),
        (json!({"user": {"sequence": 12}}), true),
        (json!({"user": {"sequence": "x"}}), false),
        (json!({"user": {"sequence": -1}}), false),
        // `null` is absent (or, in a free-form member, a value): taken by both.
        (json!({"user": null, "userGrants": null, "org": {"metadata": null}, "claims": null}), true),
        (json!({"user": {"sequence": null, "human": {"gender": null}}, "userGrants": [{"roles": null}]}), true),
        (json!({"userMetadata": [{"key": "k", "value": null}], "authMethod": null}), true),
    ] {
        assert_eq!(validator.is_valid(&context), ok, "{context}");
        let r = s.execute_trigger(&s.admin, "2", "4", context.clone()).await;
        assert_eq!(r.status == 200, ok, "{context}: {r:?}");
    }
}

backend_tests!(
    documents_per_trigger,
    served_effects_schemas_accept_zero_valued_effects,
    served_context_schema_and_execute_agree
);

/// The served declarations against the corpus, with the TypeScript pinned in tests/types
/// (`npm ci` there; `.ci/run` does it). Without it the check says SKIPPED, unless
/// ACTIONSD_TEST_REQUIRE_TSC is set (CI), where it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_declarations_type_check_the_corpus() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/types");
    if !common::npm_installed_or_skip(
        &corpus,
        "node_modules/.bin/tsc",
        "ACTIONSD_TEST_REQUIRE_TSC",
        "TypeScript corpus",
    ) {
        return;
    }
    let s = TestServer::sqlite().await;
    let dir = tempfile::tempdir().unwrap();
    for (flow, trigger) in ALL {
        let (status, _, body) =
            fetch(&s, Some(&s.admin), &format!("{}/types.d.ts", base(&flow.to_string(), &trigger.to_string()))).await;
        assert_eq!(status, 200);
        std::fs::write(dir.path().join(format!("{flow}-{trigger}.d.ts")), body).unwrap();
    }
    s.stop().await;
    let out = tokio::process::Command::new("sh")
        .arg(corpus.join("check.sh"))
        .arg(dir.path())
        .output()
        .await
        .expect("run check.sh");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the corpus does not type-check as it must:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = text.lines().filter(|l| l.starts_with("pass ")).count();
    assert!(checked >= 9 * 3, "too few scripts checked: {checked}\n{text}");
}
