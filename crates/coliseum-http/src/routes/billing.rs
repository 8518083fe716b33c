//! `POST /v1/billing/checkout` and `/portal`: Stripe-hosted pages to buy a
//! plan or manage a subscription. The Stripe API's base URL is a setting,
//! so that tests (and staging) can point it at a stand-in.

use axum::Json;
use axum::extract::State;
use coliseum_domain::plans::Plan;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::SignedIn;
use crate::app::AppState;
use crate::openapi::Problems;
use crate::problem::AppError;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(checkout)).routes(routes!(portal))
}

/// The plan to buy: `basic`, `pro` or `enterprise`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    plan: String,
}

/// A Stripe-hosted page to send the browser to.
#[derive(Debug, Serialize, ToSchema)]
struct StripePage {
    url: String,
}

fn not_configured() -> AppError {
    AppError::Unavailable {
        detail: "billing is not configured on this server (no Stripe secret key)".to_owned(),
        retry_after_s: 3600,
    }
}

/// Where Stripe sends the browser back to.
fn return_url(state: &AppState, path: &str) -> String {
    let base = state
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", state.settings.listen));
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A Stripe Checkout page to buy a plan.
#[utoipa::path(
    post,
    path = "/v1/billing/checkout",
    tag = "billing",
    request_body = CheckoutBody,
    responses((status = 200, description = "Where to send the browser", body = StripePage), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn checkout(
    State(state): State<AppState>,
    SignedIn(user, _): SignedIn,
    body: axum::body::Bytes,
) -> Result<Json<StripePage>, AppError> {
    let body: CheckoutBody = serde_json::from_slice(&body).map_err(|error| AppError::Malformed {
        detail: format!("expected {{\"plan\": \"basic\" | \"pro\" | \"enterprise\"}}: {error}"),
        errors: Vec::new(),
    })?;
    let invalid_plan = |detail: String| AppError::Invalid {
        detail: detail.clone(),
        errors: vec![coliseum_domain::passport::FieldError {
            pointer: "/plan".to_owned(),
            detail,
        }],
        extensions: serde_json::Map::new(),
    };
    let plan: Plan = body
        .plan
        .parse()
        .map_err(|_| invalid_plan(format!("`{}` is not a plan", body.plan)))?;
    let price = state
        .settings
        .stripe
        .price_of_plan(plan)
        .ok_or_else(|| invalid_plan(format!("the {} plan cannot be bought here", plan.as_str())))?
        .to_owned();
    let user_id = user.id.to_string();
    let mut form = vec![
        ("mode", "subscription".to_owned()),
        ("line_items[0][price]", price),
        ("line_items[0][quantity]", "1".to_owned()),
        ("client_reference_id", user_id.clone()),
        ("metadata[coliseum_user_id]", user_id.clone()),
        ("subscription_data[metadata][coliseum_user_id]", user_id),
        (
            "success_url",
            return_url(&state, "/billing/done?session_id={CHECKOUT_SESSION_ID}"),
        ),
        ("cancel_url", return_url(&state, "/billing")),
    ];
    match state.store.stripe_customer(user.id).await? {
        // One subscription per account: a second one would make the plan
        // whichever subscription changed last.
        Some(_) if user.plan >= Plan::Basic => {
            return Err(AppError::Conflict(
                "this account already has a subscription; change or cancel it in the billing portal".to_owned(),
            ));
        }
        Some(customer) => form.push(("customer", customer)),
        None => form.push(("customer_email", user.email.clone())),
    }
    let url = stripe_session(&state, "/v1/checkout/sessions", &form).await?;
    Ok(Json(StripePage { url }))
}

/// The Stripe billing portal of the caller's subscription.
#[utoipa::path(
    post,
    path = "/v1/billing/portal",
    tag = "billing",
    responses((status = 200, description = "Where to send the browser", body = StripePage), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn portal(State(state): State<AppState>, SignedIn(user, _): SignedIn) -> Result<Json<StripePage>, AppError> {
    let customer = state
        .store
        .stripe_customer(user.id)
        .await?
        .ok_or_else(|| AppError::Conflict("there is no subscription to manage yet; check out first".to_owned()))?;
    let form = [("customer", customer), ("return_url", return_url(&state, "/billing"))];
    let url = stripe_session(&state, "/v1/billing_portal/sessions", &form).await?;
    Ok(Json(StripePage { url }))
}

/// Creates a Stripe session (form-encoded, as the Stripe API takes) and
/// returns its `url`.
async fn stripe_session(state: &AppState, path: &str, form: &[(&str, String)]) -> Result<String, AppError> {
    let key = state.settings.stripe.secret_key.as_ref().ok_or_else(not_configured)?;
    let url = format!("{}{path}", state.settings.stripe.api_base.trim_end_matches('/'));
    let response = state
        .http
        .post(&url)
        .bearer_auth(key.expose())
        .form(form)
        .send()
        .await
        .map_err(|error| AppError::Upstream(format!("Stripe could not be reached: {error}")))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|error| AppError::Upstream(format!("Stripe answered {status} with no JSON: {error}")))?;
    if !status.is_success() {
        let message = body
            .pointer("/error/message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no message");
        return Err(AppError::Upstream(format!("Stripe answered {status}: {message}")));
    }
    body.get("url")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| AppError::Upstream("Stripe's session has no url".to_owned()))
}
