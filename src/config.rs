//! Configuration: defaults, then a TOML file, then `TRADEAUTH_*` environment variables
//! (env wins). Every value is parsed once at start; a bad one stops the start with a
//! message naming the key and what it allows.
//!
//! The file's keys are the variables' names without the prefix, in lower case. Unknown
//! keys in the file are refused (a typo must not silently fall back to a default).
//! Secrets are [`SecretString`]s: a `Debug` of the config never prints one.

use crate::domain::lockout::LockoutScope;
use crate::domain::Tier;
use crate::store::ratelimit::Limit;
use crate::tokens::JwtAlg;
use ipnet::IpNet;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The wire format served (see API.md, "Dialects").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Native,
    Quantum,
    OsEngine,
    Stratify,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Quantum => "quantum",
            Self::OsEngine => "os-engine",
            Self::Stratify => "stratify",
        }
    }
}

#[derive(Debug, Clone)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` — one file, one instance.
    Sqlite { path: String },
    /// `postgres://...` — shared by any number of instances.
    Postgres(SecretString),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub database_url: DatabaseUrl,
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key and channel (several deployments may share one Redis).
    pub redis_prefix: String,
    pub dialect: Dialect,
    pub public_url: String,
    pub jwt_alg: JwtAlg,
    pub jwt_secret: Option<SecretString>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub remember_me_ttl: Duration,
    /// The absolute maximum age of a session, whatever its refresh activity.
    pub session_max_age: Duration,
    pub refresh_rotation: bool,
    pub refresh_reuse_grace: Duration,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    /// The window in which failures count towards the threshold.
    pub lockout_window: Duration,
    pub lockout_scope: LockoutScope,
    pub rate_limit: bool,
    pub registration_open: bool,
    pub require_email_verification: bool,
    pub mailer: SecretString,
    /// How long a verification link works (24 h).
    pub verification_ttl: Duration,
    /// How long a password-reset link works (1 h).
    pub reset_ttl: Duration,
    /// The sender of mails (`tradeauth <no-reply@localhost>`).
    pub mail_from: String,
    pub trusted_proxies: Vec<IpNet>,
    pub log_format: LogFormat,
    pub admin_email: Option<String>,
    pub admin_password: Option<SecretString>,
    /// The tier of self-registered users.
    pub default_tier: Tier,
    /// Argon2id parameters (OWASP minimum by default).
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once (the rest queue).
    pub hash_concurrency: usize,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long audit events are kept.
    pub audit_retention: Duration,
    /// Open WebSockets allowed per user.
    pub ws_max_per_user: usize,
    /// Per-class rate limits (used when `rate_limit` is on).
    pub rate_limits: RateLimits,
}

/// The limit of each endpoint class and scope (API.md, "Rate limits").
#[derive(Debug, Clone, Copy)]
pub struct RateLimits {
    /// Login, per client IP and account.
    pub login: Limit,
    /// Login, per client IP.
    pub login_ip: Limit,
    /// Registration, per client IP.
    pub register_ip: Limit,
    /// Refresh, per session.
    pub refresh: Limit,
    /// Password reset and verification mails, per recipient (mails actually sent).
    pub mail: Limit,
    /// Password reset and verification endpoints, per client IP.
    pub mail_ip: Limit,
    /// Other writes, per user.
    pub write: Limit,
    /// Other writes, per client IP.
    pub write_ip: Limit,
}

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

/// Every key, in the order `config check` prints them, and whether it is secret.
const KEYS: &[(&str, bool)] = &[
    ("listen", false),
    ("database_url", true),
    ("redis_url", true),
    ("redis_prefix", false),
    ("dialect", false),
    ("public_url", false),
    ("jwt_alg", false),
    ("jwt_secret", true),
    ("issuer", false),
    ("audience", false),
    ("access_ttl", false),
    ("refresh_ttl", false),
    ("remember_me_ttl", false),
    ("session_max_age", false),
    ("refresh_rotation", false),
    ("refresh_reuse_grace", false),
    ("lockout_threshold", false),
    ("lockout_duration", false),
    ("lockout_window", false),
    ("lockout_scope", false),
    ("rate_limit", false),
    ("registration", false),
    ("require_email_verification", false),
    ("mailer", true),
    ("mail_from", false),
    ("verification_ttl", false),
    ("reset_ttl", false),
    ("trusted_proxies", false),
    ("log_format", false),
    ("admin_email", false),
    ("admin_password", true),
    ("default_tier", false),
    ("argon2_memory_kib", false),
    ("argon2_iterations", false),
    ("argon2_parallelism", false),
    ("hash_concurrency", false),
    ("max_body_bytes", false),
    ("audit_retention", false),
    ("ws_max_per_user", false),
    ("rate_limit_login", false),
    ("rate_limit_login_ip", false),
    ("rate_limit_register", false),
    ("rate_limit_refresh", false),
    ("rate_limit_mail", false),
    ("rate_limit_mail_ip", false),
    ("rate_limit_write", false),
    ("rate_limit_write_ip", false),
];

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    match key {
        "admin_email" | "admin_password" => key.to_uppercase(),
        _ => format!("TRADEAUTH_{}", key.to_uppercase()),
    }
}

/// Where a raw value came from, so errors can name it the way the operator wrote it.
/// No `Debug`: the value may be a secret.
#[derive(Clone)]
struct Raw {
    value: String,
    origin: String,
}

/// The raw key → value map, before parsing.
/// No `Debug`: values may be secrets.
#[derive(Default, Clone)]
pub struct Sources {
    values: BTreeMap<String, Raw>,
}

impl Sources {
    /// Reads a TOML file.
    pub fn with_file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            key: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        let table: toml::Table = text.parse().map_err(|e| ConfigError {
            key: path.display().to_string(),
            message: format!("not valid TOML: {e}"),
        })?;
        for (k, v) in table {
            if !KEYS.iter().any(|(name, _)| *name == k) {
                return Err(ConfigError {
                    key: format!("{k} (in {})", path.display()),
                    message: "unknown key".into(),
                });
            }
            let value = match v {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|i| match i {
                        toml::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            let origin = format!("{k} (in {})", path.display());
            self.values.insert(k, Raw { value, origin });
        }
        Ok(self)
    }

    /// Overlays environment variables (`TRADEAUTH_*`, `ADMIN_EMAIL`, `ADMIN_PASSWORD`).
    pub fn with_env(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars: BTreeMap<String, String> = vars.into_iter().collect();
        for (key, _) in KEYS {
            let name = env_name(key);
            let found = vars.get(&name).map(|v| (name.clone(), v)).or_else(|| {
                let alt = format!("TRADEAUTH_{}", key.to_uppercase());
                vars.get(&alt).map(|v| (alt.clone(), v))
            });
            // An empty variable is "not set": it must not wipe a value from the file.
            if let Some((origin, v)) = found.filter(|(_, v)| !v.trim().is_empty()) {
                self.values.insert(
                    key.to_string(),
                    Raw {
                        value: v.clone(),
                        origin,
                    },
                );
            }
        }
        self
    }

    /// Sets one key (tests and the CLI use this).
    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.values.insert(
            key.to_string(),
            Raw {
                value: value.into(),
                origin: env_name(key),
            },
        );
        self
    }

    fn get(&self, key: &str) -> Option<&Raw> {
        self.values
            .get(key)
            .filter(|r| !r.value.trim().is_empty() || key == "trusted_proxies")
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let origin = self
            .values
            .get(key)
            .map(|r| r.origin.clone())
            .unwrap_or_else(|| env_name(key));
        ConfigError {
            key: origin,
            message: message.into(),
        }
    }

    fn string(&self, key: &str, default: &str) -> String {
        self.get(key)
            .map(|r| r.value.trim().to_string())
            .unwrap_or_else(|| default.to_string())
    }

    fn parse<T>(
        &self,
        key: &str,
        default: T,
        expected: &str,
        f: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(r) => f(r.value.trim()).ok_or_else(|| {
                self.err(
                    key,
                    format!("{:?} is not allowed; expected {expected}", r.value),
                )
            }),
        }
    }

    fn duration(&self, key: &str, default: Duration) -> Result<Duration, ConfigError> {
        let d = self.parse(key, default, "a duration like 10s, 15m, 24h or 30d", |s| {
            humantime::parse_duration(s).ok()
        })?;
        if d.is_zero() && !matches!(key, "refresh_reuse_grace") {
            return Err(self.err(key, "must be longer than zero"));
        }
        Ok(d)
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        self.parse(key, default, "true or false", |s| {
            match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            }
        })
    }

    fn number<T: std::str::FromStr + PartialOrd + Copy>(
        &self,
        key: &str,
        default: T,
        min: T,
        max: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        self.parse(key, default, expected, |s| {
            s.parse::<T>().ok().filter(|n| *n >= min && *n <= max)
        })
    }

    fn limit(&self, key: &str, default: &str) -> Result<Limit, ConfigError> {
        let default = Limit::parse(default).expect("default limits parse");
        self.parse(
            key,
            default,
            "a rate like 10/min, 5/hour or 2/sec",
            Limit::parse,
        )
    }

    fn secret(&self, key: &str) -> Option<SecretString> {
        self.get(key).map(|r| SecretString::from(r.value.clone()))
    }

    /// Parses every key into a [`Config`].
    pub fn build(&self, stdout_is_terminal: bool) -> Result<Config, ConfigError> {
        let dialect = self.parse(
            "dialect",
            Dialect::Native,
            "native, quantum, os-engine or stratify",
            |s| match s {
                "native" => Some(Dialect::Native),
                "quantum" => Some(Dialect::Quantum),
                "os-engine" => Some(Dialect::OsEngine),
                "stratify" => Some(Dialect::Stratify),
                _ => None,
            },
        )?;
        const MIN: u64 = 60;
        const DAY: u64 = 86_400;
        let (access, refresh, remember, rotation, verify) = match dialect {
            Dialect::Native => (15 * MIN, 7 * DAY, 30 * DAY, true, false),
            Dialect::Quantum => (30 * MIN, 30 * DAY, 30 * DAY, true, false),
            Dialect::OsEngine => (15 * MIN, DAY, 30 * DAY, true, false),
            Dialect::Stratify => (15 * MIN, 7 * DAY, 30 * DAY, false, true),
        };
        let jwt_alg = self.parse(
            "jwt_alg",
            JwtAlg::EdDSA,
            "EdDSA, ES256, RS256 or HS256",
            JwtAlg::parse,
        )?;
        let jwt_secret = self.secret("jwt_secret");
        // Too short a secret, or one set beside another algorithm, is reported at start
        // (see `Config::warnings`), not refused: the contract only requires it for HS256.
        if jwt_alg == JwtAlg::HS256 && jwt_secret.is_none() {
            return Err(self.err("jwt_secret", "is required when TRADEAUTH_JWT_ALG is HS256"));
        }
        let database_url = {
            let raw = self.string("database_url", "sqlite://tradeauth.db");
            if let Some(path) = raw
                .strip_prefix("sqlite://")
                .or_else(|| raw.strip_prefix("sqlite:"))
            {
                let path = path.split('?').next().unwrap_or_default().to_string();
                if path.is_empty() {
                    return Err(self.err("database_url", "sqlite:// needs a file path"));
                }
                if path.contains(":memory:") || path.starts_with("file::memory") {
                    return Err(self.err(
                        "database_url",
                        "an in-memory SQLite database is not supported; give a file path",
                    ));
                }
                DatabaseUrl::Sqlite { path }
            } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
                DatabaseUrl::Postgres(SecretString::from(raw))
            } else {
                return Err(self.err(
                    "database_url",
                    "unknown scheme; expected sqlite://PATH or postgres://...",
                ));
            }
        };
        let redis_url = self.secret("redis_url");
        if let Some(r) = &redis_url {
            let s = r.expose_secret();
            if !s.starts_with("redis://") && !s.starts_with("rediss://") {
                return Err(self.err(
                    "redis_url",
                    "expected redis://host:port or rediss://host:port (TLS)",
                ));
            }
            if s.starts_with("rediss://") && s.contains('#') {
                return Err(self.err(
                    "redis_url",
                    "rediss:// always verifies the certificate; remove the #fragment (#insecure is not supported)",
                ));
            }
        }
        let lockout_scope = self.parse(
            "lockout_scope",
            LockoutScope::Account,
            "account or account_ip",
            |s| match s {
                "account" => Some(LockoutScope::Account),
                "account_ip" => Some(LockoutScope::AccountIp),
                _ => None,
            },
        )?;
        let registration_open =
            self.parse("registration", true, "open or closed", |s| match s {
                "open" => Some(true),
                "closed" => Some(false),
                _ => None,
            })?;
        let rate_limit = self.parse("rate_limit", true, "on or off", |s| {
            match s.to_ascii_lowercase().as_str() {
                "on" | "true" => Some(true),
                "off" | "false" => Some(false),
                _ => None,
            }
        })?;
        let listen = self.string("listen", "127.0.0.1:8080");
        // host:port, the host an address or a name ([v6] in brackets), the port a number;
        // whether it can be bound is for the start to find out.
        let listen_ok = listen.rsplit_once(':').is_some_and(|(host, port)| {
            let bracketed = host.starts_with('[') && host.ends_with(']');
            !host.is_empty() && (bracketed || !host.contains(':')) && port.parse::<u16>().is_ok()
        });
        if !listen_ok {
            return Err(self.err(
                "listen",
                format!("expected host:port (e.g. 127.0.0.1:8080), got {listen:?}"),
            ));
        }
        let mailer = self.string("mailer", "log");
        if !(mailer == "log"
            || mailer.starts_with("file:")
            || mailer.starts_with("smtp://")
            || mailer.starts_with("smtps://"))
        {
            return Err(self.err(
                "mailer",
                "expected log, file:DIR, smtp://[user:pass@]host:port or smtps://...",
            ));
        }
        if mailer.starts_with("smtp") {
            crate::mail::check_smtp_url(&mailer).map_err(|e| self.err("mailer", e))?;
        }
        let mail_from = self.string("mail_from", "tradeauth <no-reply@localhost>");
        crate::mail::check_mailbox(&mail_from).map_err(|e| self.err("mail_from", e))?;
        let trusted_proxies = {
            let raw = self.string("trusted_proxies", "");
            let mut nets = Vec::new();
            for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let net = part
                    .parse::<IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        self.err(
                            "trusted_proxies",
                            format!("{part:?} is not an address or CIDR (e.g. 10.0.0.0/8)"),
                        )
                    })?;
                nets.push(net);
            }
            nets
        };
        let log_format = self.parse(
            "log_format",
            if stdout_is_terminal {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            },
            "pretty or json",
            |s| match s {
                "pretty" => Some(LogFormat::Pretty),
                "json" => Some(LogFormat::Json),
                _ => None,
            },
        )?;
        let admin_email = self.get("admin_email").map(|r| r.value.trim().to_string());
        let admin_password = self.secret("admin_password");
        if admin_email.is_some() != admin_password.is_some() {
            return Err(self.err(
                if admin_email.is_some() {
                    "admin_password"
                } else {
                    "admin_email"
                },
                "ADMIN_EMAIL and ADMIN_PASSWORD must be set together",
            ));
        }
        if let Some(e) = &admin_email {
            crate::domain::Email::parse(e).map_err(|e| self.err("admin_email", e.message))?;
        }
        let public_url = self.string("public_url", "http://localhost:8080");
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            return Err(self.err("public_url", "expected an http:// or https:// URL"));
        }
        let hash_default = std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .unwrap_or(1);
        let cfg = Config {
            listen,
            database_url,
            redis_url,
            redis_prefix: self.string("redis_prefix", "tradeauth:"),
            dialect,
            public_url: public_url.trim_end_matches('/').to_string(),
            jwt_alg,
            jwt_secret,
            issuer: self.string("issuer", "tradeauth"),
            audience: self.string("audience", "tradeauth-api"),
            access_ttl: self.duration("access_ttl", Duration::from_secs(access))?,
            refresh_ttl: self.duration("refresh_ttl", Duration::from_secs(refresh))?,
            remember_me_ttl: self.duration("remember_me_ttl", Duration::from_secs(remember))?,
            session_max_age: self.duration("session_max_age", Duration::from_secs(90 * DAY))?,
            refresh_rotation: self.boolean("refresh_rotation", rotation)?,
            refresh_reuse_grace: self.duration("refresh_reuse_grace", Duration::from_secs(10))?,
            lockout_threshold: self.number(
                "lockout_threshold",
                5,
                1,
                1000,
                "a number from 1 to 1000",
            )?,
            lockout_duration: self.duration("lockout_duration", Duration::from_secs(15 * MIN))?,
            lockout_window: self.duration("lockout_window", Duration::from_secs(15 * MIN))?,
            lockout_scope,
            rate_limit,
            registration_open,
            require_email_verification: self.boolean("require_email_verification", verify)?,
            mailer: SecretString::from(mailer),
            verification_ttl: self.duration("verification_ttl", Duration::from_secs(DAY))?,
            reset_ttl: self.duration("reset_ttl", Duration::from_secs(3600))?,
            mail_from,
            trusted_proxies,
            log_format,
            admin_email,
            admin_password,
            default_tier: self.parse("default_tier", Tier::TRADER, "1, 2, 3 or 4", |s| {
                s.parse::<i64>().ok().and_then(|n| Tier::new(n).ok())
            })?,
            argon2_memory_kib: self.number(
                "argon2_memory_kib",
                19 * 1024,
                19 * 1024,
                4 * 1024 * 1024,
                "at least 19456 (OWASP minimum)",
            )?,
            argon2_iterations: self.number("argon2_iterations", 2, 2, 100, "from 2 to 100")?,
            argon2_parallelism: self.number("argon2_parallelism", 1, 1, 64, "from 1 to 64")?,
            hash_concurrency: self.number(
                "hash_concurrency",
                hash_default,
                1,
                1024,
                "from 1 to 1024",
            )?,
            max_body_bytes: self.number(
                "max_body_bytes",
                64 * 1024,
                1024,
                64 * 1024 * 1024,
                "from 1024 to 67108864",
            )?,
            audit_retention: self.duration("audit_retention", Duration::from_secs(90 * DAY))?,
            ws_max_per_user: self.number("ws_max_per_user", 16, 1, 10_000, "from 1 to 10000")?,
            rate_limits: RateLimits {
                login: self.limit("rate_limit_login", "10/min")?,
                login_ip: self.limit("rate_limit_login_ip", "30/min")?,
                register_ip: self.limit("rate_limit_register", "10/hour")?,
                refresh: self.limit("rate_limit_refresh", "60/min")?,
                mail: self.limit("rate_limit_mail", "5/hour")?,
                mail_ip: self.limit("rate_limit_mail_ip", "20/hour")?,
                write: self.limit("rate_limit_write", "60/min")?,
                write_ip: self.limit("rate_limit_write_ip", "300/min")?,
            },
        };
        Ok(cfg)
    }

    /// The effective configuration as `key = value` lines, secrets masked.
    pub fn describe(&self, cfg: &Config) -> String {
        let mut out = String::new();
        for (key, secret) in KEYS {
            let value = match self.get(key) {
                Some(r) if *secret => mask(key, &r.value),
                Some(r) => r.value.clone(),
                None => effective_default(cfg, key),
            };
            out.push_str(&format!("{key} = {value:?}\n"));
        }
        out
    }
}

/// A duration as an operator writes it: the largest unit that divides it (`90d`, `15m`).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() != 0 || s == 0 {
        return humantime::format_duration(d).to_string();
    }
    for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s % secs == 0 {
            return format!("{}{unit}", s / secs);
        }
    }
    format!("{s}s")
}

/// Masks a secret. In URLs only what may be a credential is hidden: the password of the
/// user info and the values of the query (SMTP and PostgreSQL take passwords there);
/// scheme, user, host, port and path (a SQLite file, a database name) stay readable.
/// Other secrets vanish entirely.
fn mask(key: &str, value: &str) -> String {
    if !matches!(key, "database_url" | "redis_url" | "mailer") {
        return "********".to_string();
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return value.to_string(); // `log`, `file:DIR`
    };
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:****@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let query = query.map(|q| {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if matches!(k, "tls" | "sslmode") => format!("{k}={v}"),
                Some((k, _)) => format!("{k}=****"),
                None => pair.to_string(),
            })
            .collect();
        format!("?{}", pairs.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}

fn effective_default(cfg: &Config, key: &str) -> String {
    let d = format_duration;
    match key {
        "listen" => cfg.listen.clone(),
        "database_url" => match &cfg.database_url {
            DatabaseUrl::Sqlite { path } => format!("sqlite://{path}"),
            DatabaseUrl::Postgres(_) => "postgres://****".into(),
        },
        "dialect" => cfg.dialect.as_str().into(),
        "redis_prefix" => cfg.redis_prefix.clone(),
        "public_url" => cfg.public_url.clone(),
        "jwt_alg" => cfg.jwt_alg.as_str().into(),
        "issuer" => cfg.issuer.clone(),
        "audience" => cfg.audience.clone(),
        "access_ttl" => d(cfg.access_ttl),
        "refresh_ttl" => d(cfg.refresh_ttl),
        "remember_me_ttl" => d(cfg.remember_me_ttl),
        "session_max_age" => d(cfg.session_max_age),
        "refresh_rotation" => cfg.refresh_rotation.to_string(),
        "refresh_reuse_grace" => d(cfg.refresh_reuse_grace),
        "lockout_threshold" => cfg.lockout_threshold.to_string(),
        "lockout_duration" => d(cfg.lockout_duration),
        "lockout_window" => d(cfg.lockout_window),
        "lockout_scope" => match cfg.lockout_scope {
            LockoutScope::Account => "account".into(),
            LockoutScope::AccountIp => "account_ip".into(),
        },
        "rate_limit" => if cfg.rate_limit { "on" } else { "off" }.into(),
        "registration" => if cfg.registration_open {
            "open"
        } else {
            "closed"
        }
        .into(),
        "require_email_verification" => cfg.require_email_verification.to_string(),
        "mailer" => "log".into(),
        "mail_from" => cfg.mail_from.clone(),
        "verification_ttl" => d(cfg.verification_ttl),
        "reset_ttl" => d(cfg.reset_ttl),
        "trusted_proxies" => cfg
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(","),
        "log_format" => match cfg.log_format {
            LogFormat::Pretty => "pretty".into(),
            LogFormat::Json => "json".into(),
        },
        "default_tier" => cfg.default_tier.to_string(),
        "argon2_memory_kib" => cfg.argon2_memory_kib.to_string(),
        "argon2_iterations" => cfg.argon2_iterations.to_string(),
        "argon2_parallelism" => cfg.argon2_parallelism.to_string(),
        "hash_concurrency" => cfg.hash_concurrency.to_string(),
        "max_body_bytes" => cfg.max_body_bytes.to_string(),
        "audit_retention" => d(cfg.audit_retention),
        "ws_max_per_user" => cfg.ws_max_per_user.to_string(),
        "rate_limit_login" => cfg.rate_limits.login.to_string(),
        "rate_limit_login_ip" => cfg.rate_limits.login_ip.to_string(),
        "rate_limit_register" => cfg.rate_limits.register_ip.to_string(),
        "rate_limit_refresh" => cfg.rate_limits.refresh.to_string(),
        "rate_limit_mail" => cfg.rate_limits.mail.to_string(),
        "rate_limit_mail_ip" => cfg.rate_limits.mail_ip.to_string(),
        "rate_limit_write" => cfg.rate_limits.write.to_string(),
        "rate_limit_write_ip" => cfg.rate_limits.write_ip.to_string(),
        _ => "(unset)".into(),
    }
}

impl Config {
    /// Loads the configuration the way the binary does: optional file, then the process
    /// environment.
    pub fn load(file: Option<&Path>) -> Result<(Config, Sources), ConfigError> {
        let mut sources = Sources::default();
        if let Some(path) = file {
            sources = sources.with_file(path)?;
        }
        let sources = sources.with_env(std::env::vars());
        let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
        let cfg = sources.build(tty)?;
        Ok((cfg, sources))
    }

    pub fn access_ttl_chrono(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.access_ttl).unwrap_or(chrono::Duration::minutes(15))
    }
}

impl Config {
    /// Settings that are allowed but probably not what the operator meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match (self.jwt_alg, &self.jwt_secret) {
            (JwtAlg::HS256, Some(s)) if s.expose_secret().len() < 32 => {
                w.push("TRADEAUTH_JWT_SECRET is shorter than 32 characters".to_string())
            }
            (JwtAlg::HS256, _) | (_, None) => {}
            (_, Some(_)) => w.push(format!(
                "TRADEAUTH_JWT_SECRET is ignored: TRADEAUTH_JWT_ALG is {}",
                self.jwt_alg.as_str()
            )),
        }
        w
    }

    pub fn mailer_is_log(&self) -> bool {
        self.mailer.expose_secret() == "log"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masking_hides_credentials_and_keeps_the_rest_readable() {
        use super::mask;
        for (key, raw, shown) in [
            (
                "database_url",
                "sqlite:///var/lib/tradeauth/t.db",
                "sqlite:///var/lib/tradeauth/t.db",
            ),
            (
                "database_url",
                "sqlite://tradeauth.db",
                "sqlite://tradeauth.db",
            ),
            (
                "database_url",
                "postgres://app:s3cret@db.internal:5432/auth?sslmode=require&password=x",
                "postgres://app:****@db.internal:5432/auth?sslmode=require&password=****",
            ),
            (
                "redis_url",
                "redis://:hunter2@cache:6379/0",
                "redis://:****@cache:6379/0",
            ),
            (
                "redis_url",
                "redis://127.0.0.1:6379",
                "redis://127.0.0.1:6379",
            ),
            (
                "mailer",
                "smtp://mailer:pw@smtp.example.com:587?tls=required",
                "smtp://mailer:****@smtp.example.com:587?tls=required",
            ),
            ("mailer", "file:/tmp/mails", "file:/tmp/mails"),
            ("jwt_secret", "abc", "********"),
        ] {
            assert_eq!(mask(key, raw), shown, "{raw}");
        }
    }

    use super::*;

    #[test]
    fn defaults_follow_the_dialect_and_env_wins() {
        let c = Sources::default().build(false).unwrap();
        assert_eq!(c.access_ttl, Duration::from_secs(900));
        assert!(c.refresh_rotation);
        let c = Sources::default()
            .set("dialect", "stratify")
            .build(false)
            .unwrap();
        assert!(!c.refresh_rotation);
        assert!(c.require_email_verification);
        let c = Sources::default()
            .set("dialect", "stratify")
            .set("refresh_rotation", "true")
            .build(false)
            .unwrap();
        assert!(
            c.refresh_rotation,
            "explicit configuration wins over the dialect"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Sources::default()
            .with_env([("TRADEAUTH_ACCESS_TTL".to_string(), "soon".to_string())])
            .build(false)
            .unwrap_err();
        assert!(e.to_string().contains("TRADEAUTH_ACCESS_TTL"), "{e}");
        let e = Sources::default()
            .set("database_url", "mysql://x")
            .build(false)
            .unwrap_err();
        assert!(e.to_string().contains("unknown scheme"), "{e}");
        let e = Sources::default()
            .set("jwt_alg", "HS256")
            .build(false)
            .unwrap_err();
        assert!(e.to_string().contains("TRADEAUTH_JWT_SECRET"), "{e}");
    }

    #[test]
    fn an_empty_variable_does_not_wipe_the_file() {
        let dir = std::env::temp_dir().join(format!("ta-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "access_ttl = \"5m\"\n").unwrap();
        let c = Sources::default()
            .with_file(&file)
            .unwrap()
            .with_env([("TRADEAUTH_ACCESS_TTL".to_string(), "".to_string())])
            .build(false)
            .unwrap();
        assert_eq!(c.access_ttl, Duration::from_secs(300));
    }

    #[test]
    fn durations_print_as_written() {
        assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
        assert_eq!(format_duration(Duration::from_secs(900)), "15m");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(format_duration(Duration::from_secs(10)), "10s");
    }

    #[test]
    fn redis_tls_is_accepted_but_never_unverified() {
        let c = Sources::default()
            .set("redis_url", "rediss://h:6380")
            .build(false)
            .unwrap();
        assert!(c.redis_url.is_some());
        let e = Sources::default()
            .set("redis_url", "rediss://h:6380/#insecure")
            .build(false)
            .unwrap_err();
        assert!(e.to_string().contains("verifies the certificate"), "{e}");
        let e = Sources::default()
            .set("redis_url", "http://h:6380")
            .build(false)
            .unwrap_err();
        assert!(e.to_string().contains("rediss://"), "{e}");
    }

    #[test]
    fn secrets_are_masked() {
        let s = Sources::default()
            .set("admin_email", "root@example.com")
            .set("admin_password", "hunter2hunter2")
            .set("database_url", "postgres://u:pw@db/x");
        let c = s.build(false).unwrap();
        let text = s.describe(&c);
        assert!(!text.contains("hunter2"));
        assert!(!text.contains(":pw@"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
