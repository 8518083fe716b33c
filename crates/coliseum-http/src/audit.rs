//! The audit log: who did what to whom, when, in which request. Every
//! login (and failed login), plan change, API key created or revoked, admin
//! action and access to another subject's data is appended here; admins
//! read it at `GET /v1/admin/audit`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use coliseum_store::AuditRecord;
use serde_json::Value;

use crate::app::AppState;
use crate::problem::AppError;

/// The request id the router assigned (`X-Request-Id`), for audit records.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Self(id.to_owned()))
    }
}

/// One thing to audit.
#[derive(Debug)]
pub struct Event<'a> {
    pub actor: String,
    pub action: &'a str,
    pub subject: String,
    pub detail: Value,
}

/// The record of `event`, now, in this request. An action that changes
/// anything hands it to the store with the change, so that the two commit
/// together: an action must not happen unrecorded.
pub fn record_of(state: &AppState, request: &RequestId, event: Event<'_>) -> AuditRecord {
    AuditRecord {
        id: 0,
        at: state.clock.now(),
        actor: event.actor,
        action: event.action.to_owned(),
        subject: event.subject,
        request_id: request.0.clone(),
        detail: event.detail.to_string(),
    }
}

/// Appends `event` on its own: for what changes nothing (a failed login, a
/// read of another subject's data). The request fails if it cannot be
/// recorded.
pub async fn record(state: &AppState, request: &RequestId, event: Event<'_>) -> Result<(), AppError> {
    let record = record_of(state, request, event);
    state.store.append_audit(std::slice::from_ref(&record)).await?;
    Ok(())
}
