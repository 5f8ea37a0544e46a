use sea_orm::entity::prelude::*;

/// One outgoing call of the durable queue (event executions and restAsync targets).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    /// Also the `webhook-id` sent on every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    /// 0 for a delivery of a connection (`connection_id`).
    pub target_id: i64,
    /// Set for the effects a connector call applies through ZITADEL's API.
    pub connection_id: Option<i64>,
    pub execution_id: String,
    pub event_type: Option<String>,
    /// Deliveries of one (target, aggregate) go out in `seq` order.
    pub aggregate_key: String,
    pub seq: i64,
    /// The JSON payload, fixed at creation so that every retry sends the same body.
    pub payload: String,
    pub state: crate::enums::DeliveryState,
    pub attempts: i32,
    pub last_status: i32,
    pub last_error: String,
    pub next_attempt_at: i64,
    /// A claimed delivery belongs to `lease_owner` (a node number) until this time; 0 = unclaimed.
    pub lease_until: i64,
    pub lease_owner: i64,
    pub created_at: i64,
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
