use sea_orm::entity::prelude::*;

/// A ZITADEL connector connection: one ZITADEL target that calls actionsd. Secrets (signing keys,
/// the ZITADEL API token, the JWE private key) are stored encrypted and never returned.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub state: crate::enums::ConnectionState,
    /// JSON array of `{"enc": <encrypted key>, "expiresAt": <µs>|null}` (at most two valid at once).
    pub signing_keys: String,
    pub timestamp_tolerance_nanos: i64,
    pub call_timeout_nanos: i64,
    pub fail_mode: crate::enums::FailMode,
    pub default_org_id: Option<i64>,
    pub zitadel_base_url: Option<String>,
    pub zitadel_token_enc: Option<String>,
    pub zitadel_target_id: Option<String>,
    /// Comma-separated PAYLOAD_TYPE_* numbers the connection accepts.
    pub payload_types: String,
    pub jwe_private_key_enc: Option<String>,
    pub jwe_public_key_pem: Option<String>,
    pub calls: i64,
    pub rejected: i64,
    pub failed: i64,
    pub last_call_at: Option<i64>,
    pub last_error: String,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
    /// While a key rotation is in flight: when its claim lapses (µs), so that a second rotation is
    /// refused meanwhile on every replica.
    pub rotating_until: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
