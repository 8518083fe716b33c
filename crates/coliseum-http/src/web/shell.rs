//! What every page's frame shows: the title, who is signed in and on which
//! plan, the sidebar (with the admin entry for admins only), the session's
//! CSRF token for the script's unsafe requests, and how fresh the plan's
//! data is.

use coliseum_domain::plans::{LivePush, Plan, Role, entitlements};

use super::assets;
use super::format::plan_title;
use crate::credentials;
use crate::routes::access::{Caller, Via};

/// The signed-in user, as the frame shows them.
pub struct Account {
    pub email: String,
    pub plan: String,
}

pub struct Shell {
    pub title: String,
    /// The sidebar entry of the page (`analytics`, `leaderboards`, …).
    pub section: &'static str,
    pub account: Option<Account>,
    pub admin: bool,
    /// The session's CSRF token (browser sessions only).
    pub csrf: Option<String>,
    pub css: &'static str,
    pub js: &'static str,
    pub font: &'static str,
    pub mark: &'static str,
    /// How the page follows changes: `push` (WebSocket, at the plan's
    /// cadence) or `poll` (plans without live push reload their snapshot).
    pub live: &'static str,
    /// What the plan's freshness is, in words.
    pub freshness: String,
}

impl Shell {
    /// A frame with nobody signed in (error pages, sign-in).
    pub fn bare(title: &str) -> Self {
        Self::frame(title, "", None, false, None, Plan::Public)
    }

    /// The frame of `caller` on the page of `section`.
    pub fn of(caller: &Caller, section: &'static str, title: &str) -> Self {
        let csrf = match &caller.via {
            Via::Session(token) => Some(credentials::csrf_token(token)),
            _ => None,
        };
        let account = caller.user.as_ref().map(|user| Account {
            email: user.email.clone(),
            plan: plan_title(user.plan.as_str()),
        });
        let admin = caller.user.as_ref().is_some_and(|u| u.role == Role::Admin);
        let plan = caller.subject().plan;
        let mut shell = Self::frame(title, section, account, admin, csrf, plan);
        if matches!(entitlements(&caller.subject()).live_push, LivePush::None) {
            shell.live = "poll";
        }
        shell
    }

    fn frame(
        title: &str,
        section: &'static str,
        account: Option<Account>,
        admin: bool,
        csrf: Option<String>,
        plan: Plan,
    ) -> Self {
        Self {
            title: title.to_owned(),
            section,
            account,
            admin,
            csrf,
            css: assets::url("arena.css"),
            js: assets::url("arena.js"),
            font: assets::url("fonts/cinzel-700.woff2"),
            mark: assets::url("mark.svg"),
            live: "push",
            freshness: freshness_of(plan, admin),
        }
    }

    pub fn signed_in(&self) -> bool {
        self.account.is_some()
    }
}

/// What a plan's freshness promises, as the badge says it (PLANS.md).
pub fn freshness_of(plan: Plan, admin: bool) -> String {
    if admin {
        return "Admin · live".to_owned();
    }
    match plan {
        Plan::Enterprise => "Enterprise is live".to_owned(),
        Plan::Pro => "Pro refreshes every minute".to_owned(),
        other => format!("{} shows the last 5-minute snapshot", plan_title(other.as_str())),
    }
}
