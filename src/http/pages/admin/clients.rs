//! `/admin/clients`: the OAuth clients of the `/admin` console (API.md, "Hosted pages and
//! the consoles": create, edit, rotate secret, delete). The same use cases as
//! `/api/v1/admin/oauth-clients`, with the admin as the actor (same validation messages,
//! same `oauth_client.*` events); a client secret is shown once, on the answer that made it.

use super::client_form::{ClientForm, FormView};
use super::{admin, admin_form, message};
use crate::domain::oauth::{ClientType, OAuthClient};
use crate::http::extract::Ctx;
use crate::http::pages::session::{see_other, status_of, Visitor};
use crate::http::pages::{html, Layout};
use crate::http::ratelimit::{limit_all, Class};
use crate::http::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Form;
use axum::Router;
use serde::Deserialize;

pub fn router(state: &AppState) -> Router<AppState> {
    let actions = Router::new()
        .route("/admin/clients", post(create))
        .route("/admin/clients/{id}/update", post(update))
        .route("/admin/clients/{id}/rotate-secret", post(rotate_secret))
        .route("/admin/clients/{id}/delete", post(delete));
    limit_all(actions, state, Class::Write)
        .route("/admin/clients", get(list))
        .route("/admin/clients/{id}", get(client_page))
}

struct ClientRow {
    client_id: String,
    name: String,
    kind: &'static str,
    first_party: bool,
    grants: String,
}

#[derive(Template)]
#[template(path = "admin_clients.html")]
struct ListPage {
    layout: Layout,
    layout_csrf: String,
    error: Option<String>,
    status: Option<String>,
    clients: Vec<ClientRow>,
    form: FormView,
}

#[derive(Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

fn confirmation(done: Option<&str>) -> Option<String> {
    let text = match done? {
        "deleted" => "The client is deleted; its grants and tokens are revoked.",
        "saved" => "The client is saved.",
        _ => return None,
    };
    Some(text.to_string())
}

async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin/clients").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let status = confirmation(q.done.as_deref());
    render_list(&state, &v, StatusCode::OK, status, None, FormView::blank()).await
}

async fn render_list(
    state: &AppState,
    v: &Visitor,
    code: StatusCode,
    status: Option<String>,
    error: Option<String>,
    form: FormView,
) -> Response {
    let clients = state
        .service
        .list_clients(None, Some(200))
        .await
        .map(|p| p.items)
        .unwrap_or_default()
        .iter()
        .map(|c| ClientRow {
            client_id: c.client_id.clone(),
            name: c.name.clone(),
            kind: c.client_type.as_str(),
            first_party: c.first_party,
            grants: c
                .grant_types
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let page = ListPage {
        layout: Layout::new("OAuth clients").visitor(v),
        layout_csrf: v.csrf.clone(),
        error,
        status,
        clients,
        form,
    };
    v.finish(state, html(code, &page))
}

#[derive(Template)]
#[template(path = "admin_client_secret.html")]
struct SecretPage {
    layout: Layout,
    client_id: String,
    name: String,
    secret: String,
    created: bool,
}

fn secret_page(
    state: &AppState,
    v: &Visitor,
    c: &OAuthClient,
    secret: String,
    created: bool,
) -> Response {
    let page = SecretPage {
        layout: Layout::new("Client secret").script("account.js").visitor(v),
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        secret,
        created,
    };
    v.finish(
        state,
        html(
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &page,
        ),
    )
}

async fn create(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = ClientForm::parse(&body);
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let made = match form.input(true) {
        Ok(input) => {
            state
                .service
                .create_client(Some(v.user.id), input, Some(&ctx))
                .await
        }
        Err(e) => Err(e),
    };
    match made {
        Ok((client, Some(secret))) => secret_page(&state, &v, &client, secret.0, true),
        Ok((client, None)) => v.finish(
            &state,
            see_other(&format!("/admin/clients/{}?done=created", client.client_id)),
        ),
        Err(e) => {
            let typed = FormView::typed(&form);
            render_list(&state, &v, status_of(&e), None, Some(e.message()), typed).await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_client.html")]
struct ClientPage {
    layout: Layout,
    layout_csrf: String,
    error: Option<String>,
    status: Option<String>,
    client_id: String,
    kind: &'static str,
    confidential: bool,
    created: String,
    form: FormView,
}

async fn client_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let here = format!("/admin/clients/{}", urlencoding::encode(&id));
    let v = match admin(&state, &headers, &ctx, &here).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let status = match q.done.as_deref() {
        Some("created") => Some("The client is created.".to_string()),
        other => confirmation(other),
    };
    render_client(&state, &v, &id, StatusCode::OK, status, None, None).await
}

async fn render_client(
    state: &AppState,
    v: &Visitor,
    id: &str,
    code: StatusCode,
    status: Option<String>,
    error: Option<String>,
    typed: Option<FormView>,
) -> Response {
    let client = match state.service.get_client(id).await {
        Ok(c) => c,
        Err(e) => return message(state, v, e),
    };
    let page = ClientPage {
        layout: Layout::new("OAuth client").visitor(v),
        layout_csrf: v.csrf.clone(),
        error,
        status,
        client_id: client.client_id.clone(),
        kind: client.client_type.as_str(),
        confidential: client.client_type == ClientType::Confidential,
        created: client.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        form: typed.unwrap_or_else(|| FormView::of(&client)),
    };
    v.finish(state, html(code, &page))
}

async fn update(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let form = ClientForm::parse(&body);
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let saved = match form.input(false) {
        Ok(input) => {
            state
                .service
                .update_client(Some(v.user.id), &id, input, Some(&ctx))
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(c) => v.finish(
            &state,
            see_other(&format!("/admin/clients/{}?done=saved", c.client_id)),
        ),
        Err(e) => {
            let typed = FormView::typed(&form);
            render_client(
                &state,
                &v,
                &id,
                status_of(&e),
                None,
                Some(e.message()),
                Some(typed),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf_token: Option<String>,
    confirm: Option<String>,
}

async fn rotate_secret(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let rotated = state
        .service
        .rotate_client_secret(Some(v.user.id), &id, Some(&ctx))
        .await;
    match (rotated, state.service.get_client(&id).await) {
        (Ok(secret), Ok(client)) => secret_page(&state, &v, &client, secret.0, false),
        (Err(e), _) | (_, Err(e)) => {
            render_client(
                &state,
                &v,
                &id,
                status_of(&e),
                None,
                Some(e.message()),
                None,
            )
            .await
        }
    }
}

#[derive(Template)]
#[template(path = "admin_client_confirm.html")]
struct ConfirmPage {
    layout: Layout,
    layout_csrf: String,
    client_id: String,
    name: String,
}

/// `Delete` asks first, as for users.
async fn delete(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let v = match admin_form(&state, &headers, &ctx, form.csrf_token.as_deref()).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    if form.confirm.as_deref() != Some("yes") {
        let client = match state.service.get_client(&id).await {
            Ok(c) => c,
            Err(e) => return message(&state, &v, e),
        };
        let page = ConfirmPage {
            layout: Layout::new("Delete client").visitor(&v),
            layout_csrf: v.csrf.clone(),
            client_id: client.client_id,
            name: client.name,
        };
        return v.finish(&state, html(StatusCode::OK, &page));
    }
    match state
        .service
        .delete_client(Some(v.user.id), &id, Some(&ctx))
        .await
    {
        Ok(()) => v.finish(&state, see_other("/admin/clients?done=deleted")),
        Err(e) => {
            render_client(
                &state,
                &v,
                &id,
                status_of(&e),
                None,
                Some(e.message()),
                None,
            )
            .await
        }
    }
}
