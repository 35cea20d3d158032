//! Shared state of the HTTP edge: the application (use cases) plus what only HTTP needs.

use crate::settings::WebSettings;
use haechi_app::App;
use haechi_db::NewAccessEntry;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app: App,
    settings: WebSettings,
    metrics: PrometheusHandle,
    access: mpsc::Sender<NewAccessEntry>,
}

impl AppState {
    #[must_use]
    pub fn new(
        app: App,
        settings: WebSettings,
        metrics: PrometheusHandle,
        access: mpsc::Sender<NewAccessEntry>,
    ) -> AppState {
        AppState { inner: Arc::new(Inner { app, settings, metrics, access }) }
    }
    /// The use cases.
    #[must_use]
    pub fn app(&self) -> &App {
        &self.inner.app
    }
    #[must_use]
    pub fn db(&self) -> &haechi_db::Db {
        self.inner.app.db()
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
    pub fn access_log(&self) -> &mpsc::Sender<NewAccessEntry> {
        &self.inner.access
    }
}
