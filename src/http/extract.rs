//! Extractors: JSON bodies with our error shape, the caller (`AuthUser`), the minimum-tier
//! guard (`MinTier`), the client IP and the request context. Every rejection is an
//! [`ApiError`], so it is rendered like any other error.

use super::error::ApiError;
use super::AppState;
use crate::domain::Tier;
use crate::service::{Caller, Error, RequestContext};
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use ipnet::IpNet;
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn body_rejection(status: u16, text: String) -> Error {
    if status == 413 {
        Error::PayloadTooLarge
    } else {
        Error::Validation {
            message: text,
            details: Default::default(),
        }
    }
}

/// `Json<T>` whose rejections are ours: malformed JSON, a wrong content type, a missing or
/// mistyped field → 400 `validation_error`; a body over the limit → 413.
pub struct AppJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    let status = r.status().as_u16();
    let text = match &r {
        JsonRejection::MissingJsonContentType(_) => {
            "expected a JSON body with Content-Type: application/json".to_string()
        }
        JsonRejection::JsonSyntaxError(_) => "the request body is not valid JSON".to_string(),
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let text = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, t)| t);
            let (field, message) = shape_error(text, "body");
            return Error::field(&field, message);
        }
        other => other.body_text(),
    };
    body_rejection(status, text)
}

/// A body or query of the wrong shape, said in the client's terms: the field at fault (or
/// `whole`) and what it must be, without serde's Rust type names and positions.
/// `remember_me: invalid type: string "yes", expected a boolean at line 1 column 64` →
/// (`remember_me`, `invalid type: string "yes", expected a boolean`).
fn shape_error(text: &str, whole: &str) -> (String, String) {
    let text = match text.rfind(" at line ") {
        Some(i) => &text[..i],
        None => text,
    };
    let (field, problem) = match text.split_once(": ") {
        Some((path, rest))
            if !path.is_empty()
                && path
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')) =>
        {
            (path.to_string(), rest)
        }
        _ => (whole.to_string(), text),
    };
    if let Some(missing) = problem
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        let path = if field == whole {
            missing.to_string()
        } else {
            format!("{field}.{missing}")
        };
        return (path, format!("{missing} is required"));
    }
    // "expected struct LoginRequest with 6 elements" names our type, not the client's.
    let problem = match problem.find("expected struct ") {
        Some(i) => format!("{}expected a JSON object", &problem[..i]),
        None => problem.to_string(),
    };
    (field, problem)
}

/// An optional JSON body: absent or empty → `None`; present → parsed like [`AppJson`].
pub struct MaybeJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for MaybeJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|r: BytesRejection| {
                    ApiError(body_rejection(r.status().as_u16(), r.body_text()))
                })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(MaybeJson(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| MaybeJson(Some(v)))
            .map_err(|e| ApiError(Error::field("body", format!("invalid request body: {e}"))))
    }
}

/// The client address: the socket peer, unless that peer is a trusted proxy — then the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut leftmost = None;
    for entry in entries.iter().rev() {
        // An entry we cannot read ends the walk: believing what stands left of it would
        // let the client choose its own address.
        let Some(ip) = parse_forwarded(entry) else {
            return peer;
        };
        if !is_trusted(&ip) {
            return ip;
        }
        leftmost = Some(ip);
    }
    leftmost.unwrap_or(peer)
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_forwarded(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

fn peer_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Where the request came from.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let ip = client_ip(
            peer_of(parts),
            &parts.headers,
            &state.service.config.trusted_proxies,
        );
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(Ctx(RequestContext { ip, user_agent }))
    }
}

/// The credential a request presents, before it is checked.
pub enum Presented<'a> {
    Bearer(&'a str),
    ApiKey(&'a str),
    None,
}

pub fn presented(headers: &HeaderMap) -> Presented<'_> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Presented::ApiKey(key.trim());
    }
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Presented::None;
    };
    let auth = auth.trim();
    match auth.split_once(' ') {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() =>
        {
            Presented::Bearer(rest.trim())
        }
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("apikey") && !rest.trim().is_empty() =>
        {
            Presented::ApiKey(rest.trim())
        }
        // Another scheme (Basic, ...) or an empty credential: nothing we can use.
        _ => Presented::None,
    }
}

/// An authenticated caller: a session's access token or an API key.
pub struct AuthUser(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let caller = match presented(&parts.headers) {
            Presented::Bearer(token) => state.service.check_access_token(token)?,
            Presented::ApiKey(key) => {
                let ip = client_ip(
                    peer_of(parts),
                    &parts.headers,
                    &state.service.config.trusted_proxies,
                );
                state.service.check_api_key(key, ip).await?
            }
            Presented::None => return Err(ApiError(Error::MissingToken)),
        };
        Ok(AuthUser(caller))
    }
}

/// An authenticated caller of at least tier `N`; lower tiers get 403 `insufficient_tier`.
pub struct MinTier<const N: u8>(pub Caller);

impl<S: Send + Sync, const N: u8> FromRequestParts<S> for MinTier<N>
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let AuthUser(caller) = AuthUser::from_request_parts(parts, state).await?;
        let min = Tier::new(N as i64).expect("MinTier takes 1..=4");
        caller.require_tier(min)?;
        Ok(MinTier(caller))
    }
}

/// Path and query extractors with our rejections.
pub struct AppPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            // A malformed id names no resource that could exist.
            .map_err(|_| ApiError(Error::NotFound("resource")))
    }
}

pub struct AppQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let text = text
                    .split_once("query string: ")
                    .map_or(text.as_str(), |(_, t)| t);
                let (field, message) = shape_error(text, "query");
                ApiError(Error::field(&field, message))
            })
    }
}

#[cfg(test)]
mod shape_error_tests {
    use super::shape_error;

    #[test]
    fn shape_errors_name_the_field_and_not_our_types() {
        let cases = [
            (
                "remember_me: invalid type: string \"yes\", expected a boolean at line 1 column 64",
                (
                    "remember_me",
                    "invalid type: string \"yes\", expected a boolean",
                ),
            ),
            (
                "invalid length 0, expected struct LoginRequest with 6 elements at line 1 column 2",
                ("body", "invalid length 0, expected a JSON object"),
            ),
            (
                "invalid type: string \"str\", expected struct LoginRequest at line 1 column 5",
                (
                    "body",
                    "invalid type: string \"str\", expected a JSON object",
                ),
            ),
            (
                "missing field `password` at line 1 column 9",
                ("password", "password is required"),
            ),
            (
                "user: missing field `email` at line 1 column 12",
                ("user.email", "email is required"),
            ),
            (
                "allowed_ips[1]: invalid type: integer `5`, expected a string at line 1 column 30",
                (
                    "allowed_ips[1]",
                    "invalid type: integer `5`, expected a string",
                ),
            ),
        ];
        for (raw, (field, message)) in cases {
            let (f, m) = shape_error(raw, "body");
            assert_eq!((f.as_str(), m.as_str()), (field, message), "{raw}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "1.2.3.4, 5.6.7.8:1234, 10.0.0.2".parse().unwrap(),
        );
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "1.2.3.4, garbage".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "5.6.7.8".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
        assert_eq!(
            client_ip(proxy, &bad, &trusted),
            proxy,
            "an unreadable entry stops the walk"
        );
    }
}
