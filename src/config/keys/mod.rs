//! The key table: one row per key with its name, whether it is secret, its default, its
//! parser and its printer. The loader, the file's unknown-key check, the environment
//! overlay and `config check` all read these rows, so a key is spelled once.
//!
//! Adding a key: a `Config` field with its `///`, a row here, its place in [`KEYS`]
//! (the order `config check` prints), one line in `Sources::build`, and its entry in
//! `deploy/tradeauth.example.toml` (tests check the last three).

mod browser;
mod settings;

pub(super) use browser::*;
pub(super) use settings::*;

use super::parse::{Parsed, PublicUrl};
use super::{Config, Dialect};

/// How `config check` shows a value that was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Secrecy {
    /// As written.
    Public,
    /// A URL whose password and query values are masked; the rest stays readable.
    Url,
    /// `********`; the value is also taken byte for byte (not trimmed) and never quoted
    /// in an error.
    Hidden,
}

/// One configuration key. `C` is what its default may depend on.
pub(super) struct Key<T, C = Context> {
    /// The name in the file; the variable is [`super::env_name`] of it.
    pub name: &'static str,
    /// How `config check` shows it, and whether it is trimmed.
    pub secrecy: Secrecy,
    /// The value when the key is not set.
    pub default: fn(&C) -> T,
    /// The value from the operator's text.
    pub parse: fn(&str) -> Parsed<T>,
    /// The effective value as `config check` prints it when the key is not set.
    pub print: fn(&Config) -> String,
}

/// What a key's default may depend on (read before the other keys).
pub(super) struct Context {
    /// For the TTLs, rotation and verification the dialect's seed expects.
    pub dialect: Dialect,
    /// For the origins, the RP ID and the issuer.
    pub public_url: PublicUrl,
    /// For the log format.
    pub stdout_is_terminal: bool,
}

/// A row of any type, for the lists.
pub(super) trait AnyKey: Sync {
    fn name(&self) -> &'static str;
    fn secrecy(&self) -> Secrecy;
    fn print(&self, cfg: &Config) -> String;
}

impl<T, C> AnyKey for Key<T, C> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn secrecy(&self) -> Secrecy {
        self.secrecy
    }
    fn print(&self, cfg: &Config) -> String {
        (self.print)(cfg)
    }
}

/// Every key, in the order `config check` prints them.
pub(super) const KEYS: &[&dyn AnyKey] = &[
    &LISTEN,
    &DATABASE_URL,
    &REDIS_URL,
    &REDIS_PREFIX,
    &DIALECT,
    &PUBLIC_URL,
    &JWT_ALG,
    &JWT_SECRET,
    &ISSUER,
    &AUDIENCE,
    &ACCESS_TTL,
    &REFRESH_TTL,
    &REMEMBER_ME_TTL,
    &SESSION_MAX_AGE,
    &REFRESH_ROTATION,
    &REFRESH_REUSE_GRACE,
    &LOCKOUT_THRESHOLD,
    &LOCKOUT_DURATION,
    &LOCKOUT_WINDOW,
    &LOCKOUT_SCOPE,
    &RATE_LIMIT,
    &REGISTRATION,
    &REQUIRE_EMAIL_VERIFICATION,
    &MAILER,
    &MAIL_FROM,
    &VERIFICATION_TTL,
    &RESET_TTL,
    &TRUSTED_PROXIES,
    &LOG_FORMAT,
    &ADMIN_EMAIL,
    &ADMIN_PASSWORD,
    &DEFAULT_TIER,
    &ARGON2_MEMORY_KIB,
    &ARGON2_ITERATIONS,
    &ARGON2_PARALLELISM,
    &HASH_CONCURRENCY,
    &MAX_BODY_BYTES,
    &AUDIT_RETENTION,
    &WS_MAX_PER_USER,
    &RATE_LIMIT_LOGIN,
    &RATE_LIMIT_LOGIN_IP,
    &RATE_LIMIT_REGISTER,
    &RATE_LIMIT_REFRESH,
    &RATE_LIMIT_MAIL,
    &RATE_LIMIT_MAIL_IP,
    &RATE_LIMIT_WRITE,
    &RATE_LIMIT_WRITE_IP,
    &ALLOWED_ORIGINS,
    &COOKIE_SECURE,
    &WEBAUTHN_RP_ID,
    &WEBAUTHN_RP_NAME,
    &OIDC_ISSUER,
    &SECRET_KEY,
    &SIGNATURE_MAX_AGE,
    &SIGNATURE_FUTURE_SKEW,
];

/// "(unset)", or what `show` makes of the value.
pub(super) fn or_unset<T>(value: &Option<T>, show: impl Fn(&T) -> String) -> String {
    value.as_ref().map_or_else(|| "(unset)".to_string(), show)
}

/// A secret that is hidden whole.
pub(super) fn hidden<T>(value: &Option<T>) -> String {
    or_unset(value, |_| "********".to_string())
}

pub(super) fn none<T, C>(_: &C) -> Option<T> {
    None
}
