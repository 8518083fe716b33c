//! Validated settings: flags and `COLISEUM_*` variables (via clap) win over
//! the optional `coliseum.toml`, which wins over the defaults. Parsed once at
//! start-up; secrets are wrapped so that no `Debug` or log line shows them.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use coliseum_domain::money::{Currency, FxTable};
use coliseum_engine::IngestConfig;
use serde::Deserialize;

use crate::cli::ServeArgs;
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

/// The optional configuration file: the same names as the flags, in snake case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    redis_url: Option<String>,
    passport_webhook_secret: Option<String>,
    stripe_webhook_secret: Option<String>,
    public_url: Option<String>,
    metrics_token: Option<String>,
    demo: Option<bool>,
    demo_rate: Option<u32>,
    process: Option<bool>,
    ranking_max_age_ms: Option<u64>,
    dna_interval_ms: Option<u64>,
    ingest_max_batch: Option<usize>,
    ingest_linger_ms: Option<u64>,
    ingest_queue_entries: Option<usize>,
    ingest_inflight_mib: Option<usize>,
    base_currency: Option<String>,
    fx_rates: Option<String>,
    rate_limits: Option<bool>,
    stripe_secret_key: Option<String>,
    stripe_api_base: Option<String>,
    stripe_passport: Option<bool>,
}

impl FileConfig {
    /// The base currency and exchange rates: `COLISEUM_BASE_CURRENCY` and
    /// `COLISEUM_FX_RATES`, else the file, else USD with no other rates.
    pub fn fx_table(&self) -> anyhow::Result<FxTable> {
        let base_text = std::env::var("COLISEUM_BASE_CURRENCY")
            .ok()
            .or_else(|| self.base_currency.clone())
            .unwrap_or_else(|| "USD".to_owned());
        let base = Currency::parse(&base_text)
            .with_context(|| format!("COLISEUM_BASE_CURRENCY `{base_text}` is not an ISO 4217 code"))?;
        let rates = std::env::var("COLISEUM_FX_RATES")
            .ok()
            .or_else(|| self.fx_rates.clone())
            .unwrap_or_default();
        FxTable::parse(base, &rates).context("COLISEUM_FX_RATES")
    }

    /// Reads `path`; with no path, `coliseum.toml` in the working directory if present.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (Path::new("coliseum.toml").to_path_buf(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
            Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn database_url(&self, flag: Option<&String>) -> String {
        flag.or(self.database_url.as_ref())
            .cloned()
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
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
    pub fn from_args(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Self> {
        let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
        let listen_text = pick(&args.listen, &file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("--listen `{listen_text}` is not an address such as 127.0.0.1:8080"))?;
        let database_url = file.database_url(args.database.database_url.as_ref());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            bail!("--database-url must start with sqlite:// or postgres://");
        }
        let passport_webhook_key = pick(&args.passport_webhook_secret, &file.passport_webhook_secret)
            .map(|secret| WebhookKey::parse(&secret))
            .transpose()
            .context("--passport-webhook-secret")?;
        let defaults = IngestConfig::default();
        let ingest = IngestConfig {
            max_batch_entries: args
                .ingest_max_batch
                .or(file.ingest_max_batch)
                .unwrap_or(defaults.max_batch_entries)
                .max(1),
            linger: args
                .ingest_linger_ms
                .or(file.ingest_linger_ms)
                .map_or(defaults.linger, Duration::from_millis),
            queue_entries: args
                .ingest_queue_entries
                .or(file.ingest_queue_entries)
                .unwrap_or(defaults.queue_entries),
        };
        if ingest.queue_entries < coliseum_domain::passport::MAX_BATCH_ENTRIES {
            bail!(
                "--ingest-queue-entries must hold at least one full batch ({})",
                coliseum_domain::passport::MAX_BATCH_ENTRIES
            );
        }
        let fx = file.fx_table()?;
        Ok(Self {
            listen,
            database_url,
            redis_url: pick(&args.redis_url, &file.redis_url),
            passport_webhook_key,
            stripe_webhook_secret: pick(&args.stripe_webhook_secret, &file.stripe_webhook_secret).map(Secret::new),
            public_url: pick(&args.public_url, &file.public_url),
            metrics_token: pick(&args.metrics_token, &file.metrics_token).map(Secret::new),
            demo: args.demo || file.demo.unwrap_or(false),
            demo_rate: args.demo_rate.or(file.demo_rate).unwrap_or(20),
            process: args.process.or(file.process).unwrap_or(true),
            ranking_max_age: std::time::Duration::from_millis(
                args.ranking_max_age_ms.or(file.ranking_max_age_ms).unwrap_or(250),
            ),
            dna_interval: std::time::Duration::from_millis(
                args.dna_interval_ms.or(file.dna_interval_ms).unwrap_or(5000).max(100),
            ),
            ingest,
            ingest_inflight_mib: args
                .ingest_inflight_mib
                .or(file.ingest_inflight_mib)
                .unwrap_or(64)
                .max(1),
            fx,
            rate_limits: args.rate_limits.or(file.rate_limits).unwrap_or(true),
            supabase_jwt_secret: std::env::var("COLISEUM_SUPABASE_JWT_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Secret::new),
            stripe: StripeSettings {
                secret_key: pick(&args.stripe_secret_key, &file.stripe_secret_key).map(Secret::new),
                api_base: pick(&args.stripe_api_base, &file.stripe_api_base).unwrap_or_else(|| STRIPE_API.to_owned()),
                prices: StripeSettings::prices_from_env(),
                passport_payments: args.stripe_passport.or(file.stripe_passport).unwrap_or(false),
            },
        })
    }

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
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file: FileConfig =
            toml::from_str("listen = \"127.0.0.1:9000\"\nmetrics_token = \"t\"\ningest_linger_ms = 7").expect("toml");
        let args = ServeArgs {
            listen: Some("127.0.0.1:9100".into()),
            ..ServeArgs::default()
        };
        let settings = Settings::from_args(&args, &file).expect("valid");
        assert_eq!(settings.listen.port(), 9100);
        assert_eq!(settings.ingest.linger, Duration::from_millis(7));
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
        assert!(!format!("{settings:?}").contains("\"t\""), "secrets are not printed");
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let file = FileConfig::default();
        let bad_listen = ServeArgs {
            listen: Some("nowhere".into()),
            ..ServeArgs::default()
        };
        assert!(format!("{:#}", Settings::from_args(&bad_listen, &file).expect_err("bad")).contains("--listen"));
        let bad_secret = ServeArgs {
            passport_webhook_secret: Some("whsec_***".into()),
            ..ServeArgs::default()
        };
        assert!(
            format!("{:#}", Settings::from_args(&bad_secret, &file).expect_err("bad"))
                .contains("--passport-webhook-secret")
        );
        assert!(
            toml::from_str::<FileConfig>("nonsense = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
