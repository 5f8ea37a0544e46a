//! The committed OpenAPI document is current and documents every REST route exactly once.

use actionsd::api::{openapi, rpcs};

#[test]
fn committed_openapi_is_up_to_date() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
        .expect("openapi/openapi.json is committed");
    let generated = openapi::json();
    assert!(committed == generated, "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`");
}

#[test]
fn every_rpc_has_exactly_its_operation() {
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    assert_eq!(doc["openapi"].as_str().unwrap_or("").get(..3), Some("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (_, item) in paths {
        operations += item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "post", "put", "delete", "patch"].contains(&k.as_str()))
            .count();
    }
    assert_eq!(
        operations,
        rpcs().len() + 5,
        "one operation per RPC, the connector's call, the live tail and the three trigger documents"
    );
    let tail = &doc["paths"]["/management/v1/runs/_tail"]["get"]["responses"]["200"]["content"];
    assert!(tail.get("text/event-stream").is_some(), "{tail}");
    let types = &doc["paths"]["/management/v1/flows/{flowType}/trigger/{triggerType}/types.d.ts"]["get"];
    assert!(types["responses"]["200"]["content"].get("text/plain; charset=utf-8").is_some(), "{types}");
    let schema = &doc["paths"]["/management/v1/flows/{flowType}/trigger/{triggerType}/context.schema.json"]["get"];
    assert!(schema["responses"]["200"]["content"].get("application/schema+json").is_some(), "{schema}");
    let call = &doc["paths"]["/connector/v1/connections/{id}/call"]["post"];
    assert_eq!(call["security"], serde_json::json!([{"zitadelSignature": []}]), "the call takes no Bearer token");
    assert_eq!(doc["components"]["securitySchemes"]["zitadelSignature"]["in"], "header");
    assert_eq!(doc["components"]["securitySchemes"]["zitadelSignature"]["name"], "ZITADEL-Signature");
    for rpc in rpcs() {
        let method = rpc.http.as_str().to_ascii_lowercase();
        let op = &doc["paths"][rpc.path][&method];
        assert!(op.is_object(), "{} {} is not documented", rpc.http, rpc.path);
        assert_eq!(op["operationId"], rpc.operation_id(), "operationId of {} {}", rpc.http, rpc.path);
        assert_eq!(op["tags"][0], rpc.service_short());
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
}

/// What clients need to know about every operation is in the document: the organization header
/// where the RPC is org-scoped (and only there: admin, v2 and connector RPCs ignore it), and the
/// answers any operation may give (400, 503; 413 where there is a body).
#[test]
fn shared_header_and_answers_are_documented() {
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    for rpc in rpcs() {
        let op = &doc["paths"][rpc.path][rpc.http.as_str().to_ascii_lowercase().as_str()];
        let headers: Vec<&serde_json::Value> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "header" && p["name"] == "x-zitadel-orgid")
            .collect();
        assert_eq!(headers.len(), usize::from(rpc.org_scoped), "x-zitadel-orgid of {}", rpc.full_name());
        if let Some(header) = headers.first() {
            assert_eq!(header["required"], false, "{header}");
            assert_eq!(header["schema"]["type"], "string", "{header}");
        }
        let responses = &op["responses"];
        for status in ["400", "503"] {
            assert!(responses.get(status).is_some(), "{} documents no {status}", rpc.full_name());
        }
        let retry_after = &responses["503"]["headers"]["Retry-After"];
        assert_eq!(retry_after["schema"]["type"], "integer", "Retry-After of {}'s 503: {retry_after}", rpc.full_name());
        assert_eq!(responses.get("413").is_some(), op.get("requestBody").is_some(), "413 of {}", rpc.full_name());
        // What a request/response execution's target can fail an interceptable call with.
        if actionsd::api::interceptable(rpc.service) {
            for status in ["401", "403", "404", "409", "429", "504"] {
                assert!(responses.get(status).is_some(), "{} documents no {status}", rpc.full_name());
            }
        }
    }
}

/// A free-form member (a trigger's context, effects, a ZITADEL payload or reply) is an open
/// object, so that generated clients type it as a map of any values (a bare `{"type": "object"}`
/// reads as an object without members to some generators); only the empty messages are closed.
#[test]
fn free_form_members_are_open_objects() {
    fn closed_objects(schema: &serde_json::Value, path: String, out: &mut Vec<String>) {
        match schema {
            serde_json::Value::Object(map) => {
                let object = map
                    .get("type")
                    .is_some_and(|t| t == "object" || t.as_array().is_some_and(|a| a.contains(&"object".into())));
                if object && !map.contains_key("properties") && !map.contains_key("additionalProperties") {
                    out.push(path.clone());
                }
                for (key, inner) in map {
                    closed_objects(inner, format!("{path}/{key}"), out);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    closed_objects(inner, format!("{path}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    let mut closed = Vec::new();
    closed_objects(&doc, String::new(), &mut closed);
    let empty_messages =
        ["/components/schemas/Empty", "/components/schemas/ListActionSecretsRequest", "/components/schemas/RestAsync"];
    assert_eq!(closed, empty_messages, "objects without members that are not empty messages");
    let schemas = &doc["components"]["schemas"];
    for open in [
        &schemas["ExecuteFlowTriggerRequest"]["properties"]["context"],
        &schemas["ExecuteFlowTriggerResponse"]["properties"]["effects"],
        &schemas["TestConnectionCallResponse"]["properties"]["pendingApiEffects"]["items"],
    ] {
        assert_eq!(open["additionalProperties"], serde_json::json!({}), "{open}");
    }
}

#[test]
fn wire_types_are_strings_where_protojson_says_so() {
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["ObjectDetails"]["properties"]["sequence"]["type"], "string");
    assert_eq!(schemas["ListDetails"]["properties"]["totalResult"]["type"], "string");
    assert_eq!(schemas["ListQuery"]["properties"]["offset"]["type"], "string");
    let timeout = &schemas["CreateActionRequest"]["properties"]["timeout"]["type"];
    assert!(timeout == "string" || timeout.as_array().is_some_and(|a| a.contains(&"string".into())), "{timeout}");
    assert_eq!(schemas["ActionState"]["type"], "string");
    assert!(schemas["ActionState"]["enum"].as_array().unwrap().contains(&"ACTION_STATE_ACTIVE".into()));
}

/// The request bodies Swagger UI starts "Try it out" from, where the document gives one, are
/// served in the document and accepted by the server as they stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_examples_are_accepted_as_they_stand() {
    let s = crate::common::TestServer::sqlite().await;
    // Path ids of objects that exist: a target, and a connection.
    let target = s
        .post(
            "/v2/actions/targets",
            &s.admin,
            serde_json::json!({"name": "example-target", "restWebhook": {}, "timeout": "5s", "endpoint": "https://example.com/hook"}),
        )
        .await;
    let target = target.body["id"].as_str().expect("target id").to_string();
    let connection =
        s.post("/connector/v1/connections", &s.admin, serde_json::json!({"name": "example-connection"})).await;
    let connection = connection.body["id"].as_str().expect("connection id").to_string();
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    for (id, example) in openapi::request_examples() {
        let (path, method, op) = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| item.as_object().unwrap().iter().map(move |(m, op)| (path, m, op)))
            .find(|(_, _, op)| op["operationId"] == id)
            .unwrap_or_else(|| panic!("no operation {id}"));
        assert_eq!(op["requestBody"]["content"]["application/json"]["example"], example, "{id}");
        let path = path
            .replace("{flowType}", "2")
            .replace("{triggerType}", "4")
            .replace("{targetId}", &target)
            .replace("{id}", if id.starts_with("ActionService_") { &target } else { &connection });
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let r = s.call(method, &path, Some(&s.admin), &[], Some(example)).await;
        assert_eq!(r.status, 200, "{id}: {r:?}");
    }
    s.stop().await;
}

/// Every error answer an operation declares shows an example of its own status (Swagger UI shows
/// it as the body to expect): the gRPC code that goes with the status, as the server writes it.
#[test]
fn error_answers_show_examples_of_their_own_status() {
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    let code_of = |status: &str| match status {
        "400" => Some(3),
        "401" => Some(16),
        "403" => Some(7),
        "404" => Some(5),
        "408" | "504" => Some(4),
        "409" => Some(6),
        "413" | "429" => Some(8),
        "501" => Some(12),
        "503" => Some(14),
        _ => None,
    };
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(code) = code_of(status) else { continue };
                let content = &response["content"]["application/json"];
                if content.is_null() {
                    continue;
                }
                let example = &content["example"];
                if status == "404" && example.is_null() {
                    continue;
                }
                assert_eq!(example["code"], code, "{method} {path} {status}: {example}");
                assert!(example["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path} {status}");
                seen += 1;
            }
        }
    }
    assert!(seen > 200, "{seen}");
    // ZITADEL's signed call has its own errors.
    let call = &doc["paths"]["/connector/v1/connections/{id}/call"]["post"]["responses"];
    assert_eq!(call["401"]["content"]["application/json"]["example"]["details"][0]["id"], "CONN-s1gn4", "{call}");
    assert_eq!(call["400"]["content"]["application/json"]["example"]["details"][0]["id"], "CONN-b0dy1", "{call}");
}

/// Every operation is listed under its service (Swagger UI groups by tag), and the REST-only
/// endpoints that act in an organization take `x-zitadel-orgid` like the RPCs.
#[test]
fn every_operation_has_its_service_tag() {
    let doc: serde_json::Value = serde_json::from_str(&openapi::json()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let tags = op["tags"].as_array().unwrap_or_else(|| panic!("{method} {path} has no tag"));
            let id = op["operationId"].as_str().unwrap();
            assert_eq!(tags, &vec![serde_json::Value::from(id.split('_').next().unwrap())], "{method} {path}");
        }
    }
    let tail = &doc["paths"]["/management/v1/runs/_tail"]["get"]["parameters"];
    assert!(tail.as_array().unwrap().iter().any(|p| p["name"] == "x-zitadel-orgid"), "{tail}");
}
