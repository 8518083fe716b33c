//! `GET /`: the arena's gate. Anyone sees the public boards (the Public
//! plan's, or the signed-in user's plan), and the way in.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::leaderboards::{dna_board, kpi_board};
use super::{PageQuery, render};
use crate::app::AppState;
use crate::audit::RequestId;
use crate::problem::AppError;
use crate::routes::access::Caller;
use crate::web::models::{Board, Locked};
use crate::web::shell::Shell;

#[derive(Template)]
#[template(path = "landing.html")]
struct LandingPage {
    shell: Shell,
    boards: Vec<Result<Board, Locked>>,
}

pub async fn page(State(state): State<AppState>, caller: Caller, request: RequestId) -> Result<Response, AppError> {
    let query = PageQuery::default();
    let mut boards = vec![
        kpi_board(&state, &caller, &request, "plays", &query, 10).await?,
        dna_board(&state, &caller, &request, "overall", &query, 10).await?,
    ];
    for board in boards.iter_mut().flatten() {
        // The gate links to the dashboard, not to CSV or further pages.
        board.csv = None;
        board.next = None;
    }
    render(&LandingPage {
        shell: Shell::of(&caller, "landing", "The arena of music and live events"),
        boards,
    })
}
