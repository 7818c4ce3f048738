//! Session and refresh-token rules: which presented generation may refresh, which is the
//! grace-window retry, which is reuse.
//!
//! Rotation is tracked by a per-session generation counter, never by timestamps: the
//! token of generation `g` is valid while the session is at `g`; the token of `g - 1` is
//! accepted (without a new rotation) for `grace` after the session moved to `g`.

use chrono::{DateTime, Duration, Utc};

/// What the store knows about a session, as far as a refresh decision needs it.
#[derive(Debug, Clone)]
pub struct SessionState {
    pub generation: i64,
    /// When the session moved to its current generation (None: never rotated).
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    /// When the current refresh token expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// The session's absolute end, whatever the refresh activity.
    pub absolute_expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token of generation `presented`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The current token: rotate (or, with rotation off, just issue an access token).
    Current,
    /// The immediately previous token inside the grace window: hand out the current one.
    GraceRetry,
    /// An older token, or the previous one after the window: revoke the session.
    Reuse,
    /// Revoked, expired or an impossible generation.
    Invalid,
}

impl SessionState {
    pub fn decide(&self, presented: i64, now: DateTime<Utc>, grace: Duration) -> RefreshDecision {
        if self.revoked || now >= self.absolute_expires_at {
            return RefreshDecision::Invalid;
        }
        if presented == self.generation {
            if now >= self.refresh_expires_at {
                return RefreshDecision::Invalid;
            }
            return RefreshDecision::Current;
        }
        if presented > self.generation || presented < 0 {
            return RefreshDecision::Invalid;
        }
        if presented == self.generation - 1 {
            if let Some(at) = self.rotated_at {
                if now - at <= grace && now < self.refresh_expires_at {
                    return RefreshDecision::GraceRetry;
                }
            }
        }
        RefreshDecision::Reuse
    }
}

/// The expiry of a refresh token issued at `now`: its lifetime, capped by the session's
/// absolute end.
pub fn refresh_expiry(
    now: DateTime<Utc>,
    lifetime: Duration,
    absolute_end: DateTime<Utc>,
) -> DateTime<Utc> {
    (now + lifetime).min(absolute_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(generation: i64, rotated_secs_ago: Option<i64>, now: DateTime<Utc>) -> SessionState {
        SessionState {
            generation,
            rotated_at: rotated_secs_ago.map(|s| now - Duration::seconds(s)),
            revoked: false,
            refresh_expires_at: now + Duration::days(7),
            absolute_expires_at: now + Duration::days(90),
        }
    }

    #[test]
    fn decisions() {
        let now = Utc::now();
        let g = Duration::seconds(10);
        assert_eq!(
            state(3, Some(1), now).decide(3, now, g),
            RefreshDecision::Current
        );
        assert_eq!(
            state(3, Some(1), now).decide(2, now, g),
            RefreshDecision::GraceRetry
        );
        assert_eq!(
            state(3, Some(11), now).decide(2, now, g),
            RefreshDecision::Reuse
        );
        assert_eq!(
            state(3, Some(1), now).decide(1, now, g),
            RefreshDecision::Reuse
        );
        assert_eq!(
            state(3, Some(1), now).decide(4, now, g),
            RefreshDecision::Invalid
        );
        let mut s = state(3, Some(1), now);
        s.revoked = true;
        assert_eq!(s.decide(3, now, g), RefreshDecision::Invalid);
        let mut s = state(0, None, now);
        s.refresh_expires_at = now - Duration::seconds(1);
        assert_eq!(s.decide(0, now, g), RefreshDecision::Invalid);
    }

    #[test]
    fn expiry_is_capped() {
        let now = Utc::now();
        let end = now + Duration::days(1);
        assert_eq!(refresh_expiry(now, Duration::days(7), end), end);
    }
}

/// One login on one device.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: uuid::Uuid,
    pub user_id: super::UserId,
    pub generation: i64,
    pub remember_me: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Session {
    pub fn state(&self) -> SessionState {
        SessionState {
            generation: self.generation,
            rotated_at: self.rotated_at,
            revoked: self.revoked_at.is_some(),
            refresh_expires_at: self.refresh_expires_at,
            absolute_expires_at: self.absolute_expires_at,
        }
    }
}
