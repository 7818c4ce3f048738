//! The CSRF rules of cookie mode (API.md, "Browser sessions"; OWASP's CSRF cheat sheet,
//! ASVS 5.0 V3.5).
//!
//! A request that a cookie authenticates and whose method is not `GET`/`HEAD`/`OPTIONS`
//! must pass both:
//! 1. [`check_origin`]: `Sec-Fetch-Site` is `same-origin` or `none`, or `Origin` is one of
//!    `TRADEAUTH_ALLOWED_ORIGINS`; a request with neither header is refused;
//! 2. [`check_token`]: `X-CSRF-Token` is the session's CSRF token (a MAC over the session
//!    id, `tokens::csrf`).
//!
//! A cookie-mode login has no session yet and checks (1) only. Requests that carry a
//! header credential (Bearer, API key) are not subject to either: a browser never adds
//! those on its own.

use crate::config::Origin;
use crate::service::{Error, Service};
use axum::http::{HeaderMap, Method};
use uuid::Uuid;

/// The header that carries the CSRF token.
pub const HEADER: &str = "x-csrf-token";

/// `GET`, `HEAD` and `OPTIONS` change nothing and are not checked.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Rule (1): the request comes from this origin or an allowed one.
pub fn check_origin(headers: &HeaderMap, service: &Service) -> Result<(), Error> {
    let allowed: &[Origin] = &service.config().allowed_origins;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let site = header("sec-fetch-site");
    if matches!(site, Some("same-origin" | "none")) {
        return Ok(());
    }
    let refusal = match header("origin") {
        Some(origin) if allowed.iter().any(|o| o.as_str() == origin) => return Ok(()),
        Some(origin) => format!(
            "cross-site request refused: Origin {origin} is not an allowed origin (TRADEAUTH_ALLOWED_ORIGINS)"
        ),
        None => match site {
            Some(site) => format!(
                "cross-site request refused: Sec-Fetch-Site is {site} and no allowed Origin was sent"
            ),
            None => "request refused: a cookie-authenticated write must carry Sec-Fetch-Site or Origin".to_string(),
        },
    };
    Err(refuse(service, "origin", refusal))
}

/// Rule (2): `X-CSRF-Token` is the CSRF token of `session`.
pub fn check_token(headers: &HeaderMap, session: Uuid, service: &Service) -> Result<(), Error> {
    match headers.get(HEADER).and_then(|v| v.to_str().ok()) {
        Some(token) if service.csrf_token_matches(session, token) => Ok(()),
        Some(_) => Err(refuse(
            service,
            "token",
            "X-CSRF-Token does not match this session's CSRF token".into(),
        )),
        None => Err(refuse(
            service,
            "token",
            "X-CSRF-Token is required for a cookie-authenticated write".into(),
        )),
    }
}

/// Both rules, for an unsafe `method` of a request that cookies of `session`
/// authenticate; nothing for a safe one.
pub fn check(
    method: &Method,
    headers: &HeaderMap,
    session: Uuid,
    service: &Service,
) -> Result<(), Error> {
    if is_safe(method) {
        return Ok(());
    }
    check_origin(headers, service)?;
    check_token(headers, session, service)
}

fn refuse(service: &Service, reason: &str, message: String) -> Error {
    service
        .metrics()
        .csrf_refusals
        .with_label_values(&[reason])
        .inc();
    Error::CsrfFailed(message)
}
