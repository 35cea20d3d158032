//! Shared application state.

use crate::cache::AuthCache;
use crate::settings::WebSettings;
use haechi_db::Db;
use haechi_db::entity::access_log;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::mpsc;

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
}

impl AppState {
    #[must_use]
    pub fn new(
        db: Db,
        settings: WebSettings,
        metrics: PrometheusHandle,
        access: mpsc::Sender<access_log::ActiveModel>,
    ) -> AppState {
        AppState { inner: Arc::new(Inner { db, settings, metrics, access, cache: AuthCache::default() }) }
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
