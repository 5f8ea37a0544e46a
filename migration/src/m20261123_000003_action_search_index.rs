use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Actions {
    Table,
    OrgId,
    NameFolded,
    Name,
    State,
    Id,
}

/// A covering index for ListActions filters, so a search in a large org scans the index only.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_actions_search")
                .table(Actions::Table)
                .col(Actions::OrgId)
                .col(Actions::NameFolded)
                .col(Actions::Name)
                .col(Actions::State)
                .col(Actions::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_actions_search").table(Actions::Table).to_owned()).await
    }
}
