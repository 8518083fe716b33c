//! Settings from the command line: flags and `COLISEUM_*` variables (via
//! clap) win over the optional `coliseum.toml`, which wins over the defaults.
//! Parsed once at start-up.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use coliseum_domain::money::{Currency, FxTable};
use coliseum_engine::IngestConfig;
use coliseum_engine::reads::CacheBudget;
use coliseum_http::client_address::TrustedProxies;
use coliseum_http::settings::{
    AlertSettings, DEFAULT_DATABASE_URL, DEFAULT_LISTEN, STRIPE_API, Secret, Settings, StripeSettings,
};
use coliseum_signatures::passport::WebhookKey;
use serde::Deserialize;

use crate::cli::ServeArgs;

/// The smallest read cache budget accepted, in MiB.
const MIN_READ_CACHE_MIB: usize = 16;

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
    read_cache_mib: Option<usize>,
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
    report_storage: Option<String>,
    report_storage_options: Option<Vec<String>>,
    smtp_url: Option<String>,
    smtp_from: Option<String>,
    slack_webhook_url: Option<String>,
    alert_email_to: Option<Vec<String>>,
    pagerduty_url: Option<String>,
    pagerduty_routing_key: Option<String>,
    alert_interval_ms: Option<u64>,
    sentry_dsn: Option<String>,
    trusted_proxies: Option<Vec<String>>,
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

/// Validated settings of `coliseum serve`.
pub fn serve_settings(args: &ServeArgs, file: &FileConfig) -> anyhow::Result<Settings> {
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
    let read_cache_mib = args
        .read_cache_mib
        .or(file.read_cache_mib)
        .unwrap_or(coliseum_engine::reads::DEFAULT_READ_CACHE_MIB);
    // Below it a day of every artist's sums hardly fits: every read would
    // sum its board again (BENCHMARKS.md, sixth step).
    if read_cache_mib < MIN_READ_CACHE_MIB {
        bail!("--read-cache-mib must be at least {MIN_READ_CACHE_MIB}");
    }
    let fx = file.fx_table()?;
    let report_storage_options = if args.report_storage_option.is_empty() {
        file.report_storage_options.clone().unwrap_or_default()
    } else {
        args.report_storage_option.clone()
    }
    .iter()
    .map(|option| {
        option
            .split_once('=')
            .map(|(key, value)| (key.trim().to_owned(), value.trim().to_owned()))
            .with_context(|| format!("--report-storage-option `{option}` is not key=value"))
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    let smtp = match (
        pick(&args.smtp_url, &file.smtp_url),
        pick(&args.smtp_from, &file.smtp_from),
    ) {
        (None, _) => None,
        (Some(_), None) => bail!("--smtp-url needs --smtp-from, the address scheduled reports come from"),
        (Some(url), Some(from)) => {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bail!("--smtp-url must start with smtp:// or smtps://");
            }
            Some(coliseum_http::settings::SmtpSettings {
                url: Secret::new(url),
                from,
            })
        }
    };
    let alert_email_to = if args.alert_email_to.is_empty() {
        file.alert_email_to.clone().unwrap_or_default()
    } else {
        args.alert_email_to.clone()
    };
    if !alert_email_to.is_empty() && smtp.is_none() {
        bail!("--alert-email-to needs --smtp-url and --smtp-from, the server and sender alert emails go through");
    }
    let defaults = AlertSettings::none(Duration::from_millis(
        args.alert_interval_ms
            .or(file.alert_interval_ms)
            .unwrap_or(5000)
            .max(100),
    ));
    let alerts = AlertSettings {
        slack_webhook_url: pick(&args.slack_webhook_url, &file.slack_webhook_url).map(Secret::new),
        email_to: alert_email_to,
        pagerduty_url: pick(&args.pagerduty_url, &file.pagerduty_url).unwrap_or_else(|| defaults.pagerduty_url.clone()),
        pagerduty_routing_key: pick(&args.pagerduty_routing_key, &file.pagerduty_routing_key).map(Secret::new),
        ..defaults
    };
    // An empty `COLISEUM_TRUSTED_PROXIES=` names none: the file's list stands.
    let trusted_proxies = if args.trusted_proxies.iter().all(|item| item.trim().is_empty()) {
        file.trusted_proxies.clone().unwrap_or_default()
    } else {
        args.trusted_proxies.clone()
    };
    let trusted_proxies =
        TrustedProxies::parse(&trusted_proxies).map_err(|why| anyhow::anyhow!("--trusted-proxies: {why}"))?;
    Ok(Settings {
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
        read_cache: CacheBudget::of_mib(read_cache_mib),
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
        report_storage: pick(&args.report_storage, &file.report_storage),
        report_storage_options,
        smtp,
        schedule_tick: Duration::from_secs(30),
        alerts,
        sentry_dsn: pick(&args.sentry_dsn, &file.sentry_dsn).map(Secret::new),
        trusted_proxies,
    })
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
        let settings = serve_settings(&args, &file).expect("valid");
        assert_eq!(settings.listen.port(), 9100);
        assert_eq!(settings.ingest.linger, Duration::from_millis(7));
        assert_eq!(settings.database_url, DEFAULT_DATABASE_URL);
        let proxies: FileConfig = toml::from_str("trusted_proxies = [\"10.0.0.0/8\"]").expect("toml");
        assert_eq!(
            serve_settings(&ServeArgs::default(), &proxies)
                .expect("valid")
                .trusted_proxies,
            TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).expect("valid")
        );
        assert!(!format!("{settings:?}").contains("\"t\""), "secrets are not printed");
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let file = FileConfig::default();
        let bad_listen = ServeArgs {
            listen: Some("nowhere".into()),
            ..ServeArgs::default()
        };
        assert!(format!("{:#}", serve_settings(&bad_listen, &file).expect_err("bad")).contains("--listen"));
        let bad_secret = ServeArgs {
            passport_webhook_secret: Some("whsec_***".into()),
            ..ServeArgs::default()
        };
        assert!(
            format!("{:#}", serve_settings(&bad_secret, &file).expect_err("bad")).contains("--passport-webhook-secret")
        );
        let no_cache = ServeArgs {
            read_cache_mib: Some(1),
            ..ServeArgs::default()
        };
        assert!(format!("{:#}", serve_settings(&no_cache, &file).expect_err("bad")).contains("--read-cache-mib"));
        let bad_proxy = ServeArgs {
            trusted_proxies: vec!["10.0.0.0/8".into(), "nginx".into()],
            ..ServeArgs::default()
        };
        assert!(format!("{:#}", serve_settings(&bad_proxy, &file).expect_err("bad")).contains("--trusted-proxies"));
        assert!(
            toml::from_str::<FileConfig>("nonsense = 1").is_err(),
            "unknown keys are refused"
        );
    }
}
