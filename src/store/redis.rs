//! Redis: rate-limit buckets shared by every instance, and revocation fan-out.
//!
//! Redis only ever speeds things up or shares counters; it is never the record of a
//! revocation. Revocations are written to the database first (every instance also polls
//! the database every 250 ms), then published here so other instances apply them in
//! milliseconds. With Redis down, rate limits fall back to this instance's own buckets and
//! revocations travel through the database alone; both recover by themselves when Redis
//! returns (the connection manager reconnects, the subscriber loop resubscribes).

use super::ratelimit::{Decision, Limit, LocalRateLimiter, RateLimiter};
use super::Revoked;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::MultiplexedConnection;
use redis::Script;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// GCRA in one atomic script, on Redis's own clock (so instances' clocks do not matter).
/// Returns {allowed, remaining, reset_ms, retry_after_ms}.
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local tau = interval * (burst - 1)
if tat - now > tau then
  return {0, 0, tat - now, tat - tau - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(new_tat - now, 1))
local remaining = math.floor((now + tau + interval - new_tat) / interval)
return {1, remaining, new_tat - now, 0}
"#;

/// How long any one Redis call may take before it counts as Redis being down. Nothing on a
/// request path ever waits longer than this for Redis.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

async fn bounded<T>(
    f: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    match tokio::time::timeout(CALL_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "Redis call timed out",
        ))),
    }
}

/// One multiplexed connection shared by every caller. Any error or timeout drops it; the
/// next call reconnects, at most once a second while Redis stays away, so callers fall
/// back at once instead of queueing on a dead socket.
pub struct SharedConn {
    client: redis::Client,
    slot: std::sync::Mutex<Option<MultiplexedConnection>>,
    last_failure: std::sync::Mutex<Option<std::time::Instant>>,
}

impl SharedConn {
    /// Connects; fails if Redis does not answer at start (a wrong URL should stop the start).
    pub async fn connect(url: &str) -> anyhow::Result<Arc<Self>> {
        let client = redis::Client::open(url)?;
        let shared = Arc::new(Self {
            client,
            slot: Default::default(),
            last_failure: Default::default(),
        });
        let mut conn = shared
            .get()
            .await
            .map_err(|e| anyhow::anyhow!("{}", start_failure(url, &e)))?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(shared)
    }

    pub fn client(&self) -> redis::Client {
        self.client.clone()
    }

    async fn get(&self) -> redis::RedisResult<MultiplexedConnection> {
        if let Some(c) = self.slot.lock().expect("redis slot lock").clone() {
            return Ok(c);
        }
        let recent = self
            .last_failure
            .lock()
            .expect("redis failure lock")
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1));
        if recent {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis unreachable",
            )));
        }
        match bounded(self.client.get_multiplexed_async_connection()).await {
            Ok(c) => {
                *self.slot.lock().expect("redis slot lock") = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                *self.last_failure.lock().expect("redis failure lock") =
                    Some(std::time::Instant::now());
                Err(e)
            }
        }
    }

    /// Runs one command on the shared connection, bounded by `CALL_TIMEOUT`.
    pub async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = self.get().await?;
        let r = bounded(cmd.query_async(&mut conn)).await;
        if r.is_err() {
            self.broken();
        }
        r
    }

    /// Runs the commands of `pipe` in one round trip (their replies ignored).
    pub async fn run_pipeline(&self, pipe: &redis::Pipeline) -> redis::RedisResult<()> {
        let mut conn = self.get().await?;
        let r = bounded(pipe.query_async::<()>(&mut conn)).await;
        if r.is_err() {
            self.broken();
        }
        r
    }

    async fn run_script<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        let mut conn = self.get().await?;
        let r = bounded(inv.invoke_async(&mut conn)).await;
        if r.is_err() {
            self.broken();
        }
        r
    }

    fn broken(&self) {
        *self.slot.lock().expect("redis slot lock") = None;
        *self.last_failure.lock().expect("redis failure lock") = Some(std::time::Instant::now());
    }
}

/// Why the start stops when Redis cannot be reached; an untrusted TLS certificate says so.
fn start_failure(url: &str, e: &redis::RedisError) -> String {
    let text = e.to_string();
    let tls = url.starts_with("rediss://");
    if tls && (text.contains("certificate") || text.contains("Certificate")) {
        format!(
            "TRADEAUTH_REDIS_URL: Redis's TLS certificate is not trusted ({text}); the trusted CAs are the system's, or the bundle named by SSL_CERT_FILE"
        )
    } else if tls {
        format!("TRADEAUTH_REDIS_URL: Redis does not answer over TLS: {text}")
    } else {
        format!("TRADEAUTH_REDIS_URL: Redis does not answer: {text}")
    }
}

pub struct RedisRateLimiter {
    conn: Arc<SharedConn>,
    prefix: String,
    script: Script,
    /// Used while Redis is unreachable, so limits still apply (per instance).
    fallback: LocalRateLimiter,
}

impl RedisRateLimiter {
    pub fn new(conn: Arc<SharedConn>, prefix: String) -> Self {
        Self {
            conn,
            prefix,
            script: Script::new(GCRA),
            fallback: LocalRateLimiter::default(),
        }
    }
}

fn ceil_secs(ms: i64) -> u64 {
    (ms.max(0) as u64).div_ceil(1000)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn hit(&self, name: &str, key: &str, limit: Limit) -> Decision {
        let interval = (limit.period.as_millis() as i64 / limit.count as i64).max(1);
        let redis_key = format!("{}rl:{name}:{}:{key}", self.prefix, limit);
        let mut invocation = self.script.key(&redis_key);
        invocation.arg(interval).arg(limit.count);
        let result: redis::RedisResult<(i64, i64, i64, i64)> =
            self.conn.run_script(&invocation).await;
        match result {
            Ok((allowed, remaining, reset_ms, retry_ms)) => Decision {
                allowed: allowed == 1,
                limit: limit.count,
                remaining: remaining.max(0) as u32,
                reset_secs: ceil_secs(reset_ms),
                retry_after_secs: if allowed == 1 {
                    0
                } else {
                    ceil_secs(retry_ms).max(1)
                },
            },
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable; rate limit counted on this instance only");
                self.fallback.hit(name, key, limit).await
            }
        }
    }

    fn prune(&self) {
        self.fallback.prune();
    }
}

/// Publishes revocations (and security events) to the other instances.
///
/// The request path only queues a message; a publisher task owns its own connection,
/// reconnects on failure and never makes a caller wait on Redis. Revocations have a queue
/// of their own (events cannot crowd them out), and the publisher sends whatever has
/// queued in one pipeline, so a burst (a logout-all of thousands of sessions) costs a few
/// round trips. A message that finds the queue full is dropped and reported (`publish`
/// answers `false`; the service counts it in `fanout_dropped_total`); a revocation lost
/// that way, or while Redis is away, is caught up from the database within 250 ms.
#[derive(Clone)]
pub struct RevocationBus {
    revocations: tokio::sync::mpsc::Sender<String>,
    events: tokio::sync::mpsc::Sender<String>,
    events_channel: String,
    conn: Arc<SharedConn>,
    channel: String,
}

/// Messages sent in one pipeline at most.
const BATCH: usize = 512;

impl RevocationBus {
    pub fn new(conn: Arc<SharedConn>, prefix: &str) -> Self {
        let channel = format!("{prefix}revocations");
        let events_channel = format!("{prefix}events");
        let (revocations, revocations_rx) = tokio::sync::mpsc::channel::<String>(16_384);
        let (events, events_rx) = tokio::sync::mpsc::channel::<String>(4096);
        tokio::spawn(publisher(revocations_rx, channel.clone(), conn.clone()));
        tokio::spawn(publisher(events_rx, events_channel.clone(), conn.clone()));
        Self {
            revocations,
            events,
            events_channel,
            conn,
            channel,
        }
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// Queues a revocation for the other instances; never waits. `false`: the queue was
    /// full and the message dropped (the database catch-up still carries it).
    pub fn publish(&self, what: Revoked, until: DateTime<Utc>) -> bool {
        self.revocations
            .try_send(format_message(what, until, Utc::now()))
            .is_ok()
    }

    /// Queues a security event for the WebSockets held by other instances. `false`: the
    /// queue was full and the event dropped.
    pub fn publish_event(&self, json: String) -> bool {
        self.events.try_send(json).is_ok()
    }

    pub fn events_channel(&self) -> &str {
        &self.events_channel
    }

    pub async fn ping(&self) -> bool {
        self.conn.run::<String>(redis::cmd("PING")).await.is_ok()
    }
}

/// A revocation as published: `kind:id:until_ms:recorded_ms`.
pub fn format_message(what: Revoked, until: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let (kind, id) = match what {
        Revoked::Jti(id) => ("jti", id),
        Revoked::Sid(id) => ("sid", id),
    };
    format!(
        "{kind}:{id}:{}:{}",
        until.timestamp_millis(),
        at.timestamp_millis()
    )
}

/// Parses a published revocation: what, valid until, recorded at.
pub fn parse_message(msg: &str) -> Option<(Revoked, DateTime<Utc>, DateTime<Utc>)> {
    let mut parts = msg.splitn(4, ':');
    let kind = parts.next()?;
    let id = Uuid::parse_str(parts.next()?).ok()?;
    let until = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
    let at = DateTime::from_timestamp_millis(parts.next()?.parse().ok()?)?;
    let what = match kind {
        "jti" => Revoked::Jti(id),
        "sid" => Revoked::Sid(id),
        _ => return None,
    };
    Some((what, until, at))
}

/// Receives a message from another instance: the channel and the payload.
pub type OnMessage = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How often the subscriber publishes a heartbeat to itself, and how long it waits for any
/// message (a heartbeat or a real one) before it takes the subscription for dead. A NAT,
/// load balancer or failover can drop an idle connection without a reset; the stream
/// would then wait forever, and the heartbeat is what notices.
const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
const SILENCE_LIMIT: Duration = Duration::from_secs(2);
/// How long connecting and subscribing may take before the attempt counts as failed.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Subscribes to `channels` for as long as the process lives, reconnecting with backoff,
/// and resubscribing when the subscription falls silent (see `SILENCE_LIMIT`).
pub fn subscribe(client: redis::Client, channels: Vec<String>, on_message: OnMessage) {
    let heartbeat = format!(
        "{}:heartbeat:{}",
        channels.first().map(String::as_str).unwrap_or("tradeauth"),
        Uuid::new_v4().simple()
    );
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(200);
        loop {
            match subscribe_once(&client, &channels, &heartbeat, &on_message).await {
                Ok(()) => {
                    delay = Duration::from_millis(200);
                    tracing::warn!("Redis subscription lost or silent; resubscribing");
                }
                Err(e) => tracing::warn!(error = %e, "Redis unreachable for the subscription"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    });
}

fn timed_out(what: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, what))
}

/// One subscription: connects, subscribes (bounded), then hands messages on until the
/// stream ends or nothing, not even its own heartbeat, arrives within [`SILENCE_LIMIT`].
/// `Ok` once it had subscribed, `Err` if it never got that far.
async fn subscribe_once(
    client: &redis::Client,
    channels: &[String],
    heartbeat: &str,
    on_message: &OnMessage,
) -> redis::RedisResult<()> {
    use futures::StreamExt;
    let setup = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        pubsub.subscribe(heartbeat).await?;
        let publisher = client.get_multiplexed_async_connection().await?;
        redis::RedisResult::Ok((pubsub, publisher))
    };
    let (mut pubsub, publisher) = tokio::time::timeout(SUBSCRIBE_TIMEOUT, setup)
        .await
        .map_err(|_| timed_out("subscribing timed out"))??;
    // Heartbeats go out on their own connection; a publish that fails or hangs is not an
    // error here: the missing heartbeat is what ends the subscription.
    let beat = {
        let heartbeat = heartbeat.to_string();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let mut conn = publisher.clone();
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(&heartbeat).arg("");
                let _ = bounded(cmd.query_async::<i64>(&mut conn)).await;
            }
        })
    };
    let mut stream = pubsub.on_message();
    loop {
        match tokio::time::timeout(SILENCE_LIMIT, stream.next()).await {
            Ok(Some(msg)) => {
                let channel = msg.get_channel_name();
                if channel == heartbeat {
                    continue;
                }
                if let Ok(text) = msg.get_payload::<String>() {
                    on_message(channel, &text);
                }
            }
            Ok(None) => break,
            Err(_) => {
                tracing::warn!(
                    silent_for = ?SILENCE_LIMIT,
                    "Redis subscription silent (no heartbeat came back); dropping it"
                );
                break;
            }
        }
    }
    beat.abort();
    Ok(())
}

/// Sends what is queued for one channel, as pipelines of up to [`BATCH`] messages.
async fn publisher(
    mut rx: tokio::sync::mpsc::Receiver<String>,
    channel: String,
    conn: Arc<SharedConn>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for msg in batch.drain(..) {
            pipe.cmd("PUBLISH").arg(&channel).arg(msg).ignore();
        }
        if let Err(e) = conn.run_pipeline(&pipe).await {
            tracing::warn!(error = %e, channel = %channel, "could not publish to Redis; revocations are caught up from the database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_published_is_what_is_parsed() {
        let until = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        let at = DateTime::from_timestamp_millis(1_700_000_000_456).unwrap();
        for what in [Revoked::Jti(Uuid::new_v4()), Revoked::Sid(Uuid::new_v4())] {
            assert_eq!(
                parse_message(&format_message(what, until, at)),
                Some((what, until, at))
            );
        }
    }

    #[test]
    fn messages_round_trip() {
        let id = Uuid::new_v4();
        let until = DateTime::from_timestamp_millis(1_800_000_000_123).unwrap();
        let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        assert_eq!(
            parse_message(&format!("sid:{id}:1800000000123:1700000000000")),
            Some((Revoked::Sid(id), until, at))
        );
        assert_eq!(parse_message("nope"), None);
    }
}
