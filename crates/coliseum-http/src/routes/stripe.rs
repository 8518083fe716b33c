//! `POST /v1/stripe/webhook`: subscription events set plans; payments to
//! artists (when configured) enter Passport through the ingestion path.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use coliseum_domain::passport::{self, ValidationContext};
use coliseum_store::{Appended, NewEntry, StripeChange, StripeOutcome};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::openapi::Problems;
use crate::problem::AppError;
use crate::stripe::{self, Meaning};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook))
}

/// What the engine made of a Stripe event.
#[derive(Debug, Default, Serialize, ToSchema)]
struct Received {
    received: bool,
    /// `ignored`, `appended` or `duplicate` (a payment), `pending` (a
    /// customer not linked yet), `applied`.
    status: &'static str,
    /// Why an event was ignored.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// The plan after an applied event.
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'static str>,
    /// Whether an applied event changed the plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    changed: Option<bool>,
    /// Why a subscription event sets no plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

impl Received {
    fn status(status: &'static str) -> Self {
        Self {
            received: true,
            status,
            ..Self::default()
        }
    }
}

/// A Stripe event, signed with the endpoint's secret: subscription events
/// set plans; payments to artists enter Passport.
#[utoipa::path(
    post,
    path = "/v1/stripe/webhook",
    tag = "billing",
    params(("stripe-signature" = String, Header, description = "`t=…,v1=…` (Stripe's scheme)")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event"),
    responses((status = 200, description = "Received", body = Received), Problems),
    security(()),
)]
async fn webhook(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Received>, AppError> {
    let secret = state
        .settings
        .stripe_webhook_secret
        .as_ref()
        .ok_or_else(|| AppError::Unauthorized(stripe::SignatureError::NotConfigured.to_string()))?;
    let now = state.clock.now();
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    stripe::verify(secret.expose(), signature, &body, now.unix_timestamp())
        .map_err(|error| AppError::Unauthorized(error.to_string()))?;
    let event = stripe::read_event(&body, &state.settings.stripe).map_err(|detail| AppError::Malformed {
        detail,
        errors: Vec::new(),
    })?;
    let order = event.order();
    match event.meaning {
        Meaning::Ignored(reason) => Ok(Json(Received {
            reason: Some(reason),
            ..Received::status("ignored")
        })),
        Meaning::Payment(envelope) => {
            let entry = passport::validate_envelope(&envelope, "", &ValidationContext::at(now)).map_err(|errors| {
                AppError::Malformed {
                    detail: "the payment does not make a valid Passport entry".to_owned(),
                    errors,
                }
            })?;
            let fates = state
                .ingest
                .submit(vec![NewEntry::from_entry(entry, now)])
                .await
                .map_err(|error| AppError::Unavailable {
                    detail: error.to_string(),
                    retry_after_s: 5,
                })?;
            let status = match fates.first() {
                Some(Appended::Accepted { .. }) => "appended",
                _ => "duplicate",
            };
            Ok(Json(Received::status(status)))
        }
        Meaning::Plan {
            customer,
            link_user,
            plan,
            note,
        } => {
            let change = StripeChange {
                event_id: event.id.clone(),
                customer_id: customer,
                order,
                link_user,
                plan,
                received_at: now,
            };
            // A plan that changed is audited in the transaction that changes
            // it: a failed audit write fails the event, and Stripe's retry
            // finds it not yet recorded.
            let record = |outcome: &StripeOutcome| match outcome {
                StripeOutcome::Applied {
                    user_id,
                    plan,
                    changed: true,
                } => {
                    let event = audit::Event {
                        actor: "stripe".to_owned(),
                        action: "plan.changed",
                        subject: format!("user:{user_id}"),
                        detail: json!({"plan": plan.as_str(), "stripe_event": event.id, "type": event.kind}),
                    };
                    Some(audit::record_of(&state, &request, event))
                }
                _ => None,
            };
            let outcome = state.store.record_stripe_event(&change, &record).await?;
            if let Some(note) = &note {
                tracing::warn!(event = %event.id, kind = %event.kind, note = %note, "Stripe event changes no plan");
            }
            let body = match outcome {
                StripeOutcome::Duplicate => Received::status("duplicate"),
                StripeOutcome::Pending => Received::status("pending"),
                StripeOutcome::Applied { plan, changed, .. } => {
                    if changed {
                        // Cached credentials carry the old plan.
                        state.sessions.clear();
                        state.api_keys.clear();
                    }
                    Received {
                        plan: Some(plan.as_str()),
                        changed: Some(changed),
                        ..Received::status("applied")
                    }
                }
            };
            Ok(Json(Received { note, ..body }))
        }
    }
}
