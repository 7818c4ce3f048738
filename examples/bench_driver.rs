//! The stateful half of the benchmark suite (bench/run.sh drives it; wrk does the rest).
//!
//! Subcommands print one JSON object on stdout:
//! - `seed-users DB N`: N users written straight into an SQLite or PostgreSQL database;
//! - `seed-sessions DB N REVOKED`: N live sessions and REVOKED revoked token ids;
//! - `login BASE USER PASSWORD N`: login latency p50/p99 and the bare Argon2id time;
//! - `refresh BASE USER PASSWORD CHAINS SECS`: rotations per second over CHAINS chains;
//! - `flood BASE TOKEN SECS FLOODERS`: /auth/verify p50/p99 while FLOODERS clients send
//!   wrong passwords;
//! - `ready BIN DB`: milliseconds from process start to /readyz answering 200;
//! - `passkey BASE USER PASSWORD N`: registers a passkey for USER (the
//!   `webauthn-authenticator-rs` soft passkey, origin `http://localhost:8080`, so the server
//!   must have RP ID `localhost` and that origin allowed: its defaults), then N passkey
//!   sign-ins (`login/start` + `login/finish`, with the username): p50/p99 of the pair;
//! - `signed BASE TOKEN SECS CONNS`: signed requests (RFC 9421, Ed25519, every signature
//!   unique) checked per second at /auth/verify over CONNS connections, with p50/p99.
//! - `code-exchange BASE CLIENT_ID SECRET REDIRECT_URI COOKIE N`: N authorization codes
//!   (`/oauth2/authorize` with PKCE S256, signed in by the session cookies COOKIE, a
//!   first-party client so no consent), each exchanged at `/oauth2/token`: p50/p99 of the
//!   exchange alone.

use argon2::password_hash::{PasswordHasher, SaltString};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn argon_hash(password: &str) -> String {
    let params = argon2::Params::new(19 * 1024, 2, 1, None).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    a.hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

async fn pool(db: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    let url = if db.starts_with("postgres") {
        db.to_string()
    } else {
        format!("sqlite://{db}")
    };
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("database")
}

fn placeholders(db: &str, n: usize, from: usize) -> String {
    (0..n)
        .map(|i| {
            if db.starts_with("postgres") {
                format!("${}", from + i)
            } else {
                "?".to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

async fn seed_users(db: &str, n: usize) -> Value {
    let hash = argon_hash("bench-Password-1");
    let pool = pool(db).await;
    let start = Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(500);
        let mut tx = pool.begin().await.unwrap();
        let row = placeholders(db, 4, 1);
        let sql = format!(
            "INSERT INTO users (id, email, username, password_hash, tier, is_verified, created_at) \
             VALUES ({row}, 2, TRUE, {now})"
        );
        for i in done..done + batch {
            sqlx::query(&sql)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(format!("seed{i}@bench.example"))
                .bind(format!("seed{i}"))
                .bind(hash.clone())
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        done += batch;
    }
    json!({"seeded_users": n, "seconds": start.elapsed().as_secs_f64()})
}

async fn seed_sessions(db: &str, n: usize, revoked: usize) -> Value {
    let pool = pool(db).await;
    let user: String = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let later = now + 7 * 86_400_000;
    let start = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    let sql = format!(
        "INSERT INTO sessions (id, user_id, generation, remember_me, created_at, last_used_at, \
         refresh_expires_at, absolute_expires_at) VALUES ({}, 0, FALSE, {now}, {now}, {later}, {later})",
        placeholders(db, 2, 1)
    );
    for _ in 0..n {
        sqlx::query(&sql)
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(user.clone())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    let sql = format!(
        "INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('jti', {}, {later}, {now})",
        placeholders(db, 1, 1)
    );
    for _ in 0..revoked {
        sqlx::query(&sql)
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    json!({"seeded_sessions": n, "seeded_revocations": revoked, "seconds": start.elapsed().as_secs_f64()})
}

async fn login(client: &reqwest::Client, base: &str, user: &str, password: &str) -> Value {
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "login failed: {}", r.status());
    r.json().await.unwrap()
}

async fn login_latency(base: &str, user: &str, password: &str, n: usize) -> Value {
    let client = reqwest::Client::new();
    login(&client, base, user, password).await; // warm-up
    argon_hash(password);
    // Logins and bare hashes alternate, so a change in the machine's speed during the run
    // (it is shared) moves both alike.
    let mut times = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        login(&client, base, user, password).await;
        times.push(ms(t.elapsed()));
        let t = Instant::now();
        argon_hash(password);
        hashes.push(ms(t.elapsed()));
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    hashes.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "login_p50_ms": percentile(&times, 0.5),
        "login_p99_ms": percentile(&times, 0.99),
        "bare_hash_ms": percentile(&hashes, 0.5),
    })
}

async fn refresh_chains(base: &str, user: &str, password: &str, chains: usize, secs: u64) -> Value {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(chains)
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for _ in 0..chains {
        tokens.push(
            login(&client, base, user, password).await["refresh_token"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for mut token in tokens {
        let (client, base) = (client.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut errors = 0u64;
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/api/v1/auth/refresh"))
                    .json(&json!({"refresh_token": token}))
                    .send()
                    .await
                    .unwrap();
                if r.status().is_success() {
                    let body: Value = r.json().await.unwrap();
                    token = body["refresh_token"].as_str().unwrap().to_string();
                    n += 1;
                    times.push(ms(t.elapsed()));
                } else {
                    errors += 1;
                    break;
                }
            }
            (n, errors, times)
        }));
    }
    let start = Instant::now();
    let (mut total, mut errors, mut times) = (0, 0, Vec::new());
    for t in tasks {
        let (n, e, ts) = t.await.unwrap();
        total += n;
        errors += e;
        times.extend(ts);
    }
    let elapsed = start.elapsed().as_secs_f64().max(secs as f64);
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "refresh_per_sec": total as f64 / elapsed,
        "refresh_p50_ms": percentile(&times, 0.5),
        "refresh_errors": errors,
    })
}

async fn flood(base: &str, token: &str, secs: u64, flooders: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let flood_client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for f in 0..flooders {
        let (client, base) = (flood_client.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                // A new identifier each time: every attempt reaches the (dummy) hash.
                let r = client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&json!({"username": format!("flood{f}-{n}@bench.example"), "password": "wrong-Password-1"}))
                    .send()
                    .await;
                if r.is_ok() {
                    n += 1;
                }
            }
            n
        }));
    }
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut failures = 0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    while Instant::now() < deadline {
        let t = Instant::now();
        let r = client
            .get(format!("{base}/api/v1/auth/verify"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        if r.status().as_u16() != 204 {
            failures += 1;
        }
        times.push(ms(t.elapsed()));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut logins = 0;
    for t in tasks {
        logins += t.await.unwrap();
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "verify_during_flood_p50_ms": percentile(&times, 0.5),
        "verify_during_flood_p99_ms": percentile(&times, 0.99),
        "verify_during_flood_samples": times.len(),
        "verify_during_flood_failures": failures,
        "flood_logins_per_sec": logins as f64 / secs as f64,
    })
}

async fn ready(bin: &str, db: &str) -> Value {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = if db.starts_with("postgres") {
        db.to_string()
    } else {
        format!("sqlite://{db}")
    };
    let start = Instant::now();
    let mut child = std::process::Command::new(bin)
        .arg("serve")
        .env("TRADEAUTH_LISTEN", format!("127.0.0.1:{port}"))
        .env("TRADEAUTH_DATABASE_URL", url)
        .env("TRADEAUTH_LOG_FORMAT", "json")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let took = loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if r.status().is_success() {
                break start.elapsed();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never ready");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let _ = child.kill();
    let _ = child.wait();
    json!({"start_to_ready_ms": ms(took)})
}

/// The page origin the soft passkey writes into `clientDataJSON` (the server's default
/// public URL: RP ID `localhost`).
const PASSKEY_ORIGIN: &str = "http://localhost:8080";

async fn post_json(
    client: &reqwest::Client,
    url: String,
    bearer: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn passkey_login(base: &str, user: &str, password: &str, n: usize) -> Value {
    use webauthn_authenticator_rs::prelude::{Url, WebauthnAuthenticator};
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    let client = reqwest::Client::new();
    let origin = Url::parse(PASSKEY_ORIGIN).unwrap();
    // `true`: it claims user verification (it has no way to perform one).
    let mut token = SoftPasskey::new(true);
    let session = login(&client, base, user, password).await;
    let at = session["access_token"].as_str().unwrap().to_string();
    let (status, started) = post_json(
        &client,
        format!("{base}/api/v1/auth/passkeys/register/start"),
        Some(&at),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "register/start: {started}");
    let credential = token
        .do_registration(
            origin.clone(),
            serde_json::from_value(started["options"].clone()).unwrap(),
        )
        .expect("the soft passkey registers");
    let (status, body) = post_json(
        &client,
        format!("{base}/api/v1/auth/passkeys/register/finish"),
        Some(&at),
        json!({"challenge_id": started["challenge_id"], "name": "bench",
               "credential": serde_json::to_value(&credential).unwrap()}),
    )
    .await;
    assert_eq!(status, 201, "register/finish: {body}");

    let mut times = Vec::with_capacity(n);
    let mut errors = 0u64;
    // One warm-up sign-in, then N measured. A round's time is the two requests' (start and
    // finish, as the client sees them); the authenticator's own ES256 signature between them
    // is the browser's work and is left out.
    for i in 0..=n {
        let t = Instant::now();
        let (status, started) = post_json(
            &client,
            format!("{base}/api/v1/auth/passkeys/login/start"),
            None,
            json!({"username": user}),
        )
        .await;
        let mut took = ms(t.elapsed());
        let ok = if status == 200 {
            let assertion = token
                .do_authentication(
                    origin.clone(),
                    serde_json::from_value(started["options"].clone()).unwrap(),
                )
                .expect("the soft passkey signs");
            let body = json!({"challenge_id": started["challenge_id"],
                              "credential": serde_json::to_value(&assertion).unwrap()});
            let t = Instant::now();
            let (status, body) = post_json(
                &client,
                format!("{base}/api/v1/auth/passkeys/login/finish"),
                None,
                body,
            )
            .await;
            took += ms(t.elapsed());
            status == 200 && body["access_token"].is_string()
        } else {
            false
        };
        if !ok {
            errors += 1;
        } else if i > 0 {
            times.push(took);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "passkey_login_p50_ms": percentile(&times, 0.5),
        "passkey_login_p99_ms": percentile(&times, 0.99),
        "passkey_login_errors": errors,
    })
}

/// Signed requests at forward-auth: an Ed25519 signing key made with `token`, then
/// `conns` clients sending GET /api/v1/auth/verify, each request signed anew (its own
/// nonce), so every check goes through the window, the key, the signature and the replay
/// cache. The signing happens here, on the same machine, like wrk's work for the others.
async fn signed(base: &str, token: &str, secs: u64, conns: usize) -> Value {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use std::sync::Arc;
    use tradeauth::tokens::httpsig::base::{signature_base, RequestView};

    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let pair = Arc::new(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap());
    let client = reqwest::Client::new();
    let made: Value = client
        .post(format!("{base}/api/v1/auth/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "bench bot", "algorithm": "ed25519", "public_key":
            {"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = made["key_id"].as_str().expect("a signing key").to_string();
    let authority = base.trim_start_matches("http://").to_string();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..conns {
        let (client, base, pair, key_id, authority) = (
            client.clone(),
            base.to_string(),
            pair.clone(),
            key_id.clone(),
            authority.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (mut times, mut errors) = (Vec::new(), 0u64);
            let headers = axum::http::HeaderMap::new();
            let covered: Vec<String> = ["@method", "@authority", "@path", "@query"]
                .iter()
                .map(|c| c.to_string())
                .collect();
            let mut n = 0u64;
            while Instant::now() < deadline {
                n += 1;
                let created = chrono::Utc::now().timestamp();
                let params = format!(
                    "(\"@method\" \"@authority\" \"@path\" \"@query\");created={created};\
                     keyid=\"{key_id}\";nonce=\"c{c}n{n}\";tag=\"tradeauth\""
                );
                let view = RequestView {
                    method: "GET",
                    scheme: "http",
                    authority: &authority,
                    path: "/api/v1/auth/verify",
                    query: None,
                    headers: &headers,
                    has_body: false,
                };
                let text = signature_base(&view, &covered, &params).unwrap();
                let sig = STANDARD.encode(pair.sign(text.as_bytes()).as_ref());
                let t = Instant::now();
                let r = client
                    .get(format!("{base}/api/v1/auth/verify"))
                    .header("signature-input", format!("b={params}"))
                    .header("signature", format!("b=:{sig}:"))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 204 => times.push(ms(t.elapsed())),
                    Ok(r) => {
                        if errors == 0 {
                            let body = r.text().await.unwrap_or_default();
                            eprintln!("signed request refused: {body}");
                        }
                        errors += 1;
                    }
                    Err(_) => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    let (mut times, mut errors) = (Vec::new(), 0);
    for t in tasks {
        let (t, e) = t.await.unwrap();
        times.extend(t);
        errors += e;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "signed_verify_rps": times.len() as f64 / secs as f64,
        "signed_verify_p50_ms": percentile(&times, 0.5),
        "signed_verify_p99_ms": percentile(&times, 0.99),
        "signed_verify_errors": errors,
    })
}

/// `application/x-www-form-urlencoded` escaping of one value.
fn form_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn code_exchange(
    base: &str,
    client_id: &str,
    secret: &str,
    redirect_uri: &str,
    cookie: &str,
    n: usize,
) -> Value {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (mut times, mut errors) = (Vec::with_capacity(n), 0u64);
    for i in 0..=n {
        let verifier = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let r = client
            .get(format!(
                "{base}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}\
                 &scope=openid&state=s{i}&code_challenge={challenge}&code_challenge_method=S256",
                form_escape(client_id),
                form_escape(redirect_uri)
            ))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some(code) = location
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("code="))
            .map(str::to_string)
        else {
            if errors == 0 {
                eprintln!(
                    "authorize answered {} without a code: {location}",
                    r.status()
                );
            }
            errors += 1;
            continue;
        };
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&code_verifier={verifier}",
            form_escape(redirect_uri)
        );
        let t = Instant::now();
        let r = client
            .post(format!("{base}/oauth2/token"))
            .basic_auth(client_id, Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let took = ms(t.elapsed());
        let ok = r.status().is_success()
            && r.json::<Value>().await.unwrap_or(Value::Null)["access_token"].is_string();
        if !ok {
            errors += 1;
        } else if i > 0 {
            times.push(took);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    json!({
        "oauth_code_exchange_p50_ms": percentile(&times, 0.5),
        "oauth_code_exchange_p99_ms": percentile(&times, 0.99),
        "oauth_code_exchange_errors": errors,
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_default();
    let n = |i: usize| a(i).parse::<usize>().expect("a number");
    let out = match a(1).as_str() {
        "seed-users" => seed_users(&a(2), n(3)).await,
        "seed-sessions" => seed_sessions(&a(2), n(3), n(4)).await,
        "login" => login_latency(&a(2), &a(3), &a(4), n(5)).await,
        "refresh" => refresh_chains(&a(2), &a(3), &a(4), n(5), n(6) as u64).await,
        "flood" => flood(&a(2), &a(3), n(4) as u64, n(5)).await,
        "ready" => ready(&a(2), &a(3)).await,
        "passkey" => passkey_login(&a(2), &a(3), &a(4), n(5)).await,
        "signed" => signed(&a(2), &a(3), n(4) as u64, n(5)).await,
        "code-exchange" => code_exchange(&a(2), &a(3), &a(4), &a(5), &a(6), n(7)).await,
        other => panic!("unknown subcommand {other:?}"),
    };
    println!("{out}");
}
