//! API keys (seed 003): created by a session, used by bots. The effective tier is the
//! lower of the key's and its owner's current tier; keys die with their owner's
//! disablement; `allowed_ips` pins a key to addresses and CIDRs.

use super::Audit;
use super::{Caller, Credential, Error, PageRequest, Paged, RequestContext, Result, Service};
use crate::domain::network::AllowedIp;
use crate::domain::AuditKind;
use crate::domain::Tier;
use crate::store::ApiKeyRecord;
use crate::tokens::apikey;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// A key request, as received.
#[derive(Debug, Default)]
pub struct NewApiKey {
    pub name: Option<String>,
    pub permission_tier: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Option<Vec<String>>,
    /// `bearer` (default) or a signing key's algorithm (API.md "Signed requests").
    pub algorithm: Option<String>,
    /// A signing key's public key: a PEM SubjectPublicKeyInfo string or a JWK object.
    pub public_key: Option<serde_json::Value>,
}

/// A key just made: the record and what is shown this once — the full key of a bearer
/// key, or the secret of an `hmac-sha256` signing key.
pub struct CreatedKey {
    pub record: ApiKeyRecord,
    /// The bearer key (`None` for a signing key: it has no bearer secret).
    pub key: Option<String>,
    /// An `hmac-sha256` key's secret, base64url without padding.
    pub secret: Option<String>,
}

/// `last_used_at` is written at most this often per key.
const TOUCH_EVERY: i64 = 60;

fn parse_ips(raw: &[String]) -> Result<Vec<AllowedIp>> {
    raw.iter()
        .map(|s| AllowedIp::parse(s).map_err(Error::from))
        .collect()
}

impl Service {
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        input: NewApiKey,
        ctx: &RequestContext,
    ) -> Result<CreatedKey> {
        caller.require_session()?;
        let name = input.name.unwrap_or_default().trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::field(
                "name",
                "name is required (1 to 100 characters)",
            ));
        }
        let owner = self.me(caller).await?;
        let tier = match input.permission_tier {
            None => owner.tier,
            Some(n) => Tier::new(n)?,
        };
        if tier > owner.tier {
            return Err(Error::TierNotAllowed(format!(
                "a key cannot have a higher tier than its owner ({})",
                owner.tier
            )));
        }
        let now = Utc::now();
        if input.expires_at.is_some_and(|t| t <= now) {
            return Err(Error::field(
                "expires_at",
                "expires_at must be in the future",
            ));
        }
        let allowed_ips = parse_ips(&input.allowed_ips.unwrap_or_default())?;
        let signing =
            self.signing_material(input.algorithm.as_deref(), input.public_key.as_ref())?;
        // API.md: creating a signing key is `reauthentication_required` more than 10 min
        // after the session last proved a password or passkey (as adding a passkey).
        if signing.is_some() {
            self.require_recent_auth(
                caller,
                Duration::minutes(super::passkeys::RECENT_AUTH_MINUTES),
            )
            .await?;
        }
        let made = apikey::generate();
        let key_id = format!("{}{}", apikey::PREFIX, made.public_id);
        let (algorithm, public_key, sealed_secret, secret_hash) = match &signing {
            None => ("bearer".to_string(), None, None, made.secret_hash),
            Some(m) => (
                m.algorithm.as_str().to_string(),
                m.public_key.as_ref().map(|k| k.to_bytes().to_vec()),
                m.secret
                    .as_ref()
                    .map(|s| self.seal_signing_secret(&key_id, s))
                    .transpose()?,
                // Empty: no presented bearer secret can hash to it.
                Vec::new(),
            ),
        };
        let record = ApiKeyRecord {
            id: Uuid::now_v7(),
            user_id: owner.id,
            public_id: made.public_id,
            secret_hash,
            name,
            tier,
            created_at: now,
            expires_at: input.expires_at,
            allowed_ips,
            last_used_at: None,
            revoked_at: None,
            algorithm,
            public_key,
            sealed_secret,
        };
        self.store.insert_api_key(&record).await?;
        self.audit(Audit::new(AuditKind::ApiKeyCreated).user(owner.id).actor(owner.id).ctx(ctx).details(json!({"key_id": record.id, "name": record.name, "permission_tier": tier.get(), "algorithm": record.algorithm})))
        .await;
        Ok(CreatedKey {
            secret: signing
                .as_ref()
                .and_then(|m| m.secret.as_ref())
                .map(|s| s.to_display()),
            key: signing.is_none().then_some(made.key),
            record,
        })
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        page: PageRequest,
    ) -> Result<Paged<ApiKeyRecord>> {
        caller.require_session()?;
        let rows = self
            .store
            .list_api_keys(caller.user_id, page.store_page())
            .await?;
        Ok(page.finish(rows, |k| k.id))
    }

    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        id: Uuid,
        ctx: &RequestContext,
    ) -> Result<()> {
        caller.require_session()?;
        if !self
            .store
            .revoke_api_key(caller.user_id, id, Utc::now())
            .await?
        {
            return Err(Error::NotFound("API key"));
        }
        self.signing_keys.clear();
        // Tokens exchanged from this key (RFC 8693) carry its id as their `sid`.
        let until = self.sid_revocation_until(Utc::now());
        self.store.revoke_sid(id, until).await?;
        self.revocations
            .insert(crate::store::Revoked::Sid(id), until);
        self.publish(crate::store::Revoked::Sid(id), until).await;
        self.audit(
            Audit::new(AuditKind::ApiKeyRevoked)
                .user(caller.user_id)
                .actor(caller.user_id)
                .ctx(ctx)
                .details(json!({"key_id": id})),
        )
        .await;
        Ok(())
    }

    /// Checks an API key presented from `ip`: format and checksum first (no lookup for a
    /// mistyped key), then one read of the key and its owner.
    #[tracing::instrument(skip_all)]
    pub async fn check_api_key(&self, key: &str, ip: IpAddr) -> Result<Caller> {
        let parsed = apikey::parse(key).ok_or(Error::InvalidApiKey)?;
        let (record, owner) = self
            .store
            .api_key_with_owner(parsed.public_id)
            .await?
            .ok_or(Error::InvalidApiKey)?;
        let presented = apikey::hash_secret(parsed.secret);
        let now = Utc::now();
        let genuine: bool = presented.ct_eq(&record.secret_hash).into();
        // A signing key has an empty hash and is refused here in any case: it is never a
        // bearer key (API.md "Signed requests").
        if !genuine
            || record.algorithm != "bearer"
            || record.revoked_at.is_some()
            || record.expires_at.is_some_and(|t| t <= now)
            || !owner.is_active
        {
            return Err(Error::InvalidApiKey);
        }
        if !record.allowed_ips.is_empty() && !record.allowed_ips.iter().any(|n| n.contains(&ip)) {
            return Err(Error::IpNotAllowed);
        }
        let stale = now - Duration::seconds(TOUCH_EVERY);
        if record.last_used_at.is_none_or(|t| t < stale) {
            let store = self.store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.touch_api_key(record.id, now, stale).await {
                    tracing::warn!(error = %e, "could not record an API key use");
                }
            });
        }
        Ok(Caller {
            user_id: owner.id,
            tier: record.tier.min(owner.tier),
            credential: Credential::ApiKey { key_id: record.id },
        })
    }
}
