//! The hosted pages without a browser: status, security headers, the forms' CSRF rules,
//! post/redirect/get, and that a mail scanner's GET consumes nothing.

use super::helpers::*;
use reqwest::redirect::Policy;

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_page_answers_html_with_a_strict_policy() {
    let app = spawn_app().await;
    for path in [
        "/login",
        "/register",
        "/verify-email?token=x",
        "/forgot-password",
        "/reset-password?token=x",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        let csp = r.header("content-security-policy").unwrap();
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-"), "{csp}");
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert!(r.header("referrer-policy").is_some());
        assert!(!r.text.contains("<script>"), "{path}: no inline script");
        assert!(!r.text.contains("style="), "{path}: no inline style");
    }
    // Assets: hashed names, cached for a year; anything else 404.
    let login = app.get("/login").await.text;
    let css = login
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let r = app.get(css).await;
    assert_eq!(r.status, 200);
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(app.get("/assets/app.css").await.status, 404);
}

#[tokio::test]
async fn the_console_wants_a_session_and_its_forms_want_the_csrf_token() {
    let app = spawn_app().await;
    let client = no_redirects();
    let r = client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?return_to=%2Faccount");

    let (email, _) = app.new_user().await;
    // A cross-site login form: refused before the password is looked at.
    let r = client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("username", email.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.text().await.unwrap().contains("role=\"alert\""));

    let r = client
        .post(app.url("/login"))
        .header("sec-fetch-site", "same-origin")
        .form(&[
            ("username", email.as_str()),
            ("password", PASSWORD),
            ("return_to", "//evil.example/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/account",
        "return_to off this origin is ignored"
    );
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 3);
    let jar = cookies.join("; ");
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("__Host-tradeauth_csrf="))
        .unwrap()
        .to_string();

    let page = client
        .get(app.url("/account"))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&email));
    assert!(html.contains(&format!("name=\"csrf_token\" value=\"{csrf}\"")));

    let save = |token: Option<&str>| {
        let mut form = vec![("full_name", "Changed")];
        if let Some(t) = token {
            form.push(("csrf_token", t));
        }
        client
            .post(app.url("/account/profile"))
            .header("cookie", &jar)
            .header("sec-fetch-site", "same-origin")
            .form(&form)
            .send()
    };
    let r = save(None).await.unwrap();
    assert_eq!(r.status(), 403);
    let r = save(Some("wrong")).await.unwrap();
    assert_eq!(r.status(), 403);
    let login = app.login(&email, PASSWORD).await;
    let me = app.get_auth("/api/v1/auth/me", &access(&login.body)).await;
    assert_eq!(
        me.body["full_name"],
        serde_json::Value::Null,
        "nothing changed"
    );

    let r = save(Some(&csrf)).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/account?done=profile");
    let me = app.get_auth("/api/v1/auth/me", &access(&login.body)).await;
    assert_eq!(me.body["full_name"], "Changed");
}

#[tokio::test]
async fn a_mail_scanners_get_of_the_verification_link_consumes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    std::fs::create_dir_all(&mail_dir).unwrap();
    let mailer = format!("file:{}", mail_dir.display());
    let app = spawn_with(move |s| s.set("mailer", mailer)).await;
    let email = "scanned@example.com";
    app.register(email, PASSWORD).await.assert(201, None);
    let mut token = None;
    for _ in 0..50 {
        if let Some(entry) = std::fs::read_dir(&mail_dir).unwrap().flatten().next() {
            let text = std::fs::read_to_string(entry.path())
                .unwrap()
                .replace("=\r\n", "")
                .replace("=3D", "=");
            token = text.split("token=").nth(1).map(|t| {
                t.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect::<String>()
            });
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let token = token.expect("a verification mail");
    for _ in 0..3 {
        let r = app.get(&format!("/verify-email?token={token}")).await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains("Verify email"));
    }
    let r = no_redirects()
        .post(app.url("/verify-email"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Your email address is verified"));
}

#[tokio::test]
async fn a_new_verification_link_can_be_asked_for_from_the_pages() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    std::fs::create_dir_all(&mail_dir).unwrap();
    let mailer = format!("file:{}", mail_dir.display());
    let app = spawn_with(move |s| s.set("mailer", mailer)).await;
    let email = "resend-me@example.com";
    app.register(email, PASSWORD).await.assert(201, None);
    let mails = || std::fs::read_dir(&mail_dir).unwrap().count();
    for _ in 0..50 {
        if mails() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mails(), 1, "the registration mail");

    let page = app.get("/login").await;
    assert!(page.text.contains("href=\"/verify-email/resend\""));
    let form = app.get("/verify-email/resend").await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("Send verification link"));
    for address in [email, "nobody-resend@example.com"] {
        let r = no_redirects()
            .post(app.url("/verify-email/resend"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("email", address)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("role=\"status\""));
    }
    for _ in 0..50 {
        if mails() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(mails(), 2, "one new link, for the known address only");
    // From another site: refused, nothing sent.
    let r = no_redirects()
        .post(app.url("/verify-email/resend"))
        .header("origin", "https://evil.example")
        .form(&[("email", email)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}
