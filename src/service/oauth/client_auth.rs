//! Client authentication at the token, PAR, introspection and revocation endpoints:
//! `client_secret_basic` / `client_secret_post` (the two are interchangeable for a client
//! with a secret), `none` for public clients, and `private_key_jwt` (RFC 7523 §2.2): a
//! JWT the client signs with a key of its registered `jwks` or `jwks_uri`.
//!
//! An assertion must say `iss` = `sub` = the client id, name this issuer or the URL of the
//! endpoint it is presented at in `aud`, carry an `exp` at most 5 minutes ahead and a
//! `jti`; each `jti` is accepted once per client, on every instance (the replay cache of
//! signed requests: Redis when configured). The reason a check failed is in
//! `error_description`; nothing else about the client's keys is revealed.

use super::{hash, OAuthError};
use crate::domain::fapi::{AuthMethod, ASSERTION_ALGS};
use crate::domain::oauth::{ClientType, OAuthClient};
use crate::service::Service;
use crate::tokens::jws::Parsed;
use serde_json::Value;

/// `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How far ahead an assertion's `exp` may be.
const MAX_ASSERTION_LIFETIME: i64 = 300;
const REPLAYED: &str =
    "client_assertion was already used (its jti); sign a new one for each request";
/// Clock skew allowed on `exp` and `nbf` (seconds).
const LEEWAY: i64 = 5;

/// Client credentials as presented: from `Authorization: Basic`, or the form.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// They came in an `Authorization: Basic` header.
    pub basic: bool,
    /// `client_assertion_type` (RFC 7523 §2.2).
    pub assertion_type: Option<String>,
    /// `client_assertion`: the signed JWT.
    pub assertion: Option<String>,
    /// The path of the endpoint they were presented at (`/oauth2/token`, `/oauth2/par`,
    /// ...): an assertion's `aud` may be its URL.
    pub endpoint: &'static str,
}

impl Service {
    /// Authenticates the client of a token, PAR, introspection or revocation request.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<OAuthClient, OAuthError> {
        if creds.assertion.is_some() || creds.assertion_type.is_some() {
            let checked = self.authenticate_assertion(creds).await;
            let outcome = match &checked {
                Ok(_) => "accepted",
                Err(e) if e.description == REPLAYED => "replayed",
                Err(e) if e.status == 503 => "unavailable",
                Err(_) => "invalid",
            };
            self.metrics
                .oauth_proofs
                .with_label_values(&["client_assertion", outcome])
                .inc();
            return checked;
        }
        let challenge = |mut e: OAuthError| {
            e.basic_challenge = creds.basic;
            e
        };
        let Some(client_id) = creds.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(challenge(OAuthError::invalid_client(
                "no client authentication: send client_id (and client_secret, or HTTP Basic, \
                 or a client_assertion)",
            )));
        };
        let Some(client) = self.store.client(client_id).await? else {
            return Err(challenge(OAuthError::invalid_client(format!(
                "client_id {client_id:?} is not registered"
            ))));
        };
        if client.fapi.auth_method == AuthMethod::PrivateKeyJwt {
            return Err(challenge(OAuthError::invalid_client(
                "this client authenticates with private_key_jwt: send client_assertion_type \
                 and client_assertion",
            )));
        }
        match (client.client_type, creds.client_secret.as_deref()) {
            (ClientType::Public, None) => Ok(client),
            (ClientType::Public, Some(_)) => Err(challenge(OAuthError::invalid_client(
                "this is a public client: it authenticates with no secret (method none)",
            ))),
            (ClientType::Confidential, None) => Err(challenge(OAuthError::invalid_client(
                "this confidential client must authenticate with its secret \
                 (client_secret_basic or client_secret_post)",
            ))),
            (ClientType::Confidential, Some(secret)) => {
                let ok = client.secret_hash.as_deref().is_some_and(|h| {
                    use subtle::ConstantTimeEq;
                    bool::from(h.ct_eq(&hash(secret)))
                });
                if ok {
                    Ok(client)
                } else {
                    Err(challenge(OAuthError::invalid_client(
                        "the client secret is wrong (an old secret stops working when it is rotated)",
                    )))
                }
            }
        }
    }

    /// `private_key_jwt`: the assertion's signature, claims and single use.
    async fn authenticate_assertion(
        &self,
        creds: &ClientCredentials,
    ) -> Result<OAuthClient, OAuthError> {
        let bad = |m: &str| OAuthError::invalid_client(m.to_string());
        if creds.client_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (a secret and a client_assertion); use one method",
            ));
        }
        if creds.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            return Err(bad(&format!(
                "client_assertion_type must be {ASSERTION_TYPE}"
            )));
        }
        let Some(assertion) = creds.assertion.as_deref().filter(|a| !a.is_empty()) else {
            return Err(bad("client_assertion is missing"));
        };
        let jws =
            Parsed::new(assertion).ok_or_else(|| bad("client_assertion is not a signed JWT"))?;
        let Some(alg) = jws.algorithm() else {
            return Err(bad(&format!(
                "client_assertion must be signed with one of {}",
                ASSERTION_ALGS.join(", ")
            )));
        };
        let claims = &jws.claims;
        let text = |k: &str| claims.get(k).and_then(Value::as_str);
        let iss = text("iss").unwrap_or_default();
        let client_id = match creds.client_id.as_deref().filter(|c| !c.is_empty()) {
            Some(id) if id != iss => {
                return Err(bad(
                    "client_assertion's iss is not the client_id sent with it",
                ))
            }
            Some(id) => id.to_string(),
            None => iss.to_string(),
        };
        let Some(client) = self.store.client(&client_id).await? else {
            return Err(bad(&format!("client_id {client_id:?} is not registered")));
        };
        if client.fapi.auth_method != AuthMethod::PrivateKeyJwt {
            return Err(bad(&format!(
                "this client authenticates with {}, not private_key_jwt",
                client.fapi.auth_method.as_str()
            )));
        }
        let kid = jws.header.get("kid").and_then(Value::as_str);
        let keys = self
            .client_keys
            .keys(&client, kid)
            .await
            .map_err(|e| bad(&e))?;
        let verified = keys
            .iter()
            .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
            .any(|k| jws.verifies_with(k, alg));
        if !verified {
            return Err(bad(
                "client_assertion's signature does not verify with any key of the client",
            ));
        }
        if text("sub") != Some(client_id.as_str()) {
            return Err(bad("client_assertion's sub must be the client_id"));
        }
        let issuer = &self.config.oidc_issuer;
        let audiences = [
            issuer.clone(),
            format!("{issuer}/oauth2/token"),
            format!("{issuer}{}", creds.endpoint),
        ];
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !aud_ok {
            return Err(bad(
                "client_assertion's aud must be the issuer or the URL of this endpoint",
            ));
        }
        let now = chrono::Utc::now().timestamp();
        let Some(exp) = claims.get("exp").and_then(Value::as_i64) else {
            return Err(bad("client_assertion must carry exp"));
        };
        if exp + LEEWAY <= now {
            return Err(bad("client_assertion has expired"));
        }
        if exp - now > MAX_ASSERTION_LIFETIME {
            return Err(bad(
                "client_assertion's exp is more than 5 minutes ahead; make it short-lived",
            ));
        }
        if claims
            .get("nbf")
            .and_then(Value::as_i64)
            .is_some_and(|nbf| nbf > now + LEEWAY)
        {
            return Err(bad("client_assertion is not valid yet (nbf)"));
        }
        let Some(jti) = text("jti").filter(|j| !j.is_empty()) else {
            return Err(bad("client_assertion must carry a jti"));
        };
        let key = replay_key(&["client_assertion", &client_id, jti]);
        let ttl = std::time::Duration::from_secs((exp - now).max(0) as u64 + 10);
        if !self.replay.first_use(&key, ttl).await? {
            return Err(bad(REPLAYED));
        }
        Ok(client)
    }
}

/// A replay-cache key: SHA-256 over the parts, each length-prefixed (so no two part
/// lists give the same bytes), in a namespace of their own.
pub(crate) fn replay_key(parts: &[&str]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
