//! The HTTP surface: one router per resource, merged here. File paths mirror
//! URL paths (`routes/passport.rs` serves `/v1/passport/…`).

mod admin;
mod analytics;
mod auth;
mod dna;
mod kpis;
mod leaderboards;
mod ops;
mod passport;

use axum::Router;
use axum::http::{Method, Uri};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::app::AppState;
use crate::problem::AppError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(passport::router())
        .merge(auth::router())
        .merge(admin::router())
        .merge(kpis::router())
        .merge(leaderboards::router())
        .merge(dna::router())
        .merge(ops::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Failures are logged where they are understood (AppError logs each
        // internal error once); a 503 storm under overload must not flood the log.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .with_state(state)
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("nothing is served at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
