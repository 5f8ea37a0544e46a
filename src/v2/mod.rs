//! Actions v2 at run time: payload encoding and signing, one signed call, the function
//! payload/reply mappings and the execution registry. Chains of targets and the durable delivery
//! queue are use cases in `service`; the CRUD side lives in `api::action_v2` and `store::targets`.

pub mod bench;
pub mod call;
pub mod functions;
pub mod gojson;
pub mod jose;
pub mod payload;
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

impl V2 {
    /// Loads the instance id and signing keys and builds the guarded HTTP client.
    pub async fn load(store: &crate::store::Store, config: &crate::config::Config) -> anyhow::Result<V2> {
        let policy = Arc::new(
            crate::runtime::http::NetPolicy::parse(&config.http_deny_list, &config.http_allow_list)
                .map_err(|e| anyhow::anyhow!("invalid HTTP deny/allow list: {e}"))?,
        );
        if config.http_deny_list.split(',').all(|entry| entry.trim().is_empty()) {
            tracing::warn!(
                "ACTIONSD_HTTP_DENY_LIST is empty: actions' fetch, targets and the connector may reach any \
                 address, private and loopback ones and cloud metadata services included"
            );
        }
        let client = crate::runtime::http::async_client(policy.clone(), None).map_err(|e| anyhow::anyhow!(e))?;
        let instance_id = crate::store::tokens::instance_id(&store.db).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let keys = payload::KeyState::load(store, config.encryption_key.as_deref().unwrap_or("")).await?;
        Ok(V2 { instance_id, keys, client, policy, registry: Default::default() })
    }
}
