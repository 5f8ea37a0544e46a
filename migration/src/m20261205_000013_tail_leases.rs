use sea_orm_migration::prelude::*;

/// The live tails open on every replica, so that the limit of tails per organization holds
/// across replicas: one row per open tail, renewed by the process serving it while it lives and
/// left to expire when that process dies.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TailLeases {
    Table,
    Id,
    OrgId,
    Node,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TailLeases::Table)
                .if_not_exists()
                .col(ColumnDef::new(TailLeases::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(TailLeases::OrgId).big_integer().not_null())
                .col(ColumnDef::new(TailLeases::Node).big_integer().not_null())
                .col(ColumnDef::new(TailLeases::ExpiresAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_tail_leases_org").table(TailLeases::Table).col(TailLeases::OrgId).to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TailLeases::Table).to_owned()).await
    }
}
