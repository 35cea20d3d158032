//! Repositories: the only code that builds queries. Each function is one small, parameterised
//! statement (or a transaction of a few).

use crate::entity::{access_log, api_token, audit_log, login_throttle, recovery_code, role_policy, session, user};
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

pub type User = user::Model;
pub type Session = session::Model;
pub type ApiToken = api_token::Model;
pub type AuditEntry = audit_log::Model;
pub type AccessEntry = access_log::Model;

/// A user not yet stored. `email` must already be normalised (trimmed, lower-cased).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
}

/// A security event for the audit log.
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub user_id: Option<i64>,
    pub actor_id: Option<i64>,
    pub event: &'static str,
    pub ip: String,
    pub request_id: String,
    pub detail: serde_json::Value,
}

impl NewAuditEntry {
    /// The row it becomes, stamped `at`.
    pub(crate) fn into_row(self, at: i64) -> audit_log::ActiveModel {
        audit_log::ActiveModel {
            at: Set(at),
            user_id: Set(self.user_id),
            actor_id: Set(self.actor_id),
            event: Set(self.event.to_owned()),
            ip: Set(self.ip),
            request_id: Set(self.request_id),
            detail: Set(self.detail.to_string()),
            ..Default::default()
        }
    }
}

/// An API token not yet stored: only the hash of its secret.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub user_id: i64,
    pub name: String,
    pub token_hash: String,
    /// The first characters of the secret, shown to tell tokens apart.
    pub prefix: String,
    /// Space-separated scope names.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

/// One answered request for the access log.
#[derive(Debug, Clone)]
pub struct NewAccessEntry {
    pub at: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub ip: String,
    pub method: String,
    /// The matched route template, not the raw path.
    pub route: String,
    pub status: i32,
    pub latency_us: i64,
}

/// Filters for reading the audit or access log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub user_id: Option<i64>,
    /// Audit: event name; access: HTTP method.
    pub kind: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub status: Option<i32>,
    pub page: u64,
    pub per_page: u64,
}

/// One page of results with the total count, for paging.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

pub(crate) fn is_unique_violation(e: &sea_orm::DbErr) -> bool {
    matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

impl Db {
    // ---- users ----

    /// # Errors
    /// [`DbError::Conflict`] when the email is taken.
    pub async fn create_user(&self, new: NewUser) -> Result<User, DbError> {
        let now = now_ms();
        let am = user::ActiveModel {
            email: Set(new.email),
            display_name: Set(new.display_name),
            password_hash: Set(new.password_hash),
            role: Set(new.role),
            disabled: Set(false),
            totp_secret: Set(None),
            mfa_enabled: Set(false),
            totp_last_step: Set(None),
            created_at: Set(now),
            password_changed_at: Set(now),
            ..Default::default()
        };
        am.insert(self.connection()).await.map_err(|e| {
            if is_unique_violation(&e) { DbError::Conflict("an account with this email") } else { e.into() }
        })
    }

    /// # Errors
    /// The driver's error.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        Ok(user::Entity::find().filter(user::Column::Email.eq(email)).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, DbError> {
        Ok(user::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn list_users(&self, page: u64, per_page: u64) -> Result<Page<User>, DbError> {
        let pager = user::Entity::find().order_by_asc(user::Column::Id).paginate(self.connection(), per_page.max(1));
        Ok(Page { total: pager.num_items().await?, items: pager.fetch_page(page).await? })
    }

    /// # Errors
    /// The driver's error.
    pub async fn count_users(&self) -> Result<u64, DbError> {
        Ok(user::Entity::find().count(self.connection()).await?)
    }

    async fn update_user(&self, id: i64, f: impl FnOnce(&mut user::ActiveModel)) -> Result<bool, DbError> {
        let Some(u) = self.user_by_id(id).await? else { return Ok(false) };
        let mut am: user::ActiveModel = u.into();
        f(&mut am);
        am.update(self.connection()).await?;
        Ok(true)
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_role(&self, id: i64, role: &str) -> Result<bool, DbError> {
        self.update_user(id, |am| am.role = Set(role.to_owned())).await
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<bool, DbError> {
        self.update_user(id, |am| am.disabled = Set(disabled)).await
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_password(&self, id: i64, hash: String) -> Result<bool, DbError> {
        self.update_user(id, |am| {
            am.password_hash = Set(hash);
            am.password_changed_at = Set(now_ms());
        })
        .await
    }

    /// Stores a pending TOTP secret (not active until [`Db::enable_mfa`]).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn set_totp_secret(&self, id: i64, secret: Option<String>) -> Result<bool, DbError> {
        self.update_user(id, |am| {
            am.totp_secret = Set(secret);
            am.mfa_enabled = Set(false);
            am.totp_last_step = Set(None);
        })
        .await
    }

    /// Turns MFA on and stores the recovery code hashes, replacing any old ones.
    ///
    /// # Errors
    /// The driver's error; nothing changes then.
    pub async fn enable_mfa(&self, id: i64, step: i64, recovery_hashes: Vec<String>) -> Result<(), DbError> {
        let tx = self.connection().begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::MfaEnabled, Expr::value(true))
            .col_expr(user::Column::TotpLastStep, Expr::value(step))
            .filter(user::Column::Id.eq(id))
            .exec(&tx)
            .await?;
        recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(id)).exec(&tx).await?;
        let rows: Vec<recovery_code::ActiveModel> = recovery_hashes
            .into_iter()
            .map(|h| recovery_code::ActiveModel {
                user_id: Set(id),
                code_hash: Set(h),
                used_at: Set(None),
                ..Default::default()
            })
            .collect();
        if !rows.is_empty() {
            recovery_code::Entity::insert_many(rows).exec(&tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Turns MFA off and forgets the secret and recovery codes.
    ///
    /// # Errors
    /// The driver's error; nothing changes then.
    pub async fn disable_mfa(&self, id: i64) -> Result<(), DbError> {
        let tx = self.connection().begin().await?;
        user::Entity::update_many()
            .col_expr(user::Column::MfaEnabled, Expr::value(false))
            .col_expr(user::Column::TotpSecret, Expr::value(Option::<String>::None))
            .col_expr(user::Column::TotpLastStep, Expr::value(Option::<i64>::None))
            .filter(user::Column::Id.eq(id))
            .exec(&tx)
            .await?;
        recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(id)).exec(&tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records TOTP step `step` as used, only if it is later than the last used one. Returns
    /// whether it was accepted: a compare-and-set, so two concurrent logins with the same code
    /// cannot both pass.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn consume_totp_step(&self, id: i64, step: i64) -> Result<bool, DbError> {
        let res = user::Entity::update_many()
            .col_expr(user::Column::TotpLastStep, Expr::value(step))
            .filter(user::Column::Id.eq(id))
            .filter(Condition::any().add(user::Column::TotpLastStep.is_null()).add(user::Column::TotpLastStep.lt(step)))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Marks a recovery code used; returns whether it existed and was unused (compare-and-set).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn consume_recovery_code(&self, user_id: i64, code_hash: &str) -> Result<bool, DbError> {
        let res = recovery_code::Entity::update_many()
            .col_expr(recovery_code::Column::UsedAt, Expr::value(now_ms()))
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::CodeHash.eq(code_hash))
            .filter(recovery_code::Column::UsedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// # Errors
    /// The driver's error.
    pub async fn unused_recovery_codes(&self, user_id: i64) -> Result<u64, DbError> {
        Ok(recovery_code::Entity::find()
            .filter(recovery_code::Column::UserId.eq(user_id))
            .filter(recovery_code::Column::UsedAt.is_null())
            .count(self.connection())
            .await?)
    }

    // ---- sessions ----

    /// # Errors
    /// The driver's error.
    pub async fn create_session(&self, s: Session) -> Result<(), DbError> {
        session::ActiveModel::from(s).insert(self.connection()).await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn session_by_hash(&self, id_hash: &str) -> Result<Option<Session>, DbError> {
        Ok(session::Entity::find_by_id(id_hash.to_owned()).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn touch_session(&self, id_hash: &str, at: i64) -> Result<(), DbError> {
        session::Entity::update_many()
            .col_expr(session::Column::LastSeenAt, Expr::value(at))
            .filter(session::Column::IdHash.eq(id_hash))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        session::Entity::delete_by_id(id_hash.to_owned()).exec(self.connection()).await?;
        Ok(())
    }

    /// Ends a user's session by its public handle; false if it is not theirs or gone.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn delete_session_by_handle(&self, user_id: i64, handle: &str) -> Result<bool, DbError> {
        let res = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::Handle.eq(handle))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Ends every session of a user except `keep` (by hash).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn delete_other_sessions(&self, user_id: i64, keep: Option<&str>) -> Result<u64, DbError> {
        let mut q = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
        if let Some(k) = keep {
            q = q.filter(session::Column::IdHash.ne(k));
        }
        Ok(q.exec(self.connection()).await?.rows_affected)
    }

    /// # Errors
    /// The driver's error.
    pub async fn list_sessions(&self, user_id: i64) -> Result<Vec<Session>, DbError> {
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::ExpiresAt.gt(now_ms()))
            .order_by_desc(session::Column::CreatedAt)
            .all(self.connection())
            .await?)
    }

    // ---- API tokens ----

    /// # Errors
    /// The driver's error.
    pub async fn create_token(&self, t: NewToken) -> Result<ApiToken, DbError> {
        let row = api_token::ActiveModel {
            user_id: Set(t.user_id),
            name: Set(t.name),
            token_hash: Set(t.token_hash),
            prefix: Set(t.prefix),
            scopes: Set(t.scopes),
            created_at: Set(t.created_at),
            expires_at: Set(t.expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        };
        Ok(row.insert(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiToken>, DbError> {
        Ok(api_token::Entity::find().filter(api_token::Column::TokenHash.eq(hash)).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn touch_token(&self, id: i64, at: i64) -> Result<(), DbError> {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::LastUsedAt, Expr::value(at))
            .filter(api_token::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn list_tokens(&self, user_id: i64) -> Result<Vec<ApiToken>, DbError> {
        Ok(api_token::Entity::find()
            .filter(api_token::Column::UserId.eq(user_id))
            .order_by_asc(api_token::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Revokes every live token of `user_id` (after a password change or when the account is
    /// disabled); returns how many.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn revoke_all_tokens(&self, user_id: i64, at: i64) -> Result<u64, DbError> {
        let res = api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::value(at))
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected)
    }

    /// Revokes a token of `user_id`; false when it is not theirs or already revoked.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn revoke_token(&self, user_id: i64, token_id: i64) -> Result<bool, DbError> {
        let res = api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::value(now_ms()))
            .filter(api_token::Column::Id.eq(token_id))
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    // ---- logs ----

    /// Appends to the audit log (there is no update or delete).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn audit(&self, e: NewAuditEntry) -> Result<(), DbError> {
        self.audit_at(e, now_ms()).await
    }

    /// Appends to the audit log stamped `at` (the application's clock, which tests move).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn audit_at(&self, e: NewAuditEntry, at: i64) -> Result<(), DbError> {
        let _turn = self.write_turn().await;
        e.into_row(at).insert(self.connection()).await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn audit_entries(&self, q: &LogQuery) -> Result<Page<AuditEntry>, DbError> {
        let mut f = audit_log::Entity::find();
        if let Some(u) = q.user_id {
            f = f.filter(audit_log::Column::UserId.eq(u));
        }
        if let Some(k) = &q.kind {
            f = f.filter(audit_log::Column::Event.eq(k.as_str()));
        }
        if let Some(s) = q.since_ms {
            f = f.filter(audit_log::Column::At.gte(s));
        }
        if let Some(u) = q.until_ms {
            f = f.filter(audit_log::Column::At.lt(u));
        }
        let pager = f.order_by_desc(audit_log::Column::Id).paginate(self.connection(), q.per_page.max(1));
        Ok(Page { total: pager.num_items().await?, items: pager.fetch_page(q.page).await? })
    }

    /// Appends many access-log entries at once (written in batches off the request path).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn append_access(&self, entries: Vec<NewAccessEntry>) -> Result<(), DbError> {
        if !entries.is_empty() {
            let _turn = self.write_turn().await;
            let entries = entries.into_iter().map(|e| access_log::ActiveModel {
                at: Set(e.at),
                request_id: Set(e.request_id),
                user_id: Set(e.user_id),
                ip: Set(e.ip),
                method: Set(e.method),
                route: Set(e.route),
                status: Set(e.status),
                latency_us: Set(e.latency_us),
                ..Default::default()
            });
            access_log::Entity::insert_many(entries).exec(self.connection()).await?;
        }
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn access_entries(&self, q: &LogQuery) -> Result<Page<AccessEntry>, DbError> {
        let mut f = access_log::Entity::find();
        if let Some(u) = q.user_id {
            f = f.filter(access_log::Column::UserId.eq(u));
        }
        if let Some(k) = &q.kind {
            f = f.filter(access_log::Column::Method.eq(k.as_str()));
        }
        if let Some(s) = q.status {
            f = f.filter(access_log::Column::Status.eq(s));
        }
        if let Some(s) = q.since_ms {
            f = f.filter(access_log::Column::At.gte(s));
        }
        if let Some(u) = q.until_ms {
            f = f.filter(access_log::Column::At.lt(u));
        }
        let pager = f.order_by_desc(access_log::Column::Id).paginate(self.connection(), q.per_page.max(1));
        Ok(Page { total: pager.num_items().await?, items: pager.fetch_page(q.page).await? })
    }

    // ---- throttling ----

    /// Counts one attempt against `key` atomically and returns the count it brought the key
    /// to (failures since the window began, attempts in flight included). A count older than
    /// `window_ms` starts over. Callers verify only while the count is within their limit and
    /// refund the attempt when it succeeds, so concurrent requests can never verify more
    /// guesses than the limit, however many arrive at once.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_attempt(&self, key: &str, now: i64, window_ms: i64) -> Result<i32, DbError> {
        use sea_orm::{ConnectionTrait, DbBackend, Statement};
        let conn = self.connection();
        let backend = conn.get_database_backend();
        // One upsert: the increment and the window reset happen in the database, never as a
        // read-modify-write here. `failures` is assigned before `last_failure_at`, as MySQL
        // evaluates the assignments in order.
        let sql = match backend {
            DbBackend::MySql => {
                "INSERT INTO login_throttle (`key`, failures, last_failure_at, blocked_until) VALUES (?, 1, ?, 0) \
                 ON DUPLICATE KEY UPDATE failures = IF(last_failure_at < ?, 1, failures + 1), last_failure_at = ?"
            }
            _ => {
                "INSERT INTO login_throttle (\"key\", failures, last_failure_at, blocked_until) VALUES (?, 1, ?, 0) \
                 ON CONFLICT(\"key\") DO UPDATE SET failures = CASE WHEN last_failure_at < ? THEN 1 ELSE failures + 1 END, \
                 last_failure_at = ?"
            }
        };
        let cutoff = now.saturating_sub(window_ms);
        // The upsert holds the row (InnoDB) or the database (SQLite) for writing until the
        // commit, so the read in the same transaction sees this attempt's count and no other's.
        let txn = conn.begin().await?;
        let values = [key.into(), now.into(), cutoff.into(), now.into()];
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
        let row = login_throttle::Entity::find_by_id(key.to_owned()).one(&txn).await?;
        txn.commit().await?;
        Ok(row.map_or(1, |r| r.failures))
    }

    /// Gives back one attempt counted by [`Db::count_attempt`] (it succeeded).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn refund_attempt(&self, key: &str) -> Result<(), DbError> {
        login_throttle::Entity::update_many()
            .col_expr(
                login_throttle::Column::Failures,
                sea_orm::sea_query::ExprTrait::sub(Expr::col(login_throttle::Column::Failures), Expr::value(1)),
            )
            .filter(login_throttle::Column::Key.eq(key))
            .filter(login_throttle::Column::Failures.gt(0))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Blocks `key` until `until` (Unix ms), unless it is already blocked longer.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn block_until(&self, key: &str, until: i64) -> Result<(), DbError> {
        login_throttle::Entity::update_many()
            .col_expr(login_throttle::Column::BlockedUntil, Expr::value(until))
            .filter(login_throttle::Column::Key.eq(key))
            .filter(login_throttle::Column::BlockedUntil.lt(until))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn throttle(&self, key: &str) -> Result<Option<login_throttle::Model>, DbError> {
        Ok(login_throttle::Entity::find_by_id(key.to_owned()).one(self.connection()).await?)
    }

    /// Stores the throttle state of a key (insert or replace).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn put_throttle(&self, m: login_throttle::Model) -> Result<(), DbError> {
        login_throttle::Entity::insert(login_throttle::ActiveModel::from(m))
            .on_conflict(
                OnConflict::column(login_throttle::Column::Key)
                    .update_columns([
                        login_throttle::Column::Failures,
                        login_throttle::Column::LastFailureAt,
                        login_throttle::Column::BlockedUntil,
                    ])
                    .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn clear_throttle(&self, key: &str) -> Result<(), DbError> {
        login_throttle::Entity::delete_by_id(key.to_owned()).exec(self.connection()).await?;
        Ok(())
    }

    // ---- role policies ----

    /// # Errors
    /// The driver's error.
    pub async fn role_requires_mfa(&self, role: &str) -> Result<bool, DbError> {
        Ok(role_policy::Entity::find_by_id(role.to_owned())
            .one(self.connection())
            .await?
            .is_some_and(|p| p.require_mfa))
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_role_requires_mfa(&self, role: &str, require: bool) -> Result<(), DbError> {
        role_policy::Entity::insert(role_policy::ActiveModel { role: Set(role.to_owned()), require_mfa: Set(require) })
            .on_conflict(
                OnConflict::column(role_policy::Column::Role).update_column(role_policy::Column::RequireMfa).to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn role_policies(&self) -> Result<Vec<role_policy::Model>, DbError> {
        Ok(role_policy::Entity::find().order_by_asc(role_policy::Column::Role).all(self.connection()).await?)
    }
}
