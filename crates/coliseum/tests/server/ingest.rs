//! `POST /v1/passport/events`: acceptance, idempotency, and every rejection
//! path of API.md, each checked for its status, its problem document, and
//! that nothing was stored.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, assert_problem, fresh_database, key, play, signed_headers, spawn_app, spawn_app_on};

on_both_backends!(
    a_single_envelope_is_accepted_once,
    a_mixed_batch_stores_exactly_the_valid_and_unknown_entries,
    every_rejection_path_stores_nothing,
    a_delivery_where_everything_is_rejected_is_a_422_with_results,
    a_full_ingest_queue_answers_503_and_stores_nothing,
);

async fn a_single_envelope_is_accepted_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.deliver(&play("single-1")).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({
            "accepted": 1, "duplicates": 0, "rejected": 0,
            "results": [{"index": 0, "event_id": "single-1", "status": "accepted"}]
        })
    );
    let again: Value = app.deliver(&play("single-1")).await.json().await.expect("json");
    assert_eq!(again["results"][0]["status"], "duplicate");
    assert_eq!(app.entries().await, 1);
    let stored = app.store.read_after(0, 10).await.expect("read");
    assert_eq!(stored[0].entry.city.as_deref(), Some("lagos"), "stored normalized");
    assert!(
        stored[0].entry.envelope.contains("\"Lagos\""),
        "the envelope keeps the original spelling"
    );
    app.stop().await;
}

async fn a_mixed_batch_stores_exactly_the_valid_and_unknown_entries(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.deliver(&play("old-1")).await.status(), 202);

    let mut unknown = play("new-unknown");
    unknown["type"] = json!("hologram.beamed");
    let mut invalid = play("new-invalid");
    invalid["timestamp"] = json!("yesterday");
    let batch = json!({"events": [play("new-1"), play("old-1"), invalid, unknown, play("new-1"), {"no": "id"}]});
    let response = app.deliver(&batch).await;
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.expect("json");
    let statuses: Vec<&str> = body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        statuses,
        ["accepted", "duplicate", "rejected", "accepted", "duplicate", "rejected"]
    );
    assert_eq!(
        (
            body["accepted"].as_u64(),
            body["duplicates"].as_u64(),
            body["rejected"].as_u64()
        ),
        (Some(2), Some(2), Some(2))
    );
    assert_eq!(body["results"][2]["errors"][0]["pointer"], "/events/2/timestamp");
    assert_eq!(body["results"][2]["event_id"], "new-invalid");
    assert!(body["results"][5].get("event_id").is_none());

    let mut ids: Vec<String> = app
        .store
        .read_after(0, 100)
        .await
        .expect("read")
        .into_iter()
        .map(|s| s.entry.event_id)
        .collect();
    ids.sort();
    assert_eq!(ids, ["new-1", "new-unknown", "old-1"]);
    assert_eq!(app.store.log_stats().await.expect("stats").unrecognized, 1);
    app.stop().await;
}

async fn every_rejection_path_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = format!("{}/v1/passport/events", app.base);
    let body = play("never-stored").to_string().into_bytes();
    let post = |headers: Vec<(&'static str, String)>, body: Vec<u8>| {
        let mut request = app.client.post(&url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.body(body).send()
    };
    let json_type = ("content-type", "application/json".to_owned());
    let with = |mut headers: Vec<(&'static str, String)>, name: &'static str, value: String| {
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
        headers
    };
    let mut signed = signed_headers(&body);
    signed.push(json_type.clone());

    // 401: no signature, a wrong one, a malformed one, a stale timestamp.
    assert_problem(
        post(vec![json_type.clone()], body.clone()).await.expect("sent"),
        401,
        "unauthorized",
    )
    .await;
    let wrong = with(
        signed.clone(),
        "webhook-signature",
        "v1,bm90IHRoZSByaWdodCBzaWduYXR1cmUgYXQgYWxsIQ==".to_owned(),
    );
    assert_problem(post(wrong, body.clone()).await.expect("sent"), 401, "unauthorized").await;
    let malformed = with(signed.clone(), "webhook-signature", "sha256=abc".to_owned());
    assert_problem(post(malformed, body.clone()).await.expect("sent"), 401, "unauthorized").await;
    let stale_at = time::OffsetDateTime::now_utc().unix_timestamp() - 301;
    let stale = with(signed.clone(), "webhook-timestamp", stale_at.to_string());
    let problem = assert_problem(post(stale, body.clone()).await.expect("sent"), 401, "unauthorized").await;
    assert!(problem["detail"].as_str().unwrap_or("").contains("5 minutes"));
    // A valid signature over a different body.
    assert_problem(
        post(signed.clone(), play("tampered").to_string().into_bytes())
            .await
            .expect("sent"),
        401,
        "unauthorized",
    )
    .await;

    // 415: not JSON.
    let text = with(signed.clone(), "content-type", "text/plain".to_owned());
    assert_problem(
        post(text, body.clone()).await.expect("sent"),
        415,
        "unsupported-media-type",
    )
    .await;

    // 413: more than 1 MiB.
    let huge = json!({"events": [play("big")], "padding": "x".repeat(1024 * 1024)})
        .to_string()
        .into_bytes();
    let mut huge_headers = signed_headers(&huge);
    huge_headers.push(json_type.clone());
    assert_problem(post(huge_headers, huge).await.expect("sent"), 413, "payload-too-large").await;

    // 400: not JSON at all, or not a delivery.
    for bad in [
        &b"{\"events\": [tru"[..],
        b"[1, 2]",
        b"{\"events\": []}",
        b"{\"events\": {}}",
    ] {
        let mut headers = signed_headers(bad);
        headers.push(json_type.clone());
        assert_problem(
            post(headers, bad.to_vec()).await.expect("sent"),
            400,
            "malformed-request",
        )
        .await;
    }
    let too_many = json!({"events": vec![play("x"); 1001]}).to_string().into_bytes();
    let mut headers = signed_headers(&too_many);
    headers.push(json_type.clone());
    assert_problem(post(headers, too_many).await.expect("sent"), 400, "malformed-request").await;

    // 404 and 405 are problem documents too.
    assert_problem(app.get("/v1/nowhere", None).await, 404, "not-found").await;
    assert_problem(app.get("/v1/passport/events", None).await, 405, "method-not-allowed").await;

    assert_eq!(app.entries().await, 0, "nothing was stored");
    app.stop().await;
}

async fn a_delivery_where_everything_is_rejected_is_a_422_with_results(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut future = play("future-1");
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let mut version = play("v2-1");
    version["schema_version"] = json!(2);
    let problem = assert_problem(
        app.deliver(&json!({"events": [future, version]})).await,
        422,
        "validation-failed",
    )
    .await;
    assert_eq!(problem["rejected"], 2);
    assert_eq!(problem["results"][0]["status"], "rejected");
    assert_eq!(problem["results"][0]["errors"][0]["pointer"], "/events/0/timestamp");
    assert_eq!(
        problem["results"][0]["errors"][0]["detail"],
        "more than 5 minutes in the future"
    );
    assert!(
        problem["results"][1]["errors"][0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("supported versions: 1")
    );
    assert_eq!(problem["errors"][1]["pointer"], "/events/1/schema_version");

    // A single envelope's pointers have no /events prefix.
    let mut bad = play("single-bad");
    bad["artist_id"] = json!(null);
    let problem = assert_problem(app.deliver(&bad).await, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["pointer"], "/artist_id");
    assert_eq!(app.entries().await, 0);
    app.stop().await;
}

async fn a_full_ingest_queue_answers_503_and_stores_nothing(backend: Backend) {
    let (url, guard) = fresh_database(backend).await;
    let mut settings = coliseum_http::settings::Settings::for_tests(&url, key());
    settings.ingest.queue_entries = 2;
    let app = spawn_app_on(settings, guard).await;
    let response = app
        .deliver(&json!({"events": [play("q-1"), play("q-2"), play("q-3")]}))
        .await;
    assert_eq!(
        response.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_problem(response, 503, "unavailable").await;
    assert_eq!(app.entries().await, 0);
    assert_eq!(
        app.deliver(&json!({"events": [play("q-1"), play("q-2")]}))
            .await
            .status(),
        202,
        "what fits is taken"
    );
    app.stop().await;
}
