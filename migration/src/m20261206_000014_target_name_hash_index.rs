use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

/// PostgreSQL's btree entries hold at most about 2.7 KB, and a target name may be 1,000 characters
/// of up to four bytes each: the unique index on target names indexes an MD5 of the name there.
/// SQLite has no such limit and keeps the plain index.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("DROP INDEX IF EXISTS ux_targets_name").await?;
            db.execute_unprepared("CREATE UNIQUE INDEX ux_targets_name ON targets (md5(name))").await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("DROP INDEX IF EXISTS ux_targets_name").await?;
            db.execute_unprepared("CREATE UNIQUE INDEX ux_targets_name ON targets (name)").await?;
        }
        Ok(())
    }
}
