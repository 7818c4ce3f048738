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

/// The server on the database in `dir` (a restart keeps the same file).
pub async fn spawn_in(dir: Arc<TempDir>, f: impl FnOnce(Sources) -> Sources) -> TestApp {
    init_logs();
    let db = dir.path().join("tradeauth.db");
    let sources = Sources::default()
        .set("listen", "127.0.0.1:0")
        .set("database_url", format!("sqlite://{}", db.display()))
        .set("rate_limit", "off")
        .set("log_format", "pretty");
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
