//! `coliseum serve --demo`: the engine with demo accounts and a stream of
//! synthetic Passport traffic, sent through the real webhook path (signed
//! HTTP deliveries to the engine's own listener), so that the demo exercises
//! exactly what production does.

use std::time::Duration;

use coliseum_domain::money::{Currency, FxTable};
use coliseum_domain::plans::{Plan, Role};
use coliseum_store::NewUser;
use rand::distr::{Alphanumeric, SampleString};
use time::OffsetDateTime;

use crate::commands;
use coliseum_http::app::{self, Application};
use coliseum_http::sessions;
use coliseum_http::settings::Settings;
use coliseum_signatures::passport::WebhookKey;
use coliseum_traffic::{Generator, GeneratorConfig};

/// Entries of recent history sent at start, so that there is something to see at once.
const BACKFILL_ENTRIES: u64 = 5000;
const BACKFILL_BATCH: usize = 500;

pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    let key = match settings.passport_webhook_key.clone() {
        Some(key) => key,
        None => {
            let (key, _) = WebhookKey::generate();
            settings.passport_webhook_key = Some(key.clone());
            key
        }
    };
    let rate = settings.demo_rate.max(1);
    // The synthetic payments come in these currencies; without rates they
    // would all wait in the dead letters.
    let demo_currencies = ["EUR", "GBP", "NGN"].map(|code| Currency::parse(code).unwrap_or_else(|| unreachable!()));
    if settings.fx.base().as_str() == "USD" && !demo_currencies.iter().any(|c| settings.fx.converts(*c)) {
        settings.fx = FxTable::parse(settings.fx.base(), coliseum_traffic::FX_RATES)?;
        println!(
            "Demo exchange rates (COLISEUM_FX_RATES): {}",
            coliseum_traffic::FX_RATES
        );
    }
    let application = Application::build(settings).await?;
    seed_accounts(&application).await?;
    commands::announce(&application);
    let url = format!("http://{}/v1/passport/events", application.local_addr());
    let streamer = tokio::spawn(stream(url, key, rate));
    let outcome = application.run_until(app::shutdown_signal()).await;
    streamer.abort();
    outcome
}

async fn seed_accounts(application: &Application) -> anyhow::Result<()> {
    let store = &application.state().store;
    println!("Demo accounts (new passwords at every start):");
    for (email, role, plan, artists) in [
        ("admin@coliseum.demo", Role::Admin, Plan::Enterprise, vec![]),
        (
            "artist@coliseum.demo",
            Role::Artist,
            Plan::Pro,
            vec!["art_0".to_owned()],
        ),
        ("fan@coliseum.demo", Role::Fan, Plan::Free, vec![]),
    ] {
        let password = Alphanumeric.sample_string(&mut rand::rng(), 16);
        store
            .upsert_user(&NewUser {
                email: email.to_owned(),
                password_hash: sessions::hash_password(&password)?,
                role,
                plan,
                artists,
                live_events: vec![],
            })
            .await?;
        println!("  {:<7} {email:<22} {password}", role.as_str());
    }
    Ok(())
}

/// Sends a backfill of the last day, then `rate` entries a second, for ever.
async fn stream(url: String, key: WebhookKey, rate: u32) {
    let client = reqwest::Client::new();
    let now = OffsetDateTime::now_utc();
    let seed = now.unix_timestamp().unsigned_abs();
    let mut history = Generator::new(GeneratorConfig {
        artists: 300,
        days: 1,
        seed,
        until: now,
        total: BACKFILL_ENTRIES,
    });
    let mut sent = 0;
    while sent < BACKFILL_ENTRIES {
        let envelopes: Vec<_> = (0..BACKFILL_BATCH).map(|_| history.next_historical()).collect();
        sent += envelopes.len() as u64;
        send(&client, &url, &key, &mut history, &envelopes).await;
    }
    let mut live = Generator::new(GeneratorConfig {
        artists: 300,
        days: 1,
        seed: seed + 1,
        until: now,
        total: 1,
    });
    let tick = Duration::from_millis(250);
    let per_tick = (rate / 4).max(1);
    let mut interval = tokio::time::interval(tick);
    loop {
        interval.tick().await;
        let at = OffsetDateTime::now_utc();
        let envelopes: Vec<_> = (0..per_tick).map(|_| live.envelope_at(at)).collect();
        send(&client, &url, &key, &mut live, &envelopes).await;
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    key: &WebhookKey,
    generator: &mut Generator,
    envelopes: &[serde_json::Value],
) {
    let body = serde_json::json!({"events": envelopes}).to_string();
    let id = generator.delivery_id();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let signature = key.sign(&id, timestamp, body.as_bytes());
    let result = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) if response.status().is_success() => {}
        Ok(response) => tracing::warn!(status = response.status().as_u16(), "demo delivery refused"),
        Err(error) => tracing::warn!(error = %error, "demo delivery failed"),
    }
}
