//! The keys that sign ID tokens, and the JWKS that publishes them with the access-token
//! keys.
//!
//! OpenID Connect Discovery requires RS256, so an RS256 pair (active and standby) is always
//! published, whatever `TRADEAUTH_JWT_ALG` is; a client may ask for ES256 or EdDSA instead
//! (`id_token_signed_response_alg`), so a pair of each is published too. The access
//! tokens' algorithm uses the access-token key ring itself (one pair, rotated together);
//! the others are stored beside it (the store holds one active and one standby key per
//! algorithm). HS256 never signs an ID token.

use crate::config::Config;
use crate::service::{Error, Result, Service};
use crate::store::DynStore;
use crate::tokens::keys::{generate, KeySet};
use crate::tokens::{JwtAlg, KeyState, StoredKey};
use chrono::Utc;
use serde_json::Value;

/// The algorithms ID tokens can be signed with, RS256 (the default) first.
pub const ID_TOKEN_ALGS: [JwtAlg; 3] = [JwtAlg::RS256, JwtAlg::ES256, JwtAlg::EdDSA];

/// The ID-token keys of this instance that the access-token ring does not hold: one set
/// per algorithm other than `TRADEAUTH_JWT_ALG`. A CLI command that finds none signs no ID
/// tokens (it has no set for that algorithm).
#[derive(Default)]
pub struct IdKeys {
    sets: Vec<(JwtAlg, KeySet)>,
}

impl IdKeys {
    /// The stored pairs: created (active and standby) by a serving instance when missing.
    pub async fn load(config: &Config, store: &DynStore, manage: bool) -> anyhow::Result<Self> {
        let mut keys = store.signing_keys().await?;
        let mut sets = Vec::new();
        for alg in ID_TOKEN_ALGS {
            if alg == config.jwt_alg {
                continue;
            }
            if manage {
                keys = ensure_pair(store, alg, keys).await?;
            }
            match KeySet::from_stored(alg, &keys, Utc::now()) {
                Ok(set) => sets.push((alg, set)),
                Err(_) if !manage => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self { sets })
    }

    fn set(&self, alg: JwtAlg) -> Option<&KeySet> {
        self.sets.iter().find(|(a, _)| *a == alg).map(|(_, s)| s)
    }
}

/// Makes sure `alg` has an active and a standby key; the keys as stored afterwards.
async fn ensure_pair(
    store: &DynStore,
    alg: JwtAlg,
    keys: Vec<StoredKey>,
) -> anyhow::Result<Vec<StoredKey>> {
    let live = |keys: &[StoredKey], state| keys.iter().any(|k| k.alg == alg && k.state == state);
    if live(&keys, KeyState::Active) && live(&keys, KeyState::Standby) {
        return Ok(keys);
    }
    let now = Utc::now();
    let mut fresh = Vec::new();
    if !live(&keys, KeyState::Active) {
        fresh.push(generate(alg, KeyState::Active, now)?);
    }
    if !live(&keys, KeyState::Standby) {
        fresh.push(generate(alg, KeyState::Standby, now)?);
    }
    // Another instance starting at the same moment may have saved its pair first (one
    // active and one standby per algorithm): then use that one.
    if let Err(e) = store.save_signing_keys(&fresh).await {
        let keys = store.signing_keys().await?;
        if !live(&keys, KeyState::Active) {
            return Err(e.into());
        }
        return Ok(keys);
    }
    Ok(store.signing_keys().await?)
}

impl Service {
    /// The algorithms an ID token can be signed with here (discovery's
    /// `id_token_signing_alg_values_supported`).
    pub fn id_token_algs(&self) -> Vec<&'static str> {
        ID_TOKEN_ALGS
            .iter()
            .filter(|a| **a == self.config.jwt_alg || self.id_keys.set(**a).is_some())
            .map(|a| a.as_str())
            .collect()
    }

    /// `claims` signed as an ID token with `alg` (one of [`Self::id_token_algs`]).
    pub(super) fn sign_id_token(&self, alg: &str, claims: &Value) -> Result<String> {
        self.sign_with_id_key(alg, "JWT", claims)
    }

    /// `claims` signed with the ID-token key of `alg`, with header `typ` (`logout+jwt`
    /// for a back-channel logout token).
    pub(super) fn sign_with_id_key(&self, alg: &str, typ: &str, claims: &Value) -> Result<String> {
        let alg = JwtAlg::parse(alg)
            .filter(|a| ID_TOKEN_ALGS.contains(a))
            .ok_or_else(|| Error::Internal(format!("{alg} does not sign ID tokens")))?;
        if alg == self.config.jwt_alg {
            let set = self.tokens.ring().current();
            return Ok(crate::tokens::idtoken::sign(&set, alg, typ, claims)?);
        }
        let set = self.id_keys.set(alg).ok_or_else(|| {
            Error::Internal(format!("no {} key signs ID tokens here", alg.as_str()))
        })?;
        Ok(crate::tokens::idtoken::sign(set, alg, typ, claims)?)
    }

    /// The verification key of an ID token's `kid`, for `id_token_hint`.
    pub(super) fn id_token_key(&self, kid: &str) -> Option<(JwtAlg, jsonwebtoken::DecodingKey)> {
        for (alg, set) in &self.id_keys.sets {
            if let Some(k) = set.verifying.get(kid) {
                return Some((*alg, k.clone()));
            }
        }
        let ring = self.tokens.ring();
        let set = ring.current();
        set.verifying
            .get(kid)
            .filter(|_| ring.alg != JwtAlg::HS256)
            .map(|k| (ring.alg, k.clone()))
    }

    /// The JWKS: the access-token keys and the ID-token keys of the other algorithms.
    pub fn published_keys(&self) -> Vec<u8> {
        let access = self.tokens.ring().current().jwks.to_vec();
        if self.id_keys.sets.is_empty() {
            return access;
        }
        let mut doc: Value = serde_json::from_slice(&access).unwrap_or_default();
        if let Some(keys) = doc["keys"].as_array_mut() {
            for (_, set) in &self.id_keys.sets {
                let extra: Value = serde_json::from_slice(&set.jwks).unwrap_or_default();
                if let Some(more) = extra["keys"].as_array() {
                    keys.extend(more.iter().cloned());
                }
            }
        }
        serde_json::to_vec(&doc).unwrap_or(access)
    }
}
