//! TOTP two-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s steps, ±1 step of
//! clock drift). A code is accepted once per time step — the enabling code included — and
//! ten single-use recovery codes, stored hashed, stand in for a lost device.

use super::Audit;
use super::{Caller, Error, RequestContext, Result, Service};
use crate::domain::AuditKind;
use crate::domain::User;
use ring::digest::{digest, SHA256};
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

const STEP: u64 = 30;
const DIGITS: usize = 6;
const RECOVERY_CODES: usize = 10;

fn totp(secret: &[u8], account: &str) -> Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        1,
        STEP,
        secret.to_vec(),
        Some("tradeauth".into()),
        account.to_string(),
    )
    .map_err(|e| Error::Internal(format!("totp: {e}")))
}

/// The time step whose code `code` is, within ±1 step of now.
fn matching_step(t: &TOTP, code: &str) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = chrono::Utc::now().timestamp() as u64;
    [now - STEP, now, now + STEP].into_iter().find_map(|at| {
        let expected = t.generate(at);
        bool::from(expected.as_bytes().ct_eq(code.as_bytes())).then_some((at / STEP) as i64)
    })
}

fn recovery_hash(code: &str) -> Vec<u8> {
    let normal: String = code
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| *c != '-')
        .collect();
    digest(&SHA256, normal.as_bytes()).as_ref().to_vec()
}

/// 24 characters of a 31-letter alphabet (about 119 bits), in six groups of four. ASVS
/// 6.5.2 allows a plain hash for lookup secrets of 112 bits or more; below that it asks
/// for a salted password hash.
fn new_recovery_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let chars: Vec<char> = (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

impl Service {
    /// Starts TOTP enrolment: a new secret, waiting for a code from it.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn setup_totp(&self, caller: &Caller) -> Result<(String, String)> {
        caller.require_session()?;
        let user = self.me(caller).await?;
        if self.store.mfa_state(user.id).await?.enabled {
            return Err(Error::MfaAlreadyEnabled);
        }
        let secret: [u8; 20] = rand::random();
        self.store.set_mfa_pending(user.id, &secret).await?;
        let t = totp(&secret, user.email.as_str())?;
        // Spell out the parameters, even the defaults: some authenticators assume others.
        let mut url = t.get_url();
        for (k, v) in [("algorithm", "SHA1"), ("digits", "6"), ("period", "30")] {
            if !url.contains(&format!("{k}=")) {
                url.push_str(&format!("&{k}={v}"));
            }
        }
        Ok((t.get_secret_base32(), url))
    }

    /// Turns TOTP on with a code from the pending secret; returns the recovery codes.
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn enable_totp(
        &self,
        caller: &Caller,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<String>> {
        caller.require_session()?;
        let user = self.me(caller).await?;
        let state = self.store.mfa_state(user.id).await?;
        if state.enabled {
            return Err(Error::MfaAlreadyEnabled);
        }
        let pending = state
            .pending
            .ok_or_else(|| Error::field("code", "call /auth/mfa/totp/setup first"))?;
        let step = matching_step(&totp(&pending, user.email.as_str())?, code)
            .ok_or(Error::InvalidMfaCode { at_login: false })?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<Vec<u8>> = codes.iter().map(|c| recovery_hash(c)).collect();
        if !self.store.enable_mfa(user.id, step, &hashes).await? {
            return Err(Error::MfaAlreadyEnabled);
        }
        self.user_cache.forget(user.id);
        self.audit(
            Audit::new(AuditKind::MfaEnabled)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        Ok(codes)
    }

    /// Turns TOTP off: needs the password and a current code (or a recovery code).
    #[tracing::instrument(skip_all, fields(user_id = %caller.user_id))]
    pub async fn disable_totp(
        &self,
        caller: &Caller,
        password: SecretString,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        caller.require_session()?;
        let mut details = BTreeMap::new();
        if password.expose_secret().is_empty() {
            details.insert("password".into(), "password is required".into());
        }
        if code.is_empty() {
            details.insert("code".into(), "code is required".into());
        }
        if !details.is_empty() {
            return Err(Error::fields(details));
        }
        let user = self.me(caller).await?;
        let stored = self.store.password_hash(user.id).await?;
        if !self.hasher.verify(&password, stored.as_deref()).await?.ok {
            return Err(Error::InvalidPassword);
        }
        if !self.store.mfa_state(user.id).await?.enabled {
            return Err(Error::field("code", "TOTP is not enabled"));
        }
        if !self.second_factor_ok(&user, Some(code), Some(code)).await? {
            return Err(Error::InvalidMfaCode { at_login: false });
        }
        self.store.disable_mfa(user.id).await?;
        self.user_cache.forget(user.id);
        self.audit(
            Audit::new(AuditKind::MfaDisabled)
                .user(user.id)
                .actor(user.id)
                .ctx(ctx),
        )
        .await;
        Ok(())
    }

    /// Checks a TOTP code (once per step) or a recovery code (once).
    pub(super) async fn second_factor_ok(
        &self,
        user: &User,
        totp_code: Option<&str>,
        recovery: Option<&str>,
    ) -> Result<bool> {
        if let Some(code) = totp_code.filter(|c| !c.trim().is_empty()) {
            let state = self.store.mfa_state(user.id).await?;
            if let Some(secret) = state.secret {
                if let Some(step) = matching_step(&totp(&secret, user.email.as_str())?, code) {
                    return Ok(self.store.use_totp_step(user.id, step).await?);
                }
            }
        }
        if let Some(code) = recovery.filter(|c| !c.trim().is_empty()) {
            return Ok(self
                .store
                .use_recovery_code(user.id, &recovery_hash(code), chrono::Utc::now())
                .await?);
        }
        Ok(false)
    }
}
