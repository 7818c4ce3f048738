//! The use cases: register, login, refresh, logout, password change, sessions, admin.
//! They decide; the HTTP layer above and the store below only translate.
//!
//! Layout:
//! - `error`: the one error enum of the service (its HTTP status is decided in `http/`);
//! - `passwords`: Argon2id on a bounded pool;
//! - `check`: the hot path of a token check (parse → verify → revocation lookup);
//! - `auth`: the account's own use cases; `admin`: tier-4 use cases;
//! - `apikeys`: API keys for bots; `mfa`: TOTP and recovery codes;
//! - `verification`: email verification and password reset by mail;
//! - `gateway`: what the HTTP layer needs besides use cases (readiness, rate-limit
//!   buckets, idempotency claims, live feeds), so it never reaches into the fields;
//! - `keys`: signing-key lifecycle; `bootstrap`: the `ADMIN_EMAIL` account;
//! - `background`: revocation catch-up and pruning loops;
//! - `audit`: writing security events (and publishing them to the other instances);
//! - `paging`: cursor pages (`?cursor=&limit=`) of every list.
//!
//! [`Service`]'s fields are private, but for the store and the token issuer that the
//! API suite inspects: callers above use its methods.

pub mod admin;
pub mod apikeys;
pub mod audit;
pub mod auth;
pub mod background;
pub mod bootstrap;
pub mod check;
pub mod dpop;
pub mod error;
pub mod gateway;
pub mod keys;
pub mod mail_sender;
pub mod mfa;
pub mod oauth;
pub mod paging;
pub mod passkeys;
pub mod passwords;
pub mod signatures;
pub mod verification;
pub mod webauthn;

pub use audit::Audit;
use audit::RemoteEvent;
pub use error::{Error, Result};
pub use gateway::Claim;
pub use paging::{PageRequest, Paged};
// Types of the store that the use cases take or return, so callers need not name the store.
pub use crate::store::ratelimit::{Decision, Limit};
pub use crate::store::{ApiKeyRecord, AuditEvent, AuditQuery, UserQuery};

use crate::config::Config;
use crate::domain::lockout::{LockoutPolicy, LockoutScope};
use crate::domain::{Tier, User, UserId};
use crate::store::revocation::RevocationList;
use crate::store::DynStore;
use crate::tokens::{CsrfSecret, RefreshSecret, Sealer, TokenIssuer};
use chrono::{DateTime, Utc};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Who is calling and from where, as the HTTP layer saw it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a session.
    Session { sid: Uuid, jti: Uuid, exp: i64 },
    /// An API key.
    ApiKey { key_id: Uuid },
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: UserId,
    /// The effective tier of this credential.
    pub tier: Tier,
    pub credential: Credential,
}

impl Caller {
    pub fn session_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Session { sid, .. } => Some(sid),
            Credential::ApiKey { .. } => None,
        }
    }

    /// Refuses API keys where only a session may act (keys, sessions, password, MFA).
    pub fn require_session(&self) -> Result<(Uuid, Uuid, i64)> {
        match self.credential {
            Credential::Session { sid, jti, exp } => Ok((sid, jti, exp)),
            Credential::ApiKey { .. } => Err(Error::ApiKeyNotAllowed),
        }
    }

    pub fn require_tier(&self, min: Tier) -> Result<()> {
        if self.tier >= min {
            Ok(())
        } else {
            Err(Error::InsufficientTier {
                required: min.get(),
            })
        }
    }
}

/// Users read in the last second, so a stream of `/auth/me` calls does not read the
/// database each time. A std `RwLock`: held for one map operation.
#[derive(Default)]
pub struct UserCache {
    map: std::sync::RwLock<std::collections::HashMap<UserId, (User, std::time::Instant)>>,
}

impl UserCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    const SIZE: usize = 65_536;

    fn get(&self, id: UserId) -> Option<User> {
        let map = self.map.read().expect("user cache lock");
        map.get(&id)
            .filter(|(_, at)| at.elapsed() < Self::FRESH)
            .map(|(u, _)| u.clone())
    }

    fn put(&self, user: User) {
        let mut map = self.map.write().expect("user cache lock");
        if map.len() >= Self::SIZE {
            map.clear();
        }
        map.insert(user.id, (user, std::time::Instant::now()));
    }

    /// Drops a user after a change written here.
    pub fn forget(&self, id: UserId) {
        self.map.write().expect("user cache lock").remove(&id);
    }
}

/// Everything the use cases need, built once at start and shared by every request.
pub struct Service {
    /// The settings, read at start.
    config: Arc<Config>,
    /// Users, sessions, keys, events: everything durable. Public for the API suite,
    /// which inspects the store directly; the HTTP layer and the CLI go through the use
    /// cases (no `crate::store` path appears in them).
    pub store: DynStore,
    /// Signs and checks access tokens. Public for the API suite (it reads the keys).
    pub tokens: TokenIssuer,
    /// Issues and reads refresh tokens.
    refresh: RefreshSecret,
    /// Derives the CSRF token of a browser session.
    csrf: CsrfSecret,
    /// Seals the short-lived values the pages round-trip (the sign-in form's second step).
    sealer: Sealer,
    /// Revoked sessions and tokens, in memory for the hot path of a token check.
    revocations: Arc<RevocationList>,
    /// Argon2id on a bounded pool.
    hasher: passwords::Hasher,
    /// The mailer and this instance's side of the durable outbox (`mail_sender`).
    outbox: crate::mail::Outbox,
    /// Publishes revocations to other instances (with Redis); `None` in-process.
    bus: Option<crate::store::redis::RevocationBus>,
    /// Rate-limit buckets (in-process, or shared through Redis).
    limiter: crate::store::ratelimit::DynRateLimiter,
    /// Security events as they are written, for live subscribers (the WebSocket).
    events: broadcast::Sender<AuditEvent>,
    /// This process, to tell its own published events from other instances'.
    instance: Uuid,
    /// Sessions revoked, as they are noticed on this instance (the WebSocket closes them).
    revoked_sessions: broadcast::Sender<Uuid>,
    /// Recently read users, for `/auth/me` (see [`UserCache`]).
    user_cache: UserCache,
    /// This instance's Prometheus metrics.
    metrics: Arc<crate::metrics::Metrics>,
    /// Flips to `true` when the server starts shutting down.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// The keys that sign ID tokens (`oauth::keys`).
    id_keys: oauth::IdKeys,
    /// Signing keys read in the last second (signed requests; see `signatures`).
    signing_keys: signatures::KeyCache,
    /// Accepted signatures, client assertions and DPoP proofs, each accepted once
    /// (in-process, or shared through Redis).
    replay: crate::store::replay::DynReplayCache,
    /// `private_key_jwt` clients' fetched `jwks_uri` key sets.
    client_keys: oauth::jwks::JwksCache,
    /// The WebAuthn relying party; `None` when the RP ID is an IP address (browsers refuse
    /// those, so passkeys are off and their endpoints answer 404).
    webauthn: Option<webauthn::Passkeys>,
    /// Derives the stand-in credential ids a username-first passkey sign-in lists for an
    /// account that does not exist, the same on every instance.
    passkey_decoy_key: Vec<u8>,
}

impl Service {
    pub fn lockout_policy(&self) -> LockoutPolicy {
        let c = &self.config;
        LockoutPolicy {
            threshold: c.lockout_threshold,
            window: c.lockout_window,
            duration: c.lockout_duration,
            scope: c.lockout_scope,
        }
    }

    pub fn lockout_scope(&self) -> LockoutScope {
        self.config.lockout_scope
    }

    /// Until when a revoked session must stay on the revocation list: the longest an
    /// access token issued before `now` can live.
    pub fn sid_revocation_until(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.config.access_ttl + chrono::Duration::seconds(1)
    }

    /// A user read at most `UserCache::FRESH` ago, or from the store. Writes on this instance
    /// invalidate at once; writes elsewhere (another instance, the CLI) show within
    /// `FRESH`.
    pub async fn cached_user(&self, id: UserId) -> Result<Option<User>> {
        if let Some(u) = self.user_cache.get(id) {
            return Ok(Some(u));
        }
        let user = self.store.user_by_id(id).await?;
        if let Some(u) = &user {
            self.user_cache.put(u.clone());
        }
        Ok(user)
    }

    pub async fn user(&self, id: UserId) -> Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or(Error::NotFound("user"))
    }

    /// Revokes sessions durably and on this instance at once.
    pub async fn revoke(&self, target: crate::store::RevokeTarget) -> Result<Vec<Uuid>> {
        let now = Utc::now();
        let until = self.sid_revocation_until(now);
        let ids = self.store.revoke_sessions(target, now, until).await?;
        self.sessions_ended(&ids, until).await;
        Ok(ids)
    }

    /// For a change that ends sessions in its own transaction (a new password, a disable,
    /// a lower tier): which sessions, and how long their revocation records live.
    pub(crate) fn end_sessions(&self, except: Option<Uuid>) -> crate::store::EndSessions {
        let now = Utc::now();
        crate::store::EndSessions {
            except,
            now,
            until: self.sid_revocation_until(now),
        }
    }

    /// After the store ended sessions: this instance refuses them at once, its live
    /// connections hear, and the other instances are told.
    pub(crate) async fn sessions_ended(&self, ids: &[Uuid], until: DateTime<Utc>) {
        for id in ids {
            self.revocations
                .insert(crate::store::Revoked::Sid(*id), until);
            let _ = self.revoked_sessions.send(*id);
            self.publish(crate::store::Revoked::Sid(*id), until).await;
        }
    }

    /// Tells the other instances at once (they would catch up from the store anyway).
    pub async fn publish(&self, what: crate::store::Revoked, until: DateTime<Utc>) {
        if let Some(bus) = &self.bus {
            if !bus.publish(what, until) {
                self.fanout_dropped("revocations");
            }
        }
    }

    /// A message the Redis queue had no room for: counted, and said in the log (once per
    /// thousand, so a burst does not flood it). Revocations still arrive by the database.
    fn fanout_dropped(&self, channel: &str) {
        let counter = self.metrics.fanout_dropped.with_label_values(&[channel]);
        counter.inc();
        if counter.get() % 1000 == 1 {
            tracing::warn!(
                channel,
                dropped = counter.get(),
                "Redis publish queue full; messages dropped (revocations are caught up from the database)"
            );
        }
    }
}

/// Builds the service: hasher, keys, refresh secret, revocation list loaded from the store.
/// `manage_keys`: create missing signing keys (a serving instance, `keys rotate`); other
/// CLI commands only read them.
pub async fn build(
    config: Arc<Config>,
    store: DynStore,
    manage_keys: bool,
) -> anyhow::Result<Arc<Service>> {
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let hasher = passwords::Hasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        config.hash_concurrency,
        metrics.hash_queue.clone(),
    )?;
    let ring = keys::load_or_create(&config, &store, manage_keys).await?;
    let tokens = TokenIssuer::new(ring, config.issuer.clone(), config.audience.clone());
    let id_keys = oauth::IdKeys::load(&config, &store, manage_keys).await?;
    let fresh: [u8; 32] = rand::random();
    let secret = store.secret("refresh_token_mac", &fresh).await?;
    let fresh: [u8; 32] = rand::random();
    let csrf = CsrfSecret::new(&store.secret("csrf_token_mac", &fresh).await?);
    let fresh: [u8; 32] = rand::random();
    let seal_key: [u8; 32] = store
        .secret("page_seal_key", &fresh)
        .await?
        .try_into()
        .map_err(|_| anyhow::anyhow!("the stored page_seal_key is not 32 bytes"))?;
    let sealer = Sealer::new(&seal_key);
    let webauthn = passkeys::relying_party(&config)?;
    let fresh: [u8; 32] = rand::random();
    let passkey_decoy_key = store.secret("passkey_decoy_key", &fresh).await?;
    let revocations = Arc::new(RevocationList::default());
    // In pages, so a start with many revocations never holds them all as rows at once.
    loop {
        let now = Utc::now();
        let rows = store.revocations_since(revocations.last_seq(), now).await?;
        revocations.apply(&rows);
        if rows.len() < crate::store::REVOCATION_PAGE {
            break;
        }
    }
    let (events, _) = broadcast::channel(1024);
    let (revoked_sessions, _) = broadcast::channel(1024);
    let outbox =
        crate::mail::Outbox::new(crate::mail::from_config(&config.mailer, &config.mail_from)?);
    let instance = Uuid::new_v4();
    let mut limiter: crate::store::ratelimit::DynRateLimiter =
        Arc::new(crate::store::ratelimit::LocalRateLimiter::default());
    let mut bus = None;
    let mut replay: crate::store::replay::DynReplayCache =
        Arc::new(crate::store::replay::LocalReplayCache::default());
    if let Some(url) = &config.redis_url {
        use secrecy::ExposeSecret;
        let conn = crate::store::redis::SharedConn::connect(url.expose_secret()).await?;
        let client = conn.client();
        replay = Arc::new(crate::store::replay::RedisReplayCache::new(
            conn.clone(),
            &config.redis_prefix,
        ));
        limiter = Arc::new(crate::store::redis::RedisRateLimiter::new(
            conn.clone(),
            config.redis_prefix.clone(),
        ));
        let b = crate::store::redis::RevocationBus::new(conn, &config.redis_prefix);
        let list = revocations.clone();
        let notify = revoked_sessions.clone();
        let lag = metrics.revocation_lag.clone();
        let events_tx = events.clone();
        let (rev_channel, ev_channel) = (b.channel().to_string(), b.events_channel().to_string());
        crate::store::redis::subscribe(
            client,
            vec![rev_channel.clone(), ev_channel.clone()],
            Arc::new(move |channel, payload| {
                if channel == rev_channel {
                    let Some((what, until, at)) = crate::store::redis::parse_message(payload)
                    else {
                        return;
                    };
                    if !list.contains(&what) {
                        lag.observe((Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0);
                    }
                    list.insert(what, until);
                    if let crate::store::Revoked::Sid(sid) = what {
                        let _ = notify.send(sid);
                    }
                } else if channel == ev_channel {
                    // Events written on another instance, for the WebSockets held here.
                    if let Ok(m) = serde_json::from_str::<RemoteEvent>(payload) {
                        if m.origin != instance {
                            let _ = events_tx.send(m.event);
                        }
                    }
                }
            }),
        );
        bus = Some(b);
    }
    Ok(Arc::new(Service {
        config,
        store,
        tokens,
        refresh: RefreshSecret::new(&secret),
        csrf,
        sealer,
        revocations,
        hasher,
        limiter,
        bus,
        outbox,
        events,
        revoked_sessions,
        instance,
        shutdown: tokio::sync::watch::Sender::new(false),
        metrics,
        user_cache: UserCache::default(),
        id_keys,
        signing_keys: signatures::KeyCache::default(),
        replay,
        client_keys: oauth::jwks::JwksCache::new()?,
        webauthn,
        passkey_decoy_key,
    }))
}
