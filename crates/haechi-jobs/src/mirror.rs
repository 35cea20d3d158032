//! Mirroring paper orders to the KIS mock account (모의투자), opt-in per account.
//!
//! - [`MirrorJob`] (`paper.mirror`, queue `paper`): sends an account's new mirrored orders to
//!   KIS, and the cancels of the ones cancelled since, through the shared client (its rate
//!   limiter, token and archive). An order is sent at most once: it is marked `sending`
//!   before the call, and an order found `sending` again (the worker died waiting for KIS's
//!   answer) becomes `unknown` rather than being sent twice; reconciliation finds it by its
//!   ticker, side and quantity.
//! - [`ReconcileJob`] (`paper.reconcile`): after a session closes, compares what KIS filled of
//!   each mirrored order with what the paper matcher filled, and flags every difference
//!   (`differs`, with both sides in `detail`, audited as `paper_mirror_differences`).
//!
//! Real-money orders stay refused by the KIS client unless explicitly enabled; the platform
//! offers mirroring only on the mock environment.

use chrono::{Duration as Days, NaiveDate};
use haechi_db::{Db, NewAuditEntry, PaperOrderRow};
use haechi_kis::model::{OrderKind, OrderRequest, ReviseCancel, ReviseCancelRequest, Side};
use haechi_kis::{KisClient, KisError};
use haechi_queue::{HandlerError, Job, JobContext, JobHandler};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

use crate::market::{day_from_number, day_number};

/// Send an account's pending mirrored orders (and cancels) to KIS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorJob {
    pub account_id: i64,
}

impl Job for MirrorJob {
    const KIND: &'static str = "paper.mirror";
    const QUEUE: &'static str = crate::queues::PAPER;
}

/// Compare an account's mirrored orders of a session with KIS's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileJob {
    pub account_id: i64,
    /// yyyymmdd.
    pub session: i32,
}

impl Job for ReconcileJob {
    const KIND: &'static str = "paper.reconcile";
    const QUEUE: &'static str = crate::queues::PAPER;
}

/// How long an order may stay `sending` before it is taken for lost (longer than the KIS
/// client's timeouts and retries together).
const SENDING_LEASE_MS: i64 = 5 * 60 * 1000;

/// Executes [`MirrorJob`]s and [`ReconcileJob`]s with a KIS client on the mock environment.
#[derive(Clone)]
pub struct Mirror {
    db: Db,
    client: KisClient,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror").finish_non_exhaustive()
    }
}

fn db_error(e: haechi_db::DbError) -> HandlerError {
    HandlerError::Retryable(e.to_string())
}

/// An order number as KIS pads it (`0000012345`) or not: compared without the zeros.
fn same_no(a: &str, b: &str) -> bool {
    a.trim().trim_start_matches('0') == b.trim().trim_start_matches('0')
}

fn kis_side(o: &PaperOrderRow) -> Side {
    if o.side == "sell" { Side::Sell } else { Side::Buy }
}

impl Mirror {
    #[must_use]
    pub fn new(db: Db, client: KisClient) -> std::sync::Arc<Mirror> {
        std::sync::Arc::new(Mirror { db, client })
    }

    /// Works through the account's mirrored orders once. Returns how many calls went to KIS.
    /// Jobs of one account may run at once on several workers: each order (and each cancel)
    /// is claimed by a conditional update before its call, so only one of them sends it.
    ///
    /// # Errors
    /// The database's error (the job is retried; what was sent is recorded as sent first).
    pub async fn mirror(&self, account_id: i64) -> Result<usize, HandlerError> {
        let mut calls = 0;
        for mut row in self.db.mirror_work(account_id).await.map_err(db_error)? {
            let Some(order) = self.db.paper_order(row.order_id).await.map_err(db_error)? else { continue };
            match row.state.as_str() {
                "pending" if matches!(order.state.as_str(), "cancelled" | "rejected") => {
                    if !self.db.claim_mirror_order(row.order_id, "pending", "skipped", None).await.map_err(db_error)? {
                        continue;
                    }
                    row.state = "skipped".into();
                    row.detail = Some(format!("the paper order was {} before it was sent", order.state));
                }
                "pending" => {
                    if !self.db.claim_mirror_order(row.order_id, "pending", "sending", None).await.map_err(db_error)? {
                        continue;
                    }
                    calls += 1;
                    let kind = match order.limit_price {
                        Some(price) => OrderKind::Limit { price },
                        None => OrderKind::Market,
                    };
                    let req = OrderRequest {
                        ticker: order.ticker.clone(),
                        side: kis_side(&order),
                        kind,
                        quantity: order.quantity,
                    };
                    match self.client.order(&req).await {
                        Ok(ack) => {
                            row.state = "sent".into();
                            row.branch = Some(ack.branch);
                            row.broker_order_no = Some(ack.order_no);
                        }
                        // No answer: KIS may or may not have the order. Never sent twice.
                        Err(e @ (KisError::Transport { .. } | KisError::Unavailable { .. })) => {
                            row.state = "unknown".into();
                            row.detail = Some(format!("no answer from KIS ({e}); reconciliation will look for it"));
                        }
                        Err(e) => {
                            row.state = "failed".into();
                            row.detail = Some(e.to_string());
                        }
                    }
                }
                // Claimed long ago and never answered: the worker died waiting for KIS.
                "sending" => {
                    let before = chrono::Utc::now().timestamp_millis() - SENDING_LEASE_MS;
                    if !self
                        .db
                        .claim_mirror_order(row.order_id, "sending", "unknown", Some(before))
                        .await
                        .map_err(db_error)?
                    {
                        continue;
                    }
                    row.state = "unknown".into();
                    row.detail = Some("interrupted while KIS was answering; reconciliation will look for it".into());
                }
                "sent" if order.state == "cancelled" => {
                    let (Some(branch), Some(no)) = (row.branch.clone(), row.broker_order_no.clone()) else { continue };
                    if !self.db.claim_mirror_cancel(row.order_id).await.map_err(db_error)? {
                        continue;
                    }
                    calls += 1;
                    row.cancel_sent = true;
                    let req = ReviseCancelRequest {
                        branch,
                        original_order_no: no,
                        action: ReviseCancel::Cancel,
                        quantity: None,
                    };
                    if let Err(e) = self.client.revise_cancel(&req).await {
                        // Filled at KIS meanwhile, say: reconciliation shows the difference.
                        row.detail = Some(format!("the cancel was refused: {e}"));
                    }
                }
                _ => continue,
            }
            self.db.update_mirror_order(row).await.map_err(db_error)?;
        }
        Ok(calls)
    }

    /// Compares the session's mirrored orders with KIS's own record of them. Returns the
    /// number of differences.
    ///
    /// # Errors
    /// KIS's or the database's error (the job is retried).
    pub async fn reconcile(&self, account_id: i64, session: i32) -> Result<usize, HandlerError> {
        let rows = self.db.mirror_orders(account_id, Some(session)).await.map_err(db_error)?;
        if rows.is_empty() {
            return Ok(0);
        }
        // KIS dates orders by the day they reached it, which for an order placed the evening
        // before is not the paper session: look from the day before the first was stored.
        let first_ms = rows.iter().map(|r| r.updated_at).min().unwrap_or(0);
        let stored = chrono::DateTime::from_timestamp_millis(first_ms + 9 * 3_600_000)
            .map_or(NaiveDate::MIN, |d| d.date_naive());
        let today = (chrono::Utc::now() + Days::hours(9)).date_naive();
        let paper_day = day_from_number(session).unwrap_or(today);
        let from = stored.min(paper_day) - Days::days(1);
        let to = today.max(paper_day);
        let kis = self.client.daily_orders(from, to).await.map_err(|e| HandlerError::Retryable(e.to_string()))?;
        let mut claimed: HashSet<String> = rows.iter().filter_map(|r| r.broker_order_no.clone()).collect();
        let mut differences = 0;
        let mut matched = 0;
        for mut row in rows {
            let Some(order) = self.db.paper_order(row.order_id).await.map_err(db_error)? else { continue };
            if matches!(row.state.as_str(), "pending" | "sending" | "failed" | "skipped") {
                continue;
            }
            if row.broker_order_no.is_none() {
                // `unknown`: adopt a KIS order of the same ticker, side and quantity no other
                // mirrored order claims.
                let side = kis_side(&order);
                if let Some(k) = kis.iter().find(|k| {
                    k.ticker == order.ticker
                        && k.side == Some(side)
                        && k.quantity == order.quantity
                        && !claimed.iter().any(|c| same_no(c, &k.order_no))
                }) {
                    claimed.insert(k.order_no.clone());
                    row.broker_order_no = Some(k.order_no.clone());
                }
            }
            let found = row.broker_order_no.as_deref().and_then(|no| kis.iter().find(|k| same_no(&k.order_no, no)));
            match found {
                None => {
                    row.state = "differs".into();
                    row.detail = Some(format!(
                        "KIS has no record of the order; paper filled {} of {}",
                        order.filled, order.quantity
                    ));
                    differences += 1;
                }
                Some(k) => {
                    row.kis_filled = Some(k.filled_quantity);
                    row.kis_price = Some(k.average_fill_price);
                    if k.filled_quantity == order.filled {
                        row.state = "matched".into();
                        row.detail = None;
                        matched += 1;
                    } else {
                        row.state = "differs".into();
                        row.detail = Some(format!(
                            "KIS filled {} at {} won on average; paper filled {} of {}",
                            k.filled_quantity, k.average_fill_price, order.filled, order.quantity
                        ));
                        differences += 1;
                    }
                }
            }
            self.db.update_mirror_order(row).await.map_err(db_error)?;
        }
        let owner = self.db.paper_account(account_id).await.map_err(db_error)?.map(|a| a.owner_id);
        let entry = NewAuditEntry {
            user_id: owner,
            actor_id: None,
            event: if differences > 0 { "paper_mirror_differences" } else { "paper_mirror_reconciled" },
            ip: String::new(),
            request_id: String::new(),
            detail: serde_json::json!({
                "account": account_id, "session": day_from_number(session).map(|d| d.to_string()),
                "matched": matched, "differences": differences,
            }),
        };
        self.db.audit(entry).await.map_err(db_error)?;
        Ok(differences)
    }
}

/// The handler of [`MirrorJob`].
impl JobHandler for Mirror {
    type Job = MirrorJob;

    async fn handle(&self, job: MirrorJob, _ctx: JobContext) -> Result<(), HandlerError> {
        self.mirror(job.account_id).await.map(|_| ())
    }
}

/// The handler of [`ReconcileJob`] (a second registration of the same client).
#[derive(Debug, Clone)]
pub struct Reconciler(pub std::sync::Arc<Mirror>);

impl JobHandler for Reconciler {
    type Job = ReconcileJob;

    async fn handle(&self, job: ReconcileJob, _ctx: JobContext) -> Result<(), HandlerError> {
        self.0.reconcile(job.account_id, job.session).await.map(|_| ())
    }
}

/// Reconciliation jobs for every mirrored account with mirrored orders in `session`.
///
/// # Errors
/// The database's error.
pub async fn reconcile_jobs(
    db: &Db,
    account_ids: &[i64],
    session: NaiveDate,
) -> Result<Vec<ReconcileJob>, haechi_db::DbError> {
    let day = day_number(session);
    let mut jobs = Vec::new();
    let mut seen = HashSet::new();
    for &id in account_ids {
        if seen.insert(id) && !db.mirror_orders(id, Some(day)).await?.is_empty() {
            jobs.push(ReconcileJob { account_id: id, session: day });
        }
    }
    Ok(jobs)
}
