//! The in-process revocation list: revoked token ids (`jti`) and sessions (`sid`), each
//! until the last access token it could affect has expired.
//!
//! This is what makes a token check free of database round trips. The durable record is
//! the store's `revocations` table; every instance keeps this list in step with it by
//! applying its own revocations at once and polling the table for other writers' rows
//! (see `service::background`). A std `RwLock`: the critical sections are a hash lookup,
//! nothing async happens while it is held.

use super::{RevocationRow, Revoked};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::RwLock;
use uuid::Uuid;

#[derive(Default)]
struct Inner {
    jti: HashMap<Uuid, i64>,
    sid: HashMap<Uuid, i64>,
    /// The highest `seq` of the durable table applied here.
    last_seq: i64,
}

#[derive(Default)]
pub struct RevocationList {
    inner: RwLock<Inner>,
}

impl RevocationList {
    /// Whether a token with this `jti` and `sid` has been revoked.
    pub fn is_revoked(&self, jti: &Uuid, sid: &Uuid) -> bool {
        let inner = self.inner.read().expect("revocation lock poisoned");
        inner.jti.contains_key(jti) || inner.sid.contains_key(sid)
    }

    pub fn is_session_revoked(&self, sid: &Uuid) -> bool {
        self.inner
            .read()
            .expect("revocation lock poisoned")
            .sid
            .contains_key(sid)
    }

    pub fn insert(&self, what: Revoked, expires_at: DateTime<Utc>) {
        let mut inner = self.inner.write().expect("revocation lock poisoned");
        let until = expires_at.timestamp();
        match what {
            Revoked::Jti(id) => inner.jti.insert(id, until),
            Revoked::Sid(id) => inner.sid.insert(id, until),
        };
    }

    /// Applies rows read from the durable table; returns the sessions newly revoked here.
    pub fn apply(&self, rows: &[RevocationRow]) -> Vec<Uuid> {
        let mut inner = self.inner.write().expect("revocation lock poisoned");
        let mut new_sids = Vec::new();
        for row in rows {
            let until = row.expires_at.timestamp();
            match row.what {
                Revoked::Jti(id) => {
                    inner.jti.insert(id, until);
                }
                Revoked::Sid(id) => {
                    if inner.sid.insert(id, until).is_none() {
                        new_sids.push(id);
                    }
                }
            }
            inner.last_seq = inner.last_seq.max(row.seq);
        }
        new_sids
    }

    /// Whether this exact revocation is already applied here.
    pub fn contains(&self, what: &Revoked) -> bool {
        let inner = self.inner.read().expect("revocation lock poisoned");
        match what {
            Revoked::Jti(id) => inner.jti.contains_key(id),
            Revoked::Sid(id) => inner.sid.contains_key(id),
        }
    }

    pub fn last_seq(&self) -> i64 {
        self.inner
            .read()
            .expect("revocation lock poisoned")
            .last_seq
    }

    /// Drops entries whose tokens have all expired.
    pub fn prune(&self, now: DateTime<Utc>) {
        let now = now.timestamp();
        let mut inner = self.inner.write().expect("revocation lock poisoned");
        inner.jti.retain(|_, until| *until > now);
        inner.sid.retain(|_, until| *until > now);
    }
}
