//! Tier-4 use cases: user management, unlock, session revocation, the audit log, key
//! rotation. The HTTP layer checks the tier; these check the business rules (the last
//! active admin cannot be disabled, demoted or deleted).

use super::auth::NewAccount;
use super::Audit;
use super::{Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::domain::AuditKind;
use crate::domain::{FullName, Tier, User, UserId};
use crate::store::{AuditEvent, AuditQuery, LockoutState, RevokeTarget, UserPatch, UserQuery};
use chrono::Utc;
use serde_json::json;

/// A user with the lockout state admins see.
#[derive(Debug, Clone)]
pub struct AdminUser {
    pub user: User,
    pub lockout: LockoutState,
}

/// The admin PATCH body, parsed.
#[derive(Debug, Default)]
pub struct AdminPatch {
    pub permission_tier: Option<Tier>,
    pub is_active: Option<bool>,
    pub is_verified: Option<bool>,
    pub full_name: Option<Option<String>>,
}

fn user_key(id: UserId) -> String {
    format!("user:{id}")
}

impl Service {
    async fn with_lockout(&self, user: User) -> Result<AdminUser> {
        let lockout = self
            .store
            .lockout_state(&user_key(user.id), Utc::now(), self.lockout_policy().window)
            .await?;
        Ok(AdminUser { user, lockout })
    }

    #[tracing::instrument(skip_all)]
    pub async fn admin_list_users(
        &self,
        q: UserQuery,
        page: PageRequest,
    ) -> Result<Paged<AdminUser>> {
        let rows = self.store.list_users(&q, page.store_page()).await?;
        let paged = page.finish(rows, |u| u.id.0);
        let mut items = Vec::with_capacity(paged.items.len());
        for u in paged.items {
            items.push(self.with_lockout(u).await?);
        }
        Ok(Paged {
            items,
            next_cursor: paged.next_cursor,
        })
    }

    #[tracing::instrument(skip_all)]
    pub async fn admin_create_user(
        &self,
        actor: Option<UserId>,
        input: NewAccount,
        tier: Option<Tier>,
        is_verified: bool,
        ctx: Option<&RequestContext>,
    ) -> Result<User> {
        let tier = tier.unwrap_or(self.config.default_tier);
        let user = self
            .create_account(input, tier, is_verified, false, true)
            .await?;
        self.audit(
            Audit::new(AuditKind::UserRegistered)
                .user(user.id)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"by_admin": true, "permission_tier": tier.get()})),
        )
        .await;
        Ok(user)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_get_user(&self, id: UserId) -> Result<AdminUser> {
        let user = self.user(id).await?;
        self.with_lockout(user).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_patch_user(
        &self,
        actor: Option<UserId>,
        id: UserId,
        patch: AdminPatch,
        ctx: Option<&RequestContext>,
    ) -> Result<AdminUser> {
        let before = self.user(id).await?;
        let full_name = match patch.full_name {
            Some(Some(f)) => Some(Some(FullName::parse(&f)?).filter(|f| !f.as_str().is_empty())),
            Some(None) => Some(None),
            None => None,
        };
        let new_tier = patch.permission_tier.unwrap_or(before.tier);
        let new_active = patch.is_active.unwrap_or(before.is_active);
        let removes_an_admin = before.tier == Tier::ADMIN
            && before.is_active
            && !(new_tier == Tier::ADMIN && new_active);
        let store_patch = UserPatch {
            keep_an_admin: removes_an_admin,
            tier: patch.permission_tier,
            is_active: patch.is_active,
            is_verified: patch.is_verified,
            full_name,
            // Disabling or lowering a tier takes effect at once: every session dies in the
            // change's own transaction, so every access token carrying one is refused on
            // the next check. Raising a tier waits for the next refresh.
            end_sessions: Some(self.end_sessions(None)),
            ..Default::default()
        };
        let (after, ended) = self
            .store
            .update_user(id, &store_patch)
            .await?
            .ok_or(Error::NotFound("user"))?;
        self.user_cache.forget(id);
        if let Some(end) = store_patch.end_sessions {
            self.sessions_ended(&ended, end.until).await;
        }
        // What was exchanged from the user's API keys ends with their sessions.
        if (before.is_active && !after.is_active) || after.tier < before.tier {
            self.end_key_exchanges(id).await?;
        }
        let mut changes = serde_json::Map::new();
        if before.tier != after.tier {
            changes.insert(
                "permission_tier".into(),
                json!({"from": before.tier.get(), "to": after.tier.get()}),
            );
        }
        if before.is_active != after.is_active {
            changes.insert("is_active".into(), json!(after.is_active));
        }
        if before.is_verified != after.is_verified {
            changes.insert("is_verified".into(), json!(after.is_verified));
        }
        if before.full_name != after.full_name {
            changes.insert("full_name".into(), json!(true));
        }
        if !changes.is_empty() {
            self.audit(
                Audit::new(AuditKind::UserUpdated)
                    .user(id)
                    .actor(actor)
                    .ctx(ctx)
                    .details(json!({"changes": changes})),
            )
            .await;
        }
        self.with_lockout(after).await
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_delete_user(
        &self,
        actor: Option<UserId>,
        id: UserId,
        ctx: Option<&RequestContext>,
    ) -> Result<()> {
        let target = self.user(id).await?;
        // Before the keys go with the account.
        self.end_key_exchanges(id).await?;
        let now = Utc::now();
        let until = self.sid_revocation_until(now);
        let revoked = self
            .store
            .delete_user(id, now, until, true)
            .await?
            .ok_or(Error::NotFound("user"))?;
        self.user_cache.forget(id);
        for sid in revoked {
            self.revocations
                .insert(crate::store::Revoked::Sid(sid), until);
            let _ = self.revoked_sessions.send(sid);
            self.publish(crate::store::Revoked::Sid(sid), until).await;
        }
        self.store.clear_attempts(&user_key(id)).await?;
        self.audit(
            Audit::new(AuditKind::UserUpdated)
                .user(id)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"deleted": true, "email": target.email})),
        )
        .await;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_unlock_user(
        &self,
        actor: Option<UserId>,
        id: UserId,
        ctx: Option<&RequestContext>,
    ) -> Result<()> {
        self.user(id).await?;
        self.store.clear_attempts(&user_key(id)).await?;
        self.audit(
            Audit::new(AuditKind::UserUpdated)
                .user(id)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"unlocked": true})),
        )
        .await;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_revoke_sessions(
        &self,
        actor: Option<UserId>,
        id: UserId,
        ctx: Option<&RequestContext>,
    ) -> Result<()> {
        self.user(id).await?;
        let revoked = self
            .revoke(RevokeTarget::User {
                user: id,
                except: None,
            })
            .await?;
        self.audit(
            Audit::new(AuditKind::SessionRevoked)
                .user(id)
                .actor(actor)
                .ctx(ctx)
                .details(json!({"all": true, "sessions": revoked})),
        )
        .await;
        Ok(())
    }

    /// A user's live sessions, newest first, for the admin console.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn admin_user_sessions(
        &self,
        id: UserId,
        page: PageRequest,
    ) -> Result<Paged<crate::domain::Session>> {
        self.user(id).await?;
        let rows = self
            .store
            .list_sessions(id, Utc::now(), page.store_page())
            .await?;
        Ok(page.finish(rows, |s| s.id))
    }

    #[tracing::instrument(skip_all)]
    pub async fn admin_audit(&self, q: AuditQuery, page: PageRequest) -> Result<Paged<AuditEvent>> {
        let rows = self.store.list_events(&q, page.store_page()).await?;
        Ok(page.finish(rows, |e| e.id))
    }
}
