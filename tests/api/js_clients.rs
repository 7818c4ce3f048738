//! The seeds' JavaScript clients (seed 000's fetch + axios interceptor, seed 002's flow)
//! run with Node against tradeauth in their dialect, including a refresh after the access
//! token expired. Without Node this test says so loudly and skips, unless
//! `TRADEAUTH_TEST_REQUIRE_SERVICES=1` (as in CI), which makes it fail.

use crate::helpers::*;
use std::path::Path;
use std::process::Command;

fn require_node() -> bool {
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node {
        if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("node is required (TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
        }
        eprintln!("!!! SKIPPED: the seeds' JavaScript clients need node, which is not installed");
        return false;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if !dir.join("node_modules/axios").exists() {
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "npm ci in tests/js failed");
    }
    true
}

fn run_client(script: &str, base: &str, user: &str, password: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let out = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .env("TRADEAUTH_URL", base)
        .env("SEED_USER", user)
        .env("SEED_PASSWORD", password)
        .env("SEED_ACCESS_TTL_MS", "2000")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    assert!(text.contains("passed, 0 failed"), "{text}");
}

#[tokio::test]
async fn seed_000_client_runs_against_the_quantum_dialect() {
    if !require_node() {
        return;
    }
    let app = spawn_with(|s| s.set("dialect", "quantum").set("access_ttl", "2s")).await;
    app.register("quant@example.com", PASSWORD)
        .await
        .assert(201, None);
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        run_client("quantum.mjs", &base, "quant@example.com", PASSWORD)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn seed_002_client_runs_against_the_os_engine_dialect() {
    if !require_node() {
        return;
    }
    let app = spawn_with(|s| {
        s.set("dialect", "os-engine")
            .set("access_ttl", "2s")
            .set("admin_email", "user@example.com")
            .set("admin_password", "SecurePassword123!")
    })
    .await;
    let base = app.base.clone();
    tokio::task::spawn_blocking(move || {
        run_client(
            "os_engine.mjs",
            &base,
            "user@example.com",
            "SecurePassword123!",
        )
    })
    .await
    .unwrap();
}
