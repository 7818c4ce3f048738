//! The state every handler shares: the service, and the open WebSockets per user.
//! (`cookies` and `state` are the bottom of `http/`: neither imports another module of it.)
//!
//! It sits in its own module, below every handler and middleware, so that they all import
//! it and it imports none of them.

use super::cookies::CookieNames;
use crate::config::Dialect;
use crate::domain::UserId;
use crate::service::Service;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Shared by every handler: the service (the only way down), and the WebSocket count.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Open WebSockets per user.
    pub ws: Arc<Connections>,
}

impl AppState {
    pub fn new(service: Arc<Service>) -> Self {
        Self {
            service,
            ws: Arc::default(),
        }
    }

    /// The names of the browser-session cookies (`TRADEAUTH_COOKIE_SECURE`).
    pub fn cookies(&self) -> CookieNames {
        CookieNames::new(self.service.config().cookie_secure)
    }

    /// The wire format of this instance.
    pub fn dialect(&self) -> Dialect {
        self.service.config().dialect
    }
}

/// Open sockets per user, to enforce the per-user limit. A std Mutex: held for a map
/// update only.
#[derive(Default)]
pub struct Connections {
    open: Mutex<HashMap<UserId, usize>>,
}

/// One counted connection; dropping it frees the slot.
pub struct Slot {
    connections: Arc<Connections>,
    user: UserId,
}

impl Connections {
    /// A slot for one more socket of `user`, unless `max` are open already.
    pub fn acquire(self: &Arc<Self>, user: UserId, max: usize) -> Option<Slot> {
        let mut open = self.open.lock().expect("connections lock poisoned");
        let n = open.entry(user).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            connections: self.clone(),
            user,
        })
    }

    /// Waits until every socket has finished (sent its close frame), at most `limit`.
    pub async fn wait_closed(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self
            .open
            .lock()
            .expect("connections lock poisoned")
            .is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .expect("connections lock poisoned");
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}
