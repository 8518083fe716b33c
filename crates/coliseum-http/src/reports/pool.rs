//! Report generation that never stalls reads: PDFs are drawn on blocking
//! threads, a few at a time (half the cores: reads keep the rest), and a
//! burst waits in a bounded queue; beyond it, `503` with `Retry-After`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::AppError;

#[derive(Debug)]
pub struct RenderPool {
    /// Reports being made or waiting to be.
    admitted: Arc<Semaphore>,
    /// Reports being drawn.
    drawing: Arc<Semaphore>,
}

impl RenderPool {
    pub fn new(workers: usize, queue: usize) -> Self {
        let workers = workers.max(1);
        Self {
            admitted: Arc::new(Semaphore::new(workers + queue)),
            drawing: Arc::new(Semaphore::new(workers)),
        }
    }

    /// Half the machine's cores, at least one; 64 waiting.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::new(cores / 2, 64)
    }

    /// A place for one report, or `503` when the queue is full.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, AppError> {
        self.admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::Unavailable {
                detail: "too many reports are being made; retry shortly".to_owned(),
                retry_after_s: 5,
            })
    }

    /// Runs `draw` on a blocking thread when a worker is free. The worker
    /// is the thread's until it is done, even if the caller stops waiting.
    pub async fn draw<T: Send + 'static>(&self, draw: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let permit = self
            .drawing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("the report pool is closed".to_owned()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            draw()
        })
        .await
        .map_err(|e| AppError::Internal(format!("a report failed to draw: {e}")))
    }
}

/// Reports one account may have in the making at once: the queue is
/// everyone's, so that one account cannot take all of it.
pub const PER_ACCOUNT: usize = 4;

/// The reports each account has in the making.
#[derive(Debug, Default)]
pub struct InProgress {
    counts: std::sync::Mutex<std::collections::HashMap<i64, usize>>,
}

/// One report in the making; its place is given back when dropped.
#[derive(Debug)]
pub struct InProgressGuard {
    of: Arc<InProgress>,
    user_id: i64,
}

impl InProgress {
    /// A place for one more report of `user_id`, or `429` at [`PER_ACCOUNT`].
    pub fn enter(self: &Arc<Self>, user_id: i64) -> Result<InProgressGuard, AppError> {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(user_id).or_default();
        if *count >= PER_ACCOUNT {
            return Err(AppError::LimitReached(format!(
                "an account makes at most {PER_ACCOUNT} reports at once; wait for one to finish"
            )));
        }
        *count += 1;
        Ok(InProgressGuard {
            of: self.clone(),
            user_id,
        })
    }
}

impl Drop for InProgressGuard {
    fn drop(&mut self) {
        let mut counts = self.of.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.user_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.user_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_the_queue_reports_are_refused_until_one_finishes() {
        let pool = RenderPool::new(1, 2);
        let held: Vec<_> = (0..3).map(|_| pool.admit().expect("room")).collect();
        let refused = pool.admit().expect_err("full");
        assert!(matches!(refused, AppError::Unavailable { retry_after_s: 5, .. }));
        drop(held);
        assert!(pool.admit().is_ok());
        assert_eq!(pool.draw(|| 6 * 7).await.expect("drawn"), 42);
    }

    #[test]
    fn an_account_makes_a_few_reports_at_once_and_gets_its_places_back() {
        let in_progress = Arc::new(InProgress::default());
        let held: Vec<_> = (0..PER_ACCOUNT).map(|_| in_progress.enter(1).expect("room")).collect();
        assert!(matches!(in_progress.enter(1), Err(AppError::LimitReached(_))));
        assert!(in_progress.enter(2).is_ok(), "another account's are its own");
        drop(held);
        assert!(in_progress.enter(1).is_ok());
    }
}
