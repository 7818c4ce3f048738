//! DPoP (RFC 9449) at the service: checking a proof against the request it came with,
//! the server's nonces, and the check of a DPoP-bound access token wherever tokens are
//! checked (native endpoints, forward-auth, the WebSocket).
//!
//! A proof passes when its signature verifies with its own key
//! ([`crate::tokens::dpop::verify`]), `htm` is the request's method, `htu` its URL (query
//! and fragment ignored), `iat` is within the last 60 s (5 s of clock skew ahead), `ath`
//! is the hash of the access token it comes with (and absent without one), and its `jti`
//! was never seen within that window on any instance (the replay cache of signed
//! requests: Redis when configured; a proof is never accepted without its one recorded
//! use). The token and PAR endpoints also require a server nonce.
//!
//! Nonces are stateless: a nonce is an empty message sealed (AES-GCM, the page seal key
//! every instance shares) with an expiry 5 minutes ahead, so any instance accepts
//! another's, and nothing is stored. A proof without a nonce, or with an expired one,
//! gets `use_dpop_nonce` and a fresh nonce in `DPoP-Nonce`.

use super::oauth::client_auth::replay_key;
use super::{Caller, Credential, Error, Result, Service};
use crate::domain::{Tier, UserId};
use crate::tokens::dpop::{access_token_hash, htu_matches, verify, Proof};
use crate::tokens::AccessClaims;
use chrono::TimeDelta;

const NONCE: &str = "dpop-nonce";
const NONCE_TTL: TimeDelta = TimeDelta::minutes(5);
/// How old a proof's `iat` may be, and how far ahead (seconds).
const MAX_AGE: i64 = 60;
const MAX_AHEAD: i64 = 5;
const REPLAYED: &str =
    "this DPoP proof was already used (its jti); make a new proof for each request";
const UNAVAILABLE: &str = "the DPoP proof could not be checked for replay; retry shortly";

/// Why a proof was refused.
#[derive(Debug, Clone)]
pub enum DpopRefusal {
    /// `invalid_dpop_proof`, and what is wrong.
    Invalid(String),
    /// `use_dpop_nonce`: retry with this nonce.
    UseNonce(String),
}

impl From<DpopRefusal> for Error {
    fn from(r: DpopRefusal) -> Self {
        match r {
            DpopRefusal::Invalid(m) => Error::InvalidDpopProof(m),
            DpopRefusal::UseNonce(_) => {
                Error::InvalidDpopProof("the DPoP proof needs a server nonce".into())
            }
        }
    }
}

/// The request a proof must match: its method and URL.
#[derive(Debug, Clone)]
pub struct ProofTarget {
    pub method: String,
    pub url: String,
}

impl Service {
    /// A fresh server nonce (`DPoP-Nonce`).
    pub fn dpop_nonce(&self) -> String {
        self.seal(NONCE, NONCE_TTL, b"")
    }

    /// Checks `proof` against `target`; `access_token`: the token it comes with (its
    /// `ath`); `require_nonce`: the token and PAR endpoints want one.
    /// Counted in `oauth_proofs_total{kind="dpop"}`.
    pub async fn check_dpop_proof(
        &self,
        proof: &str,
        target: &ProofTarget,
        access_token: Option<&str>,
        require_nonce: bool,
    ) -> std::result::Result<Proof, DpopRefusal> {
        let checked = self
            .dpop_proof(proof, Some(target), access_token, require_nonce)
            .await;
        self.count_proof(&checked);
        checked
    }

    /// Checks the proof a resource server received with a DPoP-bound `access_token` and
    /// passes along to introspection (`DPoP` header): its signature, `ath`, `iat` window and
    /// single use. Its `htm` and `htu` describe the resource server's own request, which
    /// that server compares; tradeauth cannot.
    pub async fn check_forwarded_dpop_proof(
        &self,
        proof: &str,
        access_token: &str,
    ) -> std::result::Result<Proof, DpopRefusal> {
        let checked = self
            .dpop_proof(proof, None, Some(access_token), false)
            .await;
        self.count_proof(&checked);
        checked
    }

    fn count_proof(&self, checked: &std::result::Result<Proof, DpopRefusal>) {
        let outcome = match &checked {
            Ok(_) => "accepted",
            Err(DpopRefusal::UseNonce(_)) => "use_nonce",
            Err(DpopRefusal::Invalid(m)) if m == REPLAYED => "replayed",
            Err(DpopRefusal::Invalid(m)) if m == UNAVAILABLE => "unavailable",
            Err(DpopRefusal::Invalid(_)) => "invalid",
        };
        self.metrics
            .oauth_proofs
            .with_label_values(&["dpop", outcome])
            .inc();
    }

    async fn dpop_proof(
        &self,
        proof: &str,
        target: Option<&ProofTarget>,
        access_token: Option<&str>,
        require_nonce: bool,
    ) -> std::result::Result<Proof, DpopRefusal> {
        let invalid = |m: &str| DpopRefusal::Invalid(m.to_string());
        let p = verify(proof).map_err(invalid)?;
        if let Some(target) = target {
            if p.htm != target.method {
                return Err(invalid(&format!(
                    "the DPoP proof's htm is {:?}; this request is {}",
                    p.htm, target.method
                )));
            }
            if !htu_matches(&p.htu, &target.url) {
                return Err(invalid(&format!(
                    "the DPoP proof's htu is {:?}; this request is to {}",
                    p.htu, target.url
                )));
            }
        }
        let now = chrono::Utc::now().timestamp();
        if p.iat < now - MAX_AGE || p.iat > now + MAX_AHEAD {
            return Err(invalid(&format!(
                "the DPoP proof's iat is {} s from the server's clock; it must be within the \
                 last {MAX_AGE} s",
                p.iat - now
            )));
        }
        match (access_token, p.ath.as_deref()) {
            (Some(t), Some(ath)) if ath == access_token_hash(t) => {}
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "the DPoP proof's ath is not the hash of this access token",
                ))
            }
            (Some(_), None) => {
                return Err(invalid(
                    "the DPoP proof has no ath (the access token's hash)",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "the DPoP proof has an ath, but no access token came with it",
                ))
            }
            (None, None) => {}
        }
        if require_nonce {
            let live = p
                .nonce
                .as_deref()
                .is_some_and(|n| self.unseal(NONCE, n).is_some());
            if !live {
                return Err(DpopRefusal::UseNonce(self.dpop_nonce()));
            }
        }
        let key = replay_key(&["dpop", &p.jkt, &p.jti]);
        let ttl = std::time::Duration::from_secs((MAX_AGE + MAX_AHEAD + 5) as u64);
        match self.replay.first_use(&key, ttl).await {
            Ok(true) => Ok(p),
            Ok(false) => Err(invalid(REPLAYED)),
            Err(e) => {
                tracing::warn!(error = %e, "DPoP replay cache unavailable");
                Err(invalid(UNAVAILABLE))
            }
        }
    }

    /// Checks a DPoP-bound access token (`Authorization: DPoP`) with its proof: the
    /// token's claims, once the proof matches the request and the token's key.
    pub async fn check_dpop_token(
        &self,
        token: &str,
        proof: Option<&str>,
        target: &ProofTarget,
    ) -> Result<AccessClaims> {
        let claims = self.tokens.verify(token)?;
        if self.revocations.is_revoked(&claims.jti, &claims.sid) {
            return Err(Error::InvalidToken);
        }
        let Some(cnf) = &claims.cnf else {
            return Err(Error::InvalidDpopProof(
                "this access token is not DPoP-bound; send it as Authorization: Bearer".into(),
            ));
        };
        let Some(proof) = proof else {
            return Err(Error::InvalidDpopProof(
                "a DPoP-bound token needs a DPoP proof header".into(),
            ));
        };
        let p = self
            .check_dpop_proof(proof, target, Some(token), false)
            .await?;
        if p.jkt != cnf.jkt {
            return Err(Error::InvalidDpopProof(
                "the DPoP proof is signed by another key than the one the token is bound to".into(),
            ));
        }
        Ok(claims)
    }

    /// Whom a DPoP-bound token speaks for (as [`Service::check_access_token`] and
    /// [`Service::check_client_token`]), its proof checked once.
    pub async fn check_dpop_subject(
        &self,
        token: &str,
        proof: Option<&str>,
        target: &ProofTarget,
    ) -> Result<DpopSubject> {
        let claims = self.check_dpop_token(token, proof, target).await?;
        let tier = Tier::new(claims.tier as i64).map_err(|_| Error::InvalidToken)?;
        let Some(user) = claims.user() else {
            return super::check::client_caller(claims).map(DpopSubject::Client);
        };
        Ok(DpopSubject::User(Caller {
            user_id: UserId(user),
            tier,
            credential: Credential::Session {
                sid: claims.sid,
                jti: claims.jti,
                exp: claims.exp,
            },
        }))
    }
}

/// Whom a DPoP-bound token speaks for.
pub enum DpopSubject {
    User(Caller),
    /// A client-credentials token: a client, no user.
    Client(super::check::ClientCaller),
}
