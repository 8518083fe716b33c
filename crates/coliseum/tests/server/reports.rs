//! Reports and share links over HTTP, read the way people read them: the
//! PDF through poppler (`pdftotext`, `pdfinfo`, `pdftoppm`), its QR code
//! through `zbarimg`, the link in a client that follows nothing. The tools
//! come from Debian's `poppler-utils` and `zbar-tools` (`scripts/test`
//! installs them); a test that cannot find them fails, naming them.

use std::path::PathBuf;
use std::process::Command;

use coliseum_domain::clock::Clock;
use coliseum_domain::plans::{Plan, Role};
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{
    Backend, TestApp, assert_problem, past_the_boundary, play, spawn_app, spawn_app_before_a_boundary,
    spawn_app_with_clock,
};

on_both_backends!(
    a_pdf_report_prints_the_apis_figures_and_its_qr_code_opens_the_same_file,
    a_json_report_is_the_bodies_the_api_serves,
    a_long_leaderboard_paginates_with_its_header_on_every_page,
    share_links_expire_end_rotate_and_ask_for_their_password,
    plans_decide_who_reports_the_watermark_the_quota_and_link_lifetimes,
    the_dashboard_generates_lists_and_shares_reports_with_its_forms,
    enterprise_reports_carry_the_accounts_own_brand,
    scheduled_reports_are_mailed_retried_and_skipped_when_nothing_changed,
);

/// Runs a tool from poppler or zbar; its stdout.
fn tool(name: &str, args: &[&str]) -> String {
    let output = Command::new(name).args(args).output().unwrap_or_else(|error| {
        panic!("`{name}` is needed by the report tests (Debian: poppler-utils, zbar-tools; scripts/test installs them): {error}")
    });
    assert!(
        output.status.success(),
        "{name} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

struct Pdf {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Pdf {
    fn new(bytes: &[u8]) -> Self {
        assert!(bytes.starts_with(b"%PDF-"), "a PDF");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, bytes).expect("write");
        Self { dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    fn text(&self) -> String {
        tool("pdftotext", &["-layout", self.path(), "-"])
    }

    fn page_text(&self, page: usize) -> String {
        let page = page.to_string();
        tool("pdftotext", &["-layout", "-f", &page, "-l", &page, self.path(), "-"])
    }

    fn info(&self) -> String {
        tool("pdfinfo", &[self.path()])
    }

    fn pages(&self) -> usize {
        self.info()
            .lines()
            .find_map(|l| l.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a page count")
    }

    /// Every QR code on every page, decoded.
    fn qr_codes(&self) -> Vec<String> {
        let prefix = self.dir.path().join("page");
        tool(
            "pdftoppm",
            &["-r", "150", "-png", self.path(), prefix.to_str().expect("utf-8")],
        );
        let mut codes = Vec::new();
        let mut pages: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("pages")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
            .collect();
        pages.sort();
        assert_eq!(pages.len(), self.pages(), "pdftoppm renders every page");
        for page in pages {
            let output = Command::new("zbarimg")
                .args(["-q", "--raw", page.to_str().expect("utf-8")])
                .output()
                .expect("zbarimg (Debian: zbar-tools) is needed by the report tests");
            codes.extend(String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned));
        }
        codes
    }
}

/// `1234567` → `1,234,567`, as reports print figures.
fn grouped(value: i64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

async fn make_report(app: &TestApp, cookie: &str, body: Value) -> reqwest::Response {
    app.post_as("/v1/reports", cookie, Some(&body)).await
}

async fn made(app: &TestApp, cookie: &str, body: Value) -> Value {
    let response = make_report(app, cookie, body).await;
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
    response.json().await.expect("json")
}

async fn bytes_of(app: &TestApp, url: &str, cookie: Option<&str>) -> (u16, Vec<u8>) {
    let mut request = app.client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("bytes").to_vec())
}

/// Plays for `artist` named `name`, `count` of them.
async fn plays(app: &TestApp, artist: &str, name: &str, count: usize) {
    let events: Vec<Value> = (0..count)
        .map(|i| {
            let mut entry = play(&format!("{artist}-{i}"));
            entry["artist_id"] = json!(artist);
            entry["user_id"] = json!(format!("fan_{i}"));
            entry["metadata"]["artist_name"] = json!(name);
            entry
        })
        .collect();
    for chunk in events.chunks(1_000) {
        assert_eq!(app.deliver(&json!({"events": chunk})).await.status(), 202);
    }
}

async fn a_pdf_report_prints_the_apis_figures_and_its_qr_code_opens_the_same_file(backend: Backend) {
    // Pro reads the data of the last 60-second boundary: the plays land
    // before it.
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |_| {}).await;
    plays(&app, "art_1", "Burna Boy", 1_234).await;
    plays(&app, "art_2", "Tems", 40).await;
    past_the_boundary(&app, &clock, boundary).await;
    let cookie = app.sign_in_with(Role::Artist, Plan::Pro, &["art_1"]).await;
    let kpis: Value = app
        .get("/v1/kpis?scope=artist:art_1&range=30d", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");

    let report = made(
        &app,
        &cookie,
        json!({"template": "artist", "format": "pdf", "params": {"artist_id": "art_1", "range": "30d"}}),
    )
    .await;
    assert_eq!(report["template"], "artist");
    assert!(report["id"].as_str().is_some_and(|id| id.starts_with("rep_")));
    assert_eq!(report["watermark"], kpis["watermark"]);
    let download = report["download_url"].as_str().expect("download url");
    assert!(download.starts_with(&app.base), "absolute: {download}");
    let (status, file) = bytes_of(&app, download, Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(report["size_bytes"], file.len());
    let pdf = Pdf::new(&file);

    let info = pdf.info();
    assert!(info.contains("Tagged:          yes"), "{info}");
    assert!(info.contains("Title:           Artist report: Burna Boy"), "{info}");
    let fonts = tool("pdffonts", &[pdf.path()]);
    assert!(
        fonts.lines().skip(2).all(|l| l.contains(" yes yes ")),
        "every font embedded and subset: {fonts}"
    );
    let text = pdf.text();
    assert!(text.contains("Burna Boy"), "{text}");
    assert!(
        text.contains(&grouped(kpis["totals"]["plays"].as_i64().expect("plays"))),
        "the plays the API counts: {text}"
    );
    assert!(text.contains("1,234"), "figures in full, grouped: {text}");
    assert!(
        text.contains(&format!("watermark {}", kpis["watermark"])),
        "the footer states the watermark: {text}"
    );
    assert!(text.contains("Page 1 of"), "page numbers");
    assert!(!text.contains("Coliseum Basic"), "a Pro report carries no watermark");
    assert!(text.contains("Why this rank"), "the explanation");
    assert!(text.contains("Cultural"), "the DNA domains: {text}");

    let share = &report["share"];
    let url = share["url"].as_str().expect("url");
    assert_eq!(pdf.qr_codes(), [url.to_owned()], "the QR code is the link");
    let (status, shared) = bytes_of(&app, url, None).await;
    assert_eq!(status, 200);
    assert_eq!(shared, file, "the link serves the same bytes");
    // Another account's report is not found.
    let other = app.sign_in_with(Role::Artist, Plan::Pro, &["art_2"]).await;
    let (status, _) = bytes_of(&app, download, Some(&other)).await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// A read's body without what moves with the clock while no entry arrives
/// (`as_of`, and the end of a range that ends now), so that bodies read a
/// second apart compare equal when their figures and watermark are.
fn at_any_instant(body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("as_of");
    }
    if let Some(range) = body.get_mut("range").and_then(Value::as_object_mut) {
        range.remove("to");
    }
    body
}

async fn a_json_report_is_the_bodies_the_api_serves(backend: Backend) {
    let app = spawn_app(backend).await;
    plays(&app, "art_1", "Burna Boy", 30).await;
    plays(&app, "art_2", "Tems", 20).await;
    app.published().await;
    let cookie = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let kpis: Value = app
        .get("/v1/kpis?range=24h&city=Lagos", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    let board: Value = app
        .get("/v1/leaderboards/plays?range=24h&city=Lagos&limit=10", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    let report = made(
        &app,
        &cookie,
        json!({"template": "platform", "format": "json", "params": {"range": "24h", "city": "Lagos"}}),
    )
    .await;
    let (status, file) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&cookie)).await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_slice(&file).expect("a JSON report");
    assert_eq!(document["schema_version"], 1);
    assert_eq!(document["template"], "platform");
    assert_eq!(document["watermark"], kpis["watermark"]);
    assert_eq!(
        at_any_instant(&document["kpis"]),
        at_any_instant(&kpis),
        "the KPI section is the KPI read's body"
    );
    assert_eq!(
        at_any_instant(&document["board"]),
        at_any_instant(&board),
        "the board section is the board read's body"
    );
    for section in [&document["kpis"], &document["board"]] {
        assert!(section["as_of"].is_string(), "each section states its as_of: {section}");
    }
    assert_eq!(document["share_url"], report["share"]["url"]);
    assert!(document["previous_kpis"]["totals"].is_object());
    // The document's shape is in the OpenAPI document.
    let openapi: Value = app.get("/openapi.json", None).await.json().await.expect("json");
    assert!(openapi["components"]["schemas"]["ReportDocument"].is_object());
    app.stop().await;
}

async fn a_long_leaderboard_paginates_with_its_header_on_every_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let events: Vec<Value> = (0..160)
        .flat_map(|artist| {
            (0..=artist % 7).map(move |i| {
                let mut entry = play(&format!("board-{artist}-{i}"));
                entry["artist_id"] = json!(format!("art_{artist:03}"));
                entry["metadata"]["artist_name"] = json!(format!("Artist {artist:03}"));
                entry
            })
        })
        .collect();
    for chunk in events.chunks(1_000) {
        assert_eq!(app.deliver(&json!({"events": chunk})).await.status(), 202);
    }
    app.processed().await;
    let cookie = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let report = made(
        &app,
        &cookie,
        json!({"template": "leaderboard", "format": "pdf", "params": {"metric": "plays", "range": "24h", "limit": 160}}),
    )
    .await;
    let (_, file) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&cookie)).await;
    let pdf = Pdf::new(&file);
    let pages = pdf.pages();
    assert!(pages >= 4, "160 ranks take several pages: {pages}");
    let mut seen = std::collections::BTreeSet::new();
    for page in 1..=pages {
        let text = pdf.page_text(page);
        assert!(text.contains(&format!("Page {page} of {pages}")), "page {page}: {text}");
        for word in text.split("Artist ").skip(1) {
            let number: String = word.chars().take_while(char::is_ascii_digit).collect();
            if number.len() == 3 {
                assert!(seen.insert(number.clone()), "Artist {number} is printed once");
            }
        }
        // Every page that holds ranks starts them under the header.
        if text.contains("Artist 0") || text.contains("Artist 1") {
            assert!(text.contains("Rank"), "page {page} repeats the header: {text}");
        }
    }
    assert_eq!(seen.len(), 160, "no rank is lost between pages");
    app.stop().await;
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn share_links_expire_end_rotate_and_ask_for_their_password(backend: Backend) {
    let clock = std::sync::Arc::new(coliseum_domain::clock::FixedClock::new(time::OffsetDateTime::now_utc()));
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    plays(&app, "art_1", "Burna Boy", 5).await;
    app.processed().await;
    let cookie = app.sign_in_with(Role::Artist, Plan::Pro, &["art_1"]).await;
    let report = made(
        &app,
        &cookie,
        json!({"template": "artist", "format": "json", "params": {"artist_id": "art_1", "range": "24h"}}),
    )
    .await;
    let id = report["id"].as_str().expect("id");
    let share = |body: Value| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let response = app
                .post_as(&format!("/v1/reports/{id}/shares"), &cookie, Some(&body))
                .await;
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.expect("json")
        }
    };

    // The link a report is made with takes terms too: the PDF that prints
    // it must not open for anyone a protected link would refuse.
    let guarded = made(
        &app,
        &cookie,
        json!({"template": "artist", "format": "pdf", "params": {"artist_id": "art_1", "range": "24h"},
               "share": {"password": "printed secret", "expires_in_s": 3_600}}),
    )
    .await;
    assert_eq!(guarded["share"]["password"], true);
    assert_eq!(
        bytes_of(&app, guarded["share"]["url"].as_str().expect("url"), None)
            .await
            .0,
        401
    );
    let (_, file) = bytes_of(&app, guarded["download_url"].as_str().expect("url"), Some(&cookie)).await;
    assert!(Pdf::new(&file).text().contains("asks for a password"));

    // Unknown tokens: 404, as a page for browsers.
    let unknown = format!("{}/s/{}", app.base, "A".repeat(43));
    assert_problem(app.client.get(&unknown).send().await.expect("get"), 404, "not-found").await;
    let page = app
        .client
        .get(&unknown)
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 404);
    assert!(
        page.text()
            .await
            .expect("html")
            .contains("no shared report at this link")
    );

    // Expiry: 410 once the lifetime has passed.
    let short = share(json!({"expires_in_s": 120})).await;
    let short_url = short["url"].as_str().expect("url");
    assert_eq!(bytes_of(&app, short_url, None).await.0, 200);
    clock.set(clock.now() + time::Duration::seconds(121));
    let gone = assert_problem(app.client.get(short_url).send().await.expect("get"), 410, "gone").await;
    assert!(gone["detail"].as_str().expect("detail").contains("expired"), "{gone}");
    assert_eq!(
        app.client
            .get(format!("{short_url}/qr.svg"))
            .send()
            .await
            .expect("qr")
            .status(),
        410
    );

    // Revocation: 410 at once, and says so.
    let revoked = share(json!({})).await;
    let token = revoked["token"].as_str().expect("token");
    assert_eq!(token.len(), 43, "256 random bits");
    let response = app
        .send_as(reqwest::Method::DELETE, &format!("/v1/shares/{token}"), &cookie, None)
        .await;
    assert_eq!(response.status(), 204);
    let gone = assert_problem(
        app.client
            .get(revoked["url"].as_str().expect("url"))
            .send()
            .await
            .expect("get"),
        410,
        "gone",
    )
    .await;
    assert!(gone["detail"].as_str().expect("detail").contains("revoked"));

    // Rotation: a new token; the old one 410 at once.
    let first = share(json!({})).await;
    let old = first["token"].as_str().expect("token");
    let rotated = app.post_as(&format!("/v1/shares/{old}/rotate"), &cookie, None).await;
    assert_eq!(rotated.status(), 201);
    let rotated: Value = rotated.json().await.expect("json");
    assert_ne!(rotated["token"], first["token"]);
    assert_eq!(rotated["expires_at"], first["expires_at"], "the lifetime carries over");
    assert_eq!(bytes_of(&app, first["url"].as_str().expect("url"), None).await.0, 410);
    assert_eq!(bytes_of(&app, rotated["url"].as_str().expect("url"), None).await.0, 200);

    // QR codes of a link in force, as SVG and PNG; the PNG decodes to it.
    let url = rotated["url"].as_str().expect("url");
    let svg = app.client.get(format!("{url}/qr.svg")).send().await.expect("svg");
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.expect("svg").contains("<svg"));
    let (status, png) = bytes_of(&app, rotated["qr_png_url"].as_str().expect("png url"), None).await;
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("qr.png");
    std::fs::write(&path, png).expect("write");
    assert_eq!(
        tool("zbarimg", &["-q", "--raw", path.to_str().expect("utf-8")]).trim(),
        url
    );

    // A password: 401 without it, from a script and from a browser.
    let locked = share(json!({"password": "open sesame!"})).await;
    let locked_url = locked["url"].as_str().expect("url");
    assert_eq!(locked["password"], true);
    assert_problem(
        app.client.get(locked_url).send().await.expect("get"),
        401,
        "unauthorized",
    )
    .await;
    let form = app
        .client
        .get(locked_url)
        .header("accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(form.status(), 401);
    assert!(form.text().await.expect("html").contains("type=\"password\""));
    assert_problem(
        app.client
            .get(format!("{locked_url}?password=wrong%20one"))
            .send()
            .await
            .expect("get"),
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        bytes_of(&app, &format!("{locked_url}?password=open%20sesame!"), None)
            .await
            .0,
        200
    );
    // The form: on to the report with a key, which opens it; a wrong key does not.
    let posted = no_redirects()
        .post(locked_url)
        .form(&[("password", "open sesame!")])
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 303);
    let location = posted.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.contains("?key="), "{location}");
    assert!(!location.contains("sesame"), "the password never travels in a URL");
    assert_eq!(bytes_of(&app, &format!("{}{location}", app.base), None).await.0, 200);
    assert_eq!(
        bytes_of(&app, &format!("{locked_url}?key=AAAAAAAAAAAAAAAAAAAAAA"), None)
            .await
            .0,
        401
    );
    // The embed view keeps the password, and may be framed by any site.
    let embed = app
        .client
        .get(format!("{locked_url}/embed"))
        .send()
        .await
        .expect("embed");
    assert_eq!(embed.status(), 401);
    assert!(embed.headers().get("x-frame-options").is_none());
    assert!(
        embed.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("frame-ancestors *")
    );
    assert!(embed.text().await.expect("html").contains("type=\"password\""));
    let opened = app
        .client
        .post(format!("{locked_url}/embed"))
        .form(&[("password", "open sesame!")])
        .send()
        .await
        .expect("embed");
    assert_eq!(opened.status(), 200);
    assert!(opened.text().await.expect("html").contains("?key="));
    // Guessing is throttled per link and address.
    let mut throttled = false;
    for _ in 0..12 {
        let status = app
            .client
            .get(format!("{locked_url}?password=guess-guess"))
            .send()
            .await
            .expect("get")
            .status();
        throttled |= status == 429;
    }
    assert!(throttled, "password guesses are limited");

    // The view log: the owner's only, newest first, with the browser's family.
    app.client
        .get(url)
        .header("user-agent", "Mozilla/5.0 (X11) Chrome/156.0 Safari/537.36")
        .send()
        .await
        .expect("view");
    let views: Value = app
        .get(
            &format!("/v1/shares/{}/views", rotated["token"].as_str().expect("token")),
            Some(&cookie),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(views["views"][0]["agent"], "Chrome", "{views}");
    assert!(views["total"].as_i64().expect("total") >= 2);
    assert_eq!(views["views"][0]["address_hash"].as_str().expect("hash").len(), 16);
    let stranger = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    assert_eq!(
        app.get(
            &format!("/v1/shares/{}/views", rotated["token"].as_str().expect("token")),
            Some(&stranger)
        )
        .await
        .status(),
        404
    );
    let listed: Value = app.get("/v1/shares", Some(&cookie)).await.json().await.expect("json");
    let states: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    for state in ["expired", "revoked", "rotated", "active"] {
        assert!(states.contains(&state), "{state} in {states:?}");
    }
    app.stop().await;
}

async fn plans_decide_who_reports_the_watermark_the_quota_and_link_lifetimes(backend: Backend) {
    let app = spawn_app(backend).await;
    plays(&app, "art_1", "Burna Boy", 5).await;
    app.processed().await;
    let platform = json!({"template": "platform", "format": "pdf", "params": {"range": "24h"}});

    for plan in [Plan::Free] {
        let cookie = app.sign_in_with(Role::Fan, plan, &[]).await;
        let problem = assert_problem(
            make_report(&app, &cookie, platform.clone()).await,
            403,
            "upgrade-required",
        )
        .await;
        assert_eq!(problem["cheapest_plan"], "basic");
    }
    assert_problem(
        app.client
            .post(format!("{}/v1/reports", app.base))
            .json(&platform)
            .send()
            .await
            .expect("post"),
        401,
        "unauthorized",
    )
    .await;

    // Basic: watermarked on every page, in the text layer too.
    let basic = app.sign_in_with(Role::Fan, Plan::Basic, &[]).await;
    let report = made(&app, &basic, platform.clone()).await;
    let (_, file) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&basic)).await;
    let pdf = Pdf::new(&file);
    for page in 1..=pdf.pages() {
        assert!(
            pdf.page_text(page).contains("Coliseum Basic"),
            "page {page} is watermarked"
        );
    }
    // A Basic JSON report says so too.
    let json_report = made(
        &app,
        &basic,
        json!({"template": "platform", "format": "json", "params": {"range": "24h"}}),
    )
    .await;
    let (_, document) = bytes_of(&app, json_report["download_url"].as_str().expect("url"), Some(&basic)).await;
    let document: Value = serde_json::from_slice(&document).expect("json");
    assert_eq!(document["watermark_text"], "Coliseum Basic");
    // Basic links live at most 7 days.
    let id = report["id"].as_str().expect("id");
    let too_long = app
        .post_as(
            &format!("/v1/reports/{id}/shares"),
            &basic,
            Some(&json!({"expires_in_s": 8 * 86_400})),
        )
        .await;
    assert_eq!(
        assert_problem(too_long, 403, "upgrade-required").await["cheapest_plan"],
        "pro"
    );
    // Ten a month: the eleventh names when more can be made.
    for _ in 2..10 {
        made(
            &app,
            &basic,
            json!({"template": "platform", "format": "json", "params": {"range": "24h"}}),
        )
        .await;
    }
    let over = make_report(&app, &basic, platform.clone()).await;
    assert!(over.headers().contains_key("retry-after"));
    let problem = assert_problem(over, 429, "quota-exceeded").await;
    assert_eq!(problem["limit"], 10);
    assert!(
        problem["resets_at"].as_str().expect("reset").ends_with("-01T00:00:00Z"),
        "{problem}"
    );
    let list: Value = app.get("/v1/reports", Some(&basic)).await.json().await.expect("json");
    assert_eq!(list["quota"]["used"], 10);
    assert_eq!(list["quota"]["limit"], 10);
    assert_eq!(list["items"].as_array().expect("items").len(), 10);

    // Pro: clean, 30-day links at most.
    let pro = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    let report = made(&app, &pro, platform.clone()).await;
    let (_, file) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&pro)).await;
    assert!(!Pdf::new(&file).text().contains("Coliseum Basic"));
    let id = report["id"].as_str().expect("id");
    let month = app
        .post_as(
            &format!("/v1/reports/{id}/shares"),
            &pro,
            Some(&json!({"expires_in_s": 30 * 86_400})),
        )
        .await;
    assert_eq!(month.status(), 201);
    let too_long = app
        .post_as(
            &format!("/v1/reports/{id}/shares"),
            &pro,
            Some(&json!({"expires_in_s": 31 * 86_400})),
        )
        .await;
    assert_eq!(
        assert_problem(too_long, 403, "upgrade-required").await["cheapest_plan"],
        "enterprise"
    );

    // Enterprise: links that never expire.
    let enterprise = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let report = made(
        &app,
        &enterprise,
        json!({"template": "platform", "format": "json", "params": {"range": "24h"}}),
    )
    .await;
    let id = report["id"].as_str().expect("id");
    let forever: Value = app
        .post_as(&format!("/v1/reports/{id}/shares"), &enterprise, Some(&json!({})))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(forever["expires_at"], Value::Null);

    // Bad input: clear problems, pointed into the body.
    let bad = make_report(
        &app,
        &enterprise,
        json!({"template": "artist", "format": "pdf", "params": {"range": "24h"}}),
    )
    .await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/params/artist_id"
    );
    let bad = make_report(
        &app,
        &enterprise,
        json!({"template": "platform", "format": "docx", "params": {}}),
    )
    .await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/format"
    );
    let bad = make_report(
        &app,
        &enterprise,
        json!({"template": "platform", "format": "pdf", "params": {"range": "fortnight"}}),
    )
    .await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/params/range"
    );
    app.stop().await;
}

/// A program of the local services (`scripts/services`: moto, aiosmtpd).
pub fn service_program(name: &str) -> PathBuf {
    // scripts/test exports where scripts/services installed them; a plain
    // `cargo test` finds them where that script puts them.
    let installed = || {
        let tools = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools");
        std::fs::read_dir(tools)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|bin| bin.join("moto_server").exists() && bin.join("aiosmtpd").exists())
            .map(|bin| bin.to_string_lossy().into_owned())
    };
    let dir = std::env::var("COLISEUM_TEST_SERVICES")
        .ok()
        .or_else(installed)
        .unwrap_or_else(|| {
            panic!(
                "COLISEUM_TEST_SERVICES is not set: run the tests with scripts/test, or export \
             COLISEUM_TEST_SERVICES=\"$(scripts/services)\" first (it installs moto and aiosmtpd)"
            )
        });
    let program = PathBuf::from(dir).join(name);
    assert!(
        program.exists(),
        "{} is missing: run scripts/services",
        program.display()
    );
    program
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A child process killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (bounded) until something listens on `port`.
pub async fn listening(port: u16) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("nothing listens on port {port}");
}

/// Reports stored in an S3-compatible store (moto, started here): the file
/// is the object in the bucket, the link serves it, and a store that goes
/// away is a 503 to retry, never a wrong answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_round_trip_through_an_s3_compatible_store() {
    let port = free_port();
    let moto = Child(
        Command::new(service_program("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server starts"),
    );
    listening(port).await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let created = reqwest::Client::new()
        .put(format!("{endpoint}/coliseum-reports"))
        .send()
        .await
        .expect("create the bucket");
    assert!(created.status().is_success(), "{}", created.status());

    let app = crate::support::spawn_app_with(Backend::Sqlite, |settings| {
        settings.report_storage = Some("s3://coliseum-reports/tenant-a".to_owned());
        settings.report_storage_options = [
            ("aws_endpoint", endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_region", "us-east-1"),
            ("aws_access_key_id", "test"),
            ("aws_secret_access_key", "test"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    })
    .await;
    plays(&app, "art_1", "Burna Boy", 12).await;
    app.processed().await;
    let cookie = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let report = made(
        &app,
        &cookie,
        json!({"template": "platform", "format": "pdf", "params": {"range": "24h"}}),
    )
    .await;
    let id = report["id"].as_str().expect("id");
    let (status, downloaded) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&cookie)).await;
    assert_eq!(status, 200);
    // The bucket holds it under the prefix (moto's own view of its data).
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .expect("moto's data")
        .json()
        .await
        .expect("json");
    let key = format!("tenant-a/reports/{id}.pdf");
    let keys = data["s3"]["FakeKey"].as_array().expect("keys");
    assert!(
        keys.iter().any(|k| k["name"] == key.as_str()),
        "{key} is in the bucket: {keys:?}"
    );
    let (status, shared) = bytes_of(&app, report["share"]["url"].as_str().expect("url"), None).await;
    assert_eq!((status, shared), (200, downloaded));

    drop(moto);
    let response = app
        .client
        .get(report["download_url"].as_str().expect("url"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, 503, "unavailable").await;
    app.stop().await;
}

/// The dashboard's report forms, as a browser sends them (no JavaScript):
/// generate from a page, see the report and its link's QR code, make a
/// link with a password, rotate and revoke; a form without the session's
/// token changes nothing.
async fn the_dashboard_generates_lists_and_shares_reports_with_its_forms(backend: Backend) {
    let app = spawn_app(backend).await;
    plays(&app, "art_1", "Burna Boy", 7).await;
    app.processed().await;
    let cookie = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    let token = cookie.split_once('=').expect("name=value").1;
    let csrf = coliseum_http::credentials::csrf_token(token);
    let page = |path: String| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let response = app
                .client
                .get(format!("{}{path}", app.base))
                .header("cookie", cookie)
                .send()
                .await
                .expect("page");
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.expect("html")
        }
    };
    let form = |path: String, fields: Vec<(&'static str, String)>| {
        let cookie = cookie.clone();
        let base = app.base.clone();
        async move {
            no_redirects()
                .post(format!("{base}{path}"))
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .expect("form")
        }
    };

    let analytics = page("/app/analytics?range=24h&city=Lagos".to_owned()).await;
    assert!(analytics.contains("Generate report"), "the button is on the page");
    assert!(analytics.contains(r#"name="template" value="platform""#));
    assert!(
        analytics.contains(r#"name="city" value="Lagos""#),
        "the page's filters go along"
    );
    let generate = vec![
        ("template", "platform".to_owned()),
        ("format", "pdf".to_owned()),
        ("range", "24h".to_owned()),
        ("city", "Lagos".to_owned()),
    ];
    let refused = form("/app/reports".to_owned(), generate.clone()).await;
    assert_eq!(refused.status(), 403, "no form token, no report");
    let mut with_token = generate.clone();
    with_token.push(("csrf_token", csrf.clone()));
    let made = form("/app/reports".to_owned(), with_token).await;
    assert_eq!(made.status(), 303);
    let location = made.headers()["location"].to_str().expect("location").to_owned();
    assert!(location.starts_with("/app/reports/rep_"), "{location}");
    let id = location.trim_start_matches("/app/reports/").to_owned();

    let list = page("/app/reports".to_owned()).await;
    assert!(list.contains(&id) && list.contains("Platform report"), "listed");
    let detail = page(location.clone()).await;
    assert!(detail.contains("/qr.svg"), "the link's QR code is shown");
    assert!(detail.contains("data-copy-text="), "with a copy button");
    assert!(detail.contains("never expires"), "Enterprise links may never expire");

    let link = form(
        format!("/app/reports/{id}/shares"),
        vec![
            ("csrf_token", csrf.clone()),
            ("lifetime", "7".to_owned()),
            ("password", "a fine password".to_owned()),
        ],
    )
    .await;
    assert_eq!(link.status(), 303);
    let shares: Value = app.get("/v1/shares", Some(&cookie)).await.json().await.expect("json");
    let items = shares["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "the report's first link and the new one");
    let protected = items.iter().find(|s| s["password"] == true).expect("the new link");
    let token = protected["token"].as_str().expect("token").to_owned();
    assert_eq!(
        bytes_of(&app, protected["url"].as_str().expect("url"), None).await.0,
        401
    );

    let rotated = form(
        format!("/app/shares/{token}/rotate"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(rotated.status(), 303);
    assert_eq!(
        bytes_of(&app, protected["url"].as_str().expect("url"), None).await.0,
        410
    );
    let shares: Value = app.get("/v1/shares", Some(&cookie)).await.json().await.expect("json");
    let replacement = shares["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|s| s["password"] == true && s["state"] == "active")
        .expect("the rotated link")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let not_mine = form(
        format!("/app/shares/{replacement}/revoke"),
        vec![("csrf_token", "x".to_owned())],
    )
    .await;
    assert_eq!(not_mine.status(), 403, "a wrong token revokes nothing");
    let revoked = form(
        format!("/app/shares/{replacement}/revoke"),
        vec![("csrf_token", csrf.clone())],
    )
    .await;
    assert_eq!(revoked.status(), 303);
    let detail = page(location).await;
    assert!(
        detail.contains("revoked") && detail.contains("rotated"),
        "ended links say why"
    );
    app.stop().await;
}

async fn enterprise_reports_carry_the_accounts_own_brand(backend: Backend) {
    use base64::Engine;
    let app = spawn_app(backend).await;
    plays(&app, "art_1", "Burna Boy", 3).await;
    app.processed().await;
    let enterprise = app.sign_in_with(Role::Fan, Plan::Enterprise, &[]).await;
    // Any PNG will do for a logo: the first report's QR code.
    let first = made(
        &app,
        &enterprise,
        json!({"template": "platform", "format": "json", "params": {"range": "24h"}}),
    )
    .await;
    let (_, logo) = bytes_of(&app, first["share"]["qr_png_url"].as_str().expect("png"), None).await;
    let logo = base64::engine::general_purpose::STANDARD.encode(logo);

    let put = |cookie: String, body: Value| {
        let app = &app;
        async move {
            app.send_as(reqwest::Method::PUT, "/v1/reports/branding", &cookie, Some(&body))
                .await
        }
    };
    let pro = app.sign_in_with(Role::Fan, Plan::Pro, &[]).await;
    let refused = put(pro, json!({"name": "Mine", "accent": "#118ab2"})).await;
    assert_eq!(
        assert_problem(refused, 403, "upgrade-required").await["cheapest_plan"],
        "enterprise"
    );
    let bad = put(enterprise.clone(), json!({"name": "Label", "accent": "orange"})).await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/accent"
    );
    let bad = put(
        enterprise.clone(),
        json!({"name": "Label", "accent": "#118ab2", "logo_png_base64": "bm90IGEgcG5n"}),
    )
    .await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/logo_png_base64"
    );
    let set = put(
        enterprise.clone(),
        json!({"name": "Afrobeats Weekly", "accent": "#118AB2", "logo_png_base64": logo}),
    )
    .await;
    assert_eq!(set.status(), 200);
    let stored: Value = app
        .get("/v1/reports/branding", Some(&enterprise))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(stored["accent"], "#118ab2");

    let report = made(
        &app,
        &enterprise,
        json!({"template": "platform", "format": "pdf", "params": {"range": "24h"}}),
    )
    .await;
    let (_, file) = bytes_of(&app, report["download_url"].as_str().expect("url"), Some(&enterprise)).await;
    let pdf = Pdf::new(&file);
    let text = pdf.text();
    assert!(
        text.contains("Afrobeats Weekly · as of"),
        "the brand signs every footer: {text}"
    );
    assert!(!text.contains("Coliseum ·"), "in place of Coliseum's: {text}");
    let images = tool("pdfimages", &["-list", pdf.path()]);
    assert!(images.lines().count() > 2, "the logo is drawn: {images}");
    assert_eq!(
        app.send_as(reqwest::Method::DELETE, "/v1/reports/branding", &enterprise, None)
            .await
            .status(),
        204
    );
    app.stop().await;
}

/// The messages a Maildir holds, oldest first.
pub fn mails(maildir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .map(|entries| entries.map(|e| e.expect("entry").path()).collect())
        .unwrap_or_default();
    files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).expect("modified"));
    files
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("a message"))
        .collect()
}

/// The base64 body of the message's attachment, decoded.
fn attachment(message: &str) -> Vec<u8> {
    use base64::Engine;
    let disposition = message.find("Content-Disposition: attachment").expect("an attachment");
    let part = &message[disposition..];
    let start = part
        .find("\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| part.find("\n\n").map(|i| i + 2))
        .expect("a body");
    let encoded: String = part[start..]
        .lines()
        .take_while(|line| !line.starts_with("--"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .expect("base64")
}

async fn deliveries_of(app: &TestApp, cookie: &str, id: i64) -> Vec<Value> {
    let body: Value = app
        .get(&format!("/v1/report-schedules/{id}/deliveries"), Some(cookie))
        .await
        .json()
        .await
        .expect("json");
    body["items"].as_array().expect("items").clone()
}

/// Waits (bounded) until the schedule has `count` deliveries.
async fn delivered(app: &TestApp, cookie: &str, id: i64, count: usize) -> Vec<Value> {
    for _ in 0..300 {
        let items = deliveries_of(app, cookie, id).await;
        if items.len() >= count {
            return items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "schedule {id} has not {count} deliveries: {:?}",
        deliveries_of(app, cookie, id).await
    );
}

async fn scheduled_reports_are_mailed_retried_and_skipped_when_nothing_changed(backend: Backend) {
    let port = free_port();
    let start = time::OffsetDateTime::now_utc();
    let clock = std::sync::Arc::new(coliseum_domain::clock::FixedClock::new(start));
    let app = crate::support::spawn_app_with_clock_and(backend, clock.clone(), |settings| {
        settings.smtp = Some(coliseum_http::settings::SmtpSettings {
            url: coliseum_http::settings::Secret::new(format!("smtp://127.0.0.1:{port}")),
            from: "Coliseum <reports@coliseum.test>".to_owned(),
        });
    })
    .await;
    plays(&app, "art_1", "Burna Boy", 9).await;
    app.processed().await;
    // The clock moves by months: a session that outlives it.
    let user = app.make_user(Role::Fan, Plan::Enterprise, &[], &[]).await;
    let cookie = app.session_for(&user, time::Duration::days(400)).await;
    let create = |body: Value| {
        let (app, cookie) = (&app, cookie.clone());
        async move {
            let response = app.post_as("/v1/report-schedules", &cookie, Some(&body)).await;
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
            response.json::<Value>().await.expect("json")
        }
    };
    let bad = app
        .post_as(
            "/v1/report-schedules",
            &cookie,
            Some(
                &json!({"template": "platform", "format": "pdf", "params": {"range": "24h"}, "every": "week",
                "at": "25:00", "recipients": ["ops@example.com"], "deliver": "attachment"}),
            ),
        )
        .await;
    assert_eq!(
        assert_problem(bad, 422, "validation-failed").await["errors"][0]["pointer"],
        "/at"
    );

    let weekly = create(json!({
        "template": "platform", "format": "pdf", "params": {"range": "7d"},
        "every": "week", "weekday": "monday", "at": "09:00",
        "recipients": ["ops@example.com", "cfo@example.com"], "deliver": "attachment"
    }))
    .await;
    let id = weekly["id"].as_i64().expect("id");
    let due = crate::support::parse_rfc3339(weekly["next_at"].as_str().expect("next"));
    assert_eq!(due.weekday(), time::Weekday::Monday);
    assert_eq!((due.hour(), due.minute()), (9, 0));

    // Due, with no mail server: the attempt fails and waits to retry.
    clock.set(due + time::Duration::seconds(1));
    let first = delivered(&app, &cookie, id, 1).await;
    assert_eq!(first[0]["status"], "retrying", "{first:?}");
    assert!(
        first[0]["detail"].as_str().expect("why").contains("mail server"),
        "{first:?}"
    );
    let report_id = first[0]["report_id"].as_str().expect("the report was made").to_owned();

    // The server comes up; after the backoff the same report is sent.
    let maildir = tempfile::tempdir().expect("dir");
    let mailbox = maildir.path().join("mail");
    let _smtp = Child(
        Command::new(service_program("aiosmtpd"))
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(&mailbox)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts"),
    );
    listening(port).await;
    clock.set(due + time::Duration::seconds(62));
    let both = delivered(&app, &cookie, id, 2).await;
    assert_eq!(both[0]["status"], "sent", "{both:?}");
    assert_eq!(both[0]["attempt"], 2);
    assert_eq!(
        both[0]["report_id"],
        report_id.as_str(),
        "the retry sends the first attempt's report"
    );
    let messages = mails(&mailbox);
    assert_eq!(messages.len(), 1, "one message for both recipients");
    let message = &messages[0];
    assert!(
        message.contains("Subject: Coliseum: your weekly platform report"),
        "{message}"
    );
    // Both were sent it (the server's envelope record), neither sees the other.
    let header = |name: &str| {
        message
            .lines()
            .find(|line| line.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    let envelope = header("X-RcptTo:");
    assert!(
        envelope.contains("ops@example.com") && envelope.contains("cfo@example.com"),
        "{envelope}"
    );
    assert!(!header("To:").contains("example.com"), "recipients are blind copies");
    assert!(header("Bcc:").is_empty(), "and the copy list is not sent");
    let (_, file) = bytes_of(
        &app,
        &format!("{}/v1/reports/{report_id}/download", app.base),
        Some(&cookie),
    )
    .await;
    assert_eq!(attachment(message), file, "the attachment is the report");
    let listed: Value = app
        .get("/v1/report-schedules", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    let next = crate::support::parse_rfc3339(listed["items"][0]["next_at"].as_str().expect("next"));
    assert_eq!(next, due + time::Duration::days(7), "on to next Monday");
    assert_eq!(
        app.send_as(
            reqwest::Method::DELETE,
            &format!("/v1/report-schedules/{id}"),
            &cookie,
            None
        )
        .await
        .status(),
        204
    );

    // Only when the figures changed: the first goes out, an unchanged week does not.
    let monthly = create(json!({
        "template": "platform", "format": "json", "params": {"range": "all"},
        "every": "month", "day": 3, "at": "06:30",
        "recipients": ["ops@example.com"], "deliver": "link", "only_if_changed": true
    }))
    .await;
    let monthly_id = monthly["id"].as_i64().expect("id");
    let first_due = crate::support::parse_rfc3339(monthly["next_at"].as_str().expect("next"));
    clock.set(first_due + time::Duration::seconds(1));
    assert_eq!(delivered(&app, &cookie, monthly_id, 1).await[0]["status"], "sent");
    let link_mail = mails(&mailbox).pop().expect("a second message");
    assert!(link_mail.contains("/s/"), "a link, no attachment: {link_mail}");
    assert!(!link_mail.contains("Content-Disposition: attachment"));
    let listed: Value = app
        .get("/v1/report-schedules", Some(&cookie))
        .await
        .json()
        .await
        .expect("json");
    let second_due = crate::support::parse_rfc3339(listed["items"][0]["next_at"].as_str().expect("next"));
    clock.set(second_due + time::Duration::seconds(1));
    let skipped = delivered(&app, &cookie, monthly_id, 2).await;
    assert_eq!(skipped[0]["status"], "skipped", "{skipped:?}");
    assert_eq!(mails(&mailbox).len(), 2, "nothing sent for unchanged figures");
    app.stop().await;
}
