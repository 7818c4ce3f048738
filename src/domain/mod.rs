//! The domain: users, tiers, password policy, session and lockout rules, the kinds of
//! security event, and the addresses an API key may be used from.
//!
//! Pure Rust only — no axum, no sqlx, no tokio. Every type here is built by a `parse`
//! constructor that refuses invalid input, so the layers above never re-check a value
//! they hold (parse, don't validate). Time is always passed in, never read here.

pub mod audit;
pub mod fapi;
pub mod lockout;
pub mod network;
pub mod oauth;
pub mod password;
pub mod session;
pub mod user;

pub use audit::AuditKind;
pub use password::{PasswordPolicyError, PolicyInput};
pub use session::{RefreshDecision, Session, SessionState};
pub use user::{Email, FullName, Role, Tier, User, UserId, Username};

/// Why a value was refused: the field it belongs to and a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The request field the value came from (`email`, `username`, ...).
    pub field: &'static str,
    /// Human-readable reason, safe to show to the caller.
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}
