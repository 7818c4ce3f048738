//! From raw values to a [`Config`]: each field read through its row of the key table,
//! then the rules that span keys.

use super::keys::{self, Key};
use super::parse::rp_id_covers;
use super::{Config, ConfigError, RateLimits, Sources};
use crate::tokens::JwtAlg;
use secrecy::ExposeSecret;

/// Reads rows and remembers which (a test holds that list against [`keys::KEYS`]).
pub(super) struct Reader<'a> {
    /// The raw values.
    sources: &'a Sources,
    /// The names of the keys read so far, in order.
    pub read: Vec<&'static str>,
}

impl<'a> Reader<'a> {
    pub fn new(sources: &'a Sources) -> Self {
        Self {
            sources,
            read: Vec::new(),
        }
    }

    fn get<T, C>(&mut self, key: &Key<T, C>, cx: &C) -> Result<T, ConfigError> {
        self.read.push(key.name);
        self.sources.read(key, cx)
    }

    /// Every field from its row; the defaults' context first.
    pub fn config(&mut self, stdout_is_terminal: bool) -> Result<Config, ConfigError> {
        use keys::*;
        let dialect = self.get(&DIALECT, &())?;
        let public_url = self.get(&PUBLIC_URL, &())?;
        let cx = Context {
            dialect,
            public_url,
            stdout_is_terminal,
        };
        Ok(Config {
            listen: self.get(&LISTEN, &cx)?,
            database_url: self.get(&DATABASE_URL, &cx)?,
            redis_url: self.get(&REDIS_URL, &cx)?,
            redis_prefix: self.get(&REDIS_PREFIX, &cx)?,
            dialect,
            public_url: cx.public_url.text.clone(),
            jwt_alg: self.get(&JWT_ALG, &cx)?,
            jwt_secret: self.get(&JWT_SECRET, &cx)?,
            issuer: self.get(&ISSUER, &cx)?,
            audience: self.get(&AUDIENCE, &cx)?,
            access_ttl: self.get(&ACCESS_TTL, &cx)?,
            refresh_ttl: self.get(&REFRESH_TTL, &cx)?,
            remember_me_ttl: self.get(&REMEMBER_ME_TTL, &cx)?,
            session_max_age: self.get(&SESSION_MAX_AGE, &cx)?,
            refresh_rotation: self.get(&REFRESH_ROTATION, &cx)?,
            refresh_reuse_grace: self.get(&REFRESH_REUSE_GRACE, &cx)?,
            lockout_threshold: self.get(&LOCKOUT_THRESHOLD, &cx)?,
            lockout_duration: self.get(&LOCKOUT_DURATION, &cx)?,
            lockout_window: self.get(&LOCKOUT_WINDOW, &cx)?,
            lockout_scope: self.get(&LOCKOUT_SCOPE, &cx)?,
            rate_limit: self.get(&RATE_LIMIT, &cx)?,
            registration_open: self.get(&REGISTRATION, &cx)?,
            require_email_verification: self.get(&REQUIRE_EMAIL_VERIFICATION, &cx)?,
            mailer: self.get(&MAILER, &cx)?,
            mail_from: self.get(&MAIL_FROM, &cx)?,
            verification_ttl: self.get(&VERIFICATION_TTL, &cx)?,
            reset_ttl: self.get(&RESET_TTL, &cx)?,
            trusted_proxies: self.get(&TRUSTED_PROXIES, &cx)?,
            log_format: self.get(&LOG_FORMAT, &cx)?,
            admin_email: self.get(&ADMIN_EMAIL, &cx)?,
            admin_password: self.get(&ADMIN_PASSWORD, &cx)?,
            default_tier: self.get(&DEFAULT_TIER, &cx)?,
            argon2_memory_kib: self.get(&ARGON2_MEMORY_KIB, &cx)?,
            argon2_iterations: self.get(&ARGON2_ITERATIONS, &cx)?,
            argon2_parallelism: self.get(&ARGON2_PARALLELISM, &cx)?,
            hash_concurrency: self.get(&HASH_CONCURRENCY, &cx)?,
            max_body_bytes: self.get(&MAX_BODY_BYTES, &cx)?,
            audit_retention: self.get(&AUDIT_RETENTION, &cx)?,
            ws_max_per_user: self.get(&WS_MAX_PER_USER, &cx)?,
            rate_limits: RateLimits {
                login: self.get(&RATE_LIMIT_LOGIN, &cx)?,
                login_ip: self.get(&RATE_LIMIT_LOGIN_IP, &cx)?,
                register_ip: self.get(&RATE_LIMIT_REGISTER, &cx)?,
                refresh: self.get(&RATE_LIMIT_REFRESH, &cx)?,
                mail: self.get(&RATE_LIMIT_MAIL, &cx)?,
                mail_ip: self.get(&RATE_LIMIT_MAIL_IP, &cx)?,
                write: self.get(&RATE_LIMIT_WRITE, &cx)?,
                write_ip: self.get(&RATE_LIMIT_WRITE_IP, &cx)?,
            },
            allowed_origins: self.get(&ALLOWED_ORIGINS, &cx)?,
            cookie_secure: self.get(&COOKIE_SECURE, &cx)?,
            webauthn_rp_id: self.get(&WEBAUTHN_RP_ID, &cx)?,
            webauthn_rp_name: self.get(&WEBAUTHN_RP_NAME, &cx)?,
            oidc_issuer: self.get(&OIDC_ISSUER, &cx)?,
            secret_key: self.get(&SECRET_KEY, &cx)?,
            signature_max_age: self.get(&SIGNATURE_MAX_AGE, &cx)?,
            signature_future_skew: self.get(&SIGNATURE_FUTURE_SKEW, &cx)?,
        })
    }
}

impl Sources {
    /// Parses every key into a [`Config`] and checks the rules that span keys.
    pub fn build(&self, stdout_is_terminal: bool) -> Result<Config, ConfigError> {
        let cfg = Reader::new(self).config(stdout_is_terminal)?;
        self.check_jwt(&cfg)?;
        self.check_admin(&cfg)?;
        self.check_rp_id(&cfg)?;
        Ok(cfg)
    }

    /// `TRADEAUTH_JWT_SECRET` belongs to HS256 and to nothing else, and it must be as
    /// long as the hash (RFC 8725 §3.5: keys with enough entropy; RFC 7518 §3.2: an
    /// HS256 key of at least 256 bits).
    fn check_jwt(&self, cfg: &Config) -> Result<(), ConfigError> {
        match (cfg.jwt_alg, &cfg.jwt_secret) {
            (JwtAlg::HS256, None) => {
                Err(self.err("jwt_secret", "is required when TRADEAUTH_JWT_ALG is HS256"))
            }
            (JwtAlg::HS256, Some(secret)) if secret.expose_secret().len() < 32 => Err(self.err(
                "jwt_secret",
                format!(
                    "is {} bytes long; HS256 needs a secret of at least 32 random bytes \
                         (RFC 8725 §3.5)",
                    secret.expose_secret().len()
                ),
            )),
            (JwtAlg::HS256, Some(_)) | (_, None) => Ok(()),
            (alg, Some(_)) => Err(self.err(
                "jwt_secret",
                format!(
                    "is set, but TRADEAUTH_JWT_ALG is {}: the secret is for HS256 only; \
                     unset it or choose HS256",
                    alg.as_str()
                ),
            )),
        }
    }

    fn check_admin(&self, cfg: &Config) -> Result<(), ConfigError> {
        if cfg.admin_email.is_some() == cfg.admin_password.is_some() {
            return Ok(());
        }
        let missing = match cfg.admin_email {
            Some(_) => "admin_password",
            None => "admin_email",
        };
        Err(self.err(
            missing,
            "ADMIN_EMAIL and ADMIN_PASSWORD must be set together",
        ))
    }

    /// WebAuthn: the RP ID must be the host of every allowed origin or a registrable
    /// suffix of it, or no browser would run a ceremony for it.
    fn check_rp_id(&self, cfg: &Config) -> Result<(), ConfigError> {
        let rp_id = &cfg.webauthn_rp_id;
        match cfg
            .allowed_origins
            .iter()
            .find(|o| !rp_id_covers(rp_id, o.host()))
        {
            None => Ok(()),
            Some(origin) => Err(self.err(
                "webauthn_rp_id",
                format!(
                    "{rp_id:?} is neither the host of the allowed origin {origin} nor a \
                     registrable suffix of it (see TRADEAUTH_ALLOWED_ORIGINS)"
                ),
            )),
        }
    }
}
