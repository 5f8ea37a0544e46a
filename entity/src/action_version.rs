use sea_orm::entity::prelude::*;

/// One recorded content of an action (name, script, timeout, allowedToFail), numbered from 1.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "action_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub action_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub version: i64,
    pub org_id: i64,
    pub name: String,
    pub script: String,
    pub timeout_nanos: i64,
    pub allowed_to_fail: bool,
    /// The sequence and time of the event that recorded it.
    pub sequence: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
