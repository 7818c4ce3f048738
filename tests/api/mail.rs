//! Email verification and password reset, following the links in the mails tradeauth
//! actually wrote: through the `file:` mailer, and through a real SMTP server on loopback.

use crate::helpers::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every mail in `dir` (a `file:` mailer's directory, or a Maildir's `new/`), oldest first.
pub fn mails(dir: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Waits for the `n`-th mail to arrive.
pub async fn wait_for_mail(dir: &Path, n: usize) -> String {
    for _ in 0..100 {
        let all = mails(dir);
        if all.len() >= n {
            return all[n - 1].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mail {n} never arrived in {}", dir.display());
}

/// The token of the link `{base}/{path}?token=...` in a raw mail, where it must stand
/// whole on one line (a mail client shows it as it is, and a reader may grep for it).
pub fn link_token(mail: &str, base: &str, path: &str) -> String {
    let prefix = format!("{base}/{path}?token=");
    let at = mail
        .find(&prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{mail}"));
    let token: String = mail[at + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let rest = &mail[at + prefix.len() + token.len()..];
    assert!(
        token.len() >= 40 && (rest.starts_with("\r\n") || rest.starts_with('\n')),
        "the link is not whole on its line:\n{mail}"
    );
    token
}

const PUBLIC: &str = "https://auth.example.test";

async fn mail_app(
    extra: impl FnOnce(tradeauth::config::Sources) -> tradeauth::config::Sources,
) -> (TestApp, PathBuf) {
    let outbox = tempfile::tempdir().unwrap().keep();
    let dir = outbox.clone();
    let app = spawn_with(move |s| {
        extra(
            s.set("mailer", format!("file:{}", dir.display()))
                .set("public_url", PUBLIC),
        )
    })
    .await;
    (app, outbox)
}

#[tokio::test]
async fn verification_mail_link_resend_and_reuse() {
    let (app, outbox) = mail_app(|s| s.set("require_email_verification", "true")).await;
    let r = app.register("verify.me@example.com", PASSWORD).await;
    r.assert(201, None);
    assert_eq!(r.body["verification_required"], true);
    let mail = wait_for_mail(&outbox, 1).await;
    assert!(mail.contains("To: verify.me@example.com"), "{mail}");
    let first = link_token(&mail, PUBLIC, "verify-email");

    // Before verification: wrong password 401, right password 403.
    app.login("verify.me@example.com", "Wrong-pass-123")
        .await
        .assert(401, Some("invalid_credentials"));
    app.login("verify.me@example.com", PASSWORD)
        .await
        .assert(403, Some("email_not_verified"));

    // Resend: a second link; unknown addresses answer the same and send nothing.
    app.post(
        "/api/v1/auth/verify-email/resend",
        json!({"email": "verify.me@example.com"}),
    )
    .await
    .assert(202, None);
    app.post(
        "/api/v1/auth/verify-email/resend",
        json!({"email": "nobody@example.com"}),
    )
    .await
    .assert(202, None);
    let second = link_token(&wait_for_mail(&outbox, 2).await, PUBLIC, "verify-email");
    assert_ne!(first, second);

    let r = app
        .post("/api/v1/auth/verify-email", json!({"token": second}))
        .await;
    r.assert(200, None);
    assert_eq!(r.body["is_verified"], true);
    assert_eq!(r.body["email"], "verify.me@example.com");
    // Used tokens (and older ones of the same user) are dead.
    app.post("/api/v1/auth/verify-email", json!({"token": second}))
        .await
        .assert(400, Some("invalid_mail_token"));
    app.post("/api/v1/auth/verify-email", json!({"token": first}))
        .await
        .assert(400, Some("invalid_mail_token"));
    app.post("/api/v1/auth/verify-email", json!({"token": "made-up"}))
        .await
        .assert(400, Some("invalid_mail_token"));
    app.login("verify.me@example.com", PASSWORD)
        .await
        .assert(200, None);
    // A verified account gets no more verification mails.
    app.post(
        "/api/v1/auth/verify-email/resend",
        json!({"email": "verify.me@example.com"}),
    )
    .await
    .assert(202, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails(&outbox).len(), 2);
    let events = app
        .get_auth(
            "/api/v1/auth/events",
            &access(&app.login("verify.me@example.com", PASSWORD).await.body),
        )
        .await;
    assert!(events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "email.verified"));
}

#[tokio::test]
async fn an_expired_verification_link_is_refused() {
    let (app, outbox) = mail_app(|s| s.set("verification_ttl", "1s")).await;
    app.register("late@example.com", PASSWORD)
        .await
        .assert(201, None);
    let token = link_token(&wait_for_mail(&outbox, 1).await, PUBLIC, "verify-email");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.post("/api/v1/auth/verify-email", json!({"token": token}))
        .await
        .assert(400, Some("invalid_mail_token"));
}

#[tokio::test]
async fn password_reset_revokes_sessions_and_clears_the_lockout() {
    let (app, outbox) = mail_app(|s| s).await;
    let (email, before) = app.new_user().await;
    wait_for_mail(&outbox, 1).await; // the registration's verification mail
    for _ in 0..5 {
        app.login(&email, "Wrong-pass-123").await;
    }
    app.login(&email, PASSWORD)
        .await
        .assert(423, Some("account_locked"));

    app.post(
        "/api/v1/auth/password-reset",
        json!({"email": "nobody@example.com"}),
    )
    .await
    .assert(202, None);
    app.post(
        "/api/v1/auth/password-reset",
        json!({"email": email.to_uppercase()}),
    )
    .await
    .assert(202, None);
    let mail = wait_for_mail(&outbox, 2).await;
    assert!(mail.contains(&format!("To: {email}")), "{mail}");
    let token = link_token(&mail, PUBLIC, "reset-password");

    // A refused password does not use the token up.
    let r = app
        .post(
            "/api/v1/auth/password-reset/confirm",
            json!({"token": token, "new_password": "password"}),
        )
        .await;
    r.assert(422, Some("weak_password"));
    assert!(r.body["details"]["new_password"].is_string());
    app.post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "new_password": "Fresh-Pass-4821"}),
    )
    .await
    .assert(204, None);
    app.get_auth("/api/v1/auth/me", &access(&before))
        .await
        .assert(401, Some("invalid_token"));
    app.refresh(&refresh_token(&before))
        .await
        .assert(401, Some("invalid_refresh_token"));
    app.login(&email, PASSWORD)
        .await
        .assert(401, Some("invalid_credentials"));
    app.login(&email, "Fresh-Pass-4821").await.assert(200, None);
    app.post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "new_password": "Other-Pass-9931"}),
    )
    .await
    .assert(400, Some("invalid_mail_token"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mails(&outbox).len(), 2, "no mail for an unknown address");
}

#[tokio::test]
async fn an_expired_reset_link_is_refused() {
    let (app, outbox) = mail_app(|s| s.set("reset_ttl", "1s")).await;
    let (email, _) = app.new_user().await;
    app.post("/api/v1/auth/password-reset", json!({"email": email}))
        .await
        .assert(202, None);
    let token = link_token(&wait_for_mail(&outbox, 2).await, PUBLIC, "reset-password");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "new_password": "Fresh-Pass-4821"}),
    )
    .await
    .assert(400, Some("invalid_mail_token"));
}

#[tokio::test]
async fn the_per_recipient_quota_counts_only_mails_sent() {
    let (app, outbox) =
        mail_app(|s| s.set("rate_limit", "on").set("rate_limit_mail", "2/hour")).await;
    let (email, _) = app.new_user().await; // mail 1: verification
                                           // Requests about addresses without an account send nothing and spend nobody's quota.
    for i in 0..5 {
        app.post(
            "/api/v1/auth/password-reset",
            json!({"email": format!("ghost{i}@example.com")}),
        )
        .await
        .assert(202, None);
    }
    for _ in 0..3 {
        app.post("/api/v1/auth/password-reset", json!({"email": email}))
            .await
            .assert(202, None);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mails(&outbox).len(),
        2,
        "verification + one reset; the rest held back silently"
    );
}

#[tokio::test]
async fn a_failing_mailer_never_fails_the_request() {
    let app = spawn_with(|s| s.set("mailer", "smtp://127.0.0.1:9")).await;
    let start = std::time::Instant::now();
    app.register("unlucky@example.com", PASSWORD)
        .await
        .assert(201, None);
    app.post(
        "/api/v1/auth/password-reset",
        json!({"email": "unlucky@example.com"}),
    )
    .await
    .assert(202, None);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "mail is sent off the request path"
    );
}

/// A real SMTP server: Python's aiosmtpd, delivering into a Maildir.
struct SmtpSink {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_sink() -> Option<SmtpSink> {
    let has = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("python3 with aiosmtpd is required (TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
        }
        eprintln!("!!! SKIPPED: the SMTP test needs python3 -m pip install aiosmtpd");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = tempfile::tempdir().unwrap().keep();
    let mut child = std::process::Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir.join("box"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(SmtpSink {
                child,
                port,
                maildir,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the SMTP sink did not start");
}

#[tokio::test]
async fn mails_go_out_over_real_smtp() {
    let Some(sink) = smtp_sink() else { return };
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let app = spawn_with(|s| {
        s.set("mailer", url)
            .set("public_url", PUBLIC)
            .set("require_email_verification", "true")
    })
    .await;
    app.register("smtp.user@example.com", PASSWORD)
        .await
        .assert(201, None);
    let inbox = sink.maildir.join("box/new");
    let mail = wait_for_mail(&inbox, 1).await;
    assert!(mail.contains("smtp.user@example.com"));
    let token = link_token(&mail, PUBLIC, "verify-email");
    app.post("/api/v1/auth/verify-email", json!({"token": token}))
        .await
        .assert(200, None);
    let login = app.login("smtp.user@example.com", PASSWORD).await;
    login.assert(200, None);

    app.post(
        "/api/v1/auth/password-reset",
        json!({"email": "smtp.user@example.com"}),
    )
    .await
    .assert(202, None);
    let token = link_token(&wait_for_mail(&inbox, 2).await, PUBLIC, "reset-password");
    app.post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "new_password": "Fresh-Pass-4821"}),
    )
    .await
    .assert(204, None);
    app.get_auth("/api/v1/auth/me", &access(&login.body))
        .await
        .assert(401, Some("invalid_token"));
    app.post(
        "/api/v1/auth/password-reset/confirm",
        json!({"token": token, "new_password": "Other-Pass-9931"}),
    )
    .await
    .assert(400, Some("invalid_mail_token"));
}
