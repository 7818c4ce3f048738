//! `/oauth2/authorize` (`GET` and `POST`), the way back from the hosted login page
//! (`/oauth2/authorize/continue`) and the consent form (`POST /oauth2/consent`).
//!
//! These answer a browser, so they speak HTML and redirects: an error the client must not
//! receive (unknown client, unregistered redirect URI) is a page; any other goes back to
//! the client. The user signs in on `/login` exactly as anywhere else (every login rule
//! applies), and comes back with the request sealed in `return_to`. The consent form is a
//! plain form with the session's CSRF token, like every page of the console.

use crate::http::extract::Ctx;
use crate::http::pages::session::{check_form, visitor, Visitor};
use crate::http::pages::{html, Layout};
use crate::http::ratelimit::{limited, Class};
use crate::http::state::AppState;
use crate::service::oauth::{AuthorizeError, AuthorizeParams, Authorized};
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/oauth2/authorize", get(authorize_get).post(authorize_post))
        .route("/oauth2/authorize/continue", get(authorize_continue))
        .route("/oauth2/logout", get(logout_get).post(logout_post))
        .route(
            "/oauth2/consent",
            limited(post(answer_consent), state, Class::Write),
        )
        .layer(axum::middleware::from_fn(flow_headers))
}

/// The pages' security headers, except that a page may widen `form-action` to the
/// client's redirect URI: browsers apply `form-action` to the redirects that follow a
/// form's submission, and "Allow" redirects to the client.
async fn flow_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            crate::http::pages::CONTENT_SECURITY_POLICY,
        ));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The CSP source of where `redirect_uri` points: its origin, or its scheme for a
/// native app's private-use scheme.
fn csp_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let origin = url.origin();
    let source = if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("{}:", url.scheme())
    };
    source
        .chars()
        .all(|c| c.is_ascii_graphic() && c != ';' && c != ',' && c != '\'')
        .then_some(source)
}

struct ScopeLine {
    name: String,
    words: &'static str,
}

#[derive(Template)]
#[template(path = "oauth_consent.html")]
struct ConsentPage {
    layout: Layout,
    client_name: String,
    scopes: Vec<ScopeLine>,
    csrf: String,
    ticket: String,
}

#[derive(Template)]
#[template(path = "oauth_continue.html")]
struct ContinuePage {
    layout: Layout,
    url: String,
}

#[derive(Template)]
#[template(path = "oauth_signed_out.html")]
struct SignedOutPage {
    layout: Layout,
}

#[derive(Template)]
#[template(path = "oauth_error.html")]
struct ErrorPage {
    layout: Layout,
    message: String,
}

/// An error page: the request cannot go back to its client.
pub fn error_page(status: StatusCode, message: String) -> Response {
    html(
        status,
        &ErrorPage {
            layout: Layout::new("Sign-in request refused"),
            message,
        },
    )
}

/// `302 Found` to `url` (an authorization response, or the way to the login page).
fn found(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(v) => {
            let mut res = StatusCode::FOUND.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "The redirect URI cannot be used.".into(),
        ),
    }
}

/// The request's parameters from a query string or a form body. A parameter sent twice is
/// refused (RFC 6749 §3.1), as an error page: which one to believe is exactly the question.
fn parse_params(raw: &[u8]) -> Result<AuthorizeParams, String> {
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if map
            .insert(k.to_string(), serde_json::Value::String(v.to_string()))
            .is_some()
        {
            return Err(format!("The parameter {k:?} is sent more than once."));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map))
        .map_err(|_| "The request is malformed.".to_string())
}

async fn authorize_get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(params) => run(&state, &ctx, &headers, params, None).await,
        Err(m) => error_page(StatusCode::BAD_REQUEST, m),
    }
}

async fn authorize_post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match parse_params(&body) {
        Ok(params) => run(&state, &ctx, &headers, params, None).await,
        Err(m) => error_page(StatusCode::BAD_REQUEST, m),
    }
}

#[derive(Deserialize)]
struct TicketQuery {
    ticket: Option<String>,
}

/// Back from the login page: the request as it was sealed.
async fn authorize_continue(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<TicketQuery>,
) -> Response {
    match q
        .ticket
        .as_deref()
        .and_then(|t| state.service.open_pending(t))
    {
        Some((params, at)) => run(&state, &ctx, &headers, params, Some(at)).await,
        None => error_page(
            StatusCode::BAD_REQUEST,
            "The sign-in took too long. Go back to the application and start again.".into(),
        ),
    }
}

async fn run(
    state: &AppState,
    ctx: &crate::service::RequestContext,
    headers: &HeaderMap,
    params: AuthorizeParams,
    requested_at: Option<i64>,
) -> Response {
    let visitor = visitor(state, headers, ctx).await;
    let caller = visitor.as_ref().map(|v| v.caller);
    let res = match state
        .service
        .authorize(params, requested_at, caller.as_ref(), ctx)
        .await
    {
        // Back from the login form: that navigation began with a form's submission, so a
        // redirect to the client would fall under the login page's `form-action 'self'`.
        // A page that moves on by itself (and a link) starts a fresh navigation.
        Ok(Authorized::Redirect(url)) | Err(AuthorizeError::Redirect(url))
            if requested_at.is_some() =>
        {
            html(
                StatusCode::OK,
                &ContinuePage {
                    layout: Layout::new("Continuing"),
                    url,
                },
            )
        }
        Ok(Authorized::Redirect(url)) | Err(AuthorizeError::Redirect(url)) => found(&url),
        Err(AuthorizeError::Page(message)) => error_page(StatusCode::BAD_REQUEST, message),
        Ok(Authorized::Login {
            return_to,
            login_hint,
            force,
        }) => {
            let mut to = format!("/login?return_to={}", urlencoding::encode(&return_to));
            if let Some(hint) = login_hint.filter(|h| !h.is_empty()) {
                to.push_str(&format!("&login_hint={}", urlencoding::encode(&hint)));
            }
            if force {
                to.push_str("&prompt=login");
            }
            found(&to)
        }
        Ok(Authorized::Consent {
            client_name,
            scopes,
            ticket,
            redirect_uri,
        }) => match &visitor {
            Some(v) => {
                let mut res = consent_page(v, client_name, scopes, ticket);
                if let Some(source) = csp_source(&redirect_uri) {
                    let csp = crate::http::pages::CONTENT_SECURITY_POLICY.replace(
                        "form-action 'self'",
                        &format!("form-action 'self' {source}"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&csp) {
                        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                    }
                }
                res
            }
            None => error_page(StatusCode::UNAUTHORIZED, "Sign in first.".into()),
        },
    };
    match &visitor {
        Some(v) => v.finish(state, res),
        None => res,
    }
}

fn consent_page(
    v: &Visitor,
    client_name: String,
    scopes: Vec<(String, &'static str)>,
    ticket: String,
) -> Response {
    html(
        StatusCode::OK,
        &ConsentPage {
            layout: Layout::new("Allow access").visitor(v),
            client_name,
            scopes: scopes
                .into_iter()
                .map(|(name, words)| ScopeLine { name, words })
                .collect(),
            csrf: v.csrf.clone(),
            ticket,
        },
    )
}

/// No `Debug` needed: nothing secret, but nothing worth logging either.
#[derive(Deserialize)]
struct ConsentForm {
    csrf_token: Option<String>,
    #[serde(default)]
    ticket: String,
    decision: Option<String>,
}

/// `POST /oauth2/consent`: "Allow" issues the code, "Deny" answers `access_denied`.
async fn answer_consent(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let Some(v) = visitor(&state, &headers, &ctx).await else {
        return error_page(
            StatusCode::UNAUTHORIZED,
            "Your session ended. Go back to the application and start again.".into(),
        );
    };
    if let Err(e) = check_form(&state, &headers, &v, form.csrf_token.as_deref()) {
        return v.finish(&state, error_page(StatusCode::FORBIDDEN, e.message()));
    }
    let allow = form.decision.as_deref() == Some("allow");
    if form
        .ticket
        .starts_with(crate::service::oauth::device::CONSENT_PREFIX)
    {
        let res = super::device::answer_consent(&state, &ctx, &v, &form.ticket, allow).await;
        return v.finish(&state, res);
    }
    let res = match state
        .service
        .answer_consent(&form.ticket, allow, &v.caller, &ctx)
        .await
    {
        Ok(url) | Err(AuthorizeError::Redirect(url)) => {
            let mut res = found(&url);
            *res.status_mut() = StatusCode::SEE_OTHER;
            res
        }
        Err(AuthorizeError::Page(m)) => error_page(StatusCode::BAD_REQUEST, m),
    };
    v.finish(&state, res)
}

#[derive(Deserialize, Default)]
struct LogoutParams {
    id_token_hint: Option<String>,
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

async fn logout_get(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = serde_urlencoded_params(query.unwrap_or_default().as_bytes());
    end_session(&state, &ctx, &headers, params).await
}

async fn logout_post(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = serde_urlencoded_params(&body);
    end_session(&state, &ctx, &headers, params).await
}

fn serde_urlencoded_params(raw: &[u8]) -> Option<LogoutParams> {
    let mut map = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if map
            .insert(k.to_string(), serde_json::Value::String(v.to_string()))
            .is_some()
        {
            return None;
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).ok()
}

/// `/oauth2/logout` (RP-initiated logout). With a valid `id_token_hint` (an expired one
/// too) the session it names ends everywhere, and this browser's session with it. Without
/// one, a signed-in visitor is asked to confirm (the console's "Sign out" form), so a
/// third-party page cannot sign anyone out.
async fn end_session(
    state: &AppState,
    ctx: &crate::service::RequestContext,
    headers: &HeaderMap,
    params: Option<LogoutParams>,
) -> Response {
    let Some(p) = params else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "A parameter is sent more than once.".into(),
        );
    };
    let hint = match p.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => match state.service.read_id_token_hint(h) {
            Some(claims) => Some(claims),
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "The id_token_hint is not an ID token this server issued.".into(),
                )
            }
        },
        None => None,
    };
    let visitor = visitor(state, headers, ctx).await;
    if hint.is_none() {
        return match &visitor {
            Some(v) => v.finish(state, confirm_sign_out(v)),
            None => html(
                StatusCode::OK,
                &SignedOutPage {
                    layout: Layout::new("Signed out"),
                },
            ),
        };
    }
    let browser_sid = visitor.as_ref().and_then(|v| v.caller.session_id());
    match state
        .service
        .end_session(
            hint.as_ref(),
            p.client_id.as_deref(),
            p.post_logout_redirect_uri.as_deref(),
            p.state.as_deref(),
            browser_sid,
            ctx,
        )
        .await
    {
        Ok(outcome) => {
            let mut res = match outcome {
                crate::service::oauth::LoggedOut::Redirect(url) => found(&url),
                crate::service::oauth::LoggedOut::Page => html(
                    StatusCode::OK,
                    &SignedOutPage {
                        layout: Layout::new("Signed out"),
                    },
                ),
            };
            if browser_sid.is_some() {
                crate::http::cookies::clear(&state.cookies(), res.headers_mut());
            }
            res
        }
        Err(m) => error_page(StatusCode::BAD_REQUEST, m),
    }
}

#[derive(Template)]
#[template(path = "oauth_logout.html")]
struct ConfirmPage {
    layout: Layout,
    csrf: String,
}

fn confirm_sign_out(v: &Visitor) -> Response {
    html(
        StatusCode::OK,
        &ConfirmPage {
            layout: Layout::new("Sign out").visitor(v),
            csrf: v.csrf.clone(),
        },
    )
}
