//! Signup, CSRF, API keys, Supabase tokens, login throttling and the audit
//! log, over HTTP.

use coliseum_domain::plans::{Plan, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, assert_problem, spawn_app, spawn_app_with};

on_both_backends!(
    signup_makes_a_signed_in_free_fan_once_per_email,
    api_keys_are_for_pro_shown_once_and_stop_when_revoked_or_downgraded,
    supabase_tokens_sign_in_and_bad_ones_are_refused,
    logins_are_throttled_per_email,
    operators_print_api_keys_from_the_command_line,
    the_audit_log_records_who_did_what_in_which_request,
);

async fn signup(app: &crate::support::TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(format!("{}/v1/auth/signup", app.base))
        .json(body)
        .send()
        .await
        .expect("sent")
}

async fn signup_makes_a_signed_in_free_fan_once_per_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = signup(&app, &json!({"email": "New.Fan@Example.com", "password": "ten chars!"})).await;
    assert_eq!(response.status(), 201);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("a session cookie")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned();
    let me: Value = app.get("/v1/me", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(me["user"]["email"], "new.fan@example.com");
    assert_eq!(
        (me["user"]["role"].as_str(), me["plan"].as_str()),
        (Some("fan"), Some("free"))
    );

    let again = signup(
        &app,
        &json!({"email": "new.fan@EXAMPLE.com", "password": "another password"}),
    )
    .await;
    assert_problem(again, 409, "conflict").await;
    let short = signup(&app, &json!({"email": "short@example.com", "password": "nine char"})).await;
    let problem = assert_problem(short, 422, "validation-failed").await;
    assert_eq!(problem["errors"][0]["pointer"], "/password");
    let not_email = signup(&app, &json!({"email": "not an email", "password": "long enough pw"})).await;
    assert_eq!(
        assert_problem(not_email, 422, "validation-failed").await["errors"][0]["pointer"],
        "/email"
    );
    assert_problem(
        signup(&app, &json!({"email": "x@example.com"})).await,
        400,
        "malformed-request",
    )
    .await;
    // The existing account kept its password: signing in with it works.
    app.sign_in_existing("new.fan@example.com", "ten chars!").await;
    app.stop().await;
}

async fn api_keys_are_for_pro_shown_once_and_stop_when_revoked_or_downgraded(backend: Backend) {
    let app = spawn_app(backend).await;
    let free = app.make_user(Role::Developer, Plan::Free, &[], &[]).await;
    let free_cookie = app.session_for(&free, time::Duration::hours(1)).await;
    let refused = app
        .post_as("/v1/api-keys", &free_cookie, Some(&json!({"name": "ci"})))
        .await;
    let problem = assert_problem(refused, 403, "upgrade-required").await;
    assert_eq!(
        (problem["feature"].as_str(), problem["cheapest_plan"].as_str()),
        (Some("api_keys"), Some("pro"))
    );

    let pro = app.make_user(Role::Developer, Plan::Pro, &[], &[]).await;
    let cookie = app.session_for(&pro, time::Duration::hours(1)).await;
    let created = app.post_as("/v1/api-keys", &cookie, Some(&json!({"name": "ci"}))).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let key = created["key"].as_str().expect("the key, once").to_owned();
    assert!(key.starts_with("ck_"));
    assert!(key.starts_with(created["prefix"].as_str().expect("prefix")));
    let bad_name = app.post_as("/v1/api-keys", &cookie, Some(&json!({"name": " "}))).await;
    assert_problem(bad_name, 422, "validation-failed").await;

    let listed: Value = app.get("/v1/api-keys", Some(&cookie)).await.json().await.expect("json");
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert!(listed["items"][0].get("key").is_none(), "the key is never shown again");
    assert!(!listed.to_string().contains(&key));

    let me = app.get_bearer("/v1/me", &key).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["user"]["id"], pro.id);
    // A bearer request needs no CSRF token.
    let second = app
        .client
        .post(format!("{}/v1/api-keys", app.base))
        .bearer_auth(&key)
        .json(&json!({"name": "made with a key"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(second.status(), 201);
    assert_problem(app.get_bearer("/v1/me", "ck_not-a-key").await, 401, "unauthorized").await;

    // Another user cannot revoke it; its owner can, and it stops at once.
    let other = app.make_user(Role::Developer, Plan::Pro, &[], &[]).await;
    let other_cookie = app.session_for(&other, time::Duration::hours(1)).await;
    let id = created["id"].as_i64().expect("id");
    let path = format!("/v1/api-keys/{id}");
    let foreign = app.send_as(reqwest::Method::DELETE, &path, &other_cookie, None).await;
    assert_problem(foreign, 404, "not-found").await;
    let revoked = app.send_as(reqwest::Method::DELETE, &path, &cookie, None).await;
    assert_eq!(revoked.status(), 204);
    assert_problem(app.get_bearer("/v1/me", &key).await, 401, "unauthorized").await;
    let listed: Value = app.get("/v1/api-keys", Some(&cookie)).await.json().await.expect("json");
    assert!(listed["items"][0]["revoked_at"].is_string());

    // A key acts with its owner's plan of the moment.
    let (live_key, _) = app.api_key_for(&other).await;
    assert_eq!(app.get_bearer("/v1/me", &live_key).await.status(), 200);
    // (An owner below Pro: say a Pro account whose subscription ended.)
    let downgraded = app.make_user(Role::Developer, Plan::Free, &[], &[]).await;
    let (downgraded_key, _) = app.api_key_for(&downgraded).await;
    let problem = assert_problem(app.get_bearer("/v1/me", &downgraded_key).await, 403, "upgrade-required").await;
    assert_eq!(problem["feature"], "api_keys");
    app.stop().await;
}

const JWT_SECRET: &str = "a-supabase-jwt-secret-of-at-least-32-characters";

fn supabase_token(sub: &str, email: &str, exp_from_now: i64, secret: &str) -> String {
    let claims = json!({
        "sub": sub, "email": email, "role": "authenticated", "aud": "authenticated",
        "exp": time::OffsetDateTime::now_utc().unix_timestamp() + exp_from_now,
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

async fn supabase_tokens_sign_in_and_bad_ones_are_refused(backend: Backend) {
    let app = spawn_app_with(backend, |settings| {
        settings.supabase_jwt_secret = Some(coliseum_http::settings::Secret::new(JWT_SECRET));
    })
    .await;
    let sub = "2b0c8f9e-1d5a-4c1e-9f3b-7a6d5e4c3b2a";
    let token = supabase_token(sub, "Platform.Fan@example.com", 3600, JWT_SECRET);
    let me = app.get_bearer("/v1/me", &token).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.expect("json");
    assert_eq!(me["user"]["email"], "platform.fan@example.com");
    assert_eq!(
        (me["user"]["role"].as_str(), me["plan"].as_str()),
        (Some("fan"), Some("free"))
    );
    let again: Value = app.get_bearer("/v1/me", &token).await.json().await.expect("json");
    assert_eq!(
        again["user"]["id"], me["user"]["id"],
        "the same subject is the same user"
    );

    let expired = supabase_token(sub, "platform.fan@example.com", -3600, JWT_SECRET);
    assert_problem(app.get_bearer("/v1/me", &expired).await, 401, "unauthorized").await;
    let forged = supabase_token(
        sub,
        "platform.fan@example.com",
        3600,
        "another-secret-of-at-least-32-characters!!",
    );
    assert_problem(app.get_bearer("/v1/me", &forged).await, 401, "unauthorized").await;
    let (_, rest) = token.split_once('.').expect("a JWT");
    let (claims, _) = rest.split_once('.').expect("a JWT");
    use base64::Engine;
    let none = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_problem(
        app.get_bearer("/v1/me", &format!("{none}.{claims}.")).await,
        401,
        "unauthorized",
    )
    .await;
    // Invalid credentials are refused even where none are needed.
    assert_problem(
        app.get_bearer("/v1/leaderboards/plays", &expired).await,
        401,
        "unauthorized",
    )
    .await;
    app.stop().await;

    // Without the secret, such tokens are not accepted at all.
    let plain = spawn_app(backend).await;
    assert_problem(plain.get_bearer("/v1/me", &token).await, 401, "unauthorized").await;
    plain.stop().await;
}

async fn logins_are_throttled_per_email(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.make_user(Role::Fan, Plan::Free, &[], &[]).await;
    let attempt = |email: String| {
        let client = app.client.clone();
        let url = format!("{}/v1/auth/login", app.base);
        async move {
            client
                .post(url)
                .json(&json!({"email": email, "password": "guess guess guess"}))
                .send()
                .await
                .expect("sent")
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt(user.email.clone()).await.status(), 401);
    }
    let throttled = attempt(user.email.to_uppercase()).await;
    assert_eq!(throttled.status(), 429);
    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=90).contains(&retry_after), "{retry_after}");
    assert_eq!(
        throttled.headers().get("ratelimit-remaining").map(|v| v.as_bytes()),
        Some(&b"0"[..])
    );
    assert_problem(throttled, 429, "rate-limited").await;
    // Even the right password waits; another email does not.
    let right = app
        .client
        .post(format!("{}/v1/auth/login", app.base))
        .json(&json!({"email": user.email, "password": crate::support::PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 429);
    assert_eq!(attempt("someone.else@example.com".to_owned()).await.status(), 401);
    app.stop().await;
}

async fn the_audit_log_records_who_did_what_in_which_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.make_user(Role::Admin, Plan::Free, &[], &[]).await;
    let admin_cookie = app.sign_in_existing(&admin.email, crate::support::PASSWORD).await;
    let failed = app
        .client
        .post(format!("{}/v1/auth/login", app.base))
        .json(&json!({"email": admin.email, "password": "not the password"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(failed.status(), 401);
    let pause = app.post_as("/v1/admin/pipeline/pause", &admin_cookie, None).await;
    assert_eq!(pause.status(), 200);
    let request_id = pause
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("a request id")
        .to_owned();
    let developer = app.make_user(Role::Developer, Plan::Pro, &[], &[]).await;
    let cookie = app.session_for(&developer, time::Duration::hours(1)).await;
    let key = app.post_as("/v1/api-keys", &cookie, Some(&json!({"name": "ci"}))).await;
    let key: Value = key.json().await.expect("json");

    let audit: Value = app
        .get("/v1/admin/audit?limit=100", Some(&admin_cookie))
        .await
        .json()
        .await
        .expect("json");
    let items = audit["items"].as_array().expect("items");
    let find = |action: &str| {
        items
            .iter()
            .find(|r| r["action"] == action)
            .unwrap_or_else(|| panic!("{action} in {audit}"))
    };
    let actor = format!("user:{}", admin.id);
    assert_eq!(find("login")["actor"], actor.as_str());
    assert_eq!(find("login.failed")["subject"], format!("email:{}", admin.email));
    let paused = find("pipeline.paused");
    assert_eq!(
        (paused["actor"].as_str(), paused["request_id"].as_str()),
        (Some(actor.as_str()), Some(request_id.as_str()))
    );
    let created = find("api_key.created");
    assert_eq!(created["actor"], format!("user:{}", developer.id));
    assert_eq!(created["subject"], format!("api_key:{}", key["id"]));
    assert!(
        !created.to_string().contains(key["key"].as_str().expect("key")),
        "never the key itself"
    );

    let filtered: Value = app
        .get(
            &format!("/v1/admin/audit?action=login&actor={actor}"),
            Some(&admin_cookie),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(filtered["items"].as_array().map(Vec::len), Some(1));
    let paged: Value = app
        .get("/v1/admin/audit?limit=1", Some(&admin_cookie))
        .await
        .json()
        .await
        .expect("json");
    let cursor = paged["next_cursor"].as_str().expect("another page");
    let next: Value = app
        .get(&format!("/v1/admin/audit?limit=1&cursor={cursor}"), Some(&admin_cookie))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        next["items"][0]["id"].as_i64() < paged["items"][0]["id"].as_i64(),
        "newest first"
    );
    let fan = app.make_user(Role::Fan, Plan::Enterprise, &[], &[]).await;
    let fan_cookie = app.session_for(&fan, time::Duration::hours(1)).await;
    assert_problem(app.get("/v1/admin/audit", Some(&fan_cookie)).await, 403, "forbidden").await;
    assert_problem(
        app.get("/v1/admin/audit?since=yesterday", Some(&admin_cookie)).await,
        422,
        "invalid-parameter",
    )
    .await;
    app.stop().await;
}

async fn operators_print_api_keys_from_the_command_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.make_user(Role::Developer, Plan::Enterprise, &[], &[]).await;
    let run = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_coliseum"))
            .args([
                "api-keys",
                "create",
                "--database-url",
                &app.database_url,
                "--email",
                email,
                "--name",
                "deploy",
            ])
            .output()
            .expect("the binary runs")
    };
    let output = run(&user.email);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).expect("utf-8").trim().to_owned();
    assert!(key.starts_with("ck_"), "{key}");
    let me: Value = app.get_bearer("/v1/me", &key).await.json().await.expect("json");
    assert_eq!(me["user"]["id"], user.id);
    let unknown = run("nobody@example.com");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user"));
    app.stop().await;
}
