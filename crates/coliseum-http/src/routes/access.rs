//! Who may call what. Every route has one access rule, looked up by its
//! matched path; a route without a rule is refused (default deny), so a new
//! endpoint cannot ship open by accident. Before the handler runs, the
//! guard identifies the caller once (session cookie, API key or Supabase
//! token), checks the CSRF token of browser sessions, counts the request
//! against the caller's rate limit and enforces the rule. Plan entitlements
//! are then the handler's to check (`Caller::may`).

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::{Entitlements, Feature, Plan, Role, Subject, entitlement};
use coliseum_store::User;
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::credentials::{self, API_KEY_PREFIX};
use crate::problem::AppError;
use crate::ratelimit::{Decision, Quota, set_headers};
use crate::sessions;

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health and metrics: no identity, no rate limit (`/metrics` checks
    /// its own token or an admin session).
    Operations,
    /// Authenticated by a signature over the body, checked by the handler.
    Signature,
    /// Anyone, within the plan of whoever they are.
    Anyone,
    /// A signed-in user: session, API key or Supabase token.
    SignedIn,
    /// A signed-in admin.
    Admin,
    /// A web page: anyone, within their plan and rate limit, as `Anyone`;
    /// the page itself sends whoever must sign in to the sign-in page.
    Page,
    /// The pages' embedded files: no identity, no rate limit (they are
    /// cached for a year and cost nothing to serve).
    Static,
}

/// Every route's rule: (method, matched path, access).
pub const RULES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Access::Operations),
    ("GET", "/readyz", Access::Operations),
    ("GET", "/metrics", Access::Operations),
    // The API's description: anyone, within their rate limit.
    ("GET", "/openapi.json", Access::Anyone),
    ("GET", "/docs", Access::Anyone),
    ("GET", "/docs/", Access::Anyone),
    ("GET", "/docs/{*rest}", Access::Anyone),
    ("POST", "/v1/passport/events", Access::Signature),
    ("POST", "/v1/stripe/webhook", Access::Signature),
    ("POST", "/v1/auth/signup", Access::Anyone),
    ("POST", "/v1/auth/login", Access::Anyone),
    ("POST", "/v1/auth/logout", Access::Anyone),
    ("GET", "/v1/auth/csrf", Access::SignedIn),
    ("GET", "/v1/me", Access::SignedIn),
    ("POST", "/v1/api-keys", Access::SignedIn),
    ("GET", "/v1/api-keys", Access::SignedIn),
    ("DELETE", "/v1/api-keys/{id}", Access::SignedIn),
    ("POST", "/v1/billing/checkout", Access::SignedIn),
    ("POST", "/v1/billing/portal", Access::SignedIn),
    ("GET", "/v1/kpis", Access::Anyone),
    ("GET", "/v1/leaderboards/{metric}", Access::Anyone),
    ("GET", "/v1/leaderboards/{metric}/around/{artist_id}", Access::Anyone),
    ("GET", "/v1/dna/leaderboards/{domain}", Access::Anyone),
    ("GET", "/v1/dna/artists/{artist_id}", Access::Anyone),
    ("GET", "/v1/dna/movers", Access::Anyone),
    // Live updates: the plan's live push is the handler's to check.
    ("GET", "/v1/live", Access::Anyone),
    ("GET", "/v1/live/sse", Access::Anyone),
    // Reports: Basic and up, the handlers check the plan.
    ("POST", "/v1/reports", Access::SignedIn),
    ("GET", "/v1/reports", Access::SignedIn),
    ("GET", "/v1/reports/{id}", Access::SignedIn),
    ("GET", "/v1/reports/{id}/download", Access::SignedIn),
    ("POST", "/v1/reports/{id}/shares", Access::SignedIn),
    ("GET", "/v1/reports/branding", Access::SignedIn),
    ("PUT", "/v1/reports/branding", Access::SignedIn),
    ("DELETE", "/v1/reports/branding", Access::SignedIn),
    ("POST", "/v1/report-schedules", Access::SignedIn),
    ("GET", "/v1/report-schedules", Access::SignedIn),
    ("DELETE", "/v1/report-schedules/{id}", Access::SignedIn),
    ("GET", "/v1/report-schedules/{id}/deliveries", Access::SignedIn),
    ("GET", "/v1/shares", Access::SignedIn),
    ("DELETE", "/v1/shares/{token}", Access::SignedIn),
    ("POST", "/v1/shares/{token}/rotate", Access::SignedIn),
    ("GET", "/v1/shares/{token}/views", Access::SignedIn),
    ("GET", "/v1/admin/pipeline", Access::Admin),
    ("GET", "/v1/admin/pipeline/series", Access::Admin),
    ("POST", "/v1/admin/pipeline/pause", Access::Admin),
    ("POST", "/v1/admin/pipeline/resume", Access::Admin),
    ("GET", "/v1/admin/dead-letters", Access::Admin),
    ("POST", "/v1/admin/dead-letters/replay", Access::Admin),
    ("POST", "/v1/admin/dead-letters/{seq}/replay", Access::Admin),
    ("GET", "/v1/admin/audit", Access::Admin),
    ("GET", "/v1/admin/alerts", Access::Admin),
    ("PUT", "/v1/admin/alerts/{rule}", Access::Admin),
    ("POST", "/v1/admin/alerts/{rule}/silence", Access::Admin),
    ("GET", "/v1/admin/notifications", Access::Admin),
    // The web pages (`web`).
    ("GET", "/", Access::Page),
    ("GET", "/login", Access::Page),
    ("POST", "/login", Access::Page),
    ("GET", "/signup", Access::Page),
    ("POST", "/signup", Access::Page),
    ("POST", "/logout", Access::Page),
    ("GET", "/app", Access::Page),
    ("GET", "/app/analytics", Access::Page),
    ("GET", "/app/analytics.csv", Access::Page),
    ("GET", "/app/leaderboards", Access::Page),
    ("GET", "/app/leaderboards.csv", Access::Page),
    ("GET", "/app/artists/{artist_id}", Access::Page),
    ("GET", "/app/account", Access::Page),
    ("POST", "/app/account/sessions", Access::Page),
    ("GET", "/app/admin", Access::Page),
    ("GET", "/app/reports", Access::Page),
    ("POST", "/app/reports", Access::Page),
    ("GET", "/app/reports/{id}", Access::Page),
    ("POST", "/app/reports/{id}/shares", Access::Page),
    ("POST", "/app/shares/{token}/revoke", Access::Page),
    ("POST", "/app/shares/{token}/rotate", Access::Page),
    // Shared reports: anyone with the link, rate-limited by address.
    ("GET", "/s/{token}", Access::Page),
    ("POST", "/s/{token}", Access::Page),
    ("GET", "/s/{token}/embed", Access::Page),
    ("POST", "/s/{token}/embed", Access::Page),
    ("GET", "/s/{token}/qr.svg", Access::Page),
    ("GET", "/s/{token}/qr.png", Access::Page),
    ("GET", "/assets/{file}", Access::Static),
    ("GET", "/favicon.ico", Access::Static),
];

/// Routes that set up a session rather than use one (no CSRF token yet:
/// they refuse other sites' requests instead), the dashboard's forms
/// (sign-out, sessions, reports), which carry the token in a form field
/// their handlers check, and a shared
/// report's password forms, which act for no session (the password is
/// the proof, and they change nothing).
const NO_CSRF: &[&str] = &[
    "/v1/auth/signup",
    "/v1/auth/login",
    "/login",
    "/signup",
    "/logout",
    "/app/account/sessions",
    "/app/reports",
    "/app/reports/{id}/shares",
    "/app/shares/{token}/revoke",
    "/app/shares/{token}/rotate",
    "/s/{token}",
    "/s/{token}/embed",
];

pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    Anonymous,
    /// A browser session (the cookie's token).
    Session(String),
    ApiKey(i64),
    Supabase,
    /// The engine acting for the account on a schedule it set.
    Scheduler,
}

/// Whoever makes a request: a user, or nobody (the Public plan). An ended
/// session is no error for public reads: they stay public.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: Option<User>,
    pub via: Via,
}

impl Caller {
    const ANONYMOUS: Self = Self {
        user: None,
        via: Via::Anonymous,
    };

    /// Who the caller is for entitlements: a Public fan without a user.
    pub fn subject(&self) -> Subject<'_> {
        self.user.as_ref().map_or(Subject::PUBLIC, subject_of)
    }

    /// Whether the caller may have `feature` (PLANS.md).
    pub fn may(&self, feature: Feature<'_>) -> Result<(), AppError> {
        Ok(entitlement(&self.subject(), feature)?)
    }

    /// How far behind live the caller's plan is served, in seconds (0: live).
    pub fn freshness_s(&self) -> u32 {
        coliseum_domain::plans::entitlements(&self.subject()).freshness_s
    }

    /// Whom a read's body is built for: what of the caller it may depend on.
    pub fn audience(&self) -> Audience {
        let subject = self.subject();
        Audience {
            plan: subject.plan,
            admin: subject.role == Role::Admin,
        }
    }

    /// The signed-in user; `401` for nobody.
    pub fn user(&self) -> Result<&User, AppError> {
        self.user
            .as_ref()
            .ok_or_else(|| AppError::Unauthorized("sign in first".to_owned()))
    }

    /// `user:<id>`, or `anonymous`: how the audit log names an actor.
    pub fn actor(&self) -> String {
        self.user
            .as_ref()
            .map_or_else(|| "anonymous".to_owned(), |u| format!("user:{}", u.id))
    }

    /// The rate-limit bucket and quota: per API key, per session (or per
    /// Supabase user), per IP without credentials (PLANS.md), an IPv6
    /// address's whole /64 being one: a host can use any address in it.
    fn rate_limit(&self, ip: Option<std::net::IpAddr>) -> (String, Quota) {
        let quota = Quota::per_minute(Entitlements::of(self.subject().plan).rate_limit_per_minute);
        // One allowance per account (PLANS.md): every session and API key
        // of a user draws on it, so more of them do not multiply it.
        let key = match &self.user {
            Some(user) => format!("user:{}", user.id),
            None => format!(
                "ip:{}",
                ip.map_or_else(
                    || "unknown".to_owned(),
                    |ip| crate::ingest_budget::peer_of(ip).to_string()
                )
            ),
        };
        (key, quota)
    }
}

/// What of a caller a read's body may depend on: the plan, and whether
/// an admin (how fresh the data, how many ranks shown, which upgrade is
/// named: PLANS.md decides these by plan, admins aside), never who the
/// caller is, their other roles or what they are linked to. Whether the
/// caller may make the read at all is checked before, per caller; its body
/// is then the same for every caller of one audience, and shared among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Audience {
    pub plan: Plan,
    pub admin: bool,
}

impl Audience {
    /// The subject a body is built for: the audience as a fan or an admin,
    /// linked to nothing.
    pub fn subject(&self) -> Subject<'static> {
        Subject {
            plan: self.plan,
            role: if self.admin { Role::Admin } else { Role::Fan },
            artists: &[],
            live_events: &[],
        }
    }

    /// How far behind live the audience is served, in seconds (0: live).
    pub fn freshness_s(&self) -> u32 {
        coliseum_domain::plans::entitlements(&self.subject()).freshness_s
    }

    /// The least time between two live updates of one topic (a plan
    /// without live push never subscribes; it would get Pro's).
    pub fn live_cadence(&self) -> std::time::Duration {
        coliseum_domain::plans::entitlements(&self.subject())
            .live_push
            .cadence()
            .unwrap_or(std::time::Duration::from_secs(60))
    }
}

/// A user as entitlements see it.
pub fn subject_of(user: &User) -> Subject<'_> {
    Subject {
        plan: user.plan,
        role: user.role,
        artists: &user.artists,
        live_events: &user.live_events,
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Self>() {
            Some(caller) => Ok(caller.clone()),
            None => identify(state, &parts.headers).await,
        }
    }
}

/// The signed-in user of a request; `401` without one.
#[derive(Debug, Clone)]
pub struct SignedIn(pub User, pub Via);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let user = caller.user()?.clone();
        Ok(Self(user, caller.via))
    }
}

/// A signed-in admin; `401` without credentials, `403` for any other role.
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let SignedIn(user, _) = SignedIn::from_request_parts(parts, state).await?;
        if user.role == Role::Admin {
            Ok(Self(user))
        } else {
            Err(AppError::Forbidden("this needs the admin role".to_owned()))
        }
    }
}

pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(sessions::token_from_cookies)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Who the request comes from. Presented credentials that fail are a `401`
/// (a client that means to authenticate should learn it did not); an ended
/// session cookie just makes the caller anonymous.
pub async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, AppError> {
    if let Some(token) = bearer(headers) {
        return if token.starts_with(API_KEY_PREFIX) {
            api_key_caller(state, token).await
        } else {
            supabase_caller(state, token).await
        };
    }
    let Some(token) = cookie_token(headers) else {
        return Ok(Caller::ANONYMOUS);
    };
    let hash = sessions::token_hash(token);
    let user = state
        .sessions
        .get_or_fetch(&hash, || async {
            Ok::<_, AppError>(state.store.session_user(&hash, state.clock.now()).await?)
        })
        .await?;
    Ok(match user {
        Some(user) => Caller {
            user: Some(user),
            via: Via::Session(token.to_owned()),
        },
        None => Caller::ANONYMOUS,
    })
}

async fn api_key_caller(state: &AppState, key: &str) -> Result<Caller, AppError> {
    let hash = credentials::api_key_hash(key);
    let (user, key_id) = state
        .api_keys
        .get_or_fetch(&hash, || async {
            Ok::<_, AppError>(state.store.api_key_user(&hash).await?)
        })
        .await?
        .ok_or_else(|| AppError::Unauthorized("the API key is not valid or was revoked".to_owned()))?;
    // A key acts with its owner's plan of the moment: below Pro it stops working.
    entitlement(&subject_of(&user), Feature::ApiKeys)?;
    Ok(Caller {
        user: Some(user),
        via: Via::ApiKey(key_id),
    })
}

async fn supabase_caller(state: &AppState, token: &str) -> Result<Caller, AppError> {
    let Some(secret) = &state.settings.supabase_jwt_secret else {
        return Err(AppError::Unauthorized(
            "the bearer token is neither an API key (ck_…) nor, on this server, an accepted access token".to_owned(),
        ));
    };
    let claims = credentials::verify_supabase_token(token, secret.expose())
        .map_err(|error| AppError::Unauthorized(error.to_string()))?;
    let cache_key = [b"supabase:".as_slice(), claims.sub.as_bytes()].concat();
    let user = state
        .sessions
        .get_or_fetch(&cache_key, || async {
            match state.store.external_user(&claims.sub, &claims.email).await {
                Ok(user) => Ok(Some(user)),
                Err(coliseum_store::StoreError::Conflict(why)) => Err(AppError::Conflict(why)),
                Err(other) => Err(other.into()),
            }
        })
        .await?
        .ok_or_else(|| AppError::Internal("an external user was neither found nor made".to_owned()))?;
    Ok(Caller {
        user: Some(user),
        via: Via::Supabase,
    })
}

/// The guard every route passes through (see the module's documentation).
pub async fn guard(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let Some(path) = matched.as_ref().map(MatchedPath::as_str) else {
        return next.run(request).await;
    };
    let Some(access) = rule(&method, path) else {
        if RULES.iter().any(|(_, p, _)| *p == path) {
            // Another method of a known path: the router answers 405.
            return next.run(request).await;
        }
        tracing::error!(%method, path, "no access rule for this route: refused");
        return AppError::Forbidden(format!("no access rule is defined for {method} {path}")).into_response();
    };
    if matches!(access, Access::Operations | Access::Signature | Access::Static) {
        return next.run(request).await;
    }
    let ip = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let caller = match identify(&state, request.headers()).await {
        Ok(caller) => caller,
        Err(error) => {
            // Failed credentials count against the address, as anonymous
            // requests do: guessing keys or tokens is rate-limited too.
            if state.settings.rate_limits {
                let (key, quota) = Caller::ANONYMOUS.rate_limit(ip);
                let decision = state.limiter.check(&key, quota).await;
                if !decision.allowed {
                    return AppError::RateLimited(decision).into_response();
                }
            }
            return error.into_response();
        }
    };
    if let Err(error) = check_csrf(&caller, &method, path, request.headers()) {
        return error.into_response();
    }
    let decision = if state.settings.rate_limits {
        {
            let (key, quota) = caller.rate_limit(ip);
            let decision = state.limiter.check(&key, quota).await;
            if !decision.allowed {
                return AppError::RateLimited(decision).into_response();
            }
            Some(decision)
        }
    } else {
        None
    };
    let allowed = match access {
        Access::SignedIn => caller.user().map(|_| ()),
        Access::Admin => match &caller.user {
            None => Err(AppError::Unauthorized("sign in first".to_owned())),
            Some(user) if user.role == Role::Admin => Ok(()),
            Some(_) => Err(AppError::Forbidden("this needs the admin role".to_owned())),
        },
        _ => Ok(()),
    };
    let mut response = match allowed {
        Ok(()) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    };
    if let Some(decision) = decision {
        set_headers(response.headers_mut(), &decision);
    }
    response
}

fn rule(method: &Method, path: &str) -> Option<Access> {
    // The router answers HEAD with the GET handler: it is a GET for the rules too.
    let method = if method == Method::HEAD { "GET" } else { method.as_str() };
    RULES
        .iter()
        .find(|(m, p, _)| *p == path && *m == method)
        .map(|(_, _, access)| *access)
}

/// A browser session's unsafe requests must carry its CSRF token: the
/// cookie goes along with any cross-site form, the token cannot.
fn check_csrf(caller: &Caller, method: &Method, path: &str, headers: &HeaderMap) -> Result<(), AppError> {
    let Via::Session(token) = &caller.via else {
        return Ok(());
    };
    if method.is_safe() || NO_CSRF.contains(&path) {
        return Ok(());
    }
    let expected = credentials::csrf_token(token);
    let given = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if bool::from(given.ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "this request needs the session's CSRF token (GET /v1/auth/csrf) in X-CSRF-Token".to_owned(),
        ))
    }
}

/// Counts one more request of `caller` (from `ip`) against its allowance,
/// for what is a request without being one: a live subscription's state.
pub async fn charge(state: &AppState, caller: &Caller, ip: Option<std::net::IpAddr>) -> Result<(), AppError> {
    if !state.settings.rate_limits {
        return Ok(());
    }
    let (key, quota) = caller.rate_limit(ip);
    let decision = state.limiter.check(&key, quota).await;
    if decision.allowed {
        Ok(())
    } else {
        Err(AppError::RateLimited(decision))
    }
}

/// Who holds `credentials` now, for a connection that outlives a request:
/// credentials that no longer prove anyone make nobody (the Public plan);
/// a failure to find out (the store down) keeps `before`.
pub async fn identify_again(state: &AppState, credentials: &HeaderMap, before: &Caller) -> Caller {
    match identify(state, credentials).await {
        Ok(caller) => caller,
        Err(AppError::Unauthorized(_)) => Caller::ANONYMOUS,
        Err(error) => {
            tracing::warn!(error = %error, "a live connection's caller could not be checked again; kept");
            before.clone()
        }
    }
}

/// The headers of a request that say who sent it: what a long-lived
/// connection keeps to identify its caller again, and nothing else.
pub fn credentials_of(headers: &HeaderMap) -> HeaderMap {
    let mut kept = HeaderMap::new();
    for name in [header::COOKIE, header::AUTHORIZATION] {
        for value in headers.get_all(&name) {
            // Copied, not cloned: a clone shares the connection's whole
            // read buffer (8 KiB or more), which a live connection would
            // then keep for its whole life.
            // (A value hyper accepted always converts; kept as it was otherwise.)
            let mut copy = HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
            copy.set_sensitive(true);
            kept.append(name.clone(), copy);
        }
    }
    kept
}

/// The quota of failed-login protection: attempts per email.
pub const LOGIN_ATTEMPTS: Quota = Quota {
    max: 10,
    per: std::time::Duration::from_secs(15 * 60),
};

/// Counts a login attempt for `email`; past [`LOGIN_ATTEMPTS`], `429`.
pub async fn throttle_login(state: &AppState, email: &str) -> Result<Decision, AppError> {
    let decision = state
        .limiter
        .check(&format!("login:{}", email.to_lowercase()), LOGIN_ATTEMPTS)
        .await;
    if decision.allowed {
        Ok(decision)
    } else {
        Err(AppError::RateLimited(decision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_credentials_are_copies_of_the_request_s_bytes() {
        // A request's values are slices of its connection's read buffer.
        let buffer = bytes::Bytes::from(b"GET / HTTP/1.1\r\nauthorization: Bearer key\r\n".to_vec());
        let value = HeaderValue::from_maybe_shared(buffer.slice(31..41)).expect("a header value");
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value);
        headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));

        let kept = credentials_of(&headers);

        assert_eq!(kept.len(), 1, "only what identifies the caller");
        let copy = kept.get(header::AUTHORIZATION).expect("kept");
        assert_eq!(copy.as_bytes(), b"Bearer key");
        assert!(copy.is_sensitive());
        let within = buffer.as_ptr_range();
        assert!(
            !within.contains(&copy.as_bytes().as_ptr()),
            "the kept value must not hold the read buffer"
        );
    }

    #[test]
    fn an_ipv6_host_is_one_visitor_whichever_address_of_its_64_it_uses() {
        let bucket = |ip: &str| Caller::ANONYMOUS.rate_limit(Some(ip.parse().expect("an address"))).0;
        assert_eq!(bucket("2001:db8:1:2::7"), bucket("2001:db8:1:2:ffff::1"));
        assert_ne!(bucket("2001:db8:1:2::7"), bucket("2001:db8:1:3::7"));
        assert_eq!(bucket("::ffff:203.0.113.7"), bucket("203.0.113.7"));
        assert_ne!(bucket("203.0.113.7"), bucket("203.0.113.8"));
    }
}
