//! Paper trading's storage. The decisions (checks, reservations, matching) are
//! `haechi-paper`'s; this module loads what an operation needs and writes what it changed,
//! inside one transaction per account ([`PaperTxn`]).
//!
//! Concurrency: a transaction's first statement bumps the account's `version`. On MySQL that
//! locks the account's row until commit; on SQLite it takes the database's write lock at once
//! (a transaction that read first would fail on the lock upgrade instead of waiting). Either
//! way, operations on one account run one after another, from any number of processes.

use crate::entity::{
    idempotency_key, paper_account, paper_equity, paper_fill, paper_holding, paper_market, paper_order, paper_quote,
    site_flag,
};
use crate::repo::{Page, is_unique_violation};
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

pub type PaperAccountRow = paper_account::Model;
pub type PaperOrderRow = paper_order::Model;
pub type PaperFillRow = paper_fill::Model;
pub type PaperHoldingRow = paper_holding::Model;
pub type PaperEquityRow = paper_equity::Model;
pub type QuoteRow = paper_quote::Model;
pub type MarketRow = paper_market::Model;
pub type IdempotencyRow = idempotency_key::Model;

/// Order states that can still fill.
pub const OPEN_STATES: [&str; 2] = ["accepted", "partially_filled"];

/// A new mock account.
#[derive(Debug, Clone)]
pub struct NewPaperAccount {
    pub owner_id: i64,
    pub name: String,
    pub cash: i64,
    pub commission_ppb: i64,
    pub limits: String,
}

/// Which of an account's orders to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFilter {
    All,
    Open,
    Closed,
}

/// What happened to an idempotency key on arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// First use: the caller runs the request, then [`Db::finish_idempotency_key`].
    Claimed,
    /// Seen before with this hash.
    Seen(IdempotencyRow),
}

impl Db {
    /// # Errors
    /// The driver's error.
    pub async fn create_paper_account(&self, new: NewPaperAccount) -> Result<PaperAccountRow, DbError> {
        let now = now_ms();
        Ok(paper_account::ActiveModel {
            owner_id: Set(new.owner_id),
            name: Set(new.name),
            starting_cash: Set(new.cash),
            cash: Set(new.cash),
            reserved: Set(0),
            commission_ppb: Set(new.commission_ppb),
            next_order: Set(1),
            commissions: Set(0),
            taxes: Set(0),
            state: Set("open".into()),
            halted: Set(false),
            loss_halt_session: Set(None),
            limits: Set(new.limits),
            version: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            closed_at: Set(None),
            mirror: Set(false),
            ..Default::default()
        }
        .insert(self.connection())
        .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn paper_account(&self, id: i64) -> Result<Option<PaperAccountRow>, DbError> {
        Ok(paper_account::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// The owner's accounts, open ones first, oldest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn paper_accounts(&self, owner_id: i64) -> Result<Vec<PaperAccountRow>, DbError> {
        Ok(paper_account::Entity::find()
            .filter(paper_account::Column::OwnerId.eq(owner_id))
            .order_by_desc(paper_account::Column::State)
            .order_by_asc(paper_account::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Open accounts of every owner (the matcher's end-of-session work).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn open_paper_account_ids(&self) -> Result<Vec<i64>, DbError> {
        Ok(paper_account::Entity::find()
            .select_only()
            .column(paper_account::Column::Id)
            .filter(paper_account::Column::State.eq("open"))
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn count_paper_accounts(&self, owner_id: i64) -> Result<u64, DbError> {
        Ok(paper_account::Entity::find()
            .filter(paper_account::Column::OwnerId.eq(owner_id))
            .filter(paper_account::Column::State.eq("open"))
            .count(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn paper_order(&self, id: i64) -> Result<Option<PaperOrderRow>, DbError> {
        Ok(paper_order::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// An account's orders, newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn paper_orders(
        &self,
        account_id: i64,
        filter: OrderFilter,
        offset: u64,
        limit: u64,
    ) -> Result<Page<PaperOrderRow>, DbError> {
        let mut q = paper_order::Entity::find().filter(paper_order::Column::AccountId.eq(account_id));
        q = match filter {
            OrderFilter::All => q,
            OrderFilter::Open => q.filter(paper_order::Column::State.is_in(OPEN_STATES)),
            OrderFilter::Closed => q.filter(paper_order::Column::State.is_not_in(OPEN_STATES)),
        };
        let total = q.clone().count(self.connection()).await?;
        let items = q.order_by_desc(paper_order::Column::Id).offset(offset).limit(limit).all(self.connection()).await?;
        Ok(Page { items, total })
    }

    /// An account's fills, newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn paper_fills(&self, account_id: i64, offset: u64, limit: u64) -> Result<Page<PaperFillRow>, DbError> {
        let q = paper_fill::Entity::find().filter(paper_fill::Column::AccountId.eq(account_id));
        let total = q.clone().count(self.connection()).await?;
        let items = q.order_by_desc(paper_fill::Column::Id).offset(offset).limit(limit).all(self.connection()).await?;
        Ok(Page { items, total })
    }

    /// Every fill of an account, oldest first (for checks and reports).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn all_paper_fills(&self, account_id: i64) -> Result<Vec<PaperFillRow>, DbError> {
        Ok(paper_fill::Entity::find()
            .filter(paper_fill::Column::AccountId.eq(account_id))
            .order_by_asc(paper_fill::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn paper_holdings(&self, account_id: i64) -> Result<Vec<PaperHoldingRow>, DbError> {
        Ok(paper_holding::Entity::find()
            .filter(paper_holding::Column::AccountId.eq(account_id))
            .order_by_asc(paper_holding::Column::Ticker)
            .all(self.connection())
            .await?)
    }

    /// An account's equity at each close, oldest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn paper_equity(&self, account_id: i64) -> Result<Vec<PaperEquityRow>, DbError> {
        Ok(paper_equity::Entity::find()
            .filter(paper_equity::Column::AccountId.eq(account_id))
            .order_by_asc(paper_equity::Column::Session)
            .all(self.connection())
            .await?)
    }

    /// Accounts with open orders of a ticker for a session (whom a print concerns).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn accounts_with_open_orders(&self, ticker: &str, session: i32, price: i64) -> Result<Vec<i64>, DbError> {
        Ok(paper_order::Entity::find()
            .select_only()
            .column(paper_order::Column::AccountId)
            .distinct()
            .filter(paper_order::Column::Ticker.eq(ticker))
            .filter(paper_order::Column::State.is_in(OPEN_STATES))
            .filter(paper_order::Column::Session.eq(session))
            .filter(reached_by(price))
            .into_tuple()
            .all(self.connection())
            .await?)
    }

    /// Tickers with open orders for a session, or held by an open account: what the matcher
    /// subscribes to.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn watched_tickers(&self, session: i32) -> Result<Vec<String>, DbError> {
        let mut t: Vec<String> = paper_order::Entity::find()
            .select_only()
            .column(paper_order::Column::Ticker)
            .distinct()
            .filter(paper_order::Column::State.is_in(OPEN_STATES))
            .filter(paper_order::Column::Session.lte(session))
            .into_tuple()
            .all(self.connection())
            .await?;
        let held: Vec<String> = paper_holding::Entity::find()
            .select_only()
            .column(paper_holding::Column::Ticker)
            .distinct()
            .into_tuple()
            .all(self.connection())
            .await?;
        t.extend(held);
        t.sort_unstable();
        t.dedup();
        Ok(t)
    }

    /// Opens a transaction holding the account's write lock; `None` if there is no such account.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn paper_begin(&self, account_id: i64) -> Result<Option<PaperTxn>, DbError> {
        // Writers of one account queue here, in this process, instead of in the database:
        // SQLite's busy handler sleeps in growing steps, so fifty writers contending there
        // spend most of their time asleep.
        let gate = self.account_gate(account_id);
        let guard = gate.lock_owned().await;
        // Always the account's gate first, then the write turn: nobody takes them the other way.
        let turn = self.write_turn().await;
        let txn = self.connection().begin().await?;
        let bumped = paper_account::Entity::update_many()
            .col_expr(
                paper_account::Column::Version,
                sea_orm::sea_query::ExprTrait::add(Expr::col(paper_account::Column::Version), Expr::value(1)),
            )
            .filter(paper_account::Column::Id.eq(account_id))
            .exec(&txn)
            .await?;
        if bumped.rows_affected == 0 {
            return Ok(None);
        }
        let Some(account) = paper_account::Entity::find_by_id(account_id).one(&txn).await? else {
            return Ok(None);
        };
        Ok(Some(PaperTxn { txn, account, _turn: turn, _guard: guard }))
    }

    // ---- market state ----

    /// # Errors
    /// The driver's error.
    pub async fn quotes(&self, tickers: &[String]) -> Result<Vec<QuoteRow>, DbError> {
        Ok(paper_quote::Entity::find()
            .filter(paper_quote::Column::Ticker.is_in(tickers.iter().cloned()))
            .all(self.connection())
            .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn quote(&self, ticker: &str) -> Result<Option<QuoteRow>, DbError> {
        Ok(paper_quote::Entity::find_by_id(ticker.to_owned()).one(self.connection()).await?)
    }

    /// Records prints' last prices (one row per ticker).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn upsert_quotes(&self, rows: &[QuoteRow]) -> Result<(), DbError> {
        if rows.is_empty() {
            return Ok(());
        }
        let _turn = self.write_turn().await;
        paper_quote::Entity::insert_many(rows.iter().cloned().map(IntoActiveModel::into_active_model))
            .on_conflict(
                OnConflict::column(paper_quote::Column::Ticker)
                    .update_columns([
                        paper_quote::Column::Session,
                        paper_quote::Column::PrevClose,
                        paper_quote::Column::Last,
                        paper_quote::Column::Volume,
                        paper_quote::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error.
    pub async fn market_state(&self) -> Result<Option<MarketRow>, DbError> {
        Ok(paper_market::Entity::find_by_id(1).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_market_state(&self, row: MarketRow) -> Result<(), DbError> {
        let _turn = self.write_turn().await;
        paper_market::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::column(paper_market::Column::Id)
                    .update_columns([
                        paper_market::Column::Mode,
                        paper_market::Column::Session,
                        paper_market::Column::Phase,
                        paper_market::Column::Step,
                        paper_market::Column::Steps,
                        paper_market::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    // ---- site flags ----

    /// # Errors
    /// The driver's error.
    pub async fn site_flag(&self, name: &str) -> Result<Option<String>, DbError> {
        Ok(site_flag::Entity::find_by_id(name.to_owned()).one(self.connection()).await?.map(|f| f.value))
    }

    /// # Errors
    /// The driver's error.
    pub async fn set_site_flag(&self, name: &str, value: &str, by: Option<i64>) -> Result<(), DbError> {
        site_flag::Entity::insert(site_flag::ActiveModel {
            name: Set(name.to_owned()),
            value: Set(value.to_owned()),
            updated_by: Set(by),
            updated_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::column(site_flag::Column::Name)
                .update_columns([site_flag::Column::Value, site_flag::Column::UpdatedBy, site_flag::Column::UpdatedAt])
                .to_owned(),
        )
        .exec(self.connection())
        .await?;
        Ok(())
    }

    // ---- idempotency ----

    /// Claims `key` for a request with `hash`, or returns what an earlier request with the same
    /// key left (its hash, and its answer once finished).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_idempotency_key(&self, user_id: i64, key: &str, hash: &str) -> Result<KeyClaim, DbError> {
        let row = idempotency_key::ActiveModel {
            user_id: Set(user_id),
            key: Set(key.to_owned()),
            body_hash: Set(hash.to_owned()),
            status: Set(0),
            response: Set(None),
            created_at: Set(now_ms()),
        };
        match idempotency_key::Entity::insert(row).exec(self.connection()).await {
            Ok(_) => Ok(KeyClaim::Claimed),
            Err(e) if is_unique_violation(&e) => {
                let seen = idempotency_key::Entity::find_by_id((user_id, key.to_owned()))
                    .one(self.connection())
                    .await?
                    .ok_or(DbError::NotFound("idempotency key"))?;
                Ok(KeyClaim::Seen(seen))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stores the answer to replay for a claimed key.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn finish_idempotency_key(
        &self,
        user_id: i64,
        key: &str,
        status: i32,
        response: &str,
    ) -> Result<(), DbError> {
        idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::Status, Expr::value(status))
            .col_expr(idempotency_key::Column::Response, Expr::value(response.to_owned()))
            .filter(idempotency_key::Column::UserId.eq(user_id))
            .filter(idempotency_key::Column::Key.eq(key))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Forgets a claimed key whose request failed before answering (so a retry runs again).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn release_idempotency_key(&self, user_id: i64, key: &str) -> Result<(), DbError> {
        idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::UserId.eq(user_id))
            .filter(idempotency_key::Column::Key.eq(key))
            .filter(idempotency_key::Column::Status.eq(0))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Deletes keys older than `before_ms` (they are kept a day).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn prune_idempotency_keys(&self, before_ms: i64) -> Result<u64, DbError> {
        Ok(idempotency_key::Entity::delete_many()
            .filter(idempotency_key::Column::CreatedAt.lt(before_ms))
            .exec(self.connection())
            .await?
            .rows_affected)
    }
}

/// Orders a print at `price` can fill: market orders, buys limited at or above it, sells at
/// or below it. Orders far from the market are never loaded for a print.
fn reached_by(price: i64) -> sea_orm::Condition {
    use sea_orm::Condition;
    Condition::any()
        .add(paper_order::Column::Kind.eq("market"))
        .add(Condition::all().add(paper_order::Column::Side.eq("buy")).add(paper_order::Column::LimitPrice.gte(price)))
        .add(Condition::all().add(paper_order::Column::Side.eq("sell")).add(paper_order::Column::LimitPrice.lte(price)))
}

/// One account's transaction, holding its write lock. Dropped without [`PaperTxn::commit`],
/// it rolls back.
#[derive(Debug)]
pub struct PaperTxn {
    txn: DatabaseTransaction,
    /// The account as locked.
    pub account: PaperAccountRow,
    // Dropped after the transaction (fields drop in order): the turn first, then the gate.
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl PaperTxn {
    /// The account's holdings, all of them or one ticker's.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn holdings(&self, ticker: Option<&str>) -> Result<Vec<PaperHoldingRow>, DbError> {
        let mut q = paper_holding::Entity::find().filter(paper_holding::Column::AccountId.eq(self.account.id));
        if let Some(t) = ticker {
            q = q.filter(paper_holding::Column::Ticker.eq(t));
        }
        Ok(q.all(&self.txn).await?)
    }

    /// The account's open orders, optionally of one ticker and sessions up to one.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn open_orders(
        &self,
        ticker: Option<&str>,
        session_up_to: Option<i32>,
    ) -> Result<Vec<PaperOrderRow>, DbError> {
        let mut q = paper_order::Entity::find()
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .filter(paper_order::Column::State.is_in(OPEN_STATES));
        if let Some(t) = ticker {
            q = q.filter(paper_order::Column::Ticker.eq(t));
        }
        if let Some(s) = session_up_to {
            q = q.filter(paper_order::Column::Session.lte(s));
        }
        Ok(q.order_by_asc(paper_order::Column::Seq).all(&self.txn).await?)
    }

    /// The account's open orders of a ticker and session that a print at `price` reaches, in
    /// time order.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn orders_reached(&self, ticker: &str, session: i32, price: i64) -> Result<Vec<PaperOrderRow>, DbError> {
        Ok(paper_order::Entity::find()
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .filter(paper_order::Column::Ticker.eq(ticker))
            .filter(paper_order::Column::State.is_in(OPEN_STATES))
            .filter(paper_order::Column::Session.eq(session))
            .filter(reached_by(price))
            .order_by_asc(paper_order::Column::Seq)
            .all(&self.txn)
            .await?)
    }

    /// One of the account's orders.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn order(&self, id: i64) -> Result<Option<PaperOrderRow>, DbError> {
        Ok(paper_order::Entity::find_by_id(id)
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .one(&self.txn)
            .await?)
    }

    /// Orders accepted for a session (refused ones not counted).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn orders_for_session(&self, session: i32) -> Result<u64, DbError> {
        Ok(paper_order::Entity::find()
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .filter(paper_order::Column::Session.eq(session))
            .filter(paper_order::Column::State.ne("rejected"))
            .count(&self.txn)
            .await?)
    }

    /// Whether the same order (side, ticker, quantity, kind and price) was accepted since `since_ms`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn same_order_since(
        &self,
        ticker: &str,
        side: &str,
        kind: &str,
        limit_price: Option<i64>,
        quantity: i64,
        since_ms: i64,
    ) -> Result<bool, DbError> {
        let mut q = paper_order::Entity::find()
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .filter(paper_order::Column::Ticker.eq(ticker))
            .filter(paper_order::Column::Side.eq(side))
            .filter(paper_order::Column::Kind.eq(kind))
            .filter(paper_order::Column::Quantity.eq(quantity))
            .filter(paper_order::Column::State.ne("rejected"))
            .filter(paper_order::Column::CreatedAt.gte(since_ms));
        q = match limit_price {
            Some(p) => q.filter(paper_order::Column::LimitPrice.eq(p)),
            None => q.filter(paper_order::Column::LimitPrice.is_null()),
        };
        Ok(q.count(&self.txn).await? > 0)
    }

    /// The account's last equity snapshot before `session`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn equity_before(&self, session: i32) -> Result<Option<PaperEquityRow>, DbError> {
        Ok(paper_equity::Entity::find()
            .filter(paper_equity::Column::AccountId.eq(self.account.id))
            .filter(paper_equity::Column::Session.lt(session))
            .order_by_desc(paper_equity::Column::Session)
            .one(&self.txn)
            .await?)
    }

    /// Writes the account row as it is now in `self.account`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn save_account(&mut self) -> Result<(), DbError> {
        self.account.updated_at = now_ms();
        // Every column: the row was locked, nobody else wrote it.
        let mut am = self.account.clone().into_active_model().reset_all();
        am.id = sea_orm::ActiveValue::Unchanged(self.account.id);
        am.update(&self.txn).await?;
        Ok(())
    }

    /// Writes a holding; one with no shares and none promised is deleted.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn put_holding(&self, h: PaperHoldingRow) -> Result<(), DbError> {
        if h.quantity == 0 && h.reserved == 0 {
            paper_holding::Entity::delete_many()
                .filter(paper_holding::Column::AccountId.eq(h.account_id))
                .filter(paper_holding::Column::Ticker.eq(h.ticker))
                .exec(&self.txn)
                .await?;
            return Ok(());
        }
        paper_holding::Entity::insert(h.into_active_model())
            .on_conflict(
                OnConflict::columns([paper_holding::Column::AccountId, paper_holding::Column::Ticker])
                    .update_columns([
                        paper_holding::Column::Quantity,
                        paper_holding::Column::Reserved,
                        paper_holding::Column::Cost,
                    ])
                    .to_owned(),
            )
            .exec(&self.txn)
            .await?;
        Ok(())
    }

    /// Inserts orders in one statement (their `id`s are ignored) and returns them as stored,
    /// in the order given (found again by their account numbers).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn insert_orders(&self, orders: Vec<PaperOrderRow>) -> Result<Vec<PaperOrderRow>, DbError> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let seqs: Vec<i64> = orders.iter().map(|o| o.seq).collect();
        let rows = orders.into_iter().map(|o| {
            let mut am = o.into_active_model().reset_all();
            am.id = sea_orm::ActiveValue::NotSet;
            am
        });
        paper_order::Entity::insert_many(rows).exec(&self.txn).await?;
        let mut stored = paper_order::Entity::find()
            .filter(paper_order::Column::AccountId.eq(self.account.id))
            .filter(paper_order::Column::Seq.is_in(seqs.clone()))
            .all(&self.txn)
            .await?;
        stored.sort_by_key(|o| seqs.iter().position(|s| *s == o.seq));
        Ok(stored)
    }

    /// Appends audit entries inside the transaction: they stand or fall with what they record.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn audit_many(&self, entries: Vec<crate::NewAuditEntry>) -> Result<(), DbError> {
        if entries.is_empty() {
            return Ok(());
        }
        let at = now_ms();
        let rows = entries.into_iter().map(|e| e.into_row(at));
        crate::entity::audit_log::Entity::insert_many(rows).exec(&self.txn).await?;
        Ok(())
    }

    /// Writes an order's changed state.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn update_order(&self, o: PaperOrderRow) -> Result<(), DbError> {
        let id = o.id;
        let mut am = o.into_active_model().reset_all();
        am.id = sea_orm::ActiveValue::Unchanged(id);
        am.update(&self.txn).await?;
        Ok(())
    }

    /// Whether a print already filled this order (a replay after a crash).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn print_applied(&self, print_key: &str) -> Result<bool, DbError> {
        Ok(paper_fill::Entity::find()
            .filter(paper_fill::Column::AccountId.eq(self.account.id))
            .filter(paper_fill::Column::PrintKey.eq(print_key))
            .count(&self.txn)
            .await?
            > 0)
    }

    /// Inserts a fill (its `id` is ignored).
    ///
    /// # Errors
    /// [`DbError::Conflict`] when the print already filled the order.
    pub async fn insert_fill(&self, f: PaperFillRow) -> Result<PaperFillRow, DbError> {
        let mut am = f.into_active_model().reset_all();
        am.id = sea_orm::ActiveValue::NotSet;
        am.insert(&self.txn)
            .await
            .map_err(|e| if is_unique_violation(&e) { DbError::Conflict("fill") } else { e.into() })
    }

    /// Records the equity at a session's close (once per session).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn put_equity(&self, session: i32, cash: i64, equity: i64) -> Result<(), DbError> {
        paper_equity::Entity::insert(paper_equity::ActiveModel {
            account_id: Set(self.account.id),
            session: Set(session),
            cash: Set(cash),
            equity: Set(equity),
            created_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::columns([paper_equity::Column::AccountId, paper_equity::Column::Session])
                .update_columns([paper_equity::Column::Cash, paper_equity::Column::Equity])
                .to_owned(),
        )
        .exec(&self.txn)
        .await?;
        Ok(())
    }

    /// Deletes everything the account did (a reset): orders, fills, holdings, equity.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn wipe(&self) -> Result<(), DbError> {
        let id = self.account.id;
        paper_fill::Entity::delete_many().filter(paper_fill::Column::AccountId.eq(id)).exec(&self.txn).await?;
        paper_order::Entity::delete_many().filter(paper_order::Column::AccountId.eq(id)).exec(&self.txn).await?;
        paper_holding::Entity::delete_many().filter(paper_holding::Column::AccountId.eq(id)).exec(&self.txn).await?;
        paper_equity::Entity::delete_many().filter(paper_equity::Column::AccountId.eq(id)).exec(&self.txn).await?;
        Ok(())
    }

    /// # Errors
    /// The driver's error; nothing is kept then.
    pub async fn commit(self) -> Result<(), DbError> {
        self.txn.commit().await?;
        Ok(())
    }
}

// ---- mirroring to the KIS mock account ----

pub type MirrorOrderRow = crate::entity::paper_mirror_order::Model;

/// Mirror states that still have work for the mirroring job.
pub const MIRROR_WORK: [&str; 3] = ["pending", "sending", "sent"];

impl Db {
    /// # Errors
    /// The driver's error.
    pub async fn is_mirrored(&self, account_id: i64) -> Result<bool, DbError> {
        Ok(self.paper_account(account_id).await?.is_some_and(|a| a.mirror))
    }

    /// An account's mirrored orders, newest first; only a session's with `session`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn mirror_orders(&self, account_id: i64, session: Option<i32>) -> Result<Vec<MirrorOrderRow>, DbError> {
        use crate::entity::paper_mirror_order as m;
        let mut q = m::Entity::find().filter(m::Column::AccountId.eq(account_id));
        if let Some(s) = session {
            q = q.filter(m::Column::Session.eq(s));
        }
        Ok(q.order_by_desc(m::Column::OrderId).all(self.connection()).await?)
    }

    /// The mirrored orders the mirroring job still has work on (to send, or to cancel), oldest
    /// first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn mirror_work(&self, account_id: i64) -> Result<Vec<MirrorOrderRow>, DbError> {
        use crate::entity::paper_mirror_order as m;
        Ok(m::Entity::find()
            .filter(m::Column::AccountId.eq(account_id))
            .filter(m::Column::State.is_in(MIRROR_WORK))
            .filter(m::Column::CancelSent.eq(false))
            .order_by_asc(m::Column::OrderId)
            .all(self.connection())
            .await?)
    }

    /// Moves a mirrored order from state `from` to `to` if it is still in `from` (and, with
    /// `before`, was last changed before that time): true for the one caller that moved it, so
    /// two workers never both send an order or its cancel.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_mirror_order(
        &self,
        order_id: i64,
        from: &str,
        to: &str,
        before: Option<i64>,
    ) -> Result<bool, DbError> {
        use crate::entity::paper_mirror_order as m;
        let mut q = m::Entity::update_many()
            .col_expr(m::Column::State, Expr::value(to))
            .col_expr(m::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(m::Column::OrderId.eq(order_id))
            .filter(m::Column::State.eq(from));
        if let Some(t) = before {
            q = q.filter(m::Column::UpdatedAt.lt(t));
        }
        Ok(q.exec(self.connection()).await?.rows_affected == 1)
    }

    /// Marks a sent order's cancel as going to KIS: true for the one caller that marked it.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_mirror_cancel(&self, order_id: i64) -> Result<bool, DbError> {
        use crate::entity::paper_mirror_order as m;
        let r = m::Entity::update_many()
            .col_expr(m::Column::CancelSent, Expr::value(true))
            .col_expr(m::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(m::Column::OrderId.eq(order_id))
            .filter(m::Column::State.eq("sent"))
            .filter(m::Column::CancelSent.eq(false))
            .exec(self.connection())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// Stores a mirrored order's new state.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn update_mirror_order(&self, row: MirrorOrderRow) -> Result<(), DbError> {
        let mut am = row.into_active_model().reset_all();
        am.updated_at = Set(now_ms());
        am.update(self.connection()).await?;
        Ok(())
    }
}

impl PaperTxn {
    /// Records orders to mirror, `pending`, in the account's transaction: an accepted order is
    /// mirrored exactly when it is stored.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn add_mirror_orders(&self, orders: &[PaperOrderRow]) -> Result<(), DbError> {
        use crate::entity::paper_mirror_order as m;
        if orders.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let rows = orders.iter().map(|o| m::ActiveModel {
            order_id: Set(o.id),
            account_id: Set(o.account_id),
            session: Set(o.session),
            state: Set("pending".into()),
            branch: Set(None),
            broker_order_no: Set(None),
            cancel_sent: Set(false),
            kis_filled: Set(None),
            kis_price: Set(None),
            detail: Set(None),
            updated_at: Set(now),
        });
        m::Entity::insert_many(rows).exec(&self.txn).await?;
        Ok(())
    }
}
