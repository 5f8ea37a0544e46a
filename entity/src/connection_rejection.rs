use sea_orm::entity::prelude::*;

/// A refused connector call (the last 20 per connection are kept; never the body).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "connection_rejections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub connection_id: i64,
    pub at: i64,
    pub reason: String,
    pub remote_addr: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
