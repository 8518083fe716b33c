//! The web pages: the arena dashboard that people use, served by the engine
//! itself. Every page is rendered on the server from the same bodies the
//! API serves (`views::shared`), so a page shows exactly the figures of the
//! matching REST read, and renders its data without JavaScript; a small
//! script module then keeps tiles and boards live over the WebSocket.
//!
//! Templates are compiled and checked with the code (`askama`, escaping by
//! default); styles, script, font and mark are embedded ([`assets`]). Pages
//! answer errors with HTML ([`errors`]) and carry a strict Content Security
//! Policy ([`headers`]).

pub mod assets;
mod errors;
pub(crate) mod format;
mod headers;
mod models;
pub(crate) mod pages;
mod shell;

use axum::Router;
use axum::routing::{get, post};

use crate::app::AppState;

pub use errors::html_for_browsers;
pub use headers::security_headers;

/// Every page route and the assets (their access rules: `access::RULES`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::landing::page))
        .route("/login", get(pages::sign_in::login_page).post(pages::sign_in::login))
        .route("/signup", get(pages::sign_in::signup_page).post(pages::sign_in::signup))
        .route("/logout", post(pages::sign_in::logout))
        .route("/app", get(pages::app_home))
        .route("/app/analytics", get(pages::analytics::page))
        .route("/app/analytics.csv", get(pages::export::kpis))
        .route("/app/leaderboards", get(pages::leaderboards::page))
        .route("/app/leaderboards.csv", get(pages::export::board))
        .route("/app/artists/{artist_id}", get(pages::artist::page))
        .route("/app/account", get(pages::account::page))
        .route("/app/account/sessions", post(pages::account::end_other_sessions))
        .route("/app/admin", get(pages::admin::page))
        .route("/app/reports", get(pages::reports::list).post(pages::reports::generate))
        .route("/app/reports/{id}", get(pages::reports::show))
        .route("/app/reports/{id}/shares", post(pages::reports::new_link))
        .route("/app/shares/{token}/revoke", post(pages::reports::revoke))
        .route("/app/shares/{token}/rotate", post(pages::reports::rotate))
        .route(
            "/s/{token}",
            get(pages::shared_reports::open).post(pages::shared_reports::give_password),
        )
        .route(
            "/s/{token}/embed",
            get(pages::shared_reports::embed).post(pages::shared_reports::embed_password),
        )
        .route("/s/{token}/qr.svg", get(pages::shared_reports::qr_svg))
        .route("/s/{token}/qr.png", get(pages::shared_reports::qr_png))
        .route("/assets/{file}", get(assets::serve))
        .route("/favicon.ico", get(pages::favicon))
}

/// The pages' forms: the only routes that read a form body (each refuses
/// other sites' requests itself, or, for a shared report's password, has
/// nothing another site could abuse: the password is the proof).
pub const FORM_PATHS: &[&str] = &["/login", "/signup", "/logout", "/app/account/sessions"];

/// Whether `path` is a page form's: one of [`FORM_PATHS`], the reports'
/// forms, or a shared report's password form (`/s/{token}`,
/// `/s/{token}/embed`).
pub fn is_form_path(path: &str) -> bool {
    if FORM_PATHS.contains(&path) {
        return true;
    }
    // The reports' forms: generate, new link, revoke, rotate.
    let segments: Vec<&str> = path.split('/').collect();
    match segments.as_slice() {
        ["", "app", "reports"] | ["", "app", "reports", _, "shares"] => return true,
        ["", "app", "shares", token, "revoke" | "rotate"] => {
            return crate::reports::links::looks_like_token(token);
        }
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/s/") else {
        return false;
    };
    let token = rest.strip_suffix("/embed").unwrap_or(rest);
    crate::reports::links::looks_like_token(token)
}

/// Whether a path is a page's (HTML for browsers) rather than the API's.
pub fn is_page_path(path: &str) -> bool {
    !(path.starts_with("/v1/")
        || path == "/openapi.json"
        || path.starts_with("/docs")
        || path == "/metrics"
        || path == "/healthz"
        || path == "/readyz")
}
