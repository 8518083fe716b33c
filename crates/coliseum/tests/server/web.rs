//! The web pages over HTTP: their headers and files, errors as pages for
//! browsers only, the sign-in forms' defences, and pages and CSV that show
//! exactly the API's figures. (The browser itself: tests/browser.)

use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp, play, spawn_app};

on_both_backends!(
    pages_carry_their_security_headers_and_files_are_immutable,
    browsers_get_error_pages_and_the_api_keeps_its_problem_documents,
    the_sign_in_forms_refuse_other_sites_and_never_redirect_away,
    signing_out_needs_the_session_token_and_ends_the_session,
    the_account_lists_its_sessions_and_ends_the_others,
    pages_and_csv_show_the_figures_the_api_serves,
);

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn pages_carry_their_security_headers_and_files_are_immutable(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app
        .client
        .get(format!("{}/", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "cache-control"), "private, no-store");
    assert_eq!(
        header(&page, "content-encoding"),
        "",
        "a page with a CSRF token beside reflected text is never compressed"
    );
    let html = page.text().await.expect("html");
    let css = html
        .split('"')
        .find(|part| part.starts_with("/assets/arena.") && part.ends_with(".css"))
        .expect("the stylesheet's hashed URL")
        .to_owned();

    let file = app
        .client
        .get(format!("{}{css}", app.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("css");
    assert_eq!(file.status(), 200);
    assert_eq!(header(&file, "cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(header(&file, "content-type"), "text/css; charset=utf-8");
    assert_eq!(header(&file, "content-encoding"), "gzip");
    // A name that is not a file's current hashed name is nothing.
    let stale = app.get("/assets/arena.0000000000.css", None).await;
    assert_eq!(stale.status(), 404);
}

async fn browsers_get_error_pages_and_the_api_keeps_its_problem_documents(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |path: &str, accept: &str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("accept", accept)
            .send()
    };
    let page = get("/no/such/page", "text/html,application/xhtml+xml")
        .await
        .expect("page");
    assert_eq!(page.status(), 404);
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("nothing is served at /no/such/page")
    );

    let client = get("/no/such/page", "application/json").await.expect("json");
    assert_eq!(client.status(), 404);
    assert_eq!(header(&client, "content-type"), "application/problem+json");

    let api = get("/v1/no/such/thing", "text/html").await.expect("api");
    assert_eq!(api.status(), 404);
    assert_eq!(header(&api, "content-type"), "application/problem+json");

    // A refused read on a page keeps its status; a 422 names the parameter.
    let cookie = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let bad = app
        .client
        .get(format!("{}/app/leaderboards?board=nonsense", app.base))
        .header("accept", "text/html")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("bad");
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.expect("html").contains("`nonsense` is not a board"));

    // Form bodies are the pages' only: the API still refuses them.
    let form = app
        .client
        .post(format!("{}/v1/auth/login", app.base))
        .form(&[("email", "a@example.com"), ("password", "whatever at all")])
        .send()
        .await
        .expect("form");
    assert_eq!(form.status(), 415);
}

async fn the_sign_in_forms_refuse_other_sites_and_never_redirect_away(backend: Backend) {
    let app = spawn_app(backend).await;
    let (email, password) = app.create_user_with(Role::Fan, Plan::Basic, &[]).await;
    let client = no_redirects();
    let sign_in = |next: &str, origin: Option<&str>| {
        let mut request = client.post(format!("{}/login", app.base)).form(&[
            ("email", email.as_str()),
            ("password", password),
            ("next", next),
        ]);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // Login CSRF: another site's page may not sign this browser in.
    let foreign = sign_in("/app/account", Some("https://evil.example"))
        .await
        .expect("sent");
    assert_eq!(foreign.status(), 403);
    assert!(foreign.headers().get("set-cookie").is_none());

    let own = sign_in("/app/account", Some(&app.base)).await.expect("sent");
    assert_eq!(own.status(), 303);
    assert_eq!(header(&own, "location"), "/app/account");
    assert!(header(&own, "set-cookie").contains("HttpOnly"));

    for away in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let answer = sign_in(away, None).await.expect("sent");
        assert_eq!(answer.status(), 303);
        assert_eq!(header(&answer, "location"), "/app/analytics", "{away}");
    }

    let wrong = client
        .post(format!("{}/login", app.base))
        .form(&[("email", email.as_str()), ("password", "not the password")])
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.expect("html");
    assert!(html.contains("email or password is not right"));
    assert!(html.contains(&format!("value=\"{email}\"")), "the form keeps the email");

    let short = client
        .post(format!("{}/signup", app.base))
        .form(&[("email", "new@example.com"), ("password", "short")])
        .send()
        .await
        .expect("sent");
    assert_eq!(short.status(), 422);
    assert!(short.text().await.expect("html").contains("at least 10 characters"));
}

async fn signing_out_needs_the_session_token_and_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    let client = no_redirects();
    let without = client
        .post(format!("{}/logout", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf_token", "not the token")])
        .send()
        .await
        .expect("sent");
    assert_eq!(without.status(), 403);
    assert_eq!(app.get("/v1/me", Some(&cookie)).await.status(), 200, "still signed in");

    let token = app.csrf(&cookie).await;
    let out = client
        .post(format!("{}/logout", app.base))
        .header("cookie", &cookie)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(out.status(), 303);
    assert_eq!(header(&out, "location"), "/");
    assert!(header(&out, "set-cookie").contains("Max-Age=0"));
    assert_eq!(
        app.get("/v1/me", Some(&cookie)).await.status(),
        401,
        "ended on the server"
    );
    let dashboard = client
        .get(format!("{}/app/analytics", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("sent");
    assert_eq!(dashboard.status(), 303);
    assert!(header(&dashboard, "location").starts_with("/login?next="));
}

async fn the_account_lists_its_sessions_and_ends_the_others(backend: Backend) {
    let app = spawn_app(backend).await;
    let (email, password) = app.create_user_with(Role::Fan, Plan::Basic, &[]).await;
    let here = app.sign_in_existing(&email, password).await;
    let elsewhere = app.sign_in_existing(&email, password).await;
    let account = page(&app, "/app/account", &here).await;
    assert_eq!(account.matches("<td>this one</td>").count(), 1);
    assert!(account.contains("Sign out everywhere else"));
    let listed = account
        .split("<caption class=\"sr-only\">Where this account is signed in</caption>")
        .nth(1)
        .expect("table");
    assert_eq!(
        listed.split("</tbody>").next().expect("rows").matches("<tr").count() - 1,
        2,
        "both sessions"
    );

    let client = no_redirects();
    let refused = client
        .post(format!("{}/app/account/sessions", app.base))
        .header("cookie", &here)
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), 403);
    assert_eq!(app.get("/v1/me", Some(&elsewhere)).await.status(), 200);

    let token = app.csrf(&here).await;
    let ended = client
        .post(format!("{}/app/account/sessions", app.base))
        .header("cookie", &here)
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(ended.status(), 303);
    assert_eq!(
        app.get("/v1/me", Some(&elsewhere)).await.status(),
        401,
        "ended on the server"
    );
    assert_eq!(app.get("/v1/me", Some(&here)).await.status(), 200, "this one stays");
    assert!(
        !page(&app, "/app/account", &here)
            .await
            .contains("Sign out everywhere else")
    );
}

async fn page(app: &TestApp, path: &str, cookie: &str) -> String {
    let response = app.get(path, Some(cookie)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("html")
}

async fn pages_and_csv_show_the_figures_the_api_serves(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, artist) in ["art_1", "art_1", "art_1", "art_2", "art_2", "art_3"]
        .iter()
        .enumerate()
    {
        let mut entry = play(&format!("web-{i}"));
        entry["artist_id"] = json!(artist);
        entry["metadata"]["artist_name"] = json!(format!("=Name <{artist}>"));
        assert_eq!(app.deliver(&entry).await.status(), 202);
    }
    app.processed().await;
    let cookie = app.sign_in_with(Role::Artist, Plan::Enterprise, &["art_1"]).await;

    let board: Value = app
        .get("/v1/leaderboards/plays?range=24h", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    let html = page(&app, "/app/leaderboards?range=24h", &cookie).await;
    for entry in board["entries"].as_array().expect("entries") {
        let name = entry["artist_name"].as_str().expect("name");
        // Escaped: a name is text, never markup.
        let escaped = name.replace('<', "&#60;").replace('>', "&#62;");
        assert!(html.contains(&escaped), "{escaped} is on the page");
        assert!(!html.contains(name), "{name} is escaped");
    }
    assert!(html.contains("data-topic="), "the first page follows its live topic");

    let csv = page(&app, "/app/leaderboards.csv?range=24h", &cookie).await;
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("rank,artist_id,artist_name,plays,as_of,watermark"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(str::to_owned).collect()).collect();
    assert_eq!(rows.len(), 3);
    for (row, entry) in rows.iter().zip(board["entries"].as_array().expect("entries")) {
        assert_eq!(row[0], entry["rank"].to_string());
        assert_eq!(row[1], entry["artist_id"].as_str().expect("id"));
        assert_eq!(
            row[2],
            format!("'{}", entry["artist_name"].as_str().expect("name")),
            "no formula"
        );
        assert_eq!(row[3], entry["value"].to_string());
        assert_eq!(row[5], board["watermark"].to_string());
    }

    let kpis: Value = app
        .get("/v1/kpis?scope=artist:art_1&range=24h", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(kpis["totals"]["plays"], 3);
    let analytics = page(&app, "/app/analytics?scope=artist:art_1&range=24h", &cookie).await;
    assert!(analytics.contains(r#"data-kpi="plays" data-unit="count" data-value="3""#));
    // The scope switcher offers what the account is linked to.
    assert!(analytics.contains("Artist · =Name &#60;art_1&#62;"));
    let series = page(&app, "/app/analytics.csv?scope=artist:art_1&range=24h", &cookie).await;
    let plays: i64 = series
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).expect("plays").parse::<i64>().expect("number"))
        .sum();
    assert_eq!(plays, 3);
}
