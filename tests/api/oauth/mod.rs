//! The OpenID Connect provider: the client registry, discovery and keys (`clients`), the
//! authorization flow and its refusals after the OpenID Foundation's Basic OP plan
//! (`flow`), and independent relying parties driving it (`relying_parties`); the
//! finance-grade additions: private_key_jwt, PAR and DPoP (`fapi`, `dpop`); the grants
//! beyond the baseline: token exchange (`exchange`), the device grant (`device`) and
//! back-channel logout (`backchannel`).
//!
//! The server runs on a port chosen before it starts, so its issuer (`public_url`) is the
//! URL the relying parties reach it at.

mod backchannel;
mod clients;
mod device;
mod dpop;
mod exchange;
mod fapi;
mod flow;
mod relying_parties;
mod rust_rp;

use super::helpers::*;
use reqwest::redirect::Policy;
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";
pub const POST_LOGOUT_URI: &str = "http://127.0.0.1:9/signed-out";

/// A server whose issuer is its own URL.
pub async fn spawn_provider(
    f: impl FnOnce(tradeauth::config::Sources) -> tradeauth::config::Sources,
) -> TestApp {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let app = spawn_with(|s| {
        f(s.set("listen", format!("127.0.0.1:{port}"))
            .set("public_url", base.clone()))
    })
    .await;
    assert_eq!(app.base, base);
    app
}

/// An admin's access token.
pub async fn admin_token(app: &TestApp) -> String {
    access(&app.user_with_tier(4).await.1)
}

/// Registers a client through the admin API: its JSON (with `client_secret`).
pub async fn register_client(app: &TestApp, body: Value) -> Value {
    let admin = admin_token(app).await;
    let r = app
        .post_auth("/api/v1/admin/oauth-clients", &admin, Some(body))
        .await;
    r.assert(201, None);
    r.body
}

/// A confidential third-party client for `REDIRECT_URI`.
pub async fn confidential_client(app: &TestApp) -> (String, String) {
    let c = register_client(
        app,
        json!({"name": "OIDC test app", "client_type": "confidential", "redirect_uris": [REDIRECT_URI], "post_logout_redirect_uris": [POST_LOGOUT_URI], "max_tier": 3}),
    )
    .await;
    (
        c["client_id"].as_str().unwrap().to_string(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

/// A verified tier-2 user: (email, id).
pub async fn user(app: &TestApp) -> (String, String) {
    let (email, body) = app.user_with_tier(2).await;
    (email, body["user"]["id"].as_str().unwrap().to_string())
}

/// A browser without one: a cookie jar, no redirects followed, the pages' forms
/// submitted with `Sec-Fetch-Site: same-origin` as a browser does.
pub struct Agent {
    pub client: reqwest::Client,
    pub base: String,
    pub cookies: BTreeMap<String, String>,
}

/// An answer: status, `Location`, body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub text: String,
}

impl Page {
    /// The value of the hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.text))
            + marker.len();
        let end = self.text[start..].find('"').unwrap() + start;
        self.text[start..end].replace("&amp;", "&")
    }

    /// Where a `<meta http-equiv="refresh">` page moves on to.
    pub fn refresh_target(&self) -> Option<String> {
        let marker = "content=\"0;url=";
        let start = self.text.find(marker)? + marker.len();
        let end = self.text[start..].find('"')? + start;
        Some(
            self.text[start..end]
                .replace("&amp;", "&")
                .replace("&#38;", "&")
                .replace("&#x2f;", "/"),
        )
    }
}

impl Agent {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn absolute(&self, url: &str) -> String {
        if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_string()
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let res = req
            .header("cookie", cookie)
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        for v in res.headers().get_all("set-cookie") {
            let line = v.to_str().unwrap();
            let pair = line.split(';').next().unwrap();
            let (k, val) = pair.split_once('=').unwrap();
            if val.is_empty() || line.to_ascii_lowercase().contains("max-age=0") {
                self.cookies.remove(k.trim());
            } else {
                self.cookies.insert(k.trim().to_string(), val.to_string());
            }
        }
        Page {
            status: res.status().as_u16(),
            location: res
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string()),
            text: res.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let req = self.client.get(self.absolute(url));
        self.send(req).await
    }

    /// A JSON `POST` (an API call a page's script makes), with the jar's cookies.
    pub async fn post_json(&mut self, url: &str, body: &Value) -> Page {
        let req = self.client.post(self.absolute(url)).json(body);
        self.send(req).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.client.post(self.absolute(url)).form(form);
        self.send(req).await
    }

    /// `GET url`, then [`Self::follow`].
    pub async fn open(&mut self, url: &str) -> Page {
        let page = self.get(url).await;
        self.follow(page).await
    }

    /// Follows redirects and self-moving pages on this origin; stops at a page, or at a
    /// redirect elsewhere (then `location` is set).
    pub async fn follow(&mut self, mut page: Page) -> Page {
        for _ in 0..10 {
            let next = match (&page.location, page.refresh_target()) {
                (Some(l), _) => l.clone(),
                (None, Some(t)) => t,
                (None, None) => return page,
            };
            if !next.starts_with('/') && !next.starts_with(&self.base) {
                return Page {
                    status: page.status,
                    location: Some(next),
                    text: page.text,
                };
            }
            page = self.get(&next).await;
        }
        panic!("too many redirects");
    }

    /// Signs in on the login page `page` shows.
    pub async fn sign_in(&mut self, page: Page, email: &str) -> Page {
        assert_eq!(page.status, 200, "expected the login page: {}", page.text);
        assert!(page.text.contains("id=\"login-form\""), "{}", page.text);
        let return_to = page.hidden("return_to");
        let r = self
            .post(
                "/login",
                &[
                    ("username", email),
                    ("password", PASSWORD),
                    ("return_to", &return_to),
                ],
            )
            .await;
        self.follow(r).await
    }

    /// Presses "Allow" (or "Deny") on the consent page `page`.
    pub async fn consent(&mut self, page: &Page, allow: bool) -> Page {
        assert!(
            page.text.contains("action=\"/oauth2/consent\""),
            "{}",
            page.text
        );
        let csrf = page.hidden("csrf_token");
        let ticket = page.hidden("ticket");
        let decision = if allow { "allow" } else { "deny" };
        let r = self
            .post(
                "/oauth2/consent",
                &[
                    ("csrf_token", &csrf),
                    ("ticket", &ticket),
                    ("decision", decision),
                ],
            )
            .await;
        self.follow(r).await
    }
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    use base64::Engine;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let digest = ring_digest(verifier.as_bytes());
    (
        verifier,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest),
    )
}

fn ring_digest(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}

/// An authorization URL for `client_id` with PKCE and `state=st`, `nonce=n`.
pub fn authorize_url(client_id: &str, scope: &str, challenge: &str, extra: &str) -> String {
    format!(
        "/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=st&nonce=n&code_challenge={challenge}&code_challenge_method=S256{extra}",
        urlencoding::encode(REDIRECT_URI),
        urlencoding::encode(scope),
    )
}

/// The query parameters of a redirect to the client.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let u = url::Url::parse(url).unwrap();
    u.query_pairs()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs the flow to a code as `email` (signing in and allowing as needed).
pub async fn code_for(
    agent: &mut Agent,
    client_id: &str,
    scope: &str,
    email: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut page = agent
        .open(&authorize_url(client_id, scope, &challenge, ""))
        .await;
    if page.location.is_none() && page.text.contains("id=\"login-form\"") {
        page = agent.sign_in(page, email).await;
    }
    if page.location.is_none() && page.text.contains("/oauth2/consent") {
        page = agent.consent(&page, true).await;
    }
    let to = page.location.expect("redirected to the client");
    let q = query_of(&to);
    (q["code"].clone(), verifier)
}

/// `POST /oauth2/token` with HTTP Basic.
pub async fn token_request(app: &TestApp, client: (&str, &str), form: &[(&str, &str)]) -> Resp {
    into_resp(
        app.client
            .post(app.url("/oauth2/token"))
            .basic_auth(client.0, Some(client.1))
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Exchanges a code.
pub async fn exchange(app: &TestApp, client: (&str, &str), code: &str, verifier: &str) -> Resp {
    token_request(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await
}

/// Runs `sql` on the server's database.
pub async fn sql(app: &TestApp, statement: &str) {
    if app.db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
}
