//! Retries with exponential backoff and full jitter: attempt `n` waits a
//! random time up to `base * 2^n` (capped), so that receivers recovering
//! from an outage are not hit by every sender at the same instant.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::DeliveryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The longest wait before attempt `n + 1` (after `n` failures).
    fn ceiling(&self, failures: u32) -> Duration {
        let factor = 1_u32.checked_shl(failures.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the attempts run
/// out; returns the last outcome and the attempts made.
pub async fn with_retries<F, Fut>(policy: RetryPolicy, mut attempt: F) -> (Result<(), DeliveryError>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), DeliveryError>>,
{
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Ok(()) => return (Ok(()), made),
            Err(error) if !error.retryable || made >= policy.attempts.max(1) => return (Err(error), made),
            Err(error) => {
                let ceiling = policy.ceiling(made - 1);
                let wait = rand::rng().random_range(Duration::ZERO..=ceiling);
                tracing::debug!(error = %error, attempt = made, wait_ms = wait.as_millis() as u64, "delivery failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn quick(attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempts,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let (outcome, made) = with_retries(quick(5), || async {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(DeliveryError::transient("503"))
            } else {
                Ok(())
            }
        })
        .await;
        assert_eq!((outcome, made), (Ok(()), 3));
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried_and_attempts_are_bounded() {
        let (outcome, made) = with_retries(quick(5), || async { Err(DeliveryError::permanent("400")) }).await;
        assert_eq!((outcome.is_err(), made), (true, 1));
        let (outcome, made) = with_retries(quick(3), || async { Err(DeliveryError::transient("503")) }).await;
        assert_eq!((outcome.is_err(), made), (true, 3));
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let ceilings: Vec<u64> = (0..8).map(|n| policy.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 32, 60, 60]);
    }
}
