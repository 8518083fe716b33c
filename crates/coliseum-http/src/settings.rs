//! What a running engine is configured with, validated. The binary builds it
//! from flags, `COLISEUM_*` variables and `coliseum.toml`; tests build it with
//! [`Settings::for_tests`]. Secrets are wrapped so that no `Debug` or log line
//! shows them.

use std::net::SocketAddr;

use coliseum_domain::money::{Currency, FxTable};
use coliseum_engine::IngestConfig;

use crate::webhook::WebhookKey;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://coliseum-data/coliseum.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// A secret value: usable, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Everything `coliseum serve` needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub passport_webhook_key: Option<WebhookKey>,
    pub stripe_webhook_secret: Option<Secret>,
    pub public_url: Option<String>,
    pub metrics_token: Option<Secret>,
    pub demo: bool,
    pub demo_rate: u32,
    /// Whether this node runs the processor.
    pub process: bool,
    /// How long a leaderboard may be served once newer entries are applied.
    pub ranking_max_age: std::time::Duration,
    /// What the read caches may hold (tile sums and leaderboards).
    pub read_cache: coliseum_engine::reads::CacheBudget,
    /// How often DNA scores are recomputed and published.
    pub dna_interval: std::time::Duration,
    pub ingest: IngestConfig,
    /// MiB of delivery bodies in flight at most; beyond it, `503`.
    pub ingest_inflight_mib: usize,
    pub fx: FxTable,
    /// Whether requests are rate-limited per PLANS.md (login attempts always are).
    pub rate_limits: bool,
    /// Supabase's JWT secret: when set, its HS256 access tokens are accepted.
    pub supabase_jwt_secret: Option<Secret>,
    pub stripe: StripeSettings,
    /// Where report files live: a directory, or `s3://bucket[/prefix]`;
    /// `None`: `reports/` beside the SQLite database (or `coliseum-data/reports`).
    pub report_storage: Option<String>,
    /// S3 options (`aws_endpoint`, `aws_access_key_id`, …) over the `AWS_*` variables.
    pub report_storage_options: Vec<(String, String)>,
    /// Where scheduled reports are mailed from; `None`: no schedules.
    pub smtp: Option<SmtpSettings>,
    /// How often due report schedules are looked for.
    pub schedule_tick: std::time::Duration,
    /// Alert receivers and how rules are evaluated.
    pub alerts: AlertSettings,
    /// Errors and panics are reported here when set.
    pub sentry_dsn: Option<Secret>,
    /// The proxies in front whose `X-Forwarded-For` names the client.
    pub trusted_proxies: crate::client_address::TrustedProxies,
}

/// Where alert notifications go, and how often rules are evaluated.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// A Slack incoming webhook.
    pub slack_webhook_url: Option<Secret>,
    /// Who alert emails go to (through `smtp`).
    pub email_to: Vec<String>,
    /// PagerDuty's Events API v2 endpoint.
    pub pagerduty_url: String,
    pub pagerduty_routing_key: Option<Secret>,
    /// How often the rules are evaluated.
    pub interval: std::time::Duration,
    pub retry: coliseum_notify::RetryPolicy,
}

impl AlertSettings {
    /// No receivers: rules are evaluated and their notifications recorded as failed.
    pub fn none(interval: std::time::Duration) -> Self {
        Self {
            slack_webhook_url: None,
            email_to: Vec::new(),
            pagerduty_url: coliseum_notify::PAGERDUTY_EVENTS_URL.to_owned(),
            pagerduty_routing_key: None,
            interval,
            retry: coliseum_notify::RetryPolicy::default(),
        }
    }
}

/// An SMTP server to send mail through.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port` (`?tls=required` for STARTTLS) or `smtps://…`,
    /// credentials in the URL's user information.
    pub url: Secret,
    /// The sender, `Name <address>` or an address.
    pub from: String,
}

/// How the engine talks to Stripe.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// The secret API key, for checkout and portal sessions.
    pub secret_key: Option<Secret>,
    /// `https://api.stripe.com`, or a stand-in.
    pub api_base: String,
    /// Price ids of the Basic, Pro and Enterprise plans.
    pub prices: Vec<(coliseum_domain::plans::Plan, String)>,
    /// Whether Stripe payments are appended to Passport as `treasury.money_spent`.
    pub passport_payments: bool,
}

pub const STRIPE_API: &str = "https://api.stripe.com";

impl StripeSettings {
    /// Price ids from `COLISEUM_STRIPE_PRICE_BASIC`, `_PRO` and `_ENTERPRISE`.
    pub fn prices_from_env() -> Vec<(coliseum_domain::plans::Plan, String)> {
        use coliseum_domain::plans::Plan;
        [
            (Plan::Basic, "COLISEUM_STRIPE_PRICE_BASIC"),
            (Plan::Pro, "COLISEUM_STRIPE_PRICE_PRO"),
            (Plan::Enterprise, "COLISEUM_STRIPE_PRICE_ENTERPRISE"),
        ]
        .into_iter()
        .filter_map(|(plan, var)| std::env::var(var).ok().filter(|v| !v.is_empty()).map(|id| (plan, id)))
        .collect()
    }

    pub fn plan_of_price(&self, price: &str) -> Option<coliseum_domain::plans::Plan> {
        self.prices.iter().find(|(_, id)| id == price).map(|(plan, _)| *plan)
    }

    pub fn price_of_plan(&self, plan: coliseum_domain::plans::Plan) -> Option<&str> {
        self.prices.iter().find(|(p, _)| *p == plan).map(|(_, id)| id.as_str())
    }
}

impl Settings {
    /// Settings for an engine on a free loopback port with this database: the start of every test.
    pub fn for_tests(database_url: &str, webhook_key: WebhookKey) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database_url.to_owned(),
            redis_url: None,
            passport_webhook_key: Some(webhook_key),
            stripe_webhook_secret: None,
            public_url: None,
            metrics_token: None,
            demo: false,
            demo_rate: 20,
            process: true,
            // Tests read exactly what was processed.
            ranking_max_age: std::time::Duration::ZERO,
            read_cache: coliseum_engine::reads::CacheBudget::DEFAULT,
            dna_interval: std::time::Duration::from_millis(100),
            ingest: IngestConfig::default(),
            ingest_inflight_mib: 64,
            fx: FxTable::new(Currency::parse("USD").unwrap_or_else(|| unreachable!("USD is a currency code"))),
            // Tests make many anonymous requests from one address; the
            // rate-limit tests turn limits on.
            rate_limits: false,
            supabase_jwt_secret: None,
            stripe: StripeSettings {
                secret_key: None,
                api_base: STRIPE_API.to_owned(),
                prices: Vec::new(),
                passport_payments: false,
            },
            // Every test engine's reports in one directory of the system's
            // temporary files: ids are random, so engines never collide.
            report_storage: Some(
                std::env::temp_dir()
                    .join("coliseum-test-reports")
                    .to_string_lossy()
                    .into_owned(),
            ),
            report_storage_options: Vec::new(),
            smtp: None,
            schedule_tick: std::time::Duration::from_millis(100),
            alerts: AlertSettings {
                retry: coliseum_notify::RetryPolicy {
                    attempts: 5,
                    base: std::time::Duration::from_millis(50),
                    cap: std::time::Duration::from_millis(400),
                },
                ..AlertSettings::none(std::time::Duration::from_millis(250))
            },
            sentry_dsn: None,
            trusted_proxies: crate::client_address::TrustedProxies::default(),
        }
    }

    /// Where report files live: as configured, else a `reports` directory
    /// beside the SQLite database file, else `coliseum-data/reports`.
    pub fn report_location(&self) -> String {
        if let Some(location) = &self.report_storage {
            return location.clone();
        }
        let data_dir = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or_default())
            .filter(|path| !path.is_empty() && !path.contains(":memory:"))
            .and_then(|path| std::path::Path::new(path).parent().map(std::path::Path::to_path_buf))
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or_else(|| std::path::PathBuf::from("coliseum-data"));
        data_dir.join("reports").to_string_lossy().into_owned()
    }

    /// The in-flight body budget in KiB, at least one largest body.
    pub fn ingest_inflight_kib(&self) -> usize {
        // At least two of the largest bodies: one peer's share (half) always
        // holds a whole delivery.
        (self.ingest_inflight_mib * 1024).max(2 * coliseum_domain::passport::MAX_BODY_BYTES / 1024)
    }

    /// Cookies are `Secure` when the public URL is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|url| url.starts_with("https://"))
    }
}
