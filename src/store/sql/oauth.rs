//! The OAuth provider's tables ([`OAuthStore`]): `oauth_clients`, `oauth_codes`,
//! `oauth_sessions` and `oauth_consents`. Lists are JSON arrays in text columns.

use super::backend::{Backend, Col, QueryExt};
use super::revocations::REVOKE_SID;
use super::{commit, uuid_col, SqlStore};
use crate::domain::fapi::{AuthMethod, ClientFapi};
use crate::domain::oauth::{ClientType, GrantType, OAuthClient, Scopes};
use crate::domain::{Session, Tier, UserId};
use crate::store::oauth::{AuthCode, Consent, OAuthSessionLink, OAuthStore, Redemption};
use crate::store::{from_ms, ms, StoreError, StoreResult};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

const CLIENT_COLS: &str = "client_id, name, secret_hash, client_type, redirect_uris, \
     post_logout_redirect_uris, grant_types, scopes, max_tier, first_party, id_token_alg, \
     created_at, updated_at, backchannel_logout_uri, token_endpoint_auth_method, jwks, \
     jwks_uri, require_pushed_authorization_requests, dpop_bound_access_tokens";

const CODE_COLS: &str = "hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge, \
     auth_time, amr, created_at, expires_at, dpop_jkt";

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(s).map_err(|e| StoreError::Other(format!("bad list in {what}: {e}")))
}

fn client_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<OAuthClient> {
    let list = |c: &str| -> StoreResult<Vec<String>> {
        let s: String = row.col(c)?;
        parse_list(&s, c)
    };
    let client_type: String = row.col("client_type")?;
    let max_tier: i64 = row.col("max_tier")?;
    // No secret is stored as an empty blob (a public client).
    let secret: Option<Vec<u8>> = row.col("secret_hash")?;
    Ok(OAuthClient {
        client_id: row.col("client_id")?,
        name: row.col("name")?,
        secret_hash: secret.filter(|h| !h.is_empty()),
        client_type: ClientType::parse(&client_type)
            .map_err(|e| StoreError::Other(e.to_string()))?,
        redirect_uris: list("redirect_uris")?,
        post_logout_redirect_uris: list("post_logout_redirect_uris")?,
        grant_types: list("grant_types")?
            .iter()
            .filter_map(|g| GrantType::parse(g))
            .collect(),
        scopes: Scopes::from_iter(list("scopes")?.iter().map(String::as_str)),
        max_tier: Tier::new(max_tier).map_err(|e| StoreError::Other(e.to_string()))?,
        first_party: row.col("first_party")?,
        id_token_alg: row.col("id_token_alg")?,
        fapi: fapi_from_row::<DB>(row)?,
        created_at: from_ms(row.col("created_at")?),
        updated_at: from_ms(row.col("updated_at")?),
        backchannel_logout_uri: row.col("backchannel_logout_uri")?,
    })
}

fn fapi_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<ClientFapi> {
    let method: String = row.col("token_endpoint_auth_method")?;
    let jwks: Option<String> = row.col("jwks")?;
    Ok(ClientFapi {
        auth_method: AuthMethod::parse(&method).map_err(|e| StoreError::Other(e.message))?,
        jwks: jwks
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| StoreError::Other(format!("bad jwks: {e}")))?,
        jwks_uri: row.col("jwks_uri")?,
        require_par: row.col("require_pushed_authorization_requests")?,
        dpop_bound: row.col("dpop_bound_access_tokens")?,
    })
}

fn jwks_text(c: &OAuthClient) -> Option<String> {
    c.fapi.jwks.as_ref().map(|j| j.to_string())
}

fn code_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<AuthCode> {
    let scope: String = row.col("scope")?;
    let amr: String = row.col("amr")?;
    Ok(AuthCode {
        hash: row.col("hash")?,
        client_id: row.col("client_id")?,
        user_id: UserId(uuid_col::<DB>(row, "user_id")?),
        redirect_uri: row.col("redirect_uri")?,
        scope: Scopes::parse(&scope),
        nonce: row.col("nonce")?,
        code_challenge: row.col("code_challenge")?,
        auth_time: from_ms(row.col("auth_time")?),
        amr: parse_list(&amr, "amr")?,
        created_at: from_ms(row.col("created_at")?),
        expires_at: from_ms(row.col("expires_at")?),
        dpop_jkt: row.col("dpop_jkt")?,
    })
}

/// Revokes the sessions whose ids `select` (a `SELECT session_id ...` with `$2`, `$3`)
/// returns, and records their `sid` revocations, inside `tx`.
async fn revoke_where<DB: Backend>(
    tx: &mut sqlx::Transaction<'static, DB>,
    select: &str,
    a: &str,
    b: Option<&str>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> StoreResult<Vec<Uuid>> {
    let sql = format!(
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN ({select}) \
         RETURNING id"
    );
    let rows = sqlx::query::<DB>(&sql)
        .arg(ms(now))
        .arg(a)
        .arg(b)
        .all(&mut **tx)
        .await?;
    super::revocations::record_ended(tx, &rows, now, until).await
}

#[async_trait]
impl<DB: Backend> OAuthStore for SqlStore<DB> {
    async fn insert_client(&self, c: &OAuthClient) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO oauth_clients ({CLIENT_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19)"
        );
        let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().into()).collect();
        sqlx::query::<DB>(&sql)
            .arg(c.client_id.as_str())
            .arg(c.name.as_str())
            .arg(c.secret_hash.as_deref().unwrap_or(&[]))
            .arg(c.client_type.as_str())
            .arg(json_list(&c.redirect_uris))
            .arg(json_list(&c.post_logout_redirect_uris))
            .arg(json_list(&grants))
            .arg(json_list(&c.scopes.to_vec()))
            .arg(c.max_tier.get() as i64)
            .arg(c.first_party)
            .arg(c.id_token_alg.as_str())
            .arg(ms(c.created_at))
            .arg(ms(c.updated_at))
            .arg(c.backchannel_logout_uri.as_deref())
            .arg(c.fapi.auth_method.as_str())
            .arg(jwks_text(c))
            .arg(c.fapi.jwks_uri.as_deref())
            .arg(c.fapi.require_par)
            .arg(c.fapi.dpop_bound)
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        let sql = format!("SELECT {CLIENT_COLS} FROM oauth_clients WHERE client_id = $1");
        let row = sqlx::query::<DB>(&sql)
            .arg(client_id)
            .optional(&mut *self.reader().await?)
            .await?;
        row.as_ref().map(client_from_row::<DB>).transpose()
    }

    async fn list_clients(&self, after: Option<&str>, limit: i64) -> StoreResult<Vec<OAuthClient>> {
        let sql = format!(
            "SELECT {CLIENT_COLS} FROM oauth_clients WHERE ($1 IS NULL OR client_id > $1) \
             ORDER BY client_id LIMIT $2"
        );
        let rows = sqlx::query::<DB>(&sql)
            .arg(after)
            .arg(limit)
            .all(&mut *self.reader().await?)
            .await?;
        rows.iter().map(client_from_row::<DB>).collect()
    }

    async fn update_client(&self, c: &OAuthClient) -> StoreResult<bool> {
        let grants: Vec<String> = c.grant_types.iter().map(|g| g.as_str().into()).collect();
        let n = sqlx::query::<DB>(
            "UPDATE oauth_clients SET name = $1, secret_hash = $2, client_type = $3, \
             redirect_uris = $4, post_logout_redirect_uris = $5, grant_types = $6, scopes = $7, \
             max_tier = $8, first_party = $9, id_token_alg = $10, updated_at = $11, \
             backchannel_logout_uri = $13, token_endpoint_auth_method = $14, jwks = $15, \
             jwks_uri = $16, require_pushed_authorization_requests = $17, \
             dpop_bound_access_tokens = $18 WHERE client_id = $12",
        )
        .arg(c.name.as_str())
        .arg(c.secret_hash.as_deref().unwrap_or(&[]))
        .arg(c.client_type.as_str())
        .arg(json_list(&c.redirect_uris))
        .arg(json_list(&c.post_logout_redirect_uris))
        .arg(json_list(&grants))
        .arg(json_list(&c.scopes.to_vec()))
        .arg(c.max_tier.get() as i64)
        .arg(c.first_party)
        .arg(c.id_token_alg.as_str())
        .arg(ms(c.updated_at))
        .arg(c.client_id.as_str())
        .arg(c.backchannel_logout_uri.as_deref())
        .arg(c.fapi.auth_method.as_str())
        .arg(jwks_text(c))
        .arg(c.fapi.jwks_uri.as_deref())
        .arg(c.fapi.require_par)
        .arg(c.fapi.dpop_bound)
        .run(&mut *self.writer().await?)
        .await?;
        Ok(n == 1)
    }

    async fn delete_client(
        &self,
        client_id: &str,
        client_sid: Uuid,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let mut tx = self.begin().await?;
        let mut ids = revoke_where::<DB>(
            &mut tx,
            "SELECT session_id FROM oauth_sessions WHERE client_id = $2 OR client_id = $3",
            client_id,
            None,
            now,
            until,
        )
        .await?;
        // Codes, consents and session links go with the client (ON DELETE CASCADE).
        let n = sqlx::query::<DB>("DELETE FROM oauth_clients WHERE client_id = $1")
            .arg(client_id)
            .run(&mut tx)
            .await?;
        if n == 1 {
            sqlx::query::<DB>(REVOKE_SID)
                .arg(client_sid.to_string())
                .arg(ms(until))
                .arg(ms(now))
                .run(&mut tx)
                .await?;
            ids.push(client_sid);
        }
        commit(tx).await?;
        Ok((n == 1).then_some(ids))
    }

    async fn insert_code(&self, c: &AuthCode) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO oauth_codes ({CODE_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        sqlx::query::<DB>(&sql)
            .arg(c.hash.as_slice())
            .arg(c.client_id.as_str())
            .arg(c.user_id.0.to_string())
            .arg(c.redirect_uri.as_str())
            .arg(c.scope.to_param())
            .arg(c.nonce.as_deref())
            .arg(c.code_challenge.as_str())
            .arg(ms(c.auth_time))
            .arg(json_list(&c.amr))
            .arg(ms(c.created_at))
            .arg(ms(c.expires_at))
            .arg(c.dpop_jkt.as_deref())
            .run(&mut *self.writer().await?)
            .await?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        hash: &[u8],
        now: DateTime<Utc>,
        new_sid: Uuid,
    ) -> StoreResult<Redemption> {
        let mut tx = self.begin().await?;
        let sql = format!(
            "UPDATE oauth_codes SET used_at = $1, issued_sid = $2 \
             WHERE hash = $3 AND used_at IS NULL AND expires_at > $1 RETURNING {CODE_COLS}"
        );
        let row = sqlx::query::<DB>(&sql)
            .arg(ms(now))
            .arg(new_sid.to_string())
            .arg(hash)
            .optional(&mut tx)
            .await?;
        let found = match row {
            Some(r) => Redemption::Redeemed(Box::new(code_from_row::<DB>(&r)?)),
            None => {
                let used = sqlx::query::<DB>(
                    "SELECT issued_sid FROM oauth_codes WHERE hash = $1 AND used_at IS NOT NULL",
                )
                .arg(hash)
                .optional(&mut tx)
                .await?;
                match used {
                    Some(r) => {
                        let sid: Option<String> = r.col("issued_sid")?;
                        Redemption::Reused {
                            issued_sid: sid.and_then(|s| Uuid::parse_str(&s).ok()),
                        }
                    }
                    None => Redemption::Unknown,
                }
            }
        };
        commit(tx).await?;
        Ok(found)
    }

    async fn insert_oauth_session(&self, s: &Session, link: &OAuthSessionLink) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query::<DB>(
            "INSERT INTO sessions (id, user_id, generation, remember_me, created_at, \
             last_used_at, rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, \
             user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .arg(s.id.to_string())
        .arg(s.user_id.0.to_string())
        .arg(s.generation)
        .arg(s.remember_me)
        .arg(ms(s.created_at))
        .arg(ms(s.last_used_at))
        .arg(s.rotated_at.map(ms))
        .arg(ms(s.refresh_expires_at))
        .arg(ms(s.absolute_expires_at))
        .arg(s.revoked_at.map(ms))
        .arg(s.ip.as_deref())
        .arg(s.user_agent.as_deref())
        .run(&mut tx)
        .await?;
        sqlx::query::<DB>(
            "INSERT INTO oauth_sessions (session_id, client_id, scope, auth_time, amr, dpop_jkt) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(link.session_id.to_string())
        .arg(link.client_id.as_str())
        .arg(link.scope.to_param())
        .arg(ms(link.auth_time))
        .arg(json_list(&link.amr))
        .arg(link.dpop_jkt.as_deref())
        .run(&mut tx)
        .await?;
        commit(tx).await
    }

    async fn oauth_session(&self, session_id: Uuid) -> StoreResult<Option<OAuthSessionLink>> {
        let row = sqlx::query::<DB>(
            "SELECT session_id, client_id, scope, auth_time, amr, dpop_jkt FROM oauth_sessions \
             WHERE session_id = $1",
        )
        .arg(session_id.to_string())
        .optional(&mut *self.reader().await?)
        .await?;
        row.map(|r| {
            let scope: String = r.col("scope")?;
            let amr: String = r.col("amr")?;
            Ok(OAuthSessionLink {
                session_id: uuid_col::<DB>(&r, "session_id")?,
                client_id: r.col("client_id")?,
                scope: Scopes::parse(&scope),
                auth_time: from_ms(r.col("auth_time")?),
                amr: parse_list(&amr, "amr")?,
                dpop_jkt: r.col("dpop_jkt")?,
            })
        })
        .transpose()
    }

    async fn session_clients(&self, sessions: &[Uuid]) -> StoreResult<Vec<(Uuid, String, String)>> {
        let mut out = Vec::new();
        // One query per page of sessions would need an array bind, which the two drivers
        // spell differently; a session list page is at most 200 rows, read by id.
        let mut conn = self.reader().await?;
        for id in sessions {
            let row = sqlx::query::<DB>(
                "SELECT c.client_id, c.name FROM oauth_sessions s \
                 JOIN oauth_clients c ON c.client_id = s.client_id WHERE s.session_id = $1",
            )
            .arg(id.to_string())
            .optional(&mut *conn)
            .await?;
            if let Some(r) = row {
                out.push((*id, r.col("client_id")?, r.col("name")?));
            }
        }
        Ok(out)
    }

    async fn consent(&self, user: UserId, client_id: &str) -> StoreResult<Option<Consent>> {
        let row = sqlx::query::<DB>(
            "SELECT scopes, granted_at FROM oauth_consents WHERE user_id = $1 AND client_id = $2",
        )
        .arg(user.0.to_string())
        .arg(client_id)
        .optional(&mut *self.writer().await?)
        .await?;
        row.map(|r| {
            let scopes: String = r.col("scopes")?;
            Ok(Consent {
                user_id: user,
                client_id: client_id.to_string(),
                scopes: Scopes::parse(&scopes),
                granted_at: from_ms(r.col("granted_at")?),
            })
        })
        .transpose()
    }

    async fn save_consent(&self, c: &Consent) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, client_id) \
             DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .arg(c.user_id.0.to_string())
        .arg(c.client_id.as_str())
        .arg(c.scopes.to_param())
        .arg(ms(c.granted_at))
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn list_consents(&self, user: UserId) -> StoreResult<Vec<(Consent, String)>> {
        let rows = sqlx::query::<DB>(
            "SELECT k.client_id, k.scopes, k.granted_at, c.name FROM oauth_consents k \
             JOIN oauth_clients c ON c.client_id = k.client_id WHERE k.user_id = $1 \
             ORDER BY k.granted_at DESC, k.client_id",
        )
        .arg(user.0.to_string())
        .all(&mut *self.reader().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let scopes: String = r.col("scopes")?;
                Ok((
                    Consent {
                        user_id: user,
                        client_id: r.col("client_id")?,
                        scopes: Scopes::parse(&scopes),
                        granted_at: from_ms(r.col("granted_at")?),
                    },
                    r.col("name")?,
                ))
            })
            .collect()
    }

    async fn delete_consent(
        &self,
        user: UserId,
        client_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let mut tx = self.begin().await?;
        let uid = user.0.to_string();
        let ids = revoke_where::<DB>(
            &mut tx,
            "SELECT o.session_id FROM oauth_sessions o JOIN sessions s ON s.id = o.session_id \
             WHERE o.client_id = $2 AND s.user_id = $3",
            client_id,
            Some(uid.as_str()),
            now,
            until,
        )
        .await?;
        let n =
            sqlx::query::<DB>("DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2")
                .arg(uid.as_str())
                .arg(client_id)
                .run(&mut tx)
                .await?;
        commit(tx).await?;
        Ok((n == 1 || !ids.is_empty()).then_some(ids))
    }
}
