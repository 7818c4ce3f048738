//! Browser sessions (cookie mode): the cookies and their attributes, the access cookie as
//! a credential, refresh and logout by cookie, the CSRF matrix, forward-auth with the
//! original request, the WebSocket's origin check and CORS.

use super::helpers::*;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const APP_ORIGIN: &str = "https://app.example.com";

/// Settings of a deployment whose browser app runs on `APP_ORIGIN`.
fn with_app_origin(s: tradeauth::config::Sources) -> tradeauth::config::Sources {
    s.set("public_url", "https://auth.example.com")
        .set("allowed_origins", APP_ORIGIN)
        .set("webauthn_rp_id", "example.com")
}

async fn browser_app() -> TestApp {
    spawn_with(|s| with_app_origin(s).set("trusted_proxies", "127.0.0.1/32")).await
}

/// One browser: its cookie jar (name → value) and the CSRF token its page holds.
#[derive(Clone, Default)]
struct Browser {
    jar: BTreeMap<String, String>,
    csrf: String,
}

impl Browser {
    /// Applies a response's `Set-Cookie` headers as a browser would.
    fn absorb(&mut self, headers: &HeaderMap) {
        for (name, value, attrs) in set_cookies(headers) {
            if attrs.get("max-age").map(String::as_str) == Some("0") {
                self.jar.remove(&name);
            } else {
                self.jar.insert(name, value);
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `Set-Cookie` headers as (name, value, lower-cased attribute → value; flags map to "").
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String, BTreeMap<String, String>)> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let text = v.to_str().unwrap();
            let mut parts = text.split(';').map(str::trim);
            let (name, value) = parts.next().unwrap().split_once('=').unwrap();
            let attrs = parts
                .map(|a| match a.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), v.to_string()),
                    None => (a.to_ascii_lowercase(), String::new()),
                })
                .collect();
            (name.to_string(), value.to_string(), attrs)
        })
        .collect()
}

/// A request as a page of `site` would send it: `same-origin` (tradeauth's own pages),
/// `APP_ORIGIN` (the allowed app), `evil` (a foreign site), or `bare` (no Fetch Metadata,
/// no Origin).
fn from_site(req: reqwest::RequestBuilder, site: &str) -> reqwest::RequestBuilder {
    match site {
        "same-origin" => req.header("sec-fetch-site", "same-origin"),
        "app" => req
            .header("sec-fetch-site", "cross-site")
            .header("origin", APP_ORIGIN),
        "evil" => req
            .header("sec-fetch-site", "cross-site")
            .header("origin", "https://evil.example"),
        "bare" => req,
        other => panic!("unknown site {other}"),
    }
}

impl TestApp {
    async fn browser_request(
        &self,
        browser: &Browser,
        method: Method,
        path: &str,
        site: &str,
        csrf: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut req = from_site(self.client.request(method, self.url(path)), site)
            .header("cookie", browser.cookie_header());
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.unwrap()).await
    }

    /// Signs in with `token_transport: "cookie"` from the app's origin.
    async fn cookie_login(&self, email: &str, remember_me: bool) -> (Browser, Resp) {
        let r = from_site(self.client.post(self.url("/api/v1/auth/login")), "app")
            .json(&json!({"username": email, "password": PASSWORD,
                          "remember_me": remember_me, "token_transport": "cookie"}))
            .send()
            .await
            .unwrap();
        let r = into_resp(r).await;
        r.assert(200, None);
        let mut b = Browser::default();
        b.absorb(&r.headers);
        b.csrf = r.body["csrf_token"].as_str().unwrap().to_string();
        (b, r)
    }

    async fn registered(&self) -> String {
        let (email, _) = self.new_user().await;
        email
    }
}

#[tokio::test]
async fn a_cookie_login_sets_three_cookies_and_keeps_tokens_out_of_the_body() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, r) = app.cookie_login(&email, false).await;

    for field in ["access_token", "refresh_token"] {
        assert!(r.body.get(field).is_none(), "{field} in body: {}", r.text);
    }
    assert_eq!(r.body["token_type"], "cookie");
    assert_eq!(r.body["expires_in"], 900);
    assert_eq!(r.body["user"]["email"], email.as_str());
    assert!(r.body["permission_tier"].is_u64());
    assert!(r.body["access_expires_at"].is_i64() && r.body["refresh_expires_at"].is_i64());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));

    let cookies = set_cookies(&r.headers);
    let names: Vec<&str> = cookies.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "__Host-tradeauth_at",
            "__Host-tradeauth_rt",
            "__Host-tradeauth_csrf"
        ]
    );
    let attrs = |i: usize| {
        let mut keys: Vec<String> = cookies[i]
            .2
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        keys.sort();
        keys.join("; ")
    };
    assert_eq!(
        attrs(0),
        "httponly; max-age=900; path=/; samesite=Lax; secure"
    );
    assert_eq!(attrs(1), "httponly; path=/; samesite=Strict; secure");
    assert_eq!(attrs(2), "path=/; samesite=Strict; secure");
    assert_eq!(
        cookies[2].1, browser.csrf,
        "the CSRF cookie holds the body's token"
    );

    // The body form is unchanged, and not cached either.
    let r = app.login(&email, PASSWORD).await;
    assert_eq!(r.body["token_type"], "bearer");
    assert!(r.body["access_token"].is_string());
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert!(r.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn remember_me_keeps_the_refresh_cookie_beyond_the_browser_session() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (_, r) = app.cookie_login(&email, true).await;
    let cookies = set_cookies(&r.headers);
    let refresh_age: i64 = cookies[1].2["max-age"].parse().unwrap();
    let expected = r.body["refresh_expires_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (refresh_age - expected).abs() <= 2,
        "refresh Max-Age {refresh_age}, expected about {expected}"
    );
    assert!(refresh_age > 86_400 * 7, "a remember-me session lasts days");
}

#[tokio::test]
async fn an_unknown_token_transport_is_a_validation_error() {
    let app = browser_app().await;
    let email = app.registered().await;
    let r = app
        .post(
            "/api/v1/auth/login",
            json!({"username": email, "password": PASSWORD, "token_transport": "url"}),
        )
        .await;
    r.assert(400, Some("validation_error"));
    assert!(
        r.body["details"]["token_transport"].is_string(),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_cookie_login_must_come_from_an_allowed_origin() {
    let app = browser_app().await;
    let email = app.registered().await;
    for site in ["evil", "bare"] {
        let r = from_site(app.client.post(app.url("/api/v1/auth/login")), site)
            .json(&json!({"username": email, "password": PASSWORD, "token_transport": "cookie"}))
            .send()
            .await
            .unwrap();
        let r = into_resp(r).await;
        r.assert(403, Some("csrf_failed"));
        assert!(r.headers.get("set-cookie").is_none(), "{site}");
    }
    let r = from_site(
        app.client.post(app.url("/api/v1/auth/login")),
        "same-origin",
    )
    .json(&json!({"username": email, "password": PASSWORD, "token_transport": "cookie"}))
    .send()
    .await
    .unwrap();
    into_resp(r).await.assert(200, None);
}

#[tokio::test]
async fn the_access_cookie_authenticates_and_a_header_always_wins() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;
    let (other_email, other) = app.new_user().await;

    let r = app
        .browser_request(&browser, Method::GET, "/api/v1/auth/me", "app", None, None)
        .await;
    r.assert(200, None);
    assert_eq!(r.body["email"], email.as_str());

    // A Bearer header wins over the cookie: the other user, not the cookie's.
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("cookie", browser.cookie_header())
            .bearer_auth(access(&other))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["email"], other_email.as_str());

    // A bad header is not rescued by a good cookie.
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("cookie", browser.cookie_header())
            .bearer_auth("not-a-token")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("invalid_token"));

    // The plain-HTTP development name is not ours when cookies are secure.
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header(
                "cookie",
                format!("tradeauth_at={}", browser.jar["__Host-tradeauth_at"]),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("missing_token"));
}

async fn full_name(app: &TestApp, email: &str) -> Value {
    let r = app.login(email, PASSWORD).await;
    let me = app.get_auth("/api/v1/auth/me", &access(&r.body)).await;
    me.body["full_name"].clone()
}

#[tokio::test]
async fn every_csrf_attempt_on_a_cookie_authenticated_write_fails_and_changes_nothing() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;
    let other_email = app.registered().await;
    let (other_browser, _) = app.cookie_login(&other_email, false).await;
    let metric_before = csrf_refusals(&app).await;

    let good = browser.csrf.clone();
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("no token", "same-origin", None),
        (
            "wrong token",
            "same-origin",
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        (
            "another session's token",
            "same-origin",
            Some(other_browser.csrf.as_str()),
        ),
        ("cross-site", "evil", Some(good.as_str())),
        ("neither header", "bare", Some(good.as_str())),
        ("cross-site without token", "evil", None),
    ];
    for (what, site, token) in cases {
        let r = app
            .browser_request(
                &browser,
                Method::PATCH,
                "/api/v1/auth/me",
                site,
                token,
                Some(json!({"full_name": format!("changed by {what}")})),
            )
            .await;
        r.assert(403, Some("csrf_failed"));
        assert!(
            r.body["error"].as_str().unwrap().len() > 10,
            "{what}: {}",
            r.text
        );
    }
    // A foreign Origin without Fetch Metadata (an older browser).
    let r = into_resp(
        app.client
            .patch(app.url("/api/v1/auth/me"))
            .header("cookie", browser.cookie_header())
            .header("origin", "https://evil.example")
            .header("x-csrf-token", &good)
            .json(&json!({"full_name": "changed by a foreign origin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(403, Some("csrf_failed"));
    assert_eq!(
        full_name(&app, &email).await,
        Value::Null,
        "nothing changed"
    );
    assert!(csrf_refusals(&app).await >= metric_before + 7.0);

    // The same write passes with the session's token, from this origin or the app's.
    for (site, name) in [("same-origin", "Ada"), ("app", "Ada L.")] {
        app.browser_request(
            &browser,
            Method::PATCH,
            "/api/v1/auth/me",
            site,
            Some(&good),
            Some(json!({"full_name": name})),
        )
        .await
        .assert(200, None);
        assert_eq!(full_name(&app, &email).await, name);
    }

    // Reads need no token; header credentials need none either.
    app.browser_request(
        &browser,
        Method::GET,
        "/api/v1/auth/sessions",
        "evil",
        None,
        None,
    )
    .await
    .assert(200, None);
    let r = app.login(&email, PASSWORD).await;
    app.patch_auth(
        "/api/v1/auth/me",
        &access(&r.body),
        json!({"full_name": "Bearer"}),
    )
    .await
    .assert(200, None);
}

async fn csrf_refusals(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text;
    text.lines()
        .filter(|l| l.starts_with("tradeauth_csrf_refusals_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn refresh_by_cookie_rotates_and_two_tabs_end_with_the_same_cookies() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (mut browser, _) = app.cookie_login(&email, false).await;
    let first_rt = browser.jar["__Host-tradeauth_rt"].clone();

    // Without the CSRF token, or cross-site: refused, and the refresh cookie still works.
    for (site, token) in [("same-origin", None), ("evil", Some(browser.csrf.as_str()))] {
        let r = app
            .browser_request(
                &browser,
                Method::POST,
                "/api/v1/auth/refresh",
                site,
                token,
                None,
            )
            .await;
        r.assert(403, Some("csrf_failed"));
        assert!(r.headers.get("set-cookie").is_none());
    }

    // Two tabs refresh at once with the same cookies.
    let tab = browser.clone();
    let (a, b) = tokio::join!(
        app.browser_request(
            &tab,
            Method::POST,
            "/api/v1/auth/refresh",
            "same-origin",
            Some(&tab.csrf),
            None
        ),
        app.browser_request(
            &tab,
            Method::POST,
            "/api/v1/auth/refresh",
            "same-origin",
            Some(&tab.csrf),
            None
        ),
    );
    a.assert(200, None);
    b.assert(200, None);
    assert_eq!(a.body["token_type"], "cookie");
    assert!(a.body.get("refresh_token").is_none() && a.body.get("access_token").is_none());
    assert_eq!(
        a.body["csrf_token"],
        browser.csrf.as_str(),
        "the session's token stays"
    );
    assert_eq!(a.header("cache-control").as_deref(), Some("no-store"));
    let (mut tab_a, mut tab_b) = (browser.clone(), browser.clone());
    tab_a.absorb(&a.headers);
    tab_b.absorb(&b.headers);
    // One rotation: both hold the same, current refresh cookie (each a valid access
    // token of the session; a browser keeps whichever came last).
    assert_eq!(
        tab_a.jar["__Host-tradeauth_rt"],
        tab_b.jar["__Host-tradeauth_rt"]
    );
    for tab in [&tab_a, &tab_b] {
        app.browser_request(
            tab,
            Method::GET,
            "/api/v1/auth/me",
            "same-origin",
            None,
            None,
        )
        .await
        .assert(200, None);
    }
    assert_ne!(tab_a.jar["__Host-tradeauth_rt"], first_rt, "rotated");
    let names: Vec<String> = set_cookies(&a.headers).into_iter().map(|c| c.0).collect();
    assert_eq!(names, ["__Host-tradeauth_at", "__Host-tradeauth_rt"]);
    browser.absorb(&a.headers);
    app.browser_request(
        &browser,
        Method::GET,
        "/api/v1/auth/me",
        "same-origin",
        None,
        None,
    )
    .await
    .assert(200, None);

    // A body token wins over the cookie (the body form, with tokens in the body).
    let other = app.login(&email, PASSWORD).await;
    let r = app
        .browser_request(
            &browser,
            Method::POST,
            "/api/v1/auth/refresh",
            "same-origin",
            None,
            Some(json!({"refresh_token": refresh_token(&other.body)})),
        )
        .await;
    r.assert(200, None);
    assert_eq!(r.body["token_type"], "bearer");
}

#[tokio::test]
async fn a_reused_refresh_cookie_ends_the_session_and_clears_the_cookies() {
    let app = spawn_with(|s| with_app_origin(s).set("refresh_reuse_grace", "1s")).await;
    let email = app.registered().await;
    let (stale, _) = app.cookie_login(&email, false).await;
    let r = app
        .browser_request(
            &stale,
            Method::POST,
            "/api/v1/auth/refresh",
            "app",
            Some(&stale.csrf),
            None,
        )
        .await;
    r.assert(200, None);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r = app
        .browser_request(
            &stale,
            Method::POST,
            "/api/v1/auth/refresh",
            "app",
            Some(&stale.csrf),
            None,
        )
        .await;
    r.assert(401, Some("refresh_token_reused"));
    let cleared: Vec<_> = set_cookies(&r.headers)
        .into_iter()
        .filter(|c| c.2.get("max-age").map(String::as_str) == Some("0"))
        .collect();
    assert_eq!(cleared.len(), 3, "{:?}", r.headers);
}

#[tokio::test]
async fn logout_by_cookie_needs_the_csrf_token_then_clears_the_cookies() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;

    // A cross-site form post or fetch cannot sign the user out.
    for (site, token) in [("evil", Some(browser.csrf.as_str())), ("same-origin", None)] {
        app.browser_request(
            &browser,
            Method::POST,
            "/api/v1/auth/logout",
            site,
            token,
            None,
        )
        .await
        .assert(403, Some("csrf_failed"));
    }
    app.browser_request(
        &browser,
        Method::GET,
        "/api/v1/auth/me",
        "same-origin",
        None,
        None,
    )
    .await
    .assert(200, None);

    let r = app
        .browser_request(
            &browser,
            Method::POST,
            "/api/v1/auth/logout",
            "same-origin",
            Some(&browser.csrf),
            None,
        )
        .await;
    r.assert(204, None);
    assert_eq!(r.header("clear-site-data").as_deref(), Some("\"cookies\""));
    let cleared = set_cookies(&r.headers);
    assert_eq!(cleared.len(), 3);
    for (name, value, attrs) in &cleared {
        assert!(name.starts_with("__Host-tradeauth_"));
        assert_eq!(value, "");
        assert_eq!(attrs["max-age"], "0");
        assert!(attrs.contains_key("secure") && attrs["path"] == "/");
    }
    let r = app
        .browser_request(
            &browser,
            Method::GET,
            "/api/v1/auth/me",
            "same-origin",
            None,
            None,
        )
        .await;
    r.assert(401, None);
    let r = app
        .browser_request(
            &browser,
            Method::POST,
            "/api/v1/auth/refresh",
            "same-origin",
            Some(&browser.csrf),
            None,
        )
        .await;
    r.assert(401, Some("invalid_refresh_token"));
}

#[tokio::test]
async fn forward_auth_judges_the_original_request_of_a_trusted_proxy() {
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;
    let verify = |original_method: &'static str, token: Option<String>| {
        let mut req = app
            .client
            .get(app.url("/api/v1/auth/verify"))
            .header("cookie", browser.cookie_header())
            .header("sec-fetch-site", "same-origin")
            .header("x-original-method", original_method)
            .header("x-original-uri", "/service/orders")
            .header("x-original-host", "app.example.com");
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        async move { into_resp(req.send().await.unwrap()).await }
    };
    let r = verify("GET", None).await;
    r.assert(204, None);
    assert!(r.header("x-auth-session-id").is_some());
    let r = verify("POST", None).await;
    r.assert(403, Some("csrf_failed"));
    assert_eq!(r.header("x-auth-error").as_deref(), Some("csrf_failed"));
    verify("POST", Some(browser.csrf.clone()))
        .await
        .assert(204, None);

    // Without credentials: the code in X-Auth-Error, for nginx (which drops the body).
    let r = app.get("/api/v1/auth/verify").await;
    r.assert(401, Some("missing_token"));
    assert_eq!(r.header("x-auth-error").as_deref(), Some("missing_token"));
}

#[tokio::test]
async fn original_request_headers_from_an_untrusted_peer_are_ignored() {
    // No trusted proxies: a client cannot make its POST look like a GET, or a GET like a POST.
    let app = spawn_with(with_app_origin).await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/verify"))
            .header("cookie", browser.cookie_header())
            .header("x-original-method", "POST")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(204, None);
}

#[tokio::test]
async fn a_cookie_websocket_must_come_from_an_allowed_origin() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = browser_app().await;
    let email = app.registered().await;
    let (browser, _) = app.cookie_login(&email, false).await;
    let ws_url = app.url("/api/v1/ws").replace("http://", "ws://");
    let open = |origin: &'static str| {
        let mut req = ws_url.clone().into_client_request().unwrap();
        req.headers_mut().insert(
            "cookie",
            HeaderValue::from_str(&browser.cookie_header()).unwrap(),
        );
        req.headers_mut()
            .insert("origin", HeaderValue::from_static(origin));
        tokio_tungstenite::connect_async(req)
    };
    let (mut ws, _) = open(APP_ORIGIN).await.expect("allowed origin connects");
    use futures::StreamExt;
    let first = ws.next().await.unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("welcome"));
    match open("https://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
            assert_eq!(res.status().as_u16(), 403)
        }
        other => panic!("a foreign origin connected: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn cors_echoes_allowed_origins_with_credentials_and_nothing_else() {
    let app = browser_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/auth/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header(
                "access-control-request-headers",
                "content-type, x-csrf-token",
            )
            .send()
    };
    let r = into_resp(preflight(APP_ORIGIN).await.unwrap()).await;
    assert!(r.status < 300, "{}", r.status);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(APP_ORIGIN)
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    let allowed = r
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("x-csrf-token"), "{allowed}");

    let r = into_resp(preflight("https://evil.example").await.unwrap()).await;
    assert!(r.header("access-control-allow-origin").is_none());

    // A real request: the error a browser app reads carries the CORS headers too.
    let r = into_resp(
        app.client
            .get(app.url("/api/v1/auth/me"))
            .header("origin", APP_ORIGIN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert(401, Some("missing_token"));
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some(APP_ORIGIN)
    );
    let exposed = r
        .header("access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("date") && exposed.contains("retry-after"),
        "{exposed}"
    );
    assert!(r
        .header("vary")
        .unwrap()
        .to_ascii_lowercase()
        .contains("origin"));
}

#[tokio::test]
async fn plain_http_development_cookies_have_no_prefix_and_no_secure() {
    let app = spawn_with(|s| with_app_origin(s).set("cookie_secure", "false")).await;
    let email = app.registered().await;
    let (browser, r) = app.cookie_login(&email, false).await;
    let cookies = set_cookies(&r.headers);
    let names: Vec<&str> = cookies.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["tradeauth_at", "tradeauth_rt", "tradeauth_csrf"]);
    assert!(cookies.iter().all(|c| !c.2.contains_key("secure")));
    app.browser_request(&browser, Method::GET, "/api/v1/auth/me", "app", None, None)
        .await
        .assert(200, None);
}
