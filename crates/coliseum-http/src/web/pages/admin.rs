//! The DIA admin panel's entry: the pipeline's state at a glance, live
//! over the `pipeline` topic. Admins only: anyone else is refused as the
//! admin API refuses them.

use askama::Template;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use coliseum_domain::plans::Role;
use serde_json::Value;

use super::{render, user_or_login};
use crate::app::AppState;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::views::pipeline;
use crate::web::format;
use crate::web::shell::Shell;

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    shell: Shell,
    figures: Vec<(String, String)>,
}

/// `GET /app/admin`.
pub async fn page(State(state): State<AppState>, caller: Caller) -> Result<Response, AppError> {
    let user = match user_or_login(&caller, "/app/admin") {
        Ok(user) => user,
        Err(redirect) => return Ok(redirect.into_response()),
    };
    if user.role != Role::Admin {
        return Err(AppError::Forbidden("the DIA panel needs the admin role".to_owned()));
    }
    let body = serde_json::to_value(pipeline::pipeline(&state).await?).unwrap_or_default();
    let figures = body
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| !v.is_object() && !v.is_array())
        .map(|(name, value)| {
            let shown = match value {
                Value::Number(n) => n.as_i64().map_or_else(|| n.to_string(), format::grouped),
                Value::String(s) => s.clone(),
                Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
                _ => String::new(),
            };
            (format::plan_title(&name.replace('_', " ")), shown)
        })
        .collect();
    render(&AdminPage {
        shell: Shell::of(&caller, "admin", "DIA Admin"),
        figures,
    })
}
