//! Rate-limit buckets: the shared-state trait and its in-process implementation (GCRA,
//! via `governor`). A bucket holds its per-period count (burst = limit) and refills
//! evenly. Buckets are the only state allowed to reset on restart.

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::Quota;

type Keyed = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `count` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    pub count: u32,
    pub period: Duration,
}

impl Limit {
    /// Parses `10/min`, `5/hour`, `300/minute`, `2/sec`, `100/day`.
    pub fn parse(s: &str) -> Option<Self> {
        let (n, unit) = s.trim().split_once('/')?;
        let count: u32 = n.trim().parse().ok().filter(|n| *n > 0)?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            "d" | "day" => 86_400,
            _ => return None,
        };
        Some(Self {
            count,
            period: Duration::from_secs(secs),
        })
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "sec",
            60 => "min",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

/// The outcome of one hit on one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until the next request will be allowed (0 when allowed).
    pub retry_after_secs: u64,
}

#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request against `key` in the bucket family `name` limited to `limit`.
    async fn hit(&self, name: &str, key: &str, limit: Limit) -> Decision;
    /// Drops state of idle buckets.
    fn prune(&self) {}
}

pub type DynRateLimiter = Arc<dyn RateLimiter>;

fn ceil_secs(d: Duration) -> u64 {
    let s = d.as_secs();
    if d.subsec_nanos() > 0 {
        s + 1
    } else {
        s
    }
}

/// One instance's buckets, in memory.
#[derive(Default)]
pub struct LocalRateLimiter {
    /// One keyed limiter per (family, limit); a std Mutex, held only to find the limiter.
    limiters: Mutex<HashMap<(String, Limit), Arc<Keyed>>>,
}

impl LocalRateLimiter {
    fn limiter(&self, name: &str, limit: Limit) -> Arc<Keyed> {
        let mut map = self.limiters.lock().expect("rate limiter lock poisoned");
        map.entry((name.to_string(), limit))
            .or_insert_with(|| {
                let burst = NonZeroU32::new(limit.count).expect("limits are positive");
                let quota = Quota::with_period(limit.period / limit.count)
                    .expect("period is positive")
                    .allow_burst(burst);
                Arc::new(
                    governor::RateLimiter::keyed(quota)
                        .with_middleware::<StateInformationMiddleware>(),
                )
            })
            .clone()
    }
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn hit(&self, name: &str, key: &str, limit: Limit) -> Decision {
        let limiter = self.limiter(name, limit);
        let per_token = limit.period / limit.count;
        match limiter.check_key(&key.to_string()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    limit: limit.count,
                    remaining,
                    reset_secs: ceil_secs(per_token * (limit.count - remaining)),
                    retry_after_secs: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision {
                    allowed: false,
                    limit: limit.count,
                    remaining: 0,
                    reset_secs: ceil_secs(per_token * limit.count).max(1),
                    retry_after_secs: ceil_secs(wait).max(1),
                }
            }
        }
    }

    fn prune(&self) {
        for limiter in self
            .limiters
            .lock()
            .expect("rate limiter lock poisoned")
            .values()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(
            Limit::parse("10/min"),
            Some(Limit {
                count: 10,
                period: Duration::from_secs(60)
            })
        );
        assert_eq!(Limit::parse("5/hour").unwrap().to_string(), "5/hour");
        assert_eq!(Limit::parse("0/min"), None);
        assert_eq!(Limit::parse("ten/min"), None);
    }

    #[tokio::test]
    async fn a_bucket_holds_its_count_then_refuses() {
        let l = LocalRateLimiter::default();
        let limit = Limit::parse("3/min").unwrap();
        for left in [2, 1, 0] {
            let d = l.hit("t", "k", limit).await;
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.hit("t", "k", limit).await;
        assert!(!d.allowed);
        assert!((19..=20).contains(&d.retry_after_secs), "{d:?}");
        assert!(l.hit("t", "other", limit).await.allowed);
    }
}
