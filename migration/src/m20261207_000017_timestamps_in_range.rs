use sea_orm_migration::prelude::*;

/// Expirations stored by earlier versions outside the years 1 to 9999 (they took
/// `9999-12-31T23:59:59-01:00`, which is in year 10000 in UTC): no answer can print such an
/// instant as a protobuf `Timestamp`, so a list holding one failed over the protobuf transports.
/// They are brought to the nearest instant that can be printed; an expiration in year 10000 still
/// lies thousands of years ahead, one before year 1 is still past.
#[derive(DeriveMigrationName)]
pub struct Migration;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z, in microseconds since the epoch.
const MIN_MICROS: i64 = -62_135_596_800_000_000;
const MAX_MICROS: i64 = 253_402_300_799_999_999;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for (table, column) in
            [("tokens", "expires_at"), ("target_keys", "expires_at"), ("targets", "previous_key_expires_at")]
        {
            db.execute_unprepared(&format!("UPDATE {table} SET {column} = {MAX_MICROS} WHERE {column} > {MAX_MICROS}"))
                .await?;
            db.execute_unprepared(&format!("UPDATE {table} SET {column} = {MIN_MICROS} WHERE {column} < {MIN_MICROS}"))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        // The values as they were are not kept (none could be printed anyway).
        Ok(())
    }
}
