//! What the store keeps for the device authorization grant (RFC 8628) and back-channel
//! logout ([`GrantStore`], implemented in `sql/grants.rs`).
//!
//! Logout tokens to deliver are written by the store itself, in the transaction that ends
//! a session (every `sid` revocation of a session that a client with a back-channel
//! logout URI holds), so no path that ends a session can forget them.

use super::StoreResult;
use crate::domain::oauth::Scopes;
use crate::domain::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Where a device request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user.
    Pending,
    /// The user allowed it: the next poll gets the tokens.
    Approved,
    /// The user said no.
    Denied,
    /// The tokens went out.
    Used,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "approved" => Some(Self::Approved),
            "denied" => Some(Self::Denied),
            "used" => Some(Self::Used),
            _ => None,
        }
    }
}

/// A device's request, as stored: by the hash of its `device_code`.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub device_hash: Vec<u8>,
    /// Normalised: 8 letters, no dash.
    pub user_code: String,
    pub client_id: String,
    /// What the device asked for (within the client's scopes).
    pub scope: Scopes,
    pub status: DeviceStatus,
    /// Seconds the device must wait between polls (grows by 5 on each `slow_down`).
    pub interval_secs: i64,
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Set by the approval: who, what, when and how they signed in.
    pub approval: Option<DeviceApproval>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The user's "Allow".
#[derive(Debug, Clone)]
pub struct DeviceApproval {
    pub user_id: UserId,
    pub scope: Scopes,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
}

/// A logout token to deliver (one per ended session).
#[derive(Debug, Clone)]
pub struct PendingLogout {
    pub session_id: Uuid,
    pub client_id: String,
    pub user_id: String,
    pub uri: String,
    pub id_token_alg: String,
    /// Attempts made so far.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Records a device request. `false` when its user code is taken by a live one (the
    /// caller draws another); expired requests are cleared first.
    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<bool>;
    /// The live, pending request with this user code.
    async fn pending_device_code(
        &self,
        user_code: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DeviceCode>>;
    /// The user's answer to a live, pending request: approved with `approval`, or denied
    /// (`None`). `false` when it is no longer pending or has expired.
    async fn decide_device_code(
        &self,
        user_code: &str,
        approval: Option<&DeviceApproval>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// A poll: the request as it was, and whether this poll came sooner than its interval
    /// allows (then the interval has grown by 5 s). Records the poll.
    async fn poll_device_code(
        &self,
        device_hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(DeviceCode, bool)>>;
    /// Marks an approved request used, once: `false` if another poll got there first.
    async fn use_device_code(&self, device_hash: &[u8]) -> StoreResult<bool>;

    /// Claims up to `limit` logout tokens due by `now` for `instance` until `lease_until`
    /// (rows another instance holds under a lease that has not lapsed are skipped).
    async fn claim_logouts(
        &self,
        instance: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<PendingLogout>>;
    /// Done with one (delivered, or given up on): removes it.
    async fn finish_logout(&self, session_id: Uuid) -> StoreResult<()>;
    /// Another attempt at `next_at`, the claim released — if `instance` still holds it
    /// (a claim that lapsed and went to another instance is that one's now).
    async fn retry_logout(
        &self,
        session_id: Uuid,
        instance: &str,
        attempts: i64,
        next_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Releases every claim of `instance` (a graceful stop), so another picks them up.
    async fn release_logout_claims(&self, instance: &str) -> StoreResult<u64>;
}
