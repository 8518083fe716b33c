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

    /// Runs `draw` on a blocking thread when a worker is free.
    pub async fn draw<T: Send + 'static>(&self, draw: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
        let _permit = self
            .drawing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::Internal("the report pool is closed".to_owned()))?;
        tokio::task::spawn_blocking(draw)
            .await
            .map_err(|e| AppError::Internal(format!("a report failed to draw: {e}")))
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
}
