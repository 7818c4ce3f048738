//! DPoP (RFC 9449) at the token and PAR endpoints: the proof of a request (with a server
//! nonce), what a `dpop_bound_access_tokens` client must send, and the binding of an OAuth
//! session's refresh token to the key of the code exchange that started it.
//!
//! A token request with a valid proof gets tokens bound to the proof's key (`cnf.jkt`,
//! `token_type: DPoP`). The session remembers the key: its refresh token is good only
//! with a proof signed by that key, for every client (RFC 9449 §5 binds public clients'
//! refresh tokens; binding confidential clients' too costs them nothing and makes a
//! stolen refresh token useless without the key). A refresh with a proof of an unbound
//! session gets a bound access token; the refresh token stays unbound.

use super::OAuthError;
use crate::domain::oauth::OAuthClient;
use crate::service::dpop::{DpopRefusal, ProofTarget};
use crate::service::Service;
use crate::store::oauth::OAuthSessionLink;

impl Service {
    /// The key of the DPoP proof of a request to the endpoint at `path` (`None` without a
    /// proof, when the client may do without).
    pub(super) async fn endpoint_dpop(
        &self,
        client: &OAuthClient,
        proof: Option<&str>,
        path: &str,
    ) -> Result<Option<String>, OAuthError> {
        let Some(proof) = proof else {
            if client.fapi.dpop_bound {
                return Err(OAuthError::new(
                    400,
                    "invalid_dpop_proof",
                    "this client's tokens must be DPoP-bound (dpop_bound_access_tokens): send a \
                     DPoP proof",
                ));
            }
            return Ok(None);
        };
        let target = ProofTarget {
            method: "POST".into(),
            url: format!("{}{path}", self.config.oidc_issuer),
        };
        match self.check_dpop_proof(proof, &target, None, true).await {
            Ok(p) => Ok(Some(p.jkt)),
            Err(DpopRefusal::Invalid(m)) => Err(OAuthError::new(400, "invalid_dpop_proof", m)),
            Err(DpopRefusal::UseNonce(nonce)) => {
                let mut e = OAuthError::new(
                    400,
                    "use_dpop_nonce",
                    "a server nonce is required in the DPoP proof: retry with the one in \
                     DPoP-Nonce",
                );
                e.dpop_nonce = Some(nonce);
                Err(e)
            }
        }
    }
}

/// The session of a refresh, checked against the key of the request's proof: a bound
/// session needs a proof by its key. The access token binds to the proof's key.
pub(super) fn bound_refresh(
    mut link: OAuthSessionLink,
    jkt: Option<&str>,
) -> Result<OAuthSessionLink, OAuthError> {
    match (link.dpop_jkt.as_deref(), jkt) {
        (Some(bound), Some(presented)) if bound == presented => Ok(link),
        (Some(_), Some(_)) => Err(OAuthError::new(
            400,
            "invalid_dpop_proof",
            "this refresh token is bound to another DPoP key than the proof's",
        )),
        (Some(_), None) => Err(OAuthError::new(
            400,
            "invalid_dpop_proof",
            "this refresh token is DPoP-bound: send a DPoP proof signed by its key",
        )),
        (None, presented) => {
            link.dpop_jkt = presented.map(str::to_string);
            Ok(link)
        }
    }
}
