//! `/api/v1/auth/api-keys`: create (the key is shown once), list, revoke.

use super::error::ApiResult;
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, Ctx};
use super::ratelimit::{limit_all, Class};
use super::requests::PageQuery;
use super::state::AppState;
use super::views::{rfc3339, rfc3339_opt, ListBody};
use crate::service::apikeys::NewApiKey;
use crate::service::signatures::public_key_thumbprint;
use crate::service::ApiKeyRecord;
use crate::tokens::apikey::PREFIX;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/api-keys", post(create_api_key).get(list_api_keys))
        .route("/api-keys/{id}", delete(revoke_api_key));
    limit_all(routes, state, Class::Write)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct ApiKeyRequest {
    name: Option<String>,
    permission_tier: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    allowed_ips: Option<Vec<String>>,
    /// `bearer` (default), `ed25519`, `ecdsa-p256-sha256` or `hmac-sha256` (a signing key:
    /// see API.md "Signed requests").
    algorithm: Option<String>,
    /// For `ed25519` and `ecdsa-p256-sha256`: a PEM SubjectPublicKeyInfo string or a JWK
    /// object.
    #[schema(value_type = Option<Value>)]
    public_key: Option<serde_json::Value>,
}

/// A key as listed: never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyBody {
    id: Uuid,
    name: String,
    prefix: String,
    permission_tier: u8,
    #[serde(serialize_with = "rfc3339")]
    created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339_opt")]
    expires_at: Option<DateTime<Utc>>,
    allowed_ips: Vec<String>,
    #[serde(serialize_with = "rfc3339_opt")]
    last_used_at: Option<DateTime<Utc>>,
    /// `ta_<public id>`: the `keyid` of a signing key's signatures.
    key_id: String,
    /// `bearer`, or the signing key's algorithm.
    algorithm: String,
    /// A public signing key's RFC 7638 thumbprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_thumbprint: Option<String>,
}

impl From<&ApiKeyRecord> for ApiKeyBody {
    fn from(k: &ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: format!("{PREFIX}{}", k.public_id),
            permission_tier: k.tier.get(),
            created_at: k.created_at,
            expires_at: k.expires_at,
            allowed_ips: k.allowed_ips.iter().map(|n| n.to_string()).collect(),
            last_used_at: k.last_used_at,
            key_id: format!("{PREFIX}{}", k.public_id),
            algorithm: k.algorithm.clone(),
            public_key_thumbprint: public_key_thumbprint(k),
        }
    }
}

/// A key just created: the listing fields plus what is shown this once — the bearer key
/// itself, or an `hmac-sha256` signing key's `secret` (base64url, no padding). A signing
/// key has no `key`: it is never a bearer key.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct CreatedKeyBody {
    #[serde(flatten)]
    listed: ApiKeyBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/api-keys", tag = "api-keys", request_body = ApiKeyRequest, responses((status = 201, description = "created; the key is shown this once", body = CreatedKeyBody), super::views::CallerErrors, (status = 422, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<ApiKeyRequest>,
) -> ApiResult<Response> {
    let input = NewApiKey {
        name: body.name,
        permission_tier: body.permission_tier,
        expires_at: body.expires_at,
        allowed_ips: body.allowed_ips,
        algorithm: body.algorithm,
        public_key: body.public_key,
    };
    let created = state.service.create_api_key(&caller, input, &ctx).await?;
    let mut listed = ApiKeyBody::from(&created.record);
    listed.last_used_at = None;
    let body = CreatedKeyBody {
        listed,
        key: created.key,
        secret: created.secret,
    };
    let mut value = serde_json::to_value(&body).unwrap_or_default();
    // The creation answer has no `last_used_at` (API.md lists the fields it has).
    if let Some(o) = value.as_object_mut() {
        o.remove("last_used_at");
    }
    Ok((StatusCode::CREATED, Json(value)).into_response())
}

#[utoipa::path(get, path = "/api/v1/auth/api-keys", tag = "api-keys", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's keys, never the secret", body = super::views::ListBody<ApiKeyBody>), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<ApiKeyBody>>> {
    let paged = state.service.list_api_keys(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |k| ApiKeyBody::from(k))))
}

#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", tag = "api-keys", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "revoked"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.revoke_api_key(&caller, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
