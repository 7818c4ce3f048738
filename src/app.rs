//! Startup: open the store, build the service, bind the listener, serve until told to
//! stop. `build` binds first and exposes the real port, so tests can use port 0.

use crate::config::{Config, DatabaseUrl};
use crate::http::{self, AppState};
use crate::service::{self, Service};
use crate::store::sqlite::SqliteStore;
use crate::store::DynStore;
use secrecy::ExposeSecret;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Opens the store named by `TRADEAUTH_DATABASE_URL` and runs its migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    match &config.database_url {
        DatabaseUrl::Sqlite { path } => Ok(Arc::new(SqliteStore::open(path).await?)),
        DatabaseUrl::Postgres(url) => Ok(Arc::new(
            crate::store::postgres::PostgresStore::open(url.expose_secret()).await?,
        )),
    }
}

/// Builds the service on the configured store (the CLI uses this without serving).
pub async fn build_service(config: Config, manage_keys: bool) -> anyhow::Result<Arc<Service>> {
    let config = Arc::new(config);
    let store = open_store(&config).await?;
    service::build(config, store, manage_keys).await
}

/// A built, bound, not yet running server.
pub struct Application {
    listener: TcpListener,
    service: Arc<Service>,
    port: u16,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listen = config.listen.clone();
        let service = build_service(config, true).await?;
        service.bootstrap_admin().await?;
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|e| anyhow::anyhow!("TRADEAUTH_LISTEN: cannot listen on {listen}: {e}"))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            service,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> Arc<Service> {
        self.service.clone()
    }

    /// Serves until `shutdown` resolves; in-flight requests finish first.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let background = service::background::spawn(self.service.clone());
        let logouts = service::oauth::backchannel::spawn(self.service.clone());
        let mails = service::mail_sender::spawn(self.service.clone());
        let state = AppState::new(self.service.clone());
        let sockets = state.ws.clone();
        let router = http::router(state);
        // Tell open WebSockets to close (1001) once shutdown starts, so graceful shutdown
        // does not wait on them forever.
        let service = self.service.clone();
        let shutdown = async move {
            shutdown.await;
            service.begin_shutdown();
        };
        tracing::info!(
            port = self.port,
            dialect = self.service.config().dialect.as_str(),
            "tradeauth listening"
        );
        let result = axum::serve(
            self.listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        // Upgraded connections are not waited for by the server: give every WebSocket
        // the moment it needs to send its 1001 before the runtime goes away.
        sockets.wait_closed(Duration::from_secs(5)).await;
        // Mails for requests already answered (a verification link, a reset link): what
        // is due goes out now; the rest stays in the outbox for the other instances.
        let unsent = self
            .service
            .drain_mails(mails, Duration::from_secs(10))
            .await;
        if unsent > 0 {
            tracing::info!(unsent, "mails left in the outbox for the next instance");
        }
        background.abort();
        // Undelivered logout tokens this instance holds go to the next instance at once.
        logouts.abort();
        let _ = logouts.await;
        self.service.release_logout_claims().await;
        tracing::info!("tradeauth stopped");
        Ok(result?)
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
