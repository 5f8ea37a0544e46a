use sea_orm_migration::prelude::*;

/// Deliveries that apply a connector call's effects through ZITADEL's API belong to a connection
/// instead of a target (`target_id` 0). Nullable: target deliveries have none.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    ConnectionId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .add_column(ColumnDef::new(Deliveries::ConnectionId).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_deliveries_connection")
                .table(Deliveries::Table)
                .col(Deliveries::ConnectionId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_deliveries_connection").table(Deliveries::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Deliveries::Table).drop_column(Deliveries::ConnectionId).to_owned()).await
    }
}
