//! The OpenAPI 3.1 document of the REST gateway paths, one operation per RPC.

use super::{action_v2, admin, deliveries, execute, management, messages};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "actionsd",
        description = "A standalone, ZITADEL-compatible identity actions server. Every operation is also \
            reachable as Connect unary JSON at `POST /<package.Service>/<Method>`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        management::list_actions, management::get_action, management::create_action, management::update_action,
        management::deactivate_action, management::reactivate_action, management::delete_action,
        management::list_flow_types, management::list_flow_trigger_types, management::get_flow,
        management::clear_flow, management::set_trigger_actions, management::add_org, management::get_my_org,
        execute::execute_flow_trigger, execute::test_action, execute::list_runs, execute::get_run,
        admin::list_orgs, admin::add_token, admin::list_tokens, admin::remove_token,
        action_v2::create_target, action_v2::update_target, action_v2::delete_target, action_v2::get_target,
        action_v2::list_targets, action_v2::set_execution, action_v2::list_executions,
        action_v2::list_execution_functions, action_v2::list_execution_methods, action_v2::list_execution_services,
        action_v2::add_public_key, action_v2::activate_public_key, action_v2::deactivate_public_key,
        action_v2::remove_public_key, action_v2::list_public_keys,
        deliveries::list_deliveries, deliveries::retry_delivery,
    ),
    components(schemas(messages::GatewayError, messages::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearerAuth" = [])),
    tags(
        (name = "ManagementService", description = "Actions, flows and triggers, organizations"),
        (name = "AdminService", description = "Instance administration: organizations and API tokens"),
        (name = "ActionService", description = "Actions v2: targets, their public keys, executions and deliveries \
            (instance-wide, IAM_OWNER only)"),
    )
)]
pub struct ApiDoc;

impl ApiDoc {
    pub fn openapi_doc() -> utoipa::openapi::OpenApi {
        <Self as OpenApi>::openapi()
    }
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
    }
}

/// The document as pretty JSON with a trailing newline (what `openapi/openapi.json` holds).
pub fn json() -> String {
    let mut s = ApiDoc::openapi().to_pretty_json().expect("OpenAPI serializes");
    s.push('\n');
    s
}
