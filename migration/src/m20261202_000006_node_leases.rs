use sea_orm_migration::prelude::*;

/// Node numbers (the 10 bits of every generated id that tell processes apart) held under a lease,
/// so two live processes never share one (before, each start took `nodes.id mod 1024`, which
/// repeats after 1,024 starts).
#[derive(DeriveIden)]
enum NodeLeases {
    Table,
    NodeNo,
    Owner,
    LeaseUntil,
}

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(NodeLeases::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(NodeLeases::NodeNo).big_integer().not_null().primary_key())
                    .col(ColumnDef::new(NodeLeases::Owner).big_integer().not_null())
                    .col(ColumnDef::new(NodeLeases::LeaseUntil).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(NodeLeases::Table).to_owned()).await
    }
}
