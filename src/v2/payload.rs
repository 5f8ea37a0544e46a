//! Payload encoding (JSON, JWT, JWE) and the signing keys of a target.

use super::jose::{self, SigningKey};
use crate::error::{ApiError, ApiResult, Kind};
use crate::store::Store;
use entity::enums::PayloadType;
use entity::target;

/// Where the instance signing key lives (encrypted PKCS#8 PEM) in the settings table.
pub const SIGNING_KEY_SETTING: &str = "instance_signing_key";

/// The instance's own keys (JWT signing; published as JWKS at `GET /oauth/v2/keys`).
pub struct KeyState {
    signing: SigningKey,
}

impl KeyState {
    /// Loads the instance signing key, creating it at first start (once across replicas: the
    /// first committed insert wins and every replica then reads that one).
    pub async fn load(store: &Store, encryption_key: &str) -> anyhow::Result<KeyState> {
        let stored = match crate::store::orgs::get_setting(&store.db, SIGNING_KEY_SETTING)
            .await
            .map_err(|e| anyhow::anyhow!("reading the instance signing key: {e}"))?
        {
            Some(v) => v,
            None => {
                let fresh = tokio::task::spawn_blocking(SigningKey::generate).await?.map_err(anyhow::Error::msg)?;
                let pem = fresh.to_pkcs8_pem().map_err(anyhow::Error::msg)?;
                let sealed = crate::store::crypto::encrypt(encryption_key, &pem).map_err(anyhow::Error::msg)?;
                insert_setting_once(store, SIGNING_KEY_SETTING, sealed)
                    .await
                    .map_err(|e| anyhow::anyhow!("storing the instance signing key: {e}"))?
            }
        };
        let pem = open_sealed(encryption_key, &stored)?;
        let signing = SigningKey::from_pkcs8_pem(&pem).map_err(anyhow::Error::msg)?;
        Ok(KeyState { signing })
    }

    /// Whether `encryption_key` opens the instance signing key, when one is stored: checked at
    /// start before anything is written, since a server given another key could read nothing
    /// the old one sealed.
    pub async fn check_key(store: &Store, encryption_key: &str) -> anyhow::Result<()> {
        let stored = crate::store::orgs::get_setting(&store.db, SIGNING_KEY_SETTING)
            .await
            .map_err(|e| anyhow::anyhow!("reading the instance signing key: {e}"))?;
        match stored {
            Some(sealed) => Self::check_sealed(encryption_key, &sealed),
            None => Ok(()),
        }
    }

    /// Whether `encryption_key` opens the sealed instance signing key `sealed`.
    pub fn check_sealed(encryption_key: &str, sealed: &str) -> anyhow::Result<()> {
        open_sealed(encryption_key, sealed).map(|_| ())
    }

    /// The JWKS document (`{"keys": [...]}`).
    pub fn jwks(&self) -> serde_json::Value {
        serde_json::json!({"keys": [self.signing.jwk()]})
    }

    /// The key id of the instance signing key (`kid` of JWT payloads and in the JWKS).
    pub fn kid(&self) -> &str {
        self.signing.kid()
    }

    /// A compact JWS (RS256) over `payload` as is.
    pub fn sign_jwt(&self, payload: &[u8]) -> ApiResult<String> {
        self.signing.sign_jwt(payload).map_err(ApiError::internal)
    }
}

fn open_sealed(encryption_key: &str, sealed: &str) -> anyhow::Result<String> {
    crate::store::crypto::decrypt(encryption_key, sealed)
        .map_err(|e| anyhow::anyhow!("the instance signing key cannot be read: {e}"))
}

/// Inserts a setting unless it exists (inside a write transaction under the instance lock, and
/// with ON CONFLICT DO NOTHING); returns the value stored afterwards, ours or a concurrent one.
async fn insert_setting_once(store: &Store, key: &'static str, value: String) -> ApiResult<String> {
    use entity::setting;
    use sea_orm::{sea_query::OnConflict, EntityTrait, Set};
    store
        .write(&[crate::store::INSTANCE_LOCK.to_string()], move |txn| {
            Box::pin(async move {
                setting::Entity::insert(setting::ActiveModel { key: Set(key.to_string()), value: Set(value) })
                    .on_conflict(OnConflict::column(setting::Column::Key).do_nothing().to_owned())
                    .exec_without_returning(txn)
                    .await?;
                crate::store::orgs::get_setting(txn, key)
                    .await?
                    .ok_or_else(|| ApiError::internal("the setting vanished after its insert"))
            })
        })
        .await
}

/// A body ready to send.
pub struct Encoded {
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// The signing keys valid at `now` (µs): the current one first, then the keys replaced by
/// rotations while their grace periods last, most recently replaced first.
pub fn signing_keys(encryption_key: &str, t: &target::Model, now: i64) -> ApiResult<Vec<String>> {
    let current = crate::store::crypto::decrypt(encryption_key, &t.signing_key_enc)
        .map_err(|e| ApiError::internal(format!("target {} ({:?}): its signing key: {e}", t.id, t.name)))?;
    let mut keys = vec![current];
    if t.previous_key_expires_at.is_some_and(|until| now < until) {
        let previous = crate::store::targets::previous_keys(encryption_key, t)?;
        keys.extend(previous.into_iter().filter(|k| now < k.until).map(|k| k.key));
    }
    Ok(keys)
}

pub fn no_active_key() -> ApiError {
    ApiError::new(
        Kind::FailedPrecondition,
        "Errors.Target.NoActiveKey",
        "The target's payload type is JWE but it has no active, unexpired public key",
    )
}

/// Encodes a JSON payload as the target's payload type asks: JSON as is, a JWT signed with the
/// instance key, or that JWT encrypted (JWE) to the target's active, unexpired public key.
pub async fn encode(store: &Store, keys: &KeyState, t: &target::Model, json: Vec<u8>) -> ApiResult<Encoded> {
    match t.payload_type {
        PayloadType::Jwt => Ok(Encoded { body: keys.sign_jwt(&json)?.into_bytes(), content_type: "application/jwt" }),
        PayloadType::Jwe => {
            let now = crate::domain::time::now_micros();
            let key = crate::store::targets::active_key(&store.db, t.id, now).await?.ok_or_else(no_active_key)?;
            let parsed = jose::parse_public_key_pem(&key.public_key).map_err(ApiError::internal)?;
            let jwt = keys.sign_jwt(&json)?;
            let jwe = jose::encrypt_jwe(&parsed.key, &key.id.to_string(), Some("JWT"), jwt.as_bytes())
                .map_err(ApiError::internal)?;
            Ok(Encoded { body: jwe.into_bytes(), content_type: "application/jose" })
        }
        PayloadType::Json => Ok(Encoded { body: json, content_type: "application/json" }),
    }
}
