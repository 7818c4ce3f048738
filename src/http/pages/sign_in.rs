//! `/login` (password, then the TOTP step when the account has one; the passkey button),
//! and `/logout`.
//!
//! The TOTP step must not ask for the password again, nor keep it readable in the page: the
//! first step hands the browser a sealed ticket (`Service::seal`, AES-256-GCM, 5 minutes)
//! holding what the second step needs, and the second step signs in with it exactly as the
//! API's login with `totp_code` does — same lockout, same rate limits, same events.

use super::session::{self, safe_return_to, see_other, status_of, visitor};
use super::{html, Layout};
use crate::http::cookies;
use crate::http::csrf;
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limited, Class};
use crate::http::requests::secret;
use crate::http::state::AppState;
use crate::service::auth::LoginInput;
use crate::service::Error;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::{Deserialize, Serialize};

const TICKET: &str = "login-second-step";

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/login",
            limited(get(login_page).post(sign_in), state, Class::Login),
        )
        .route(
            "/login/verify",
            limited(post(second_step), state, Class::Login),
        )
        .route("/logout", limited(post(sign_out), state, Class::Write))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    return_to: String,
    username: String,
    remember_me: bool,
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct SecondStepPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    ticket: String,
    return_to: String,
}

fn login_layout() -> Layout {
    Layout::new("Sign in").script("passkey.js")
}

fn login_form(
    status: StatusCode,
    error: Option<String>,
    return_to: String,
    username: String,
    remember_me: bool,
) -> Response {
    html(
        status,
        &LoginPage {
            layout: login_layout(),
            error,
            status: None,
            return_to,
            username,
            remember_me,
        },
    )
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    done: Option<String>,
    /// An OAuth client's `login_hint`: the identifier to prefill.
    login_hint: Option<String>,
    /// `login`: show the form even with a live session (OAuth `prompt=login`, `max_age`).
    prompt: Option<String>,
}

/// Fixed confirmations other pages redirect here with (`?done=`): nothing from the query
/// is ever shown as text.
fn confirmation(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "signed_out" => "You are signed out.",
        "registered" => "Your account is ready. Sign in.",
        "registered_verify" => {
            "Your account is ready. Check your email for the verification link, then sign in."
        }
        "password_reset" => "Your password is set. Sign in with it.",
        "verified" => "Your email address is verified. Sign in.",
        _ => return None,
    };
    Some(text.to_string())
}

async fn login_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let return_to = safe_return_to(q.return_to.as_deref());
    // Already signed in (a link from a mail, say): straight on — unless an OAuth client
    // asked for a fresh sign-in.
    if q.prompt.as_deref() != Some("login") {
        if let Some(v) = visitor(&state, &headers, &ctx).await {
            return v.finish(&state, see_other(&return_to));
        }
    }
    html(
        StatusCode::OK,
        &LoginPage {
            layout: login_layout(),
            error: None,
            status: confirmation(q.done.as_deref()),
            return_to,
            username: q.login_hint.unwrap_or_default(),
            remember_me: false,
        },
    )
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    password: Option<String>,
    remember_me: Option<String>,
    return_to: Option<String>,
}

/// What the second step needs, sealed into the ticket. No `Debug`: it holds a password.
#[derive(Serialize, Deserialize)]
struct Pending {
    username: String,
    password: String,
    remember_me: bool,
}

async fn sign_in(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    let remember_me = form.remember_me.is_some();
    if let Err(e) = csrf::check_origin(&headers, &state.service) {
        return login_form(
            status_of(&e),
            Some(e.message()),
            return_to,
            form.username,
            remember_me,
        );
    }
    let password = form.password.unwrap_or_default();
    let input = LoginInput {
        identifier: form.username.clone(),
        password: secret(Some(password.clone())),
        remember_me,
        totp_code: None,
        recovery_code: None,
    };
    match state.service.login(input, &ctx).await {
        Ok(issued) => signed_in(&state, &issued, &return_to),
        Err(Error::MfaRequired) => {
            let pending = Pending {
                username: form.username,
                password,
                remember_me,
            };
            let bytes = serde_json::to_vec(&pending).unwrap_or_default();
            let ticket = state
                .service
                .seal(TICKET, chrono::TimeDelta::minutes(5), &bytes);
            second_step_page(StatusCode::OK, None, ticket, return_to)
        }
        Err(e) => login_form(
            status_of(&e),
            Some(e.message()),
            return_to,
            form.username,
            remember_me,
        ),
    }
}

fn second_step_page(
    status: StatusCode,
    error: Option<String>,
    ticket: String,
    return_to: String,
) -> Response {
    html(
        status,
        &SecondStepPage {
            layout: Layout::new("Two-factor authentication"),
            error,
            status: None,
            ticket,
            return_to,
        },
    )
}

/// No `Debug`: it holds the sealed password.
#[derive(Deserialize)]
struct SecondStepForm {
    #[serde(default)]
    ticket: String,
    totp_code: Option<String>,
    recovery_code: Option<String>,
    return_to: Option<String>,
}

async fn second_step(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<SecondStepForm>,
) -> Response {
    let return_to = safe_return_to(form.return_to.as_deref());
    if let Err(e) = csrf::check_origin(&headers, &state.service) {
        return login_form(
            status_of(&e),
            Some(e.message()),
            return_to,
            String::new(),
            false,
        );
    }
    let Some(pending) = state
        .service
        .unseal(TICKET, &form.ticket)
        .and_then(|b| serde_json::from_slice::<Pending>(&b).ok())
    else {
        return login_form(
            StatusCode::BAD_REQUEST,
            Some("The sign-in took too long. Start again.".into()),
            return_to,
            String::new(),
            false,
        );
    };
    let nonempty = |s: Option<String>| s.filter(|c| !c.trim().is_empty());
    let (totp_code, recovery_code) = (nonempty(form.totp_code), nonempty(form.recovery_code));
    if totp_code.is_none() && recovery_code.is_none() {
        let e = Error::MfaRequired;
        return second_step_page(
            status_of(&e),
            Some("Enter an authentication code or a recovery code.".into()),
            form.ticket,
            return_to,
        );
    }
    let input = LoginInput {
        identifier: pending.username.clone(),
        password: secret(Some(pending.password)),
        remember_me: pending.remember_me,
        totp_code,
        recovery_code,
    };
    match state.service.login(input, &ctx).await {
        Ok(issued) => signed_in(&state, &issued, &return_to),
        Err(e @ Error::InvalidMfaCode { .. }) => {
            second_step_page(status_of(&e), Some(e.message()), form.ticket, return_to)
        }
        Err(e) => login_form(
            status_of(&e),
            Some(e.message()),
            return_to,
            pending.username,
            pending.remember_me,
        ),
    }
}

/// Signed in: the session's cookies, and on to `return_to`.
fn signed_in(state: &AppState, issued: &crate::service::auth::Issued, return_to: &str) -> Response {
    let mut res = see_other(return_to);
    session::set_session_cookies(state, issued, true, res.headers_mut());
    res
}

#[derive(Deserialize)]
struct SignOutForm {
    csrf_token: Option<String>,
}

async fn sign_out(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let names = state.cookies();
    if let Some(v) = visitor(&state, &headers, &ctx).await {
        if let Err(e) = session::check_form(&state, &headers, &v, form.csrf_token.as_deref()) {
            return super::account::problem(&state, &v, e);
        }
        if let Err(e) = state.service.logout(&v.caller, None, &ctx).await {
            return super::account::problem(&state, &v, e);
        }
    }
    let mut res = see_other("/login?done=signed_out");
    cookies::clear(&names, res.headers_mut());
    res.into_response()
}
