//! HTTP routes under `/api/v1`.

pub mod admin;
pub mod auth;
pub mod health;
pub mod me;
pub mod runs;
pub mod scenarios;

use crate::auth::extract::ClientInfo;
use crate::state::AppState;
use haechi_db::NewAuditEntry;

/// Writes an audit entry; a failure to audit is logged, never hidden.
pub(crate) async fn audit(
    state: &AppState,
    client: &ClientInfo,
    event: &'static str,
    user_id: Option<i64>,
    actor_id: Option<i64>,
    detail: serde_json::Value,
) {
    let entry = NewAuditEntry {
        user_id,
        actor_id,
        event,
        ip: client.ip.clone(),
        request_id: client.request_id.clone(),
        detail,
    };
    if let Err(e) = state.db().audit(entry).await {
        tracing::error!(error = %e, event, "audit write failed");
    }
}
