//! Relying parties nobody on the team wrote, with their own validation on: panva's
//! `openid-client` (npm, OpenID-certified) drives the whole flow through the real login
//! and consent pages as plain HTML forms (`tests/oidc/code_flow.mjs`). Without Node this
//! says so loudly and skips, unless `TRADEAUTH_TEST_REQUIRE_SERVICES=1` (as in CI).

use super::*;
use std::path::Path;
use std::process::Command;

pub(super) fn oidc_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

pub(super) fn require_node() -> bool {
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node {
        if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("node is required (TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
        }
        eprintln!("!!! SKIPPED: openid-client needs node, which is not installed");
        return false;
    }
    if !oidc_dir().join("node_modules/openid-client").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(oidc_dir())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm ci in tests/oidc failed");
    }
    true
}

fn run_node(script: &str, env: &[(&str, String)]) -> String {
    let mut cmd = Command::new("node");
    cmd.arg(script).current_dir(oidc_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    assert!(text.contains(" passed, 0 failed"), "{text}");
    text
}

#[tokio::test]
async fn openid_client_completes_the_code_flow_through_the_pages() {
    if !require_node() {
        return;
    }
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let cc = register_client(
        &app,
        json!({"name": "Trading bot", "client_type": "confidential", "grant_types": ["client_credentials"], "max_tier": 3}),
    )
    .await;
    let env = vec![
        (
            "CC_CLIENT_ID",
            cc["client_id"].as_str().unwrap().to_string(),
        ),
        (
            "CC_CLIENT_SECRET",
            cc["client_secret"].as_str().unwrap().to_string(),
        ),
        ("TRADEAUTH_URL", app.base.clone()),
        ("CLIENT_ID", id),
        ("CLIENT_SECRET", secret),
        ("REDIRECT_URI", REDIRECT_URI.to_string()),
        ("USER_EMAIL", email),
        ("USER_PASSWORD", PASSWORD.to_string()),
        ("USER_ID", user_id),
        ("POST_LOGOUT_REDIRECT_URI", POST_LOGOUT_URI.to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || run_node("code_flow.mjs", &env))
        .await
        .unwrap();
    // Every step ran (a step that never ran cannot pass).
    assert!(out.contains("12 passed, 0 failed"), "{out}");
}

/// Python with Authlib, or a loud skip (a failure under `TRADEAUTH_TEST_REQUIRE_SERVICES=1`).
fn require_authlib() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import authlib, joserfc, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("python3 with tests/oidc/requirements.txt is required (TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
        }
        eprintln!(
            "!!! SKIPPED: Authlib is not installed (pip install -r tests/oidc/requirements.txt)"
        );
    }
    ok
}

#[tokio::test]
async fn authlib_completes_the_code_flow_refresh_introspection_and_revocation() {
    if !require_authlib() {
        return;
    }
    // Plain-HTTP cookies: requests' cookie jar, like a browser, keeps `Secure` cookies off
    // http:// (the Node driver keeps its own jar).
    let app = spawn_provider(|s| s.set("cookie_secure", "false")).await;
    let (email, user_id) = user(&app).await;
    let (id, secret) = confidential_client(&app).await;
    let env = vec![
        ("TRADEAUTH_URL", app.base.clone()),
        ("CLIENT_ID", id),
        ("CLIENT_SECRET", secret),
        ("REDIRECT_URI", REDIRECT_URI.to_string()),
        ("USER_EMAIL", email),
        ("USER_PASSWORD", PASSWORD.to_string()),
        ("USER_ID", user_id),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("python3");
        cmd.arg("authlib_flow.py").current_dir(oidc_dir());
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "authlib_flow.py failed:\n{text}");
        text
    })
    .await
    .unwrap();
    assert!(out.contains("5 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn openid_client_runs_a_fapi_client_end_to_end() {
    if !require_node() {
        return;
    }
    let app = spawn_provider(|s| s).await;
    let (email, user_id) = user(&app).await;
    let (rs_id, rs_secret) = confidential_client(&app).await;
    let env = vec![
        ("TRADEAUTH_URL", app.base.clone()),
        ("ADMIN_TOKEN", admin_token(&app).await),
        ("REDIRECT_URI", REDIRECT_URI.to_string()),
        ("USER_EMAIL", email),
        ("USER_PASSWORD", PASSWORD.to_string()),
        ("USER_ID", user_id),
        ("RS_CLIENT_ID", rs_id),
        ("RS_CLIENT_SECRET", rs_secret),
    ];
    let out = tokio::task::spawn_blocking(move || run_node("fapi_flow.mjs", &env))
        .await
        .unwrap();
    // Every step ran (a step that never ran cannot pass).
    assert!(out.contains("12 passed, 0 failed"), "{out}");
}
