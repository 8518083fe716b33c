//! The HTTP surface: one router per resource, merged here. File paths mirror
//! URL paths (`routes/passport.rs` serves `/v1/passport/…`).

pub mod access;
mod admin;
mod api_keys;
pub(crate) mod auth;
mod billing;
mod dna;
mod kpis;
mod leaderboards;
mod live;
mod ops;
mod passport;
mod report_schedules;
pub(crate) mod reports;
mod stripe;

use axum::Router;
use axum::http::{Method, Uri};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::openapi::ApiDoc;
use crate::problem::AppError;

/// Every route of the API, each with its description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(passport::router())
        .merge(auth::router())
        .merge(api_keys::router())
        .merge(billing::router())
        .merge(stripe::router())
        .merge(admin::router())
        .merge(kpis::router())
        .merge(leaderboards::router())
        .merge(dna::router())
        .merge(live::router())
        .merge(reports::router())
        .merge(report_schedules::router())
        .merge(ops::router())
}

pub fn router(state: AppState) -> Router {
    let (api, document) = api().split_for_parts();
    api
        // The document at `/openapi.json`, Swagger UI reading it at `/docs`.
        .merge(crate::openapi::router(&document))
        // The web pages and their files.
        .merge(crate::web::router())
        // Every route passes the access guard (rules in `access::RULES`).
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), access::guard))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // A panicking handler answers 500 (a page for browsers, with the
        // pages' headers: the layers below wrap it); internal errors and
        // panics are reported with the request's id and route (routing has
        // run: the route's template is known here), and every request is timed.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            crate::observability::panic_response,
        ))
        .layer(axum::middleware::from_fn(crate::observability::report_errors))
        // Limits and deadlines for every request; problem documents for every error.
        .layer(axum::middleware::from_fn(crate::request_limits::enforce))
        // Pages: problem documents shown as HTML to browsers, security
        // headers. Compressed: the pages' files and the API's JSON, never a
        // page (it carries the session's CSRF token beside text the query
        // chose: compressed together, their length would leak the token,
        // as in BREACH), nor fonts (compressed already).
        .layer(axum::middleware::from_fn(crate::web::html_for_browsers))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
        .layer(
            CompressionLayer::new().gzip(true).compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new("font/"))
                    .and(NotForContentType::const_new("text/html")),
            ),
        )
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::RefOr;
    use utoipa::openapi::path::{Operation, ParameterIn};

    use super::*;
    use crate::openapi::{DOCS_PATH, DOCUMENT_PATH};
    use crate::views;

    fn operations() -> Vec<(String, String, Operation)> {
        let document = api().into_openapi();
        let mut operations = Vec::new();
        for (path, item) in document.paths.paths {
            for (method, operation) in [
                ("GET", item.get),
                ("POST", item.post),
                ("PUT", item.put),
                ("PATCH", item.patch),
                ("DELETE", item.delete),
            ] {
                if let Some(operation) = operation {
                    operations.push((method.to_owned(), path.clone(), operation));
                }
            }
        }
        operations
    }

    /// The access guard refuses a route without a rule, so the rules are
    /// every route that can answer: each one is in the document, and the
    /// document describes nothing that is not routed.
    #[test]
    fn every_route_is_in_the_document_and_nothing_else() {
        let documented: BTreeSet<(String, String)> = operations().into_iter().map(|(m, p, _)| (m, p)).collect();
        let routed: BTreeSet<(String, String)> = access::RULES
            .iter()
            .filter(|(_, path, access)| {
                *path != DOCUMENT_PATH
                    && !path.starts_with(DOCS_PATH)
                    && !matches!(access, access::Access::Page | access::Access::Static)
            })
            .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
            .collect();
        assert_eq!(documented, routed);
    }

    /// A handler refuses a parameter it does not know: the document must
    /// name exactly the parameters each handler reads.
    #[test]
    fn each_operation_documents_the_query_parameters_its_handler_reads() {
        let boards = [views::boards::BOARD_PARAMETERS, views::boards::PAGE_PARAMETERS].concat();
        let around = [views::boards::BOARD_PARAMETERS, views::boards::AROUND_PARAMETERS].concat();
        let known: &[(&str, &[&str])] = &[
            ("/v1/kpis", views::kpis::PARAMETERS),
            ("/v1/leaderboards/{metric}", &boards),
            ("/v1/leaderboards/{metric}/around/{artist_id}", &around),
            ("/v1/dna/leaderboards/{domain}", views::dna::BOARD_PARAMETERS),
            ("/v1/dna/artists/{artist_id}", views::dna::EXPLANATION_PARAMETERS),
            ("/v1/dna/movers", views::dna::MOVERS_PARAMETERS),
            ("/v1/admin/pipeline/series", views::pipeline::SERIES_PARAMETERS),
            ("/v1/admin/audit", views::audit::AUDIT_PARAMETERS),
            ("/v1/live/sse", live::SSE_PARAMETERS),
            ("/v1/admin/dead-letters", admin::DEAD_LETTER_PARAMETERS),
            ("/v1/admin/notifications", admin::alerts::NOTIFICATION_PARAMETERS),
            ("/v1/reports", reports::LIST_PARAMETERS),
        ];
        for (method, path, operation) in operations() {
            let documented: BTreeSet<String> = operation
                .parameters
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| match p {
                    RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name),
                    _ => None,
                })
                .collect();
            let read: BTreeSet<String> = known
                .iter()
                .find(|(p, _)| *p == path && method == "GET")
                .map(|(_, names)| names.iter().map(|n| (*n).to_owned()).collect())
                .unwrap_or_default();
            assert_eq!(documented, read, "{method} {path}");
        }
    }

    /// Every `$ref` in the document names a schema the document holds.
    #[test]
    fn every_reference_resolves() {
        fn references(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                        found.push(target.clone());
                    }
                    map.values().for_each(|v| references(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| references(v, found)),
                _ => {}
            }
        }
        let document = serde_json::to_value(api().into_openapi()).expect("json");
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .expect("a schema reference");
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{target} does not resolve"
            );
        }
    }

    #[test]
    fn the_document_is_openapi_3_1_with_a_problem_for_every_failure() {
        let document = serde_json::to_value(api().into_openapi()).expect("json");
        assert_eq!(document["openapi"], "3.1.0");
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("item") {
                let problem = &operation["responses"]["default"]["content"]["application/problem+json"];
                assert_eq!(
                    problem["schema"]["$ref"], "#/components/schemas/Problem",
                    "{method} {path}"
                );
            }
        }
    }
}
