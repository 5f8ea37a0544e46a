use sea_orm_migration::prelude::*;

/// Run records of connector calls say which connection and condition ran them, and carry the
/// call's warnings (JSON array). Nullable: `_execute` runs have none. One column per statement
/// (SQLite alters one column at a time).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    ConnectionId,
    Condition,
    Warnings,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Runs::Table)
                .add_column(ColumnDef::new(Runs::ConnectionId).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(Runs::Table).add_column(ColumnDef::new(Runs::Condition).text().null()).to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter().table(Runs::Table).add_column(ColumnDef::new(Runs::Warnings).text().null()).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [Runs::Warnings, Runs::Condition, Runs::ConnectionId] {
            m.alter_table(Table::alter().table(Runs::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}
