use sea_orm::entity::prelude::*;

/// An Actions v2 target (instance-scoped). The signing key is stored encrypted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "targets")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub target_type: crate::enums::TargetKind,
    pub interrupt_on_error: bool,
    pub endpoint: String,
    pub timeout_nanos: i64,
    /// Unspecified is stored as JSON.
    pub payload_type: crate::enums::PayloadType,
    /// `v1:` + base64(nonce || AES-256-GCM ciphertext) of the signing key.
    pub signing_key_enc: String,
    /// The key replaced by the last rotation, still valid until `previous_key_expires_at`.
    pub previous_key_enc: Option<String>,
    pub previous_key_expires_at: Option<i64>,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
