//! Signing-key lifecycle: created at first start, kept in the store so every instance
//! shares them, rotated by `tradeauth keys rotate` or the admin API.

use super::{Audit, RequestContext, Result, Service};
use crate::config::Config;
use crate::domain::{AuditKind, UserId};
use crate::store::DynStore;
use crate::tokens::keys::{generate, KeySet};
use crate::tokens::{JwtAlg, KeyRing, KeyState, StoredKey};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// A token-signing key as the admin console lists it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: JwtAlg,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    /// For a retired key: when it leaves the JWKS.
    pub retire_at: Option<DateTime<Utc>>,
}

/// A retired key stays published until its last token expires: tokens are signed with it
/// until every instance has reloaded (within a second, see `background`), so add a margin.
fn retire_until(config: &Config, now: DateTime<Utc>) -> DateTime<Utc> {
    now + config.access_ttl + chrono::Duration::seconds(30)
}

/// Makes sure an active and a standby key of the configured algorithm exist; keys of
/// another algorithm (after a change of `jwt_alg`) are retired.
async fn ensure_keys(config: &Config, store: &DynStore) -> anyhow::Result<Vec<StoredKey>> {
    let alg = config.jwt_alg;
    let now = Utc::now();
    let keys = store.signing_keys().await?;
    let live = |state| keys.iter().any(|k| k.alg == alg && k.state == state);
    let mut changes = Vec::new();
    if !live(KeyState::Active) {
        for k in keys
            .iter()
            .filter(|k| k.alg != alg && k.state != KeyState::Retired)
        {
            let mut k = k.clone();
            k.state = KeyState::Retired;
            k.retire_at = Some(retire_until(config, now));
            changes.push(k);
        }
        changes.push(generate(alg, KeyState::Active, now)?);
    }
    if !live(KeyState::Standby) {
        changes.push(generate(alg, KeyState::Standby, now)?);
    }
    if !changes.is_empty() {
        if let Err(e) = store.save_signing_keys(&changes).await {
            // The store holds one active and one standby key per algorithm: an instance
            // starting at the same moment saved its pair first. Use that one.
            let keys = store.signing_keys().await?;
            let live = |state| keys.iter().any(|k| k.alg == alg && k.state == state);
            if live(KeyState::Active) && live(KeyState::Standby) {
                return Ok(keys);
            }
            return Err(e.into());
        }
    }
    Ok(store.signing_keys().await?)
}

fn key_set(config: &Config, keys: &[StoredKey]) -> anyhow::Result<KeySet> {
    KeySet::from_stored(config.jwt_alg, keys, Utc::now())
}

/// The key ring of a starting instance. Only a serving instance (`manage`) creates or
/// retires keys; a CLI command run with another `jwt_alg` must never touch the server's
/// keys, so it reads them, or signs with a throwaway key it never stores.
pub async fn load_or_create(
    config: &Config,
    store: &DynStore,
    manage: bool,
) -> anyhow::Result<Arc<KeyRing>> {
    let set = match (config.jwt_alg, &config.jwt_secret) {
        (JwtAlg::HS256, Some(secret)) => KeySet::from_secret(secret.expose_secret().as_bytes()),
        (JwtAlg::HS256, None) => anyhow::bail!("HS256 needs TRADEAUTH_JWT_SECRET"),
        _ if manage => key_set(config, &ensure_keys(config, store).await?)?,
        _ => match key_set(config, &store.signing_keys().await?) {
            Ok(set) => set,
            Err(_) => key_set(
                config,
                &[generate(config.jwt_alg, KeyState::Active, Utc::now())?],
            )?,
        },
    };
    Ok(Arc::new(KeyRing::new(config.jwt_alg, set)))
}

/// Rotates: the standby becomes active, the active one is retired (published until its
/// tokens expire), a new standby is made. Returns the new active `kid`.
pub async fn rotate(config: &Config, store: &DynStore) -> anyhow::Result<String> {
    let keys = ensure_keys(config, store).await?;
    let now = Utc::now();
    let alg = config.jwt_alg;
    let mut changes = Vec::new();
    let mut new_active = None;
    for k in keys.iter().filter(|k| k.alg == alg) {
        let mut k = k.clone();
        match k.state {
            KeyState::Active => {
                k.state = KeyState::Retired;
                k.retire_at = Some(retire_until(config, now));
            }
            KeyState::Standby if new_active.is_none() => {
                k.state = KeyState::Active;
                new_active = Some(k.kid.clone());
            }
            _ => continue,
        }
        changes.push(k);
    }
    changes.push(generate(alg, KeyState::Standby, now)?);
    store.save_signing_keys(&changes).await?;
    new_active.ok_or_else(|| anyhow::anyhow!("no standby key to promote"))
}

impl Service {
    /// Rereads the keys from the store (after a rotation here or on another instance).
    #[tracing::instrument(skip_all)]
    pub async fn reload_keys(&self) -> anyhow::Result<()> {
        if self.config.jwt_alg == JwtAlg::HS256 {
            return Ok(());
        }
        let keys = self.store.signing_keys().await?;
        // Compare what the set would hold before building it (this runs every 250 ms):
        // the kids still published and the active one.
        let now = Utc::now();
        let alg = self.config.jwt_alg;
        let changed = {
            let current = self.tokens.ring().current();
            let mut old: Vec<&str> = current.verifying.keys().map(String::as_str).collect();
            let mut new: Vec<&str> = keys
                .iter()
                .filter(|k| k.alg == alg)
                .filter(|k| {
                    !(k.state == KeyState::Retired && k.retire_at.is_some_and(|t| t <= now))
                })
                .map(|k| k.kid.as_str())
                .collect();
            old.sort_unstable();
            new.sort_unstable();
            let active = keys
                .iter()
                .find(|k| k.alg == alg && k.state == KeyState::Active)
                .map(|k| k.kid.as_str());
            old != new || active != Some(current.signing_kid.as_str())
        };
        if changed {
            let set = key_set(&self.config, &keys)?;
            self.tokens.ring().replace(set);
            // A key left the set: tokens it signed must be checked again.
            self.tokens.forget_verified();
        }
        Ok(())
    }

    /// The token-signing keys as admins see them (no private material), newest first.
    #[tracing::instrument(skip_all)]
    pub async fn signing_key_overview(&self) -> Result<Vec<KeyInfo>> {
        let mut keys: Vec<KeyInfo> = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .map(|k| KeyInfo {
                kid: k.kid,
                alg: k.alg,
                state: k.state,
                created_at: k.created_at,
                retire_at: k.retire_at,
            })
            .collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
        Ok(keys)
    }

    /// Promotes the standby key and makes a new standby (`signing_key.rotated`, with the
    /// admin who did it).
    #[tracing::instrument(skip_all)]
    pub async fn rotate_signing_keys(
        &self,
        actor: Option<UserId>,
        ctx: Option<&RequestContext>,
    ) -> Result<String> {
        if self.config.jwt_alg == JwtAlg::HS256 {
            return Err(super::Error::field(
                "jwt_alg",
                "HS256 signs with a shared secret; rotate it by changing TRADEAUTH_JWT_SECRET",
            ));
        }
        let kid = rotate(&self.config, &self.store).await?;
        self.reload_keys().await?;
        self.audit(
            Audit::new(AuditKind::SigningKeyRotated)
                .actor(actor)
                .ctx(ctx)
                .details(serde_json::json!({ "kid": kid })),
        )
        .await;
        Ok(kid)
    }
}
