//! Threat response: each account's threat events (de-duplicated by the guard crate's event
//! book, acknowledged by the user) and its guard state (the risk score, and which playbook
//! rules are active, so a rule fires once per episode across processes and restarts).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, big_integer_null, big_pk_auto, integer, string_len, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum ThreatEvents {
    Table,
    Id,
    UserId,
    Kind,
    Severity,
    Subject,
    Evidence,
    FirstSeen,
    LastSeen,
    Seen,
    AcknowledgedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum GuardStates {
    Table,
    UserId,
    Score,
    Components,
    ActiveRules,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(ThreatEvents::Table)
                .if_not_exists()
                .col(big_pk_auto(ThreatEvents::Id))
                .col(big_integer(ThreatEvents::UserId))
                .col(string_len(ThreatEvents::Kind, 32))
                .col(string_len(ThreatEvents::Severity, 16))
                .col(string_len(ThreatEvents::Subject, 64))
                .col(text(ThreatEvents::Evidence))
                .col(big_integer(ThreatEvents::FirstSeen))
                .col(big_integer(ThreatEvents::LastSeen))
                .col(integer(ThreatEvents::Seen))
                .col(big_integer_null(ThreatEvents::AcknowledgedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_threat_events_user")
                .table(ThreatEvents::Table)
                .col(ThreatEvents::UserId)
                .col(ThreatEvents::LastSeen)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(GuardStates::Table)
                .if_not_exists()
                .col(big_integer(GuardStates::UserId).primary_key())
                .col(integer(GuardStates::Score))
                .col(text(GuardStates::Components))
                .col(text(GuardStates::ActiveRules))
                .col(big_integer(GuardStates::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(GuardStates::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(ThreatEvents::Table).to_owned()).await
    }
}
