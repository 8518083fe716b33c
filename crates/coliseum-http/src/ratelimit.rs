//! Request rate limits: a generic cell rate algorithm (GCRA) per key, in
//! Redis when the engine has one (so every node draws from the same
//! allowance) and in memory otherwise. GCRA keeps one timestamp per key and
//! spreads a minute's allowance evenly, with bursts up to the whole of it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// At most `max` requests per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max: u32,
    pub per: Duration,
}

impl Quota {
    pub const fn per_minute(max: u32) -> Self {
        Self {
            max,
            per: Duration::from_secs(60),
        }
    }

    /// Microseconds between two requests at the steady rate.
    fn interval_us(self) -> i64 {
        (self.per.as_micros() as i64 / i64::from(self.max.max(1))).max(1)
    }

    fn window_us(self) -> i64 {
        self.per.as_micros() as i64
    }
}

/// The answer for one request, with what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the whole allowance is back.
    pub reset_s: u64,
    /// Seconds to wait before retrying (0 when allowed).
    pub retry_after_s: u64,
}

impl Decision {
    /// From GCRA's state: `used_us` is how far the theoretical arrival time
    /// is ahead of now after this request (or, refused, before it).
    fn from_gcra(quota: Quota, allowed: bool, used_us: i64, retry_us: i64) -> Self {
        let interval = quota.interval_us();
        let free_us = (quota.window_us() - used_us).max(0);
        Self {
            allowed,
            limit: quota.max,
            remaining: u32::try_from(free_us / interval).unwrap_or(u32::MAX).min(quota.max),
            reset_s: ceil_seconds(used_us),
            retry_after_s: if allowed { 0 } else { ceil_seconds(retry_us).max(1) },
        }
    }
}

/// The `RateLimit-Limit`, `-Remaining` and `-Reset` headers of a decision.
pub fn set_headers(headers: &mut axum::http::HeaderMap, decision: &Decision) {
    use axum::http::HeaderValue;
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(decision.reset_s));
}

fn ceil_seconds(us: i64) -> u64 {
    u64::try_from(us.max(0)).unwrap_or(0).div_ceil(1_000_000)
}

/// One GCRA step: the new theoretical arrival time if the request is
/// allowed, else how long until it would be.
fn gcra(tat_us: Option<i64>, now_us: i64, quota: Quota) -> Result<i64, i64> {
    let tat = tat_us.unwrap_or(now_us).max(now_us);
    let new_tat = tat + quota.interval_us();
    let over = new_tat - now_us - quota.window_us();
    if over > 0 { Err(over) } else { Ok(new_tat) }
}

/// The same step in Redis, atomically, on Redis's clock (so nodes with
/// skewed clocks still share one allowance). Returns {allowed, used_us, retry_us}.
const GCRA_SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local over = new_tat - now - window
if over > 0 then
  return {0, tat - now, over}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, new_tat - now, 0}
";

/// Where allowances are kept.
pub enum RateLimiter {
    Memory(Mutex<MemoryCells>),
    Redis {
        connection: redis::aio::ConnectionManager,
        script: redis::Script,
    },
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "RateLimiter::Memory",
            Self::Redis { .. } => "RateLimiter::Redis",
        })
    }
}

/// Theoretical arrival times by key, swept of idle keys now and then so
/// that memory follows the number of active callers.
#[derive(Debug, Default)]
pub struct MemoryCells {
    tats: HashMap<String, i64>,
    checks_since_sweep: u32,
}

const SWEEP_EVERY: u32 = 10_000;

impl RateLimiter {
    pub fn in_memory() -> Self {
        Self::Memory(Mutex::default())
    }

    /// Connects to Redis; fails at start-up rather than at the first request.
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let connection = client.get_connection_manager().await?;
        Ok(Self::Redis {
            connection,
            script: redis::Script::new(GCRA_SCRIPT),
        })
    }

    /// Counts one request against `key`. If Redis cannot be reached the
    /// request is allowed (and the failure logged): an outage of the
    /// limiter's store should not take the API down with it.
    pub async fn check(&self, key: &str, quota: Quota) -> Decision {
        match self {
            Self::Memory(cells) => {
                let now_us = now_us();
                let mut cells = cells.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                cells.checks_since_sweep += 1;
                if cells.checks_since_sweep >= SWEEP_EVERY {
                    cells.checks_since_sweep = 0;
                    cells.tats.retain(|_, tat| *tat > now_us);
                }
                let tat = cells.tats.get(key).copied();
                match gcra(tat, now_us, quota) {
                    Ok(new_tat) => {
                        cells.tats.insert(key.to_owned(), new_tat);
                        Decision::from_gcra(quota, true, new_tat - now_us, 0)
                    }
                    Err(retry_us) => Decision::from_gcra(quota, false, tat.unwrap_or(now_us) - now_us, retry_us),
                }
            }
            Self::Redis { connection, script } => {
                let mut connection = connection.clone();
                let result: redis::RedisResult<(i64, i64, i64)> = script
                    .key(format!("coliseum:rl:{key}"))
                    .arg(quota.interval_us())
                    .arg(quota.window_us())
                    .invoke_async(&mut connection)
                    .await;
                match result {
                    Ok((allowed, used_us, retry_us)) => Decision::from_gcra(quota, allowed == 1, used_us, retry_us),
                    Err(error) => {
                        tracing::warn!(error = %error, "rate limit not checked: Redis failed");
                        Decision::from_gcra(quota, true, 0, 0)
                    }
                }
            }
        }
    }
}

fn now_us() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_allows_a_burst_of_the_quota_then_one_per_interval() {
        let quota = Quota::per_minute(60);
        let mut tat = None;
        for i in 0..60 {
            tat = Some(gcra(tat, 0, quota).unwrap_or_else(|_| panic!("request {i} allowed")));
        }
        let refused = gcra(tat, 0, quota).expect_err("the 61st at once is refused");
        assert_eq!(refused, 1_000_000, "one interval to wait");
        assert!(gcra(tat, 999_999, quota).is_err());
        assert!(gcra(tat, 1_000_000, quota).is_ok(), "one request a second after");
    }

    #[tokio::test]
    async fn decisions_count_down_and_say_when_to_retry() {
        let limiter = RateLimiter::in_memory();
        let quota = Quota::per_minute(3);
        let first = limiter.check("k", quota).await;
        assert_eq!((first.allowed, first.limit, first.remaining), (true, 3, 2));
        assert_eq!(first.reset_s, 20);
        limiter.check("k", quota).await;
        let third = limiter.check("k", quota).await;
        assert_eq!((third.allowed, third.remaining), (true, 0));
        let fourth = limiter.check("k", quota).await;
        assert!(!fourth.allowed);
        assert_eq!(fourth.remaining, 0);
        assert!((19..=20).contains(&fourth.retry_after_s), "{fourth:?}");
        assert!(limiter.check("other", quota).await.allowed, "keys are separate");
    }
}
