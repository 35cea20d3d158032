//! Threat response's rows: an account's threat events and guard state, and the slice of the
//! audit log its security detectors read.

use crate::entity::{audit_log, guard_state, threat_event};
use crate::{AuditEntry, Db, DbError};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

pub type ThreatEventRow = threat_event::Model;
pub type GuardState = guard_state::Model;

/// A threat event not yet stored.
#[derive(Debug, Clone)]
pub struct NewThreatEvent {
    pub user_id: i64,
    pub kind: String,
    pub severity: String,
    pub subject: String,
    pub evidence: String,
    pub at: i64,
}

impl Db {
    /// An account's audit entries of the given kinds since `since_ms`, newest first, at most
    /// `limit` (a credential-stuffing flood must not make a scan read without bound).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn audit_of_user(
        &self,
        user_id: i64,
        events: &[&str],
        since_ms: i64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, DbError> {
        Ok(audit_log::Entity::find()
            .filter(audit_log::Column::UserId.eq(user_id))
            .filter(audit_log::Column::At.gte(since_ms))
            .filter(audit_log::Column::Event.is_in(events.iter().copied()))
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// An account's threat events last seen at or after `since_ms`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn threat_events(&self, user_id: i64, since_ms: i64, limit: u64) -> Result<Vec<ThreatEventRow>, DbError> {
        let mut rows = threat_event::Entity::find()
            .filter(threat_event::Column::UserId.eq(user_id))
            .filter(threat_event::Column::LastSeen.gte(since_ms))
            .order_by_desc(threat_event::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?;
        rows.reverse();
        Ok(rows)
    }

    /// # Errors
    /// The driver's error.
    pub async fn insert_threat_event(&self, e: NewThreatEvent) -> Result<i64, DbError> {
        let _turn = self.write_turn().await;
        let row = threat_event::ActiveModel {
            user_id: Set(e.user_id),
            kind: Set(e.kind),
            severity: Set(e.severity),
            subject: Set(e.subject),
            evidence: Set(e.evidence),
            first_seen: Set(e.at),
            last_seen: Set(e.at),
            seen: Set(1),
            acknowledged_at: Set(None),
            ..Default::default()
        }
        .insert(self.connection())
        .await?;
        Ok(row.id)
    }

    /// A repeat of an open event: when it was last seen, how often, and the latest evidence.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn touch_threat_event(&self, id: i64, at: i64, seen: i32, evidence: String) -> Result<(), DbError> {
        let _turn = self.write_turn().await;
        threat_event::Entity::update_many()
            .col_expr(threat_event::Column::LastSeen, Expr::value(at))
            .col_expr(threat_event::Column::Seen, Expr::value(seen))
            .col_expr(threat_event::Column::Evidence, Expr::value(evidence))
            .filter(threat_event::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Acknowledges an event of `user_id`; false when it is not theirs or already acknowledged.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn acknowledge_threat_event(&self, user_id: i64, id: i64, at: i64) -> Result<bool, DbError> {
        let _turn = self.write_turn().await;
        let res = threat_event::Entity::update_many()
            .col_expr(threat_event::Column::AcknowledgedAt, Expr::value(at))
            .filter(threat_event::Column::Id.eq(id))
            .filter(threat_event::Column::UserId.eq(user_id))
            .filter(threat_event::Column::AcknowledgedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// # Errors
    /// The driver's error.
    pub async fn guard_state(&self, user_id: i64) -> Result<Option<GuardState>, DbError> {
        Ok(guard_state::Entity::find_by_id(user_id).one(self.connection()).await?)
    }

    /// Stores an account's guard state (insert or replace).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn put_guard_state(&self, s: GuardState) -> Result<(), DbError> {
        let _turn = self.write_turn().await;
        let row = guard_state::ActiveModel {
            user_id: Set(s.user_id),
            score: Set(s.score),
            components: Set(s.components),
            active_rules: Set(s.active_rules),
            updated_at: Set(s.updated_at),
        };
        // One statement, so two processes scanning one account cannot both insert.
        guard_state::Entity::insert(row)
            .on_conflict(
                OnConflict::column(guard_state::Column::UserId)
                    .update_columns([
                        guard_state::Column::Score,
                        guard_state::Column::Components,
                        guard_state::Column::ActiveRules,
                        guard_state::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// The gate of one account's guard scans in this process: two sign-ins at once must not
    /// both raise the same event.
    pub fn guard_gate(&self, user_id: i64) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        // Account gates are keyed by mock-account id; guard gates live on the negative side
        // of the same map so neither grows a second cleanup path.
        self.account_gate(-user_id)
    }
}
