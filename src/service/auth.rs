//! The account's own use cases: register, login, refresh, logout, profile, password,
//! sessions and security events.

use super::{Caller, Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::domain::lockout::{counter_key, AttemptSlot};
use crate::domain::password::{self, PolicyInput};
use crate::domain::session::refresh_expiry;
use crate::domain::{Email, FullName, RefreshDecision, Session, Tier, User, UserId, Username};
use crate::store::{AuditEvent, AuditQuery, NewUser, RevokeTarget, Revoked, StoreError, UserPatch};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// A registration or admin-created account, as received.
#[derive(Debug)]
pub struct NewAccount {
    pub email: String,
    pub password: SecretString,
    pub username: Option<String>,
    pub full_name: Option<String>,
}

#[derive(Debug)]
pub struct LoginInput {
    /// A username or an email.
    pub identifier: String,
    pub password: SecretString,
    pub remember_me: bool,
    /// A TOTP code, for accounts with TOTP on.
    pub totp_code: Option<String>,
    /// A single-use recovery code, instead of a TOTP code.
    pub recovery_code: Option<String>,
}

/// Tokens handed out by login and refresh. No `Debug`: it holds both tokens.
#[derive(Clone)]
pub struct Issued {
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub session_id: Uuid,
    pub user: User,
}

/// A failed login attempt, already counted against `key`.
/// A reserved login attempt (`domain::lockout`). A verdict ends it (`fail_attempt`,
/// `succeed_attempt`); a login that ends without one, by an error or because the client
/// hung up and the request was dropped, releases it here, so it never holds a slot.
struct Reservation {
    store: crate::store::DynStore,
    key: String,
    /// A verdict, or an explicit release, is being recorded. Set before the statement
    /// runs: should the request be dropped mid-statement, a second release would free
    /// another attempt's slot, while a lost one only holds a slot until it expires.
    settled: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (store, key) = (self.store.clone(), std::mem::take(&mut self.key));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release_attempt(&key).await {
                    tracing::warn!(error = %e, "could not release a login attempt");
                }
            });
        }
    }
}

struct Failure<'a> {
    key: &'a str,
    user: Option<UserId>,
}

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

fn collect<T>(
    r: std::result::Result<T, crate::domain::FieldError>,
    d: &mut BTreeMap<String, String>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            d.insert(e.field.to_string(), e.message);
            None
        }
    }
}

impl Service {
    fn check_policy(
        &self,
        password: &SecretString,
        email: &Email,
        username: &Username,
    ) -> Result<()> {
        password::check(
            password.expose_secret(),
            &PolicyInput {
                email_local_part: Some(email.local_part()),
                username: Some(username.as_str()),
            },
        )
        .map_err(|e| Error::WeakPassword {
            details: e.details("password"),
        })
    }

    /// Creates an account (registration, admin creation, the CLI). The password policy
    /// applies unless `check_policy` is false (the bootstrap admin).
    pub async fn create_account(
        &self,
        input: NewAccount,
        tier: Tier,
        is_verified: bool,
        is_bootstrap: bool,
        check_policy: bool,
    ) -> Result<User> {
        let mut details = BTreeMap::new();
        let email = collect(Email::parse(&input.email), &mut details);
        let username = match &input.username {
            Some(u) => collect(Username::parse(u), &mut details),
            None => None,
        };
        let full_name = match &input.full_name {
            Some(f) => collect(FullName::parse(f), &mut details),
            None => None,
        };
        if input.password.expose_secret().is_empty() {
            details.insert("password".into(), "password is required".into());
        }
        let Some(email) = email else {
            return Err(Error::fields(details));
        };
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let explicit = username.is_some();
        let base = username.unwrap_or_else(|| Username::derive_from(&email));
        if check_policy {
            self.check_policy(&input.password, &email, &base)?;
        }
        let hash = self.hasher.hash(&input.password).await?;
        let mut candidate = base.clone();
        let mut n = 0u32;
        loop {
            if !explicit && self.store.username_taken(&candidate).await? {
                n += 1;
                candidate = base.with_suffix(n);
                continue;
            }
            let new = NewUser {
                id: UserId::new(),
                email: email.clone(),
                username: candidate.clone(),
                full_name: full_name.clone().filter(|f| !f.as_str().is_empty()),
                password_hash: hash.clone(),
                tier,
                is_verified,
                is_bootstrap,
                created_at: Utc::now(),
            };
            match self.store.insert_user(&new).await {
                Ok(user) => return Ok(user),
                // A derived username taken between the check and the insert: next number.
                Err(StoreError::Conflict("username")) if !explicit => {
                    n += 1;
                    candidate = base.with_suffix(n);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: NewAccount, ctx: &RequestContext) -> Result<(User, bool)> {
        if !self.config.registration_open {
            return Err(Error::RegistrationClosed);
        }
        let user = self
            .create_account(input, self.config.default_tier, false, false, true)
            .await?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        self.audit(
            "user.registered",
            Some(user.id),
            Some(user.id),
            Some(ctx),
            json!({}),
        )
        .await;
        // A verification mail goes out at every registration; a failure to queue it does
        // not undo the registration (the user can ask for another).
        if let Err(e) = self.send_verification(&user).await {
            tracing::error!(error = %e, "could not issue a verification mail");
        }
        Ok((user, self.config.require_email_verification))
    }

    #[tracing::instrument(skip_all)]
    pub async fn login(&self, input: LoginInput, ctx: &RequestContext) -> Result<Issued> {
        let ident = input.identifier.trim();
        let mut details = BTreeMap::new();
        if ident.is_empty() {
            details.insert("username".into(), "username or email is required".into());
        }
        if input.password.expose_secret().is_empty() {
            details.insert("password".into(), "password is required".into());
        }
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let user = self.store.user_by_login(ident).await?;
        let user_key = user.as_ref().map(|u| u.id.to_string());
        let key = counter_key(self.lockout_scope(), user_key.as_deref(), ident, ctx.ip);
        let policy = self.lockout_policy();
        // The attempt is reserved before the password is evaluated, so however many
        // guesses arrive at once, no more reach the hash than failures are still allowed.
        // One beyond that waits for an attempt in flight to end (`domain::lockout`).
        let waiting = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(5);
        let now = loop {
            let now = Utc::now();
            match self.store.reserve_attempt(&key, now, &policy).await? {
                AttemptSlot::Allowed => break now,
                AttemptSlot::Locked { until } => {
                    return Err(self.refused_locked(&user, until, ctx).await)
                }
                AttemptSlot::Busy if waiting.elapsed() < std::time::Duration::from_secs(10) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(100));
                }
                AttemptSlot::Busy => {
                    self.metrics.login("rate_limited");
                    return Err(Error::RateLimited { retry_after: 1 });
                }
            }
        };
        let mut attempt = Reservation {
            store: self.store.clone(),
            key,
            settled: false,
        };
        let result = self.finish_login(input, user, &mut attempt, now, ctx).await;
        self.metrics.login(match &result {
            Ok(_) => "succeeded",
            Err(e) => e.code(),
        });
        result
    }

    /// The answer to an attempt on a locked counter: no password is evaluated.
    async fn refused_locked(
        &self,
        user: &Option<User>,
        until: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Error {
        let uid = user.as_ref().map(|u| u.id);
        self.audit(
            "login.failed",
            uid,
            None,
            Some(ctx),
            json!({"reason": "account_locked"}),
        )
        .await;
        self.metrics.login("account_locked");
        Error::AccountLocked {
            locked_until: until,
        }
    }

    async fn finish_login(
        &self,
        input: LoginInput,
        user: Option<User>,
        attempt: &mut Reservation,
        now: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let key = attempt.key.clone();
        let stored = match &user {
            Some(u) => self.store.password_hash(u.id).await?,
            None => None,
        };
        let verified = self
            .hasher
            .verify(&input.password, stored.as_deref())
            .await?;
        let uid = user.as_ref().map(|u| u.id);
        let Some(user) = user.filter(|_| verified.ok) else {
            let failure = Failure {
                key: &key,
                user: uid,
            };
            attempt.settled = true;
            self.login_failed(failure, "invalid_credentials", ctx)
                .await?;
            return Err(Error::InvalidCredentials);
        };
        if !user.is_active {
            // The password was right: not a failure.
            attempt.settled = true;
            self.store.succeed_attempt(&key, now).await?;
            self.audit(
                "login.failed",
                Some(user.id),
                None,
                Some(ctx),
                json!({"reason": "account_disabled"}),
            )
            .await;
            return Err(Error::AccountDisabled);
        }
        if self.config.require_email_verification && !user.is_verified {
            attempt.settled = true;
            self.store.succeed_attempt(&key, now).await?;
            self.audit(
                "login.failed",
                Some(user.id),
                None,
                Some(ctx),
                json!({"reason": "email_not_verified"}),
            )
            .await;
            return Err(Error::EmailNotVerified);
        }
        if user.mfa_enabled {
            let totp = input.totp_code.as_deref().filter(|c| !c.trim().is_empty());
            let recovery = input
                .recovery_code
                .as_deref()
                .filter(|c| !c.trim().is_empty());
            if totp.is_none() && recovery.is_none() {
                // Asking for the second factor is not a failure.
                attempt.settled = true;
                self.store.release_attempt(&key).await?;
                return Err(Error::MfaRequired);
            }
            if !self.second_factor_ok(&user, totp, recovery).await? {
                let failure = Failure {
                    key: &key,
                    user: Some(user.id),
                };
                attempt.settled = true;
                self.login_failed(failure, "invalid_mfa_code", ctx).await?;
                return Err(Error::InvalidMfaCode { at_login: true });
            }
        }
        // Password (and second factor) right: the count starts over.
        attempt.settled = true;
        self.store.succeed_attempt(&key, now).await?;
        if verified.needs_rehash {
            match self.hasher.hash(&input.password).await {
                Ok(h) => self.store.set_password_hash(user.id, &h).await?,
                Err(e) => tracing::warn!(error = %e, "rehash failed"),
            }
        }
        let issued = self.start_session(user, input.remember_me, ctx).await?;
        self.audit(
            "login.succeeded",
            Some(issued.user.id),
            Some(issued.user.id),
            Some(ctx),
            json!({"session_id": issued.session_id}),
        )
        .await;
        Ok(issued)
    }

    /// Records a failed attempt: the count, the audit event, and the lock when this failure
    /// reached the threshold.
    async fn login_failed(&self, f: Failure<'_>, reason: &str, ctx: &RequestContext) -> Result<()> {
        self.audit(
            "login.failed",
            f.user,
            None,
            Some(ctx),
            json!({"reason": reason}),
        )
        .await;
        let policy = self.lockout_policy();
        if let Some(until) = self.store.fail_attempt(f.key, Utc::now(), &policy).await? {
            self.metrics.lockouts.inc();
            self.audit(
                "account.locked",
                f.user,
                None,
                Some(ctx),
                json!({"locked_until": until}),
            )
            .await;
        }
        Ok(())
    }

    fn refresh_lifetime(&self, remember_me: bool) -> Duration {
        if remember_me {
            self.config.remember_me_ttl
        } else {
            self.config.refresh_ttl
        }
    }

    async fn start_session(
        &self,
        mut user: User,
        remember_me: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let now = Utc::now();
        let absolute = now + self.config.session_max_age;
        let session = Session {
            id: Uuid::now_v7(),
            user_id: user.id,
            generation: 0,
            remember_me,
            created_at: now,
            last_used_at: now,
            rotated_at: None,
            refresh_expires_at: refresh_expiry(now, self.refresh_lifetime(remember_me), absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
            ip: Some(ctx.ip.to_string()),
            user_agent: ctx.user_agent.clone(),
        };
        self.store.insert_session(&session).await?;
        self.store.record_login(user.id, now).await?;
        self.user_cache.forget(user.id);
        user.last_login_at = Some(now);
        self.issue(user, &session, now)
    }

    fn issue(&self, user: User, session: &Session, now: DateTime<Utc>) -> Result<Issued> {
        let exp = now + self.config.access_ttl;
        let (access_token, _) = self
            .tokens
            .sign(user.id.0, session.id, user.tier, now, exp)?;
        Ok(Issued {
            access_token,
            access_expires_at: DateTime::from_timestamp(exp.timestamp(), 0).unwrap_or(exp),
            expires_in: exp.timestamp() - now.timestamp(),
            refresh_token: self.refresh.issue(session.id, session.generation),
            refresh_expires_at: session.refresh_expires_at,
            session_id: session.id,
            user,
        })
    }

    /// Exchanges a refresh token for new tokens. See `domain::session` for the rules.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str, ctx: &RequestContext) -> Result<Issued> {
        let (sid, presented) = self
            .refresh
            .parse(token)
            .ok_or(Error::InvalidRefreshToken)?;
        let grace = self.config.refresh_reuse_grace;
        let (mut session, user) = self
            .store
            .session_with_user(sid)
            .await?
            .ok_or(Error::InvalidRefreshToken)?;
        // Two passes at most: if another refresh wins the rotation race, the second pass
        // sees its result and takes the grace path, handing out the token it issued.
        for pass in 0..2 {
            let now = Utc::now();
            let mut decision = session.state().decide(presented, now, grace);
            // Lost the rotation race a moment ago: the winner's token is the answer,
            // however short the grace window.
            if pass == 1
                && decision == RefreshDecision::Reuse
                && presented == session.generation - 1
            {
                decision = RefreshDecision::GraceRetry;
            }
            match decision {
                RefreshDecision::Invalid => return Err(Error::InvalidRefreshToken),
                RefreshDecision::Reuse => {
                    self.metrics.refresh_reuse.inc();
                    self.revoke(RevokeTarget::Session(sid)).await?;
                    self.audit(
                        "refresh.reuse_detected",
                        Some(session.user_id),
                        None,
                        Some(ctx),
                        json!({"session_id": sid, "generation": presented}),
                    )
                    .await;
                    return Err(Error::RefreshTokenReused);
                }
                RefreshDecision::GraceRetry => return self.issue_for_session(user, session, now),
                RefreshDecision::Current if !self.config.refresh_rotation => {
                    self.store.touch_session(sid, now).await?;
                    return self.issue_for_session(user, session, now);
                }
                RefreshDecision::Current => {
                    let lifetime = self.refresh_lifetime(session.remember_me);
                    let expires = refresh_expiry(now, lifetime, session.absolute_expires_at);
                    if self
                        .store
                        .rotate_session(sid, presented, now, expires)
                        .await?
                    {
                        session.generation += 1;
                        session.rotated_at = Some(now);
                        session.refresh_expires_at = expires;
                        return self.issue_for_session(user, session, now);
                    }
                    session = self
                        .store
                        .session(sid)
                        .await?
                        .ok_or(Error::InvalidRefreshToken)?;
                }
            }
        }
        Err(Error::InvalidRefreshToken)
    }

    fn issue_for_session(
        &self,
        user: User,
        session: Session,
        now: DateTime<Utc>,
    ) -> Result<Issued> {
        if !user.is_active {
            return Err(Error::AccountDisabled);
        }
        self.issue(user, &session, now)
    }

    /// Blocks the presented access token until its `exp` and revokes its session (and the
    /// given refresh token's session, if it is the caller's).
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn logout(
        &self,
        caller: &Caller,
        refresh_token: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (sid, jti, exp) = caller.require_session()?;
        self.block_token(jti, exp).await?;
        let mut revoked = self.revoke(RevokeTarget::Session(sid)).await?;
        if let Some((other, _)) = refresh_token.and_then(|t| self.refresh.parse(t)) {
            if other != sid {
                if let Some(s) = self.store.session(other).await? {
                    if s.user_id == caller.user_id {
                        revoked.extend(self.revoke(RevokeTarget::Session(other)).await?);
                    }
                }
            }
        }
        self.audit(
            "logout",
            Some(caller.user_id),
            Some(caller.user_id),
            Some(ctx),
            json!({"sessions": revoked}),
        )
        .await;
        Ok(())
    }

    async fn block_token(&self, jti: Uuid, exp: i64) -> Result<()> {
        let until =
            DateTime::from_timestamp(exp, 0).unwrap_or_else(Utc::now) + Duration::seconds(1);
        self.store.revoke_jti(jti, until).await?;
        self.revocations.insert(Revoked::Jti(jti), until);
        self.publish(Revoked::Jti(jti), until).await;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn logout_all(&self, caller: &Caller, ctx: &RequestContext) -> Result<()> {
        let (_, jti, exp) = caller.require_session()?;
        self.block_token(jti, exp).await?;
        let revoked = self
            .revoke(RevokeTarget::User {
                user: caller.user_id,
                except: None,
            })
            .await?;
        self.audit(
            "logout",
            Some(caller.user_id),
            Some(caller.user_id),
            Some(ctx),
            json!({"all": true, "sessions": revoked}),
        )
        .await;
        Ok(())
    }

    /// The caller's user object.
    pub async fn me(&self, caller: &Caller) -> Result<User> {
        let user = self
            .cached_user(caller.user_id)
            .await?
            .ok_or(Error::InvalidToken)?;
        if !user.is_active {
            return Err(Error::AccountDisabled);
        }
        Ok(user)
    }

    pub async fn update_me(
        &self,
        caller: &Caller,
        username: Option<String>,
        full_name: Option<Option<String>>,
        ctx: &RequestContext,
    ) -> Result<User> {
        caller.require_session()?;
        let mut details = BTreeMap::new();
        let username = username.and_then(|u| collect(Username::parse(&u), &mut details));
        let full_name = match full_name {
            Some(Some(f)) => collect(FullName::parse(&f), &mut details)
                .map(|f| Some(f).filter(|f| !f.as_str().is_empty())),
            Some(None) => Some(None),
            None => None,
        };
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let changed: Vec<&str> = [
            username.as_ref().map(|_| "username"),
            full_name.as_ref().map(|_| "full_name"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let patch = UserPatch {
            username,
            full_name,
            ..Default::default()
        };
        let user = self
            .store
            .update_user(caller.user_id, &patch)
            .await?
            .ok_or(Error::InvalidToken)?;
        self.user_cache.forget(user.id);
        if !changed.is_empty() {
            self.audit(
                "user.updated",
                Some(user.id),
                Some(user.id),
                Some(ctx),
                json!({"fields": changed}),
            )
            .await;
        }
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: SecretString,
        new: SecretString,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (sid, _, _) = caller.require_session()?;
        let mut details = BTreeMap::new();
        if current.expose_secret().is_empty() {
            details.insert(
                "current_password".into(),
                "current_password is required".into(),
            );
        }
        if new.expose_secret().is_empty() {
            details.insert("new_password".into(), "new_password is required".into());
        }
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let user = self.me(caller).await?;
        let stored = self.store.password_hash(user.id).await?;
        if !self.hasher.verify(&current, stored.as_deref()).await?.ok {
            return Err(Error::InvalidPassword);
        }
        self.check_policy(&new, &user.email, &user.username)
            .map_err(|e| match e {
                Error::WeakPassword { details } => Error::WeakPassword {
                    details: details
                        .into_values()
                        .map(|v| ("new_password".to_string(), v))
                        .collect(),
                },
                other => other,
            })?;
        let hash = self.hasher.hash(&new).await?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.revoke(RevokeTarget::User {
            user: user.id,
            except: Some(sid),
        })
        .await?;
        self.audit(
            "password.changed",
            Some(user.id),
            Some(user.id),
            Some(ctx),
            json!({}),
        )
        .await;
        Ok(())
    }

    pub async fn list_sessions(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Paged<SessionView>> {
        let (sid, _, _) = caller.require_session()?;
        let rows = self
            .store
            .list_sessions(caller.user_id, Utc::now(), page.store_page())
            .await?;
        let paged = page.finish(rows, |s| s.id);
        Ok(Paged {
            items: paged
                .items
                .into_iter()
                .map(|session| SessionView {
                    current: session.id == sid,
                    session,
                })
                .collect(),
            next_cursor: paged.next_cursor,
        })
    }

    pub async fn revoke_own_session(
        &self,
        caller: &Caller,
        id: Uuid,
        ctx: &RequestContext,
    ) -> Result<()> {
        caller.require_session()?;
        match self.store.session(id).await? {
            Some(s) if s.user_id == caller.user_id && s.revoked_at.is_none() => {
                self.revoke(RevokeTarget::Session(id)).await?;
                self.audit(
                    "session.revoked",
                    Some(caller.user_id),
                    Some(caller.user_id),
                    Some(ctx),
                    json!({"session_id": id}),
                )
                .await;
                Ok(())
            }
            _ => Err(Error::NotFound("session")),
        }
    }

    pub async fn own_events(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Paged<AuditEvent>> {
        let q = AuditQuery {
            user_id: Some(caller.user_id),
            ..Default::default()
        };
        let rows = self.store.list_events(&q, page.store_page()).await?;
        Ok(page.finish(rows, |e| e.id))
    }
}
