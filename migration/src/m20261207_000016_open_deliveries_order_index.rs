use sea_orm_migration::prelude::*;

/// The queue claims a delivery only when no earlier open delivery of its target and aggregate is
/// left; that check walked `ix_deliveries_order` through every finished (dead, succeeded) row of
/// the aggregate before reaching an open one. After a long outage an aggregate holds thousands of
/// given-up rows ahead of thousands of queued ones, and one claim took seconds (tens on SQLite,
/// holding its only writer). The same columns, over open rows only.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // States 1 (pending) and 3 (failed), as the claim's statement names them.
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_deliveries_open_order ON deliveries (target_id, aggregate_key, seq) \
                 WHERE state IN (1, 3)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection().execute_unprepared("DROP INDEX ix_deliveries_open_order").await?;
        Ok(())
    }
}
