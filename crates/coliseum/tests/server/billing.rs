//! Stripe: signed webhooks setting plans (replays, out-of-order delivery,
//! unknown prices, deletion, customers linked late), payments into
//! Passport, and checkout and portal sessions against a local stand-in
//! for the Stripe API that records what it was asked.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::routing::post;
use coliseum_domain::plans::{Plan, Role};
use coliseum_http::settings::{Secret, Settings};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, assert_problem, spawn_app_with};

on_both_backends!(
    webhooks_are_verified_idempotent_and_never_roll_a_plan_back,
    events_for_an_unlinked_customer_wait_for_the_link,
    payments_reach_passport_once,
    checkout_and_portal_sessions_come_from_the_stripe_api,
);

const WEBHOOK_SECRET: &str = "whsec_stripe_test_endpoint_secret";

pub fn configure(settings: &mut Settings, api_base: &str) {
    settings.stripe_webhook_secret = Some(Secret::new(WEBHOOK_SECRET));
    settings.stripe.secret_key = Some(Secret::new("sk_test_coliseum"));
    settings.stripe.api_base = api_base.to_owned();
    settings.stripe.prices = vec![
        (Plan::Basic, "price_basic".to_owned()),
        (Plan::Pro, "price_pro".to_owned()),
        (Plan::Enterprise, "price_enterprise".to_owned()),
    ];
    settings.stripe.passport_payments = true;
}

/// Signs `body` as Stripe does (HMAC-SHA256 of `"{t}.{body}"`, hex), with
/// the timestamp `age_s` seconds in the past.
fn stripe_signature(body: &[u8], age_s: i64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let t = time::OffsetDateTime::now_utc().unix_timestamp() - age_s;
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

async fn deliver_signed(app: &TestApp, event: &Value, signature: Option<String>) -> reqwest::Response {
    let body = event.to_string();
    let mut request = app
        .client
        .post(format!("{}/v1/stripe/webhook", app.base))
        .header("content-type", "application/json");
    if let Some(signature) = signature.or_else(|| Some(stripe_signature(body.as_bytes(), 0))) {
        request = request.header("stripe-signature", signature);
    }
    request.body(body).send().await.expect("sent")
}

pub async fn deliver(app: &TestApp, event: &Value) -> Value {
    let response = deliver_signed(app, event, None).await;
    assert_eq!(response.status(), 200, "{event}");
    response.json().await.expect("json")
}

pub fn event(id: &str, kind: &str, created: i64, object: Value) -> Value {
    json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": object}})
}

pub fn subscription(customer: &str, status: &str, price: &str, user: Option<i64>) -> Value {
    let metadata = user.map_or_else(|| json!({}), |id| json!({"coliseum_user_id": id.to_string()}));
    json!({"id": "sub_1", "object": "subscription", "customer": customer, "status": status, "metadata": metadata,
           "items": {"data": [{"price": {"id": price}}]}})
}

async fn plan_of(app: &TestApp, user: i64) -> Plan {
    app.store.user_by_id(user).await.expect("read").expect("user").plan
}

async fn webhooks_are_verified_idempotent_and_never_roll_a_plan_back(backend: Backend) {
    let app = spawn_app_with(backend, |s| configure(s, "http://127.0.0.1:9")).await;
    let user = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let cookie = app.session_for(&user, time::Duration::hours(1)).await;
    let created = event(
        "evt_1",
        "customer.subscription.created",
        1_000,
        subscription("cus_a", "active", "price_pro", Some(user.id)),
    );

    // Signatures: stale, wrong, missing.
    let body = created.to_string();
    let stale = deliver_signed(&app, &created, Some(stripe_signature(body.as_bytes(), 301))).await;
    assert_problem(stale, 401, "unauthorized").await;
    let wrong = deliver_signed(
        &app,
        &created,
        Some(format!(
            "t={},v1=00ff",
            time::OffsetDateTime::now_utc().unix_timestamp()
        )),
    )
    .await;
    assert_problem(wrong, 401, "unauthorized").await;
    let missing = app
        .client
        .post(format!("{}/v1/stripe/webhook", app.base))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_problem(missing, 401, "unauthorized").await;
    assert_eq!(plan_of(&app, user.id).await, Plan::Free, "nothing applied");
    let within = deliver_signed(&app, &created, Some(stripe_signature(body.as_bytes(), 290))).await;
    assert_eq!(within.status(), 200, "inside the 300 s tolerance");
    assert_eq!(plan_of(&app, user.id).await, Plan::Pro);
    let me: Value = app.get("/v1/me", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(me["plan"], "pro", "the session sees the new plan at once");

    // A replay of the same event id changes nothing.
    assert_eq!(deliver(&app, &created).await["status"], "duplicate");

    // Out of order: the downgrade at t=3000 arrives before an upgrade at t=2000.
    let later = event(
        "evt_3",
        "customer.subscription.updated",
        3_000,
        subscription("cus_a", "active", "price_basic", None),
    );
    let earlier = event(
        "evt_2",
        "customer.subscription.updated",
        2_000,
        subscription("cus_a", "active", "price_enterprise", None),
    );
    assert_eq!(deliver(&app, &later).await["plan"], "basic");
    let stale_state = deliver(&app, &earlier).await;
    assert_eq!(
        (stale_state["plan"].as_str(), stale_state["changed"].as_bool()),
        (Some("basic"), Some(false))
    );
    assert_eq!(plan_of(&app, user.id).await, Plan::Basic);

    // An unknown price is acknowledged and changes nothing.
    let unknown = deliver(
        &app,
        &event(
            "evt_4",
            "customer.subscription.updated",
            4_000,
            subscription("cus_a", "active", "price_mystery", None),
        ),
    )
    .await;
    assert!(
        unknown["note"].as_str().expect("a note").contains("price_mystery"),
        "{unknown}"
    );
    assert_eq!(plan_of(&app, user.id).await, Plan::Basic);

    // Unpaid invoices and deleted subscriptions fall back to Free; paid ones restore.
    deliver(
        &app,
        &event("evt_5", "invoice.payment_failed", 5_000, json!({"customer": "cus_a"})),
    )
    .await;
    assert_eq!(plan_of(&app, user.id).await, Plan::Free);
    let paid = json!({"customer": "cus_a", "lines": {"data": [{"price": {"id": "price_pro"}}]}});
    deliver(&app, &event("evt_6", "invoice.paid", 6_000, paid)).await;
    assert_eq!(plan_of(&app, user.id).await, Plan::Pro);
    deliver(
        &app,
        &event(
            "evt_7",
            "customer.subscription.deleted",
            7_000,
            subscription("cus_a", "canceled", "price_pro", None),
        ),
    )
    .await;
    assert_eq!(plan_of(&app, user.id).await, Plan::Free);

    // Events it does not handle are acknowledged; handled ones without a customer are not.
    assert_eq!(
        deliver(&app, &event("evt_8", "charge.captured", 8_000, json!({}))).await["status"],
        "ignored"
    );
    let broken = deliver_signed(&app, &event("evt_9", "invoice.paid", 9_000, json!({})), None).await;
    assert_problem(broken, 400, "malformed-request").await;

    let audit: Value = app
        .get("/v1/admin/audit?action=plan.changed", Some(app.reader().await))
        .await
        .json()
        .await
        .expect("json");
    let changes = audit["items"].as_array().expect("items");
    assert_eq!(changes.len(), 5, "pro, basic, free, pro, free: {audit}");
    assert!(
        changes
            .iter()
            .all(|c| c["actor"] == "stripe" && c["subject"] == format!("user:{}", user.id))
    );
    app.stop().await;
}

async fn events_for_an_unlinked_customer_wait_for_the_link(backend: Backend) {
    let app = spawn_app_with(backend, |s| configure(s, "http://127.0.0.1:9")).await;
    let user = app.make_user(Role::Artist, Plan::Free, &["art_1"], &[]).await;
    let early = deliver(
        &app,
        &event(
            "evt_1",
            "customer.subscription.created",
            100,
            subscription("cus_b", "active", "price_enterprise", None),
        ),
    )
    .await;
    assert_eq!(early["status"], "pending");
    assert_eq!(plan_of(&app, user.id).await, Plan::Free);
    let checkout = json!({"id": "cs_1", "customer": "cus_b", "client_reference_id": user.id.to_string()});
    let linked = deliver(&app, &event("evt_2", "checkout.session.completed", 99, checkout)).await;
    assert_eq!(
        (linked["status"].as_str(), linked["plan"].as_str()),
        (Some("applied"), Some("enterprise"))
    );
    assert_eq!(plan_of(&app, user.id).await, Plan::Enterprise);
    assert_eq!(
        app.store.stripe_customer(user.id).await.expect("read").as_deref(),
        Some("cus_b")
    );
    app.stop().await;
}

async fn payments_reach_passport_once(backend: Backend) {
    let app = spawn_app_with(backend, |s| configure(s, "http://127.0.0.1:9")).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let payment = json!({"id": "pi_1", "object": "payment_intent", "amount_received": 2_500, "currency": "usd",
        "metadata": {"artist_id": "art_7", "user_id": "fan_9", "kind": "ticket", "city": "Lagos"}});
    let first = deliver(
        &app,
        &event("evt_p1", "payment_intent.succeeded", now - 60, payment.clone()),
    )
    .await;
    assert_eq!(first["status"], "appended");
    // Stripe may send the payment again under another event id: one entry still.
    let again = deliver(&app, &event("evt_p2", "payment_intent.succeeded", now - 60, payment)).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(app.entries().await, 1);
    app.processed().await;
    let kpis: Value = app
        .get("/v1/kpis?scope=artist:art_7&range=24h", Some(app.reader().await))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kpis["totals"]["revenue_minor"], 2_500, "{kpis}");
    let no_artist = json!({"id": "pi_2", "amount_received": 100, "currency": "usd", "metadata": {}});
    assert_eq!(
        deliver(&app, &event("evt_p3", "payment_intent.succeeded", now, no_artist)).await["status"],
        "ignored"
    );
    app.stop().await;
}

/// What the stand-in Stripe API was asked: (path, authorization, form body).
type Recorded = Arc<Mutex<Vec<(String, String, String)>>>;

async fn record(State(recorded): State<Recorded>, request: Request) -> axum::Json<Value> {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.expect("body");
    let body = String::from_utf8(body.to_vec()).expect("utf-8");
    recorded.lock().expect("lock").push((path.clone(), authorization, body));
    axum::Json(json!({"id": "cs_test", "object": "checkout.session", "url": format!("https://stripe.test{path}")}))
}

/// A local stand-in for the Stripe API; returns its base URL and what it records.
pub async fn stripe_stand_in() -> (String, Recorded) {
    let recorded = Recorded::default();
    let router = axum::Router::new()
        .route("/v1/checkout/sessions", post(record))
        .route("/v1/billing_portal/sessions", post(record))
        .with_state(recorded.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, recorded)
}

fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        let decode = |s: &str| {
            let bytes = s.replace('+', " ");
            let mut out = Vec::new();
            let mut iter = bytes.bytes();
            while let Some(b) = iter.next() {
                if b == b'%' {
                    let hex: String = [iter.next()?, iter.next()?].iter().map(|&c| c as char).collect();
                    out.push(u8::from_str_radix(&hex, 16).ok()?);
                } else {
                    out.push(b);
                }
            }
            String::from_utf8(out).ok()
        };
        (decode(k)? == key).then(|| decode(v)).flatten()
    })
}

async fn checkout_and_portal_sessions_come_from_the_stripe_api(backend: Backend) {
    let (stripe, recorded) = stripe_stand_in().await;
    let app = spawn_app_with(backend, |s| configure(s, &stripe)).await;
    let user = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let cookie = app.session_for(&user, time::Duration::hours(1)).await;

    let portal = app.post_as("/v1/billing/portal", &cookie, None).await;
    assert_problem(portal, 409, "conflict").await;
    let checkout = app
        .post_as("/v1/billing/checkout", &cookie, Some(&json!({"plan": "pro"})))
        .await;
    assert_eq!(checkout.status(), 200);
    let checkout: Value = checkout.json().await.expect("json");
    assert_eq!(checkout["url"], "https://stripe.test/v1/checkout/sessions");
    {
        let calls = recorded.lock().expect("lock");
        let (path, authorization, body) = calls.last().expect("a call");
        assert_eq!(path, "/v1/checkout/sessions");
        assert_eq!(authorization, "Bearer sk_test_coliseum");
        assert_eq!(form_value(body, "mode").as_deref(), Some("subscription"));
        assert_eq!(form_value(body, "line_items[0][price]").as_deref(), Some("price_pro"));
        assert_eq!(form_value(body, "client_reference_id"), Some(user.id.to_string()));
        assert_eq!(form_value(body, "customer_email"), Some(user.email.clone()));
    }
    for (plan, status) in [("free", 422), ("gold", 422)] {
        let refused = app
            .post_as("/v1/billing/checkout", &cookie, Some(&json!({"plan": plan})))
            .await;
        assert_eq!(refused.status(), status, "{plan}");
    }
    assert_problem(
        app.post_as("/v1/billing/checkout", &cookie, Some(&json!({}))).await,
        400,
        "malformed-request",
    )
    .await;

    // Once Stripe has linked a customer, the portal opens for it.
    let linked = json!({"id": "cs_1", "customer": "cus_portal", "client_reference_id": user.id.to_string()});
    deliver(&app, &event("evt_1", "checkout.session.completed", 1, linked)).await;
    let portal = app.post_as("/v1/billing/portal", &cookie, None).await;
    assert_eq!(portal.status(), 200);
    let calls = recorded.lock().expect("lock").clone();
    let (path, _, body) = calls.last().expect("a call");
    assert_eq!(path, "/v1/billing_portal/sessions");
    assert_eq!(form_value(body, "customer").as_deref(), Some("cus_portal"));
    assert_eq!(calls.len(), 2, "refused requests never reach Stripe");
    // Subscribed: a second checkout would make a second subscription.
    let subscribed = subscription("cus_portal", "active", "price_pro", None);
    deliver(&app, &event("evt_2", "customer.subscription.created", 2, subscribed)).await;
    let again = app
        .post_as("/v1/billing/checkout", &cookie, Some(&json!({"plan": "enterprise"})))
        .await;
    assert_problem(again, 409, "conflict").await;
    assert_eq!(recorded.lock().expect("lock").len(), 2);
    app.stop().await;

    // A Stripe API that cannot be reached is a 502, not a hang or a 500.
    let unreachable = spawn_app_with(backend, |s| configure(s, "http://127.0.0.1:9")).await;
    let user = unreachable.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let cookie = unreachable.session_for(&user, time::Duration::hours(1)).await;
    let failed = unreachable
        .post_as("/v1/billing/checkout", &cookie, Some(&json!({"plan": "basic"})))
        .await;
    assert_problem(failed, 502, "upstream-failed").await;
    unreachable.stop().await;
}
