//! The running engine: builds the store, the ingest writer and the router
//! from [`Settings`], binds the listener first (so port 0 works and tests
//! never sleep), and shuts down gracefully: stop accepting, answer what is in
//! flight, commit what was queued, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use coliseum_domain::clock::{Clock, SystemClock};
use coliseum_engine::{IngestWriter, PipelineStats};
use coliseum_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::settings::Settings;
use crate::{observability, routes};

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub ingest: IngestWriter,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<PipelineStats>,
    pub settings: Arc<Settings>,
    /// KiB of delivery bodies being read, parsed or committed at once: what
    /// bounds the memory of ingestion however many connections are open.
    pub ingest_body_budget: Arc<tokio::sync::Semaphore>,
}

/// Opens the store named by a database URL, migrating it.
pub async fn open_store(database_url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = if database_url.starts_with("sqlite:") {
        Arc::new(
            coliseum_store_sqlite::SqliteStore::connect(database_url)
                .await
                .context("opening SQLite")?,
        )
    } else {
        Arc::new(
            coliseum_store_postgres::PostgresStore::connect(database_url)
                .await
                .context("opening PostgreSQL")?,
        )
    };
    Ok(store)
}

/// A built engine, bound to its address, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    writer_task: JoinHandle<()>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        observability::install_metrics_recorder();
        let store = open_store(&settings.database_url).await?;
        let stats = Arc::new(PipelineStats::default());
        let (ingest, writer_task) = IngestWriter::start(store.clone(), settings.ingest, stats.clone());
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        let ingest_body_budget = Arc::new(tokio::sync::Semaphore::new(settings.ingest_inflight_kib()));
        let state = AppState {
            store,
            ingest,
            clock,
            stats,
            settings: Arc::new(settings),
            ingest_body_budget,
        };
        Ok(Self {
            listener,
            state,
            writer_task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        // Invariant: a bound listener has an address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then drains: requests in flight are
    /// answered and every entry acknowledged is committed before returning.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            writer_task,
        } = self;
        let ingest = state.ingest.clone();
        let router = routes::router(state);
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        ingest.shutdown();
        writer_task.await.context("the ingest writer failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
