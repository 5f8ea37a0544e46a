//! `zitadel.admin.v1.AdminService`: organizations and API tokens (IAM_OWNER only).

use super::auth::Caller;

use super::management::{org_msg, Org, OrgState, TextQueryMethod};
use super::messages::{GatewayError, ListDetails, ListQuery, ObjectDetails};
use super::{AppState, BodyMode, Rpc};
use crate::domain::role::Role;
use crate::error::{ApiError, ApiResult};
use crate::proto_enum;
use crate::rpc_call;
use crate::store::actions::TextMethod;
use crate::store::orgs::OrgFilter;
use crate::store::{orgs as org_store, tokens as token_store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const SERVICE: &str = "zitadel.admin.v1.AdminService";

pub fn rpcs() -> Vec<Rpc> {
    vec![
        Rpc::instance::<__path_list_orgs>(SERVICE, BodyMode::Whole, rpc_call!(list_orgs, check = check_list_orgs)),
        Rpc::instance::<__path_add_token>(SERVICE, BodyMode::Whole, rpc_call!(add_token, check = check_add_token)),
        Rpc::instance::<__path_list_tokens>(
            SERVICE,
            BodyMode::Whole,
            rpc_call!(list_tokens, check = check_list_tokens),
        ),
        Rpc::instance::<__path_remove_token>(SERVICE, BodyMode::Ignored, rpc_call!(remove_token)),
    ]
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOrgsRequest {
    #[serde(default, deserialize_with = "super::json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
    #[serde(default, alias = "sorting_column")]
    pub sorting_column: OrgFieldName,
    /// All must match.
    #[serde(default, deserialize_with = "super::json::messages::deserialize")]
    pub queries: Vec<OrgQuery>,
}

proto_enum!(
    /// Column to sort ListOrgs by (ZITADEL numbering); unspecified sorts by id.
    OrgFieldName {
        Unspecified = 0 => "ORG_FIELD_NAME_UNSPECIFIED",
        Name = 1 => "ORG_FIELD_NAME_NAME",
    }
);

/// Exactly one of the four queries.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrgQuery {
    #[serde(default, alias = "name_query", deserialize_with = "super::json::message_opt::deserialize")]
    pub name_query: Option<OrgNameQuery>,
    /// actionsd's organizations have no domains: a domain query matches none.
    #[serde(default, alias = "domain_query", deserialize_with = "super::json::message_opt::deserialize")]
    pub domain_query: Option<OrgDomainQuery>,
    #[serde(default, alias = "state_query", deserialize_with = "super::json::message_opt::deserialize")]
    pub state_query: Option<OrgStateQuery>,
    #[serde(default, alias = "id_query", deserialize_with = "super::json::message_opt::deserialize")]
    pub id_query: Option<OrgIdQuery>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrgNameQuery {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub method: TextQueryMethod,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrgDomainQuery {
    #[serde(default)]
    pub domain: String,
    #[serde(default)]
    pub method: TextQueryMethod,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrgStateQuery {
    /// Every organization of actionsd is ORG_STATE_ACTIVE.
    #[serde(default)]
    pub state: OrgState,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OrgIdQuery {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListOrgsResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "OrgFieldName::is_zero")]
    pub sorting_column: OrgFieldName,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Org>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddTokenRequest {
    #[serde(default)]
    /// Organization id, or `default` for the default organization.
    #[serde(alias = "org_id")]
    #[schema(example = "293485729384756231")]
    pub org_id: String,
    /// A role name or its number in the `TokenRole` enum (1 IAM_OWNER … 4 ORG_EXECUTOR).
    #[serde(default, deserialize_with = "crate::api::json::enum_name_or_number::deserialize")]
    #[schema(value_type = String, example = "ORG_OWNER")]
    pub role: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    /// RFC 3339; must be in the future.
    #[serde(alias = "expiration_date")]
    #[schema(example = "2027-01-01T00:00:00Z")]
    pub expiration_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AddTokenResponse {
    pub id: String,
    /// The token secret: shown only here.
    pub token: String,
    pub details: ObjectDetails,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListTokensRequest {
    #[serde(default, deserialize_with = "super::json::message_opt::deserialize")]
    pub query: Option<ListQuery>,
    #[serde(default)]
    #[serde(alias = "org_id")]
    pub org_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub org_id: String,
    pub role: Role,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    pub details: ObjectDetails,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListTokensResponse {
    pub details: ListDetails,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub result: Vec<Token>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RemoveTokenRequest {
    #[serde(default)]
    pub id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RemoveTokenResponse {
    pub details: ObjectDetails,
}

#[utoipa::path(post, path = "/admin/v1/orgs/_search", tag = "AdminService",
    operation_id = "AdminService_ListOrgs", summary = "List organizations",
    request_body = ListOrgsRequest,
    responses((status = 200, body = ListOrgsResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError)))]
pub async fn list_orgs(s: AppState, _c: Caller, r: ListOrgsRequest) -> ApiResult<ListOrgsResponse> {
    check_list_orgs(&s, &r)?;
    let (offset, limit, asc) = ListQuery::bounds(&r.query)?;
    let filters: Vec<OrgFilter> = r
        .queries
        .into_iter()
        .filter_map(|q| {
            Some(if let Some(q) = q.name_query {
                let method = TextMethod::from_number(q.method.number()).unwrap_or(TextMethod::Equals);
                OrgFilter::Name(q.name, method)
            } else if let Some(q) = q.id_query {
                crate::domain::id::parse(&q.id).map(OrgFilter::Id).unwrap_or(OrgFilter::Nothing)
            } else if q.state_query.is_some_and(|q| q.state == OrgState::Active) {
                return None; // every organization
            } else {
                OrgFilter::Nothing // another state, or a domain
            })
        })
        .collect();
    let by_name = r.sorting_column == OrgFieldName::Name;
    let position = s.store.last_position().await?;
    let (total, rows) = org_store::list_orgs(&s.store, &filters, by_name, offset, limit, asc).await?;
    Ok(ListOrgsResponse {
        details: ListDetails::new(total, position),
        sorting_column: r.sorting_column,
        result: rows.into_iter().map(org_msg).collect(),
    })
}

async fn resolve_org(s: &AppState, raw: &str, field: &str) -> ApiResult<i64> {
    if raw.is_empty() {
        return Err(ApiError::invalid(format!("invalid {field}: value length must be at least 1 runes")));
    }
    if raw.eq_ignore_ascii_case("default") {
        return Ok(s.default_org);
    }
    let not_found = || ApiError::not_found("ADMIN-4Nf9s", "Organisation not found");
    let id = crate::domain::id::parse(raw).ok_or_else(not_found)?;
    org_store::get_org(&s.store.db, id).await?.ok_or_else(not_found)?;
    Ok(id)
}

/// The role and expiry of an AddToken request, or the 400 of its first broken rule (also run
/// before request targets).
fn token_fields(r: &AddTokenRequest) -> ApiResult<(Role, Option<i64>)> {
    // An enum as protojson reads one: its exact name, or its number (a JSON number, which the
    // field holds as its decimal digits); not "iam_owner", "04" or "+1".
    let by_name = || Role::ALL.into_iter().find(|role| role.as_str() == r.role);
    let by_number = || r.role.parse().ok().filter(|n: &i64| n.to_string() == r.role).and_then(Role::from_number);
    let role = by_name().or_else(by_number).ok_or_else(|| {
        ApiError::invalid("invalid AddTokenRequest.Role: must be one of IAM_OWNER, ORG_OWNER, ORG_VIEWER, ORG_EXECUTOR")
    })?;
    if r.description.chars().count() > 200 {
        return Err(ApiError::invalid("invalid AddTokenRequest.Description: value length must be at most 200 runes"));
    }
    let expires_at = match r.expiration_date.as_deref() {
        None | Some("") => None,
        Some(raw) => {
            let at = crate::domain::time::parse_rfc3339(raw).ok_or_else(|| {
                ApiError::invalid(format!(
                    "invalid AddTokenRequest.ExpirationDate: not an RFC 3339 timestamp of years 1 to 9999: {raw:?}"
                ))
            })?;
            if at <= crate::domain::time::now_micros() {
                return Err(ApiError::invalid("invalid AddTokenRequest.ExpirationDate: must be in the future"));
            }
            Some(at)
        }
    };
    Ok((role, expires_at))
}

fn check_add_token(_s: &AppState, r: &AddTokenRequest) -> ApiResult<()> {
    token_fields(r).map(|_| ())
}

/// The bounds, and exactly one kind per query (ZITADEL's `OrgQuery.query` is a required oneof).
fn check_list_orgs(_s: &AppState, r: &ListOrgsRequest) -> ApiResult<()> {
    ListQuery::bounds(&r.query)?;
    super::check_query_kinds(
        "ListOrgsRequest",
        "OrgQuery",
        r.queries.iter().map(|q| {
            q.name_query.is_some() as u8
                + q.domain_query.is_some() as u8
                + q.state_query.is_some() as u8
                + q.id_query.is_some() as u8
        }),
    )
}

fn check_list_tokens(_s: &AppState, r: &ListTokensRequest) -> ApiResult<()> {
    ListQuery::bounds(&r.query).map(|_| ())
}

#[utoipa::path(post, path = "/admin/v1/tokens", tag = "AdminService",
    operation_id = "AdminService_AddToken", summary = "Create an API token for an organization and role",
    request_body = AddTokenRequest,
    responses((status = 200, body = AddTokenResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Organization not found", body = GatewayError)))]
pub async fn add_token(s: AppState, c: Caller, r: AddTokenRequest) -> ApiResult<AddTokenResponse> {
    let (role, expires_at) = token_fields(&r)?;
    let org = resolve_org(&s, &r.org_id, "AddTokenRequest.OrgId").await?;
    let new = token_store::NewToken { org_id: org, role, description: r.description, expires_at, is_bootstrap: false };
    let (model, secret) = token_store::add_token(&s.store, new, c.token_id).await?;
    Ok(AddTokenResponse {
        id: model.id.to_string(),
        token: secret,
        details: ObjectDetails::written(model.sequence, model.created_at, model.org_id),
    })
}

#[utoipa::path(post, path = "/admin/v1/tokens/_search", tag = "AdminService",
    operation_id = "AdminService_ListTokens", summary = "List API tokens (never their secrets)",
    request_body = ListTokensRequest,
    responses((status = 200, body = ListTokensResponse),
        (status = 400, body = GatewayError), (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Unknown orgId (ADMIN-4Nf9s)", body = GatewayError)))]
pub async fn list_tokens(s: AppState, _c: Caller, r: ListTokensRequest) -> ApiResult<ListTokensResponse> {
    let (offset, limit, asc) = ListQuery::bounds(&r.query)?;
    let org = match r.org_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(resolve_org(&s, raw, "ListTokensRequest.OrgId").await?),
    };
    let position = s.store.last_position().await?;
    let (total, rows) = token_store::list_tokens(&s.store, org, offset, limit, asc).await?;
    let result = rows
        .into_iter()
        .map(|t| Token {
            id: t.id.to_string(),
            org_id: t.org_id.to_string(),
            role: Role::parse(&t.role).unwrap_or(Role::OrgViewer),
            description: t.description,
            expiration_date: t.expires_at.map(crate::domain::time::format_micros),
            details: ObjectDetails::read(t.sequence, t.created_at, t.changed_at, t.org_id),
        })
        .collect();
    Ok(ListTokensResponse { details: ListDetails::new(total, position), result })
}

#[utoipa::path(delete, path = "/admin/v1/tokens/{id}", tag = "AdminService",
    operation_id = "AdminService_RemoveToken", summary = "Revoke an API token at once",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = RemoveTokenResponse),
        (status = 401, body = GatewayError), (status = 403, body = GatewayError),
        (status = 404, description = "Token not found", body = GatewayError)))]
pub async fn remove_token(s: AppState, c: Caller, r: RemoveTokenRequest) -> ApiResult<RemoveTokenResponse> {
    let id = crate::domain::id::parse(&r.id).ok_or_else(|| ApiError::not_found("ADMIN-Tk4n0", "Token not found"))?;
    let (model, written) = token_store::remove_token(&s.store, id, c.token_id).await?;
    s.auth.revoke(id);
    Ok(RemoveTokenResponse { details: ObjectDetails::changed(written.sequence, written.created_at, model.org_id) })
}
