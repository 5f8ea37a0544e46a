use sea_orm::entity::prelude::*;

/// An organization's action settings (absent: the defaults, recording off, retention one day).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: i64,
    /// Whether `_execute` and connector calls record their input context for replay.
    pub record_contexts: bool,
    /// How long recorded contexts are kept, in seconds.
    pub retention_secs: i64,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
