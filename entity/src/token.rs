use sea_orm::entity::prelude::*;

/// An API token. Only the SHA-256 hash of the secret is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub org_id: i64,
    pub role: String,
    pub description: String,
    pub expires_at: Option<i64>,
    /// Set on the token registered from ACTIONSD_ADMIN_TOKEN or generated at first start.
    pub is_bootstrap: bool,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
