use sea_orm::entity::prelude::*;

/// The input context of one `_execute` or connector call (redacted), kept for replay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "recorded_contexts")]
pub struct Model {
    /// The call's run id (time-ordered: newest first is descending).
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: i64,
    pub org_id: i64,
    pub flow_type: i32,
    pub trigger_type: i32,
    /// The context as JSON text.
    pub context: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
