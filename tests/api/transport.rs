//! The links to the services: PostgreSQL over TLS (`sslmode=require`, and `verify-full`
//! against a throwaway cluster with a CA made here), Redis over TLS (`rediss://`, a
//! `redis-server --tls-port` with a certificate made here, trusted through
//! `SSL_CERT_FILE`), and a Redis subscription that notices when its connection goes
//! silently dead.
//!
//! Needs PostgreSQL and Redis like the scale-out tests, plus `initdb`/`pg_ctl` and a
//! `redis-server` built with TLS: without them these tests say so loudly and skip
//! (`TRADEAUTH_TEST_REQUIRE_SERVICES=1` turns that into a failure).

use crate::helpers::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A test CA: its certificate (PEM) and what it needs to sign server certificates.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl Ca {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM).
    fn server(&self) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// Whether a tool this file needs is there; if not, a loud skip (or a failure under
/// `TRADEAUTH_TEST_REQUIRE_SERVICES=1`).
fn tool_available(what: &str, found: bool, missing: &str) -> bool {
    if found {
        return true;
    }
    if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{what}: {missing} (required: TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
    }
    eprintln!("!!! SKIPPED {what}: {missing}");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The PostgreSQL connections of one `application_name`, and whether each uses TLS.
async fn ssl_of_connections(admin_url: &str, application_name: &str) -> Vec<bool> {
    let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
    let rows: Vec<(bool,)> = sqlx::query_as(
        "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid \
         WHERE a.application_name = $1",
    )
    .bind(application_name)
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    rows.into_iter().map(|(ssl,)| ssl).collect()
}

fn application_name(url: &str) -> String {
    url.split("application_name=")
        .nth(1)
        .expect("the test URL names its application")
        .split('&')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn postgres_connections_use_tls_with_sslmode_require() {
    if !services_available("PostgreSQL over TLS").await {
        return;
    }
    let admin = sqlx::PgPool::connect(PG_ADMIN_URL).await.unwrap();
    let ssl: String = sqlx::query_scalar("SHOW ssl")
        .fetch_one(&admin)
        .await
        .unwrap();
    admin.close().await;
    assert_eq!(
        ssl, "on",
        "the suite's PostgreSQL must have ssl = on (Debian's default; .ci/run sets it)"
    );
    // The same check on a plaintext connection sees `false`: it can tell the two apart.
    for (mode, tls) in [("require", true), ("disable", false)] {
        let url = format!("{}&sslmode={mode}", pg_schema_url().await);
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let app = spawn_on(dir, url.clone(), |s| s).await;
        app.new_user().await;
        app.get("/readyz").await.assert(200, None);
        let seen = ssl_of_connections(PG_ADMIN_URL, &application_name(&url)).await;
        assert!(!seen.is_empty(), "no connection of the app found");
        assert!(
            seen.iter().all(|&ssl| ssl == tls),
            "sslmode={mode}: TLS per connection {seen:?}"
        );
        app.stop().await;
    }
}

/// A throwaway PostgreSQL cluster on a free port, with TLS from the given certificate.
/// As root, the server runs as the `postgres` user (it refuses to run as root).
struct Cluster {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

impl Cluster {
    /// The directory holding `initdb` and `pg_ctl`: on the PATH, or Debian's
    /// `/usr/lib/postgresql/<version>/bin` (newest first).
    fn bindir() -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
        });
        on_path.or_else(|| {
            let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|d| d.join("initdb").is_file())
                .collect();
            dirs.sort_by_key(|d| {
                d.parent()
                    .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                    .unwrap_or(0)
            });
            dirs.pop()
        })
    }

    fn run(&self, tool: &str, args: &[&str]) -> std::process::Output {
        let tool = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&tool);
            c
        } else {
            Command::new(&tool)
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output().unwrap()
    }

    fn start(bin: PathBuf, cert_pem: &str, key_pem: &str) -> Self {
        let as_postgres = String::from_utf8(Command::new("id").arg("-u").output().unwrap().stdout)
            .unwrap()
            .trim()
            == "0";
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let cluster = Cluster {
            data: data.clone(),
            port: free_port(),
            bin,
            as_postgres,
            dir,
        };
        let tls = cluster.dir.path().join("tls");
        std::fs::create_dir(&tls).unwrap();
        write(&tls.join("server.crt"), cert_pem);
        write(&tls.join("server.key"), key_pem);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            tls.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(cluster.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown to postgres");
        }
        let out = cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let conf = format!(
            "\nport = {}\nlisten_addresses = 'localhost'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            cluster.port,
            cluster.dir.path().display(),
            tls.join("server.crt").display(),
            tls.join("server.key").display(),
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
        let log = cluster.dir.path().join("server.log");
        let out = cluster.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

#[tokio::test]
async fn postgres_verify_full_accepts_the_right_ca_and_refuses_another() {
    if !services_available("PostgreSQL verify-full").await {
        return;
    }
    let bin = Cluster::bindir();
    if !tool_available(
        "PostgreSQL verify-full",
        bin.is_some(),
        "initdb/pg_ctl not found (PATH, /usr/lib/postgresql/*/bin)",
    ) {
        return;
    }
    let ca = Ca::new("tradeauth test CA");
    let (cert, key) = ca.server();
    let cluster = Cluster::start(bin.unwrap(), &cert, &key);
    let files = tempfile::tempdir().unwrap();
    let right = write(&files.path().join("ca.pem"), &ca.pem());
    let wrong = write(
        &files.path().join("other-ca.pem"),
        &Ca::new("another CA").pem(),
    );
    let url = |ca: &Path, name: &str| {
        format!(
            "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}&application_name={name}",
            cluster.port,
            ca.display()
        )
    };

    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_on(dir, url(&right, "ta_verify_full"), |s| s).await;
    app.new_user().await;
    app.get("/readyz").await.assert(200, None);
    let admin = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        cluster.port
    );
    let seen = ssl_of_connections(&admin, "ta_verify_full").await;
    assert!(!seen.is_empty() && seen.iter().all(|&ssl| ssl), "{seen:?}");
    app.stop().await;

    // A CA that did not sign the server's certificate: the start is refused, and says why.
    let dir = tempfile::tempdir().unwrap();
    let config = tradeauth::config::Sources::default()
        .set("listen", "127.0.0.1:0")
        .set("database_url", url(&wrong, "ta_wrong_ca"))
        .build(false)
        .unwrap();
    let _ = dir;
    let started = tokio::time::timeout(
        Duration::from_secs(30),
        tradeauth::app::Application::build(config),
    )
    .await
    .expect("a refused certificate fails fast");
    let e = match started {
        Ok(_) => panic!("started with a certificate from an untrusted CA"),
        Err(e) => format!("{e:#}"),
    };
    eprintln!("start refused: {e}");
    assert!(e.to_lowercase().contains("certificate"), "{e}");
    assert!(ssl_of_connections(&admin, "ta_wrong_ca").await.is_empty());
}

/// A `tradeauth serve` child process; killed when dropped.
struct Child {
    child: std::process::Child,
    _lines: mpsc::Receiver<String>,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with `env`: the base URL once it listens, or every line it logged if
/// it exited first.
fn serve_binary(env: &[(&str, &str)]) -> (Child, Result<String, Vec<String>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tradeauth"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRADEAUTH_") || k.starts_with("SSL_CERT") || k.starts_with("ADMIN_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("serve")
        .env("TRADEAUTH_LISTEN", "127.0.0.1:0")
        .env("TRADEAUTH_LOG_FORMAT", "json")
        .env("TRADEAUTH_RATE_LIMIT", "off")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
    }
    drop(tx);
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "tradeauth listening" {
                        break Ok(format!("http://127.0.0.1:{}", v["port"]));
                    }
                }
                log.push(line);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break Err(log),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(
                    Instant::now() < deadline,
                    "neither listening nor exited: {log:?}"
                );
            }
        }
    };
    (Child { child, _lines: rx }, result)
}

/// A `redis-server` with TLS only (no plaintext port) on a free port.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_over_tls_is_verified_against_ssl_cert_file() {
    let found = Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok();
    if !tool_available("Redis over TLS", found, "redis-server not found") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("tradeauth test Redis CA");
    let (cert, key) = ca.server();
    let cert = write(&dir.path().join("redis.crt"), &cert);
    let key = write(&dir.path().join("redis.key"), &key);
    let ca_file = write(&dir.path().join("ca.pem"), &ca.pem());
    let other_ca = write(
        &dir.path().join("other-ca.pem"),
        &Ca::new("another CA").pem(),
    );
    let port = free_port();
    let mut redis = TlsRedis {
        child: Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca_file)
            .args(["--tls-auth-clients", "no"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
        port,
    };
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if let Some(status) = redis.child.try_wait().unwrap() {
            // Debian's and the upstream default builds have TLS; a build without it
            // refuses the tls-* options and exits.
            let mut said = String::new();
            if let Some(mut out) = redis.child.stdout.take() {
                std::io::Read::read_to_string(&mut out, &mut said).unwrap();
            }
            let missing = format!("redis-server exited ({status}); built without TLS? {said}");
            if !tool_available("Redis over TLS", false, &missing) {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "redis-server does not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let prefix = format!("ta_test:{}:", uuid::Uuid::new_v4().simple());

    // Trusted through SSL_CERT_FILE: it starts, Redis is ready, and rate limits live in
    // Redis (the only port Redis has is the TLS one, so nothing went in plaintext).
    let (_served, base) = serve_binary(&[
        ("TRADEAUTH_DATABASE_URL", &db),
        ("TRADEAUTH_REDIS_URL", &url),
        ("TRADEAUTH_REDIS_PREFIX", &prefix),
        ("TRADEAUTH_RATE_LIMIT", "on"),
        ("SSL_CERT_FILE", ca_file.to_str().unwrap()),
    ]);
    let base = base.unwrap_or_else(|log| panic!("did not start: {log:#?}"));
    let c = reqwest::Client::new();
    let r = into_resp(c.get(format!("{base}/readyz")).send().await.unwrap()).await;
    r.assert(200, None);
    assert_eq!(r.body["checks"]["redis"], "ok", "{}", r.text);
    into_resp(
        c.post(format!("{base}/api/v1/auth/login"))
            .json(
                &serde_json::json!({"username": "nobody@example.com", "password": "Wrong-Pw-1234"}),
            )
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert(401, None);
    let keys = redis_tls_keys(&redis, &ca_file, &prefix).await;
    assert!(
        keys > 0,
        "no rate-limit key under {prefix} in the TLS Redis"
    );

    // A certificate from a CA this process does not trust: the start is refused, naming
    // Redis and the certificate.
    let (_refused, result) = serve_binary(&[
        ("TRADEAUTH_DATABASE_URL", &db),
        ("TRADEAUTH_REDIS_URL", &url),
        ("SSL_CERT_FILE", other_ca.to_str().unwrap()),
    ]);
    let log = result.expect_err("started although Redis's certificate is not trusted");
    let text = log.join("\n");
    eprintln!("start refused: {text}");
    assert!(
        text.contains("TRADEAUTH_REDIS_URL") && text.contains("certificate"),
        "{text}"
    );
}

/// How many keys under `prefix` the TLS Redis holds, asked over TLS with the test CA.
async fn redis_tls_keys(redis: &TlsRedis, ca: &Path, prefix: &str) -> usize {
    let tls = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(std::fs::read(ca).unwrap()),
    };
    let client =
        redis::Client::build_with_tls(format!("rediss://127.0.0.1:{}", redis.port), tls).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    keys.len()
}

/// A loopback TCP proxy that can go silent: after [`SilentProxy::freeze`], the
/// connections open at that moment stop forwarding in both directions but stay open (no
/// reset, no close), as when a NAT or load balancer forgets an idle flow. Connections
/// made afterwards work.
struct SilentProxy {
    port: u16,
    generation: Arc<AtomicU64>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl SilentProxy {
    async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let generation = Arc::new(AtomicU64::new(0));
        let current = generation.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let born = current.load(Ordering::SeqCst);
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                tokio::spawn(forward(ri, wo, born, current.clone()));
                tokio::spawn(forward(ro, wi, born, current.clone()));
            }
        });
        Self {
            port,
            generation,
            acceptor,
        }
    }

    fn freeze(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for SilentProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    born: u64,
    current: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if current.load(Ordering::SeqCst) != born {
            // Silent from now on: hold both sockets open and forward nothing.
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The claims of a JWT (unverified).
fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_silently_dead_redis_subscription_is_replaced() {
    if !services_available("the dead Redis subscription").await {
        return;
    }
    let proxy = SilentProxy::start(6379).await;
    let prefix = format!("ta_test:{}:", uuid::Uuid::new_v4().simple());
    let (redis_url, p) = (format!("redis://127.0.0.1:{}", proxy.port), prefix.clone());
    let app = spawn_with(move |s| s.set("redis_url", redis_url).set("redis_prefix", p)).await;
    let (_, login) = app.new_user().await;
    let at = access(&login);
    let verify = format!("/api/v1/auth/verify?token={at}");
    app.get(&verify).await.assert(204, None);
    let sid = claims(&at)["sid"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every connection through the proxy goes silent. Another instance (here: the test, on
    // its own connection to Redis) publishes a revocation of this session; the database
    // knows nothing of it, so only the subscription can carry it.
    proxy.freeze();
    let other = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let mut conn = other.get_multiplexed_async_connection().await.unwrap();
    let t0 = Instant::now();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let msg = format!("sid:{sid}:{}:{now}", now + 3_600_000);
        let _: i64 = redis::cmd("PUBLISH")
            .arg(format!("{prefix}revocations"))
            .arg(msg)
            .query_async(&mut conn)
            .await
            .unwrap();
        if app.get(&verify).await.status == 401 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the revocation did not arrive: the subscription stayed on the dead connection"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!(
        "revocation arrived {:?} after the connection went silent",
        t0.elapsed()
    );
}
