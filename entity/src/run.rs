use sea_orm::entity::prelude::*;

/// One action run of an `_execute` call (the run log).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    /// The `_execute` call this run belongs to.
    pub run_id: i64,
    pub org_id: i64,
    pub action_id: i64,
    pub action_name: String,
    pub flow_type: i32,
    pub trigger_type: i32,
    pub outcome: crate::enums::Outcome,
    pub allowed_to_fail: bool,
    pub error: String,
    pub started_at: i64,
    pub duration_nanos: i64,
    /// JSON array of `{level, message, time}`.
    pub logs: String,
    pub http_calls: i32,
    pub log_records: i32,
    pub log_bytes: i32,
    /// The connector connection whose call ran this (None for `_execute`).
    pub connection_id: Option<i64>,
    /// A connector call's condition (`function/<name>`, `request/<method>`, `event/<type>`).
    pub condition: Option<String>,
    /// JSON array of warnings of the call (lookups that failed, effects not applied).
    pub warnings: Option<String>,
    /// The version of the action that ran (None for an inline `_test` script and older records).
    pub action_version: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
