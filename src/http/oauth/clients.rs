//! The OAuth client registry (`/api/v1/admin/oauth-clients`, tier 4) and the caller's
//! grants (`/api/v1/auth/oauth-grants`): native JSON, native errors.

use crate::domain::oauth::OAuthClient;
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AppPath, AppQuery, AuthUser, Ctx, MinTier};
use crate::http::ratelimit::{limit_all, Class};
use crate::http::state::AppState;
use crate::http::views::{empty_as_none, rfc3339, ListBody};
use crate::service::oauth::ClientInput;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

type Admin = MinTier<4>;

/// Under `/api/v1/admin`.
pub fn admin_router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/oauth-clients", get(list_clients).post(create_client))
        .route(
            "/oauth-clients/{client_id}",
            get(get_client).patch(update_client).delete(delete_client),
        )
        .route(
            "/oauth-clients/{client_id}/secret",
            post(rotate_client_secret),
        );
    limit_all(routes, state, Class::Write)
}

/// Under `/api/v1/auth`.
pub fn grants_router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/oauth-grants", get(list_grants))
        .route("/oauth-grants/{client_id}", delete(revoke_grant));
    limit_all(routes, state, Class::Write)
}

/// A client's registration, as the admin API creates or changes it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
    /// `confidential` or `public` (required at creation).
    client_type: Option<String>,
    /// Default `["authorization_code", "refresh_token"]`.
    grant_types: Option<Vec<String>>,
    /// The scopes it may be granted (default: all).
    scopes: Option<Vec<String>>,
    /// Default 2.
    max_tier: Option<i64>,
    /// Default false: the consent page is shown.
    first_party: Option<bool>,
    /// Default `RS256`.
    id_token_signed_response_alg: Option<String>,
    /// OpenID Connect Back-Channel Logout: an `https` URI (`http` on loopback) that gets a
    /// logout token whenever one of the client's sessions ends; `""` removes it.
    backchannel_logout_uri: Option<String>,
    /// Accepted as `true` only: logout tokens always carry `sid`.
    backchannel_logout_session_required: Option<bool>,
    /// `client_secret_basic` (default, confidential), `client_secret_post`,
    /// `private_key_jwt` (with `jwks` or `jwks_uri`) or `none` (public).
    token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK set object (`{"keys": [...]}`), for `private_key_jwt`.
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    /// Where the client publishes its JWK set (https; http only on loopback).
    jwks_uri: Option<String>,
    /// Default false: when true, `/oauth2/authorize` takes only a `request_uri` from `/oauth2/par`.
    require_pushed_authorization_requests: Option<bool>,
    /// Default false: when true, every token request must carry a DPoP proof.
    dpop_bound_access_tokens: Option<bool>,
}

impl From<ClientRequest> for ClientInput {
    fn from(r: ClientRequest) -> Self {
        ClientInput {
            name: r.name,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            client_type: r.client_type,
            grant_types: r.grant_types,
            scopes: r.scopes,
            max_tier: r.max_tier,
            first_party: r.first_party,
            id_token_signed_response_alg: r.id_token_signed_response_alg,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            token_endpoint_auth_method: r.token_endpoint_auth_method,
            jwks: r.jwks,
            jwks_uri: r.jwks_uri,
            require_pushed_authorization_requests: r.require_pushed_authorization_requests,
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
        }
    }
}

/// A registered client (never its secret, but at creation).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClientBody {
    client_id: String,
    name: String,
    client_type: &'static str,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    grant_types: Vec<&'static str>,
    scopes: Vec<String>,
    max_tier: u8,
    first_party: bool,
    id_token_signed_response_alg: String,
    /// `client_secret_basic` or `client_secret_post` (either secret method is accepted),
    /// `private_key_jwt` or `none`.
    token_endpoint_auth_method: &'static str,
    /// Where logout tokens go (absent: none are sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    backchannel_logout_uri: Option<String>,
    /// Always true when `backchannel_logout_uri` is set: logout tokens carry `sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    backchannel_logout_session_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwks_uri: Option<String>,
    require_pushed_authorization_requests: bool,
    dpop_bound_access_tokens: bool,
    #[serde(serialize_with = "rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339")]
    updated_at: DateTime<Utc>,
    /// Only in the answer to the creation, for a confidential client: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl From<&OAuthClient> for ClientBody {
    fn from(c: &OAuthClient) -> Self {
        Self {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            client_type: c.client_type.as_str(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.iter().map(|g| g.as_str()).collect(),
            scopes: c.scopes.to_vec(),
            max_tier: c.max_tier.get(),
            first_party: c.first_party,
            id_token_signed_response_alg: c.id_token_alg.clone(),
            token_endpoint_auth_method: c.fapi.auth_method.as_str(),
            jwks: c.fapi.jwks.clone(),
            jwks_uri: c.fapi.jwks_uri.clone(),
            require_pushed_authorization_requests: c.fapi.require_par,
            dpop_bound_access_tokens: c.fapi.dpop_bound,
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: c.backchannel_logout_uri.as_ref().map(|_| true),
            created_at: c.created_at,
            updated_at: c.updated_at,
            client_secret: None,
        }
    }
}

impl ClientBody {
    /// The body of a creation: with the secret, shown this once.
    pub fn with_secret(mut self, secret: Option<String>) -> Self {
        self.client_secret = secret;
        self
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SecretBody {
    /// The new secret, shown this once.
    client_secret: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ClientListQuery {
    cursor: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/admin/oauth-clients", tag = "oauth", request_body = ClientRequest, responses((status = 201, description = "the client, with client_secret (confidential clients) shown this once", body = ClientBody), crate::http::views::CallerErrors, (status = 400, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create_client(
    State(state): State<AppState>,
    MinTier(caller): Admin,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<ClientRequest>,
) -> ApiResult<Response> {
    let (client, secret) = state
        .service
        .create_client(Some(caller.user_id), body.into(), Some(&ctx))
        .await?;
    let out = ClientBody::from(&client).with_secret(secret.map(|s| s.0));
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

#[utoipa::path(get, path = "/api/v1/admin/oauth-clients", tag = "oauth", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the clients", body = ListBody<ClientBody>), crate::http::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_clients(
    State(state): State<AppState>,
    _: Admin,
    AppQuery(q): AppQuery<ClientListQuery>,
) -> ApiResult<Json<ListBody<ClientBody>>> {
    let paged = state
        .service
        .list_clients(q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(ListBody::from_paged(&paged, |c| ClientBody::from(c))))
}

#[utoipa::path(get, path = "/api/v1/admin/oauth-clients/{client_id}", tag = "oauth", params(("client_id" = String, Path)), responses((status = 200, description = "the client", body = ClientBody), crate::http::views::CallerErrors, (status = 404, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get_client(
    State(state): State<AppState>,
    _: Admin,
    AppPath(client_id): AppPath<String>,
) -> ApiResult<Json<ClientBody>> {
    let client = state.service.get_client(&client_id).await?;
    Ok(Json(ClientBody::from(&client)))
}

#[utoipa::path(patch, path = "/api/v1/admin/oauth-clients/{client_id}", tag = "oauth", params(("client_id" = String, Path)), request_body = ClientRequest, responses((status = 200, description = "the changed client", body = ClientBody), crate::http::views::CallerErrors, (status = 400, description = "error", body = crate::http::views::ErrorBody), (status = 404, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn update_client(
    State(state): State<AppState>,
    MinTier(caller): Admin,
    Ctx(ctx): Ctx,
    AppPath(client_id): AppPath<String>,
    AppJson(body): AppJson<ClientRequest>,
) -> ApiResult<Json<ClientBody>> {
    let client = state
        .service
        .update_client(Some(caller.user_id), &client_id, body.into(), Some(&ctx))
        .await?;
    Ok(Json(ClientBody::from(&client)))
}

#[utoipa::path(post, path = "/api/v1/admin/oauth-clients/{client_id}/secret", tag = "oauth", params(("client_id" = String, Path)), responses((status = 200, description = "a new secret; the old one stops working", body = SecretBody), crate::http::views::CallerErrors, (status = 404, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn rotate_client_secret(
    State(state): State<AppState>,
    MinTier(caller): Admin,
    Ctx(ctx): Ctx,
    AppPath(client_id): AppPath<String>,
) -> ApiResult<Json<SecretBody>> {
    let secret = state
        .service
        .rotate_client_secret(Some(caller.user_id), &client_id, Some(&ctx))
        .await?;
    Ok(Json(SecretBody {
        client_secret: secret.0,
    }))
}

#[utoipa::path(delete, path = "/api/v1/admin/oauth-clients/{client_id}", tag = "oauth", params(("client_id" = String, Path)), responses((status = 204, description = "deleted; every token it held is revoked"), crate::http::views::CallerErrors, (status = 404, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn delete_client(
    State(state): State<AppState>,
    MinTier(caller): Admin,
    Ctx(ctx): Ctx,
    AppPath(client_id): AppPath<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .delete_client(Some(caller.user_id), &client_id, Some(&ctx))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A client the caller allowed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GrantBody {
    client_id: String,
    client_name: String,
    scopes: Vec<String>,
    #[serde(serialize_with = "rfc3339")]
    granted_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/api/v1/auth/oauth-grants", tag = "oauth", responses((status = 200, description = "the applications the caller allowed", body = ListBody<GrantBody>), crate::http::views::CallerErrors), security(("bearer" = [])))]
pub(crate) async fn list_grants(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Json<ListBody<GrantBody>>> {
    let grants = state.service.list_oauth_grants(&caller).await?;
    Ok(Json(ListBody {
        items: grants
            .into_iter()
            .map(|(c, name)| GrantBody {
                client_id: c.client_id,
                client_name: name,
                scopes: c.scopes.to_vec(),
                granted_at: c.granted_at,
            })
            .collect(),
        next_cursor: None,
    }))
}

#[utoipa::path(delete, path = "/api/v1/auth/oauth-grants/{client_id}", tag = "oauth", params(("client_id" = String, Path)), responses((status = 204, description = "withdrawn; every token of it revoked"), crate::http::views::CallerErrors, (status = 404, description = "error", body = crate::http::views::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(client_id): AppPath<String>,
) -> ApiResult<StatusCode> {
    state
        .service
        .revoke_oauth_grant(&caller, &client_id, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
