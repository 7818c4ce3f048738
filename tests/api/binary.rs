//! The `tradeauth` binary: serve (logs, graceful shutdown), config check, the CLI.

use crate::helpers::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradeauth"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRADEAUTH_")
            || k == "ADMIN_EMAIL"
            || k == "ADMIN_PASSWORD"
            || k == "RUST_LOG"
        {
            c.env_remove(k);
        }
    }
    c
}

/// A `tradeauth serve` child process and the lines it logs.
struct Served {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
    base: String,
}

fn serve(db: &std::path::Path, extra: &[(&str, &str)]) -> Served {
    let mut cmd = bin();
    cmd.arg("serve")
        .env("TRADEAUTH_LISTEN", "127.0.0.1:0")
        .env(
            "TRADEAUTH_DATABASE_URL",
            format!("sqlite://{}", db.display()),
        )
        .env("TRADEAUTH_LOG_FORMAT", "json")
        .env("TRADEAUTH_RATE_LIMIT", "off")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| {
                let _ = tx.send(l);
            })
    });
    std::thread::spawn(move || {
        BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .for_each(|l| {
                let _ = tx2.send(l);
            })
    });
    let mut log = Vec::new();
    let port = loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("server logs its port");
        log.push(line.clone());
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["message"] == "tradeauth listening" {
                break v["port"].as_u64().unwrap();
            }
        }
    };
    Served {
        child,
        lines: rx,
        log,
        base: format!("http://127.0.0.1:{port}"),
    }
}

impl Served {
    /// SIGTERM, then the exit status and every line logged.
    fn terminate(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        while let Ok(l) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.log.push(l);
        }
        (status, std::mem::take(&mut self.log))
    }
}

impl Drop for Served {
    /// A failed test does not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(c: &reqwest::Client, req: reqwest::RequestBuilder) -> Resp {
    let _ = c;
    into_resp(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_log_never_shows_a_password_or_token_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(&dir.path().join("t.db"), &[]);
    let c = reqwest::Client::new();
    let u = |p: &str| format!("{}{}", server.base, p);
    let password = "Log-Secret-Pw-9431";
    call(
        &c,
        c.post(u("/api/v1/auth/register"))
            .json(&json!({"email": "watcher@example.com", "password": password})),
    )
    .await
    .assert(201, None);
    call(
        &c,
        c.post(u("/api/v1/auth/login"))
            .json(&json!({"username": "watcher@example.com", "password": "Wrong-Secret-Pw-1"})),
    )
    .await
    .assert(401, None);
    let login = call(
        &c,
        c.post(u("/api/v1/auth/login"))
            .json(&json!({"username": "watcher@example.com", "password": password})),
    )
    .await;
    let (at, rt) = (access(&login.body), refresh_token(&login.body));
    call(&c, c.get(u(&format!("/api/v1/auth/verify?token={at}"))))
        .await
        .assert(204, None);
    let fresh = call(
        &c,
        c.post(u("/api/v1/auth/refresh"))
            .json(&json!({"refresh_token": rt})),
    )
    .await;
    let rt2 = refresh_token(&fresh.body);
    call(
        &c,
        c.post(u("/api/v1/auth/logout"))
            .bearer_auth(access(&fresh.body)),
    )
    .await
    .assert(204, None);
    let (status, log) = server.terminate();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    let text = log.join("\n");
    assert!(
        text.contains("\"path\":\"/api/v1/auth/verify\""),
        "requests are logged:\n{text}"
    );
    assert!(text.contains("request_id"), "with a request id");
    for secret in [
        password,
        "Wrong-Secret-Pw-1",
        &at,
        &rt,
        &rt2,
        &access(&fresh.body),
    ] {
        assert!(
            !text.contains(secret),
            "the log contains a secret: {secret}"
        );
    }
    // Every line is JSON.
    for line in &log {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }
}

#[tokio::test]
async fn config_check_masks_secrets_and_bad_values_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tradeauth.toml");
    std::fs::write(&file, "listen = \"0.0.0.0:9999\"\naccess_ttl = \"5m\"\nadmin_email = \"root@example.com\"\nadmin_password = \"hunter2-secret\"\n").unwrap();
    let out = bin()
        .args(["--config", file.to_str().unwrap(), "config", "check"])
        .env("TRADEAUTH_ACCESS_TTL", "7m")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("listen = \"0.0.0.0:9999\""), "{text}");
    assert!(text.contains("access_ttl = \"7m\""), "env wins: {text}");
    assert!(!text.contains("hunter2"), "{text}");
    let out = bin()
        .args(["config", "check"])
        .env("TRADEAUTH_LOCKOUT_SCOPE", "galaxy")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TRADEAUTH_LOCKOUT_SCOPE") && err.contains("account_ip"),
        "{err}"
    );
    std::fs::write(&file, "acess_ttl = \"5m\"\n").unwrap();
    let out = bin()
        .args(["--config", file.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("acess_ttl"));
    // Mail settings are checked with the rest, not first when a mail goes out. The
    // message names the key and never echoes the SMTP password.
    for url in [
        "smtp://user:pw@mail.example:587",
        "smtps://mail.example",
        "smtp://localhost:25?tls=required",
    ] {
        let out = bin()
            .args(["config", "check"])
            .env("TRADEAUTH_MAILER", url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{url}: {out:?}");
    }
    for (var, value) in [
        ("TRADEAUTH_MAILER", "smtp://user:s3cret-pw@/"),
        ("TRADEAUTH_MAIL_FROM", "not a mailbox"),
        ("TRADEAUTH_LISTEN", "notanaddr"),
        ("TRADEAUTH_LISTEN", "127.0.0.1:99999"),
        ("TRADEAUTH_LISTEN", "::1:8080"),
    ] {
        let out = bin()
            .args(["config", "check"])
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && !err.contains("s3cret"), "{err}");
    }
    let out = bin()
        .arg("migrate")
        .env("TRADEAUTH_DATABASE_URL", "mysql://db/x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme"));
}

#[tokio::test]
async fn cli_manages_users_and_keys_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let url = format!("sqlite://{}", db.display());
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .env("TRADEAUTH_DATABASE_URL", &url)
            .env("TRADEAUTH_LOG_FORMAT", "json")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    run(&["migrate"]);
    let created = run(&[
        "user",
        "create",
        "--email",
        "cli@example.com",
        "--password",
        PASSWORD,
        "--username",
        "cliuser",
        "--tier",
        "3",
        "--verified",
    ]);
    assert!(
        created.contains("cli@example.com") && created.contains("tier 3"),
        "{created}"
    );
    let weak = bin()
        .args([
            "user",
            "create",
            "--email",
            "w@example.com",
            "--password",
            "password",
        ])
        .env("TRADEAUTH_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!weak.status.success());
    assert!(run(&["user", "list"]).contains("cliuser"));

    let mut server = serve(&db, &[]);
    let c = reqwest::Client::new();
    let login = call(
        &c,
        c.post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"username": "cliuser", "password": PASSWORD})),
    )
    .await;
    login.assert(200, None);
    assert_eq!(login.body["permission_tier"], 3);
    let at = access(&login.body);
    let kid = run(&["keys", "rotate"]).trim().to_string();
    assert!(!kid.is_empty());
    run(&["user", "set-tier", "cli@example.com", "2"]);
    // The running server sees the CLI's revocation within a second.
    let start = std::time::Instant::now();
    loop {
        let r = call(
            &c,
            c.get(format!("{}/api/v1/auth/verify", server.base))
                .bearer_auth(&at),
        )
        .await;
        if r.status == 401 {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(1),
            "demotion not seen within 1 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    run(&["user", "disable", "cliuser"]);
    let r = call(
        &c,
        c.post(format!("{}/api/v1/auth/login", server.base))
            .json(&json!({"username": "cliuser", "password": PASSWORD})),
    )
    .await;
    r.assert(403, Some("account_disabled"));
    run(&["user", "unlock", "cliuser"]);
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(&dir.path().join("t.db"), &[]);
    let c = reqwest::Client::new();
    let u = |p: &str| format!("{}{}", server.base, p);
    let body = json!({"email": "socket@example.com", "password": "Pong-Pw-Long-8812"});
    call(&c, c.post(u("/api/v1/auth/register")).json(&body))
        .await
        .assert(201, None);
    let login = call(
        &c,
        c.post(u("/api/v1/auth/login")).json(&json!({
            "username": "socket@example.com", "password": "Pong-Pw-Long-8812"
        })),
    )
    .await;
    let url = format!(
        "{}/api/v1/ws?token={}",
        server.base.replace("http://", "ws://"),
        access(&login.body)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(
        welcome.to_text().unwrap().contains("welcome"),
        "{welcome:?}"
    );
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let code = loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a close frame within 10 s")
        {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    };
    assert_eq!(code, Some(1001), "the process sends 1001 before it exits");
    drop(ws);
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
}

/// Mails for requests answered around SIGTERM (in flight when it came, finished by the
/// graceful shutdown) still go out before the process exits.
#[tokio::test]
async fn sigterm_sends_the_mails_of_answered_requests_before_exiting() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("mail");
    let mailer = format!("file:{}", outbox.display());
    let mut server = serve(
        &dir.path().join("t.db"),
        &[("TRADEAUTH_MAILER", mailer.as_str())],
    );
    let c = reqwest::Client::new();
    let url = format!("{}/api/v1/auth/register", server.base);
    let registrations = (0..3).map(|i| {
        let body =
            json!({"email": format!("late{i}@example.com"), "password": "Late-Mail-Pw-8812"});
        let req = c.post(&url).json(&body);
        tokio::spawn(async move { req.send().await.map(|r| r.status().as_u16()) })
    });
    let registrations: Vec<_> = registrations.collect();
    // While the passwords are being hashed (one at a time on this build's defaults).
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    // A request the server had accepted is finished; one still connecting is refused.
    let mut answered = 0;
    for r in registrations {
        match r.await.unwrap() {
            Ok(status) => {
                assert_eq!(status, 201);
                answered += 1;
            }
            Err(e) => assert!(e.is_connect() || e.is_request(), "{e:?}"),
        }
    }
    assert!(
        answered > 0,
        "no registration reached the server before SIGTERM"
    );
    let status = tokio::task::spawn_blocking(move || server.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "SIGTERM exits 0, got {status:?}");
    let mails = std::fs::read_dir(&outbox)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(
        mails, answered,
        "one verification mail per answered registration"
    );
}

/// RFC 8725 §3.5: an HS256 secret shorter than 32 bytes, or a secret set beside another
/// algorithm, stops the start and `config check` (exit 2), naming the key and never
/// echoing the secret. The same secret long enough, with HS256, passes.
#[test]
fn a_short_or_misplaced_jwt_secret_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let short = "short-hs256-secret-of-31-bytes!";
    let long = "an-hs256-secret-of-at-least-32-bytes!!";
    let run = |args: &[&str], alg: &str, secret: &str| {
        let mut child = bin()
            .args(args)
            .env("TRADEAUTH_LISTEN", "127.0.0.1:0")
            .env("TRADEAUTH_DATABASE_URL", &db)
            .env("TRADEAUTH_LOG_FORMAT", "json")
            .env("TRADEAUTH_JWT_ALG", alg)
            .env("TRADEAUTH_JWT_SECRET", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts anyway is stopped, and the test fails below.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code(), text)
    };
    for (alg, secret) in [("HS256", short), ("EdDSA", long), ("RS256", long)] {
        for args in [&["config", "check"][..], &["serve"][..]] {
            let (code, err) = run(args, alg, secret);
            assert_eq!(code, Some(2), "{args:?} with {alg}: {err}");
            assert!(err.contains("TRADEAUTH_JWT_SECRET"), "{err}");
            assert!(!err.contains(secret), "the secret is echoed: {err}");
        }
    }
    let (code, err) = run(&["config", "check"], "HS256", long);
    assert_eq!(code, Some(0), "{err}");
}
