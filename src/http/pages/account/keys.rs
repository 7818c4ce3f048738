//! The console's API keys (bearer and signing keys; a secret is shown once) and connected
//! apps (OAuth grants the user can withdraw).

use super::{form_visitor, problem, render, settle, Extras, IdForm};
use crate::http::extract::Ctx;
use crate::http::state::AppState;
use crate::service::apikeys::NewApiKey;
use crate::service::Error;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use chrono::NaiveDate;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct KeyForm {
    csrf_token: Option<String>,
    name: Option<String>,
    permission_tier: Option<i64>,
    expires_at: Option<String>,
    allowed_ips: Option<String>,
    /// `bearer` (default) or a signing key's algorithm.
    algorithm: Option<String>,
    /// A signing key's public key: PEM, or a JWK as JSON text.
    public_key: Option<String>,
}

pub(super) async fn create_key(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    // A date means the end of that day, UTC.
    let expires_at = match form.expires_at.as_deref().filter(|d| !d.is_empty()) {
        None => None,
        Some(d) => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(day) => day.and_hms_opt(23, 59, 59).map(|t| t.and_utc()),
            Err(_) => {
                let e = Error::field("expires_at", "expires_at must be a date (YYYY-MM-DD)");
                return settle(&state, &v, Err(e), "").await;
            }
        },
    };
    let allowed_ips = form.allowed_ips.as_deref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    });
    let input = NewApiKey {
        name: form.name,
        permission_tier: form.permission_tier,
        expires_at,
        allowed_ips: allowed_ips.filter(|ips| !ips.is_empty()),
        algorithm: form.algorithm.filter(|a| !a.is_empty()),
        // A JWK is pasted as JSON text; anything else is taken as PEM.
        public_key: form
            .public_key
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .map(|k| serde_json::from_str(&k).unwrap_or(serde_json::Value::String(k))),
    };
    match state.service.create_api_key(&v.caller, input, &ctx).await {
        Ok(created) => {
            let signing = created.record.algorithm != "bearer";
            let extras = Extras {
                status: signing.then(|| {
                    format!(
                        "Signing key created. Its key_id (the keyid of your signatures) is ta_{}.",
                        created.record.public_id
                    )
                }),
                new_key: created.key.or(created.secret),
                ..Extras::default()
            };
            render(&state, &v, StatusCode::CREATED, extras).await
        }
        Err(e) => settle(&state, &v, Err(e), "").await,
    }
}

pub(super) async fn revoke_key(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<IdForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Some(id) = form.id else {
        return problem(&state, &v, Error::NotFound("API key"));
    };
    let outcome = state.service.revoke_api_key(&v.caller, id, &ctx).await;
    settle(&state, &v, outcome, "key_revoked").await
}

#[derive(Deserialize)]
pub(super) struct AppForm {
    csrf_token: Option<String>,
    client_id: Option<String>,
}

/// "Revoke access" of a connected app: the grant goes, and every token of it.
pub(super) async fn revoke_app(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(form): Form<AppForm>,
) -> Response {
    let v = match form_visitor(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Some(client_id) = form.client_id else {
        return problem(&state, &v, Error::NotFound("grant"));
    };
    let outcome = state
        .service
        .revoke_oauth_grant(&v.caller, &client_id, &ctx)
        .await;
    settle(&state, &v, outcome, "app_revoked").await
}
