//! The one-shot commands: `migrate`, `users create`, `generate`, and the
//! start-up announcement of `serve`.

use std::io::Write;

use anyhow::{Context, bail};
use coliseum_domain::plans::{Feature, Plan, Role};
use coliseum_store::NewUser;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{ApiKeysCreateArgs, GenerateArgs, UsersCreateArgs};
use coliseum_http::app::{self, Application};
use coliseum_http::sessions;
use coliseum_signatures::passport::WebhookKey;
use coliseum_traffic::{Generator, GeneratorConfig, signed_delivery};

/// Prints where the engine listens: on stdout, for people and for the
/// benchmarks and tests that start the binary on port 0.
pub fn announce(application: &Application) {
    let state = application.state();
    println!(
        "coliseum listening on http://{} (store: {})",
        application.local_addr(),
        state.store.backend()
    );
    let _ = std::io::stdout().flush();
    if state.settings.passport_webhook_key.is_none() {
        tracing::warn!("no --passport-webhook-secret: every Passport delivery will be refused with 401");
    }
}

pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let store = app::open_store(database_url).await?;
    println!("migrations applied ({})", store.backend());
    Ok(())
}

pub async fn create_user(database_url: &str, args: &UsersCreateArgs) -> anyhow::Result<()> {
    let role: Role = args.role.parse()?;
    let plan: Plan = args.plan.parse()?;
    if !args.email.contains('@') {
        bail!("--email must be an email address");
    }
    if args.password.chars().count() < sessions::MIN_PASSWORD_CHARS {
        bail!(
            "--password must be at least {} characters",
            sessions::MIN_PASSWORD_CHARS
        );
    }
    let store = app::open_store(database_url).await?;
    let user = store
        .upsert_user(&NewUser {
            email: args.email.clone(),
            password_hash: sessions::hash_password(&args.password)?,
            role,
            plan,
            artists: args.artists.clone(),
            live_events: args.live_events.clone(),
        })
        .await?;
    println!(
        "user {} <{}>: role {}, plan {}",
        user.id, user.email, user.role, user.plan
    );
    Ok(())
}

/// `coliseum api-keys create`: prints the key once; audited as the operator's.
pub async fn create_api_key(database_url: &str, args: &ApiKeysCreateArgs) -> anyhow::Result<()> {
    let store = app::open_store(database_url).await?;
    let user = store
        .user_credentials(&args.email)
        .await?
        .with_context(|| format!("there is no user {}", args.email))?
        .user;
    let key = coliseum_http::credentials::new_api_key();
    let now = OffsetDateTime::now_utc();
    let record = |stored: &coliseum_store::ApiKey| {
        Some(coliseum_store::AuditRecord {
            id: 0,
            at: now,
            actor: "operator".to_owned(),
            action: "api_key.created".to_owned(),
            subject: format!("api_key:{}", stored.id),
            request_id: String::new(),
            detail: serde_json::json!({"name": stored.name, "prefix": stored.prefix, "user": user.id}).to_string(),
        })
    };
    store
        .create_api_key(
            &coliseum_store::NewApiKey {
                user_id: user.id,
                name: args.name.clone(),
                key_hash: key.hash,
                prefix: key.prefix,
                created_at: now,
            },
            &record,
        )
        .await?;
    if coliseum_domain::plans::entitlement(&coliseum_http::routes::access::subject_of(&user), Feature::ApiKeys).is_err()
    {
        eprintln!(
            "note: {} is on the {} plan; the key works once the plan includes API access (Pro and up)",
            user.email, user.plan
        );
    }
    println!("{}", key.key);
    Ok(())
}

pub fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let until = match &args.until {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339).context("--until must be an RFC 3339 timestamp")?,
        None => OffsetDateTime::now_utc(),
    };
    let key = match (&args.signed, &args.secret) {
        (true, Some(secret)) => Some(WebhookKey::parse(secret).context("--secret")?),
        (true, None) => bail!("--signed needs --secret (or COLISEUM_PASSPORT_WEBHOOK_SECRET)"),
        (false, _) => None,
    };
    let mut generator = Generator::new(GeneratorConfig {
        artists: args.artists.max(1),
        days: args.days.max(1),
        seed: args.seed,
        until,
        total: args.events,
    });
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut remaining = args.events;
    while remaining > 0 {
        let take = remaining.min(args.batch.max(1) as u64);
        let envelopes: Vec<_> = (0..take).map(|_| generator.next_historical()).collect();
        remaining -= take;
        match &key {
            Some(key) => {
                let delivery = signed_delivery(key, &envelopes, until.unix_timestamp(), &generator.delivery_id());
                writeln!(out, "{}", serde_json::to_string(&delivery)?)?;
            }
            None => {
                for envelope in envelopes {
                    writeln!(out, "{envelope}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `coliseum rebuild`: empties every derived table and recomputes it from
/// the log, with progress on stderr.
pub async fn rebuild(database_url: &str, fx: coliseum_domain::money::FxTable) -> anyhow::Result<()> {
    use coliseum_engine::rebuild::{RebuildProgress, rebuild};

    let store = app::open_store(database_url).await?;
    if store.pipeline_state().await?.paused {
        bail!("the pipeline is paused; resume it (POST /v1/admin/pipeline/resume) before rebuilding");
    }
    let head = store.head_seq().await?.max(1);
    let started = std::time::Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let report = rebuild(store.clone(), std::sync::Arc::new(fx), now, |progress| {
        let line = match progress {
            RebuildProgress::Counting { seq } => format!(
                "counting: {:5.1} % of the log, {:.0} entries/s",
                100.0 * seq.min(head) as f64 / head as f64,
                seq as f64 / started.elapsed().as_secs_f64().max(1e-9)
            ),
            RebuildProgress::Writing { written, rows } => {
                format!(
                    "writing: {:5.1} % of {rows} rows",
                    100.0 * written as f64 / rows.max(1) as f64
                )
            }
        };
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "\r{line:<60}");
        let _ = stderr.flush();
    })
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!();
    println!(
        "rebuilt from {} entries in {seconds:.1} s ({:.0} entries/s; counted in {:.1} s, {} cells and {} fan-days \
         written in {:.1} s); {} dead letters",
        report.entries,
        report.entries as f64 / seconds.max(1e-9),
        report.counting_seconds,
        report.cells,
        report.fan_days,
        report.writing_seconds,
        report.dead_letters
    );
    Ok(())
}

/// `coliseum bench …`: the benchmarks live in their own binary, so that the
/// engine links no benchmark code; this runs `coliseum-bench` from beside
/// this binary with the same arguments.
pub fn bench(args: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the coliseum binary")?;
    let bench = exe.with_file_name(format!("coliseum-bench{}", std::env::consts::EXE_SUFFIX));
    if !bench.exists() {
        bail!(
            "{} is not built; build it beside this binary with `cargo build --release --workspace`",
            bench.display()
        );
    }
    let status = std::process::Command::new(&bench)
        .args(args)
        .status()
        .with_context(|| format!("running {}", bench.display()))?;
    if !status.success() {
        // Its own message is printed; its exit code is passed on.
        std::process::exit(status.code().unwrap_or(1));
    }
    Ok(())
}
