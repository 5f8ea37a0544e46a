use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Targets {
    Table,
    Id,
    Name,
    TargetType,
    InterruptOnError,
    Endpoint,
    TimeoutNanos,
    PayloadType,
    SigningKeyEnc,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Executions {
    Table,
    Id,
    Targets,
    Sequence,
    CreatedAt,
    ChangedAt,
}

/// Actions v2: targets and executions (instance-scoped).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Targets::Table)
                .col(ColumnDef::new(Targets::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Targets::Name).text().not_null())
                .col(ColumnDef::new(Targets::TargetType).text().not_null())
                .col(ColumnDef::new(Targets::InterruptOnError).boolean().not_null())
                .col(ColumnDef::new(Targets::Endpoint).text().not_null())
                .col(ColumnDef::new(Targets::TimeoutNanos).big_integer().not_null())
                .col(ColumnDef::new(Targets::PayloadType).integer().not_null())
                .col(ColumnDef::new(Targets::SigningKeyEnc).text().not_null())
                .col(ColumnDef::new(Targets::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Targets::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Targets::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_targets_name").table(Targets::Table).col(Targets::Name).unique().to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Executions::Table)
                .col(ColumnDef::new(Executions::Id).text().not_null().primary_key())
                .col(ColumnDef::new(Executions::Targets).text().not_null())
                .col(ColumnDef::new(Executions::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Executions::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Executions::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Executions::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Targets::Table).to_owned()).await
    }
}
