//! Paper trading: mock accounts, their orders, fills, holdings and daily equity; the market's
//! last prints and replay clock; idempotency keys; site-wide flags (the trading halt).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, integer_null, string_len, string_len_null, text,
    text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PaperAccounts {
    Table,
    Id,
    OwnerId,
    Name,
    StartingCash,
    Cash,
    Reserved,
    CommissionPpb,
    NextOrder,
    Commissions,
    Taxes,
    State,
    Halted,
    LossHaltSession,
    Limits,
    Version,
    CreatedAt,
    UpdatedAt,
    ClosedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperOrders {
    Table,
    Id,
    AccountId,
    Seq,
    Ticker,
    Market,
    Side,
    Kind,
    LimitPrice,
    Quantity,
    Filled,
    Session,
    State,
    Reason,
    Reserved,
    ClientOrderId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperFills {
    Table,
    Id,
    AccountId,
    OrderId,
    Ticker,
    Side,
    Quantity,
    Price,
    Amount,
    Commission,
    Tax,
    TradeDate,
    SettlementDate,
    PrintKey,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperHoldings {
    Table,
    AccountId,
    Ticker,
    Quantity,
    Reserved,
    Cost,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperEquity {
    Table,
    AccountId,
    Session,
    Cash,
    Equity,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperQuotes {
    Table,
    Ticker,
    Session,
    PrevClose,
    Last,
    Volume,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperMarket {
    Table,
    Id,
    Mode,
    Session,
    Phase,
    Step,
    Steps,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    BodyHash,
    Status,
    Response,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SiteFlags {
    Table,
    Name,
    Value,
    UpdatedBy,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PaperAccounts::Table)
                .if_not_exists()
                .col(big_pk_auto(PaperAccounts::Id))
                .col(big_integer(PaperAccounts::OwnerId))
                .col(string_len(PaperAccounts::Name, 100))
                .col(big_integer(PaperAccounts::StartingCash))
                .col(big_integer(PaperAccounts::Cash))
                .col(big_integer(PaperAccounts::Reserved))
                .col(big_integer(PaperAccounts::CommissionPpb))
                .col(big_integer(PaperAccounts::NextOrder))
                .col(big_integer(PaperAccounts::Commissions))
                .col(big_integer(PaperAccounts::Taxes))
                .col(string_len(PaperAccounts::State, 16))
                .col(boolean(PaperAccounts::Halted))
                .col(integer_null(PaperAccounts::LossHaltSession))
                .col(text(PaperAccounts::Limits))
                .col(big_integer(PaperAccounts::Version))
                .col(big_integer(PaperAccounts::CreatedAt))
                .col(big_integer(PaperAccounts::UpdatedAt))
                .col(big_integer_null(PaperAccounts::ClosedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_paper_accounts_owner")
                .table(PaperAccounts::Table)
                .col(PaperAccounts::OwnerId)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperOrders::Table)
                .if_not_exists()
                .col(big_pk_auto(PaperOrders::Id))
                .col(big_integer(PaperOrders::AccountId))
                .col(big_integer(PaperOrders::Seq))
                .col(string_len(PaperOrders::Ticker, 6))
                .col(string_len(PaperOrders::Market, 8))
                .col(string_len(PaperOrders::Side, 4))
                .col(string_len(PaperOrders::Kind, 8))
                .col(big_integer_null(PaperOrders::LimitPrice))
                .col(big_integer(PaperOrders::Quantity))
                .col(big_integer(PaperOrders::Filled))
                .col(integer(PaperOrders::Session))
                .col(string_len(PaperOrders::State, 20))
                .col(string_len_null(PaperOrders::Reason, 32))
                .col(big_integer(PaperOrders::Reserved))
                .col(string_len_null(PaperOrders::ClientOrderId, 64))
                .col(big_integer(PaperOrders::CreatedAt))
                .col(big_integer(PaperOrders::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uq_paper_orders_seq")
                .table(PaperOrders::Table)
                .col(PaperOrders::AccountId)
                .col(PaperOrders::Seq)
                .unique()
                .to_owned(),
        )
        .await?;
        // The matcher's lookup: a ticker's open orders of a session.
        m.create_index(
            Index::create()
                .name("idx_paper_orders_open")
                .table(PaperOrders::Table)
                .col(PaperOrders::Ticker)
                .col(PaperOrders::State)
                .col(PaperOrders::Session)
                .to_owned(),
        )
        .await?;
        // Orders per session (the daily count) and the duplicate check.
        m.create_index(
            Index::create()
                .name("idx_paper_orders_account_session")
                .table(PaperOrders::Table)
                .col(PaperOrders::AccountId)
                .col(PaperOrders::Session)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_paper_orders_account_state")
                .table(PaperOrders::Table)
                .col(PaperOrders::AccountId)
                .col(PaperOrders::State)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperFills::Table)
                .if_not_exists()
                .col(big_pk_auto(PaperFills::Id))
                .col(big_integer(PaperFills::AccountId))
                .col(big_integer(PaperFills::OrderId))
                .col(string_len(PaperFills::Ticker, 6))
                .col(string_len(PaperFills::Side, 4))
                .col(big_integer(PaperFills::Quantity))
                .col(big_integer(PaperFills::Price))
                .col(big_integer(PaperFills::Amount))
                .col(big_integer(PaperFills::Commission))
                .col(big_integer(PaperFills::Tax))
                .col(integer(PaperFills::TradeDate))
                .col(integer(PaperFills::SettlementDate))
                .col(string_len(PaperFills::PrintKey, 64))
                .col(big_integer(PaperFills::CreatedAt))
                .to_owned(),
        )
        .await?;
        // A print fills an order once: the matcher replaying a print after a crash inserts nothing.
        m.create_index(
            Index::create()
                .name("uq_paper_fills_print")
                .table(PaperFills::Table)
                .col(PaperFills::OrderId)
                .col(PaperFills::PrintKey)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_paper_fills_account")
                .table(PaperFills::Table)
                .col(PaperFills::AccountId)
                .col(PaperFills::Id)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperHoldings::Table)
                .if_not_exists()
                .col(big_integer(PaperHoldings::AccountId))
                .col(string_len(PaperHoldings::Ticker, 6))
                .col(big_integer(PaperHoldings::Quantity))
                .col(big_integer(PaperHoldings::Reserved))
                .col(big_integer(PaperHoldings::Cost))
                .primary_key(Index::create().col(PaperHoldings::AccountId).col(PaperHoldings::Ticker))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperEquity::Table)
                .if_not_exists()
                .col(big_integer(PaperEquity::AccountId))
                .col(integer(PaperEquity::Session))
                .col(big_integer(PaperEquity::Cash))
                .col(big_integer(PaperEquity::Equity))
                .col(big_integer(PaperEquity::CreatedAt))
                .primary_key(Index::create().col(PaperEquity::AccountId).col(PaperEquity::Session))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperQuotes::Table)
                .if_not_exists()
                .col(string_len(PaperQuotes::Ticker, 6).primary_key())
                .col(integer(PaperQuotes::Session))
                .col(big_integer(PaperQuotes::PrevClose))
                .col(big_integer(PaperQuotes::Last))
                .col(big_integer(PaperQuotes::Volume))
                .col(big_integer(PaperQuotes::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperMarket::Table)
                .if_not_exists()
                .col(integer(PaperMarket::Id).primary_key())
                .col(string_len(PaperMarket::Mode, 16))
                .col(integer(PaperMarket::Session))
                .col(string_len(PaperMarket::Phase, 16))
                .col(integer(PaperMarket::Step))
                .col(integer(PaperMarket::Steps))
                .col(big_integer(PaperMarket::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IdempotencyKeys::Table)
                .if_not_exists()
                .col(big_integer(IdempotencyKeys::UserId))
                .col(string_len(IdempotencyKeys::Key, 128))
                .col(string_len(IdempotencyKeys::BodyHash, 64))
                .col(integer(IdempotencyKeys::Status))
                .col(text_null(IdempotencyKeys::Response))
                .col(big_integer(IdempotencyKeys::CreatedAt))
                .primary_key(Index::create().col(IdempotencyKeys::UserId).col(IdempotencyKeys::Key))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SiteFlags::Table)
                .if_not_exists()
                .col(string_len(SiteFlags::Name, 64).primary_key())
                .col(string_len(SiteFlags::Value, 255))
                .col(big_integer_null(SiteFlags::UpdatedBy))
                .col(big_integer(SiteFlags::UpdatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SiteFlags::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperMarket::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperQuotes::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperEquity::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperHoldings::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperFills::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperOrders::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(PaperAccounts::Table).to_owned()).await
    }
}
