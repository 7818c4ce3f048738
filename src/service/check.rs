//! The hot path of a token check: parse → verify → revocation lookup. No database.
//!
//! Every protected request and every `/auth/verify` runs this. It must stay readable top to
//! bottom in a screenful; anything slow belongs elsewhere.

use super::{Caller, Credential, Error, Result, Service};
use crate::domain::{Tier, UserId};

impl Service {
    /// Checks a bearer access token and returns the caller it names.
    pub fn check_access_token(&self, token: &str) -> Result<Caller> {
        // 1. parse + 2. verify: signature, pinned alg, kid, typ, iss, aud, exp.
        // A rotation on another instance promotes the standby key, which every instance
        // already holds, so no reload is ever needed here (`background` reloads keys).
        let claims = self.tokens.verify(token)?;
        // 3. revocation lookup: the token itself (logout) or its session.
        if self.revocations.is_revoked(&claims.jti, &claims.sid) {
            return Err(Error::InvalidToken);
        }
        // 4. a DPoP-bound token is no bearer token: it needs its proof (`service::dpop`).
        if claims.cnf.is_some() {
            return Err(dpop_needed());
        }
        let tier = Tier::new(claims.tier as i64).map_err(|_| Error::InvalidToken)?;
        // An OAuth client-credentials token names a client, not a user: good for
        // forward-auth (`check_client_token`), refused where a user acts.
        let Some(user) = claims.user() else {
            return Err(Error::ClientNotAllowed);
        };
        Ok(Caller {
            user_id: UserId(user),
            tier,
            credential: Credential::Session {
                sid: claims.sid,
                jti: claims.jti,
                exp: claims.exp,
            },
        })
    }
}

/// A client-credentials token's client and tier.
#[derive(Debug, Clone)]
pub struct ClientCaller {
    pub client_id: String,
    pub tier: Tier,
}

impl Service {
    /// Checks a client-credentials access token (no user): its client and tier.
    pub fn check_client_token(&self, token: &str) -> Result<ClientCaller> {
        let claims = self.tokens.verify(token)?;
        if self.revocations.is_revoked(&claims.jti, &claims.sid) {
            return Err(Error::InvalidToken);
        }
        if claims.cnf.is_some() {
            return Err(dpop_needed());
        }
        client_caller(claims)
    }
}

/// The refusal of a DPoP-bound token presented as a bearer token.
fn dpop_needed() -> Error {
    Error::InvalidDpopProof(
        "this access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof".into(),
    )
}

/// The client a client-credentials token names (`sub` = `client_id`, no user).
pub(super) fn client_caller(claims: crate::tokens::AccessClaims) -> Result<ClientCaller> {
    match (claims.user(), claims.client_id) {
        (None, Some(client_id)) if client_id == claims.sub => Ok(ClientCaller {
            client_id,
            tier: Tier::new(claims.tier as i64).map_err(|_| Error::InvalidToken)?,
        }),
        _ => Err(Error::InvalidToken),
    }
}
