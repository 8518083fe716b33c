//! Reports: made on request from the API's own views ([`document`]),
//! printed as PDF ([`printed`], drawn by `coliseum-reports`) or written as
//! JSON, stored in object storage ([`storage`]), counted against the plan's
//! monthly quota, and shared by links that expire, can be revoked, rotated
//! and protected by a password ([`links`]). Generation runs on a bounded
//! pool ([`pool`]) so that a burst of reports never stalls reads.

pub mod document;
pub mod links;
pub mod pool;
pub mod printed;
pub mod schedule;
pub mod storage;

use bytes::Bytes;
use coliseum_domain::plans::{Entitlements, Feature, Plan, entitlements};
use coliseum_reports::{Brand, ShareLink};
use coliseum_store::{NewReport, NewShare, ReportQuota, ReportRecord, ShareRecord};
use serde_json::json;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::audit::{self, RequestId};
use crate::problem::AppError;
use crate::routes::access::Caller;
use document::{ReportRequest, gather};

/// What reports need at run time: where files go, the pool that draws
/// them, and each account's reports in the making.
#[derive(Debug)]
pub struct ReportService {
    pub files: storage::ReportFiles,
    pub pool: pool::RenderPool,
    pub in_progress: std::sync::Arc<pool::InProgress>,
}

/// The terms of the link a report is made with (printed in its PDF).
#[derive(Debug, Clone)]
pub struct FirstLink {
    /// `None`: never expires (Enterprise).
    pub expires_at: Option<OffsetDateTime>,
    pub password_hash: Option<String>,
}

/// `pdf` or `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Json,
}

impl Format {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pdf" => Some(Self::Pdf),
            "json" => Some(Self::Json),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Json => "application/json",
        }
    }
}

/// The words printed across every page of a Basic report (PLANS.md).
pub const BASIC_WATERMARK: &str = "Coliseum Basic";

/// The words a report of `caller`'s carries on every page: Basic's.
fn basic_watermark(caller: &Caller) -> Option<&'static str> {
    (caller.subject().plan == Plan::Basic && !caller.audience().admin).then_some(BASIC_WATERMARK)
}

/// The lifetime of the link a report is made with: the plan's longest
/// (PLANS.md); Enterprise, whose links may last forever, gets a year.
pub fn default_link_lifetime(plan_entitlements: &Entitlements) -> time::Duration {
    match plan_entitlements.share_link_max_days {
        Some(days) => time::Duration::days(i64::from(days)),
        None => time::Duration::days(365),
    }
}

/// The first instant of the UTC month `now` is in, and of the next.
pub fn month_bounds(now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let now = now.to_offset(time::UtcOffset::UTC);
    let first = now.date().replace_day(1).unwrap_or(now.date()).midnight().assume_utc();
    let next = match now.month() {
        time::Month::December => time::Date::from_calendar_date(now.year() + 1, time::Month::January, 1),
        month => time::Date::from_calendar_date(now.year(), month.next(), 1),
    }
    .map_or(first + time::Duration::days(31), |d| d.midnight().assume_utc());
    (first, next)
}

/// The public base URL that links are built on (`--public-url`, else the
/// listening address).
pub fn public_base(state: &AppState) -> String {
    state
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", state.settings.listen))
        .trim_end_matches('/')
        .to_owned()
}

pub fn share_url(state: &AppState, token: &str) -> String {
    format!("{}/s/{token}", public_base(state))
}

/// A report made: its record and the link it was made with.
#[derive(Debug)]
pub struct Made {
    pub report: ReportRecord,
    pub share: ShareRecord,
}

/// Makes the report `request` asks for, as `caller` may read it, in
/// `format`: counted against the month's quota, stored, and given a link
/// (`first_link`'s terms, else the plan's longest lifetime and no
/// password). Anything that fails after the quota was counted gives it
/// back. Once counted, the report is finished on a task of its own: a
/// client that goes away does not leave it half made.
pub async fn make(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    request: ReportRequest,
    format: Format,
    first_link: Option<FirstLink>,
) -> Result<Made, AppError> {
    let user = caller.user()?.clone();
    caller.may(Feature::Reports)?;
    let admitted = state.reports.pool.admit()?;
    let making = state.reports.in_progress.enter(user.id)?;
    let subject = caller.subject();
    let plan_entitlements = entitlements(&subject);
    let now = state.clock.now();
    let (month_start, next_month) = month_bounds(now);
    let quota = plan_entitlements.reports_per_month.map(|max| ReportQuota {
        max,
        since: month_start,
    });
    let id = links::new_report_id();
    let new = NewReport {
        id: id.clone(),
        user_id: user.id,
        template: request.template.as_str().to_owned(),
        format: format.as_str().to_owned(),
        params: request.params_json.to_string(),
        created_at: now,
    };
    let record = audit::record_of(
        state,
        request_id,
        audit::Event {
            actor: caller.actor(),
            action: "report.created",
            subject: format!("report:{id}"),
            detail: json!({"template": new.template, "format": new.format}),
        },
    );
    let Some(report) = state.store.reserve_report(&new, quota, &record).await? else {
        let limit = quota.map_or(0, |q| q.max);
        return Err(AppError::QuotaExceeded {
            detail: format!(
                "your plan makes {limit} reports a month and this month's are made; more from {}",
                crate::views::rfc3339(next_month)
            ),
            limit,
            resets_at: crate::views::rfc3339(next_month),
            retry_after_s: u64::try_from((next_month - now).whole_seconds()).unwrap_or(0).max(1),
        });
    };
    let first_link = first_link.unwrap_or_else(|| FirstLink {
        expires_at: Some(now + default_link_lifetime(&plan_entitlements)),
        password_hash: None,
    });
    let task = tokio::spawn({
        let (state, caller, request_id) = (state.clone(), caller.clone(), request_id.clone());
        async move {
            let (_admitted, _making) = (admitted, making);
            let outcome = finish(
                &state,
                &caller,
                &request_id,
                request,
                format,
                &report,
                &plan_entitlements,
                first_link,
            )
            .await;
            if outcome.is_err() {
                if let Err(cleanup) = state.store.discard_report(&report.id).await {
                    tracing::warn!(error = %cleanup, report = %report.id, "a failed report was not discarded");
                }
                let _ = state.reports.files.delete(&report.id, format.as_str()).await;
            }
            outcome
        }
    });
    task.await
        .map_err(|e| AppError::Internal(format!("a report's task failed: {e}")))?
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    request: ReportRequest,
    format: Format,
    report: &ReportRecord,
    plan_entitlements: &Entitlements,
    first_link: FirstLink,
) -> Result<Made, AppError> {
    let protected = first_link.password_hash.is_some();
    let share = create_share(
        state,
        caller,
        request_id,
        &report.id,
        first_link.expires_at,
        first_link.password_hash,
    )
    .await?;
    let url = share_url(state, &share.token);
    let mut document = gather(state, caller, request_id, &request, &report.id, Some(url.clone())).await?;
    // A Basic report names its plan in JSON too (PLANS.md's watermark).
    document.watermark_text = basic_watermark(caller).map(str::to_owned);
    let bytes = match format {
        Format::Json => {
            Bytes::from(serde_json::to_vec_pretty(&document).map_err(|e| AppError::Internal(format!("a report: {e}")))?)
        }
        Format::Pdf => {
            let dress = printed::Dress {
                brand: brand_of(state, caller, plan_entitlements).await?,
                watermark_text: basic_watermark(caller).map(str::to_owned),
                share: Some(ShareLink {
                    url,
                    expiry: format!(
                        "{}{}",
                        match share.expires_at {
                            Some(at) => format!(
                                "This link works until {} UTC; its owner can revoke it sooner.",
                                at.date()
                            ),
                            None => "This link does not expire; its owner can revoke it.".to_owned(),
                        },
                        if protected { " It asks for a password." } else { "" }
                    ),
                }),
            };
            let printable = printed::printed(&document, dress);
            let pdf = state
                .reports
                .pool
                .draw(move || coliseum_reports::pdf(&printable))
                .await?
                .map_err(|e| AppError::Internal(e.to_string()))?;
            Bytes::from(pdf)
        }
    };
    let size = bytes.len() as i64;
    state.reports.files.put(&report.id, format.as_str(), bytes).await?;
    state
        .store
        .complete_report(&report.id, size, document.watermark)
        .await?;
    let mut made = report.clone();
    made.size_bytes = Some(size);
    made.watermark = Some(document.watermark);
    Ok(Made { report: made, share })
}

/// Whose brand a report carries: the account's own where its plan allows
/// it and it set one (PLANS.md: Enterprise), else Coliseum's.
async fn brand_of(state: &AppState, caller: &Caller, plan_entitlements: &Entitlements) -> Result<Brand, AppError> {
    if !plan_entitlements.reports_custom_branding {
        return Ok(Brand::coliseum());
    }
    let user = caller.user()?;
    Ok(match state.store.report_brand(user.id).await? {
        Some(brand) => Brand {
            accent: crate::routes::reports::parse_accent(&brand.accent).unwrap_or(coliseum_reports::ORANGE),
            name: brand.name,
            coliseum_mark: false,
            logo_png: brand.logo_png,
        },
        None => Brand::coliseum(),
    })
}

/// A new link to one of the caller's reports, audited.
pub async fn create_share(
    state: &AppState,
    caller: &Caller,
    request_id: &RequestId,
    report_id: &str,
    expires_at: Option<OffsetDateTime>,
    password_hash: Option<String>,
) -> Result<ShareRecord, AppError> {
    let user = caller.user()?;
    let token = links::new_share_token();
    let record = audit::record_of(
        state,
        request_id,
        audit::Event {
            actor: caller.actor(),
            action: "share.created",
            subject: format!("report:{report_id}"),
            detail: json!({
                "expires_at": expires_at.map(crate::views::rfc3339),
                "password": password_hash.is_some(),
            }),
        },
    );
    Ok(state
        .store
        .create_share(
            &NewShare {
                token,
                report_id: report_id.to_owned(),
                user_id: user.id,
                password_hash,
                created_at: state.clock.now(),
                expires_at,
            },
            &record,
        )
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_month_runs_from_its_first_instant_to_the_next_months() {
        assert_eq!(
            month_bounds(datetime!(2026-12-05 07:59 UTC)),
            (datetime!(2026-12-01 0:00 UTC), datetime!(2027-01-01 0:00 UTC))
        );
        assert_eq!(
            month_bounds(datetime!(2026-02-28 23:59:59 UTC)),
            (datetime!(2026-02-01 0:00 UTC), datetime!(2026-03-01 0:00 UTC))
        );
    }
}
