//! Actions v2 at run time: calling targets, payload encoding and signing, and the durable
//! delivery queue. The CRUD side lives in `api::action_v2` and `store::targets`.

pub mod bench;
pub mod call;
pub mod functions;
pub mod jose;
pub mod payload;
pub mod queue;
pub mod registry;

use std::sync::Arc;

/// What v2 needs at run time, shared by every request.
pub struct V2 {
    /// The deployment's instance id (`instanceID` in payloads).
    pub instance_id: String,
    /// Signing keys for JWT payloads and the JWKS.
    pub keys: payload::KeyState,
    /// One HTTP client for every target call (SSRF guard on resolved addresses and redirects).
    pub client: reqwest::Client,
    pub policy: Arc<crate::runtime::http::NetPolicy>,
    /// Executions and targets, cached for interception and functions.
    pub registry: registry::Registry,
}
