//! The test kit: start the real server on port 0 over a fresh SQLite file, and a typed
//! client for it. Logs stay silent unless `TEST_LOG` is set.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::sync::{Arc, Once};
use tempfile::TempDir;
use tradeauth::app::Application;
use tradeauth::config::Sources;
use tradeauth::service::Service;

pub const PASSWORD: &str = "x7Kp2mQa-Trd9";

static LOG: Once = Once::new();

fn init_logs() {
    LOG.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            tradeauth::telemetry::init(tradeauth::config::LogFormat::Pretty);
        }
    });
}

pub struct TestApp {
    pub base: String,
    /// The database this server uses (an SQLite file, or a PostgreSQL schema).
    pub db_url: String,
    pub client: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub service: Arc<Service>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

/// An HTTP answer: status, headers and the JSON body (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    #[track_caller]
    pub fn assert(&self, status: u16, code: Option<&str>) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        if let Some(code) = code {
            assert_eq!(self.code(), code, "unexpected code; body: {}", self.text);
            assert!(
                self.body["error"].as_str().is_some_and(|e| !e.is_empty()),
                "error message missing: {}",
                self.text
            );
        }
        self
    }
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// The server on a fresh database with default settings (rate limits off).
pub async fn spawn_app() -> TestApp {
    spawn_with(|s| s).await
}

pub async fn spawn_with(f: impl FnOnce(Sources) -> Sources) -> TestApp {
    spawn_in(Arc::new(tempfile::tempdir().unwrap()), f).await
}

/// The PostgreSQL server the suite uses when `TRADEAUTH_TEST_DATABASE=postgres`.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Whether PostgreSQL (and Redis) answer. When not: a loud skip, or a failure under
/// `TRADEAUTH_TEST_REQUIRE_SERVICES=1`.
pub async fn services_available(what: &str) -> bool {
    let pg = sqlx::PgPool::connect(PG_ADMIN_URL).await.is_ok();
    let redis = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .is_ok();
    if pg && redis {
        return true;
    }
    if std::env::var("TRADEAUTH_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{what}: PostgreSQL ({pg}) and Redis ({redis}) are required (TRADEAUTH_TEST_REQUIRE_SERVICES=1)");
    }
    eprintln!("!!! SKIPPED {what}: PostgreSQL reachable: {pg}, Redis reachable: {redis}");
    false
}

/// A fresh PostgreSQL schema, and the URL of a connection that uses it.
pub async fn pg_schema_url() -> String {
    let admin = sqlx::PgPool::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL reachable");
    let schema = format!("ta_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    format!("{PG_ADMIN_URL}?options=-c%20search_path%3D{schema}&application_name={schema}")
}

/// The suite's backend: SQLite by default, PostgreSQL with `TRADEAUTH_TEST_DATABASE=postgres`.
pub async fn database_url(dir: &TempDir) -> String {
    if std::env::var("TRADEAUTH_TEST_DATABASE").as_deref() != Ok("postgres") {
        return format!("sqlite://{}", dir.path().join("tradeauth.db").display());
    }
    let marker = dir.path().join("pg_url");
    if let Ok(url) = std::fs::read_to_string(&marker) {
        return url;
    }
    if !services_available("the PostgreSQL run of the suite").await {
        return format!("sqlite://{}", dir.path().join("tradeauth.db").display());
    }
    let url = pg_schema_url().await;
    std::fs::write(&marker, &url).unwrap();
    url
}

/// The server on the database in `dir` (a restart keeps the same database).
pub async fn spawn_in(dir: Arc<TempDir>, f: impl FnOnce(Sources) -> Sources) -> TestApp {
    let db_url = database_url(&dir).await;
    spawn_on(dir, db_url, f).await
}

/// The server on the database at `db_url` (several servers may share one).
pub async fn spawn_on(
    dir: Arc<TempDir>,
    db_url: String,
    f: impl FnOnce(Sources) -> Sources,
) -> TestApp {
    init_logs();
    let mut sources = Sources::default()
        .set("listen", "127.0.0.1:0")
        .set("database_url", db_url.clone())
        .set("rate_limit", "off")
        .set("log_format", "pretty");
    // The PostgreSQL run shares rate limits and revocations through Redis too, under a
    // key prefix of its own.
    if db_url.starts_with("postgres") {
        let prefix = format!("ta_test:{}:", uuid::Uuid::new_v4().simple());
        sources = sources
            .set("redis_url", "redis://127.0.0.1:6379")
            .set("redis_prefix", prefix);
    }
    let config = f(sources).build(false).expect("test config is valid");
    let app = Application::build(config).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let service = app.service();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = rx.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        db_url,
        client: reqwest::Client::new(),
        dir,
        service,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        into_resp(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post_auth(&self, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        into_resp(self.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Resp {
        into_resp(
            self.client
                .get(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn patch_auth(&self, path: &str, token: &str, body: Value) -> Resp {
        into_resp(
            self.client
                .patch(self.url(path))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn delete_auth(&self, path: &str, token: &str) -> Resp {
        into_resp(
            self.client
                .delete(self.url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn register(&self, email: &str, password: &str) -> Resp {
        self.post(
            "/api/v1/auth/register",
            json!({"email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, identifier: &str, password: &str) -> Resp {
        self.post(
            "/api/v1/auth/login",
            json!({"username": identifier, "password": password}),
        )
        .await
    }

    pub async fn refresh(&self, token: &str) -> Resp {
        self.post("/api/v1/auth/refresh", json!({"refresh_token": token}))
            .await
    }

    /// Registers a fresh user and logs in: (email, login body).
    pub async fn new_user(&self) -> (String, Value) {
        let email = format!(
            "u{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        self.register(&email, PASSWORD).await.assert(201, None);
        let r = self.login(&email, PASSWORD).await;
        r.assert(200, None);
        (email, r.body)
    }

    /// Creates a verified tier-`tier` user through the service and logs in.
    pub async fn user_with_tier(&self, tier: i64) -> (String, Value) {
        let email = format!(
            "t{tier}{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        let account = tradeauth::service::auth::NewAccount {
            email: email.clone(),
            password: secrecy::SecretString::from(PASSWORD.to_string()),
            username: None,
            full_name: None,
        };
        self.service
            .admin_create_user(
                None,
                account,
                Some(tradeauth::domain::Tier::new(tier).unwrap()),
                true,
                None,
            )
            .await
            .unwrap();
        let r = self.login(&email, PASSWORD).await;
        r.assert(200, None);
        (email, r.body)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Arc<TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap();
        }
        self.dir.clone()
    }
}

pub fn access(body: &Value) -> String {
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

pub fn refresh_token(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}
