//! Sessions: refresh-token exchange, logout, the owner's list and revocation.

use super::super::Audit;
use super::super::{Caller, Error, PageRequest, Paged, RequestContext, Result, Service};
use super::login::Issued;
use crate::domain::session::refresh_expiry;
use crate::domain::AuditKind;
use crate::domain::{RefreshDecision, Session, User};
use crate::store::{RevokeTarget, Revoked};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use uuid::Uuid;

/// A session as its owner sees it.
#[derive(Debug, Clone)]
pub struct SessionView {
    pub session: Session,
    pub current: bool,
}

impl Service {
    /// Exchanges a refresh token for new tokens. See `domain::session` for the rules.
    /// The refresh token of an OAuth authorization is bound to its client: only the
    /// token endpoint takes it.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, token: &str, ctx: &RequestContext) -> Result<Issued> {
        self.rotate_refresh(token, false, ctx).await
    }

    /// The rotation itself (native and OAuth sessions alike); `oauth`: the token endpoint
    /// asks (an OAuth session's refresh token is good only there).
    pub(crate) async fn rotate_refresh(
        &self,
        token: &str,
        oauth: bool,
        ctx: &RequestContext,
    ) -> Result<Issued> {
        let (sid, presented) = self
            .refresh
            .parse(token)
            .ok_or(Error::InvalidRefreshToken)?;
        let grace = self.config.refresh_reuse_grace;
        // One read: the session, its user, and whether it belongs to an OAuth client.
        let (mut session, user, of_a_client) = self
            .store
            .session_with_user(sid)
            .await?
            .ok_or(Error::InvalidRefreshToken)?;
        if of_a_client && !oauth {
            return Err(Error::InvalidRefreshToken);
        }
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
                        Audit::new(AuditKind::RefreshReuseDetected)
                            .user(session.user_id)
                            .ctx(ctx)
                            .details(json!({"session_id": sid, "generation": presented})),
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
            Audit::new(AuditKind::Logout)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"sessions": revoked})),
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
            Audit::new(AuditKind::Logout)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"all": true, "sessions": revoked})),
        )
        .await;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
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

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
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
                    Audit::new(AuditKind::SessionRevoked)
                        .user(caller.user_id)
                        .actor(caller.user_id)
                        .ctx(ctx)
                        .details(json!({"session_id": id})),
                )
                .await;
                Ok(())
            }
            _ => Err(Error::NotFound("session")),
        }
    }
}
