//! `POST/GET/DELETE /v1/api-keys`: API keys for Pro and Enterprise accounts.
//! A key is shown once, at creation; the store keeps only its hash. It acts
//! as its owner, with the owner's plan and role of the moment.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coliseum_domain::plans::Feature;
use coliseum_store::{ApiKey, AuditOf, NewApiKey, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{Caller, SignedIn};
use coliseum_domain::text::{FORBIDDEN_CHARS, has_forbidden_chars};

use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::credentials;
use crate::openapi::Problems;
use crate::problem::AppError;
use crate::views::rfc3339;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

const MAX_NAME_CHARS: usize = 100;

/// A new key's name, 1 to 100 characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKeyBody {
    name: String,
}

/// A key as stored: never the key itself.
#[derive(Debug, Serialize, ToSchema)]
struct KeyBody {
    id: i64,
    name: String,
    /// The key's first characters, to tell keys apart.
    prefix: String,
    created_at: String,
    #[schema(required = true)]
    revoked_at: Option<String>,
}

impl From<&ApiKey> for KeyBody {
    fn from(key: &ApiKey) -> Self {
        Self {
            id: key.id,
            name: key.name.clone(),
            prefix: key.prefix.clone(),
            created_at: rfc3339(key.created_at),
            revoked_at: key.revoked_at.map(rfc3339),
        }
    }
}

/// A new key, shown in clear in this response only.
#[derive(Debug, Serialize, ToSchema)]
struct NewKey {
    #[serde(flatten)]
    stored: KeyBody,
    /// `ck_…`: send it as `Authorization: Bearer ck_…`.
    key: String,
}

/// The caller's keys, revoked ones included.
#[derive(Debug, Serialize, ToSchema)]
struct KeyList {
    items: Vec<KeyBody>,
}

/// A new API key (Pro and Enterprise), shown once.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    request_body = NewKeyBody,
    responses((status = 201, description = "The new key, shown once", body = NewKey), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<NewKey>), AppError> {
    let user = caller.user()?;
    caller.may(Feature::ApiKeys)?;
    let body: NewKeyBody = serde_json::from_slice(&body).map_err(|error| AppError::Malformed {
        detail: format!("expected {{\"name\": …}}: {error}"),
        errors: Vec::new(),
    })?;
    let name = body.name.trim();
    let invalid_name = |detail: &str| AppError::Invalid {
        detail: format!("a key's name {detail}"),
        errors: vec![coliseum_domain::passport::FieldError {
            pointer: "/name".to_owned(),
            detail: detail.to_owned(),
        }],
        extensions: serde_json::Map::new(),
    };
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid_name("must be 1 to 100 characters"));
    }
    if has_forbidden_chars(name) {
        return Err(invalid_name(FORBIDDEN_CHARS));
    }
    let record = |stored: &ApiKey| {
        let event = audit::Event {
            actor: caller.actor(),
            action: "api_key.created",
            subject: format!("api_key:{}", stored.id),
            detail: json!({"name": stored.name, "prefix": stored.prefix}),
        };
        Some(audit::record_of(&state, &request, event))
    };
    let (key, stored) = issue(&state, user.id, name, &record).await?;
    let body = NewKey {
        stored: KeyBody::from(&stored),
        key,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// Makes a key for `user_id`, recorded by `audit` in the same transaction;
/// returns it in clear (once) and as stored.
pub async fn issue(
    state: &AppState,
    user_id: i64,
    name: &str,
    audit: AuditOf<'_, ApiKey>,
) -> Result<(String, ApiKey), AppError> {
    let new_key = credentials::new_api_key();
    let stored = state
        .store
        .create_api_key(
            &NewApiKey {
                user_id,
                name: name.to_owned(),
                key_hash: new_key.hash,
                prefix: new_key.prefix,
                created_at: state.clock.now(),
            },
            audit,
        )
        .await
        .map_err(|error| match error {
            // The account holds as many keys as it may (PLANS.md).
            StoreError::LimitReached(detail) => AppError::Conflict(detail),
            other => other.into(),
        })?;
    Ok((new_key.key, stored))
}

/// The caller's API keys, revoked ones included.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    tag = "api-keys",
    responses((status = 200, description = "The keys", body = KeyList), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn list(State(state): State<AppState>, SignedIn(user, _): SignedIn) -> Result<Json<KeyList>, AppError> {
    let keys = state.store.api_keys(user.id).await?;
    Ok(Json(KeyList {
        items: keys.iter().map(KeyBody::from).collect(),
    }))
}

/// Revokes one of the caller's keys at once.
#[utoipa::path(
    delete,
    path = "/v1/api-keys/{id}",
    tag = "api-keys",
    params(("id" = String, Path, description = "The key's `id`")),
    responses((status = 204, description = "Revoked"), Problems),
    security(("session" = []), ("bearer" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let user = caller.user()?;
    let not_found = || AppError::NotFound(format!("you have no API key {id}"));
    let key_id: i64 = id.parse().map_err(|_| not_found())?;
    let record = |revoked: &ApiKey| {
        let event = audit::Event {
            actor: caller.actor(),
            action: "api_key.revoked",
            subject: format!("api_key:{}", revoked.id),
            detail: json!({"name": revoked.name, "prefix": revoked.prefix}),
        };
        Some(audit::record_of(&state, &request, event))
    };
    state
        .store
        .revoke_api_key(user.id, key_id, state.clock.now(), &record)
        .await?
        .ok_or_else(not_found)?;
    // Keys are cached by hash, which this node no longer knows: forget them
    // all, so the revoked one stops here at once (other nodes: within the
    // cache's two seconds).
    state.api_keys.clear();
    Ok(StatusCode::NO_CONTENT)
}
