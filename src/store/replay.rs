//! The replay cache of signed requests (API.md "Signed requests"): one atomic
//! set-if-absent per accepted signature, kept for the rest of the signature's window.
//!
//! Two implementations: [`LocalReplayCache`] (one process; the default, and what SQLite
//! deployments use) and [`RedisReplayCache`] (`SET key 1 NX PX ttl`, shared by every
//! instance). The Redis one fails closed: when Redis cannot answer, the caller gets
//! [`StoreError::Unavailable`] and the request is refused with 503 — a signature is never
//! accepted without its one recorded use. It must not decide anything else: which
//! signatures reach it (only verified ones) is the service's rule.

use super::redis::SharedConn;
use super::{StoreError, StoreResult};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Records the first use of a signature.
#[async_trait]
pub trait ReplayCache: Send + Sync {
    /// `true` if `key` was not seen within its lifetime (and now is, for `ttl`); `false` for
    /// a replay. One atomic operation: of two concurrent calls with one key, one wins.
    async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> StoreResult<bool>;
}

pub type DynReplayCache = Arc<dyn ReplayCache>;

/// In-process: a map from key to expiry. A std `Mutex`, because nothing async happens
/// while it is held; expired entries are swept when the map has grown past the last
/// sweep's size, so the map stays proportional to the live entries.
#[derive(Default)]
pub struct LocalReplayCache {
    inner: Mutex<Local>,
}

#[derive(Default)]
struct Local {
    seen: HashMap<[u8; 32], Instant>,
    /// The map's size after the last sweep; the next sweep runs at twice that (≥ 1024).
    swept_at: usize,
}

#[async_trait]
impl ReplayCache for LocalReplayCache {
    async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> StoreResult<bool> {
        let now = Instant::now();
        let mut local = self.inner.lock().expect("replay cache lock");
        if local.seen.len() >= (local.swept_at * 2).max(1024) {
            local.seen.retain(|_, until| *until > now);
            local.swept_at = local.seen.len();
        }
        match local.seen.get(key) {
            Some(until) if *until > now => Ok(false),
            _ => {
                local.seen.insert(*key, now + ttl);
                Ok(true)
            }
        }
    }
}

/// Shared through Redis: `SET {prefix}rp:{hex key} 1 NX PX {ttl}`.
pub struct RedisReplayCache {
    conn: Arc<SharedConn>,
    prefix: String,
}

impl RedisReplayCache {
    pub fn new(conn: Arc<SharedConn>, prefix: &str) -> Self {
        Self {
            conn,
            prefix: format!("{prefix}rp:"),
        }
    }
}

#[async_trait]
impl ReplayCache for RedisReplayCache {
    async fn first_use(&self, key: &[u8; 32], ttl: Duration) -> StoreResult<bool> {
        let mut name = String::with_capacity(self.prefix.len() + 64);
        name.push_str(&self.prefix);
        for b in key {
            name.push_str(&format!("{b:02x}"));
        }
        let mut cmd = redis::cmd("SET");
        cmd.arg(name)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64);
        // `OK` when set, nil when the key existed.
        let set: Option<String> = self
            .conn
            .run(cmd)
            .await
            .map_err(|e| StoreError::Unavailable(format!("redis: {e}")))?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_cache_answers_once_per_key_until_it_expires() {
        let cache = LocalReplayCache::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let ttl = Duration::from_millis(50);
        assert!(cache.first_use(&a, ttl).await.unwrap());
        assert!(!cache.first_use(&a, ttl).await.unwrap(), "a replay");
        assert!(cache.first_use(&b, ttl).await.unwrap(), "another key");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(
            cache.first_use(&a, ttl).await.unwrap(),
            "expired entries go"
        );
    }

    #[tokio::test]
    async fn the_local_cache_sweeps_expired_entries() {
        let cache = LocalReplayCache::default();
        for i in 0..2000u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            cache.first_use(&k, Duration::ZERO).await.unwrap();
        }
        assert!(cache.inner.lock().unwrap().seen.len() < 1100);
    }
}
