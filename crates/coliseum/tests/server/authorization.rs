//! The authorization table: every endpoint × every role × every plan, and
//! no credentials, an ended session, a revoked key and foreign tenants,
//! each with the status it must get. The expectations are written here
//! from PLANS.md and API.md, independently of the server's rule table; the
//! first assertion ties the two together, so that an endpoint added with a
//! rule but without expectations (or the reverse) fails this test, and one
//! added without a rule is refused by the server's default deny.

use std::collections::BTreeSet;

use coliseum_domain::plans::{Plan, Role};
use coliseum_http::routes::access::RULES;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::on_both_backends;
use crate::support::{Backend, TestApp, past_the_boundary, play, spawn_app_before_a_boundary};

on_both_backends!(every_endpoint_answers_every_caller_as_the_table_says,);

/// Who calls.
#[derive(Debug, Clone)]
struct Who {
    label: String,
    /// Role and plan of a valid credential.
    user: Option<(Role, Plan)>,
    /// Linked to `art_1` / host of `live_1` (the tenant data of the table).
    artist_of_art_1: bool,
    host_of_live_1: bool,
    credential: Credential,
}

#[derive(Debug, Clone)]
enum Credential {
    None,
    /// A session cookie whose session has ended.
    Ended(String),
    Session {
        cookie: String,
        token: String,
    },
    Key(String),
    Revoked(String),
}

impl Who {
    fn admin(&self) -> bool {
        matches!(self.user, Some((Role::Admin, _)))
    }
    fn plan_at_least(&self, plan: Plan) -> bool {
        self.admin() || self.user.is_some_and(|(_, p)| p >= plan)
    }
    fn signed_in(&self) -> bool {
        self.user.is_some()
    }
    fn revoked(&self) -> bool {
        matches!(self.credential, Credential::Revoked(_))
    }
}

/// One endpoint of the table: its rule's (method, route), a concrete
/// request, and the status each caller must get.
struct Case {
    method: &'static str,
    route: &'static str,
    path: String,
    body: Option<Value>,
    expect: fn(&Who) -> u16,
}

fn case(
    method: &'static str,
    route: &'static str,
    path: impl Into<String>,
    body: Option<Value>,
    expect: fn(&Who) -> u16,
) -> Case {
    Case {
        method,
        route,
        path: path.into(),
        body,
        expect,
    }
}

/// Signed-in users get `ok`, others 401.
fn signed_in(who: &Who, ok: u16) -> u16 {
    if who.signed_in() { ok } else { 401 }
}

fn admin_only(who: &Who, ok: u16) -> u16 {
    match () {
        () if !who.signed_in() => 401,
        () if who.admin() => ok,
        () => 403,
    }
}

fn whole_hour(at: OffsetDateTime) -> String {
    let at = at
        .replace_minute(0)
        .and_then(|a| a.replace_second(0))
        .and_then(|a| a.replace_nanosecond(0))
        .expect("hour");
    at.format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

/// A well-formed share token that no link has.
const UNKNOWN_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn cases() -> Vec<Case> {
    let now = OffsetDateTime::now_utc();
    let custom = format!(
        "/v1/leaderboards/plays?range=custom&from={}&to={}",
        whole_hour(now - time::Duration::days(30)),
        whole_hour(now)
    );
    vec![
        case("GET", "/healthz", "/healthz", None, |_| 200),
        case("GET", "/readyz", "/readyz", None, |_| 200),
        case("GET", "/metrics", "/metrics", None, |w| admin_only(w, 200)),
        case("GET", "/openapi.json", "/openapi.json", None, |_| 200),
        // `/docs` redirects to `/docs/`, which the client follows.
        case("GET", "/docs", "/docs", None, |_| 200),
        case("GET", "/docs/", "/docs/", None, |_| 200),
        case("GET", "/docs/{*rest}", "/docs/swagger-ui.css", None, |_| 200),
        case(
            "POST",
            "/v1/passport/events",
            "/v1/passport/events",
            Some(play("az-1")),
            |_| 401,
        ),
        case(
            "POST",
            "/v1/stripe/webhook",
            "/v1/stripe/webhook",
            Some(json!({"id": "evt"})),
            |_| 401,
        ),
        case("POST", "/v1/auth/signup", "/v1/auth/signup", None, |_| 201),
        case("POST", "/v1/auth/login", "/v1/auth/login", None, |_| 401),
        case("GET", "/v1/auth/csrf", "/v1/auth/csrf", None, |w| match w.credential {
            Credential::Session { .. } => 200,
            _ => 401,
        }),
        case("GET", "/v1/me", "/v1/me", None, |w| signed_in(w, 200)),
        case(
            "POST",
            "/v1/api-keys",
            "/v1/api-keys",
            Some(json!({"name": "table"})),
            |w| {
                if !w.signed_in() {
                    401
                } else if w.plan_at_least(Plan::Pro) {
                    201
                } else {
                    403
                }
            },
        ),
        case("GET", "/v1/api-keys", "/v1/api-keys", None, |w| signed_in(w, 200)),
        case("DELETE", "/v1/api-keys/{id}", "/v1/api-keys/999999", None, |w| {
            signed_in(w, 404)
        }),
        case(
            "POST",
            "/v1/billing/checkout",
            "/v1/billing/checkout",
            Some(json!({"plan": "pro"})),
            |w| signed_in(w, 200),
        ),
        case("POST", "/v1/billing/portal", "/v1/billing/portal", None, |w| {
            signed_in(w, 409)
        }),
        // Reports: Basic and up; what does not exist, or is another
        // account's, is not found.
        case(
            "POST",
            "/v1/reports",
            "/v1/reports",
            Some(json!({"template": "platform", "format": "json", "params": {"range": "24h"}})),
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Basic) => 201,
                () => 403,
            },
        ),
        case("GET", "/v1/reports", "/v1/reports", None, |w| signed_in(w, 200)),
        case("GET", "/v1/reports/{id}", "/v1/reports/rep_none", None, |w| {
            signed_in(w, 404)
        }),
        case(
            "GET",
            "/v1/reports/{id}/download",
            "/v1/reports/rep_none/download",
            None,
            |w| signed_in(w, 404),
        ),
        case(
            "POST",
            "/v1/reports/{id}/shares",
            "/v1/reports/rep_none/shares",
            Some(json!({})),
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Basic) => 404,
                () => 403,
            },
        ),
        case(
            "GET",
            "/v1/reports/branding",
            "/v1/reports/branding",
            None,
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Enterprise) => 404,
                () => 403,
            },
        ),
        case(
            "PUT",
            "/v1/reports/branding",
            "/v1/reports/branding",
            Some(json!({"name": "Label", "accent": "#118ab2"})),
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Enterprise) => 200,
                () => 403,
            },
        ),
        case(
            "DELETE",
            "/v1/reports/branding",
            "/v1/reports/branding",
            None,
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Enterprise) => 204,
                () => 403,
            },
        ),
        // Schedules: Basic and up; this server mails nothing (no SMTP), so
        // a schedule it could never deliver is refused (503).
        case(
            "POST",
            "/v1/report-schedules",
            "/v1/report-schedules",
            Some(
                json!({"template": "platform", "format": "pdf", "params": {"range": "7d"}, "every": "week",
                "at": "09:00", "recipients": ["ops@example.com"], "deliver": "link"}),
            ),
            |w| match () {
                () if !w.signed_in() => 401,
                () if w.plan_at_least(Plan::Basic) => 503,
                () => 403,
            },
        ),
        case("GET", "/v1/report-schedules", "/v1/report-schedules", None, |w| {
            signed_in(w, 200)
        }),
        case(
            "DELETE",
            "/v1/report-schedules/{id}",
            "/v1/report-schedules/999999",
            None,
            |w| signed_in(w, 404),
        ),
        case(
            "GET",
            "/v1/report-schedules/{id}/deliveries",
            "/v1/report-schedules/999999/deliveries",
            None,
            |w| signed_in(w, 404),
        ),
        case("GET", "/v1/shares", "/v1/shares", None, |w| signed_in(w, 200)),
        case(
            "DELETE",
            "/v1/shares/{token}",
            format!("/v1/shares/{UNKNOWN_TOKEN}"),
            None,
            |w| signed_in(w, 404),
        ),
        case(
            "POST",
            "/v1/shares/{token}/rotate",
            format!("/v1/shares/{UNKNOWN_TOKEN}/rotate"),
            None,
            |w| signed_in(w, 404),
        ),
        case(
            "GET",
            "/v1/shares/{token}/views",
            format!("/v1/shares/{UNKNOWN_TOKEN}/views"),
            None,
            |w| signed_in(w, 404),
        ),
        // Shared reports: anyone with a link; this one leads nowhere.
        case("GET", "/s/{token}", format!("/s/{UNKNOWN_TOKEN}"), None, |_| 404),
        case("POST", "/s/{token}", format!("/s/{UNKNOWN_TOKEN}"), None, |_| 404),
        case(
            "GET",
            "/s/{token}/embed",
            format!("/s/{UNKNOWN_TOKEN}/embed"),
            None,
            |_| 404,
        ),
        case(
            "POST",
            "/s/{token}/embed",
            format!("/s/{UNKNOWN_TOKEN}/embed"),
            None,
            |_| 404,
        ),
        case(
            "GET",
            "/s/{token}/qr.svg",
            format!("/s/{UNKNOWN_TOKEN}/qr.svg"),
            None,
            |_| 404,
        ),
        case(
            "GET",
            "/s/{token}/qr.png",
            format!("/s/{UNKNOWN_TOKEN}/qr.png"),
            None,
            |_| 404,
        ),
        case("GET", "/v1/kpis", "/v1/kpis", None, |_| 200),
        case("GET", "/v1/kpis", "/v1/kpis?city=lagos", None, |w| {
            if w.signed_in() { 200 } else { 403 }
        }),
        case("GET", "/v1/kpis", "/v1/kpis?scope=artist:art_1", None, |w| {
            if w.admin() || w.artist_of_art_1 { 200 } else { 403 }
        }),
        case("GET", "/v1/kpis", "/v1/kpis?scope=live_event:live_1", None, |w| {
            if w.admin() || w.host_of_live_1 { 200 } else { 403 }
        }),
        case(
            "GET",
            "/v1/leaderboards/{metric}",
            "/v1/leaderboards/plays",
            None,
            |_| 200,
        ),
        case(
            "GET",
            "/v1/leaderboards/{metric}",
            "/v1/leaderboards/revenue",
            None,
            |w| {
                if w.plan_at_least(Plan::Basic) { 200 } else { 403 }
            },
        ),
        case(
            "GET",
            "/v1/leaderboards/{metric}",
            "/v1/leaderboards/plays?city=lagos",
            None,
            |w| {
                if w.signed_in() { 200 } else { 403 }
            },
        ),
        case("GET", "/v1/leaderboards/{metric}", custom, None, |w| {
            if w.plan_at_least(Plan::Basic) { 200 } else { 403 }
        }),
        case(
            "GET",
            "/v1/leaderboards/{metric}/around/{artist_id}",
            "/v1/leaderboards/plays/around/art_1",
            None,
            |_| 200,
        ),
        case(
            "GET",
            "/v1/dna/leaderboards/{domain}",
            "/v1/dna/leaderboards/overall",
            None,
            |_| 200,
        ),
        case(
            "GET",
            "/v1/dna/leaderboards/{domain}",
            "/v1/dna/leaderboards/a",
            None,
            |_| 200,
        ),
        case(
            "GET",
            "/v1/dna/leaderboards/{domain}",
            "/v1/dna/leaderboards/t",
            None,
            |w| {
                if w.plan_at_least(Plan::Pro) { 200 } else { 403 }
            },
        ),
        case(
            "GET",
            "/v1/dna/artists/{artist_id}",
            "/v1/dna/artists/art_1",
            None,
            |w| {
                if w.plan_at_least(Plan::Pro) || w.artist_of_art_1 {
                    200
                } else {
                    403
                }
            },
        ),
        case("GET", "/v1/dna/movers", "/v1/dna/movers?domain=c", None, |w| {
            if w.plan_at_least(Plan::Pro) { 200 } else { 403 }
        }),
        // Live push is Pro and up. A plain GET is no WebSocket handshake
        // (400), and a browser session's must come from the deployment's
        // own pages: this one sends no Origin (403).
        case("GET", "/v1/live", "/v1/live", None, |w| match () {
            () if !w.plan_at_least(Plan::Pro) => 403,
            () if matches!(w.credential, Credential::Session { .. }) => 403,
            () => 400,
        }),
        case("GET", "/v1/live/sse", "/v1/live/sse?kind=kpis&range=24h", None, |w| {
            if w.plan_at_least(Plan::Pro) { 200 } else { 403 }
        }),
        case("GET", "/v1/admin/pipeline", "/v1/admin/pipeline", None, |w| {
            admin_only(w, 200)
        }),
        case(
            "GET",
            "/v1/admin/pipeline/series",
            "/v1/admin/pipeline/series?metric=queue_depth",
            None,
            |w| admin_only(w, 200),
        ),
        case(
            "POST",
            "/v1/admin/pipeline/pause",
            "/v1/admin/pipeline/pause",
            None,
            |w| admin_only(w, 200),
        ),
        case(
            "POST",
            "/v1/admin/pipeline/resume",
            "/v1/admin/pipeline/resume",
            None,
            |w| admin_only(w, 200),
        ),
        case("GET", "/v1/admin/dead-letters", "/v1/admin/dead-letters", None, |w| {
            admin_only(w, 200)
        }),
        case(
            "POST",
            "/v1/admin/dead-letters/replay",
            "/v1/admin/dead-letters/replay",
            None,
            |w| admin_only(w, 202),
        ),
        case(
            "POST",
            "/v1/admin/dead-letters/{seq}/replay",
            "/v1/admin/dead-letters/999999/replay",
            None,
            |w| admin_only(w, 404),
        ),
        case("GET", "/v1/admin/audit", "/v1/admin/audit", None, |w| {
            admin_only(w, 200)
        }),
        case("GET", "/v1/admin/alerts", "/v1/admin/alerts", None, |w| {
            admin_only(w, 200)
        }),
        case(
            "PUT",
            "/v1/admin/alerts/{rule}",
            "/v1/admin/alerts/queue_depth",
            Some(json!({"for_s": 120})),
            |w| admin_only(w, 200),
        ),
        case(
            "POST",
            "/v1/admin/alerts/{rule}/silence",
            "/v1/admin/alerts/queue_depth/silence",
            Some(json!({"until": null})),
            |w| admin_only(w, 200),
        ),
        case("GET", "/v1/admin/notifications", "/v1/admin/notifications", None, |w| {
            admin_only(w, 200)
        }),
        // The web pages. The client follows redirects: whoever a page sends
        // to the sign-in page gets that page (200); a session the sign-up
        // form starts is not the one the client goes on with.
        case("GET", "/", "/", None, |_| 200),
        case("GET", "/login", "/login", None, |_| 200),
        case("POST", "/login", "/login", None, |_| 401),
        case("GET", "/signup", "/signup", None, |_| 200),
        case("POST", "/signup", "/signup", None, |_| 200),
        case("GET", "/app", "/app", None, |_| 200),
        case("GET", "/app/analytics", "/app/analytics", None, |_| 200),
        case("GET", "/app/analytics.csv", "/app/analytics.csv", None, |_| 200),
        case("GET", "/app/leaderboards", "/app/leaderboards", None, |_| 200),
        case("GET", "/app/leaderboards.csv", "/app/leaderboards.csv", None, |_| 200),
        case("GET", "/app/artists/{artist_id}", "/app/artists/art_1", None, |_| 200),
        case("GET", "/app/account", "/app/account", None, |_| 200),
        case("GET", "/app/admin", "/app/admin", None, |w| match () {
            () if !w.signed_in() => 200,
            () if w.admin() => 200,
            () => 403,
        }),
        case("GET", "/app/reports", "/app/reports", None, |_| 200),
        case("GET", "/app/reports/{id}", "/app/reports/rep_none", None, |w| {
            if w.signed_in() { 404 } else { 200 }
        }),
        // The reports' forms carry the session's CSRF token in a field, as
        // their pages fill it; an API key is no browser session (403), and
        // whoever is signed out is sent to sign in (the page, 200).
        case("POST", "/app/reports", "/app/reports", None, |w| {
            match (&w.credential, w.user) {
                (Credential::Key(_), _) => 403,
                (Credential::Session { .. }, Some(_)) if w.plan_at_least(Plan::Basic) => 200,
                (Credential::Session { .. }, Some(_)) => 403,
                _ => 200,
            }
        }),
        case(
            "POST",
            "/app/reports/{id}/shares",
            "/app/reports/rep_none/shares",
            None,
            |w| match (&w.credential, w.user) {
                (Credential::Key(_), _) => 403,
                (Credential::Session { .. }, Some(_)) if w.plan_at_least(Plan::Basic) => 404,
                (Credential::Session { .. }, Some(_)) => 403,
                _ => 200,
            },
        ),
        case(
            "POST",
            "/app/shares/{token}/revoke",
            format!("/app/shares/{UNKNOWN_TOKEN}/revoke"),
            None,
            |w| match (&w.credential, w.user) {
                (Credential::Key(_), _) => 403,
                (Credential::Session { .. }, Some(_)) => 404,
                _ => 200,
            },
        ),
        case(
            "POST",
            "/app/shares/{token}/rotate",
            format!("/app/shares/{UNKNOWN_TOKEN}/rotate"),
            None,
            |w| match (&w.credential, w.user) {
                (Credential::Key(_), _) => 403,
                (Credential::Session { .. }, Some(_)) => 404,
                _ => 200,
            },
        ),
        case(
            "GET",
            "/assets/{file}",
            coliseum_http::web::assets::url("arena.css"),
            None,
            |_| 200,
        ),
        case("GET", "/favicon.ico", "/favicon.ico", None, |_| 200),
        // Other sessions of the account end; this one stays. Browser
        // sessions only.
        case(
            "POST",
            "/app/account/sessions",
            "/app/account/sessions",
            None,
            |w| match w.credential {
                Credential::Key(_) => 403,
                _ => 200,
            },
        ),
        // Last: they end the session.
        case("POST", "/logout", "/logout", None, |_| 200),
        case("POST", "/v1/auth/logout", "/v1/auth/logout", None, |_| 204),
    ]
}

/// What a revoked key gets, whatever the endpoint: refused before anything
/// else, except where no identity is read at all.
fn revoked_key(case: &Case) -> u16 {
    match case.route {
        "/healthz" | "/readyz" | "/assets/{file}" | "/favicon.ico" => 200,
        _ => 401,
    }
}

async fn callers(app: &TestApp) -> Vec<Who> {
    let mut callers = vec![Who {
        label: "nobody".to_owned(),
        user: None,
        artist_of_art_1: false,
        host_of_live_1: false,
        credential: Credential::None,
    }];
    let ended = app.make_user(Role::Admin, Plan::Enterprise, &[], &[]).await;
    callers.push(Who {
        label: "an ended admin session".to_owned(),
        user: None,
        artist_of_art_1: false,
        host_of_live_1: false,
        credential: Credential::Ended(app.session_for(&ended, -time::Duration::minutes(1)).await),
    });
    let revoked_owner = app.make_user(Role::Admin, Plan::Enterprise, &[], &[]).await;
    let (revoked, revoked_id) = app.api_key_for(&revoked_owner).await;
    app.store
        .revoke_api_key(
            revoked_owner.id,
            revoked_id,
            OffsetDateTime::now_utc(),
            &crate::support::unrecorded,
        )
        .await
        .expect("revoke");
    callers.push(Who {
        label: "a revoked admin key".to_owned(),
        user: None,
        artist_of_art_1: false,
        host_of_live_1: false,
        credential: Credential::Revoked(revoked),
    });
    let roles = [
        Role::Fan,
        Role::Artist,
        Role::Host,
        Role::Brand,
        Role::Developer,
        Role::Admin,
    ];
    for role in roles {
        for plan in [Plan::Free, Plan::Basic, Plan::Pro, Plan::Enterprise] {
            let (artists, events): (&[&str], &[&str]) = match role {
                Role::Artist => (&["art_1"], &[]),
                Role::Host => (&[], &["live_1"]),
                _ => (&[], &[]),
            };
            let user = app.make_user(role, plan, artists, events).await;
            let cookie = app.session_for(&user, time::Duration::hours(1)).await;
            let token = cookie.split_once('=').expect("name=value").1.to_owned();
            let who = Who {
                label: format!("{} on {} (session)", role.as_str(), plan.as_str()),
                user: Some((role, plan)),
                artist_of_art_1: role == Role::Artist,
                host_of_live_1: role == Role::Host,
                credential: Credential::Session { cookie, token },
            };
            callers.push(who.clone());
            if plan >= Plan::Pro {
                let (key, _) = app.api_key_for(&user).await;
                callers.push(Who {
                    label: format!("{} on {} (API key)", role.as_str(), plan.as_str()),
                    credential: Credential::Key(key),
                    ..who
                });
            }
        }
    }
    // Foreign tenants: linked, but to another artist and another live event.
    let foreign_artist = app.make_user(Role::Artist, Plan::Enterprise, &["art_2"], &[]).await;
    let foreign_host = app.make_user(Role::Host, Plan::Enterprise, &[], &["live_2"]).await;
    for (user, role) in [(foreign_artist, Role::Artist), (foreign_host, Role::Host)] {
        let cookie = app.session_for(&user, time::Duration::hours(1)).await;
        let token = cookie.split_once('=').expect("name=value").1.to_owned();
        callers.push(Who {
            label: format!("a foreign {} on enterprise", role.as_str()),
            user: Some((role, Plan::Enterprise)),
            artist_of_art_1: false,
            host_of_live_1: false,
            credential: Credential::Session { cookie, token },
        });
    }
    callers
}

async fn call(app: &TestApp, case: &Case, who: &Who, n: usize) -> u16 {
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
    let mut request = app.client.request(method.clone(), format!("{}{}", app.base, case.path));
    let body = match case.route {
        // A fresh email each time, and a login that never matches.
        "/v1/auth/signup" => {
            Some(json!({"email": format!("signup-{n}@example.com"), "password": "long enough password"}))
        }
        "/v1/auth/login" => Some(json!({"email": format!("nobody-{n}@example.com"), "password": "wrong password"})),
        _ => case.body.clone(),
    };
    if let Some(body) = body {
        request = request.json(&body);
    }
    // The pages' forms: a failing sign-in, a fresh sign-up, and a sign-out
    // carrying the session's CSRF token as its page does.
    let form = match (case.route, &who.credential) {
        ("/login", _) if case.method == "POST" => Some(vec![
            ("email", format!("nobody-{n}@example.com")),
            ("password", "wrong password".to_owned()),
        ]),
        ("/signup", _) if case.method == "POST" => Some(vec![
            ("email", format!("form-signup-{n}@example.com")),
            ("password", "long enough password".to_owned()),
        ]),
        ("/logout" | "/app/account/sessions", Credential::Session { token, .. }) => {
            Some(vec![("csrf_token", coliseum_http::credentials::csrf_token(token))])
        }
        ("/logout" | "/app/account/sessions", _) => Some(Vec::new()),
        (
            "/app/reports" | "/app/reports/{id}/shares" | "/app/shares/{token}/revoke" | "/app/shares/{token}/rotate",
            _,
        ) if case.method == "POST" => {
            let mut fields = vec![
                ("template", "platform".to_owned()),
                ("format", "json".to_owned()),
                ("range", "24h".to_owned()),
            ];
            if let Credential::Session { token, .. } = &who.credential {
                fields.push(("csrf_token", coliseum_http::credentials::csrf_token(token)));
            }
            Some(fields)
        }
        ("/s/{token}" | "/s/{token}/embed", _) if case.method == "POST" => {
            Some(vec![("password", "a guess".to_owned())])
        }
        _ => None,
    };
    if let Some(form) = form {
        request = request.form(&form);
    }
    match &who.credential {
        Credential::None => {}
        Credential::Ended(cookie) => request = request.header("cookie", cookie),
        Credential::Session { cookie, token } => {
            request = request.header("cookie", cookie);
            if !method.is_safe() {
                // A well-behaved browser page: it sends the session's CSRF token.
                request = request.header("x-csrf-token", coliseum_http::credentials::csrf_token(token));
            }
        }
        Credential::Key(key) | Credential::Revoked(key) => request = request.bearer_auth(key),
    }
    request.send().await.expect("sent").status().as_u16()
}

async fn every_endpoint_answers_every_caller_as_the_table_says(backend: Backend) {
    let (stripe, _recorded) = crate::billing::stripe_stand_in().await;
    // The seed data must be in the state every plan but Enterprise reads.
    let (app, clock, boundary) = spawn_app_before_a_boundary(backend, |s| crate::billing::configure(s, &stripe)).await;
    let cases = cases();

    let ruled: BTreeSet<(&str, &str)> = RULES.iter().map(|(m, p, _)| (*m, *p)).collect();
    let tabled: BTreeSet<(&str, &str)> = cases.iter().map(|c| (c.method, c.route)).collect();
    assert_eq!(ruled, tabled, "every route with a rule has rows here, and only those");

    // Data for the tenant and DNA rows: one play of art_1 at live_1, scored.
    let mut seed = play("az-seed");
    seed["metadata"]["live_event_id"] = json!("live_1");
    assert_eq!(app.deliver(&seed).await.status(), 202);
    past_the_boundary(&app, &clock, boundary).await;

    let callers = callers(&app).await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for who in &callers {
        for case in &cases {
            let expected = if who.revoked() {
                revoked_key(case)
            } else {
                (case.expect)(who)
            };
            let got = call(&app, case, who, checked).await;
            checked += 1;
            if got != expected {
                wrong.push(format!(
                    "{} {} as {}: got {got}, expected {expected}",
                    case.method, case.path, who.label
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers differ from the table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked > 1000, "{checked} requests");
    app.stop().await;
}
