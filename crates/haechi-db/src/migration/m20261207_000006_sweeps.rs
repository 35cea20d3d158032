//! Parameter sweeps and their grid points.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, double, double_null, integer, string_len, text, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Sweeps {
    Table,
    Id,
    OwnerId,
    ScenarioId,
    ScenarioVersion,
    DataVersion,
    Grid,
    InSample,
    State,
    PointsTotal,
    PointsDone,
    Error,
    Best,
    CreatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SweepPoints {
    Table,
    SweepId,
    Point,
    Params,
    TotalReturn,
    Cagr,
    Sharpe,
    Sortino,
    MaxDrawdown,
    AnnualVolatility,
    FinalEquity,
    TradeCount,
    WinRate,
    Turnover,
    IsReturn,
    IsSharpe,
    OosReturn,
    OosSharpe,
    DailySharpe,
    Skew,
    Kurtosis,
    Returns,
    FillsDigest,
    Job,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Sweeps::Table)
                .if_not_exists()
                .col(big_pk_auto(Sweeps::Id))
                .col(big_integer(Sweeps::OwnerId))
                .col(big_integer(Sweeps::ScenarioId))
                .col(integer(Sweeps::ScenarioVersion))
                .col(big_integer(Sweeps::DataVersion))
                .col(text(Sweeps::Grid))
                .col(double(Sweeps::InSample))
                .col(string_len(Sweeps::State, 16))
                .col(integer(Sweeps::PointsTotal))
                .col(integer(Sweeps::PointsDone))
                .col(text_null(Sweeps::Error))
                .col(text_null(Sweeps::Best))
                .col(big_integer(Sweeps::CreatedAt))
                .col(big_integer_null(Sweeps::StartedAt))
                .col(big_integer_null(Sweeps::FinishedAt))
                .take(),
        )
        .await?;
        m.create_index(
            Index::create().name("idx_sweeps_owner").table(Sweeps::Table).col(Sweeps::OwnerId).col(Sweeps::Id).take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SweepPoints::Table)
                .if_not_exists()
                .col(big_integer(SweepPoints::SweepId))
                .col(integer(SweepPoints::Point))
                .col(text(SweepPoints::Params))
                .col(double(SweepPoints::TotalReturn))
                .col(double_null(SweepPoints::Cagr))
                .col(double_null(SweepPoints::Sharpe))
                .col(double_null(SweepPoints::Sortino))
                .col(double(SweepPoints::MaxDrawdown))
                .col(double_null(SweepPoints::AnnualVolatility))
                .col(big_integer(SweepPoints::FinalEquity))
                .col(integer(SweepPoints::TradeCount))
                .col(double_null(SweepPoints::WinRate))
                .col(double(SweepPoints::Turnover))
                .col(double(SweepPoints::IsReturn))
                .col(double_null(SweepPoints::IsSharpe))
                .col(double(SweepPoints::OosReturn))
                .col(double_null(SweepPoints::OosSharpe))
                .col(double(SweepPoints::DailySharpe))
                .col(double(SweepPoints::Skew))
                .col(double(SweepPoints::Kurtosis))
                .col(integer(SweepPoints::Returns))
                .col(string_len(SweepPoints::FillsDigest, 32))
                .col(string_len(SweepPoints::Job, 64))
                .col(big_integer(SweepPoints::CreatedAt))
                .primary_key(Index::create().col(SweepPoints::SweepId).col(SweepPoints::Point))
                .take(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SweepPoints::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(Sweeps::Table).to_owned()).await
    }
}
