use sea_orm::entity::prelude::*;

/// A public key of an Actions v2 target (JWE payloads are encrypted to the active one).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "target_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub target_id: i64,
    /// The PEM `PUBLIC KEY` block as given.
    pub public_key: String,
    /// `SHA256:` + unpadded base64 of SHA-256(DER).
    pub fingerprint: String,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
