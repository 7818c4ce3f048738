//! The kinds of security event (API.md, "Security events"): one variant per `type` the
//! events list can show, so a kind cannot be misspelt where an event is written.

/// What happened. [`AuditKind::as_str`] is the wire name (`login.failed`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    /// An account was created (registration, an admin, the CLI).
    UserRegistered,
    /// An account changed: profile, tier, state, unlock, deletion.
    UserUpdated,
    LoginSucceeded,
    LoginFailed,
    /// Failures reached the threshold: the account is locked for a while.
    AccountLocked,
    Logout,
    /// A refresh token was used twice: the session is revoked.
    RefreshReuseDetected,
    SessionRevoked,
    PasswordChanged,
    PasswordReset,
    EmailVerified,
    MfaEnabled,
    MfaDisabled,
    ApiKeyCreated,
    ApiKeyRevoked,
    /// The `ADMIN_EMAIL` account was created or brought in line.
    AdminBootstrap,
    /// A user allowed an OAuth client the scopes it asked for.
    OAuthConsentGranted,
    /// A user withdrew an OAuth client's grant.
    OAuthConsentRevoked,
    /// Tokens went to an OAuth client (code exchange, client credentials).
    OAuthTokenIssued,
    /// An authorization code was presented a second time: what it issued is revoked.
    OAuthCodeReused,
    /// A client exchanged a subject token for a narrower access token (RFC 8693).
    OAuthTokenExchanged,
    /// A user approved or denied a device's authorization request (RFC 8628).
    OAuthDeviceApproved,
    OAuthDeviceDenied,
    /// One delivery attempt of a back-channel logout token (or giving up on one).
    OAuthBackchannelLogout,
    /// An admin registered, changed, re-keyed or deleted an OAuth client.
    OAuthClientCreated,
    OAuthClientUpdated,
    OAuthClientSecretRotated,
    OAuthClientDeleted,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    /// A passkey signed with a counter that did not increase: maybe a cloned authenticator.
    PasskeyCloneSuspected,
    /// An admin rotated the token-signing keys (`details.kid`: the new active key).
    SigningKeyRotated,
}

impl AuditKind {
    /// The event's `type` on the wire and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserRegistered => "user.registered",
            AuditKind::UserUpdated => "user.updated",
            AuditKind::LoginSucceeded => "login.succeeded",
            AuditKind::LoginFailed => "login.failed",
            AuditKind::AccountLocked => "account.locked",
            AuditKind::Logout => "logout",
            AuditKind::RefreshReuseDetected => "refresh.reuse_detected",
            AuditKind::SessionRevoked => "session.revoked",
            AuditKind::PasswordChanged => "password.changed",
            AuditKind::PasswordReset => "password.reset",
            AuditKind::EmailVerified => "email.verified",
            AuditKind::MfaEnabled => "mfa.enabled",
            AuditKind::MfaDisabled => "mfa.disabled",
            AuditKind::ApiKeyCreated => "api_key.created",
            AuditKind::ApiKeyRevoked => "api_key.revoked",
            AuditKind::AdminBootstrap => "admin.bootstrap",
            AuditKind::OAuthConsentGranted => "oauth.consent_granted",
            AuditKind::OAuthConsentRevoked => "oauth.consent_revoked",
            AuditKind::OAuthTokenIssued => "oauth.token_issued",
            AuditKind::OAuthCodeReused => "oauth.code_reused",
            AuditKind::OAuthTokenExchanged => "oauth.token_exchanged",
            AuditKind::OAuthDeviceApproved => "oauth.device_approved",
            AuditKind::OAuthDeviceDenied => "oauth.device_denied",
            AuditKind::OAuthBackchannelLogout => "oauth.backchannel_logout",
            AuditKind::OAuthClientCreated => "oauth_client.created",
            AuditKind::OAuthClientUpdated => "oauth_client.updated",
            AuditKind::OAuthClientSecretRotated => "oauth_client.secret_rotated",
            AuditKind::OAuthClientDeleted => "oauth_client.deleted",
            AuditKind::PasskeyAdded => "passkey.added",
            AuditKind::PasskeyRenamed => "passkey.renamed",
            AuditKind::PasskeyRemoved => "passkey.removed",
            AuditKind::PasskeyCloneSuspected => "passkey.clone_suspected",
            AuditKind::SigningKeyRotated => "signing_key.rotated",
        }
    }
}

impl std::fmt::Display for AuditKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
