//! Fair scheduling and the stored-bytes quota: which queue job ("ticket") is executing a run,
//! how many bytes a run's report and a scenario version take.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null};
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    Ticket,
    ReportBytes,
    OwnerId,
    StartedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScenarioVersions {
    Table,
    SizeBytes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(Table::alter().table(Runs::Table).add_column(big_integer_null(Runs::Ticket)).take()).await?;
        m.alter_table(Table::alter().table(Runs::Table).add_column(big_integer_null(Runs::ReportBytes)).take()).await?;
        m.alter_table(
            Table::alter()
                .table(ScenarioVersions::Table)
                .add_column(big_integer(ScenarioVersions::SizeBytes).default(0))
                .take(),
        )
        .await?;
        // Fair claiming asks each waiting user's latest start: one index seek per user.
        m.create_index(
            Index::create()
                .name("idx_runs_owner_started")
                .table(Runs::Table)
                .col(Runs::OwnerId)
                .col(Runs::StartedAt)
                .take(),
        )
        .await?;
        let db = m.get_connection();
        // A run running before this migration was started by the job created for it.
        db.execute_unprepared("UPDATE runs SET ticket = id WHERE state = 'running'").await?;
        // Bytes, not characters: the quota is about storage.
        let size = match db.get_database_backend() {
            DatabaseBackend::Sqlite => "UPDATE scenario_versions SET size_bytes = length(CAST(spec AS BLOB))",
            _ => "UPDATE scenario_versions SET size_bytes = OCTET_LENGTH(spec)",
        };
        db.execute_unprepared(size).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("idx_runs_owner_started").table(Runs::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(ScenarioVersions::Table).drop_column(ScenarioVersions::SizeBytes).take())
            .await?;
        m.alter_table(Table::alter().table(Runs::Table).drop_column(Runs::ReportBytes).take()).await?;
        m.alter_table(Table::alter().table(Runs::Table).drop_column(Runs::Ticket).take()).await?;
        Ok(())
    }
}
