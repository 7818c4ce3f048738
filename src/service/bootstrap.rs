//! The bootstrap admin (seed 002): `ADMIN_EMAIL` + `ADMIN_PASSWORD` create a verified
//! tier-4 account at the first start with no admin, and later starts keep that same
//! account in step with them. The bootstrap password is exempt from the policy.

use super::auth::NewAccount;
use super::Audit;
use super::Service;
use crate::domain::AuditKind;
use crate::domain::{Email, Tier};
use crate::store::{RevokeTarget, UserPatch};
use secrecy::SecretString;
use serde_json::json;

impl Service {
    #[tracing::instrument(skip_all)]
    pub async fn bootstrap_admin(&self) -> anyhow::Result<()> {
        let (Some(email), Some(password)) = (&self.config.admin_email, &self.config.admin_password)
        else {
            return Ok(());
        };
        let email =
            Email::parse(email).map_err(|e| anyhow::anyhow!("ADMIN_EMAIL: {}", e.message))?;
        match self.store.bootstrap_user().await? {
            None => {
                if self.store.count_active_admins().await? > 0 {
                    tracing::info!("an admin exists already; ADMIN_EMAIL/ADMIN_PASSWORD not used");
                    return Ok(());
                }
                if let Some(existing) = self.store.user_by_login(email.as_str()).await? {
                    // An instance starting at the same moment created it since we looked.
                    let theirs = self.store.bootstrap_user().await?;
                    if theirs.is_some_and(|b| b.id == existing.id) {
                        tracing::info!("bootstrap admin created by another instance");
                        return Ok(());
                    }
                    anyhow::bail!(
                        "ADMIN_EMAIL {email} belongs to an existing user that is not the bootstrap admin"
                    );
                }
                let created = self
                    .create_account(
                        NewAccount {
                            email: email.to_string(),
                            password: password.clone(),
                            username: None,
                            full_name: None,
                        },
                        Tier::ADMIN,
                        true,
                        true,
                        false,
                    )
                    .await;
                let user = match created {
                    Ok(user) => user,
                    // An instance starting at the same moment created it first.
                    Err(_) if self.store.bootstrap_user().await?.is_some() => {
                        tracing::info!("bootstrap admin created by another instance");
                        return Ok(());
                    }
                    Err(e) => anyhow::bail!("creating the bootstrap admin: {e}"),
                };
                tracing::info!(user_id = %user.id, "bootstrap admin created");
                self.audit(
                    Audit::new(AuditKind::AdminBootstrap)
                        .user(user.id)
                        .details(json!({"created": true})),
                )
                .await;
            }
            Some(admin) => {
                let mut changed = Vec::new();
                if admin.email != email {
                    if let Some(other) = self.store.user_by_login(email.as_str()).await? {
                        if other.id != admin.id {
                            anyhow::bail!(
                                "ADMIN_EMAIL {email} belongs to another user; cannot move the bootstrap admin to it"
                            );
                        }
                    }
                    let patch = UserPatch {
                        email: Some(email.clone()),
                        ..Default::default()
                    };
                    self.store.update_user(admin.id, &patch).await?;
                    self.user_cache.forget(admin.id);
                    changed.push("email");
                }
                let stored = self.store.password_hash(admin.id).await?;
                if !self.hasher.verify(password, stored.as_deref()).await?.ok {
                    let hash = self.hasher.hash(password as &SecretString).await?;
                    self.store.set_password_hash(admin.id, &hash).await?;
                    self.revoke(RevokeTarget::User {
                        user: admin.id,
                        except: None,
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                    changed.push("password");
                }
                if !changed.is_empty() {
                    tracing::info!(user_id = %admin.id, ?changed, "bootstrap admin updated");
                    self.audit(
                        Audit::new(AuditKind::AdminBootstrap)
                            .user(admin.id)
                            .details(json!({"updated": changed})),
                    )
                    .await;
                }
            }
        }
        Ok(())
    }
}
