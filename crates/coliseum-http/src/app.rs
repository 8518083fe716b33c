//! The running engine: builds the store, the ingest writer and the router
//! from [`Settings`], binds the listener first (so port 0 works and tests
//! never sleep), and shuts down gracefully: stop accepting, answer what is in
//! flight, commit what was queued, exit.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use coliseum_domain::clock::{Clock, SystemClock};
use coliseum_engine::dna::{Dna, DnaSettings};
use coliseum_engine::health::{HealthHistory, pipeline_health};
use coliseum_engine::hot::HotState;
use coliseum_engine::names::DisplayNames;
use coliseum_engine::reads::Reads;
use coliseum_engine::{IngestWriter, PipelineStats, Processor, ProcessorConfig};
use coliseum_store::Store;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::settings::Settings;
use crate::{observability, routes};

/// What every handler can reach, behind one shared pointer. Every request
/// clones the state (each extractor and layer takes its own): as a struct
/// of twenty shared pointers that was twenty atomic increments and
/// decrements on counters both cores contend for, a sixth of the CPU time
/// of the mixed reads (BENCHMARKS.md, issue 12, eighth step).
#[derive(Debug, Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The engine's parts and the edge's own services (see [`AppState`]).
#[derive(Debug)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub ingest: IngestWriter,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<PipelineStats>,
    pub processor: Arc<Processor>,
    pub reads: Arc<Reads>,
    pub dna: Arc<Dna>,
    /// Display names of artists, live events, cities and genres.
    pub names: Arc<DisplayNames>,
    /// Pipeline health sampled every [`HEALTH_SAMPLE_EVERY`], for the admin charts.
    pub health_history: Arc<HealthHistory>,
    pub settings: Arc<Settings>,
    /// KiB of delivery bodies being read, parsed or committed at once: what
    /// bounds the memory of ingestion however many connections are open.
    pub ingest_body_budget: Arc<crate::ingest_budget::BodyBudget>,
    /// Sessions and Supabase subjects recently confirmed by the store.
    pub sessions: Arc<crate::sessions::SessionCache>,
    /// API keys recently confirmed by the store: owner and key id.
    pub api_keys: Arc<crate::sessions::CredentialCache<(coliseum_store::User, i64)>>,
    /// Allowances for rate limits and login attempts (Redis when configured).
    pub limiter: Arc<crate::ratelimit::RateLimiter>,
    /// For calls to Stripe.
    pub http: reqwest::Client,
    /// What plans below Enterprise are served (frozen at their boundary).
    pub served: Arc<coliseum_engine::served::Served>,
    /// Read bodies built once per read and audience, and shared.
    pub bodies: Arc<crate::views::shared::SharedBodies>,
    /// Live updates: the topics followed, the connections open.
    pub live: Arc<crate::live::Live>,
    /// Report files and the pool that draws them.
    pub reports: Arc<crate::reports::ReportService>,
    /// Alert receivers and what the evaluator keeps between ticks.
    pub alerts: Arc<crate::alerts::AlertService>,
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
    /// This node's claim on a SQLite database, held while it runs.
    _claim: Option<coliseum_store_sqlite::NodeClaim>,
}

/// How often pipeline health is sampled for the charts; a day of samples is kept.
pub const HEALTH_SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
const HEALTH_SAMPLES_KEPT: usize = 24 * 360;

/// Starts the processor's service loop (processing while this node holds
/// the lead, following the node that does otherwise; only following with
/// `--process false`) and the health sampler; send `true` to stop both.
fn spawn_pipeline(state: &AppState) -> (tokio::sync::watch::Sender<bool>, JoinHandle<()>, JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (processor, may_lead) = (state.processor.clone(), state.settings.process);
    if !may_lead {
        tracing::info!("this node does not process (--process false): it follows the node that does");
    }
    let processor_stopped = stopped.clone();
    let processor_task = tokio::spawn(async move { processor.run_in_cluster(processor_stopped, may_lead).await });
    let sampler_task = tokio::spawn({
        let (state, dna, served) = (state.clone(), state.dna.clone(), state.served.clone());
        async move {
            tokio::join!(
                sample_health(state.clone(), stopped.clone()),
                dna.clone().run(stopped.clone()),
                dna.prune_hourly(stopped.clone()),
                // Scheduled reports: every node looks; one takes each.
                crate::reports::schedule::run(state.clone(), state.settings.schedule_tick, stopped.clone()),
                crate::alerts::run(state.clone(), stopped.clone()),
                served.run(stopped)
            );
        }
    });
    (stop, processor_task, sampler_task)
}

async fn sample_health(state: AppState, mut stopped: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(HEALTH_SAMPLE_EVERY);
    while !*stopped.borrow() {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stopped.changed() => continue,
        }
        observability::run_metrics_upkeep();
        match pipeline_health(state.store.as_ref(), &state.stats, &state.ingest, state.clock.now()).await {
            Ok(health) => {
                metrics::gauge!("coliseum_pipeline_queue_depth").set(health.queue_depth as f64);
                metrics::gauge!("coliseum_pipeline_paused").set(if health.paused { 1.0 } else { 0.0 });
                metrics::gauge!("coliseum_pipeline_dead_letters").set(health.dead_letters as f64);
                metrics::gauge!("coliseum_pipeline_latency_p95_ms").set(health.latency_ms.p95);
                state.health_history.record(health);
            }
            Err(error) => tracing::warn!(error = %error, "pipeline health not sampled"),
        }
    }
}

/// The in-memory figures (hot state, display names, DNA aggregates), and
/// the number of the last batch they reflect: the processor continues, or
/// follows, from there. In a cluster another node may apply batches while
/// they load; they are loaded again until no batch landed meanwhile, so
/// that they are the figures of one batch number.
async fn load_figures(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    settings: &Settings,
) -> anyhow::Result<(Arc<HotState>, Arc<DisplayNames>, Arc<Dna>, i64)> {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        let before = store.pipeline_state().await?;
        let hot = Arc::new(
            HotState::load(store.as_ref(), clock.clone())
                .await
                .context("loading the hot state")?,
        );
        let names = DisplayNames::load(store.as_ref())
            .await
            .context("loading the display names")?;
        let dna_settings = DnaSettings {
            interval: settings.dna_interval,
            ..DnaSettings::default()
        };
        let dna = Dna::load(
            store.clone(),
            clock.clone(),
            dna_settings,
            coliseum_engine::Watermark {
                seq: before.processed_seq,
                as_of: clock.now(),
            },
        )
        .await
        .context("loading the DNA aggregates")?;
        let after = store.pipeline_state().await?;
        if after.batches == before.batches || attempt == ATTEMPTS {
            if after.batches != before.batches {
                tracing::error!(
                    attempts = ATTEMPTS,
                    "batches kept landing while the figures loaded: this node's figures may differ \
                     from the processing node's by the batches applied meanwhile; restart it when the load is lighter"
                );
            }
            return Ok((hot, names, dna, before.batches));
        }
        tracing::info!(attempt, "batches landed while the figures loaded: loading them again");
    }
    unreachable!("the last attempt returns")
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(mut settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        observability::install_metrics_recorder();
        // Two TLS stacks meet in this process (reqwest for Stripe, and
        // object_store's S3 client) with two crypto providers compiled in:
        // rustls then needs one named for the process, or the first
        // connection panics. aws-lc-rs, which S3 needs anyway. Installing
        // twice (a second engine in one test process) changes nothing.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let claim = if settings.database_url.starts_with("sqlite:") {
            coliseum_store_sqlite::claim_node(&settings.database_url)?
        } else {
            None
        };
        let store = open_store(&settings.database_url).await?;
        let stats = Arc::new(PipelineStats::default());
        let (ingest, writer_task) = IngestWriter::start(store.clone(), settings.ingest, stats.clone());
        let (hot, names, dna, loaded) = load_figures(&store, &clock, &settings).await?;
        let processor = Arc::new(
            Processor::new(
                store.clone(),
                Arc::new(settings.fx.clone()),
                clock.clone(),
                stats.clone(),
                ProcessorConfig {
                    served_within: coliseum_engine::recent::served_within(settings.ranking_max_age),
                    ..ProcessorConfig::default()
                },
                vec![hot.clone(), dna.clone(), names.clone()],
            )
            .await
            .context("starting the processor")?,
        );
        processor.assume_applied(loaded);
        // The processing node alone writes DNA mutations: the others
        // publish the same scores. Weak: the processor holds the DNA side.
        let leader = Arc::downgrade(&processor);
        dna.record_while(move || leader.upgrade().is_some_and(|processor| processor.leading()));
        let listener = TcpListener::bind(settings.listen)
            .await
            .with_context(|| format!("binding {}", settings.listen))?;
        // The address bound (port 0 picks one): links made without a
        // public URL point at it.
        settings.listen = listener.local_addr().context("the bound address")?;
        let reads = Arc::new(Reads::new(
            hot,
            store.clone(),
            clock.clone(),
            settings.ranking_max_age,
            settings.read_cache,
        ));
        let limiter = Arc::new(match &settings.redis_url {
            Some(url) => crate::ratelimit::RateLimiter::redis(url)
                .await
                .context("connecting to Redis")?,
            None => crate::ratelimit::RateLimiter::in_memory(),
        });
        let served = Arc::new(coliseum_engine::served::Served::new(
            reads.clone(),
            dna.clone(),
            clock.clone(),
        ));
        let ingest_body_budget = crate::ingest_budget::BodyBudget::new(settings.ingest_inflight_kib());
        let bodies = Arc::new(crate::views::shared::SharedBodies::new(settings.ranking_max_age));
        let report_location = settings.report_location();
        let reports = Arc::new(crate::reports::ReportService {
            files: crate::reports::storage::ReportFiles::open(&report_location, &settings.report_storage_options)
                .with_context(|| format!("opening the report storage {report_location}"))?,
            pool: crate::reports::pool::RenderPool::for_this_machine(),
            in_progress: Arc::default(),
        });
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .context("building the HTTP client")?;
        let alerts = Arc::new(crate::alerts::AlertService::new(&settings, http.clone()));
        let state = AppState::new(Services {
            store,
            ingest,
            clock,
            stats,
            processor,
            reads,
            dna,
            names,
            health_history: Arc::new(HealthHistory::new(HEALTH_SAMPLES_KEPT)),
            settings: Arc::new(settings),
            ingest_body_budget,
            sessions: Arc::default(),
            api_keys: Arc::default(),
            limiter,
            http,
            served,
            bodies,
            live: Arc::default(),
            reports,
            alerts,
        });
        Ok(Self {
            listener,
            state,
            writer_task,
            _claim: claim,
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
    /// The processor runs alongside and stops last, between two batches.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            writer_task,
            _claim,
        } = self;
        let ingest = state.ingest.clone();
        let (stop_pipeline, processor_task, sampler_task) = spawn_pipeline(&state);
        let live = state.live.clone();
        let trusted_proxies = state.settings.trusted_proxies.clone();
        let router = routes::router(state);
        // Live connections are upgraded out of the server's reach: told to
        // close first, so that draining does not wait for them.
        let shutdown = async move {
            shutdown.await;
            live.stop();
        };
        // Each request carries its client's address: what anonymous callers
        // are rate-limited by, and what the ingest budget is shared by.
        crate::connections::serve(listener, router, trusted_proxies, shutdown).await;
        ingest.shutdown();
        writer_task.await.context("the ingest writer failed")?;
        let _ = stop_pipeline.send(true);
        processor_task.await.context("the processor failed")?;
        sampler_task.await.context("the health sampler failed")?;
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
