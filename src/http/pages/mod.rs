//! The hosted pages (API.md, "Hosted pages and the consoles"): server-rendered HTML from
//! compile-checked templates (`templates/`, askama, auto-escaped), with the CSS and the few
//! scripts embedded in the binary (`assets/`, served under content-hashed names and cached
//! for a year).
//!
//! The pages are a client of the service like the API: they sign in with cookie mode (the
//! same three cookies), and every form that changes something is a `POST` that passes the
//! CSRF rules — the origin rule, and, for a signed-in user, the session's CSRF token in the
//! form's hidden `csrf_token` field. Nothing changes on `GET`. After a change the browser is
//! redirected (post/redirect/get), except where a secret is shown once.
//!
//! - `assets`: the embedded files and their hashed names;
//! - `session`: who is signed in, the form checks, redirects, `return_to`;
//! - `sign_in`: `/login` (password, TOTP step, passkey button) and `/logout`;
//! - `public`: `/register`, `/verify-email`, `/forgot-password`, `/reset-password`;
//! - `account`: the `/account` console;
//! - `admin`: the `/admin` console (tier 4), with its users, audit log and OAuth clients.

mod account;
mod admin;
mod assets;
mod public;
pub(crate) mod session;
mod sign_in;

use super::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The policy of every page: nothing inline, nothing from elsewhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// The pages' routes, each with the security headers.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(sign_in::router(state))
        .merge(public::router(state))
        .merge(account::router(state))
        .merge(admin::router(state))
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/account") }),
        )
        .layer(middleware::from_fn(security_headers))
        .merge(assets::router())
}

/// CSP, no sniffing, no referrer (a reset link's token must not leak), no caching (pages
/// show personal data and secrets).
pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    res
}

/// What the layout (`base.html`) of every page needs.
pub struct Layout {
    pub title: &'static str,
    pub css: String,
    pub scripts: Vec<String>,
    /// The CSRF token of a signed-in visitor (the navigation's "Sign out" form), or `None`.
    pub signed_in_csrf: Option<String>,
    pub is_admin: bool,
}

impl Layout {
    pub fn new(title: &'static str) -> Self {
        Self {
            title,
            css: assets::url("app.css"),
            scripts: Vec::new(),
            signed_in_csrf: None,
            is_admin: false,
        }
    }

    /// Adds embedded script `name` (deferred, external: the CSP allows nothing inline).
    pub fn script(mut self, name: &str) -> Self {
        self.scripts.push(assets::url(name));
        self
    }

    /// For a signed-in visitor: the navigation with "Sign out".
    pub fn visitor(mut self, visitor: &session::Visitor) -> Self {
        self.signed_in_csrf = Some(visitor.csrf.clone());
        self.is_admin = visitor.user.tier == crate::domain::Tier::ADMIN;
        self
    }
}

/// A rendered template as an HTML response with `status`.
pub(crate) fn html(status: axum::http::StatusCode, page: &impl askama::Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>internal error</p>".to_string()),
            )
                .into_response()
        }
    }
}
