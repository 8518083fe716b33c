//! Sign-up, sign-in and sign-out as forms that work without JavaScript.
//! They do what `POST /v1/auth/…` does (the same functions), answer with a
//! redirect on success, and show the form again with the reason on failure.
//! No session exists yet to carry a CSRF token when signing in: like the
//! API, these refuse requests another site's page sent; signing out checks
//! the session's CSRF token, carried in a form field.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{PageQuery, TokenForm, check_form_token, render};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::{Caller, Via};
use crate::routes::auth;
use crate::web::shell::Shell;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    shell: Shell,
    /// `login` or `signup`.
    mode: &'static str,
    email: String,
    next: String,
    error: Option<String>,
    supabase: bool,
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Where to go after signing in: a path of this site only, never another
/// site (an open redirect would lend it this site's name). Browsers drop
/// tabs and line breaks from a URL and read `\` as `/`, so anything but
/// printable ASCII, and any second character that would make `//`, is
/// refused rather than cleaned.
fn local_path(next: &str) -> &str {
    let bytes = next.as_bytes();
    let printable = bytes.iter().all(|b| (0x21..=0x7e).contains(b) && *b != b'\\');
    let local = bytes.first() == Some(&b'/') && bytes.get(1) != Some(&b'/');
    if printable && local { next } else { "/app/analytics" }
}

fn page(state: &AppState, mode: &'static str, email: String, next: &str, error: Option<String>) -> SignInPage {
    let title = if mode == "login" {
        "Sign in"
    } else {
        "Create an account"
    };
    SignInPage {
        shell: Shell::bare(title),
        mode,
        email,
        next: local_path(next).to_owned(),
        error,
        supabase: state.settings.supabase_jwt_secret.is_some(),
    }
}

fn shown_again(page: &SignInPage, status: StatusCode) -> Result<Response, AppError> {
    let mut response = render(page)?;
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /login`.
pub async fn login_page(
    State(state): State<AppState>,
    query: Query<std::collections::HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    render(&page(
        &state,
        "login",
        String::new(),
        query.get("next").unwrap_or_default(),
        None,
    ))
}

/// `GET /signup`.
pub async fn signup_page(
    State(state): State<AppState>,
    query: Query<std::collections::HashMap<String, String>>,
) -> Result<Response, AppError> {
    let query = PageQuery::new(query);
    render(&page(
        &state,
        "signup",
        String::new(),
        query.get("next").unwrap_or_default(),
        None,
    ))
}

fn signed_in(cookie: String, next: &str) -> Response {
    let mut response = Redirect::to(local_path(next)).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// What a failed form shows: the problem's words, and its status.
fn refusal(error: AppError) -> Result<(StatusCode, String), AppError> {
    match error {
        // Kept as problems (shown as pages), with their `Retry-After`.
        AppError::Internal(_) | AppError::Unavailable { .. } | AppError::RateLimited(_) => Err(error),
        AppError::Invalid { errors, detail, .. } => {
            let field = errors.first().map(|e| e.pointer.trim_start_matches('/').to_owned());
            let text = match field {
                Some(field) => format!("The {field} {detail}."),
                None => detail,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, text))
        }
        other => {
            let status = other.problem().status;
            Ok((
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                capitalized(&other.to_string()),
            ))
        }
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect::<String>() + ".")
        .unwrap_or_default()
}

/// `POST /login`: signs in and goes to `next` (the dashboard by default).
pub async fn login(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, AppError> {
    submit(&state, &request, &headers, "login", form).await
}

/// `POST /signup`: a new Free account, signed in at once.
pub async fn signup(
    State(state): State<AppState>,
    request: RequestId,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, AppError> {
    submit(&state, &request, &headers, "signup", form).await
}

/// Signs in (`login`) or up (`signup`) with the form, opens the session
/// and goes to `next`; or shows the form again with the reason.
async fn submit(
    state: &AppState,
    request: &RequestId,
    headers: &HeaderMap,
    mode: &'static str,
    form: SignInForm,
) -> Result<Response, AppError> {
    auth::refuse_cross_site(state, headers)?;
    let outcome = async {
        let user = if mode == "login" {
            auth::authenticate(state, request, form.email.trim(), form.password).await?
        } else {
            auth::register(state, request, &form.email, form.password).await?
        };
        auth::open_session(state, request, &user).await
    }
    .await;
    match outcome {
        Ok((cookie, _)) => Ok(signed_in(cookie, &form.next)),
        Err(error) => {
            let (status, why) = refusal(error)?;
            shown_again(&page(state, mode, form.email, &form.next, Some(why)), status)
        }
    }
}

/// `POST /logout`: ends the session everywhere at once (the same revocation
/// as the API's), then back to the landing page.
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    request: RequestId,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    auth::refuse_cross_site(&state, &headers)?;
    if let Via::Session(token) = &caller.via {
        check_form_token(token, &form)?;
    }
    let cookie = auth::end_session(&state, &request, &headers).await?;
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_of_this_site_are_followed_after_signing_in() {
        assert_eq!(local_path("/app/account"), "/app/account");
        assert_eq!(
            local_path("/app/leaderboards?board=plays&range=7d"),
            "/app/leaderboards?board=plays&range=7d"
        );
        for away in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "https://evil.example",
            "evil.example",
            "",
            "/caf\u{e9}",
            "/a b",
        ] {
            assert_eq!(local_path(away), "/app/analytics", "{away:?}");
        }
    }
}
