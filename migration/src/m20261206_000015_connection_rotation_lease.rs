use sea_orm_migration::prelude::*;

/// A key rotation of a connection calls ZITADEL and then stores the key it returned; two at once
/// could store ZITADEL's keys in the order its answers arrived rather than the order it issued
/// them, and lose the key it signs with. `rotating_until` marks a rotation in flight (on every
/// replica); it lapses by itself if the process running it dies.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    RotatingUntil,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Connections::Table)
                .add_column(ColumnDef::new(Connections::RotatingUntil).big_integer().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Connections::Table).drop_column(Connections::RotatingUntil).to_owned()).await
    }
}
