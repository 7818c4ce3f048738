//! The OpenAPI 3.1 description of the native API, generated from the handlers'
//! `#[utoipa::path]` attributes and the JSON types' schemas, served at `/openapi.json`,
//! and a human-readable page at `/docs` that renders it with no external assets.

use super::state::AppState;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        // Browser sessions: the access cookie, with `X-CSRF-Token` on every write.
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-tradeauth_at",
                "cookie mode (login with token_transport: \"cookie\"); writes also need X-CSRF-Token",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "tradeauth", description = "The authentication service of a trading platform: the native API."),
    paths(
        super::auth::register_user, super::auth::login_user, super::auth::refresh_tokens,
        super::auth::logout_user, super::auth::logout_everywhere, super::auth::get_me,
        super::auth::update_me, super::auth::change_password, super::auth::list_sessions,
        super::auth::revoke_session, super::auth::list_events, super::auth::verify_caller,
        super::apikeys::create_api_key, super::apikeys::list_api_keys, super::apikeys::revoke_api_key,
        super::account::verify_email, super::account::resend_verification,
        super::account::request_password_reset, super::account::confirm_password_reset,
        super::account::setup_totp, super::account::enable_totp, super::account::disable_totp,
        super::admin::list_users, super::admin::create_user, super::admin::get_user,
        super::admin::update_user, super::admin::delete_user, super::admin::unlock_user,
        super::admin::revoke_user_sessions, super::admin::query_audit, super::admin::rotate_signing_keys,
        super::ops::health, super::ops::readiness, super::ops::jwks, super::ops::metrics,
        openapi_json, super::ws::connect_socket,
        super::oauth::clients::create_client, super::oauth::clients::list_clients,
        super::oauth::clients::get_client, super::oauth::clients::update_client,
        super::oauth::clients::rotate_client_secret, super::oauth::clients::delete_client,
        super::oauth::clients::list_grants, super::oauth::clients::revoke_grant,
        super::oauth::endpoints::issue_tokens, super::oauth::device::authorize_device,
        super::oauth::par::push_authorization_request,
        super::signed::server_time,
        super::passkeys::start_registration, super::passkeys::finish_registration,
        super::passkeys::list_passkeys, super::passkeys::rename_passkey,
        super::passkeys::remove_passkey, super::passkeys::start_login,
        super::passkeys::finish_login,
    ),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Registration, login, tokens, the caller's profile"),
        (name = "sessions", description = "The caller's sessions"),
        (name = "api-keys", description = "API keys for bots"),
        (name = "account", description = "Email verification and password reset"),
        (name = "mfa", description = "TOTP two-factor authentication"),
        (name = "forward-auth", description = "Checks for reverse proxies and services"),
        (name = "admin", description = "Tier 4 only"),
        (name = "operations", description = "Health, readiness, keys, metrics, this document"),
        (name = "signed-requests", description = "RFC 9421 signed requests: the server's clock"),
        (name = "websocket", description = "The authenticated WebSocket"),
        (name = "oauth", description = "OAuth clients (tier 4) and the caller's grants to them"),
        (name = "passkeys", description = "Passkeys (WebAuthn): add, manage, sign in"),
    )
)]
pub struct ApiDoc;

/// The document, rendered once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises")
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(api_page))
}

#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "this document: OpenAPI 3.1 of the native API", content_type = "application/json"), (status = 429, description = "error", body = super::views::ErrorBody), (status = 500, description = "error", body = super::views::ErrorBody)))]
async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

async fn api_page() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
