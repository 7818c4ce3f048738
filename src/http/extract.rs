//! Extractors: JSON bodies with our error shape, the credential a request presents
//! ([`Credentials`], read and checked in one place: `http::credentials`) and the caller it proves
//! (`AuthUser`, `MaybeCaller`), the minimum-tier guard (`MinTier`), the client IP and the
//! request context. Every rejection is an [`ApiError`], so it is rendered like any other
//! error.

pub use super::credentials::Credentials;
use super::error::ApiError;
use super::state::AppState;
use crate::domain::Tier;
use crate::service::signatures::RequestView;
use crate::service::{Caller, Error, RequestContext, Service};
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap};
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

/// Parses a JSON value already read into `T`, with [`AppJson`]'s rejections (a dialect
/// reshapes a body before it is parsed).
pub fn parse_json<T: DeserializeOwned>(body: serde_json::Value) -> Result<T, ApiError> {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    axum::Json::<T>::from_bytes(&bytes)
        .map(|axum::Json(v)| v)
        .map_err(|r| ApiError(json_rejection(r)))
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
    // A dual-stack listener sees an IPv4 peer as `::ffff:a.b.c.d`, which no IPv4 network
    // contains: every address is made canonical before it is matched or used as a key.
    let peer = peer.to_canonical();
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
        let Some(ip) = parse_forwarded(entry).map(|ip| ip.to_canonical()) else {
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

/// The socket peer, as axum's `ConnectInfo` recorded it (loopback when served without).
fn peer(extensions: &Extensions) -> IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The socket peer of the request (not the client behind a proxy: see [`Ctx`]).
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer(&parts.extensions)))
    }
}

/// The client address of a request ([`client_ip`] of its peer and headers).
pub fn request_ip(extensions: &Extensions, headers: &HeaderMap, service: &Service) -> IpAddr {
    client_ip(peer(extensions), headers, &service.config().trusted_proxies)
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
        let ip = request_ip(&parts.extensions, &parts.headers, &state.service);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect());
        Ok(Ctx(RequestContext { ip, user_agent }))
    }
}

/// The caller the request's headers prove, the one resolution [`AuthUser`] and
/// [`MaybeCaller`] share (the client IP is worked out only for credentials that need it).
async fn caller_of(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let service = &state.service;
    let credentials = Credentials::from_headers(&parts.headers, &state.cookies())
        .or_signature(&parts.headers, || own_request(parts, service));
    let caller = credentials
        .resolve(service, || {
            request_ip(&parts.extensions, &parts.headers, service)
        })
        .await?;
    credentials.check_csrf(&parts.method, &parts.headers, &caller, service)?;
    Ok(caller)
}

/// A request addressed to tradeauth itself, as the signature base sees it: the method,
/// path and query as received; the host the client addressed — `X-Forwarded-Host` from a
/// trusted proxy (which may rewrite `Host`), else `Host` (or the URI's authority, in
/// HTTP/2); the scheme — `X-Forwarded-Proto` from a trusted proxy, else that of
/// `TRADEAUTH_PUBLIC_URL`.
pub fn own_request<'a>(parts: &'a Parts, service: &'a Service) -> RequestView<'a> {
    let headers = &parts.headers;
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proxied = {
        let peer = peer(&parts.extensions).to_canonical();
        service
            .config()
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer))
    };
    let forwarded = |name| if proxied { text(name) } else { None };
    let authority = forwarded("x-forwarded-host")
        .or_else(|| text("host"))
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let scheme = match forwarded("x-forwarded-proto") {
        Some("https") => "https",
        Some("http") => "http",
        _ => public_scheme(service),
    };
    // The URI as received: a nested router sees its own part of the path only.
    let uri = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(&parts.uri, |o| &o.0);
    RequestView {
        method: parts.method.as_str(),
        scheme,
        authority,
        path: uri.path(),
        query: uri.query(),
        headers,
        has_body: RequestView::body_indicated(headers),
    }
}

/// `https` or `http`, as `TRADEAUTH_PUBLIC_URL` says.
pub fn public_scheme(service: &Service) -> &'static str {
    if service.config().public_url.starts_with("https:") {
        "https"
    } else {
        "http"
    }
}

/// An authenticated caller: a session's access token (header or cookie) or an API key. A
/// request without a usable credential is refused (401); a cookie-authenticated write that
/// fails the CSRF rules, with 403 `csrf_failed`.
pub struct AuthUser(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for AuthUser
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        caller_of(parts, &AppState::from_ref(state))
            .await
            .map(AuthUser)
    }
}

/// The caller if the request proves one, else `None`: for endpoints and middleware that
/// treat anonymous and authenticated requests differently rather than refusing the first
/// (in contrast to `Option<AuthUser>`, whose rejection would hide why a check failed).
pub struct MaybeCaller(pub Option<Caller>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = caller_of(parts, &AppState::from_ref(state)).await.ok();
        Ok(MaybeCaller(caller))
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

#[cfg(test)]
mod client_ip_tests {
    use super::client_ip;
    use axum::http::{HeaderMap, HeaderValue};
    use ipnet::IpNet;
    use std::net::IpAddr;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn an_ipv4_proxy_seen_as_ipv4_mapped_ipv6_is_trusted() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let ip = client_ip(peer, &xff("203.0.113.7"), &trusted);
        assert_eq!(ip, "203.0.113.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn mapped_addresses_are_keyed_as_ipv4() {
        let peer: IpAddr = "::ffff:198.51.100.4".parse().unwrap();
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &[]),
            "198.51.100.4".parse::<IpAddr>().unwrap()
        );
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let ip = client_ip(proxy, &xff("::ffff:203.0.113.9, ::ffff:10.0.0.2"), &trusted);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
