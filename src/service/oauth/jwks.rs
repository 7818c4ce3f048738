//! The public keys of `private_key_jwt` clients: the registered `jwks`, or the set
//! fetched from `jwks_uri` (https, or http on loopback; 5 s timeout; at most 256 KiB; no
//! redirects) and kept for 5 minutes. An assertion naming a `kid` the cached set lacks
//! refetches it, at most every 10 seconds, so a client can rotate its key without waiting.

use crate::domain::fapi::parse_jwks;
use crate::domain::oauth::OAuthClient;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRESH_FOR: Duration = Duration::from_secs(300);
const REFETCH_AFTER: Duration = Duration::from_secs(10);
const MAX_BODY: usize = 256 * 1024;

/// Fetched key sets by URI. A std `Mutex`: held for one map operation, never across a
/// fetch (two concurrent misses may both fetch; the later answer wins).
pub struct JwksCache {
    http: reqwest::Client,
    fetched: Mutex<HashMap<String, (Instant, Vec<Value>)>>,
}

impl JwksCache {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("tradeauth (jwks_uri fetch)")
            .build()?;
        Ok(Self {
            http,
            fetched: Mutex::default(),
        })
    }

    /// The client's keys; `kid`: the key the assertion names, if any. Errors say what
    /// went wrong, for `error_description`.
    pub async fn keys(
        &self,
        client: &OAuthClient,
        kid: Option<&str>,
    ) -> Result<Vec<Value>, String> {
        if let Some(set) = &client.fapi.jwks {
            return Ok(key_list(set));
        }
        let Some(uri) = client.fapi.jwks_uri.as_deref() else {
            return Err("the client has no registered jwks or jwks_uri".into());
        };
        let cached = self
            .fetched
            .lock()
            .expect("jwks cache lock")
            .get(uri)
            .cloned();
        if let Some((at, keys)) = cached {
            let has_kid = kid.is_none_or(|k| {
                keys.iter()
                    .any(|j| j.get("kid").and_then(Value::as_str) == Some(k))
            });
            if at.elapsed() < FRESH_FOR && (has_kid || at.elapsed() < REFETCH_AFTER) {
                return Ok(keys);
            }
        }
        let keys = self.fetch(uri).await?;
        self.fetched
            .lock()
            .expect("jwks cache lock")
            .insert(uri.to_string(), (Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn fetch(&self, uri: &str) -> Result<Vec<Value>, String> {
        let failed = |why: &str| format!("the client's jwks_uri could not be read: {why}");
        let res = self
            .http
            .get(uri)
            .header("accept", "application/json, application/jwk-set+json")
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, uri, "jwks_uri fetch failed");
                failed(if e.is_timeout() {
                    "timed out"
                } else {
                    "no answer"
                })
            })?;
        if !res.status().is_success() {
            return Err(failed(&format!("status {}", res.status().as_u16())));
        }
        if res.content_length().is_some_and(|n| n as usize > MAX_BODY) {
            return Err(failed("the key set is too large"));
        }
        let body = res.bytes().await.map_err(|_| failed("the body was cut"))?;
        if body.len() > MAX_BODY {
            return Err(failed("the key set is too large"));
        }
        let set: Value = serde_json::from_slice(&body).map_err(|_| failed("not JSON"))?;
        let set = parse_jwks(&set).map_err(|e| failed(&e.message))?;
        Ok(key_list(&set))
    }
}

fn key_list(set: &Value) -> Vec<Value> {
    set.get("keys")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}
