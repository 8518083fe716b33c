//! The command line (API.md, "Command line"): raw flags as clap parses them.
//! Every flag also reads `COLISEUM_<FLAG>`; [`crate::config`] turns them,
//! with the optional `coliseum.toml`, into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "coliseum", version, about = "The Coliseum analytics engine")]
pub struct Cli {
    /// A TOML file with defaults for any flag (flags and environment variables win).
    #[arg(long, env = "COLISEUM_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the engine: HTTP API, ingest writer and processor.
    Serve(Box<ServeArgs>),
    /// Applies migrations to the database and exits.
    Migrate(DatabaseArgs),
    /// Manages users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manages API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Writes realistic synthetic Passport entries as JSON lines.
    Generate(GenerateArgs),
    /// Empties every derived table and recomputes it from the log.
    Rebuild(DatabaseArgs),
    /// Runs a benchmark (BENCHMARKS.md): hands its arguments to the
    /// `coliseum-bench` binary beside this one.
    #[command(disable_help_flag = true)]
    Bench(BenchArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct DatabaseArgs {
    /// `sqlite://path` (default sqlite://coliseum-data/coliseum.db) or `postgres://…`.
    #[arg(long, env = "COLISEUM_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, env = "COLISEUM_LISTEN")]
    pub listen: Option<String>,
    /// Redis for state shared across nodes (optional).
    #[arg(long, env = "COLISEUM_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The Standard Webhooks secret Passport signs with (`whsec_…`).
    #[arg(long, env = "COLISEUM_PASSPORT_WEBHOOK_SECRET", hide_env_values = true)]
    pub passport_webhook_secret: Option<String>,
    /// The Stripe endpoint secret (`whsec_…`).
    #[arg(long, env = "COLISEUM_STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Option<String>,
    /// The public base URL, for share links and secure cookies.
    #[arg(long, env = "COLISEUM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A bearer token that may read /metrics without an admin session.
    #[arg(long, env = "COLISEUM_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Seeds demo accounts, prints their credentials and streams synthetic traffic.
    #[arg(long, env = "COLISEUM_DEMO")]
    pub demo: bool,
    /// Demo traffic, in entries per second.
    #[arg(long, env = "COLISEUM_DEMO_RATE")]
    pub demo_rate: Option<u32>,
    /// The most entries in one group commit.
    #[arg(long, env = "COLISEUM_INGEST_MAX_BATCH")]
    pub ingest_max_batch: Option<usize>,
    /// How long the writer waits for more entries before committing, in ms.
    #[arg(long, env = "COLISEUM_INGEST_LINGER_MS")]
    pub ingest_linger_ms: Option<u64>,
    /// The most entries waiting to be committed; beyond it requests get 503.
    #[arg(long, env = "COLISEUM_INGEST_QUEUE_ENTRIES")]
    pub ingest_queue_entries: Option<usize>,
    /// MiB of delivery bodies being read and parsed at once; beyond it requests get 503.
    #[arg(long, env = "COLISEUM_INGEST_INFLIGHT_MIB")]
    pub ingest_inflight_mib: Option<usize>,
    /// Whether this node runs the processor (default true); `false` makes an
    /// ingest-only node, for deployments where another node processes.
    #[arg(long, env = "COLISEUM_PROCESS")]
    pub process: Option<bool>,
    /// How long, in ms, a leaderboard or a read's shared body may be served
    /// once newer entries are applied (default 250): bounds recomputation
    /// under continuous ingestion.
    #[arg(long, env = "COLISEUM_RANKING_MAX_AGE_MS")]
    pub ranking_max_age_ms: Option<u64>,
    /// MiB the read caches (tile sums and leaderboards) may hold together
    /// (default 800); beyond it the least recently read are dropped.
    #[arg(long, env = "COLISEUM_READ_CACHE_MIB")]
    pub read_cache_mib: Option<usize>,
    /// How often, in ms, DNA scores are recomputed and published when
    /// anything changed (default 5000).
    #[arg(long, env = "COLISEUM_DNA_INTERVAL_MS")]
    pub dna_interval_ms: Option<u64>,
    /// Whether requests are rate-limited per plan (default true); login
    /// attempts are limited either way.
    #[arg(long, env = "COLISEUM_RATE_LIMITS")]
    pub rate_limits: Option<bool>,
    /// Stripe's secret API key (`sk_…`), for checkout and billing portal sessions.
    #[arg(long, env = "COLISEUM_STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// The Stripe API's base URL (default https://api.stripe.com).
    #[arg(long, env = "COLISEUM_STRIPE_API_BASE")]
    pub stripe_api_base: Option<String>,
    /// Appends Stripe payments to Passport as `treasury.money_spent` (default false).
    #[arg(long, env = "COLISEUM_STRIPE_PASSPORT")]
    pub stripe_passport: Option<bool>,
    /// Where report files live: a directory (default `reports/` beside the
    /// SQLite database), or `s3://bucket[/prefix]` for any S3-compatible
    /// store (AWS, MinIO, Supabase Storage), configured by the standard
    /// `AWS_*` variables and `--report-storage-option`.
    #[arg(long, env = "COLISEUM_REPORT_STORAGE")]
    pub report_storage: Option<String>,
    /// An S3 option as `key=value` (`aws_endpoint=https://…`,
    /// `aws_region=…`, `aws_access_key_id=…`, `aws_secret_access_key=…`,
    /// `aws_allow_http=true`); repeatable, or comma-separated in the variable.
    #[arg(
        long,
        env = "COLISEUM_REPORT_STORAGE_OPTIONS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub report_storage_option: Vec<String>,
    /// The SMTP server scheduled reports are mailed through:
    /// `smtp://user:password@host:587?tls=required`, `smtps://…:465`, or
    /// `smtp://host:25` (plain, for a local relay).
    #[arg(long, env = "COLISEUM_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of scheduled reports and alert emails (`Coliseum <reports@example.com>`).
    #[arg(long, env = "COLISEUM_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// A Slack incoming webhook for alert notifications.
    #[arg(long, env = "COLISEUM_SLACK_WEBHOOK_URL", hide_env_values = true)]
    pub slack_webhook_url: Option<String>,
    /// Who alert emails go to (through --smtp-url); repeatable, or comma-separated.
    #[arg(long, env = "COLISEUM_ALERT_EMAIL_TO", value_delimiter = ',')]
    pub alert_email_to: Vec<String>,
    /// PagerDuty's Events API v2 endpoint (default https://events.pagerduty.com/v2/enqueue).
    #[arg(long, env = "COLISEUM_PAGERDUTY_URL")]
    pub pagerduty_url: Option<String>,
    /// The routing key of the PagerDuty service critical alerts page.
    #[arg(long, env = "COLISEUM_PAGERDUTY_ROUTING_KEY", hide_env_values = true)]
    pub pagerduty_routing_key: Option<String>,
    /// How often alert rules are evaluated, in milliseconds (default 5000).
    #[arg(long, env = "COLISEUM_ALERT_INTERVAL_MS")]
    pub alert_interval_ms: Option<u64>,
    /// Reports errors and panics to this Sentry DSN (no personal data).
    #[arg(long, env = "COLISEUM_SENTRY_DSN", hide_env_values = true)]
    pub sentry_dsn: Option<String>,
    /// Proxies in front of the engine (addresses or networks, comma-separated):
    /// from them, the client is read from `X-Forwarded-For`.
    #[arg(long, env = "COLISEUM_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Prints a new API key for a user (shown this once; only its hash is kept).
    Create(ApiKeysCreateArgs),
}

#[derive(Debug, Args)]
pub struct ApiKeysCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The user the key acts as.
    #[arg(long)]
    pub email: String,
    /// What the key is for, to tell keys apart (default "cli").
    #[arg(long, default_value = "cli")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Creates a user, or updates the one with that email.
    Create(UsersCreateArgs),
}

#[derive(Debug, Args)]
pub struct UsersCreateArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub email: String,
    /// At least 10 characters.
    #[arg(long, env = "COLISEUM_USER_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// fan, artist, host, brand, developer or admin.
    #[arg(long)]
    pub role: String,
    /// public, free, basic, pro or enterprise (an operator override until Stripe says otherwise).
    #[arg(long)]
    pub plan: String,
    /// An artist this user may see in full (repeatable).
    #[arg(long = "artist")]
    pub artists: Vec<String>,
    /// A live event this user may see in full (repeatable).
    #[arg(long = "live-event")]
    pub live_events: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct GenerateArgs {
    /// How many entries.
    #[arg(long, default_value_t = 1000)]
    pub events: u64,
    /// How many artists.
    #[arg(long, default_value_t = 200)]
    pub artists: u32,
    /// Days of history, ending at --until.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// The same seed (and --until) gives the same entries.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The end of the generated period, RFC 3339 (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Write signed deliveries (`{"headers": …, "body": …}`) instead of bare envelopes.
    #[arg(long)]
    pub signed: bool,
    /// Envelopes per signed delivery.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// The secret to sign with (needed with --signed).
    #[arg(long, env = "COLISEUM_PASSPORT_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

/// What `coliseum bench` passes on, unparsed.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<std::ffi::OsString>,
}
