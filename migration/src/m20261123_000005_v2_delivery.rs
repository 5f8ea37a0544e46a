use sea_orm_migration::prelude::*;

#[derive(DeriveIden)]
enum Targets {
    Table,
    PreviousKeyEnc,
    PreviousKeyExpiresAt,
}

#[derive(DeriveIden)]
enum TargetKeys {
    Table,
    Id,
    TargetId,
    PublicKey,
    Fingerprint,
    Active,
    ExpiresAt,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    TargetId,
    ExecutionId,
    EventType,
    AggregateKey,
    Seq,
    Payload,
    State,
    Attempts,
    LastStatus,
    LastError,
    NextAttemptAt,
    LeaseUntil,
    LeaseOwner,
    CreatedAt,
    ChangedAt,
}

/// Actions v2: signing-key rotation grace period, target public keys (JWE) and the delivery queue.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite takes one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Targets::Table)
                .add_column(ColumnDef::new(Targets::PreviousKeyEnc).text().null())
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Targets::Table)
                .add_column(ColumnDef::new(Targets::PreviousKeyExpiresAt).big_integer().null())
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TargetKeys::Table)
                .col(ColumnDef::new(TargetKeys::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(TargetKeys::TargetId).big_integer().not_null())
                .col(ColumnDef::new(TargetKeys::PublicKey).text().not_null())
                .col(ColumnDef::new(TargetKeys::Fingerprint).text().not_null())
                .col(ColumnDef::new(TargetKeys::Active).boolean().not_null())
                .col(ColumnDef::new(TargetKeys::ExpiresAt).big_integer().null())
                .col(ColumnDef::new(TargetKeys::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(TargetKeys::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_target_keys_target").table(TargetKeys::Table).col(TargetKeys::TargetId).to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(ColumnDef::new(Deliveries::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Deliveries::TargetId).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::ExecutionId).text().not_null())
                .col(ColumnDef::new(Deliveries::EventType).text().null())
                .col(ColumnDef::new(Deliveries::AggregateKey).text().not_null())
                .col(ColumnDef::new(Deliveries::Seq).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::Payload).text().not_null())
                .col(ColumnDef::new(Deliveries::State).integer().not_null())
                .col(ColumnDef::new(Deliveries::Attempts).integer().not_null())
                .col(ColumnDef::new(Deliveries::LastStatus).integer().not_null())
                .col(ColumnDef::new(Deliveries::LastError).text().not_null())
                .col(ColumnDef::new(Deliveries::NextAttemptAt).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::LeaseUntil).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::LeaseOwner).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(Deliveries::ChangedAt).big_integer().not_null())
                .to_owned(),
        )
        .await?;
        // Due work: open deliveries by next attempt.
        m.create_index(
            Index::create()
                .name("ix_deliveries_due")
                .table(Deliveries::Table)
                .col(Deliveries::State)
                .col(Deliveries::NextAttemptAt)
                .to_owned(),
        )
        .await?;
        // Per-aggregate order: earlier open deliveries of the same (target, aggregate).
        m.create_index(
            Index::create()
                .name("ix_deliveries_order")
                .table(Deliveries::Table)
                .col(Deliveries::TargetId)
                .col(Deliveries::AggregateKey)
                .col(Deliveries::Seq)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Deliveries::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(TargetKeys::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(Targets::Table).drop_column(Targets::PreviousKeyExpiresAt).to_owned())
            .await?;
        m.alter_table(Table::alter().table(Targets::Table).drop_column(Targets::PreviousKeyEnc).to_owned()).await
    }
}

#[derive(DeriveMigrationName)]
pub struct Migration;
