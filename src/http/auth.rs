//! `/api/v1/auth/*`: registration, login, tokens, the caller's profile, sessions and
//! events, and the forward-auth check. One handler per endpoint serves every dialect:
//! where a seed describes an endpoint (register, login, refresh, logout, me), the handler
//! asks `dialect` to read the body in the seed's spelling and to shape the answer.

use super::cookies::{self, Lifetime, SessionCookies};
use super::csrf;
use super::dialect::{self, DialectJson, MaybeDialectJson};
use super::error::{ApiError, ApiResult};
use super::extract::{AppJson, AppPath, AppQuery, AuthUser, Credentials, Ctx, Peer};
use super::idempotency::idempotent;
use super::original::OriginalRequest;
use super::ratelimit::{limit_all, limited, Class};
use super::requests::{
    secret, LoginRequest, NewUser, PageQuery, PasswordChange, ProfileUpdate, RefreshRequest,
    TokenTransport,
};
use super::state::AppState;
use super::views::{CookieTokenBody, EventBody, ListBody, SessionBody, UserBody};
use crate::domain::Tier;
use crate::service::auth::Issued;
use crate::service::dpop::DpopSubject;
use crate::service::{Caller, Error, RequestContext};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use uuid::Uuid;

/// `/api/v1/auth/me`, routed from the top of the router (see `http::router`): `GET`, which
/// every service's user page calls, passes no layer (the write limits never count reads,
/// and it has no body to check); `PATCH` gets the write limit and the signed-body check
/// the API routers give every write.
pub fn me_route(state: &AppState) -> MethodRouter<AppState> {
    limited(patch(update_me), state, Class::Write)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::signed::check_signed_body,
        ))
        .get(get_me)
}

/// The `/auth` routes of this module, each with its rate limit.
pub fn router(state: &AppState) -> Router<AppState> {
    let writes = Router::new()
        .route("/logout", post(logout_user))
        .route("/logout-all", post(logout_everywhere))
        .route("/password", post(change_password))
        .route("/sessions", get(list_sessions))
        .route("/sessions/{id}", delete(revoke_session))
        .route("/events", get(list_events));
    limit_all(writes, state, Class::Write)
        .route(
            "/register",
            limited(
                idempotent::<()>(post(register_user), state),
                state,
                Class::Register,
            ),
        )
        .route("/login", limited(post(login_user), state, Class::Login))
        .route(
            "/refresh",
            limited(post(refresh_tokens), state, Class::Refresh),
        )
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = NewUser, responses((status = 201, description = "registered", body = super::views::Registered), super::views::Errors, (status = 403, description = "error", body = super::views::ErrorBody), (status = 409, description = "error", body = super::views::ErrorBody), (status = 422, description = "error", body = super::views::ErrorBody)))]
pub(crate) async fn register_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<NewUser>,
) -> ApiResult<Response> {
    let (user, verification_required) = state.service.register(body.into_account(), &ctx).await?;
    Ok(dialect::registered(
        state.dialect(),
        &user,
        verification_required,
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest, responses((status = 200, description = "signed in; with `token_transport: \"cookie\"` the tokens are in `__Host-tradeauth_at`/`_rt` cookies and the body carries `csrf_token` instead", body = super::views::LoginBody), super::views::CallerErrors, (status = 423, description = "error", body = super::views::ErrorBody)))]
pub(crate) async fn login_user(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    DialectJson(body): DialectJson<LoginRequest>,
) -> ApiResult<Response> {
    let transport = body.token_transport.unwrap_or_default();
    if transport == TokenTransport::Cookie {
        // No session yet, so no CSRF token: the origin rule alone (login CSRF).
        csrf::check_origin(&headers, &state.service)?;
    }
    let input = dialect::login_input(state.dialect(), body)?;
    let issued = state.service.login(input, &ctx).await?;
    Ok(no_store(match transport {
        TokenTransport::Cookie => cookie_session(&state, &issued, true),
        TokenTransport::Body => dialect::signed_in(state.dialect(), &issued),
    }))
}

/// The answer of a cookie-mode login or refresh: the token cookies (and, at login, the
/// CSRF cookie) and the body without tokens.
pub(crate) fn cookie_session(
    state: &AppState,
    issued: &Issued,
    with_csrf_cookie: bool,
) -> Response {
    let csrf_token = state.service.csrf_token(issued.session_id);
    let mut res = Json(CookieTokenBody::new(issued, csrf_token)).into_response();
    set_session_cookies(state, issued, with_csrf_cookie, res.headers_mut());
    res
}

/// The cookies of a new (`with_csrf`: also the CSRF cookie) or refreshed session, for the
/// API and the pages alike.
pub(crate) fn set_session_cookies(
    state: &AppState,
    issued: &Issued,
    with_csrf: bool,
    headers: &mut HeaderMap,
) {
    let names = state.cookies();
    SessionCookies {
        access_token: &issued.access_token,
        access_expires_in: issued.expires_in,
        refresh_token: &issued.refresh_token,
        refresh_expires_at: issued.refresh_expires_at,
        remember_me: issued.remember_me,
    }
    .set_tokens(&names, headers);
    if with_csrf {
        let lifetime = if issued.remember_me {
            Lifetime::Seconds((issued.refresh_expires_at - chrono::Utc::now()).num_seconds())
        } else {
            Lifetime::BrowserSession
        };
        let token = state.service.csrf_token(issued.session_id);
        cookies::set_csrf(&names, &token, lifetime, headers);
    }
}

/// Token responses are never cached (RFC 6749 §5.1), in every mode.
pub(crate) fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest, responses((status = 200, description = "new tokens; without `refresh_token` in the body, the `__Host-tradeauth_rt` cookie is rotated (with `X-CSRF-Token`) and the cookie-mode body answered", body = super::views::LoginBody), super::views::CallerErrors))]
pub(crate) async fn refresh_tokens(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    MaybeDialectJson(body): MaybeDialectJson<RefreshRequest>,
) -> ApiResult<Response> {
    let service = &state.service;
    let field = dialect::field_name(state.dialect(), "refresh_token");
    let in_body = body.and_then(|b| b.refresh_token).filter(|t| !t.is_empty());
    let names = state.cookies();
    let token = match (in_body, cookies::read(&headers, names.refresh)) {
        (Some(token), _) => {
            let issued = service.refresh(&token, &ctx).await?;
            let rotation = service.config().refresh_rotation;
            return Ok(no_store(dialect::refreshed(
                state.dialect(),
                &issued,
                rotation,
            )));
        }
        (None, Some(cookie)) => cookie,
        (None, None) => return Err(Error::field(field, format!("{field} is required")).into()),
    };
    // By cookie: the CSRF rules first (nothing changes when they fail), then the same
    // rotation as the body form. A dead refresh cookie is cleared, so the browser stops
    // presenting it.
    csrf::check_origin(&headers, service)?;
    let session = service
        .refresh_session(token)
        .ok_or(Error::InvalidRefreshToken);
    let outcome = match session {
        Ok(session) => match csrf::check_token(&headers, session, service) {
            Ok(()) => service.refresh(token, &ctx).await,
            Err(e) => return Err(e.into()),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(issued) => Ok(no_store(cookie_session(&state, &issued, false))),
        Err(e @ (Error::InvalidRefreshToken | Error::RefreshTokenReused)) => {
            let mut res = ApiError(e).into_response();
            cookies::clear(&names, res.headers_mut());
            Ok(res)
        }
        Err(e) => Err(e.into()),
    }
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = Option<RefreshRequest>, responses((status = 204, description = "logged out"), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn logout_user(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    MaybeDialectJson(body): MaybeDialectJson<RefreshRequest>,
) -> ApiResult<Response> {
    let token = body.and_then(|b| b.refresh_token);
    state
        .service
        .logout(&caller, token.as_deref(), &ctx)
        .await?;
    Ok(clear_if_by_cookie(
        &state,
        &headers,
        dialect::logged_out(state.dialect()),
    ))
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", responses((status = 204, description = "every session ended"), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn logout_everywhere(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
) -> ApiResult<Response> {
    state.service.logout_all(&caller, &ctx).await?;
    Ok(clear_if_by_cookie(
        &state,
        &headers,
        StatusCode::NO_CONTENT.into_response(),
    ))
}

/// A logout by cookie clears the three cookies (`Max-Age=0`, `Clear-Site-Data`).
fn clear_if_by_cookie(state: &AppState, headers: &HeaderMap, mut res: Response) -> Response {
    let names = state.cookies();
    if matches!(
        Credentials::from_headers(headers, &names),
        Credentials::Cookie(_)
    ) {
        cookies::clear(&names, res.headers_mut());
    }
    res
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, description = "the user object", body = super::views::UserBody), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn get_me(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
) -> ApiResult<Response> {
    let user = state.service.me(&caller).await?;
    Ok(dialect::user(state.dialect(), &user))
}

#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = ProfileUpdate, responses((status = 200, description = "updated", body = super::views::UserBody), super::views::CallerErrors, (status = 409, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn update_me(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<ProfileUpdate>,
) -> ApiResult<Json<UserBody>> {
    let user = state
        .service
        .update_me(&caller, body.username, body.full_name, &ctx)
        .await?;
    Ok(Json(UserBody::from(&user)))
}

#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordChange, responses((status = 204, description = "changed; other sessions ended"), super::views::CallerErrors, (status = 422, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppJson(body): AppJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    state
        .service
        .change_password(
            &caller,
            secret(body.current_password),
            secret(body.new_password),
            &ctx,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "sessions", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's sessions", body = super::views::ListBody<super::views::SessionBody>), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<SessionBody>>> {
    let paged = state.service.list_sessions(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| SessionBody::from(x))))
}

#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path, description = "the id")), responses((status = 204, description = "revoked"), super::views::CallerErrors, (status = 404, description = "error", body = super::views::ErrorBody)), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    Ctx(ctx): Ctx,
    AppPath(id): AppPath<Uuid>,
) -> ApiResult<StatusCode> {
    state.service.revoke_own_session(&caller, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/auth/events", tag = "auth", params(("cursor" = Option<String>, Query, description = "opaque cursor from next_cursor"), ("limit" = Option<i64>, Query, description = "page size, default 50, at most 200")), responses((status = 200, description = "the caller's security events, newest first", body = super::views::ListBody<super::views::EventBody>), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn list_events(
    State(state): State<AppState>,
    AuthUser(caller): AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<ListBody<EventBody>>> {
    let paged = state.service.own_events(&caller, q.page()?).await?;
    Ok(Json(ListBody::from_paged(&paged, |x| EventBody::from(x))))
}

/// No `Debug`: it may hold a token.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct VerifyQuery {
    pub token: Option<String>,
    pub min_tier: Option<String>,
}

/// Forward-auth: 204 with the caller in `X-Auth-*` headers, or the usual 401/403.
#[utoipa::path(get, path = "/api/v1/auth/verify", tag = "forward-auth", params(("token" = Option<String>, Query, description = "access token, for clients that cannot send headers"), ("min_tier" = Option<i64>, Query, description = "minimum tier, 1-4")), responses((status = 204, description = "allowed; X-Auth-User-Id, X-Auth-Tier, X-Auth-Role, X-Auth-Session-Id headers"), super::views::CallerErrors), security(("bearer" = []), ("api_key" = [])))]
pub(crate) async fn verify_caller(
    State(state): State<AppState>,
    headers: HeaderMap,
    // The URI as received (`Uri` in this nested router would lack `/api/v1/auth`).
    (method, received): (Method, axum::extract::OriginalUri),
    Peer(peer): Peer,
    Ctx(ctx): Ctx,
    AppQuery(q): AppQuery<VerifyQuery>,
    super::signed::ForwardedBody(body): super::signed::ForwardedBody,
) -> Response {
    let original = OriginalRequest::of(
        peer,
        &state.service.config().trusted_proxies,
        &method,
        received.0.path_and_query().map_or("/", |p| p.as_str()),
        &headers,
    );
    match verify(&state, &headers, &original, &ctx, q, &body).await {
        Ok(res) => res,
        Err(ApiError(e)) => {
            // nginx's auth_request passes no body: the code travels in a header too.
            let code = HeaderValue::from_static(e.code());
            let mut res = ApiError(e).into_response();
            if matches!(res.status().as_u16(), 400 | 401 | 403) {
                res.headers_mut().insert("x-auth-error", code);
            }
            res
        }
    }
}

async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    original: &OriginalRequest,
    ctx: &RequestContext,
    q: VerifyQuery,
    body: &[u8],
) -> ApiResult<Response> {
    let credentials = Credentials::from_headers(headers, &state.cookies())
        .or_query_token(q.token.as_deref())
        .or_signature(headers, || original.view(state, headers));
    let found = match credentials {
        // Checked here, once: a proof is single-use, whatever the token names.
        Credentials::Dpop { token, request } => {
            let (proof, target) = super::credentials::dpop_parts(request)?;
            match state
                .service
                .check_dpop_subject(token, proof, &target)
                .await?
            {
                DpopSubject::User(caller) => Ok((caller, None)),
                DpopSubject::Client(c) => return verified_client(c, q),
            }
        }
        other => other.resolve_signed(&state.service, || ctx.ip).await,
    };
    let (caller, signed): (Caller, _) = match found {
        Ok(found) => found,
        // An OAuth client-credentials token: a client, no user.
        Err(Error::ClientNotAllowed) => {
            let Credentials::Bearer(token) = credentials else {
                return Err(Error::ClientNotAllowed.into());
            };
            return verified_client(state.service.check_client_token(token)?, q);
        }
        Err(e) => return Err(e.into()),
    };
    // A proxy that forwards the body (Traefik `forwardBody`, Envoy `with_request_body`):
    // tradeauth compares the bytes with the signed `Content-Digest` itself.
    if let Some(s) = &signed {
        if !body.is_empty() {
            state
                .service
                .check_signed_body(s.content_digest.as_deref(), body)?;
        }
    }
    // A cookie session is judged by the request it authorises: a cross-site POST to a
    // service behind the proxy is refused like one to tradeauth itself.
    credentials.check_csrf(&original.method, headers, &caller, &state.service)?;
    if let Some(min) = q.min_tier.as_deref().filter(|s| !s.is_empty()) {
        let min = min
            .parse::<i64>()
            .ok()
            .and_then(|n| Tier::new(n).ok())
            .ok_or_else(|| Error::field("min_tier", "min_tier must be 1, 2, 3 or 4"))?;
        caller.require_tier(min)?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    let val =
        |s: String| HeaderValue::from_str(&s).expect("ids and numbers are valid header values");
    h.insert("x-auth-user-id", val(caller.user_id.to_string()));
    h.insert("x-auth-tier", val(caller.tier.to_string()));
    h.insert(
        "x-auth-role",
        HeaderValue::from_static(caller.tier.role().as_str()),
    );
    if let Some(sid) = caller.session_id() {
        h.insert("x-auth-session-id", val(sid.to_string()));
    }
    if let Some(s) = signed {
        h.insert("x-auth-method", HeaderValue::from_static("signature"));
        h.insert("x-auth-key-id", val(s.key_id));
        if let Some(d) = s
            .content_digest
            .and_then(|d| HeaderValue::from_str(&d).ok())
        {
            h.insert("x-auth-content-digest", d);
        }
    }
    Ok(res)
}

/// Forward-auth's answer for a client-credentials token: `X-Auth-Client-Id`, the tier and
/// role, and no `X-Auth-User-Id`.
fn verified_client(
    client: crate::service::check::ClientCaller,
    q: VerifyQuery,
) -> ApiResult<Response> {
    if let Some(min) = q.min_tier.as_deref().filter(|s| !s.is_empty()) {
        let min = min
            .parse::<i64>()
            .ok()
            .and_then(|n| Tier::new(n).ok())
            .ok_or_else(|| Error::field("min_tier", "min_tier must be 1, 2, 3 or 4"))?;
        if client.tier < min {
            return Err(Error::InsufficientTier {
                required: min.get(),
            }
            .into());
        }
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(
        "x-auth-client-id",
        HeaderValue::from_str(&client.client_id).map_err(|_| Error::InvalidToken)?,
    );
    h.insert(
        "x-auth-tier",
        HeaderValue::from_str(&client.tier.to_string()).map_err(|_| Error::InvalidToken)?,
    );
    h.insert(
        "x-auth-role",
        HeaderValue::from_static(client.tier.role().as_str()),
    );
    Ok(res)
}
