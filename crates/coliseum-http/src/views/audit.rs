//! The audit log as the admin panel reads it: a page of records, newest
//! first, filtered by actor, action, subject and time. The REST read and
//! the `audit` live topic serve this one body.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::rfc3339;
use crate::app::AppState;
use crate::params::Params;
use crate::problem::AppError;

/// The query parameters of the audit log.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditParams {
    /// Only records of this actor (`user:{id}`, `stripe`, …).
    actor: Option<String>,
    /// Only records of this action (`api_key.created`, …).
    action: Option<String>,
    /// Only records about this subject.
    subject: Option<String>,
    /// Only records at or after this instant (RFC 3339).
    since: Option<String>,
    /// Records per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub const AUDIT_PARAMETERS: &[&str] = &["actor", "action", "subject", "since", "limit", "cursor"];

/// One audited action.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditItem {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// The `X-Request-Id` of the request that did it.
    pub request_id: String,
    /// What the action changed, as recorded with it.
    #[schema(value_type = Object)]
    pub detail: Value,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditItem>,
    /// The next page; `null` on the last.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

impl AuditPage {
    /// The newest record's id on the page (0 when empty).
    pub fn newest_id(&self) -> i64 {
        self.items.first().map_or(0, |item| item.id)
    }
}

/// A page of the audit log as asked.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuditRequest {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl AuditRequest {
    pub fn read(params: &Params) -> Result<Self, AppError> {
        params.only(AUDIT_PARAMETERS)?;
        let since = params
            .get("since")
            .map(|text| {
                OffsetDateTime::parse(text, &Rfc3339)
                    .map_err(|_| AppError::parameter("since", "is not an RFC 3339 instant"))
            })
            .transpose()?;
        let before_id = params
            .get("cursor")
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| AppError::parameter("cursor", "is not a cursor this endpoint gave out"))
            })
            .transpose()?;
        Ok(Self {
            actor: params.get("actor").map(str::to_owned),
            action: params.get("action").map(str::to_owned),
            subject: params.get("subject").map(str::to_owned),
            since,
            before_id,
            limit: params.limit()?,
        })
    }
}

/// The page `request` asks for, read now.
pub async fn page(state: &AppState, request: &AuditRequest) -> Result<AuditPage, AppError> {
    let limit = request.limit;
    let mut records = state
        .store
        .audit_records(&coliseum_store::AuditQuery {
            actor: request.actor.clone(),
            action: request.action.clone(),
            subject: request.subject.clone(),
            since: request.since,
            before_id: request.before_id,
            limit: limit + 1,
        })
        .await?;
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next_cursor = more.then(|| records.last().map(|r| r.id.to_string())).flatten();
    let items = records
        .into_iter()
        .map(|r| AuditItem {
            detail: serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
            id: r.id,
            at: rfc3339(r.at),
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            request_id: r.request_id,
        })
        .collect();
    Ok(AuditPage { items, next_cursor })
}
