//! The HTTP surface: one router per resource, merged here. File paths mirror
//! URL paths (`routes/passport.rs` serves `/v1/passport/…`).

pub mod access;
mod admin;
pub(crate) mod analytics;
mod api_keys;
mod auth;
mod billing;
mod dna;
mod kpis;
mod leaderboards;
mod ops;
mod passport;
mod stripe;

use axum::Router;
use axum::http::{Method, Uri};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::app::AppState;
use crate::problem::AppError;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(passport::router())
        .merge(auth::router())
        .merge(api_keys::router())
        .merge(billing::router())
        .merge(stripe::router())
        .merge(admin::router())
        .merge(kpis::router())
        .merge(leaderboards::router())
        .merge(dna::router())
        .merge(ops::router())
        // Every route passes the access guard (rules in `access::RULES`).
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), access::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Limits and deadlines for every request; problem documents for every error.
        .layer(axum::middleware::from_fn(crate::request_limits::enforce))
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::request_limits::MAX_BODY_BYTES,
        ))
        // Failures are logged where they are understood (AppError logs each
        // internal error once); a 503 storm under overload must not flood the log.
        .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        // Outermost: every request gets an id (kept if the client sent one),
        // echoed in the response and written into audit records.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

async fn not_found(uri: Uri) -> AppError {
    AppError::NotFound(format!("nothing is served at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
}
