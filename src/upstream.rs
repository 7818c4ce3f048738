//! For a Rust service behind the proxy: [`ContentDigestLayer`], a tower layer that
//! compares a signed request's body with the `X-Auth-Content-Digest` tradeauth answered.
//!
//! nginx's `auth_request` never sends the body to tradeauth, so tradeauth checks the
//! signature over the `Content-Digest` *value* and hands that value on; the bytes the
//! upstream receives must be compared with it, or a proxy-side attacker could swap the body
//! of a correctly signed request. The proxy sets `X-Auth-Content-Digest` from tradeauth's
//! answer (overwriting anything the client sent; see deploy/nginx-forward-auth.conf).
//!
//! ```no_run
//! use axum::{routing::post, Router};
//! use tradeauth::upstream::ContentDigestLayer;
//!
//! let app: Router = Router::new()
//!     .route("/orders", post(|body: String| async move { body }))
//!     .layer(ContentDigestLayer::new(64 * 1024));
//! ```
//!
//! A request with `X-Auth-Content-Digest` passes only if its body matches every
//! `sha-256`/`sha-512` digest in it; a request that tradeauth accepted as signed
//! (`X-Auth-Method: signature`) without a digest passes only with an empty body. Refusals
//! are 401 `signature_invalid` in tradeauth's error shape (413 for a body over the limit).
//! Requests without either header pass untouched, their bodies unread.

use crate::tokens::httpsig::digest;
use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use futures::future::BoxFuture;
use std::task::{Context, Poll};

/// The layer: `limit` bounds the bytes read from a body.
#[derive(Debug, Clone, Copy)]
pub struct ContentDigestLayer {
    limit: usize,
}

impl ContentDigestLayer {
    pub fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl<S> tower::Layer<S> for ContentDigestLayer {
    type Service = ContentDigest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ContentDigest {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`ContentDigestLayer`] wraps around the upstream's.
#[derive(Debug, Clone)]
pub struct ContentDigest<S> {
    inner: S,
    limit: usize,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message, "code": code }).to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("a static response")
}

impl<S> tower::Service<Request<Body>> for ContentDigest<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let expected = req
            .headers()
            .get("x-auth-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let signed = req
            .headers()
            .get("x-auth-method")
            .is_some_and(|v| v.as_bytes() == b"signature");
        if expected.is_none() && !signed {
            return Box::pin(self.inner.call(req));
        }
        // The clone that was made ready is the one called (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
                return Ok(refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is too large",
                ));
            };
            let ok = match &expected {
                Some(value) => digest::check(value, &bytes).is_ok(),
                None => bytes.is_empty(),
            };
            if !ok {
                return Ok(refuse(
                    StatusCode::UNAUTHORIZED,
                    "signature_invalid",
                    "the body received is not the body signed (X-Auth-Content-Digest)",
                ));
            }
            inner
                .call(Request::from_parts(parts, Body::from(bytes)))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/orders", post(|body: String| async move { body }))
            .layer(ContentDigestLayer::new(1024))
    }

    fn request(digest: Option<&str>, signed: bool, body: &'static str) -> Request<Body> {
        let mut b = Request::post("/orders");
        if let Some(d) = digest {
            b = b.header("x-auth-content-digest", d);
        }
        if signed {
            b = b.header("x-auth-method", "signature");
        }
        b.body(Body::from(body)).unwrap()
    }

    async fn status(req: Request<Body>) -> u16 {
        app().oneshot(req).await.unwrap().status().as_u16()
    }

    #[tokio::test]
    async fn the_body_must_match_the_signed_digest() {
        let body = "{\"symbol\":\"BTC-USD\",\"qty\":1}";
        let good = digest::sha256_field(body.as_bytes());
        let res = app()
            .oneshot(request(Some(&good), true, body))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let echoed = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(
            &echoed[..],
            body.as_bytes(),
            "the handler gets the same bytes"
        );

        let swapped = "{\"symbol\":\"BTC-USD\",\"qty\":100}";
        assert_eq!(status(request(Some(&good), true, swapped)).await, 401);
        let sha512 = digest::sha512_field(body.as_bytes());
        assert_eq!(status(request(Some(&sha512), true, body)).await, 200);
        assert_eq!(status(request(Some("garbage"), true, body)).await, 401);
    }

    #[tokio::test]
    async fn a_signed_request_without_a_digest_has_no_body_and_others_pass() {
        assert_eq!(status(request(None, true, "")).await, 200);
        assert_eq!(status(request(None, true, "smuggled")).await, 401);
        assert_eq!(status(request(None, false, "a bearer request")).await, 200);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let big: &'static str = Box::leak("x".repeat(2048).into_boxed_str());
        let d = digest::sha256_field(big.as_bytes());
        assert_eq!(status(request(Some(&d), true, big)).await, 413);
    }
}
