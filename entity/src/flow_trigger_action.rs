use sea_orm::entity::prelude::*;

/// One action bound to one trigger of one flow, at a position in the trigger's ordered list.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "flow_trigger_actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub flow_type: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub trigger_type: i32,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub action_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::action::Entity", from = "Column::ActionId", to = "super::action::Column::Id")]
    Action,
}

impl Related<super::action::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Action.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
