use sea_orm_migration::prelude::*;

/// The ZITADEL connector: connections (one per ZITADEL target), their organization links and
/// their recent rejections.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    Name,
    State,
    SigningKeys,
    TimestampToleranceNanos,
    CallTimeoutNanos,
    FailMode,
    DefaultOrgId,
    ZitadelBaseUrl,
    ZitadelTokenEnc,
    ZitadelTargetId,
    PayloadTypes,
    JwePrivateKeyEnc,
    JwePublicKeyPem,
    Calls,
    Rejected,
    Failed,
    LastCallAt,
    LastError,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum ConnectionOrgLinks {
    Table,
    ConnectionId,
    ZitadelOrgId,
    OrgId,
    Sequence,
    CreatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum ConnectionRejections {
    Table,
    Id,
    ConnectionId,
    At,
    Reason,
    RemoteAddr,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let big = |c: Connections| ColumnDef::new(c).big_integer().not_null().to_owned();
        m.create_table(
            Table::create()
                .table(Connections::Table)
                .if_not_exists()
                .col(ColumnDef::new(Connections::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(Connections::Name).text().not_null())
                .col(ColumnDef::new(Connections::State).integer().not_null())
                .col(ColumnDef::new(Connections::SigningKeys).text().not_null())
                .col(big(Connections::TimestampToleranceNanos))
                .col(big(Connections::CallTimeoutNanos))
                .col(ColumnDef::new(Connections::FailMode).integer().not_null())
                .col(ColumnDef::new(Connections::DefaultOrgId).big_integer().null())
                .col(ColumnDef::new(Connections::ZitadelBaseUrl).text().null())
                .col(ColumnDef::new(Connections::ZitadelTokenEnc).text().null())
                .col(ColumnDef::new(Connections::ZitadelTargetId).text().null())
                .col(ColumnDef::new(Connections::PayloadTypes).text().not_null())
                .col(ColumnDef::new(Connections::JwePrivateKeyEnc).text().null())
                .col(ColumnDef::new(Connections::JwePublicKeyPem).text().null())
                .col(big(Connections::Calls))
                .col(big(Connections::Rejected))
                .col(big(Connections::Failed))
                .col(ColumnDef::new(Connections::LastCallAt).big_integer().null())
                .col(ColumnDef::new(Connections::LastError).text().not_null())
                .col(big(Connections::Sequence))
                .col(big(Connections::CreatedAt))
                .col(big(Connections::ChangedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("ux_connections_name")
                .table(Connections::Table)
                .col(Connections::Name)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ConnectionOrgLinks::Table)
                .if_not_exists()
                .col(ColumnDef::new(ConnectionOrgLinks::ConnectionId).big_integer().not_null())
                .col(ColumnDef::new(ConnectionOrgLinks::ZitadelOrgId).text().not_null())
                .col(ColumnDef::new(ConnectionOrgLinks::OrgId).big_integer().not_null())
                .col(ColumnDef::new(ConnectionOrgLinks::Sequence).big_integer().not_null())
                .col(ColumnDef::new(ConnectionOrgLinks::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ConnectionOrgLinks::ChangedAt).big_integer().not_null())
                .primary_key(
                    Index::create().col(ConnectionOrgLinks::ConnectionId).col(ConnectionOrgLinks::ZitadelOrgId),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ConnectionRejections::Table)
                .if_not_exists()
                .col(ColumnDef::new(ConnectionRejections::Id).big_integer().not_null().primary_key())
                .col(ColumnDef::new(ConnectionRejections::ConnectionId).big_integer().not_null())
                .col(ColumnDef::new(ConnectionRejections::At).big_integer().not_null())
                .col(ColumnDef::new(ConnectionRejections::Reason).text().not_null())
                .col(ColumnDef::new(ConnectionRejections::RemoteAddr).text().not_null())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .if_not_exists()
                .name("ix_connection_rejections_connection")
                .table(ConnectionRejections::Table)
                .col(ConnectionRejections::ConnectionId)
                .col(ConnectionRejections::At)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ConnectionRejections::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ConnectionOrgLinks::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Connections::Table).to_owned()).await
    }
}
