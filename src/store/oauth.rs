//! What the store keeps for the OAuth / OpenID Connect provider: clients, authorization
//! codes, the sessions authorizations started and remembered consent ([`OAuthStore`],
//! implemented in `sql/oauth.rs`).

use super::StoreResult;
use crate::domain::oauth::{OAuthClient, Scopes};
use crate::domain::{Session, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// An authorization code as stored: by its hash, with everything the exchange checks.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub hash: Vec<u8>,
    pub client_id: String,
    pub user_id: UserId,
    pub redirect_uri: String,
    pub scope: Scopes,
    pub nonce: Option<String>,
    /// The `S256` challenge.
    pub code_challenge: String,
    /// When the user last proved who they are (the ID token's `auth_time`).
    pub auth_time: DateTime<Utc>,
    /// How they proved it (`pwd`, `otp`, ...).
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The DPoP key the exchange must prove (`dpop_jkt`, RFC 9449 §10), if any.
    pub dpop_jkt: Option<String>,
}

/// What presenting a code found.
#[derive(Debug, Clone)]
pub enum Redemption {
    /// The code was live and is now used; the session `new_sid` is recorded as its issue.
    Redeemed(Box<AuthCode>),
    /// The code was used before: the session its first use started, if any.
    Reused { issued_sid: Option<Uuid> },
    /// No such code, or it expired.
    Unknown,
}

/// The OAuth side of a session an authorization started.
#[derive(Debug, Clone)]
pub struct OAuthSessionLink {
    pub session_id: Uuid,
    pub client_id: String,
    pub scope: Scopes,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    /// The DPoP key (RFC 7638 thumbprint) its tokens are bound to, if any.
    pub dpop_jkt: Option<String>,
}

/// A user's remembered consent to a client.
#[derive(Debug, Clone)]
pub struct Consent {
    pub user_id: UserId,
    pub client_id: String,
    pub scopes: Scopes,
    pub granted_at: DateTime<Utc>,
}

/// Clients, codes, OAuth sessions and consent.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    /// Registers a client.
    async fn insert_client(&self, client: &OAuthClient) -> StoreResult<()>;
    /// The client with this id.
    async fn client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>>;
    /// Clients in `client_id` order, after `after` (keyset pagination on the id).
    async fn list_clients(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<OAuthClient>>;
    /// Replaces the client's settings (everything but its id and creation time).
    async fn update_client(&self, client: &OAuthClient) -> StoreResult<bool>;
    /// Deletes the client, its codes and consents, and revokes every session it holds
    /// and `client_sid` (its client-credentials tokens), with `sid` revocations valid until
    /// `until`, in one transaction. `None` when there is no such client.
    async fn delete_client(
        &self,
        client_id: &str,
        client_sid: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Uuid>>>;

    /// Records a new code.
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    /// Uses the code `hash` if it is live, atomically, recording `new_sid` as the session
    /// its use starts.
    async fn redeem_code(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        new_sid: Uuid,
    ) -> StoreResult<Redemption>;

    /// Starts a session for an authorization: the session and its link, in one
    /// transaction.
    async fn insert_oauth_session(
        &self,
        session: &Session,
        link: &OAuthSessionLink,
    ) -> StoreResult<()>;
    /// The OAuth side of a session, if an authorization started it.
    async fn oauth_session(&self, session_id: Uuid) -> StoreResult<Option<OAuthSessionLink>>;
    /// The clients' names of those of `sessions` that authorizations started.
    async fn session_clients(&self, sessions: &[Uuid]) -> StoreResult<Vec<(Uuid, String, String)>>;

    /// The user's consent to the client.
    async fn consent(&self, user: UserId, client_id: &str) -> StoreResult<Option<Consent>>;
    /// Records (or widens) a consent.
    async fn save_consent(&self, consent: &Consent) -> StoreResult<()>;
    /// The user's consents with their clients' names, newest first (a user has a handful).
    async fn list_consents(&self, user: UserId) -> StoreResult<Vec<(Consent, String)>>;
    /// Withdraws the consent and revokes the user's sessions of that client, in one
    /// transaction. `None` when there was no consent and no session.
    async fn delete_consent(
        &self,
        user: UserId,
        client_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Uuid>>>;
}

/// Pushed authorization requests (RFC 9126), in the database so that any instance can
/// redeem what another stored (implemented in `sql/par.rs`).
#[async_trait]
pub trait PushedRequests: Send + Sync {
    /// Records a pushed request under the hash of its `request_uri`.
    async fn insert_par(&self, par: &PushedRequest) -> StoreResult<()>;
    /// Uses the pushed request `hash` if it is live and unused, atomically: of two
    /// redemptions, on any instance, one gets it.
    async fn redeem_par(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<Option<PushedRequest>>;
}

/// A pushed authorization request as stored.
#[derive(Debug, Clone)]
pub struct PushedRequest {
    pub hash: Vec<u8>,
    pub client_id: String,
    /// The authorization parameters, as JSON.
    pub params: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}
