//! `/admin/clients`: the OAuth clients of the `/admin` console (API.md, "Hosted pages and
//! the consoles": create, edit, rotate secret, delete). The same use cases as
//! `/api/v1/admin/oauth-clients`, with the admin as the actor (same validation messages,
//! same `oauth_client.*` events); a client secret is shown once, on the answer that made it.

use super::admin::{admin, admin_form, message};
use super::session::{see_other, status_of, Visitor};
use super::{html, Layout};
use crate::domain::oauth::{ClientType, GrantType, OAuthClient, SCOPES};
use crate::http::extract::Ctx;
use crate::http::ratelimit::{limit_all, Class};
use crate::http::state::AppState;
use crate::service::oauth::clients::ClientInput;
use crate::service::Error;
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

const GRANTS: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// The client form's fields. Checkboxes repeat their name (`grant_types`, `scopes`), which
/// `Form` cannot read, so the body is parsed by [`ClientForm::parse`]; URI lists are one per
/// line.
#[derive(Default)]
struct ClientForm {
    csrf_token: Option<String>,
    name: Option<String>,
    client_type: Option<String>,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: Vec<String>,
    scopes: Vec<String>,
    max_tier: Option<String>,
    /// A checkbox: present when checked.
    first_party: Option<String>,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

impl ClientForm {
    fn parse(body: &[u8]) -> Self {
        let mut f = ClientForm::default();
        for (k, v) in url::form_urlencoded::parse(body) {
            let v = v.into_owned();
            match &*k {
                "csrf_token" => f.csrf_token = Some(v),
                "name" => f.name = Some(v),
                "client_type" => f.client_type = Some(v),
                "redirect_uris" => f.redirect_uris = v,
                "post_logout_redirect_uris" => f.post_logout_redirect_uris = v,
                "grant_types" => f.grant_types.push(v),
                "scopes" => f.scopes.push(v),
                "max_tier" => f.max_tier = Some(v),
                "first_party" => f.first_party = Some(v),
                _ => {}
            }
        }
        f
    }

    fn input(&self, creating: bool) -> Result<ClientInput, Error> {
        let max_tier = match self.max_tier.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(t) => Some(
                t.parse::<i64>()
                    .map_err(|_| Error::field("max_tier", "max_tier must be 1, 2, 3 or 4"))?,
            ),
        };
        Ok(ClientInput {
            name: self.name.clone(),
            redirect_uris: Some(lines(&self.redirect_uris)),
            post_logout_redirect_uris: Some(lines(&self.post_logout_redirect_uris)),
            client_type: if creating {
                self.client_type.clone()
            } else {
                None
            },
            grant_types: Some(self.grant_types.clone()),
            scopes: Some(self.scopes.clone()),
            max_tier,
            first_party: Some(self.first_party.is_some()),
            id_token_signed_response_alg: None,
        })
    }
}

/// A client as the form shows it (also a refused form, as typed).
struct FormView {
    name: String,
    confidential: bool,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grants: Vec<(&'static str, bool)>,
    scopes: Vec<(&'static str, bool)>,
    max_tier: u8,
    first_party: bool,
}

impl FormView {
    fn blank() -> Self {
        Self {
            name: String::new(),
            confidential: true,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            grants: GRANTS
                .iter()
                .map(|g| (*g, *g != "client_credentials"))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, matches!(*s, "openid" | "profile" | "email")))
                .collect(),
            max_tier: 2,
            first_party: false,
        }
    }

    fn of(c: &OAuthClient) -> Self {
        Self {
            name: c.name.clone(),
            confidential: c.client_type == ClientType::Confidential,
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            grants: GRANTS
                .iter()
                .map(|g| (*g, GrantType::parse(g).is_some_and(|g| c.allows(g))))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, c.scopes.iter().any(|x| x == *s)))
                .collect(),
            max_tier: c.max_tier.get(),
            first_party: c.first_party,
        }
    }

    fn typed(f: &ClientForm) -> Self {
        Self {
            name: f.name.clone().unwrap_or_default(),
            confidential: f.client_type.as_deref() != Some("public"),
            redirect_uris: f.redirect_uris.clone(),
            post_logout_redirect_uris: f.post_logout_redirect_uris.clone(),
            grants: GRANTS
                .iter()
                .map(|g| (*g, f.grant_types.iter().any(|x| x == g)))
                .collect(),
            scopes: SCOPES
                .iter()
                .map(|s| (*s, f.scopes.iter().any(|x| x == s)))
                .collect(),
            max_tier: f
                .max_tier
                .as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(2),
            first_party: f.first_party.is_some(),
        }
    }
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
