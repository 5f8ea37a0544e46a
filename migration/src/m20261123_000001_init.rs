use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Nodes {
    Table,
    Id,
    StartedAt,
}

#[derive(DeriveIden)]
enum Settings {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum Orgs {
    Table,
    Id,
    Name,
    NameFolded,
    IsDefault,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    TokenHash,
    OrgId,
    Role,
    Description,
    ExpiresAt,
    IsBootstrap,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Actions {
    Table,
    Id,
    OrgId,
    Name,
    NameFolded,
    Script,
    TimeoutNanos,
    AllowedToFail,
    State,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Flows {
    Table,
    OrgId,
    FlowType,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum FlowTriggerActions {
    Table,
    OrgId,
    FlowType,
    TriggerType,
    Position,
    ActionId,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Position,
    AggregateType,
    AggregateId,
    Sequence,
    EventType,
    ResourceOwner,
    Creator,
    CreatedAt,
    Payload,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Nodes::Table)
                .col(ColumnDef::new(Nodes::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Nodes::StartedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Settings::Table)
                .col(ColumnDef::new(Settings::Key).string().not_null().primary_key())
                .col(ColumnDef::new(Settings::Value).text().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Orgs::Table)
                .col(ColumnDef::new(Orgs::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Orgs::Name).text().not_null())
                .col(ColumnDef::new(Orgs::NameFolded).text().not_null().unique_key())
                .col(ColumnDef::new(Orgs::IsDefault).boolean().not_null())
                .col(ColumnDef::new(Orgs::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Orgs::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Orgs::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Tokens::Table)
                .col(ColumnDef::new(Tokens::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Tokens::TokenHash).string().not_null().unique_key())
                .col(ColumnDef::new(Tokens::OrgId).big_integer().not_null())
                .col(ColumnDef::new(Tokens::Role).string().not_null())
                .col(ColumnDef::new(Tokens::Description).text().not_null())
                .col(ColumnDef::new(Tokens::ExpiresAt).big_integer().null())
                .col(ColumnDef::new(Tokens::IsBootstrap).boolean().not_null())
                .col(ColumnDef::new(Tokens::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Tokens::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Tokens::ChangedAt).big_integer().not_null())
                .foreign_key(ForeignKey::create().from(Tokens::Table, Tokens::OrgId).to(Orgs::Table, Orgs::Id))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Actions::Table)
                .col(ColumnDef::new(Actions::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Actions::OrgId).big_integer().not_null())
                .col(ColumnDef::new(Actions::Name).text().not_null())
                .col(ColumnDef::new(Actions::NameFolded).text().not_null())
                .col(ColumnDef::new(Actions::Script).text().not_null())
                .col(ColumnDef::new(Actions::TimeoutNanos).big_integer().not_null())
                .col(ColumnDef::new(Actions::AllowedToFail).boolean().not_null())
                .col(ColumnDef::new(Actions::State).integer().not_null())
                .col(ColumnDef::new(Actions::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Actions::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Actions::ChangedAt).big_integer().not_null())
                .foreign_key(ForeignKey::create().from(Actions::Table, Actions::OrgId).to(Orgs::Table, Orgs::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_actions_org_name")
                .table(Actions::Table)
                .col(Actions::OrgId)
                .col(Actions::NameFolded)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_actions_org_id")
                .table(Actions::Table)
                .col(Actions::OrgId)
                .col(Actions::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Flows::Table)
                .col(ColumnDef::new(Flows::OrgId).big_integer().not_null())
                .col(ColumnDef::new(Flows::FlowType).integer().not_null())
                .col(ColumnDef::new(Flows::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Flows::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Flows::ChangedAt).big_integer().not_null())
                .primary_key(Index::create().col(Flows::OrgId).col(Flows::FlowType))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(FlowTriggerActions::Table)
                .col(ColumnDef::new(FlowTriggerActions::OrgId).big_integer().not_null())
                .col(ColumnDef::new(FlowTriggerActions::FlowType).integer().not_null())
                .col(ColumnDef::new(FlowTriggerActions::TriggerType).integer().not_null())
                .col(ColumnDef::new(FlowTriggerActions::Position).integer().not_null())
                .col(ColumnDef::new(FlowTriggerActions::ActionId).big_integer().not_null())
                .primary_key(
                    Index::create()
                        .col(FlowTriggerActions::OrgId)
                        .col(FlowTriggerActions::FlowType)
                        .col(FlowTriggerActions::TriggerType)
                        .col(FlowTriggerActions::Position),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(FlowTriggerActions::Table, FlowTriggerActions::ActionId)
                        .to(Actions::Table, Actions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_flow_trigger_actions_action")
                .table(FlowTriggerActions::Table)
                .col(FlowTriggerActions::OrgId)
                .col(FlowTriggerActions::FlowType)
                .col(FlowTriggerActions::TriggerType)
                .col(FlowTriggerActions::ActionId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_flow_trigger_actions_action_id")
                .table(FlowTriggerActions::Table)
                .col(FlowTriggerActions::ActionId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Events::Table)
                .col(ColumnDef::new(Events::Position).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Events::AggregateType).string().not_null())
                .col(ColumnDef::new(Events::AggregateId).string().not_null())
                .col(ColumnDef::new(Events::Sequence).big_integer().not_null())
                .col(ColumnDef::new(Events::EventType).string().not_null())
                .col(ColumnDef::new(Events::ResourceOwner).string().not_null())
                .col(ColumnDef::new(Events::Creator).string().not_null())
                .col(ColumnDef::new(Events::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Events::Payload).text().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ux_events_aggregate_sequence")
                .table(Events::Table)
                .col(Events::AggregateType)
                .col(Events::AggregateId)
                .col(Events::Sequence)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_events_event_type").table(Events::Table).col(Events::EventType).to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            FlowTriggerActions::Table.into_iden(),
            Flows::Table.into_iden(),
            Actions::Table.into_iden(),
            Tokens::Table.into_iden(),
            Orgs::Table.into_iden(),
            Settings::Table.into_iden(),
            Nodes::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
