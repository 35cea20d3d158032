//! Mirroring paper orders to the KIS mock account (모의투자): which accounts mirror (a column
//! of the account, read with the account's lock at no extra cost), and each mirrored order's KIS
//! order number, state and what reconciliation found.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, boolean, integer, string_len, string_len_null, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PaperAccounts {
    Table,
    Mirror,
}

#[derive(DeriveIden, Clone, Copy)]
enum PaperMirrorOrders {
    Table,
    OrderId,
    AccountId,
    Session,
    State,
    Branch,
    BrokerOrderNo,
    CancelSent,
    KisFilled,
    KisPrice,
    Detail,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(PaperAccounts::Table)
                .add_column(boolean(PaperAccounts::Mirror).default(false))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(PaperMirrorOrders::Table)
                .if_not_exists()
                .col(big_integer(PaperMirrorOrders::OrderId).primary_key())
                .col(big_integer(PaperMirrorOrders::AccountId))
                .col(integer(PaperMirrorOrders::Session))
                .col(string_len(PaperMirrorOrders::State, 16))
                .col(string_len_null(PaperMirrorOrders::Branch, 16))
                .col(string_len_null(PaperMirrorOrders::BrokerOrderNo, 16))
                .col(boolean(PaperMirrorOrders::CancelSent))
                .col(big_integer_null(PaperMirrorOrders::KisFilled))
                .col(big_integer_null(PaperMirrorOrders::KisPrice))
                .col(text_null(PaperMirrorOrders::Detail))
                .col(big_integer(PaperMirrorOrders::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_paper_mirror_orders_account")
                .table(PaperMirrorOrders::Table)
                .col(PaperMirrorOrders::AccountId)
                .col(PaperMirrorOrders::Session)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(PaperMirrorOrders::Table).to_owned()).await?;
        m.alter_table(Table::alter().table(PaperAccounts::Table).drop_column(PaperAccounts::Mirror).to_owned()).await
    }
}
