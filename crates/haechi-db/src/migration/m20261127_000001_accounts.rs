//! Accounts, sessions, API tokens, MFA recovery codes, throttling, role policies and the
//! access and audit logs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string_len, string_len_null, text,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    DisplayName,
    PasswordHash,
    Role,
    Disabled,
    TotpSecret,
    MfaEnabled,
    TotpLastStep,
    CreatedAt,
    PasswordChangedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    IdHash,
    Handle,
    UserId,
    CsrfToken,
    CreatedAt,
    LastSeenAt,
    ExpiresAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    Prefix,
    Scopes,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    At,
    UserId,
    ActorId,
    Event,
    Ip,
    RequestId,
    Detail,
}

#[derive(DeriveIden, Clone, Copy)]
enum AccessLog {
    Table,
    Id,
    At,
    RequestId,
    UserId,
    Ip,
    Method,
    Route,
    Status,
    LatencyUs,
}

#[derive(DeriveIden, Clone, Copy)]
enum LoginThrottle {
    Table,
    Key,
    Failures,
    LastFailureAt,
    BlockedUntil,
}

#[derive(DeriveIden, Clone, Copy)]
enum RolePolicies {
    Table,
    Role,
    RequireMfa,
}

fn owned_by_user<T: IntoIden + Copy + 'static>(table: T, col: T) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(table, col).to(Users::Table, Users::Id).on_delete(ForeignKeyAction::Cascade).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // Long but whole: one statement per table and index, in dependency order, as shipped.
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(big_pk_auto(Users::Id))
                .col(string_len(Users::Email, 254).unique_key())
                .col(string_len(Users::DisplayName, 100))
                .col(string_len(Users::PasswordHash, 255))
                .col(string_len(Users::Role, 16))
                .col(boolean(Users::Disabled))
                .col(string_len_null(Users::TotpSecret, 64))
                .col(boolean(Users::MfaEnabled))
                .col(big_integer_null(Users::TotpLastStep))
                .col(big_integer(Users::CreatedAt))
                .col(big_integer(Users::PasswordChangedAt))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(string_len(Sessions::IdHash, 64).primary_key())
                .col(string_len(Sessions::Handle, 32).unique_key())
                .col(big_integer(Sessions::UserId))
                .col(string_len(Sessions::CsrfToken, 64))
                .col(big_integer(Sessions::CreatedAt))
                .col(big_integer(Sessions::LastSeenAt))
                .col(big_integer(Sessions::ExpiresAt))
                .col(string_len(Sessions::Ip, 64))
                .col(string_len(Sessions::UserAgent, 255))
                .foreign_key(&mut owned_by_user(Sessions::Table, Sessions::UserId))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(big_pk_auto(ApiTokens::Id))
                .col(big_integer(ApiTokens::UserId))
                .col(string_len(ApiTokens::Name, 100))
                .col(string_len(ApiTokens::TokenHash, 64).unique_key())
                .col(string_len(ApiTokens::Prefix, 16))
                .col(string_len(ApiTokens::Scopes, 64))
                .col(big_integer(ApiTokens::CreatedAt))
                .col(big_integer_null(ApiTokens::ExpiresAt))
                .col(big_integer_null(ApiTokens::LastUsedAt))
                .col(big_integer_null(ApiTokens::RevokedAt))
                .foreign_key(&mut owned_by_user(ApiTokens::Table, ApiTokens::UserId))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RecoveryCodes::Table)
                .col(big_pk_auto(RecoveryCodes::Id))
                .col(big_integer(RecoveryCodes::UserId))
                .col(string_len(RecoveryCodes::CodeHash, 64).unique_key())
                .col(big_integer_null(RecoveryCodes::UsedAt))
                .foreign_key(&mut owned_by_user(RecoveryCodes::Table, RecoveryCodes::UserId))
                .take(),
        )
        .await?;
        // The logs keep no foreign key: they must outlive the users they mention.
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(big_integer(AuditLog::At))
                .col(big_integer_null(AuditLog::UserId))
                .col(big_integer_null(AuditLog::ActorId))
                .col(string_len(AuditLog::Event, 40))
                .col(string_len(AuditLog::Ip, 64))
                .col(string_len(AuditLog::RequestId, 64))
                .col(text(AuditLog::Detail))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(AccessLog::Table)
                .col(big_pk_auto(AccessLog::Id))
                .col(big_integer(AccessLog::At))
                .col(string_len(AccessLog::RequestId, 64))
                .col(big_integer_null(AccessLog::UserId))
                .col(string_len(AccessLog::Ip, 64))
                .col(string_len(AccessLog::Method, 10))
                .col(string_len(AccessLog::Route, 200))
                .col(integer(AccessLog::Status))
                .col(big_integer(AccessLog::LatencyUs))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(LoginThrottle::Table)
                .col(string_len(LoginThrottle::Key, 300).primary_key())
                .col(integer(LoginThrottle::Failures))
                .col(big_integer(LoginThrottle::LastFailureAt))
                .col(big_integer(LoginThrottle::BlockedUntil))
                .take(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(RolePolicies::Table)
                .col(string_len(RolePolicies::Role, 16).primary_key())
                .col(boolean(RolePolicies::RequireMfa))
                .take(),
        )
        .await?;
        for (name, table, cols) in [
            ("idx_sessions_user", Sessions::Table.into_iden(), vec![Sessions::UserId.into_iden()]),
            ("idx_api_tokens_user", ApiTokens::Table.into_iden(), vec![ApiTokens::UserId.into_iden()]),
            ("idx_audit_at", AuditLog::Table.into_iden(), vec![AuditLog::At.into_iden()]),
            ("idx_audit_user", AuditLog::Table.into_iden(), vec![AuditLog::UserId.into_iden()]),
            ("idx_access_at", AccessLog::Table.into_iden(), vec![AccessLog::At.into_iden()]),
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
            RolePolicies::Table.into_iden(),
            LoginThrottle::Table.into_iden(),
            AccessLog::Table.into_iden(),
            AuditLog::Table.into_iden(),
            RecoveryCodes::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).take()).await?;
        }
        Ok(())
    }
}
