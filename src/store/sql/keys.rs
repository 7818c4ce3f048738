//! Signing keys and named secrets: the `signing_keys` and `secrets` tables ([`KeyStore`]).

use super::backend::{Backend, Col, QueryExt};
use super::{commit, SqlStore};
use crate::store::{from_ms, ms, KeyStore, StoreError, StoreResult};
use crate::tokens::{JwtAlg, KeyState, StoredKey};
use async_trait::async_trait;
use chrono::Utc;

/// A key from a row of `signing_keys`.
fn key_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<StoredKey> {
    let alg: String = row.col("alg")?;
    let state: String = row.col("state")?;
    let jwk: String = row.col("public_jwk")?;
    let retire: Option<i64> = row.col("retire_at")?;
    Ok(StoredKey {
        kid: row.col("kid")?,
        alg: JwtAlg::parse(&alg).ok_or_else(|| StoreError::Other(format!("bad alg {alg}")))?,
        private_der: row.col("private_der")?,
        public_jwk: serde_json::from_str(&jwk).map_err(|e| StoreError::Other(e.to_string()))?,
        state: KeyState::parse(&state)
            .ok_or_else(|| StoreError::Other(format!("bad key state {state}")))?,
        created_at: from_ms(row.col("created_at")?),
        retire_at: retire.map(from_ms),
    })
}

#[async_trait]
impl<DB: Backend> KeyStore for SqlStore<DB> {
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query::<DB>(
            "SELECT kid, alg, private_der, public_jwk, state, created_at, retire_at \
             FROM signing_keys ORDER BY created_at",
        )
        .all(&mut *self.writer().await?)
        .await?;
        rows.iter().map(key_from_row::<DB>).collect()
    }

    async fn save_signing_keys(&self, keys: &[StoredKey]) -> StoreResult<()> {
        // Retirements first, then the active key, then the standby: at no step are there
        // two active or two standby keys (the unique indexes of migration 0005), whatever
        // order the caller listed them in.
        let rank = |k: &&StoredKey| match k.state {
            KeyState::Retired => 0,
            KeyState::Active => 1,
            KeyState::Standby => 2,
        };
        let mut keys: Vec<&StoredKey> = keys.iter().collect();
        keys.sort_by_key(rank);
        let mut tx = self.begin().await?;
        for k in keys {
            sqlx::query::<DB>(
                "INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, \
                 retire_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kid) DO UPDATE SET \
                 state = excluded.state, retire_at = excluded.retire_at",
            )
            .arg(k.kid.as_str())
            .arg(k.alg.as_str())
            .arg(k.private_der.as_slice())
            .arg(k.public_jwk.to_string())
            .arg(k.state.as_str())
            .arg(ms(k.created_at))
            .arg(k.retire_at.map(ms))
            .run(&mut tx)
            .await?;
        }
        sqlx::query::<DB>("DELETE FROM signing_keys WHERE state = 'retired' AND retire_at < $1")
            .arg(ms(Utc::now()))
            .run(&mut tx)
            .await?;
        commit(tx).await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        let mut db = self.writer().await?;
        sqlx::query::<DB>(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .arg(name)
        .arg(fresh)
        .run(&mut db)
        .await?;
        sqlx::query::<DB>("SELECT value FROM secrets WHERE name = $1")
            .arg(name)
            .one(&mut db)
            .await?
            .col("value")
    }

    async fn find_secret(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        sqlx::query::<DB>("SELECT value FROM secrets WHERE name = $1")
            .arg(name)
            .optional(&mut *self.writer().await?)
            .await?
            .map(|row| row.col("value"))
            .transpose()
    }

    async fn put_secret(&self, name: &str, value: &[u8]) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .arg(name)
        .arg(value)
        .run(&mut *self.writer().await?)
        .await
        .map(|_| ())
    }
}
