//! The console's two-factor section: TOTP setup (with the QR code rendered by the server),
//! enabling with a first code (which shows the recovery codes once) and disabling.

use super::{form_visitor, render, settle, CsrfForm, Extras, TotpSetup};
use crate::http::extract::Ctx;
use crate::http::requests::secret;
use crate::http::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use base64::Engine;
use serde::Deserialize;

pub(super) async fn totp_setup(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match state.service.setup_totp(&v.caller).await {
        Ok((secret, url)) => {
            let setup = TotpSetup {
                qr_data_uri: qr_data_uri(&url),
                secret,
                url,
            };
            let extras = Extras {
                totp_setup: Some(setup),
                ..Extras::default()
            };
            render(&state, &v, StatusCode::OK, extras).await
        }
        Err(e) => settle(&state, &v, Err(e), "").await,
    }
}

/// The `otpauth` URL as a QR code: an SVG, as a `data:` URI (the CSP allows `data:`
/// images and no inline styles).
fn qr_data_uri(url: &str) -> String {
    let svg = match qrcode::QrCode::new(url.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    };
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    csrf_token: Option<String>,
    #[serde(default)]
    code: String,
    password: Option<String>,
}

pub(super) async fn totp_enable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match state.service.enable_totp(&v.caller, &form.code, &ctx).await {
        Ok(codes) => {
            // The user changed: read it again for the page.
            let user = state.service.me(&v.caller).await.unwrap_or(v.user.clone());
            let v = v.with_user(user);
            let extras = Extras {
                recovery_codes: Some(codes),
                ..Extras::default()
            };
            render(&state, &v, StatusCode::OK, extras).await
        }
        Err(e) => settle(&state, &v, Err(e), "").await,
    }
}

pub(super) async fn totp_disable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let outcome = state
        .service
        .disable_totp(&v.caller, secret(form.password), &form.code, &ctx)
        .await;
    settle(&state, &v, outcome, "totp_off").await
}
