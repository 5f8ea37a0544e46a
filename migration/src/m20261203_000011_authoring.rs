use sea_orm_migration::prelude::*;

/// Authoring: an organization's action secrets (encrypted values), the versions of every action
/// (the current one on the action itself), and the version an action ran with on its run record.
/// Existing actions get their current content as version 1.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ActionSecrets {
    Table,
    OrgId,
    Name,
    ValueEnc,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum ActionVersions {
    Table,
    ActionId,
    Version,
    OrgId,
    Name,
    Script,
    TimeoutNanos,
    AllowedToFail,
    Sequence,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Actions {
    Table,
    Version,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    ActionVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ActionSecrets::Table)
                .col(ColumnDef::new(ActionSecrets::OrgId).big_integer().not_null())
                .col(ColumnDef::new(ActionSecrets::Name).text().not_null())
                .col(ColumnDef::new(ActionSecrets::ValueEnc).text().not_null())
                .col(ColumnDef::new(ActionSecrets::Sequence).big_integer().not_null())
                .col(ColumnDef::new(ActionSecrets::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ActionSecrets::ChangedAt).big_integer().not_null())
                .primary_key(Index::create().col(ActionSecrets::OrgId).col(ActionSecrets::Name))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ActionVersions::Table)
                .col(ColumnDef::new(ActionVersions::ActionId).big_integer().not_null())
                .col(ColumnDef::new(ActionVersions::Version).big_integer().not_null())
                .col(ColumnDef::new(ActionVersions::OrgId).big_integer().not_null())
                .col(ColumnDef::new(ActionVersions::Name).text().not_null())
                .col(ColumnDef::new(ActionVersions::Script).text().not_null())
                .col(ColumnDef::new(ActionVersions::TimeoutNanos).big_integer().not_null())
                .col(ColumnDef::new(ActionVersions::AllowedToFail).boolean().not_null())
                .col(ColumnDef::new(ActionVersions::Sequence).big_integer().not_null())
                .col(ColumnDef::new(ActionVersions::CreatedAt).big_integer().not_null())
                .primary_key(Index::create().col(ActionVersions::ActionId).col(ActionVersions::Version))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Actions::Table)
                .add_column(ColumnDef::new(Actions::Version).big_integer().not_null().default(1))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Runs::Table)
                .add_column(ColumnDef::new(Runs::ActionVersion).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.get_connection()
            .execute_unprepared(
                "INSERT INTO action_versions \
                 (action_id, version, org_id, name, script, timeout_nanos, allowed_to_fail, sequence, created_at) \
                 SELECT id, 1, org_id, name, script, timeout_nanos, allowed_to_fail, sequence, changed_at FROM actions",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(Table::alter().table(Runs::Table).drop_column(Runs::ActionVersion).to_owned()).await?;
        m.alter_table(Table::alter().table(Actions::Table).drop_column(Actions::Version).to_owned()).await?;
        m.drop_table(Table::drop().table(ActionVersions::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ActionSecrets::Table).to_owned()).await
    }
}
