//! The `/admin` console without a browser: who may see it, that every action goes through
//! the admin use cases (same rules, same audit events), the delete confirmation step, the
//! CSRF rules on its forms, "Rotate now" and the audit log's CSV export.

use super::helpers::*;
use reqwest::redirect::Policy;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A page session: signs in through the `/login` form; the cookie header and CSRF token.
pub(crate) async fn sign_in(app: &TestApp, email: &str) -> (String, String) {
    let r = no_redirects()
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("username", email), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("__Host-tradeauth_csrf="))
        .unwrap()
        .to_string();
    (cookies.join("; "), csrf)
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) html: String,
    headers: reqwest::header::HeaderMap,
}

pub(crate) async fn get(app: &TestApp, jar: &str, path: &str) -> Page {
    let r = no_redirects()
        .get(app.url(path))
        .header("cookie", jar)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    page(r).await
}

pub(crate) async fn post(app: &TestApp, jar: &str, path: &str, form: &[(&str, &str)]) -> Page {
    let r = no_redirects()
        .post(app.url(path))
        .header("cookie", jar)
        .header("sec-fetch-site", "same-origin")
        .form(form)
        .send()
        .await
        .unwrap();
    page(r).await
}

async fn page(r: reqwest::Response) -> Page {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let location = headers
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    Page {
        status,
        location,
        headers,
        html: r.text().await.unwrap(),
    }
}

#[tokio::test]
async fn only_admins_see_the_console() {
    let app = spawn_app().await;
    let r = get(&app, "", "/admin").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/login?return_to=%2Fadmin"));

    let (power, _) = app.user_with_tier(3).await;
    let (jar, csrf) = sign_in(&app, &power).await;
    let r = get(&app, &jar, "/admin").await;
    assert_eq!(r.status, 403);
    assert!(r.html.contains("Administrators only"), "{}", r.html);
    assert!(r.html.contains("role=\"alert\""));
    assert!(r.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let r = post(
        &app,
        &jar,
        "/admin/signing-keys/rotate",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, 403, "a tier-3 user cannot rotate from the page");
    assert_eq!(get(&app, &jar, "/admin/audit.csv").await.status, 403);
    // The navigation shows "Admin" only to admins.
    assert!(!get(&app, &jar, "/account")
        .await
        .html
        .contains("href=\"/admin\""));
}

#[tokio::test]
async fn an_admin_finds_disables_and_deletes_a_user_through_the_same_rules() {
    let app = spawn_app().await;
    let (admin_email, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (jar, csrf) = sign_in(&app, &admin_email).await;
    let (target, target_login) = app.new_user().await;
    let target_id = target_login["user"]["id"].as_str().unwrap().to_string();

    // Search by email, filter by tier and state.
    let local = target.split('@').next().unwrap();
    let r = get(&app, &jar, &format!("/admin?q={local}")).await;
    assert_eq!(r.status, 200);
    assert!(r.html.contains(&format!("/admin/users/{target_id}")));
    assert!(
        !r.html.contains(&admin_email),
        "the search narrows the list"
    );
    let r = get(&app, &jar, &format!("/admin?q={local}&tier=4")).await;
    assert!(!r.html.contains(&target), "tier filter");
    let r = get(&app, &jar, &format!("/admin?q={local}&active=false")).await;
    assert!(!r.html.contains(&target), "active filter");
    let r = get(&app, &jar, "/admin?tier=9").await;
    assert_eq!(r.status, 400);
    assert!(r.html.contains("role=\"alert\""));

    // The user's page: state and lockout.
    let user_page = format!("/admin/users/{target_id}");
    let r = get(&app, &jar, &user_page).await;
    assert_eq!(r.status, 200);
    assert!(r.html.contains("not locked"));
    assert!(r.html.contains(">Disable</button>"));

    // A form without the session's CSRF token changes nothing.
    let active = format!("{user_page}/active");
    let r = post(&app, &jar, &active, &[("active", "false")]).await;
    assert_eq!(r.status, 403);
    let u = app
        .get_auth(&format!("/api/v1/admin/users/{target_id}"), &admin_at)
        .await;
    assert_eq!(u.body["is_active"], true);

    // Disable: the same use case as the API (sessions end, event with the admin as actor).
    let r = post(
        &app,
        &jar,
        &active,
        &[("csrf_token", &csrf), ("active", "false")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.unwrap(), format!("{user_page}?done=disabled"));
    let u = app
        .get_auth(&format!("/api/v1/admin/users/{target_id}"), &admin_at)
        .await;
    assert_eq!(u.body["is_active"], false);
    app.get_auth("/api/v1/auth/me", &access(&target_login))
        .await
        .assert(401, None);
    let events = app
        .get_auth(
            &format!("/api/v1/admin/audit?user_id={target_id}&type=user.updated"),
            &admin_at,
        )
        .await;
    let admin_id = admin["user"]["id"].as_str().unwrap();
    assert!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor_id"] == admin_id),
        "{}",
        events.body
    );
    let r = get(&app, &jar, &format!("{user_page}?done=disabled")).await;
    assert!(r.html.contains("role=\"status\""));
    assert!(r.html.contains(">Enable</button>"));

    // The last admin rule holds on the page too.
    let admin_page = format!("/admin/users/{admin_id}/active");
    let r = post(
        &app,
        &jar,
        &admin_page,
        &[("csrf_token", &csrf), ("active", "false")],
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(r.html.contains("role=\"alert\""), "{}", r.html);

    // Delete asks first; only the confirmed form deletes.
    let delete = format!("{user_page}/delete");
    let r = post(&app, &jar, &delete, &[("csrf_token", &csrf)]).await;
    assert_eq!(r.status, 200);
    assert!(r.html.contains("name=\"confirm\" value=\"yes\""));
    app.get_auth(&format!("/api/v1/admin/users/{target_id}"), &admin_at)
        .await
        .assert(200, None);
    let r = post(
        &app,
        &jar,
        &delete,
        &[("csrf_token", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/admin?done=deleted"));
    app.get_auth(&format!("/api/v1/admin/users/{target_id}"), &admin_at)
        .await
        .assert(404, Some("not_found"));
}

#[tokio::test]
async fn rotate_now_and_the_audit_log_with_its_csv_export() {
    let app = spawn_app().await;
    let (admin_email, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (jar, csrf) = sign_in(&app, &admin_email).await;

    let kids = |jwks: &serde_json::Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let before = kids(&app.get("/.well-known/jwks.json").await.body);
    let console = get(&app, &jar, "/admin").await;
    assert!(console.html.contains("Rotate now"));
    for kid in &before {
        assert!(
            console.html.contains(kid.as_str()),
            "the console lists {kid}"
        );
    }
    let r = post(
        &app,
        &jar,
        "/admin/signing-keys/rotate",
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(r.location.as_deref(), Some("/admin?done=rotated"));
    let after = kids(&app.get("/.well-known/jwks.json").await.body);
    assert!(
        after.iter().any(|k| !before.contains(k)),
        "a new standby is published: {before:?} → {after:?}"
    );
    let rotated = app
        .get_auth("/api/v1/admin/audit?type=signing_key.rotated", &admin_at)
        .await;
    let items = rotated.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", rotated.body);
    assert_eq!(items[0]["actor_id"], admin["user"]["id"]);

    app.login(&admin_email, "wrong-password-123")
        .await
        .assert(401, None);
    let page = get(&app, &jar, "/admin/audit?type=login.failed").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("login.failed"));
    assert!(
        !page.html.contains("signing_key.rotated"),
        "filtered by type"
    );
    assert!(page.html.contains("/admin/audit.csv?type=login.failed"));
    let bad = get(&app, &jar, "/admin/audit?since=yesterday").await;
    assert_eq!(bad.status, 400);

    let csv = get(&app, &jar, "/admin/audit.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"tradeauth-audit-"));
    let mut lines = csv.html.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,type,at,user_id,actor_id,ip,user_agent,details"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.iter().any(|l| l.contains(",signing_key.rotated,")));
    assert!(rows.iter().any(|l| l.contains(",login.failed,")));
    let since_tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let empty = get(
        &app,
        &jar,
        &format!("/admin/audit.csv?since={since_tomorrow}"),
    )
    .await;
    assert_eq!(empty.html.lines().count(), 1, "only the header");
}

/// The text of the element with `id` in a page (a one-line `<code id=...>`).
fn code_by_id(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\">")).expect(id) + id.len() + 6;
    html[start..].split('<').next().unwrap().to_string()
}

/// Whether `secret` authenticates `client_id` at the introspection endpoint.
async fn secret_works(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let r = app
        .client
        .post(app.url("/oauth2/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", "not-a-token")])
        .send()
        .await
        .unwrap();
    r.status() == 200
}

#[tokio::test]
async fn oauth_clients_are_created_edited_rotated_and_deleted_from_the_console() {
    let app = spawn_app().await;
    let (admin_email, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (jar, csrf) = sign_in(&app, &admin_email).await;

    let page = get(&app, &jar, "/admin/clients").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Create client"));

    // A refused form keeps what was typed and says why.
    let bad = post(
        &app,
        &jar,
        "/admin/clients",
        &[
            ("csrf_token", &csrf),
            ("name", "Broken app"),
            ("client_type", "confidential"),
            ("redirect_uris", "not a uri"),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
            ("max_tier", "2"),
        ],
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.html);
    assert!(bad.html.contains("role=\"alert\""));
    assert!(bad.html.contains("value=\"Broken app\""));

    let made = post(
        &app,
        &jar,
        "/admin/clients",
        &[
            ("csrf_token", &csrf),
            ("name", "Trading dashboard"),
            ("client_type", "confidential"),
            (
                "redirect_uris",
                "https://dash.example/callback\nhttp://127.0.0.1/cb",
            ),
            ("grant_types", "authorization_code"),
            ("grant_types", "refresh_token"),
            ("scopes", "openid"),
            ("scopes", "profile"),
            ("scopes", "offline_access"),
            ("max_tier", "2"),
        ],
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.html);
    let secret = code_by_id(&made.html, "client-secret");
    let client_id = made
        .html
        .split("/admin/clients/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let api = app
        .get_auth(
            &format!("/api/v1/admin/oauth-clients/{client_id}"),
            &admin_at,
        )
        .await;
    api.assert(200, None);
    assert_eq!(api.body["name"], "Trading dashboard");
    assert_eq!(
        api.body["redirect_uris"],
        serde_json::json!(["https://dash.example/callback", "http://127.0.0.1/cb"])
    );
    assert!(secret_works(&app, &client_id, &secret).await);

    // Edit: the same validation as the API; the page shows the saved values.
    let edit = format!("/admin/clients/{client_id}/update");
    let r = post(
        &app,
        &jar,
        &edit,
        &[
            ("csrf_token", &csrf),
            ("name", "Trading dashboard v2"),
            ("redirect_uris", "https://dash.example/callback"),
            ("grant_types", "authorization_code"),
            ("scopes", "openid"),
            ("max_tier", "3"),
            ("first_party", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let api = app
        .get_auth(
            &format!("/api/v1/admin/oauth-clients/{client_id}"),
            &admin_at,
        )
        .await;
    assert_eq!(api.body["name"], "Trading dashboard v2");
    assert_eq!(api.body["max_tier"], 3);
    assert_eq!(api.body["first_party"], true);

    // Rotate: the new secret is shown once and the old one stops working.
    let r = post(
        &app,
        &jar,
        &format!("/admin/clients/{client_id}/rotate-secret"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status, 200);
    let fresh = code_by_id(&r.html, "client-secret");
    assert_ne!(fresh, secret);
    assert!(secret_works(&app, &client_id, &fresh).await);
    assert!(!secret_works(&app, &client_id, &secret).await);

    // Delete asks first.
    let delete = format!("/admin/clients/{client_id}/delete");
    let r = post(&app, &jar, &delete, &[("csrf_token", &csrf)]).await;
    assert!(r.html.contains("name=\"confirm\" value=\"yes\""));
    app.get_auth(
        &format!("/api/v1/admin/oauth-clients/{client_id}"),
        &admin_at,
    )
    .await
    .assert(200, None);
    let r = post(
        &app,
        &jar,
        &delete,
        &[("csrf_token", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(r.location.as_deref(), Some("/admin/clients?done=deleted"));
    app.get_auth(
        &format!("/api/v1/admin/oauth-clients/{client_id}"),
        &admin_at,
    )
    .await
    .assert(404, None);
    let events = app
        .get_auth("/api/v1/admin/audit?type=oauth_client.created", &admin_at)
        .await;
    assert_eq!(
        events.body["items"][0]["actor_id"], admin["user"]["id"],
        "{}",
        events.body
    );
}

#[tokio::test]
async fn an_admin_creates_a_user_from_the_console() {
    let app = spawn_app().await;
    let (admin_email, admin) = app.user_with_tier(4).await;
    let admin_at = access(&admin);
    let (jar, csrf) = sign_in(&app, &admin_email).await;

    let weak = post(
        &app,
        &jar,
        "/admin/users",
        &[
            ("csrf_token", &csrf),
            ("email", "made-weak@example.com"),
            ("password", "short"),
        ],
    )
    .await;
    assert_eq!(weak.status, 422, "{}", weak.html);
    assert!(weak.html.contains("role=\"alert\""));

    let r = post(
        &app,
        &jar,
        "/admin/users",
        &[
            ("csrf_token", &csrf),
            ("email", "made-here@example.com"),
            ("password", PASSWORD),
            ("username", ""),
            ("full_name", "Made Here"),
            ("permission_tier", "3"),
            ("is_verified", "on"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.html);
    let location = r.location.unwrap();
    assert!(location.ends_with("?done=created"), "{location}");
    let id = location
        .trim_start_matches("/admin/users/")
        .split('?')
        .next()
        .unwrap();
    let user = app
        .get_auth(&format!("/api/v1/admin/users/{id}"), &admin_at)
        .await;
    assert_eq!(user.body["email"], "made-here@example.com");
    assert_eq!(user.body["permission_tier"], 3);
    assert_eq!(user.body["is_verified"], true);
    assert_eq!(user.body["full_name"], "Made Here");
    app.login("made-here@example.com", PASSWORD)
        .await
        .assert(200, None);
    let events = app
        .get_auth(
            &format!("/api/v1/admin/audit?user_id={id}&type=user.registered"),
            &admin_at,
        )
        .await;
    assert_eq!(events.body["items"][0]["actor_id"], admin["user"]["id"]);
}
