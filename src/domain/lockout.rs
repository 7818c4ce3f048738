//! Lockout rules (seed 002): `threshold` failed logins within `window` lock the account for
//! `duration`. The counter lives in the store (it must be durable and exact under
//! concurrency); this module only names the keys and reads the counter's state.
//!
//! An attempt is reserved before its password is evaluated, so however many guesses
//! arrive at once, no more than the failures still allowed are evaluated together: with
//! `f` failures counted, at most `threshold − f` attempts are in flight. An attempt beyond
//! that is neither refused nor evaluated: it waits for one in flight to end, since a
//! correct password must never be locked out by other correct ones arriving with it.

use chrono::{DateTime, Utc};
use std::net::IpAddr;

/// Which attempts share one failure counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutScope {
    /// One counter per account (seed 002's behaviour).
    Account,
    /// One counter per account and client IP, so nobody can lock a victim out from afar.
    AccountIp,
}

/// The lockout policy in force.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window: chrono::Duration,
    pub duration: chrono::Duration,
    pub scope: LockoutScope,
}

/// The counter key of a login attempt. Known accounts are keyed by id (so a username and
/// an email of one account share a counter); unknown identifiers by their lower-cased
/// text, so a 423 reveals nothing about which accounts exist.
pub fn counter_key(
    scope: LockoutScope,
    user_id: Option<&str>,
    identifier: &str,
    ip: IpAddr,
) -> String {
    let base = match user_id {
        Some(id) => format!("user:{id}"),
        None => format!("ident:{}", identifier.trim().to_lowercase()),
    };
    match scope {
        LockoutScope::Account => base,
        LockoutScope::AccountIp => format!("{base}|ip:{}", super::network::client_bucket(ip)),
    }
}

/// The state of a counter after an attempt asked to be reserved against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptSlot {
    /// The attempt is reserved and may evaluate the password.
    Allowed,
    /// The counter is locked until the given time; no password is evaluated.
    Locked { until: DateTime<Utc> },
    /// As many attempts are in flight as failures are still allowed: ask again once one
    /// of them has ended.
    Busy,
}

/// In-flight reservations older than this are taken as abandoned (a process that died
/// mid-attempt), so they cannot hold an account's logins back for longer.
pub const RESERVATION_TTL: chrono::Duration = chrono::Duration::seconds(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            counter_key(LockoutScope::Account, Some("u1"), "Bob", ip),
            "user:u1"
        );
        assert_eq!(
            counter_key(LockoutScope::Account, None, " Bob ", ip),
            "ident:bob"
        );
        assert_eq!(
            counter_key(LockoutScope::AccountIp, None, "bob", ip),
            "ident:bob|ip:10.1.2.3"
        );
    }
}
