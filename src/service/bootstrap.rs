//! The bootstrap admin (seed 002): `ADMIN_EMAIL` + `ADMIN_PASSWORD` create a verified
//! tier-4 account at the first start with no admin, and a later start where they changed
//! updates that same account to match. The bootstrap password is exempt from the policy.
//!
//! "Changed" is measured against the values the last start applied, not against the
//! account: an admin who changed the password through the API keeps it (and their
//! sessions) across restarts with the same settings. What was applied is kept in the
//! `secrets` table under [`APPLIED`]: the email, and an Argon2 hash of the password (a
//! fast keyed hash stored next to its key would expose the deploy secret to cheap
//! guessing).

use super::auth::NewAccount;
use super::Audit;
use super::Service;
use crate::domain::AuditKind;
use crate::domain::{Email, Tier};
use crate::store::UserPatch;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The `secrets` row recording the bootstrap settings last applied.
pub const APPLIED: &str = "admin_bootstrap_applied";

/// The bootstrap settings a start applied.
#[derive(Serialize, Deserialize)]
struct Applied {
    email: String,
    /// Argon2 hash (PHC string) of `ADMIN_PASSWORD`.
    password_hash: String,
}

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
                self.record_applied(&email, password).await?;
                tracing::info!(user_id = %user.id, "bootstrap admin created");
                self.audit(
                    Audit::new(AuditKind::AdminBootstrap)
                        .user(user.id)
                        .details(json!({"created": true})),
                )
                .await;
            }
            Some(admin) => {
                // Without a record (a database bootstrapped before it was kept), the
                // account is the only reference.
                let applied = match self.store.find_secret(APPLIED).await? {
                    Some(raw) => serde_json::from_slice::<Applied>(&raw).ok(),
                    None => None,
                };
                let (email_changed, password_changed) = match &applied {
                    Some(a) => (
                        a.email != email.as_str(),
                        !self
                            .hasher
                            .verify(password, Some(&a.password_hash))
                            .await?
                            .ok,
                    ),
                    None => (true, true),
                };
                let mut changed = Vec::new();
                if email_changed && admin.email != email {
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
                if password_changed {
                    let stored = self.store.password_hash(admin.id).await?;
                    if !self.hasher.verify(password, stored.as_deref()).await?.ok {
                        let hash = self.hasher.hash(password as &SecretString).await?;
                        let end = self.end_sessions(None);
                        let ended = self
                            .store
                            .set_password_hash(admin.id, &hash, Some(end))
                            .await?;
                        self.sessions_ended(&ended, end.until).await;
                        changed.push("password");
                    }
                }
                if email_changed || password_changed {
                    self.record_applied(&email, password).await?;
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

    /// Records `email` and `password` as the bootstrap settings applied.
    async fn record_applied(&self, email: &Email, password: &SecretString) -> anyhow::Result<()> {
        let applied = Applied {
            email: email.as_str().to_string(),
            password_hash: self.hasher.hash(password).await?,
        };
        self.store
            .put_secret(APPLIED, &serde_json::to_vec(&applied)?)
            .await?;
        Ok(())
    }
}
