use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    RunId,
    OrgId,
    ActionId,
    ActionName,
    FlowType,
    TriggerType,
    Outcome,
    AllowedToFail,
    Error,
    StartedAt,
    DurationNanos,
    Logs,
    HttpCalls,
    LogRecords,
    LogBytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Runs::Table)
                .col(ColumnDef::new(Runs::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Runs::RunId).big_integer().not_null())
                .col(ColumnDef::new(Runs::OrgId).big_integer().not_null())
                .col(ColumnDef::new(Runs::ActionId).big_integer().not_null())
                .col(ColumnDef::new(Runs::ActionName).text().not_null())
                .col(ColumnDef::new(Runs::FlowType).integer().not_null())
                .col(ColumnDef::new(Runs::TriggerType).integer().not_null())
                .col(ColumnDef::new(Runs::Outcome).integer().not_null())
                .col(ColumnDef::new(Runs::AllowedToFail).boolean().not_null())
                .col(ColumnDef::new(Runs::Error).text().not_null())
                .col(ColumnDef::new(Runs::StartedAt).big_integer().not_null())
                .col(ColumnDef::new(Runs::DurationNanos).big_integer().not_null())
                .col(ColumnDef::new(Runs::Logs).text().not_null())
                .col(ColumnDef::new(Runs::HttpCalls).integer().not_null())
                .col(ColumnDef::new(Runs::LogRecords).integer().not_null())
                .col(ColumnDef::new(Runs::LogBytes).integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_runs_org_id").table(Runs::Table).col(Runs::OrgId).col(Runs::Id).to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_runs_run_id").table(Runs::Table).col(Runs::RunId).to_owned()).await?;
        m.create_index(Index::create().name("ix_runs_started_at").table(Runs::Table).col(Runs::StartedAt).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Runs::Table).to_owned()).await
    }
}
