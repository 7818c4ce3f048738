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
    /// Sequence numbers skipped when `last_seq` advanced: PostgreSQL hands numbers out
    /// before commit, so a row with a lower one can become visible after a higher one was
    /// read (or never, if its transaction rolled back). Each range is asked for again until
    /// it is [`GAP_LIFETIME`] old.
    gaps: Vec<Gap>,
}

#[derive(Debug, Clone, Copy)]
struct Gap {
    from: i64,
    to: i64,
    /// When it was noticed (Unix seconds).
    noticed: i64,
}

/// How long a skipped sequence number is looked for: longer than any transaction that
/// writes revocations stays open (a pool wait of 3 s, statement and lock timeouts).
pub const GAP_LIFETIME_SECS: i64 = 60;

/// At most this many open gaps (the oldest go first): bounded memory, bounded queries.
const MAX_GAPS: usize = 64;

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
    /// (The load at start: numbers missing there are pruned rows, not late commits.)
    pub fn apply(&self, rows: &[RevocationRow]) -> Vec<Uuid> {
        self.apply_rows(rows, None)
    }

    /// Applies rows read in order of `seq` after [`last_seq`](Self::last_seq), noting the
    /// numbers they skip as gaps to ask for again ([`open_gaps`](Self::open_gaps)).
    pub fn apply_noting_gaps(&self, rows: &[RevocationRow], now: DateTime<Utc>) -> Vec<Uuid> {
        self.apply_rows(rows, Some(now.timestamp()))
    }

    /// The gaps still looked for, as inclusive ranges of `seq`; older ones are forgotten.
    pub fn open_gaps(&self, now: DateTime<Utc>) -> Vec<(i64, i64)> {
        let oldest = now.timestamp() - GAP_LIFETIME_SECS;
        let mut inner = self.inner.write().expect("revocation lock poisoned");
        inner.gaps.retain(|g| g.noticed >= oldest);
        inner.gaps.iter().map(|g| (g.from, g.to)).collect()
    }

    fn apply_rows(&self, rows: &[RevocationRow], noting_gaps_at: Option<i64>) -> Vec<Uuid> {
        let mut inner = self.inner.write().expect("revocation lock poisoned");
        let mut new_sids = Vec::new();
        for row in rows {
            if let Some(noticed) = noting_gaps_at {
                if row.seq > inner.last_seq + 1 {
                    if inner.gaps.len() == MAX_GAPS {
                        inner.gaps.remove(0);
                    }
                    let from = inner.last_seq + 1;
                    inner.gaps.push(Gap {
                        from,
                        to: row.seq - 1,
                        noticed,
                    });
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64) -> RevocationRow {
        RevocationRow {
            seq,
            what: Revoked::Jti(Uuid::new_v4()),
            expires_at: Utc::now() + chrono::Duration::minutes(5),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn skipped_numbers_are_looked_for_until_they_are_a_minute_old() {
        let list = RevocationList::default();
        let now = Utc::now();
        list.apply_noting_gaps(&[row(1), row(2), row(5), row(9)], now);
        assert_eq!(list.last_seq(), 9);
        assert_eq!(list.open_gaps(now), vec![(3, 4), (6, 8)]);
        // A late commit fills a gap: applied, last_seq unchanged.
        let late = row(3);
        list.apply_noting_gaps(std::slice::from_ref(&late), now);
        assert!(list.contains(&late.what));
        assert_eq!(list.last_seq(), 9);
        let later = now + chrono::Duration::seconds(GAP_LIFETIME_SECS + 1);
        assert!(list.open_gaps(later).is_empty());
    }

    #[test]
    fn the_load_at_start_notes_no_gaps_and_gaps_stay_bounded() {
        let list = RevocationList::default();
        let now = Utc::now();
        list.apply(&[row(10), row(20)]);
        assert!(list.open_gaps(now).is_empty());
        let rows: Vec<_> = (0..200).map(|i| row(22 + 2 * i)).collect();
        list.apply_noting_gaps(&rows, now);
        let gaps = list.open_gaps(now);
        assert_eq!(gaps.len(), MAX_GAPS);
        // The newest are kept.
        assert_eq!(gaps.last(), Some(&(419, 419)));
    }
}
