//! Who asked, from where: what every audited use case records.

use crate::App;
use haechi_core::platform::UserId;
use haechi_db::NewAuditEntry;

/// The request behind a use case, for the audit log and throttling. The CLI and the demo
/// use [`RequestMeta::local`].
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: String,
    pub request_id: String,
    pub user_agent: String,
}

impl RequestMeta {
    /// A command run on the server itself (CLI, demo).
    #[must_use]
    pub fn local(what: &str) -> RequestMeta {
        RequestMeta { ip: "local".into(), request_id: what.into(), user_agent: String::new() }
    }
}

/// Writes an audit entry; a failure to audit is logged, never hidden.
pub async fn record(
    app: &App,
    meta: &RequestMeta,
    event: &'static str,
    user: Option<UserId>,
    actor: Option<UserId>,
    detail: serde_json::Value,
) {
    let entry = NewAuditEntry {
        user_id: user.map(UserId::get),
        actor_id: actor.map(UserId::get),
        event,
        ip: meta.ip.clone(),
        request_id: meta.request_id.clone(),
        detail,
    };
    if let Err(e) = app.db().audit_at(entry, app.clock().now_ms()).await {
        tracing::error!(error = %e, event, "audit write failed");
    }
}
