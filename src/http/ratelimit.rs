//! Rate limits on every write endpoint (API.md, "Rate limits").
//!
//! One middleware classifies the request (login, register, refresh, mail, other write),
//! derives the bucket keys — client IP, the account a login body names (by username or
//! email alike), the session of
//! a refresh token, the authenticated user — counts the request in every bucket (every
//! request counts, successful or not) and answers 429 when one is empty. Every response of
//! a limited endpoint carries `RateLimit-*` headers for the most restrictive bucket.

use super::error::ApiError;
use super::extract::{client_ip, presented, Presented};
use super::AppState;
use crate::service::Error;
use crate::store::ratelimit::{Decision, Limit};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Login,
    Register,
    Refresh,
    Mail,
    Write,
}

fn classify(method: &Method, path: &str) -> Option<Class> {
    if !matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return None;
    }
    let path = path.trim_end_matches('/');
    Some(match path {
        "/api/v1/auth/login" => Class::Login,
        "/api/v1/auth/register" => Class::Register,
        "/api/v1/auth/refresh" => Class::Refresh,
        "/api/v1/auth/password-reset"
        | "/api/v1/auth/password-reset/confirm"
        | "/api/v1/auth/verify-email"
        | "/api/v1/auth/verify-email/resend" => Class::Mail,
        p if p.starts_with("/api/v1/") => Class::Write,
        _ => return None,
    })
}

/// A string field of a JSON body, whichever of `names` is present.
fn body_field(body: &[u8], names: &[&str]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    names
        .iter()
        .find_map(|n| v.get(*n).and_then(|f| f.as_str()).map(str::to_string))
}

pub async fn limit_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let config = &state.service.config;
    let Some(class) = config
        .rate_limit
        .then(|| classify(req.method(), req.uri().path()))
        .flatten()
    else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let ip_addr = client_ip(peer, req.headers(), &config.trusted_proxies);
    let ip = ip_addr.to_string();
    let limits = config.rate_limits;

    // Login and refresh need a look at the body; it is put back untouched.
    let (parts, body) = req.into_parts();
    let (bytes, body) = if matches!(class, Class::Login | Class::Refresh) {
        match axum::body::to_bytes(body, config.max_body_bytes).await {
            Ok(b) => (Some(b), None),
            Err(_) => return ApiError(Error::PayloadTooLarge).into_response(),
        }
    } else {
        (None, Some(body))
    };

    let mut buckets: Vec<(&str, String, Limit)> = Vec::with_capacity(2);
    match class {
        Class::Login => {
            let ident = bytes
                .as_deref()
                .and_then(|b| body_field(b, &["username", "email"]))
                .unwrap_or_default()
                .trim()
                .to_lowercase();
            // The account, not the spelling: a username and an email of one account share
            // a bucket. An identifier with no account is its own bucket.
            let account = match state.service.store.user_by_login(&ident).await {
                Ok(Some(user)) if !ident.is_empty() => format!("user:{}", user.id),
                _ => format!("ident:{ident}"),
            };
            buckets.push(("login_account", format!("{ip}|{account}"), limits.login));
            buckets.push(("login_ip", ip.clone(), limits.login_ip));
        }
        Class::Register => buckets.push(("register_ip", ip.clone(), limits.register_ip)),
        Class::Refresh => {
            let sid = bytes
                .as_deref()
                .and_then(|b| body_field(b, &["refresh_token", "refreshToken"]))
                .and_then(|t| state.service.refresh.parse(&t))
                .map(|(sid, _)| sid);
            match sid {
                Some(sid) => buckets.push(("refresh_session", sid.to_string(), limits.refresh)),
                None => buckets.push(("write_ip", ip.clone(), limits.write_ip)),
            }
        }
        Class::Mail => buckets.push(("mail_ip", ip.clone(), limits.mail_ip)),
        Class::Write => {
            let caller = match presented(&parts.headers) {
                Presented::Bearer(token) => state.service.check_access_token(token).ok(),
                Presented::ApiKey(key) => state.service.check_api_key(key, ip_addr).await.ok(),
                Presented::None => None,
            };
            if let Some(caller) = caller {
                buckets.push(("write_user", caller.user_id.to_string(), limits.write));
            }
            buckets.push(("write_ip", ip.clone(), limits.write_ip));
        }
    }

    let mut decisions = Vec::with_capacity(buckets.len());
    for (name, key, limit) in &buckets {
        decisions.push(state.service.limiter.hit(name, key, *limit).await);
    }
    let denied = decisions
        .iter()
        .filter(|d| !d.allowed)
        .max_by_key(|d| d.retry_after_secs);
    let shown = denied.copied().or_else(|| {
        decisions
            .iter()
            .min_by_key(|d| (d.remaining, std::cmp::Reverse(d.reset_secs)))
            .copied()
    });
    let mut res = match denied {
        Some(d) => ApiError(Error::RateLimited {
            retry_after: d.retry_after_secs,
        })
        .into_response(),
        None => {
            let body = body.unwrap_or_else(|| Body::from(bytes.unwrap_or_default()));
            next.run(Request::from_parts(parts, body)).await
        }
    };
    if let Some(d) = shown {
        add_headers(&mut res, &d);
    }
    res
}

fn add_headers(res: &mut Response, d: &Decision) {
    let h = res.headers_mut();
    h.insert("ratelimit-limit", HeaderValue::from(d.limit));
    h.insert("ratelimit-remaining", HeaderValue::from(d.remaining));
    h.insert("ratelimit-reset", HeaderValue::from(d.reset_secs));
}
