//! The OpenAPI 3.1 document, generated from the code: each handler's
//! `#[utoipa::path]` names its route, parameters and bodies, and the
//! routers register handlers through `utoipa_axum::routes!`, so a route and
//! its description are one declaration. Served at `/openapi.json`, readable
//! at `/docs` (Swagger UI, shipped inside the binary).

use std::collections::BTreeMap;

use axum::Router;
use axum::http::{HeaderValue, header};

use axum::routing::get;
use bytes::Bytes;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::sessions::SESSION_COOKIE;

/// Where the document and its readable form are served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Coliseum",
        description = "The analytics engine of the Passport event log: signed ingestion, KPIs, \
            leaderboards and DNA scores, within the caller's plan. Every error is an RFC 9457 \
            problem document (`application/problem+json`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(
        Problem,
        FieldError,
        names::MetricName,
        names::DnaBoardName,
        names::DnaDomainName,
        names::RangeName,
        names::ScoreRangeName,
        names::BucketName,
    )),
    modifiers(&Security),
    tags(
        (name = "passport", description = "Signed Passport deliveries in"),
        (name = "analytics", description = "KPIs and KPI leaderboards"),
        (name = "dna", description = "DNA scores, their explanation and movers"),
        (name = "accounts", description = "Sign-up, sessions and the caller's account"),
        (name = "api-keys", description = "API keys (Pro and Enterprise)"),
        (name = "billing", description = "Stripe Checkout, the billing portal and Stripe's events"),
        (name = "reports", description = "PDF and JSON reports and the links that share them (Basic and up)"),
        (name = "live", description = "Live updates over a WebSocket or Server-Sent Events (Pro and Enterprise)"),
        (name = "admin", description = "The DIA panel: pipeline health, dead letters, audit log"),
        (name = "operations", description = "Liveness, readiness and metrics"),
    ),
)]
pub struct ApiDoc;

/// The security schemes: a browser session, or a bearer credential (an
/// API key `ck_…` or a Supabase Auth token).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by sign-up and login. Unsafe methods also need the \
                 session's CSRF token (GET /v1/auth/csrf) in X-CSRF-Token.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`ck_…`, Pro and Enterprise) or, when configured, a Supabase Auth token.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The routes that serve the document and its readable form. The document
/// is written out once; Swagger UI's files come from the binary, and its
/// online validator (a request to swagger.io from every reader's browser,
/// handing it this document's address) is off.
pub fn router<S: Clone + Send + Sync + 'static>(document: &utoipa::openapi::OpenApi) -> Router<S> {
    let json = Bytes::from(serde_json::to_vec(document).expect("an OpenAPI document serializes"));
    let swagger: Router<S> = SwaggerUi::new(DOCS_PATH)
        .config(Config::new([DOCUMENT_PATH]).validator_url("none").use_base_layout())
        .into();
    Router::new()
        .route(
            DOCUMENT_PATH,
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .merge(swagger.layer(axum::middleware::map_response(confine_docs)))
}

/// Swagger UI runs a large third-party script on the origin of the session
/// cookie: it may load and call nothing but this server, and no other site
/// may frame it.
async fn confine_docs(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// An RFC 9457 problem document. Members beyond the first five are
/// extensions, present on the problems that carry them.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Problem {
    /// A URI naming the kind of problem (`…/problems/upgrade-required`, …).
    #[schema(rename = "type")]
    problem_type: String,
    title: String,
    status: u16,
    detail: String,
    /// The fields or parameters at fault.
    errors: Option<Vec<FieldError>>,
    /// Upgrade required: the feature the caller's plan lacks.
    feature: Option<String>,
    /// Upgrade required: the caller's plan.
    plan: Option<String>,
    /// Upgrade required: the cheapest plan that includes the feature.
    cheapest_plan: Option<String>,
    /// A refused delivery: every entry's fate, as a `202` would give them.
    #[schema(value_type = Option<Vec<Object>>)]
    results: Option<Vec<serde_json::Value>>,
    /// A refused delivery: entries accepted (0).
    accepted: Option<u64>,
    /// A refused delivery: entries already in the log (0).
    duplicates: Option<u64>,
    /// A refused delivery: entries rejected.
    rejected: Option<u64>,
}

/// A problem with one field of the request body (located by a JSON
/// Pointer) or with one query or path parameter (named).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FieldError {
    pointer: Option<String>,
    parameter: Option<String>,
    detail: String,
}

/// Every failure of every operation: a problem document.
pub struct Problems;

impl IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let response = ResponseBuilder::new()
            .description("A problem document (RFC 9457): the status, what went wrong and how to fix it")
            .content(
                "application/problem+json",
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build();
        BTreeMap::from([("default".to_owned(), response.into())])
    }
}

/// The names a parameter takes, for the document: the parsers in the
/// domain crate stay the authority (a test checks that each accepts these).
pub mod names {
    use utoipa::ToSchema;

    /// A KPI.
    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum MetricName {
        Plays,
        Votes,
        Attendance,
        Revenue,
        Engagement,
    }

    /// A DNA board: the overall score or one domain, `a` (cultural), `t`
    /// (behavioral), `g` (economic) or `c` (spatial).
    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum DnaBoardName {
        Overall,
        A,
        T,
        G,
        C,
    }

    /// A DNA domain: `a` (cultural), `t` (behavioral), `g` (economic) or `c` (spatial).
    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum DnaDomainName {
        A,
        T,
        G,
        C,
    }

    /// A range of time ending now, or `custom` with `from` and `to`.
    #[derive(Debug, ToSchema)]
    #[allow(dead_code)]
    pub enum RangeName {
        #[schema(rename = "1h")]
        Hour,
        #[schema(rename = "24h")]
        Day,
        #[schema(rename = "7d")]
        Week,
        #[schema(rename = "30d")]
        Month,
        #[schema(rename = "all")]
        All,
        #[schema(rename = "custom")]
        Custom,
    }

    /// The range DNA scores are computed over.
    #[derive(Debug, ToSchema)]
    #[allow(dead_code)]
    pub enum ScoreRangeName {
        #[schema(rename = "7d")]
        Week,
        #[schema(rename = "30d")]
        Month,
        #[schema(rename = "all")]
        All,
    }

    /// The bucket of a series.
    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "lowercase")]
    #[allow(dead_code)]
    pub enum BucketName {
        Hour,
        Day,
    }

    #[cfg(test)]
    mod tests {
        use coliseum_domain::kpi::Metric;
        use coliseum_domain::range::Range;
        use coliseum_domain::scoring::{DnaBoard, ScoreRange};
        use utoipa::PartialSchema;

        fn values<T: PartialSchema>() -> Vec<String> {
            let schema = serde_json::to_value(T::schema()).expect("json");
            schema["enum"]
                .as_array()
                .expect("an enum")
                .iter()
                .map(|v| v.as_str().expect("a string").to_owned())
                .collect()
        }

        #[test]
        fn every_documented_name_is_one_the_parsers_accept() {
            for name in values::<super::MetricName>() {
                assert!(Metric::parse(&name).is_some(), "{name}");
            }
            for name in values::<super::DnaBoardName>() {
                assert!(DnaBoard::parse(&name).is_some(), "{name}");
            }
            for name in values::<super::DnaDomainName>() {
                assert!(matches!(DnaBoard::parse(&name), Some(DnaBoard::Domain(_))), "{name}");
            }
            for name in values::<super::ScoreRangeName>() {
                assert!(ScoreRange::parse(&name).is_some(), "{name}");
            }
            let from = Some("2026-01-01T00:00:00Z");
            let to = Some("2026-01-02T00:00:00Z");
            for name in values::<super::RangeName>() {
                let (from, to) = if name == "custom" { (from, to) } else { (None, None) };
                assert!(Range::parse(&name, from, to).is_ok(), "{name}");
            }
            assert_eq!(values::<super::BucketName>(), ["hour", "day"]);
        }
    }
}
