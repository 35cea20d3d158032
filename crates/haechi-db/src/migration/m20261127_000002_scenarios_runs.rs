//! Scenarios with immutable versions and shares, simulation runs, and the market data runs
//! are computed on (instruments, daily bars, index closes, data versions).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, double, double_null, integer, integer_null, string_len,
    string_len_null, text, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Scenarios {
    Table,
    Id,
    OwnerId,
    Name,
    Description,
    Strategy,
    CurrentVersion,
    SharedWithAnalysts,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScenarioVersions {
    Table,
    Id,
    ScenarioId,
    Version,
    Spec,
    AuthorId,
    Message,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScenarioShares {
    Table,
    ScenarioId,
    UserId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Runs {
    Table,
    Id,
    OwnerId,
    ScenarioId,
    ScenarioVersion,
    DataVersion,
    State,
    Progress,
    Stage,
    Error,
    Attempts,
    Lease,
    CancelRequested,
    QueuedAt,
    StartedAt,
    FinishedAt,
    UpdatedAt,
    TotalReturn,
    Cagr,
    Volatility,
    Sharpe,
    Sortino,
    MaxDrawdown,
    BenchmarkReturn,
    FinalEquity,
    TradeCount,
    ReportKey,
}

#[derive(DeriveIden, Clone, Copy)]
enum Instruments {
    Table,
    Ticker,
    Name,
    Market,
    Sector,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum DailyBars {
    Table,
    Ticker,
    Day,
    Open,
    High,
    Low,
    Close,
    Volume,
}

#[derive(DeriveIden, Clone, Copy)]
enum IndexCloses {
    Table,
    Name,
    Day,
    Close,
}

#[derive(DeriveIden, Clone, Copy)]
enum DataVersions {
    Table,
    Id,
    Source,
    Synthetic,
    Note,
    Rows,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // Long but whole: one statement per table and index, in dependency order, is the schema
    // as it was shipped; split up, the order would be harder to check against the down migration.
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Scenarios::Table)
                .col(big_pk_auto(Scenarios::Id))
                .col(big_integer(Scenarios::OwnerId))
                .col(string_len(Scenarios::Name, 200))
                .col(text_null(Scenarios::Description))
                .col(string_len(Scenarios::Strategy, 32))
                .col(integer(Scenarios::CurrentVersion))
                .col(boolean(Scenarios::SharedWithAnalysts))
                .col(big_integer(Scenarios::CreatedAt))
                .col(big_integer(Scenarios::UpdatedAt))
                .col(big_integer_null(Scenarios::DeletedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(Scenarios::Table, Scenarios::OwnerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ScenarioVersions::Table)
                .col(big_pk_auto(ScenarioVersions::Id))
                .col(big_integer(ScenarioVersions::ScenarioId))
                .col(integer(ScenarioVersions::Version))
                .col(text(ScenarioVersions::Spec))
                .col(big_integer(ScenarioVersions::AuthorId))
                .col(string_len(ScenarioVersions::Message, 500))
                .col(big_integer(ScenarioVersions::CreatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ScenarioVersions::Table, ScenarioVersions::ScenarioId)
                        .to(Scenarios::Table, Scenarios::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ScenarioShares::Table)
                .col(big_integer(ScenarioShares::ScenarioId))
                .col(big_integer(ScenarioShares::UserId))
                .col(big_integer(ScenarioShares::CreatedAt))
                .primary_key(Index::create().col(ScenarioShares::ScenarioId).col(ScenarioShares::UserId))
                .foreign_key(
                    ForeignKey::create()
                        .from(ScenarioShares::Table, ScenarioShares::ScenarioId)
                        .to(Scenarios::Table, Scenarios::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(ScenarioShares::Table, ScenarioShares::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Runs::Table)
                .col(big_pk_auto(Runs::Id))
                .col(big_integer(Runs::OwnerId))
                .col(big_integer(Runs::ScenarioId))
                .col(integer(Runs::ScenarioVersion))
                .col(big_integer(Runs::DataVersion))
                .col(string_len(Runs::State, 16))
                .col(double(Runs::Progress))
                .col(string_len(Runs::Stage, 32))
                .col(text_null(Runs::Error))
                .col(integer(Runs::Attempts))
                .col(string_len_null(Runs::Lease, 40))
                .col(boolean(Runs::CancelRequested))
                .col(big_integer(Runs::QueuedAt))
                .col(big_integer_null(Runs::StartedAt))
                .col(big_integer_null(Runs::FinishedAt))
                .col(big_integer(Runs::UpdatedAt))
                .col(double_null(Runs::TotalReturn))
                .col(double_null(Runs::Cagr))
                .col(double_null(Runs::Volatility))
                .col(double_null(Runs::Sharpe))
                .col(double_null(Runs::Sortino))
                .col(double_null(Runs::MaxDrawdown))
                .col(double_null(Runs::BenchmarkReturn))
                .col(big_integer_null(Runs::FinalEquity))
                .col(integer_null(Runs::TradeCount))
                .col(string_len_null(Runs::ReportKey, 300))
                .foreign_key(
                    ForeignKey::create()
                        .from(Runs::Table, Runs::OwnerId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Runs::Table, Runs::ScenarioId)
                        .to(Scenarios::Table, Scenarios::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Instruments::Table)
                .col(string_len(Instruments::Ticker, 12).primary_key())
                .col(string_len(Instruments::Name, 100))
                .col(string_len(Instruments::Market, 10))
                .col(string_len(Instruments::Sector, 60))
                .col(big_integer(Instruments::UpdatedAt))
                .take(),
        )
        .await?;
        // Days are `yyyymmdd` integers: compact, ordered, and the same on every backend.
        m.create_table(
            Table::create()
                .table(DailyBars::Table)
                .col(string_len(DailyBars::Ticker, 12))
                .col(integer(DailyBars::Day))
                .col(big_integer(DailyBars::Open))
                .col(big_integer(DailyBars::High))
                .col(big_integer(DailyBars::Low))
                .col(big_integer(DailyBars::Close))
                .col(big_integer(DailyBars::Volume))
                .primary_key(Index::create().col(DailyBars::Ticker).col(DailyBars::Day))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IndexCloses::Table)
                .col(string_len(IndexCloses::Name, 12))
                .col(integer(IndexCloses::Day))
                .col(double(IndexCloses::Close))
                .primary_key(Index::create().col(IndexCloses::Name).col(IndexCloses::Day))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(DataVersions::Table)
                .col(big_pk_auto(DataVersions::Id))
                .col(string_len(DataVersions::Source, 40))
                .col(boolean(DataVersions::Synthetic))
                .col(text(DataVersions::Note))
                .col(big_integer(DataVersions::Rows))
                .col(big_integer(DataVersions::CreatedAt))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_scenario_versions")
                .table(ScenarioVersions::Table)
                .col(ScenarioVersions::ScenarioId)
                .col(ScenarioVersions::Version)
                .unique()
                .take(),
        )
        .await?;
        for (name, table, cols) in [
            ("idx_scenarios_owner", Scenarios::Table.into_iden(), vec![Scenarios::OwnerId.into_iden()]),
            ("idx_scenario_shares_user", ScenarioShares::Table.into_iden(), vec![ScenarioShares::UserId.into_iden()]),
            ("idx_runs_owner", Runs::Table.into_iden(), vec![Runs::OwnerId.into_iden(), Runs::Id.into_iden()]),
            ("idx_runs_scenario", Runs::Table.into_iden(), vec![Runs::ScenarioId.into_iden()]),
            ("idx_runs_updated", Runs::Table.into_iden(), vec![Runs::UpdatedAt.into_iden()]),
            ("idx_runs_state", Runs::Table.into_iden(), vec![Runs::State.into_iden()]),
            ("idx_daily_bars_day", DailyBars::Table.into_iden(), vec![DailyBars::Day.into_iden()]),
        ] {
            let mut idx = Index::create().name(name).table(table).take();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            DataVersions::Table.into_iden(),
            IndexCloses::Table.into_iden(),
            DailyBars::Table.into_iden(),
            Instruments::Table.into_iden(),
            Runs::Table.into_iden(),
            ScenarioShares::Table.into_iden(),
            ScenarioVersions::Table.into_iden(),
            Scenarios::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
