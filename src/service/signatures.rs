//! Signed requests (API.md "Signed requests (trading bots)"): making a signing key's
//! material on `POST /api/v1/auth/api-keys`, and checking a request's RFC 9421 signature.
//!
//! The check runs the contract's steps in its order, cheapest first, and touches nothing
//! outside the process before the signature has verified:
//! 1. components and parameters, then the window (`tokens::httpsig::check`, pure);
//! 2. the key by `keyid` (an in-process cache of one second, else one read of the key and
//!    its owner) → `invalid_api_key`, then `allowed_ips` → `ip_not_allowed`;
//! 3. `alg` and the signature → `signature_invalid` with the base the server built;
//! 4. one set-if-absent in the replay cache → `signature_replayed` (503 when Redis is down).
//!
//! Counts every outcome in `signed_requests_total{outcome}` (accepted, expired, replayed,
//! invalid — the last covering every other refusal). The HTTP layer builds the
//! [`RequestView`] (from the request itself, or from a trusted proxy's `X-Original-*`).

use super::{Caller, Credential, Error, Result, Service};
use crate::domain::User;
use crate::store::ApiKeyRecord;
use crate::tokens::apikey::PREFIX;
/// The request a signature covers, as the HTTP layer describes it.
pub use crate::tokens::httpsig::RequestView;
use crate::tokens::httpsig::{
    self, open_secret, seal_secret, Algorithm, ExpiredReason, HmacSecret, InvalidReason, Policy,
    PublicKey, Rejection, VerifyingKey,
};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Instant;

/// What a signing key is made of, decided from the request before anything is stored.
pub(super) struct SigningMaterial {
    pub algorithm: Algorithm,
    pub public_key: Option<PublicKey>,
    /// For `hmac-sha256`: the secret, shown once.
    pub secret: Option<HmacSecret>,
}

/// A signed request that passed every check.
#[derive(Debug, Clone)]
pub struct SignedCaller {
    pub caller: Caller,
    /// The signing key's `key_id` (`ta_<public id>`), for `X-Auth-Key-Id`.
    pub key_id: String,
    /// The covered `Content-Digest` value, verbatim, for `X-Auth-Content-Digest`.
    pub content_digest: Option<String>,
}

/// A signing key as the check needs it: the record, its owner and the verifying key
/// (an HMAC secret already opened), read at most [`KeyCache::FRESH`] ago.
#[derive(Clone)]
struct CachedKey {
    record: ApiKeyRecord,
    owner: User,
    key: Option<VerifyingKey>,
    at: Instant,
}

/// Signing keys read in the last second, by `key_id`: a bot's stream of signed requests
/// reads its key once a second, not once a request. A revocation or an owner's
/// disablement shows on this instance within that second. A std `RwLock`: held for one
/// map operation, never across an await.
#[derive(Default)]
pub struct KeyCache {
    map: RwLock<HashMap<String, CachedKey>>,
}

impl KeyCache {
    const FRESH: std::time::Duration = std::time::Duration::from_secs(1);
    const SIZE: usize = 65_536;

    fn get(&self, key_id: &str) -> Option<CachedKey> {
        let map = self.map.read().expect("key cache lock");
        map.get(key_id)
            .filter(|k| k.at.elapsed() < Self::FRESH)
            .cloned()
    }

    fn put(&self, key_id: &str, key: CachedKey) {
        let mut map = self.map.write().expect("key cache lock");
        if map.len() >= Self::SIZE {
            map.clear();
        }
        map.insert(key_id.to_string(), key);
    }

    /// Drops every key after a change made here (a revocation names the key by its
    /// record id, not its `key_id`; revocations are rare enough to start afresh).
    pub fn clear(&self) {
        self.map.write().expect("key cache lock").clear();
    }
}

/// The public id of a `keyid` that has the shape of ours (`ta_` and 12 base62
/// characters), so a malformed one costs no lookup.
fn public_id(keyid: &str) -> Option<&str> {
    let id = keyid.strip_prefix(PREFIX)?;
    (id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

impl Service {
    /// The signature window of the configuration.
    pub fn signature_policy(&self) -> Policy {
        Policy {
            max_age_ms: self.config.signature_max_age.num_milliseconds(),
            future_skew_ms: self.config.signature_future_skew.num_milliseconds(),
        }
    }

    /// Validates the signing part of a key request: `algorithm` (absent or `bearer`: a
    /// bearer key, `None`), the uploaded `public_key` for the public-key algorithms, and
    /// `TRADEAUTH_SECRET_KEY` for `hmac-sha256`. Every refusal is a 400 naming the field.
    pub(super) fn signing_material(
        &self,
        algorithm: Option<&str>,
        public_key: Option<&serde_json::Value>,
    ) -> Result<Option<SigningMaterial>> {
        let algorithm = match algorithm.map(str::trim) {
            None | Some("bearer") => {
                if public_key.is_some_and(|v| !v.is_null()) {
                    return Err(Error::field(
                        "public_key",
                        "public_key is only for the ed25519 and ecdsa-p256-sha256 algorithms",
                    ));
                }
                return Ok(None);
            }
            Some(name) => Algorithm::parse(name).ok_or_else(|| {
                Error::field(
                    "algorithm",
                    "algorithm must be bearer, ed25519, ecdsa-p256-sha256 or hmac-sha256",
                )
            })?,
        };
        let public_key = public_key.filter(|v| !v.is_null());
        match algorithm {
            Algorithm::HmacSha256 => {
                if public_key.is_some() {
                    return Err(Error::field(
                        "public_key",
                        "hmac-sha256 keys take no public_key: tradeauth makes the secret",
                    ));
                }
                if self.config.secret_key.is_none() {
                    return Err(Error::field(
                        "algorithm",
                        "hmac-sha256 keys need TRADEAUTH_SECRET_KEY to be set on the server \
                         (their secrets are stored encrypted under it)",
                    ));
                }
                Ok(Some(SigningMaterial {
                    algorithm,
                    public_key: None,
                    secret: Some(HmacSecret::generate()),
                }))
            }
            Algorithm::Ed25519 | Algorithm::EcdsaP256Sha256 => {
                let value = public_key.ok_or_else(|| {
                    Error::field(
                        "public_key",
                        format!(
                            "public_key is required for {}: a PEM SubjectPublicKeyInfo string \
                             or a JWK object",
                            algorithm.as_str()
                        ),
                    )
                })?;
                let key = PublicKey::parse_upload(value, algorithm)
                    .map_err(|e| Error::field("public_key", e.to_string()))?;
                Ok(Some(SigningMaterial {
                    algorithm,
                    public_key: Some(key),
                    secret: None,
                }))
            }
        }
    }

    /// Seals an HMAC secret for the row of `key_id`.
    pub(super) fn seal_signing_secret(&self, key_id: &str, secret: &HmacSecret) -> Result<Vec<u8>> {
        let kek = self
            .config
            .secret_key
            .as_ref()
            .ok_or_else(|| Error::Internal("TRADEAUTH_SECRET_KEY is not set".into()))?;
        Ok(seal_secret(
            kek.expose_secret(),
            key_id.as_bytes(),
            secret.as_bytes(),
        ))
    }

    /// The verifying key of a stored signing key; `None` for a bearer key or one whose
    /// material cannot be used here (an HMAC key without the `TRADEAUTH_SECRET_KEY` it was
    /// sealed under).
    fn verifying_key(&self, record: &ApiKeyRecord) -> Option<VerifyingKey> {
        match Algorithm::parse(&record.algorithm)? {
            Algorithm::HmacSha256 => {
                let kek = self.config.secret_key.as_ref()?;
                let key_id = format!("{PREFIX}{}", record.public_id);
                let sealed = record.sealed_secret.as_deref()?;
                match open_secret(kek.expose_secret(), key_id.as_bytes(), sealed) {
                    Ok(secret) => Some(VerifyingKey::hmac(&secret)),
                    Err(_) => {
                        tracing::error!(
                            key_id = %key_id,
                            "an HMAC signing secret does not open under TRADEAUTH_SECRET_KEY"
                        );
                        None
                    }
                }
            }
            alg => {
                let bytes = record.public_key.as_deref()?;
                PublicKey::from_stored(alg, bytes)
                    .ok()
                    .map(VerifyingKey::Public)
            }
        }
    }

    /// The key named by a signature's `keyid`, from the cache or the store.
    async fn signing_key(&self, key_id: &str) -> Result<Option<CachedKey>> {
        if let Some(k) = self.signing_keys.get(key_id) {
            return Ok(Some(k));
        }
        let Some(public_id) = public_id(key_id) else {
            return Ok(None);
        };
        let Some((record, owner)) = self.store.api_key_with_owner(public_id).await? else {
            return Ok(None);
        };
        let key = self.verifying_key(&record);
        let cached = CachedKey {
            record,
            owner,
            key,
            at: Instant::now(),
        };
        self.signing_keys.put(key_id, cached.clone());
        Ok(Some(cached))
    }

    /// Checks a signed request from `ip` (see the module doc for the order). Every outcome
    /// is counted; refusals are the contract's errors.
    #[tracing::instrument(skip_all)]
    pub async fn check_signature(&self, req: &RequestView<'_>, ip: IpAddr) -> Result<SignedCaller> {
        let outcome = self.check_signature_inner(req, ip).await;
        let label = match &outcome {
            Ok(_) => "accepted",
            Err(Error::SignatureExpired { .. }) => "expired",
            Err(Error::SignatureReplayed) => "replayed",
            // A store that is down refused nothing about the signature itself.
            Err(Error::Unavailable(_)) => "unavailable",
            Err(_) => "invalid",
        };
        self.metrics
            .signed_requests
            .with_label_values(&[label])
            .inc();
        outcome
    }

    async fn check_signature_inner(
        &self,
        req: &RequestView<'_>,
        ip: IpAddr,
    ) -> Result<SignedCaller> {
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        let checked = httpsig::check(req, &self.signature_policy(), now_ms).map_err(rejection)?;

        let found = self.signing_key(checked.keyid()).await?;
        let Some(CachedKey {
            record, owner, key, ..
        }) = found
        else {
            return Err(Error::InvalidApiKey);
        };
        let usable = record.revoked_at.is_none()
            && record.expires_at.is_none_or(|t| t > now)
            && owner.is_active;
        // A bearer key never verifies a signature, as a signing key is never a bearer key.
        let Some(key) = key.filter(|_| usable) else {
            return Err(Error::InvalidApiKey);
        };
        if !record.allowed_ips.is_empty() && !record.allowed_ips.iter().any(|n| n.contains(&ip)) {
            return Err(Error::IpNotAllowed);
        }

        let accepted = checked.verify(&key).map_err(rejection)?;
        let ttl = std::time::Duration::from_millis(accepted.replay_ttl_ms(now_ms) as u64);
        if !self.replay.first_use(&accepted.replay_key, ttl).await? {
            return Err(Error::SignatureReplayed);
        }

        self.touch_signing_key(&record, now);
        Ok(SignedCaller {
            caller: Caller {
                user_id: owner.id,
                tier: record.tier.min(owner.tier),
                credential: Credential::ApiKey { key_id: record.id },
            },
            key_id: accepted.keyid,
            content_digest: accepted.content_digest,
        })
    }

    /// `last_used_at`, at most once a minute per key, off the request path (as every key).
    fn touch_signing_key(&self, record: &ApiKeyRecord, now: DateTime<Utc>) {
        let stale = now - Duration::seconds(60);
        if record.last_used_at.is_some_and(|t| t >= stale) {
            return;
        }
        // The cached record does not see the write: mark it used so the next requests of
        // this second do not write again.
        if let Some(mut cached) = self
            .signing_keys
            .get(&format!("{PREFIX}{}", record.public_id))
        {
            cached.record.last_used_at = Some(now);
            self.signing_keys
                .put(&format!("{PREFIX}{}", record.public_id), cached);
        }
        let store = self.store.clone();
        let id = record.id;
        tokio::spawn(async move {
            if let Err(e) = store.touch_api_key(id, now, stale).await {
                tracing::warn!(error = %e, "could not record a signing key's use");
            }
        });
    }
}

/// A profile refusal as the service's error.
fn rejection(r: Rejection) -> Error {
    match r {
        Rejection::Incomplete { missing } => Error::SignatureIncomplete { missing },
        Rejection::Expired {
            server_time_ms,
            skew_ms,
            reason,
        } => Error::SignatureExpired {
            reason: match reason {
                ExpiredReason::TooOld => "the signature's created is too old",
                ExpiredReason::FromFuture => {
                    "the signature's created is too far in the future: check your clock"
                }
                ExpiredReason::PastExpires => "the signature's expires has passed",
            },
            server_time: DateTime::from_timestamp_millis(server_time_ms).unwrap_or_else(Utc::now),
            skew_ms,
        },
        Rejection::Invalid {
            reason,
            signature_base,
        } => Error::SignatureInvalid {
            reason: match reason {
                InvalidReason::Malformed(why) => format!("the signature is malformed: {why}"),
                InvalidReason::DuplicateTag => {
                    "two signatures carry tag=\"tradeauth\"; send exactly one".to_string()
                }
                InvalidReason::UnsupportedComponent(c) => {
                    format!("the covered component {c} is not supported")
                }
                InvalidReason::MalformedContentDigest => {
                    "Content-Digest is not a valid RFC 9530 field".to_string()
                }
                InvalidReason::AlgorithmMismatch => {
                    "the alg parameter is not the key's algorithm".to_string()
                }
                InvalidReason::BadSignature => {
                    "the signature does not verify; compare your signature base with \
                     details.signature_base"
                        .to_string()
                }
            },
            signature_base,
        },
    }
}

impl Service {
    /// A signed request whose body is at hand (a proxy that forwards it, or a request to
    /// tradeauth itself): the bytes must match the signed `Content-Digest`.
    pub fn check_signed_body(&self, content_digest: Option<&str>, body: &[u8]) -> Result<()> {
        let Some(value) = content_digest else {
            return Err(Error::SignatureIncomplete {
                missing: vec!["content-digest".into()],
            });
        };
        httpsig::digest::check(value, body).map_err(|e| Error::SignatureInvalid {
            reason: format!("{e}: the body received is not the body signed"),
            signature_base: None,
        })
    }
}

/// The RFC 7638 thumbprint of a stored public signing key (`None` for other keys).
pub fn public_key_thumbprint(record: &ApiKeyRecord) -> Option<String> {
    let alg = Algorithm::parse(&record.algorithm)?;
    PublicKey::from_stored(alg, record.public_key.as_deref()?)
        .ok()
        .map(|k| k.thumbprint())
}
