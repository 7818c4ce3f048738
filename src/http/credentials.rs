//! The credential a request presents ([`Credentials`]): read from the headers in one
//! place, checked in one place. Moved out of `extract`, which holds the extractors that
//! use it.

use super::cookies::{self, CookieNames};
use super::csrf;
use crate::service::dpop::{DpopSubject, ProofTarget};
use crate::service::signatures::{RequestView, SignedCaller};
use crate::service::{Caller, Error, Service};
use axum::http::{header, HeaderMap, Method};
use std::net::IpAddr;

/// The credential a request presents, before it is checked: one variant per kind.
///
/// A new kind (an access cookie, a DPoP proof, an HTTP message signature) is one more
/// variant, read in [`Credentials::from_headers`] and checked in [`Credentials::resolve`];
/// reading stays a header lookup, so a plain Bearer check costs what it did.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// `Authorization: Bearer <access token>` (or `?token=` where an endpoint allows it).
    Bearer(&'a str),
    /// `Authorization: DPoP <access token>` (RFC 9449 §7.1), with the request its `DPoP`
    /// proof must match (filled in by [`Self::or_signature`]).
    Dpop {
        token: &'a str,
        request: Option<RequestView<'a>>,
    },
    /// `X-API-Key: <key>` or `Authorization: ApiKey <key>`.
    ApiKey(&'a str),
    /// The access-token cookie of a browser session (cookie mode): used only when no
    /// header presents a credential, and subject to the CSRF rules ([`Self::check_csrf`]).
    Cookie(&'a str),
    /// An HTTP message signature (RFC 9421, API.md "Signed requests"), with the request
    /// it signs as the server sees it ([`Self::or_signature`]).
    Signature(RequestView<'a>),
    /// Nothing we can use (no header, another scheme, an empty credential).
    None,
}

impl<'a> Credentials<'a> {
    /// The credential in the headers; `X-API-Key` wins over `Authorization`, and any
    /// `Authorization` header wins over the access cookie (named by `cookies`).
    pub fn from_headers(headers: &'a HeaderMap, cookies: &CookieNames) -> Self {
        if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
            return Credentials::ApiKey(key.trim());
        }
        let Some(auth) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return match cookies::read(headers, cookies.access) {
                Some(token) => Credentials::Cookie(token),
                None => Credentials::None,
            };
        };
        match auth.trim().split_once(' ') {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() =>
            {
                Credentials::Bearer(rest.trim())
            }
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("apikey") && !rest.trim().is_empty() =>
            {
                Credentials::ApiKey(rest.trim())
            }
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("dpop") && !rest.trim().is_empty() =>
            {
                Credentials::Dpop {
                    token: rest.trim(),
                    request: None,
                }
            }
            // Another scheme (Basic, ...) or an empty credential: nothing we can use.
            _ => Credentials::None,
        }
    }

    /// An access token from the query string, for clients that cannot send headers: it
    /// counts only when the headers present nothing.
    pub fn or_query_token(self, token: Option<&'a str>) -> Self {
        match (self, token.filter(|t| !t.is_empty())) {
            (Credentials::None | Credentials::Cookie(_), Some(t)) => Credentials::Bearer(t),
            (presented, _) => presented,
        }
    }

    /// A signed request: when the headers present no key or token (an access cookie
    /// gives way too: a browser never adds `Signature-Input` by itself) and carry a
    /// `Signature-Input`, the signature over `view()` — the request as the client sent it.
    /// A Bearer request costs one header lookup more, and only without `Authorization`.
    /// A DPoP token gets the request its proof must match the same way.
    pub fn or_signature(self, headers: &HeaderMap, view: impl FnOnce() -> RequestView<'a>) -> Self {
        match self {
            Credentials::Dpop {
                token,
                request: None,
            } => Credentials::Dpop {
                token,
                request: Some(view()),
            },
            Credentials::None | Credentials::Cookie(_)
                if headers.contains_key("signature-input") =>
            {
                Credentials::Signature(view())
            }
            presented => presented,
        }
    }

    /// Checks a signed request: the caller with the signing key and the signed
    /// `Content-Digest`, for forward-auth's `X-Auth-*` headers. Other credentials
    /// resolve as in [`Self::resolve`], with neither.
    pub async fn resolve_signed(
        self,
        service: &Service,
        ip: impl FnOnce() -> IpAddr,
    ) -> Result<(Caller, Option<SignedCaller>), Error> {
        match self {
            Credentials::Signature(view) => {
                let signed = service.check_signature(&view, ip()).await?;
                Ok((signed.caller, Some(signed)))
            }
            other => other.resolve(service, ip).await.map(|c| (c, None)),
        }
    }

    /// Checks the credential: the caller, or why not (`missing_token` when there is none).
    /// `ip` is asked for only by the kinds that need it (an API key's allow-list).
    pub async fn resolve(
        self,
        service: &Service,
        ip: impl FnOnce() -> IpAddr,
    ) -> Result<Caller, Error> {
        match self {
            Credentials::Bearer(token) | Credentials::Cookie(token) => {
                service.check_access_token(token)
            }
            Credentials::Dpop { token, request } => {
                let (proof, target) = dpop_parts(request)?;
                match service.check_dpop_subject(token, proof, &target).await? {
                    DpopSubject::User(caller) => Ok(caller),
                    DpopSubject::Client(_) => Err(Error::ClientNotAllowed),
                }
            }
            Credentials::ApiKey(key) => service.check_api_key(key, ip()).await,
            Credentials::Signature(view) => {
                service.check_signature(&view, ip()).await.map(|s| s.caller)
            }
            Credentials::None => Err(Error::MissingToken),
        }
    }

    /// The CSRF rules (`http::csrf`) for a request authenticated by the access cookie,
    /// with `method` the method to judge (the original request's at forward-auth).
    /// Header credentials pass: a browser never adds them on its own.
    pub fn check_csrf(
        self,
        method: &Method,
        headers: &HeaderMap,
        caller: &Caller,
        service: &Service,
    ) -> Result<(), Error> {
        match (self, caller.session_id()) {
            (Credentials::Cookie(_), Some(session)) => {
                csrf::check(method, headers, session, service)
            }
            _ => Ok(()),
        }
    }

    /// Whose request it is, for scoping what it leaves behind (idempotency keys): the
    /// user behind a valid access token (so a retry after a refresh is the same caller),
    /// else the credential as presented.
    pub fn owner(self, service: &Service) -> String {
        match self {
            Credentials::Bearer(t) | Credentials::Cookie(t) => {
                match service.check_access_token(t) {
                    Ok(c) => format!("user:{}", c.user_id),
                    Err(_) => format!("bearer:{t}"),
                }
            }
            Credentials::Dpop { token, .. } => format!("dpop:{token}"),
            Credentials::ApiKey(k) => format!("apikey:{k}"),
            Credentials::Signature(view) => {
                let keyid = view
                    .headers
                    .get("signature-input")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                format!("signature:{keyid}")
            }
            Credentials::None => "anonymous".to_string(),
        }
    }
}

/// The `DPoP` proof of a request (one header at most) and the method and URL it must
/// name: those of the request as the client sent it.
pub fn dpop_parts<'a>(
    request: Option<RequestView<'a>>,
) -> Result<(Option<&'a str>, ProofTarget), Error> {
    let Some(view) = request else {
        return Err(Error::InvalidDpopProof(
            "the request the DPoP proof signs is unknown".into(),
        ));
    };
    let mut proofs = view.headers.get_all("dpop").iter();
    let proof = proofs.next().and_then(|v| v.to_str().ok());
    if proofs.next().is_some() {
        return Err(Error::InvalidDpopProof(
            "send one DPoP header, not several".into(),
        ));
    }
    let path = if view.path.is_empty() { "/" } else { view.path };
    Ok((
        proof,
        ProofTarget {
            method: view.method.to_string(),
            url: format!("{}://{}{path}", view.scheme, view.authority),
        },
    ))
}
