//! Password hashing: Argon2id on tokio's blocking pool, behind a semaphore.
//!
//! The semaphore bounds how many hashes run at once (default: cores − 1), so a flood of
//! logins queues here instead of taking every core from token checks. Unknown users are
//! verified against a dummy hash made with the same parameters, so the time of a login
//! does not tell whether the account exists.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
    /// Hashes waiting for a permit (a metric).
    queue: prometheus::IntGauge,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses other parameters than the configured ones.
    pub needs_rehash: bool,
}

impl Hasher {
    pub fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
        queue: prometheus::IntGauge,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = hash_blocking(&params, "tradeauth dummy password")?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy: dummy.into(),
            queue,
        })
    }

    fn argon(params: &Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
    }

    /// How many hashes are waiting for a permit (a metric).
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    async fn permit(&self) -> anyhow::Result<tokio::sync::SemaphorePermit<'_>> {
        self.queue.inc();
        let permit = self.permits.acquire().await;
        self.queue.dec();
        Ok(permit?)
    }

    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let _permit = self.permit().await?;
        let params = self.params.clone();
        let pw = password.clone();
        tokio::task::spawn_blocking(move || hash_blocking(&params, pw.expose_secret())).await?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no
    /// stored hash (unknown user) — the answer is then always `ok: false`.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> anyhow::Result<Verified> {
        let _permit = self.permit().await?;
        let params = self.params.clone();
        let known = stored.is_some();
        let hash = stored
            .map(str::to_string)
            .unwrap_or_else(|| self.dummy.to_string());
        let pw = password.clone();
        tokio::task::spawn_blocking(move || {
            let parsed =
                PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
            let ok = Self::argon(&params)
                .verify_password(pw.expose_secret().as_bytes(), &parsed)
                .is_ok();
            // Only the cost parameters matter: a parsed hash also carries its output
            // length, which the configured `Params` leave at the default.
            let needs_rehash = parsed.algorithm.as_str() != "argon2id"
                || Params::try_from(&parsed)
                    .map(|p| {
                        (p.m_cost(), p.t_cost(), p.p_cost())
                            != (params.m_cost(), params.t_cost(), params.p_cost())
                    })
                    .unwrap_or(true);
            Ok(Verified {
                ok: ok && known,
                needs_rehash,
            })
        })
        .await?
    }
}

fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Hasher::argon(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))
}
