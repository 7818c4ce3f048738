//! The pages for visitors who are not signed in: `/register`, `/verify-email` (the mailed
//! link confirms on a button press, so a mail scanner's `GET` consumes nothing),
//! `/forgot-password` and `/reset-password`. Their forms pass the origin rule.

use super::session::{see_other, status_of};
use super::{html, Layout};
use crate::http::csrf;
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limited, Class};
use crate::http::requests::secret;
use crate::http::state::AppState;
use crate::service::auth::NewAccount;
use crate::service::Error;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/register",
            limited(get(register_page).post(register), state, Class::Register),
        )
        .route(
            "/verify-email",
            limited(get(verify_page).post(verify), state, Class::Mail),
        )
        .route(
            "/forgot-password",
            limited(get(forgot_page).post(forgot), state, Class::Mail),
        )
        .route(
            "/verify-email/resend",
            limited(get(resend_page).post(resend), state, Class::Mail),
        )
        .route(
            "/reset-password",
            limited(get(reset_page).post(reset), state, Class::Mail),
        )
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    open: bool,
    email: String,
    full_name: String,
}

async fn register_page(State(state): State<AppState>) -> Response {
    html(
        StatusCode::OK,
        &RegisterPage {
            layout: Layout::new("Create an account"),
            error: None,
            status: None,
            open: state.service.config().registration_open,
            email: String::new(),
            full_name: String::new(),
        },
    )
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    email: String,
    password: Option<String>,
    #[serde(default)]
    full_name: String,
}

async fn register(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    let outcome = match csrf::check_origin(&headers, &state.service) {
        Err(e) => Err(e),
        Ok(()) => {
            let account = NewAccount {
                email: form.email.clone(),
                password: secret(form.password),
                username: None,
                full_name: Some(form.full_name.clone()).filter(|n| !n.trim().is_empty()),
            };
            state.service.register(account, &ctx).await
        }
    };
    match outcome {
        Ok((_, true)) => see_other("/login?done=registered_verify"),
        Ok((_, false)) => see_other("/login?done=registered"),
        Err(e) => html(
            status_of(&e),
            &RegisterPage {
                layout: Layout::new("Create an account"),
                error: Some(e.message()),
                status: None,
                open: state.service.config().registration_open,
                email: form.email,
                full_name: form.full_name,
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    token: Option<String>,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn verify_page(Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.filter(|t| !t.is_empty());
    let error = token
        .is_none()
        .then(|| "This link has no token. Open the link from your mail.".to_string());
    html(
        StatusCode::OK,
        &VerifyPage {
            layout: Layout::new("Verify your email"),
            error,
            status: None,
            token,
        },
    )
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    token: String,
}

async fn verify(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let outcome = match csrf::check_origin(&headers, &state.service) {
        Err(e) => Err(e),
        Ok(()) => state
            .service
            .verify_email(&form.token, &ctx)
            .await
            .map(|_| ()),
    };
    match outcome {
        Ok(()) => html(
            StatusCode::OK,
            &VerifyPage {
                layout: Layout::new("Verify your email"),
                error: None,
                status: Some("Your email address is verified.".into()),
                token: None,
            },
        ),
        Err(e) => html(
            status_of(&e),
            &VerifyPage {
                layout: Layout::new("Verify your email"),
                error: Some(e.message()),
                status: None,
                token: None,
            },
        ),
    }
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
}

async fn forgot_page() -> Response {
    html(
        StatusCode::OK,
        &ForgotPage {
            layout: Layout::new("Reset your password"),
            error: None,
            status: None,
        },
    )
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EmailForm>,
) -> Response {
    let outcome = match csrf::check_origin(&headers, &state.service) {
        Err(e) => Err(e),
        Ok(()) => state.service.request_password_reset(&form.email).await,
    };
    let (status, error, message) = match outcome {
        // The same answer whether or not an account exists (no enumeration).
        Ok(()) => (
            StatusCode::OK,
            None,
            Some("If an account exists for that email, a reset link is on its way.".to_string()),
        ),
        Err(e) => (status_of(&e), Some(e.message()), None),
    };
    html(
        status,
        &ForgotPage {
            layout: Layout::new("Reset your password"),
            error,
            status: message,
        },
    )
}

#[derive(Template)]
#[template(path = "resend.html")]
struct ResendPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
}

/// `/verify-email/resend`: a new verification link for an unverified account (the API's
/// resend, answered the same whether or not the account exists).
async fn resend_page() -> Response {
    html(
        StatusCode::OK,
        &ResendPage {
            layout: Layout::new("Verify your email"),
            error: None,
            status: None,
        },
    )
}

async fn resend(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EmailForm>,
) -> Response {
    let outcome = match csrf::check_origin(&headers, &state.service) {
        Err(e) => Err(e),
        Ok(()) => state.service.resend_verification(&form.email).await,
    };
    let (status, error, message) = match outcome {
        Ok(()) => (
            StatusCode::OK,
            None,
            Some(
                "If an unverified account exists for that email, a new verification link is on its way."
                    .to_string(),
            ),
        ),
        Err(e) => (status_of(&e), Some(e.message()), None),
    };
    html(
        status,
        &ResendPage {
            layout: Layout::new("Verify your email"),
            error,
            status: message,
        },
    )
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    token: Option<String>,
}

async fn reset_page(Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.filter(|t| !t.is_empty());
    let error = token
        .is_none()
        .then(|| "This link has no token. Open the link from your mail.".to_string());
    html(
        StatusCode::OK,
        &ResetPage {
            layout: Layout::new("Choose a new password"),
            error,
            status: None,
            token,
        },
    )
}

/// No `Debug`: it holds a password.
#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    new_password: Option<String>,
}

async fn reset(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<ResetForm>,
) -> Response {
    let outcome = match csrf::check_origin(&headers, &state.service) {
        Err(e) => Err(e),
        Ok(()) => {
            state
                .service
                .confirm_password_reset(&form.token, secret(form.new_password), &ctx)
                .await
        }
    };
    match outcome {
        Ok(()) => see_other("/login?done=password_reset"),
        Err(e) => {
            // A weak password can be retried with the same link; a dead link cannot.
            let keep = !matches!(e, Error::InvalidMailToken);
            html(
                status_of(&e),
                &ResetPage {
                    layout: Layout::new("Choose a new password"),
                    error: Some(e.message()),
                    status: None,
                    token: keep.then_some(form.token),
                },
            )
        }
    }
}
