//! Shared application state.

use crate::cache::AuthCache;
use crate::settings::WebSettings;
use haechi_db::Db;
use haechi_db::entity::access_log;
use haechi_jobs::{Queue, RunEvents, RunNotice};
use haechi_objects::Objects;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What the run routes need beyond the database: the job queue, object storage for
/// reports, and the in-process run notices that wake live streams.
#[derive(Debug, Clone)]
pub struct RunServices {
    pub queue: Queue,
    pub objects: Objects,
    pub events: RunEvents,
}

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    settings: WebSettings,
    metrics: PrometheusHandle,
    access: mpsc::Sender<access_log::ActiveModel>,
    cache: AuthCache,
    services: RunServices,
}

impl AppState {
    #[must_use]
    pub fn new(
        db: Db,
        settings: WebSettings,
        metrics: PrometheusHandle,
        access: mpsc::Sender<access_log::ActiveModel>,
        services: RunServices,
    ) -> AppState {
        AppState { inner: Arc::new(Inner { db, settings, metrics, access, cache: AuthCache::default(), services }) }
    }
    #[must_use]
    pub fn services(&self) -> &RunServices {
        &self.inner.services
    }
    /// Wakes this process's live streams for the owner's run.
    pub fn notify_run(&self, owner_id: i64, run_id: i64) {
        let _ = self.inner.services.events.send(RunNotice { owner_id, run_id });
    }
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.inner.db
    }
    #[must_use]
    pub fn settings(&self) -> &WebSettings {
        &self.inner.settings
    }
    #[must_use]
    pub fn metrics(&self) -> &PrometheusHandle {
        &self.inner.metrics
    }
    #[must_use]
    pub fn cache(&self) -> &AuthCache {
        &self.inner.cache
    }
    #[must_use]
    pub fn access_log(&self) -> &mpsc::Sender<access_log::ActiveModel> {
        &self.inner.access
    }
}
