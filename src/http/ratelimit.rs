//! Rate limits on every write endpoint (API.md, "Rate limits").
//!
//! Each route names its class where it is declared (`limited(post(h), &state,
//! Class::Login)`, or `limit_all` for a router), so a renamed route keeps its limit. The middleware derives the bucket
//! keys — client IP, the account a login body names (by username or email alike), the
//! session of a refresh token, the authenticated user — counts the request in every
//! bucket (every request counts, successful or not) and answers 429 when one is empty.
//! Every response of a limited endpoint carries `RateLimit-*` headers for the most
//! restrictive bucket. Reads (`GET`) pass untouched.

use super::cookies;
use super::dialect;
use super::error::ApiError;
use super::extract::{request_ip, Credentials};
use super::state::AppState;
use crate::service::{Decision, Error, Limit};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

/// Which limits a route answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Login,
    Register,
    Refresh,
    /// Endpoints that send mail (verification, password reset).
    Mail,
    /// Every other write.
    Write,
}

/// `route` limited as `class`.
pub fn limited(
    route: MethodRouter<AppState>,
    state: &AppState,
    class: Class,
) -> MethodRouter<AppState> {
    route.route_layer(from_fn_with_state((state.clone(), class), limit_requests))
}

/// Every route of `router` declared so far limited as `class` (writes only: reads pass).
pub fn limit_all(router: Router<AppState>, state: &AppState, class: Class) -> Router<AppState> {
    router.route_layer(from_fn_with_state((state.clone(), class), limit_requests))
}

/// Field `name` of a form body (`application/x-www-form-urlencoded`), when the body is
/// not JSON.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        return None;
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn limit_requests(
    State((state, class)): State<(AppState, Class)>,
    req: Request,
    next: Next,
) -> Response {
    let service = &state.service;
    let config = service.config();
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !config.rate_limit || !writes {
        return next.run(req).await;
    }
    let ip_addr = request_ip(req.extensions(), req.headers(), service);
    // IPv6 by its /64: one host can rotate through its whole /64 (`client_bucket`).
    let ip = crate::domain::network::client_bucket(ip_addr);
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
            // JSON as the dialect's login handler reads it; a form (the hosted login page)
            // by its one field.
            let ident = bytes
                .as_deref()
                .and_then(|b| {
                    dialect::login_identifier(state.dialect(), b)
                        .or_else(|| form_field(b, "username"))
                })
                .unwrap_or_default();
            let account = service.login_bucket(&ident).await;
            buckets.push(("login_account", format!("{ip}|{account}"), limits.login));
            buckets.push(("login_ip", ip.clone(), limits.login_ip));
        }
        Class::Register => buckets.push(("register_ip", ip.clone(), limits.register_ip)),
        Class::Refresh => {
            let sid = bytes
                .as_deref()
                .and_then(|b| dialect::refresh_token(state.dialect(), b))
                .or_else(|| {
                    cookies::read(&parts.headers, state.cookies().refresh).map(str::to_string)
                })
                .and_then(|t| service.refresh_session(&t));
            match sid {
                Some(sid) => buckets.push(("refresh_session", sid.to_string(), limits.refresh)),
                None => buckets.push(("write_ip", ip.clone(), limits.write_ip)),
            }
        }
        Class::Mail => buckets.push(("mail_ip", ip.clone(), limits.mail_ip)),
        Class::Write => {
            let caller = Credentials::from_headers(&parts.headers, &state.cookies())
                .resolve(service, || ip_addr)
                .await
                .ok();
            if let Some(caller) = caller {
                buckets.push(("write_user", caller.user_id.to_string(), limits.write));
            }
            buckets.push(("write_ip", ip.clone(), limits.write_ip));
        }
    }

    let mut decisions = Vec::with_capacity(buckets.len());
    for (name, key, limit) in &buckets {
        decisions.push(service.hit_limit(name, key, *limit).await);
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
