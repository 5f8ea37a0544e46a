use sea_orm_migration::prelude::*;

/// Replay: per-organization action settings (whether `_execute` and connector calls record their
/// input context, and for how long), and the recorded contexts, keyed by the call's run id.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActionSettings {
    Table,
    OrgId,
    RecordContexts,
    RetentionSecs,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum RecordedContexts {
    Table,
    RunId,
    OrgId,
    FlowType,
    TriggerType,
    Context,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ActionSettings::Table)
                .col(ColumnDef::new(ActionSettings::OrgId).big_integer().not_null().primary_key())
                .col(ColumnDef::new(ActionSettings::RecordContexts).boolean().not_null())
                .col(ColumnDef::new(ActionSettings::RetentionSecs).big_integer().not_null())
                .col(ColumnDef::new(ActionSettings::Sequence).big_integer().not_null())
                .col(ColumnDef::new(ActionSettings::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ActionSettings::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RecordedContexts::Table)
                .col(ColumnDef::new(RecordedContexts::RunId).big_integer().not_null().primary_key())
                .col(ColumnDef::new(RecordedContexts::OrgId).big_integer().not_null())
                .col(ColumnDef::new(RecordedContexts::FlowType).integer().not_null())
                .col(ColumnDef::new(RecordedContexts::TriggerType).integer().not_null())
                .col(ColumnDef::new(RecordedContexts::Context).text().not_null())
                .col(ColumnDef::new(RecordedContexts::CreatedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("recorded_contexts_by_trigger")
                .table(RecordedContexts::Table)
                .col(RecordedContexts::OrgId)
                .col(RecordedContexts::FlowType)
                .col(RecordedContexts::TriggerType)
                .col(RecordedContexts::RunId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(RecordedContexts::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ActionSettings::Table).to_owned()).await
    }
}
