//! The rows of the keys the service reads today, section by section as in
//! `deploy/tradeauth.example.toml`.

use super::{hidden, none, or_unset, Key, Secrecy};
use crate::config::mailer;
use crate::config::parse::{self, format_duration as duration, Invalid, PublicUrl};
use crate::config::{DatabaseUrl, Dialect, LogFormat};
use crate::domain::lockout::LockoutScope;
use crate::domain::{Email, Tier};
use crate::store::ratelimit::Limit;
use crate::tokens::JwtAlg;
use chrono::TimeDelta;
use Secrecy::{Hidden, Public, Url};

/// A built-in rate.
fn rate(s: &str) -> Limit {
    parse::default_rate(s)
}

// --- Network and storage ---------------------------------------------------------------

pub(in crate::config) const LISTEN: Key<String> = Key {
    name: "listen",
    secrecy: Public,
    default: |_| "127.0.0.1:8080".into(),
    parse: parse::listen,
    print: |c| c.listen.clone(),
};
pub(in crate::config) const DATABASE_URL: Key<DatabaseUrl> = Key {
    name: "database_url",
    secrecy: Url,
    default: |_| DatabaseUrl::Sqlite {
        path: "tradeauth.db".into(),
    },
    parse: parse::database_url,
    print: |c| match &c.database_url {
        DatabaseUrl::Sqlite { path } => format!("sqlite://{path}"),
        DatabaseUrl::Postgres(_) => "postgres://****".into(),
    },
};
pub(in crate::config) const REDIS_URL: Key<Option<secrecy::SecretString>> = Key {
    name: "redis_url",
    secrecy: Url,
    default: none,
    parse: parse::redis_url,
    print: |c| or_unset(&c.redis_url, |_| "redis://****".into()),
};
pub(in crate::config) const REDIS_PREFIX: Key<String> = Key {
    name: "redis_prefix",
    secrecy: Public,
    default: |_| "tradeauth:".into(),
    parse: parse::text,
    print: |c| c.redis_prefix.clone(),
};

// --- Wire format and links (read first: other defaults depend on them) -------------------

pub(in crate::config) const DIALECT: Key<Dialect, ()> = Key {
    name: "dialect",
    secrecy: Public,
    default: |_| Dialect::Native,
    parse: parse::dialect,
    print: |c| c.dialect.as_str().into(),
};
pub(in crate::config) const PUBLIC_URL: Key<PublicUrl, ()> = Key {
    name: "public_url",
    secrecy: Public,
    default: |_| parse::public_url("http://localhost:8080").expect("the default URL parses"),
    parse: parse::public_url,
    print: |c| c.public_url.clone(),
};

// --- Tokens and sessions ---------------------------------------------------------------

pub(in crate::config) const JWT_ALG: Key<JwtAlg> = Key {
    name: "jwt_alg",
    secrecy: Public,
    default: |_| JwtAlg::EdDSA,
    parse: |s| JwtAlg::parse(s).ok_or(Invalid::Expected("EdDSA, ES256, RS256 or HS256")),
    print: |c| c.jwt_alg.as_str().into(),
};
pub(in crate::config) const JWT_SECRET: Key<Option<secrecy::SecretString>> = Key {
    name: "jwt_secret",
    secrecy: Hidden,
    default: none,
    parse: parse::secret,
    print: |c| hidden(&c.jwt_secret),
};
pub(in crate::config) const ISSUER: Key<String> = Key {
    name: "issuer",
    secrecy: Public,
    default: |_| "tradeauth".into(),
    parse: parse::text,
    print: |c| c.issuer.clone(),
};
pub(in crate::config) const AUDIENCE: Key<String> = Key {
    name: "audience",
    secrecy: Public,
    default: |_| "tradeauth-api".into(),
    parse: parse::text,
    print: |c| c.audience.clone(),
};
pub(in crate::config) const ACCESS_TTL: Key<TimeDelta> = Key {
    name: "access_ttl",
    secrecy: Public,
    default: |cx| cx.dialect.defaults().access_ttl,
    parse: parse::duration,
    print: |c| duration(c.access_ttl),
};
pub(in crate::config) const REFRESH_TTL: Key<TimeDelta> = Key {
    name: "refresh_ttl",
    secrecy: Public,
    default: |cx| cx.dialect.defaults().refresh_ttl,
    parse: parse::duration,
    print: |c| duration(c.refresh_ttl),
};
pub(in crate::config) const REMEMBER_ME_TTL: Key<TimeDelta> = Key {
    name: "remember_me_ttl",
    secrecy: Public,
    default: |_| TimeDelta::days(30),
    parse: parse::duration,
    print: |c| duration(c.remember_me_ttl),
};
pub(in crate::config) const SESSION_MAX_AGE: Key<TimeDelta> = Key {
    name: "session_max_age",
    secrecy: Public,
    default: |_| TimeDelta::days(90),
    parse: parse::duration,
    print: |c| duration(c.session_max_age),
};
pub(in crate::config) const REFRESH_ROTATION: Key<bool> = Key {
    name: "refresh_rotation",
    secrecy: Public,
    default: |cx| cx.dialect.defaults().refresh_rotation,
    parse: parse::boolean,
    print: |c| c.refresh_rotation.to_string(),
};
pub(in crate::config) const REFRESH_REUSE_GRACE: Key<TimeDelta> = Key {
    name: "refresh_reuse_grace",
    secrecy: Public,
    default: |_| TimeDelta::seconds(10),
    parse: parse::duration_or_zero,
    print: |c| duration(c.refresh_reuse_grace),
};

// --- Lockout ---------------------------------------------------------------------------

pub(in crate::config) const LOCKOUT_THRESHOLD: Key<u32> = Key {
    name: "lockout_threshold",
    secrecy: Public,
    default: |_| 5,
    parse: |s| parse::number(s, 1, 1000, "a number from 1 to 1000"),
    print: |c| c.lockout_threshold.to_string(),
};
pub(in crate::config) const LOCKOUT_DURATION: Key<TimeDelta> = Key {
    name: "lockout_duration",
    secrecy: Public,
    default: |_| TimeDelta::minutes(15),
    parse: parse::duration,
    print: |c| duration(c.lockout_duration),
};
pub(in crate::config) const LOCKOUT_WINDOW: Key<TimeDelta> = Key {
    name: "lockout_window",
    secrecy: Public,
    default: |_| TimeDelta::minutes(15),
    parse: parse::duration,
    print: |c| duration(c.lockout_window),
};
pub(in crate::config) const LOCKOUT_SCOPE: Key<LockoutScope> = Key {
    name: "lockout_scope",
    secrecy: Public,
    default: |_| LockoutScope::Account,
    parse: parse::lockout_scope,
    print: |c| match c.lockout_scope {
        LockoutScope::Account => "account".into(),
        LockoutScope::AccountIp => "account_ip".into(),
    },
};

// --- Rate limits, accounts, mail -------------------------------------------------------

pub(in crate::config) const RATE_LIMIT: Key<bool> = Key {
    name: "rate_limit",
    secrecy: Public,
    default: |_| true,
    parse: parse::on_off,
    print: |c| if c.rate_limit { "on" } else { "off" }.into(),
};
pub(in crate::config) const REGISTRATION: Key<bool> = Key {
    name: "registration",
    secrecy: Public,
    default: |_| true,
    parse: parse::open_closed,
    print: |c| {
        if c.registration_open {
            "open"
        } else {
            "closed"
        }
        .into()
    },
};
pub(in crate::config) const REQUIRE_EMAIL_VERIFICATION: Key<bool> = Key {
    name: "require_email_verification",
    secrecy: Public,
    default: |cx| cx.dialect.defaults().require_email_verification,
    parse: parse::boolean,
    print: |c| c.require_email_verification.to_string(),
};
pub(in crate::config) const MAILER: Key<mailer::MailerSpec> = Key {
    name: "mailer",
    secrecy: Url,
    default: |_| mailer::MailerSpec::Log,
    parse: mailer::mailer,
    print: |c| match &c.mailer {
        mailer::MailerSpec::Log => "log".into(),
        mailer::MailerSpec::File(dir) => format!("file:{}", dir.display()),
        mailer::MailerSpec::Smtp(_) => "smtp://****".into(),
    },
};
pub(in crate::config) const MAIL_FROM: Key<lettre::message::Mailbox> = Key {
    name: "mail_from",
    secrecy: Public,
    default: |_| {
        let sender = "tradeauth <no-reply@localhost>".parse();
        sender.expect("the default sender parses")
    },
    parse: mailer::mailbox,
    print: |c| c.mail_from.to_string(),
};
pub(in crate::config) const VERIFICATION_TTL: Key<TimeDelta> = Key {
    name: "verification_ttl",
    secrecy: Public,
    default: |_| TimeDelta::hours(24),
    parse: parse::duration,
    print: |c| duration(c.verification_ttl),
};
pub(in crate::config) const RESET_TTL: Key<TimeDelta> = Key {
    name: "reset_ttl",
    secrecy: Public,
    default: |_| TimeDelta::hours(1),
    parse: parse::duration,
    print: |c| duration(c.reset_ttl),
};
pub(in crate::config) const TRUSTED_PROXIES: Key<Vec<ipnet::IpNet>> = Key {
    name: "trusted_proxies",
    secrecy: Public,
    default: |_| Vec::new(),
    parse: parse::trusted_proxies,
    print: |c| {
        let nets: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        nets.join(",")
    },
};
pub(in crate::config) const LOG_FORMAT: Key<LogFormat> = Key {
    name: "log_format",
    secrecy: Public,
    default: |cx| match cx.stdout_is_terminal {
        true => LogFormat::Pretty,
        false => LogFormat::Json,
    },
    parse: parse::log_format,
    print: |c| match c.log_format {
        LogFormat::Pretty => "pretty".into(),
        LogFormat::Json => "json".into(),
    },
};

// --- Bootstrap administrator -----------------------------------------------------------

pub(in crate::config) const ADMIN_EMAIL: Key<Option<String>> = Key {
    name: "admin_email",
    secrecy: Public,
    default: none,
    parse: |s| {
        Email::parse(s)
            .map(|_| Some(s.to_string()))
            .map_err(|e| Invalid::Message(e.message))
    },
    print: |c| or_unset(&c.admin_email, String::clone),
};
pub(in crate::config) const ADMIN_PASSWORD: Key<Option<secrecy::SecretString>> = Key {
    name: "admin_password",
    secrecy: Hidden,
    default: none,
    parse: parse::secret,
    print: |c| hidden(&c.admin_password),
};
pub(in crate::config) const DEFAULT_TIER: Key<Tier> = Key {
    name: "default_tier",
    secrecy: Public,
    default: |_| Tier::TRADER,
    parse: |s| {
        let tier = s.parse::<i64>().ok().and_then(|n| Tier::new(n).ok());
        tier.ok_or(Invalid::Expected("1, 2, 3 or 4"))
    },
    print: |c| c.default_tier.to_string(),
};

// --- Password hashing and resource limits ----------------------------------------------

pub(in crate::config) const ARGON2_MEMORY_KIB: Key<u32> = Key {
    name: "argon2_memory_kib",
    secrecy: Public,
    default: |_| 19 * 1024,
    parse: |s| {
        parse::number(
            s,
            19 * 1024,
            4 * 1024 * 1024,
            "at least 19456 (OWASP minimum)",
        )
    },
    print: |c| c.argon2_memory_kib.to_string(),
};
pub(in crate::config) const ARGON2_ITERATIONS: Key<u32> = Key {
    name: "argon2_iterations",
    secrecy: Public,
    default: |_| 2,
    parse: |s| parse::number(s, 2, 100, "from 2 to 100"),
    print: |c| c.argon2_iterations.to_string(),
};
pub(in crate::config) const ARGON2_PARALLELISM: Key<u32> = Key {
    name: "argon2_parallelism",
    secrecy: Public,
    default: |_| 1,
    parse: |s| parse::number(s, 1, 64, "from 1 to 64"),
    print: |c| c.argon2_parallelism.to_string(),
};
pub(in crate::config) const HASH_CONCURRENCY: Key<usize> = Key {
    name: "hash_concurrency",
    secrecy: Public,
    // One CPU is left to everything else.
    default: |_| {
        std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .unwrap_or(1)
    },
    parse: |s| parse::number(s, 1, 1024, "from 1 to 1024"),
    print: |c| c.hash_concurrency.to_string(),
};
pub(in crate::config) const MAX_BODY_BYTES: Key<usize> = Key {
    name: "max_body_bytes",
    secrecy: Public,
    default: |_| 64 * 1024,
    parse: |s| parse::number(s, 1024, 64 * 1024 * 1024, "from 1024 to 67108864"),
    print: |c| c.max_body_bytes.to_string(),
};
pub(in crate::config) const AUDIT_RETENTION: Key<TimeDelta> = Key {
    name: "audit_retention",
    secrecy: Public,
    default: |_| TimeDelta::days(90),
    parse: parse::duration,
    print: |c| duration(c.audit_retention),
};
pub(in crate::config) const WS_MAX_PER_USER: Key<usize> = Key {
    name: "ws_max_per_user",
    secrecy: Public,
    default: |_| 16,
    parse: |s| parse::number(s, 1, 10_000, "from 1 to 10000"),
    print: |c| c.ws_max_per_user.to_string(),
};

// --- Rate limits (used when rate_limit is on) ------------------------------------------

pub(in crate::config) const RATE_LIMIT_LOGIN: Key<Limit> = Key {
    name: "rate_limit_login",
    secrecy: Public,
    default: |_| rate("10/min"),
    parse: parse::rate,
    print: |c| c.rate_limits.login.to_string(),
};
pub(in crate::config) const RATE_LIMIT_LOGIN_IP: Key<Limit> = Key {
    name: "rate_limit_login_ip",
    secrecy: Public,
    default: |_| rate("30/min"),
    parse: parse::rate,
    print: |c| c.rate_limits.login_ip.to_string(),
};
pub(in crate::config) const RATE_LIMIT_REGISTER: Key<Limit> = Key {
    name: "rate_limit_register",
    secrecy: Public,
    default: |_| rate("10/hour"),
    parse: parse::rate,
    print: |c| c.rate_limits.register_ip.to_string(),
};
pub(in crate::config) const RATE_LIMIT_REFRESH: Key<Limit> = Key {
    name: "rate_limit_refresh",
    secrecy: Public,
    default: |_| rate("60/min"),
    parse: parse::rate,
    print: |c| c.rate_limits.refresh.to_string(),
};
pub(in crate::config) const RATE_LIMIT_MAIL: Key<Limit> = Key {
    name: "rate_limit_mail",
    secrecy: Public,
    default: |_| rate("5/hour"),
    parse: parse::rate,
    print: |c| c.rate_limits.mail.to_string(),
};
pub(in crate::config) const RATE_LIMIT_MAIL_IP: Key<Limit> = Key {
    name: "rate_limit_mail_ip",
    secrecy: Public,
    default: |_| rate("20/hour"),
    parse: parse::rate,
    print: |c| c.rate_limits.mail_ip.to_string(),
};
pub(in crate::config) const RATE_LIMIT_WRITE: Key<Limit> = Key {
    name: "rate_limit_write",
    secrecy: Public,
    default: |_| rate("60/min"),
    parse: parse::rate,
    print: |c| c.rate_limits.write.to_string(),
};
pub(in crate::config) const RATE_LIMIT_WRITE_IP: Key<Limit> = Key {
    name: "rate_limit_write_ip",
    secrecy: Public,
    default: |_| rate("300/min"),
    parse: parse::rate,
    print: |c| c.rate_limits.write_ip.to_string(),
};
