//! Cursor pages of every list (`?cursor=&limit=`): the cursor is the last row's id, opaque
//! to clients (base64url), and one extra row read tells whether a next page exists.

use super::{Error, Result};
use crate::store::Page;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use uuid::Uuid;

/// A page of results and the cursor of the next one.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A requested page, parsed from `?cursor=&limit=`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub after: Option<Uuid>,
    pub limit: u32,
}

impl PageRequest {
    pub const DEFAULT: u32 = 50;
    pub const MAX: u32 = 200;

    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<Self> {
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                B64.decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .and_then(|s| Uuid::parse_str(&s).ok())
                    .ok_or_else(|| Error::field("cursor", "cursor is not valid"))?,
            ),
        };
        let limit = match limit {
            None => Self::DEFAULT,
            Some(n) if n < 1 => return Err(Error::field("limit", "limit must be at least 1")),
            Some(n) => n.min(Self::MAX as i64) as u32,
        };
        Ok(Self { after, limit })
    }

    /// The store page: one extra row tells whether a next page exists.
    pub(crate) fn store_page(&self) -> Page {
        Page {
            after: self.after,
            limit: self.limit + 1,
        }
    }

    pub(crate) fn finish<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> Uuid) -> Paged<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| B64.encode(id(r).to_string()))
        } else {
            None
        };
        Paged {
            items: rows,
            next_cursor,
        }
    }
}
