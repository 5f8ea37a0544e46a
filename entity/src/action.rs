use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "actions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    /// NFC + simple case folding of `name`, for uniqueness and case-insensitive search.
    pub name_folded: String,
    pub script: String,
    /// As given; 0 means "the current maximum".
    pub timeout_nanos: i64,
    pub allowed_to_fail: bool,
    pub state: crate::enums::ActionState,
    pub sequence: i64,
    pub created_at: i64,
    pub changed_at: i64,
    /// The current version (see `action_version`), from 1.
    pub version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::org::Entity", from = "Column::OrgId", to = "super::org::Column::Id")]
    Org,
}

impl Related<super::org::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Org.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
