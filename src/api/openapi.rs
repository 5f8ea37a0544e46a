//! The OpenAPI 3.1 document of the REST gateway paths, one operation per RPC.

use super::messages;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "actionsd",
        description = "A standalone, ZITADEL-compatible identity actions server. Every RPC is also reachable as \
            Connect unary JSON at `POST /<package.Service>/<Method>` (`zitadel.management.v1.ManagementService`, \
            `zitadel.admin.v1.AdminService`, `zitadel.action.v2.ActionService`, \
            `actionsd.connector.v1.ConnectorService`), and over gRPC and gRPC-web. Five operations are REST \
            only: the trigger documents (types.d.ts and the two JSON Schemas), the live tail of runs and \
            the connector's call endpoint.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(messages::GatewayError, messages::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
    tags(
        (name = "ManagementService", description = "Actions, flows and triggers, organizations"),
        (name = "AdminService", description = "Instance administration: organizations and API tokens"),
        (name = "ActionService", description = "Actions v2: targets, their public keys, executions and deliveries \
            (instance-wide, IAM_OWNER only)"),
        (name = "ConnectorService", description = "The ZITADEL connector: connections (one per ZITADEL target) and \
            their organization links (instance-wide, IAM_OWNER only)"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document: the static parts above, and one operation per RPC of the RPC table (each
    /// read from its handler's `#[utoipa::path]`) with the schemas it refers to.
    pub fn openapi_doc() -> utoipa::openapi::OpenApi {
        let mut doc = <Self as OpenApi>::openapi();
        let mut paths = utoipa::openapi::path::PathsBuilder::new();
        let components = doc.components.get_or_insert_with(Default::default);
        let examples = request_examples();
        for rpc in super::rpcs() {
            let mut d = (rpc.doc)();
            shared_parts(&mut d.operation, rpc.org_scoped, super::interceptable(rpc.service));
            request_example(&mut d.operation, &examples);
            paths = paths.path(d.path, utoipa::openapi::path::PathItem::new(d.method, d.operation));
            components.schemas.extend(d.schemas);
        }
        // The REST-only endpoints, with their service's tag and the same shared parts (the four
        // org-scoped ones take `x-zitadel-orgid` like the RPCs).
        let rest_only = [
            (super::doc_of::<super::connector_call::__path_call_doc>(), false),
            (super::doc_of::<super::tail::__path_tail_doc>(), true),
            (super::doc_of::<super::types::__path_types_doc>(), true),
            (super::doc_of::<super::types::__path_context_schema_doc>(), true),
            (super::doc_of::<super::types::__path_effects_schema_doc>(), true),
        ];
        for (mut d, org_scoped) in rest_only {
            shared_parts(&mut d.operation, org_scoped, false);
            paths = paths.path(d.path, utoipa::openapi::path::PathItem::new(d.method, d.operation));
            components.schemas.extend(d.schemas);
        }
        components.schemas.extend(tail_schemas());
        doc.paths = paths.build();
        doc
    }
}

/// What every operation shares, added to each rather than repeated in each handler's annotation:
/// the organization header of the org-scoped ones (so that Swagger UI and generated clients can
/// choose an organization), and the answers any of them may give: 400 (a malformed body or
/// parameter), where there is a body 408 (it arrived too slowly), 413 (over 1 MiB) and 501 (a
/// compressed one), and 503 (the database or the sandbox unavailable, with `Retry-After`).
fn shared_parts(operation: &mut utoipa::openapi::path::Operation, org_scoped: bool, interceptable: bool) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Ref, Required, ResponseBuilder, Type};
    if org_scoped {
        let header = ParameterBuilder::new()
            .name("x-zitadel-orgid")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The organization to act in (an IAM_OWNER token: any organization; an ORG_* token: only its own). \
                 Without it, the token's own organization.",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        operation.parameters.get_or_insert_with(Vec::new).push(header);
    }
    let error = |description: &str| {
        ResponseBuilder::new().description(description).content("application/json", {
            utoipa::openapi::ContentBuilder::new().schema(Some(Ref::from_schema_name("GatewayError"))).build()
        })
    };
    let responses = &mut operation.responses.responses;
    responses.entry("400".into()).or_insert_with(|| error("Invalid argument (code 3)").build().into());
    if operation.request_body.is_some() {
        for (status, what) in [
            (
                "408",
                "The request body did not arrive within `ACTIONSD_REQUEST_READ_TIMEOUT` (code 4, `{code, message}`)",
            ),
            ("413", "The request body is larger than 1 MiB (`{code, message}`)"),
            ("501", "The request body has a `Content-Encoding` other than identity (code 12)"),
        ] {
            responses.entry(status.into()).or_insert_with(|| error(what).build().into());
        }
    }
    responses.entry("503".into()).or_insert_with(|| {
        error("The database or the sandbox is unavailable (code 14); `Retry-After` says when to try again")
            .build()
            .into()
    });
    if let Some(utoipa::openapi::RefOr::T(unavailable)) = responses.get_mut("503") {
        let seconds = utoipa::openapi::HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
            .description(Some("Seconds to wait before trying again"))
            .build();
        unavailable.headers.insert("Retry-After".into(), seconds);
    }
    // A request or response execution's target that interrupts on error fails the call with its
    // own status (a forwarded error keeps its kind) or, when it times out, with 504.
    if interceptable {
        let by_target = "A request/response execution's target failed the call (`Errors.Execution.Forwarded`)";
        for (status, what) in [
            ("404", format!("Not found (code 5), or: {by_target}")),
            ("409", format!("Conflict (code 6), or: {by_target}")),
            ("429", format!("Resource exhausted (code 8): {by_target}")),
            (
                "504",
                "A request/response execution's target did not answer in time (code 4, `Errors.Execution.Timeout`)"
                    .to_string(),
            ),
        ] {
            responses.entry(status.into()).or_insert_with(|| error(&what).build().into());
        }
    }
    error_examples(operation);
}

/// An example body for each error status an operation declares (after the shared ones are
/// added), built from the server's own errors, so that Swagger UI shows a 503's body with code 14
/// rather than the schema's generic sample (a 404's). A 404 keeps the schema's sample, which is one.
fn error_examples(operation: &mut utoipa::openapi::path::Operation) {
    use crate::error::{ApiError, Kind};
    // ZITADEL's call to a connection is signed, not authenticated by token, and its body is
    // ZITADEL's payload: its own 400 and 401.
    let connector_call = operation.operation_id.as_deref() == Some("ConnectorService_Call");
    let example =
        |status: &str| -> Option<serde_json::Value> {
            Some(match status {
                "400" if connector_call => {
                    ApiError::new(Kind::InvalidArgument, "CONN-b0dy1", "the body is not a JSON object").gateway_body()
                }
                "401" if connector_call => {
                    ApiError::new(Kind::Unauthenticated, "CONN-s1gn4", "signature check failed: bad signature")
                        .gateway_body()
                }
                "400" => ApiError::invalid(
                    "invalid CreateActionRequest.Name: value length must be between 1 and 200 runes, inclusive",
                )
                .gateway_body(),
                "401" => ApiError::new(Kind::Unauthenticated, "AUTH-7fs1e", "auth header missing").gateway_body(),
                "403" => {
                    ApiError::new(Kind::PermissionDenied, "AUTH-5mWD2", "No matching permissions found").gateway_body()
                }
                "408" => super::gateway_error_body(&super::body_too_slow(crate::domain::Duration::from_secs(30))),
                "409" => ApiError::new(Kind::AlreadyExists, "V3-DKcYh", "Name already used in this organization")
                    .gateway_body(),
                "413" => super::gateway_error_body(&super::body_too_large()),
                "429" => ApiError::new(Kind::ResourceExhausted, "Errors.Execution.Forwarded", "quota exceeded")
                    .gateway_body(),
                "501" => super::grpc::unsupported_encoding("gzip").gateway_body(),
                "503" => ApiError::new(Kind::Unavailable, "STORE-Unav1", "Database unavailable, try again later")
                    .gateway_body(),
                "504" => ApiError::new(
                    Kind::DeadlineExceeded,
                    "Errors.Execution.Timeout",
                    "target checks did not answer within its timeout",
                )
                .gateway_body(),
                _ => return None,
            })
        };
    for (status, response) in operation.responses.responses.iter_mut() {
        let (utoipa::openapi::RefOr::T(response), Some(example)) = (response, example(status)) else { continue };
        if let Some(content) = response.content.get_mut("application/json") {
            if content.example.is_none() && content.examples.is_empty() {
                content.example = Some(example);
            }
        }
    }
}

/// Request bodies that Swagger UI's "Try it out" starts from where its own sample would be
/// refused: it fills every branch of a oneof (`null` each) and puts one empty entry in each filter
/// list. One branch chosen, valid as they stand (a test sends each one).
pub fn request_examples() -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "ActionService_ListTargets",
            json!({"pagination": {"limit": 100, "asc": true}, "sortingColumn": "TARGET_FIELD_NAME_NAME",
                "filters": [{"targetNameFilter": {"targetName": "hook", "method": "TEXT_FILTER_METHOD_CONTAINS"}}]}),
        ),
        (
            "ActionService_CreateTarget",
            json!({"name": "audit-hook", "restWebhook": {"interruptOnError": false}, "timeout": "10s",
                "endpoint": "https://hooks.example.com/zitadel"}),
        ),
        (
            "ActionService_ListExecutions",
            json!({"pagination": {"limit": 100},
                "filters": [{"executionTypeFilter": {"executionType": "EXECUTION_TYPE_REQUEST"}}]}),
        ),
        (
            "ActionService_SetExecution",
            json!({"condition": {"request": {"method": "/zitadel.management.v1.ManagementService/CreateAction"}},
                "targets": []}),
        ),
        (
            "ActionService_ListDeliveries",
            json!({"pagination": {"limit": 100}, "filters": [{"stateFilter": {"state": "DELIVERY_STATE_FAILED"}}]}),
        ),
        (
            "ManagementService_ListActions",
            json!({"query": {"limit": 100, "asc": true}, "sortingColumn": "ACTION_FIELD_NAME_NAME",
                "queries": [{"actionNameQuery": {"name": "claims", "method": "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"}}]}),
        ),
        (
            "ManagementService_ListRuns",
            json!({"query": {"limit": 20}, "queries": [{"outcomeQuery": {"outcome": "OUTCOME_FAILED"}}]}),
        ),
        (
            "ConnectorService_ListConnections",
            json!({"query": {"limit": 100},
                "queries": [{"connectionNameQuery": {"name": "zitadel", "method": "TEXT_QUERY_METHOD_CONTAINS"}}]}),
        ),
        (
            "ManagementService_TestAction",
            json!({"name": "addClaim", "script": "function addClaim(ctx, api) { api.v1.claims.setClaim('hello', 'world'); }",
                "flowType": "2", "triggerType": "4", "context": {}}),
        ),
        (
            "ManagementService_ReplayTrigger",
            json!({"draft": {"name": "addClaim",
                "script": "function addClaim(ctx, api) { api.v1.claims.setClaim('hello', 'world'); }"}, "last": 10}),
        ),
        ("AdminService_ListTokens", json!({"query": {"limit": 100}})),
        (
            "AdminService_ListOrgs",
            json!({"query": {"limit": 100}, "sortingColumn": "ORG_FIELD_NAME_NAME",
                "queries": [{"nameQuery": {"name": "acme", "method": "TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE"}}]}),
        ),
        // Only what changes: a field left out keeps its value (a present `expirationSigningKey`
        // would rotate the signing key).
        ("ActionService_UpdateTarget", json!({"timeout": "15s", "endpoint": "https://hooks.example.com/zitadel-v2"})),
        (
            "ConnectorService_CreateConnection",
            json!({"name": "zitadel-prod", "signingKeys": ["paste-the-signing-key-zitadel-gave-its-target"],
                "failMode": "FAIL_MODE_CLOSED"}),
        ),
        (
            "ConnectorService_UpdateConnection",
            json!({"name": "zitadel-prod-eu", "signingKeys": ["paste-the-signing-key-zitadel-gave-its-target"],
                "callTimeout": "10s"}),
        ),
        (
            "ActionService_AddPublicKey",
            // A P-256 public key (PEM, base64), made for this example.
            json!({"publicKey": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0KTUZrd0V3WUhLb1pJemowQ0FRWUlLb1pJemowREFRY0RRZ0FFRk15VkhjNmdhdXEycktSN0Q2QlFjc21VbmkyaApwSmVjbEhPaE1tVHdTZlMzaUNJNlZucUhpcTN5dFgweWJTSzFNaStJL0UvMFhRSmZqdEMxUlllYTVBPT0KLS0tLS1FTkQgUFVCTElDIEtFWS0tLS0tCg==", "expirationDate": "2099-01-01T00:00:00Z"}),
        ),
    ]
}

fn request_example(operation: &mut utoipa::openapi::path::Operation, examples: &[(&str, serde_json::Value)]) {
    let Some(id) = operation.operation_id.as_deref() else { return };
    let Some((_, example)) = examples.iter().find(|(op, _)| *op == id) else { return };
    if let Some(content) = operation.request_body.as_mut().and_then(|b| b.content.get_mut("application/json")) {
        content.example = Some(example.clone());
    }
}

/// The schemas the live tail's event refers to (it is not in the RPC table).
fn tail_schemas() -> Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)> {
    let mut schemas = Vec::new();
    <super::tail::__path_tail_doc as utoipa::__dev::SchemaReferences>::schemas(&mut schemas);
    schemas
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An actionsd API token (see `actionsd token create`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "zitadelSignature",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "ZITADEL-Signature",
                    "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\" under the connection's signing key>",
                ),
            )),
        );
    }
}

/// The document as pretty JSON with a trailing newline (what `openapi/openapi.json` holds).
pub fn json() -> String {
    let mut s = ApiDoc::openapi_doc().to_pretty_json().expect("OpenAPI serializes");
    s.push('\n');
    s
}
