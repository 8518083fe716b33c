//! Sessions, the admin pipeline view, and the operations endpoints.

use coliseum_domain::plans::Role;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, assert_problem, play, spawn_app};

on_both_backends!(
    the_pipeline_view_is_for_admins_only,
    logins_fail_alike_and_logout_ends_the_session_at_once,
    health_readiness_and_metrics,
    the_api_document_and_its_readable_form_are_served,
);

async fn the_pipeline_view_is_for_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut unknown = play("u-1");
    unknown["type"] = json!("hologram.beamed");
    assert_eq!(
        app.deliver(&json!({"events": [play("p-1"), play("p-2"), unknown]}))
            .await
            .status(),
        202
    );

    assert_problem(app.get("/v1/admin/pipeline", None).await, 401, "unauthorized").await;
    let fan = app.sign_in_as(Role::Fan).await;
    assert_problem(app.get("/v1/admin/pipeline", Some(&fan)).await, 403, "forbidden").await;

    let admin = app.sign_in_as(Role::Admin).await;
    let response = app.get("/v1/admin/pipeline", Some(&admin)).await;
    assert_eq!(response.status(), 200);
    let pipeline: Value = response.json().await.expect("json");
    assert_eq!(pipeline["head_seq"], 3);
    let processed = pipeline["processed_seq"].as_i64().expect("processed_seq");
    assert!((0..=3).contains(&processed));
    assert_eq!(pipeline["queue_depth"], 3 - processed);
    assert_eq!(pipeline["unrecognized"], 1);
    assert_eq!(pipeline["paused"], false);
    for field in [
        "processed_seq",
        "ingest_per_s",
        "processed_per_s",
        "error_rate_10m",
        "dead_letters",
    ] {
        assert!(pipeline[field].is_number(), "{field} in {pipeline}");
    }
    for p in ["p50", "p95", "p99"] {
        assert!(pipeline["latency_ms"][p].is_number());
    }
    app.stop().await;
}

async fn logins_fail_alike_and_logout_ends_the_session_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.sign_in_as(Role::Admin).await;
    let login = |email: &str, password: &str| {
        app.client
            .post(format!("{}/v1/auth/login", app.base))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let unknown = assert_problem(
        login("nobody@example.com", "whatever password").await.expect("sent"),
        401,
        "unauthorized",
    )
    .await;
    let (email, _) = app.create_user(Role::Fan).await;
    let wrong = assert_problem(
        login(&email, "wrong password!!").await.expect("sent"),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(unknown["detail"], wrong["detail"], "no hint whether the email exists");
    assert_problem(
        app.client
            .post(format!("{}/v1/auth/login", app.base))
            .header("content-type", "application/json")
            .body("{")
            .send()
            .await
            .expect("sent"),
        400,
        "malformed-request",
    )
    .await;

    assert_eq!(app.get("/v1/admin/pipeline", Some(&admin)).await.status(), 200);
    let forged = app
        .client
        .post(format!("{}/v1/auth/logout", app.base))
        .header("cookie", &admin)
        .send()
        .await
        .expect("sent");
    let problem = assert_problem(forged, 403, "forbidden").await;
    assert!(problem["detail"].as_str().expect("detail").contains("CSRF"));
    assert_eq!(
        app.get("/v1/admin/pipeline", Some(&admin)).await.status(),
        200,
        "still signed in"
    );
    let logout = app.post_as("/v1/auth/logout", &admin, None).await;
    assert_eq!(logout.status(), 204);
    assert!(
        logout
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_problem(app.get("/v1/admin/pipeline", Some(&admin)).await, 401, "unauthorized").await;
    app.stop().await;
}

async fn health_readiness_and_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        ready["backend"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );

    assert_eq!(app.deliver(&play("m-1")).await.status(), 202);
    assert_problem(app.get("/metrics", None).await, 401, "unauthorized").await;
    let admin = app.sign_in_as(Role::Admin).await;
    let metrics = app.get("/metrics", Some(&admin)).await.text().await.expect("text");
    assert!(
        metrics.contains("coliseum_ingest_entries_total{outcome=\"accepted\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("coliseum_ingest_request_seconds_bucket"),
        "latency is a histogram"
    );
    assert!(metrics.contains("coliseum_ingest_commit_seconds_bucket"));
    app.processed().await;
    let metrics = app.get("/metrics", Some(&admin)).await.text().await.expect("text");
    for processing in [
        "coliseum_processed_entries_total",
        "coliseum_processed_seq",
        "coliseum_visibility_latency_seconds_bucket",
    ] {
        assert!(metrics.contains(processing), "{processing} in {metrics}");
    }
    app.stop().await;
}

async fn the_api_document_and_its_readable_form_are_served(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await.expect("json");
    assert_eq!(served["openapi"], "3.1.0");
    let generated = serde_json::to_value(coliseum_http::routes::api().into_openapi()).expect("json");
    assert_eq!(served, generated, "the document served is the one the routes describe");
    assert!(served["paths"]["/v1/kpis"]["get"].is_object());

    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.expect("html").contains("swagger-ui"));
    // Swagger UI reads the document from this server, not from elsewhere.
    let initializer = app
        .get("/docs/swagger-initializer.js", None)
        .await
        .text()
        .await
        .expect("js");
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    app.stop().await;
}
