//! Market data collection: the shared KIS access token, how far each ticker's bar history has
//! been fetched (the resume point), financial statements, ETL runs with their checkpoints, and
//! claims that let exactly one process run a daily schedule.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, double, integer, string_len, string_len_null, text, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum KisTokens {
    Table,
    Key,
    AccessToken,
    ExpiresAt,
    LastIssueAt,
    LeaseHolder,
    LeaseUntil,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum BarCoverage {
    Table,
    Ticker,
    FirstDay,
    LastDay,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Financials {
    Table,
    Ticker,
    Period,
    Kind,
    Revenue,
    OperatingProfit,
    NetIncome,
    TotalAssets,
    TotalLiabilities,
    TotalEquity,
    RevenueGrowth,
    OperatingProfitGrowth,
    NetIncomeGrowth,
    Roe,
    Eps,
    Bps,
    DebtRatio,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum EtlRuns {
    Table,
    Id,
    Kind,
    Params,
    State,
    Owner,
    HeartbeatAt,
    StartedAt,
    FinishedAt,
    Requests,
    RowsUpserted,
    Findings,
    Checkpoint,
    ReportKey,
    Error,
}

#[derive(DeriveIden, Clone, Copy)]
enum ScheduleClaims {
    Table,
    Name,
    Day,
    Owner,
    State,
    HeartbeatAt,
    StartedAt,
    FinishedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(KisTokens::Table)
                .col(string_len(KisTokens::Key, 64).primary_key())
                .col(text_null(KisTokens::AccessToken))
                .col(big_integer_null(KisTokens::ExpiresAt))
                .col(big_integer_null(KisTokens::LastIssueAt))
                .col(string_len_null(KisTokens::LeaseHolder, 64))
                .col(big_integer(KisTokens::LeaseUntil))
                .col(big_integer(KisTokens::UpdatedAt))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(BarCoverage::Table)
                .col(string_len(BarCoverage::Ticker, 12).primary_key())
                .col(integer(BarCoverage::FirstDay))
                .col(integer(BarCoverage::LastDay))
                .col(big_integer(BarCoverage::UpdatedAt))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Financials::Table)
                .col(string_len(Financials::Ticker, 12))
                .col(string_len(Financials::Period, 6))
                .col(string_len(Financials::Kind, 1))
                .col(double(Financials::Revenue))
                .col(double(Financials::OperatingProfit))
                .col(double(Financials::NetIncome))
                .col(double(Financials::TotalAssets))
                .col(double(Financials::TotalLiabilities))
                .col(double(Financials::TotalEquity))
                .col(double(Financials::RevenueGrowth))
                .col(double(Financials::OperatingProfitGrowth))
                .col(double(Financials::NetIncomeGrowth))
                .col(double(Financials::Roe))
                .col(double(Financials::Eps))
                .col(double(Financials::Bps))
                .col(double(Financials::DebtRatio))
                .col(big_integer(Financials::UpdatedAt))
                .primary_key(Index::create().col(Financials::Ticker).col(Financials::Period).col(Financials::Kind))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EtlRuns::Table)
                .col(big_pk_auto(EtlRuns::Id))
                .col(string_len(EtlRuns::Kind, 32))
                .col(text(EtlRuns::Params))
                .col(string_len(EtlRuns::State, 16))
                .col(string_len(EtlRuns::Owner, 64))
                .col(big_integer(EtlRuns::HeartbeatAt))
                .col(big_integer(EtlRuns::StartedAt))
                .col(big_integer_null(EtlRuns::FinishedAt))
                .col(big_integer(EtlRuns::Requests))
                .col(big_integer(EtlRuns::RowsUpserted))
                .col(big_integer(EtlRuns::Findings))
                .col(text_null(EtlRuns::Checkpoint))
                .col(string_len_null(EtlRuns::ReportKey, 300))
                .col(text_null(EtlRuns::Error))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_etl_runs_kind_state")
                .table(EtlRuns::Table)
                .col(EtlRuns::Kind)
                .col(EtlRuns::State)
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ScheduleClaims::Table)
                .col(string_len(ScheduleClaims::Name, 64))
                .col(integer(ScheduleClaims::Day))
                .col(string_len(ScheduleClaims::Owner, 64))
                .col(string_len(ScheduleClaims::State, 16))
                .col(big_integer(ScheduleClaims::HeartbeatAt))
                .col(big_integer(ScheduleClaims::StartedAt))
                .col(big_integer_null(ScheduleClaims::FinishedAt))
                .primary_key(Index::create().col(ScheduleClaims::Name).col(ScheduleClaims::Day))
                .take(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            ScheduleClaims::Table.into_iden(),
            EtlRuns::Table.into_iden(),
            Financials::Table.into_iden(),
            BarCoverage::Table.into_iden(),
            KisTokens::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
