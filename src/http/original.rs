//! The request a proxy asks about (forward-auth, `GET /api/v1/auth/verify`).
//!
//! nginx's `auth_request` and Traefik's `forwardAuth` send tradeauth a sub-request; the
//! request being authorised is described in headers: `X-Original-Method`,
//! `X-Original-URI`, `X-Original-Host` (nginx, set in `deploy/nginx-forward-auth.conf`)
//! or `X-Forwarded-Method`, `X-Forwarded-Uri`, `X-Forwarded-Host` (Traefik). They are
//! believed only from a peer in `TRADEAUTH_TRUSTED_PROXIES`; from anyone else they are
//! ignored and the sub-request describes itself.

use axum::http::{HeaderMap, Method};
use ipnet::IpNet;
use std::net::IpAddr;

/// What is being authorised: the original request's method, URI (path and query, as
/// received) and host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRequest {
    pub method: Method,
    pub uri: String,
    pub host: Option<String>,
    /// Whether the values came from a trusted proxy's headers (else: the request itself).
    pub from_proxy: bool,
}

impl OriginalRequest {
    /// The original request of a forward-auth call from `peer`; `method`, `uri` and the
    /// `Host` header of the call itself when the peer is not a trusted proxy or sent none.
    pub fn of(
        peer: IpAddr,
        trusted: &[IpNet],
        method: &Method,
        uri: &str,
        headers: &HeaderMap,
    ) -> Self {
        let own = || OriginalRequest {
            method: method.clone(),
            uri: uri.to_string(),
            host: header(headers, "host").map(str::to_string),
            from_proxy: false,
        };
        let peer = peer.to_canonical();
        if !trusted.iter().any(|n| n.contains(&peer)) {
            return own();
        }
        let pick = |nginx: &str, traefik: &str| header(headers, nginx).or(header(headers, traefik));
        let original_method = pick("x-original-method", "x-forwarded-method")
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok());
        let original_uri = pick("x-original-uri", "x-forwarded-uri");
        if original_method.is_none() && original_uri.is_none() {
            return own();
        }
        OriginalRequest {
            method: original_method.unwrap_or_else(|| method.clone()),
            uri: original_uri.unwrap_or(uri).to_string(),
            host: pick("x-original-host", "x-forwarded-host")
                .or(header(headers, "host"))
                .map(str::to_string),
            from_proxy: true,
        }
    }
}

impl OriginalRequest {
    /// The request a forward-auth call asks about, as its signature or DPoP proof signs it: the original method, URI and host
    /// (from a trusted proxy, else the call itself), the call's headers (the proxy passes the
    /// client's `Signature`, `Signature-Input`, `Content-Digest`, `Content-Type` on), and
    /// whether the original had a body: nginx's sub-request has none, so the proxy says so
    /// in `X-Original-Content-Length` (see deploy/nginx-forward-auth.conf).
    pub fn view<'a>(
        &'a self,
        state: &'a crate::http::state::AppState,
        headers: &'a HeaderMap,
    ) -> crate::service::signatures::RequestView<'a> {
        let original = self;
        use crate::service::signatures::RequestView;
        let (path, query) = RequestView::split_target(&original.uri);
        let announced = original.from_proxy
            && headers
                .get("x-original-content-length")
                .is_some_and(|v| !matches!(v.as_bytes().trim_ascii(), b"" | b"0"));
        let scheme = match headers
            .get("x-forwarded-proto")
            .map(|v| v.as_bytes())
            .filter(|_| original.from_proxy)
        {
            Some(b"https") => "https",
            Some(b"http") => "http",
            _ => crate::http::extract::public_scheme(&state.service),
        };
        RequestView {
            method: original.method.as_str(),
            scheme,
            authority: original.host.as_deref().unwrap_or_default(),
            path,
            query,
            headers,
            has_body: announced || RequestView::body_indicated(headers),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_trusted_proxy_describes_the_original_request() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let nginx = headers(&[
            ("x-original-method", "POST"),
            ("x-original-uri", "/orders?b=2&a=1"),
            ("x-original-host", "api.example.com"),
            ("host", "auth.internal"),
        ]);
        let o = OriginalRequest::of(
            "10.1.2.3".parse().unwrap(),
            &trusted,
            &Method::GET,
            "/api/v1/auth/verify",
            &nginx,
        );
        assert_eq!(o.method, Method::POST);
        assert_eq!(o.uri, "/orders?b=2&a=1");
        assert_eq!(o.host.as_deref(), Some("api.example.com"));
        assert!(o.from_proxy);

        let traefik = headers(&[
            ("x-forwarded-method", "DELETE"),
            ("x-forwarded-uri", "/orders/7"),
            ("x-forwarded-host", "api.example.com"),
        ]);
        let o = OriginalRequest::of(
            "::ffff:10.0.0.9".parse().unwrap(),
            &trusted,
            &Method::GET,
            "/api/v1/auth/verify",
            &traefik,
        );
        assert_eq!((o.method, o.uri.as_str()), (Method::DELETE, "/orders/7"));
    }

    #[test]
    fn anyone_else_describes_only_itself() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let forged = headers(&[
            ("x-original-method", "GET"),
            ("x-original-uri", "/harmless"),
            ("host", "auth.example.com"),
        ]);
        let o = OriginalRequest::of(
            "203.0.113.5".parse().unwrap(),
            &trusted,
            &Method::POST,
            "/api/v1/auth/verify",
            &forged,
        );
        assert_eq!(o.method, Method::POST);
        assert_eq!(o.uri, "/api/v1/auth/verify");
        assert_eq!(o.host.as_deref(), Some("auth.example.com"));
        assert!(!o.from_proxy);
    }
}
