//! Access tokens: a JWT with `typ: at+jwt` and a `kid`, signed by the active key.
//!
//! Verification pins the configured algorithm: `alg: none`, an HS256 token made with a
//! public key, an unknown `kid`, a missing `exp` or a wrong `typ`/`iss`/`aud` are all
//! [`TokenError::Invalid`]; only a correctly signed token past `exp` is `Expired`.

use super::keys::KeyRing;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

pub const ACCESS_TYP: &str = "at+jwt";

/// How many verified tokens are remembered (a few MB at most).
const VERIFIED_CACHE_SIZE: usize = 65_536;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id; for an OAuth client-credentials token, the client id (there is no
    /// user: [`AccessClaims::user`] is `None`).
    pub sub: String,
    /// The session id: revoking the session kills every token carrying it.
    pub sid: Uuid,
    /// The token id: logout blocks exactly this token until `exp`.
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub tier: u8,
    pub role: String,
    /// The OAuth client the token was issued to (absent on native tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The OAuth scopes granted, space-separated (absent on native tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The actor of an exchanged token (RFC 8693 §4.1): `{"sub": client_id}`, nesting the
    /// subject token's own `act` when it had one. Absent on every other token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6): only a request with a proof
    /// signed by that key may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The `cnf` claim of a DPoP-bound token (RFC 9449 §6.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The RFC 7638 thumbprint (SHA-256, base64url) of the DPoP public key.
    pub jkt: String,
}

impl AccessClaims {
    /// The user the token speaks for; `None` for a client-credentials token, whose
    /// subject is its client.
    pub fn user(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.sub).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is invalid")]
    Invalid,
    #[error("the access token has expired")]
    Expired,
}

/// Signs and verifies access tokens with the key ring.
pub struct TokenIssuer {
    ring: Arc<KeyRing>,
    /// Tokens whose signature and claims were verified, by their full text. Saves the
    /// signature check (the dominant cost of a token check) on every later use; expiry is
    /// still checked on each hit, and revocation is checked by the caller as always. Only
    /// genuine tokens get in, so a flood of forgeries cannot fill it; when full it is
    /// emptied. A std `RwLock`: held for one map operation.
    verified: std::sync::RwLock<std::collections::HashMap<Box<str>, AccessClaims>>,
    issuer: String,
    audience: String,
    validation: Validation,
}

impl TokenIssuer {
    pub fn new(ring: Arc<KeyRing>, issuer: String, audience: String) -> Self {
        let mut validation = Validation::new(ring.alg.algorithm());
        validation.algorithms = vec![ring.alg.algorithm()];
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(&[audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // We issue and check our own tokens on synchronised clocks: a token is dead at `exp`.
        validation.leeway = 0;
        // `exp` is checked after every other claim (below), so a token that is both
        // expired and wrong in another way is `invalid_token`, never `token_expired`.
        validation.validate_exp = false;
        Self {
            ring,
            issuer,
            audience,
            validation,
            verified: Default::default(),
        }
    }

    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Signs a token for `sub`/`sid` valid until `exp`.
    pub fn sign(
        &self,
        sub: Uuid,
        sid: Uuid,
        tier: crate::domain::Tier,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
    ) -> anyhow::Result<(String, AccessClaims)> {
        self.sign_for_client(sub, sid, tier, now, exp, None)
    }

    /// Signs a token like [`Self::sign`], adding the OAuth `client_id` and `scope` when
    /// `client` is given (RFC 9068).
    pub fn sign_for_client(
        &self,
        sub: Uuid,
        sid: Uuid,
        tier: crate::domain::Tier,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
        client: Option<(&str, &str)>,
    ) -> anyhow::Result<(String, AccessClaims)> {
        self.sign_claims(sub.to_string(), sid, tier, now, exp, client, None)
    }

    /// Signs an OAuth token for `sub` (a user id, or the client id of a
    /// client-credentials token), bound to the DPoP key `jkt` when given (`cnf.jkt`).
    #[allow(clippy::too_many_arguments)]
    pub fn sign_oauth(
        &self,
        sub: String,
        sid: Uuid,
        tier: crate::domain::Tier,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
        client: (&str, &str),
        jkt: Option<&str>,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let cnf = jkt.map(|j| Confirmation { jkt: j.to_string() });
        self.sign_claims(sub, sid, tier, now, exp, Some(client), cnf)
    }

    /// Signs a client-credentials token: `sub` is the client id, no user.
    pub fn sign_for_client_only(
        &self,
        client_id: &str,
        sid: Uuid,
        tier: crate::domain::Tier,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
        scope: &str,
    ) -> anyhow::Result<(String, AccessClaims)> {
        self.sign_claims(
            client_id.to_string(),
            sid,
            tier,
            now,
            exp,
            Some((client_id, scope)),
            None,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn sign_claims(
        &self,
        sub: String,
        sid: Uuid,
        tier: crate::domain::Tier,
        now: DateTime<Utc>,
        exp: DateTime<Utc>,
        client: Option<(&str, &str)>,
        cnf: Option<Confirmation>,
    ) -> anyhow::Result<(String, AccessClaims)> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub,
            sid,
            jti: Uuid::new_v4(),
            iat: now.timestamp(),
            exp: exp.timestamp(),
            tier: tier.get(),
            role: tier.role().as_str().to_string(),
            client_id: client.map(|(c, _)| c.to_string()),
            scope: client.map(|(_, s)| s.to_string()),
            act: None,
            cnf,
        };
        self.sign_built(&claims).map(|t| (t, claims))
    }

    /// Signs the claims of an exchanged token (RFC 8693): the caller chose every claim,
    /// `aud` (the `resource` asked for) and `act` included; `iss`, `jti`, `role` are ours.
    pub fn sign_exchanged(&self, mut claims: AccessClaims) -> anyhow::Result<String> {
        claims.iss = self.issuer.clone();
        claims.jti = Uuid::new_v4();
        if claims.aud.is_empty() {
            claims.aud = self.audience.clone();
        }
        self.sign_built(&claims)
    }

    /// The audience of tradeauth's own tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    fn sign_built(&self, claims: &AccessClaims) -> anyhow::Result<String> {
        let keys = self.ring.current();
        let mut header = Header::new(self.ring.alg.algorithm());
        header.typ = Some(ACCESS_TYP.to_string());
        header.kid = Some(keys.signing_kid.clone());
        // JWS compact serialisation (RFC 7515), signed with the parsed key.
        let mut token = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&header)?),
            B64.encode(serde_json::to_vec(claims)?)
        );
        let signature = keys.signer.sign(token.as_bytes())?;
        token.push('.');
        token.push_str(&B64.encode(signature));
        Ok(token)
    }

    /// Verifies signature, algorithm, `kid`, `typ`, `iss`, `aud` and `exp` — or finds the
    /// token already verified, and checks only `exp`.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let cached = self
            .verified
            .read()
            .expect("token cache lock")
            .get(token)
            .cloned();
        if let Some(claims) = cached {
            if expired(claims.exp) {
                return Err(TokenError::Expired);
            }
            return Ok(claims);
        }
        let claims = self.verify_uncached(token)?;
        let mut cache = self.verified.write().expect("token cache lock");
        if cache.len() >= VERIFIED_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(token.into(), claims.clone());
        Ok(claims)
    }

    /// Forgets every verified token (after the key set changed).
    pub fn forget_verified(&self) {
        self.verified.write().expect("token cache lock").clear();
    }

    /// The full check, without the verified-token cache (the micro-benchmarks measure it).
    pub fn verify_uncached(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != self.ring.alg.algorithm() || header.typ.as_deref() != Some(ACCESS_TYP) {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let keys = self.ring.current();
        let key = keys.verifying.get(&kid).ok_or(TokenError::Invalid)?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if expired(claims.exp) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

impl TokenIssuer {
    /// Verifies an exchanged token made for another audience (a `resource`): every check
    /// of [`Self::verify_uncached`] but `aud`, and it must carry `act`. Only introspection
    /// uses it — tradeauth's own endpoints accept their own audience only.
    pub fn verify_exchanged(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != self.ring.alg.algorithm() || header.typ.as_deref() != Some(ACCESS_TYP) {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let keys = self.ring.current();
        let key = keys.verifying.get(&kid).ok_or(TokenError::Invalid)?;
        let mut validation = self.validation.clone();
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        if claims.act.is_none() {
            return Err(TokenError::Invalid);
        }
        if expired(claims.exp) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// A token is dead from the first instant of its `exp` second on (RFC 7519 §4.1.4: the
/// current time must be before `exp`).
pub fn expired(exp: i64) -> bool {
    exp <= chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Tier;
    use crate::tokens::keys::KeySet;
    use crate::tokens::JwtAlg;

    fn issuer(iss: &str, aud: &str) -> TokenIssuer {
        let set = KeySet::from_secret(b"a-test-secret-of-at-least-32-bytes");
        TokenIssuer::new(
            Arc::new(KeyRing::new(JwtAlg::HS256, set)),
            iss.into(),
            aud.into(),
        )
    }

    #[test]
    fn tokens_we_sign_verify_for_every_algorithm_and_tampering_is_caught() {
        use crate::tokens::keys::generate;
        use crate::tokens::KeyState;
        let now = chrono::Utc::now();
        for alg in [JwtAlg::EdDSA, JwtAlg::ES256, JwtAlg::RS256, JwtAlg::HS256] {
            let set = match alg {
                JwtAlg::HS256 => KeySet::from_secret(b"a-test-secret-of-at-least-32-bytes"),
                _ => {
                    let key = generate(alg, KeyState::Active, now).unwrap();
                    KeySet::from_stored(alg, &[key], now).unwrap()
                }
            };
            let i = TokenIssuer::new(
                Arc::new(KeyRing::new(alg, set)),
                "tradeauth".into(),
                "tradeauth-api".into(),
            );
            let (sub, sid) = (Uuid::now_v7(), Uuid::now_v7());
            let exp = now + chrono::Duration::minutes(5);
            let (token, _) = i.sign(sub, sid, Tier::new(3).unwrap(), now, exp).unwrap();
            let claims = i.verify_uncached(&token).unwrap();
            assert_eq!(
                (claims.user(), claims.sid, claims.tier),
                (Some(sub), sid, 3),
                "{alg:?}"
            );
            // Another payload under the same signature.
            let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
            let (other, _) = i.sign(sub, sid, Tier::new(4).unwrap(), now, exp).unwrap();
            parts[1] = other.split('.').nth(1).unwrap().to_string();
            assert!(
                matches!(
                    i.verify_uncached(&parts.join(".")),
                    Err(TokenError::Invalid)
                ),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn an_expired_token_is_expired_only_when_everything_else_is_right() {
        let ours = issuer("tradeauth", "tradeauth-api");
        let now = chrono::Utc::now();
        let then = now - chrono::Duration::minutes(30);
        let tier = Tier::new(1).unwrap();
        let sign = |i: &TokenIssuer, exp| {
            i.sign(Uuid::now_v7(), Uuid::now_v7(), tier, then, exp)
                .unwrap()
                .0
        };
        let live = sign(&ours, now + chrono::Duration::minutes(5));
        assert!(ours.verify(&live).is_ok());
        let expired = sign(&ours, now - chrono::Duration::minutes(1));
        assert!(matches!(ours.verify(&expired), Err(TokenError::Expired)));
        // Same key, other issuer or audience: invalid, whether or not it has expired.
        for other in [
            issuer("elsewhere", "tradeauth-api"),
            issuer("tradeauth", "other-api"),
        ] {
            for exp in [
                now - chrono::Duration::minutes(1),
                now + chrono::Duration::minutes(5),
            ] {
                assert!(
                    matches!(ours.verify(&sign(&other, exp)), Err(TokenError::Invalid)),
                    "exp {exp}"
                );
            }
        }
    }
}
