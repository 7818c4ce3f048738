//! The SQL of the store, written once for both backends.
//!
//! Every statement is plain SQL both SQLite and PostgreSQL accept (numbered `?N`
//! placeholders, `TRUE`/`FALSE`, `ON CONFLICT`, `RETURNING`, times as epoch milliseconds);
//! each backend module supplies `q` (its placeholder spelling), `map_err` (its driver
//! errors) and the pools, then expands [`impl_sql_store!`]. Where the two really differ
//! (connection setup, migrations, error codes) the backend module owns its version.

/// Expands the row mappers and `impl Store` for a backend. Needs in scope: `q(&str) ->
/// Cow<str>`, `map_err(sqlx::Error) -> StoreError`, and fields `read`/`write` (pools).
macro_rules! impl_sql_store {
    ($store:ty, $row:ty) => {
const USER_COLS: &str = "id, email, username, full_name, tier, is_active, is_verified, \
     mfa_enabled, is_bootstrap, created_at, last_login_at";

fn uuid_col(row: &$row, col: &str) -> StoreResult<Uuid> {
    let s: String = row.try_get(col).map_err(map_err)?;
    Uuid::parse_str(&s).map_err(|e| StoreError::Other(format!("bad uuid in {col}: {e}")))
}

fn user_from_row(row: &$row) -> StoreResult<User> {
    user_from_prefixed(row, "")
}

/// A user from columns named `{prefix}{column}` (joined reads alias them).
fn user_from_prefixed(row: &$row, prefix: &str) -> StoreResult<User> {
    let c = |name: &'static str| -> std::borrow::Cow<'static, str> {
        if prefix.is_empty() {
            name.into()
        } else {
            format!("{prefix}{name}").into()
        }
    };
    let tier: i64 = row.try_get(&*c("tier")).map_err(map_err)?;
    let full_name: Option<String> = row.try_get(&*c("full_name")).map_err(map_err)?;
    let last: Option<i64> = row.try_get(&*c("last_login_at")).map_err(map_err)?;
    Ok(User {
        id: UserId(uuid_col(row, &c("id"))?),
        email: Email::from_trusted(row.try_get(&*c("email")).map_err(map_err)?),
        username: Username::from_trusted(row.try_get(&*c("username")).map_err(map_err)?),
        full_name: full_name.map(FullName::from_trusted),
        tier: Tier::new(tier).map_err(|e| StoreError::Other(e.to_string()))?,
        is_active: row.try_get(&*c("is_active")).map_err(map_err)?,
        is_verified: row.try_get(&*c("is_verified")).map_err(map_err)?,
        mfa_enabled: row.try_get(&*c("mfa_enabled")).map_err(map_err)?,
        is_bootstrap: row.try_get(&*c("is_bootstrap")).map_err(map_err)?,
        created_at: from_ms(row.try_get(&*c("created_at")).map_err(map_err)?),
        last_login_at: last.map(from_ms),
    })
}

const SESSION_COLS: &str = "id, user_id, generation, remember_me, created_at, last_used_at, \
     rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, user_agent";

fn session_from_row(row: &$row) -> StoreResult<Session> {
    let opt = |c: &str| -> StoreResult<Option<DateTime<Utc>>> {
        let v: Option<i64> = row.try_get(c).map_err(map_err)?;
        Ok(v.map(from_ms))
    };
    let t = |c: &str| -> StoreResult<DateTime<Utc>> {
        Ok(from_ms(row.try_get::<i64, _>(c).map_err(map_err)?))
    };
    Ok(Session {
        id: uuid_col(row, "id")?,
        user_id: UserId(uuid_col(row, "user_id")?),
        generation: row.try_get("generation").map_err(map_err)?,
        remember_me: row.try_get("remember_me").map_err(map_err)?,
        created_at: t("created_at")?,
        last_used_at: t("last_used_at")?,
        rotated_at: opt("rotated_at")?,
        refresh_expires_at: t("refresh_expires_at")?,
        absolute_expires_at: t("absolute_expires_at")?,
        revoked_at: opt("revoked_at")?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
    })
}

fn key_from_row(row: &$row) -> StoreResult<StoredKey> {
    let alg: String = row.try_get("alg").map_err(map_err)?;
    let state: String = row.try_get("state").map_err(map_err)?;
    let jwk: String = row.try_get("public_jwk").map_err(map_err)?;
    let retire: Option<i64> = row.try_get("retire_at").map_err(map_err)?;
    Ok(StoredKey {
        kid: row.try_get("kid").map_err(map_err)?,
        alg: JwtAlg::parse(&alg).ok_or_else(|| StoreError::Other(format!("bad alg {alg}")))?,
        private_der: row.try_get("private_der").map_err(map_err)?,
        public_jwk: serde_json::from_str(&jwk).map_err(|e| StoreError::Other(e.to_string()))?,
        state: KeyState::parse(&state)
            .ok_or_else(|| StoreError::Other(format!("bad key state {state}")))?,
        created_at: from_ms(row.try_get("created_at").map_err(map_err)?),
        retire_at: retire.map(from_ms),
    })
}

fn event_from_row(row: &$row) -> StoreResult<AuditEvent> {
    let opt_uuid = |c: &str| -> StoreResult<Option<UserId>> {
        let v: Option<String> = row.try_get(c).map_err(map_err)?;
        Ok(v.and_then(|s| Uuid::parse_str(&s).ok()).map(UserId))
    };
    let details: String = row.try_get("details").map_err(map_err)?;
    Ok(AuditEvent {
        id: uuid_col(row, "id")?,
        kind: row.try_get("type").map_err(map_err)?,
        at: from_ms(row.try_get("at").map_err(map_err)?),
        user_id: opt_uuid("user_id")?,
        actor_id: opt_uuid("actor_id")?,
        ip: row.try_get("ip").map_err(map_err)?,
        user_agent: row.try_get("user_agent").map_err(map_err)?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
    })
}

const KEY_COLS: &str = "k.id, k.user_id, k.public_id, k.secret_hash, k.name, k.tier, \
     k.created_at, k.expires_at, k.allowed_ips, k.last_used_at, k.revoked_at";

fn api_key_from_row(row: &$row) -> StoreResult<ApiKeyRecord> {
    let opt = |c: &str| -> StoreResult<Option<DateTime<Utc>>> {
        let v: Option<i64> = row.try_get(c).map_err(map_err)?;
        Ok(v.map(from_ms))
    };
    let ips: String = row.try_get("allowed_ips").map_err(map_err)?;
    let tier: i64 = row.try_get("tier").map_err(map_err)?;
    Ok(ApiKeyRecord {
        id: uuid_col(row, "id")?,
        user_id: UserId(uuid_col(row, "user_id")?),
        public_id: row.try_get("public_id").map_err(map_err)?,
        secret_hash: row.try_get("secret_hash").map_err(map_err)?,
        name: row.try_get("name").map_err(map_err)?,
        tier: Tier::new(tier).map_err(|e| StoreError::Other(e.to_string()))?,
        created_at: from_ms(row.try_get("created_at").map_err(map_err)?),
        expires_at: opt("expires_at")?,
        allowed_ips: serde_json::from_str(&ips).map_err(|e| StoreError::Other(e.to_string()))?,
        last_used_at: opt("last_used_at")?,
        revoked_at: opt("revoked_at")?,
    })
}

/// In the login-attempt upserts (`a`, the row as it was; `?2` now, `?3` the window):
/// a live lock, and "the window or the lock has passed: start over".
const LOCKED: &str = "COALESCE(a.locked_until, 0) > ?2";
const RESET: &str =
    "((a.locked_until IS NOT NULL AND a.locked_until <= ?2) OR a.window_start <= ?2 - ?3)";

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl Store for $store {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(&q("SELECT 1"))
            .execute(&self.read)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_user(&self, u: &NewUser) -> StoreResult<User> {
        let sql = format!(
            "INSERT INTO users (id, email, username, full_name, password_hash, tier, is_verified, \
             is_bootstrap, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {USER_COLS}"
        );
        let row = sqlx::query(&q(&sql))
            .bind(u.id.0.to_string())
            .bind(u.email.as_str())
            .bind(u.username.as_str())
            .bind(u.full_name.as_ref().map(|f| f.as_str()))
            .bind(&u.password_hash)
            .bind(u.tier.get() as i64)
            .bind(u.is_verified)
            .bind(u.is_bootstrap)
            .bind(ms(u.created_at))
            .fetch_one(&self.write)
            .await
            .map_err(map_err)?;
        user_from_row(&row)
    }

    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE id = ?");
        let row = sqlx::query(&q(&sql))
            .bind(id.0.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_login(&self, identifier: &str) -> StoreResult<Option<User>> {
        let ident = identifier.trim().to_lowercase();
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE username = ?1 OR email = ?1 \
             ORDER BY (username = ?1) DESC LIMIT 1"
        );
        let row = sqlx::query(&q(&sql))
            .bind(ident)
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn username_taken(&self, username: &Username) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar(&q("SELECT COUNT(*) FROM users WHERE username = ?"))
            .bind(username.as_str())
            .fetch_one(&self.read)
            .await
            .map_err(map_err)?;
        Ok(n > 0)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        sqlx::query_scalar(&q("SELECT password_hash FROM users WHERE id = ?"))
            .bind(id.0.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)
    }

    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
        sqlx::query(&q("UPDATE users SET password_hash = ? WHERE id = ?"))
            .bind(hash)
            .bind(id.0.to_string())
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn update_user(&self, id: UserId, p: &UserPatch) -> StoreResult<Option<User>> {
        let sql = format!(
            "UPDATE users SET \
               email = COALESCE(?, email), \
               username = COALESCE(?, username), \
               full_name = CASE WHEN ? THEN ? ELSE full_name END, \
               tier = COALESCE(?, tier), \
               is_active = COALESCE(?, is_active), \
               is_verified = COALESCE(?, is_verified) \
             WHERE id = ?8 AND (?9 = FALSE OR (SELECT COUNT(*) FROM users \
               WHERE tier = 4 AND is_active = TRUE AND id <> ?8) > 0) RETURNING {USER_COLS}"
        );
        let row = sqlx::query(&q(&sql))
            .bind(p.email.as_ref().map(|e| e.as_str()))
            .bind(p.username.as_ref().map(|u| u.as_str()))
            .bind(p.full_name.is_some())
            .bind(
                p.full_name
                    .as_ref()
                    .and_then(|f| f.as_ref().map(|f| f.as_str())),
            )
            .bind(p.tier.map(|t| t.get() as i64))
            .bind(p.is_active)
            .bind(p.is_verified)
            .bind(id.0.to_string())
            .bind(p.keep_an_admin)
            .fetch_optional(&self.write)
            .await
            .map_err(map_err)?;
        match row {
            Some(row) => user_from_row(&row).map(Some),
            None if p.keep_an_admin && self.user_by_id(id).await?.is_some() => {
                Err(StoreError::Conflict("last_admin"))
            }
            None => Ok(None),
        }
    }

    async fn record_login(&self, id: UserId, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(&q("UPDATE users SET last_login_at = ? WHERE id = ?"))
            .bind(ms(at))
            .bind(id.0.to_string())
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_users(&self, query: &UserQuery, page: Page) -> StoreResult<Vec<User>> {
        let sql = format!(
            "SELECT {USER_COLS} FROM users WHERE \
             (?1 IS NULL OR email LIKE ?1 ESCAPE '\\' OR username LIKE ?1 ESCAPE '\\' \
               OR lower(coalesce(full_name, '')) LIKE ?1 ESCAPE '\\') \
             AND (?2 IS NULL OR tier = ?2) AND (?3 IS NULL OR is_active = ?3) \
             AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5"
        );
        let rows = sqlx::query(&q(&sql))
            .bind(
                query.q.as_ref()
                    .map(|s| format!("%{}%", like_escape(&s.to_lowercase()))),
            )
            .bind(query.tier.map(|t| t.get() as i64))
            .bind(query.active)
            .bind(page.after.map(|u| u.to_string()))
            .bind(page.limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_user(
        &self,
        id: UserId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        keep_an_admin: bool,
    ) -> StoreResult<Option<Vec<Uuid>>> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let uid = id.0.to_string();
        let target: Option<(i64, bool)> =
            sqlx::query_as(&q("SELECT tier, is_active FROM users WHERE id = ?"))
                .bind(&uid)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some((tier, active)) = target else {
            return Ok(None);
        };
        if keep_an_admin && tier == 4 && active {
            let others: i64 = sqlx::query_scalar(&q("SELECT COUNT(*) FROM users WHERE tier = 4 AND is_active = TRUE AND id <> ?"))
            .bind(&uid)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            if others == 0 {
                return Err(StoreError::Conflict("last_admin"));
            }
        }
        let live: Vec<String> =
            sqlx::query_scalar(&q("SELECT id FROM sessions WHERE user_id = ? AND revoked_at IS NULL"))
                .bind(&uid)
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        for sid in &live {
            sqlx::query(&q("INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('sid', ?, ?, ?)"))
                .bind(sid)
                .bind(ms(until))
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        sqlx::query(&q("DELETE FROM sessions WHERE user_id = ?"))
            .bind(&uid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM users WHERE id = ?"))
            .bind(&uid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
                Ok(Some(
            live.iter()
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect(),
        ))
    }

    async fn count_active_admins(&self) -> StoreResult<i64> {
        sqlx::query_scalar(&q("SELECT COUNT(*) FROM users WHERE tier = 4 AND is_active = TRUE"))
            .fetch_one(&self.read)
            .await
            .map_err(map_err)
    }

    async fn bootstrap_user(&self) -> StoreResult<Option<User>> {
        let sql = format!("SELECT {USER_COLS} FROM users WHERE is_bootstrap = TRUE LIMIT 1");
        let row = sqlx::query(&q(&sql))
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(&q("INSERT INTO sessions (id, user_id, generation, remember_me, created_at, last_used_at, \
             rotated_at, refresh_expires_at, absolute_expires_at, revoked_at, ip, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(s.id.to_string())
        .bind(s.user_id.0.to_string())
        .bind(s.generation)
        .bind(s.remember_me)
        .bind(ms(s.created_at))
        .bind(ms(s.last_used_at))
        .bind(s.rotated_at.map(ms))
        .bind(ms(s.refresh_expires_at))
        .bind(ms(s.absolute_expires_at))
        .bind(s.revoked_at.map(ms))
        .bind(&s.ip)
        .bind(&s.user_agent)
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id: Uuid) -> StoreResult<Option<Session>> {
        // Read through the writer: a refresh must see the latest generation, including a
        // rotation that committed a moment ago.
        let sql = format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?");
        let row = sqlx::query(&q(&sql))
            .bind(id.to_string())
            .fetch_optional(&self.write)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_with_user(&self, id: Uuid) -> StoreResult<Option<(Session, User)>> {
        // One round trip for both rows, on the read pool: the writer (SQLite has one
        // connection) is left to the rotation. A read never sees less than what was
        // committed before it began, and a rotation that commits after it loses nothing:
        // `rotate_session` is a compare-and-swap, and its loser re-reads.
        // The columns of `SESSION_COLS` and `USER_COLS`, the user's aliased `u_*`.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let cols = |list: &str, f: &dyn Fn(&str) -> String| {
                list.split(',').map(|c| f(c.trim())).collect::<Vec<_>>().join(", ")
            };
            format!(
                "SELECT {}, {} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
                cols(SESSION_COLS, &|c| format!("s.{c}")),
                cols(USER_COLS, &|c| format!("u.{c} AS u_{c}")),
            )
        });
        let sql: &str = &SQL;
        let row = sqlx::query(&q(&sql))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?;
        row.as_ref()
            .map(|r| Ok((session_from_row(r)?, user_from_prefixed(r, "u_")?)))
            .transpose()
    }

    async fn rotate_session(
        &self,
        id: Uuid,
        from: i64,
        now: DateTime<Utc>,
        refresh_expires_at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&q("UPDATE sessions SET generation = generation + 1, rotated_at = ?1, last_used_at = ?1, \
             refresh_expires_at = ?2 WHERE id = ?3 AND generation = ?4 AND revoked_at IS NULL"))
        .bind(ms(now))
        .bind(ms(refresh_expires_at))
        .bind(id.to_string())
        .bind(from)
        .execute(&self.write)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn touch_session(&self, id: Uuid, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(&q("UPDATE sessions SET last_used_at = ? WHERE id = ?"))
            .bind(ms(now))
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn revoke_sessions(
        &self,
        target: RevokeTarget,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Vec<Uuid>> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let ids: Vec<String> =
            match target {
                RevokeTarget::Session(id) => {
                    sqlx::query_scalar(&q("UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL \
                     RETURNING id"))
                    .bind(ms(now))
                    .bind(id.to_string())
                    .fetch_all(&mut *tx)
                    .await
                }
                RevokeTarget::User { user, except } => sqlx::query_scalar(&q("UPDATE sessions SET revoked_at = ?1 WHERE user_id = ?2 AND revoked_at IS NULL \
                     AND (?3 IS NULL OR id <> ?3) RETURNING id"))
                .bind(ms(now))
                .bind(user.0.to_string())
                .bind(except.map(|e| e.to_string()))
                .fetch_all(&mut *tx)
                .await,
            }
            .map_err(map_err)?;
        for id in &ids {
            sqlx::query(&q("INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('sid', ?, ?, ?)"))
                .bind(id)
                .bind(ms(until))
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    async fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        page: Page,
    ) -> StoreResult<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLS} FROM sessions WHERE user_id = ?1 AND revoked_at IS NULL \
             AND refresh_expires_at > ?2 AND absolute_expires_at > ?2 \
             AND (?3 IS NULL OR id < ?3) ORDER BY id DESC LIMIT ?4"
        );
        let rows = sqlx::query(&q(&sql))
            .bind(user.0.to_string())
            .bind(ms(now))
            .bind(page.after.map(|u| u.to_string()))
            .bind(page.limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn count_live_sessions(&self, now: DateTime<Utc>) -> StoreResult<i64> {
        sqlx::query_scalar(&q("SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL AND refresh_expires_at > ?1 \
             AND absolute_expires_at > ?1"))
        .bind(ms(now))
        .fetch_one(&self.read)
        .await
        .map_err(map_err)
    }

    async fn revoke_jti(&self, jti: Uuid, until: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(&q("INSERT INTO revocations (kind, value, expires_at, created_at) VALUES ('jti', ?, ?, ?)"))
            .bind(jti.to_string())
            .bind(ms(until))
            .bind(ms(Utc::now()))
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn revocations_since(
        &self,
        seq: i64,
        recent: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<RevocationRow>> {
        let rows = sqlx::query(&q("SELECT seq, kind, value, expires_at, created_at FROM revocations \
             WHERE (seq > ?1 OR created_at > ?2) AND expires_at > ?3 ORDER BY seq LIMIT 10000"))
        .bind(seq)
        .bind(ms(recent))
        .bind(ms(now))
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: String = row.try_get("kind").map_err(map_err)?;
            let id = uuid_col(row, "value")?;
            out.push(RevocationRow {
                seq: row.try_get("seq").map_err(map_err)?,
                what: if kind == "jti" {
                    Revoked::Jti(id)
                } else {
                    Revoked::Sid(id)
                },
                expires_at: from_ms(row.try_get("expires_at").map_err(map_err)?),
                created_at: from_ms(row.try_get("created_at").map_err(map_err)?),
            });
        }
        Ok(out)
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(&q("SELECT kid, alg, private_der, public_jwk, state, created_at, retire_at \
             FROM signing_keys ORDER BY created_at"))
        .fetch_all(&self.write)
        .await
        .map_err(map_err)?;
        rows.iter().map(key_from_row).collect()
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
        let mut tx = self.write.begin().await.map_err(map_err)?;
        for k in keys {
            sqlx::query(&q("INSERT INTO signing_keys (kid, alg, private_der, public_jwk, state, created_at, \
                 retire_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kid) DO UPDATE SET \
                 state = excluded.state, retire_at = excluded.retire_at"))
            .bind(&k.kid)
            .bind(k.alg.as_str())
            .bind(&k.private_der)
            .bind(k.public_jwk.to_string())
            .bind(k.state.as_str())
            .bind(ms(k.created_at))
            .bind(k.retire_at.map(ms))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        sqlx::query(&q("DELETE FROM signing_keys WHERE state = 'retired' AND retire_at < ?"))
            .bind(ms(Utc::now()))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> StoreResult<Vec<u8>> {
        sqlx::query(&q("INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"))
        .bind(name)
        .bind(fresh)
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        sqlx::query_scalar(&q("SELECT value FROM secrets WHERE name = ?"))
            .bind(name)
            .fetch_one(&self.write)
            .await
            .map_err(map_err)
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<AttemptSlot> {
        // One statement, so the count is exact however many attempts arrive at once. Every
        // SET expression sees the row as it was before this attempt. With F = the failures
        // that count, P = the live reservations: reserve when F + P < threshold, marking
        // the row with this attempt's token, which tells afterwards whether it did. F at
        // or over the threshold with no lock (the threshold was lowered since) locks.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            let f = format!("(CASE WHEN {RESET} THEN 0 ELSE a.failures END)");
            let p = "(CASE WHEN a.pending_at <= ?2 - ?5 THEN 0 ELSE a.pending END)";
            let take = format!("(NOT ({LOCKED}) AND {f} + {p} < ?4)");
            format!(
                "INSERT INTO login_attempts AS a \
                   (key, failures, window_start, locked_until, pending, pending_at, reservation) \
                 VALUES (?1, 0, ?2, NULL, 1, ?2, ?6) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN {LOCKED} THEN a.failures ELSE {f} END, \
                   window_start = CASE WHEN {LOCKED} THEN a.window_start WHEN {RESET} THEN ?2 ELSE a.window_start END, \
                   locked_until = CASE WHEN {LOCKED} THEN a.locked_until WHEN {f} >= ?4 THEN ?2 + ?7 ELSE NULL END, \
                   pending = CASE WHEN {take} THEN {p} + 1 WHEN {LOCKED} THEN a.pending ELSE {p} END, \
                   pending_at = CASE WHEN {take} THEN ?2 ELSE a.pending_at END, \
                   reservation = CASE WHEN {take} THEN ?6 ELSE a.reservation END \
                 RETURNING locked_until, reservation"
            )
        });
        let token = uuid::Uuid::new_v4().simple().to_string();
        let row = sqlx::query(&q(&SQL))
            .bind(key)
            .bind(ms(now))
            .bind(policy.window.num_milliseconds())
            .bind(policy.threshold as i64)
            .bind(crate::domain::lockout::RESERVATION_TTL.num_milliseconds())
            .bind(&token)
            .bind(policy.duration.num_milliseconds())
            .fetch_one(&self.write)
            .await
            .map_err(map_err)?;
        let locked: Option<i64> = row.try_get("locked_until").map_err(map_err)?;
        let reservation: Option<String> = row.try_get("reservation").map_err(map_err)?;
        Ok(match locked.map(from_ms) {
            Some(until) if until > now => AttemptSlot::Locked { until },
            _ if reservation.as_deref() == Some(token.as_str()) => AttemptSlot::Allowed,
            _ => AttemptSlot::Busy,
        })
    }

    async fn fail_attempt(
        &self,
        key: &str,
        now: DateTime<Utc>,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        // Upserted: the row may be gone (an admin unlocked the account meanwhile), and the
        // failure still counts.
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            // A first failure (none counted: a fresh row, a success or an unlock before)
            // opens a new window.
            let n = format!("(CASE WHEN {RESET} OR a.failures = 0 THEN 1 ELSE a.failures + 1 END)");
            format!(
                "INSERT INTO login_attempts AS a \
                   (key, failures, window_start, locked_until, pending, pending_at) \
                 VALUES (?1, 1, ?2, CASE WHEN 1 >= ?4 THEN ?2 + ?5 ELSE NULL END, 0, 0) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN {LOCKED} THEN a.failures ELSE {n} END, \
                   window_start = CASE WHEN {LOCKED} THEN a.window_start WHEN {RESET} OR a.failures = 0 THEN ?2 ELSE a.window_start END, \
                   locked_until = CASE WHEN {LOCKED} THEN a.locked_until WHEN {n} >= ?4 THEN ?2 + ?5 ELSE NULL END, \
                   pending = CASE WHEN a.pending > 0 THEN a.pending - 1 ELSE 0 END \
                 RETURNING failures, locked_until"
            )
        });
        let until = now + policy.duration;
        let row = sqlx::query(&q(&SQL))
            .bind(key)
            .bind(ms(now))
            .bind(policy.window.num_milliseconds())
            .bind(policy.threshold as i64)
            .bind(policy.duration.num_milliseconds())
            .fetch_one(&self.write)
            .await
            .map_err(map_err)?;
        let failures: i64 = row.try_get("failures").map_err(map_err)?;
        let locked: Option<i64> = row.try_get("locked_until").map_err(map_err)?;
        // This failure locked the account when it set the lock that is there now.
        Ok((failures >= policy.threshold as i64 && locked == Some(ms(until))).then(|| from_ms(ms(until))))
    }

    async fn succeed_attempt(&self, key: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(&q("UPDATE login_attempts SET failures = 0, window_start = ?2, locked_until = NULL, \
             pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END WHERE key = ?1"))
        .bind(key)
        .bind(ms(now))
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn release_attempt(&self, key: &str) -> StoreResult<()> {
        sqlx::query(&q("UPDATE login_attempts SET pending = CASE WHEN pending > 0 THEN pending - 1 ELSE 0 END \
             WHERE key = ?"))
        .bind(key)
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn clear_attempts(&self, prefix: &str) -> StoreResult<()> {
        // The failures and the lock go; attempts in flight stay reserved, so an unlock in
        // the middle of a flood does not admit a second round of guesses beside them.
        sqlx::query(&q("UPDATE login_attempts SET failures = 0, locked_until = NULL \
             WHERE key = ?1 OR key LIKE ?2 ESCAPE '\\'"))
            .bind(prefix)
            .bind(format!("{}|%", like_escape(prefix)))
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn lockout_state(
        &self,
        prefix: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> StoreResult<LockoutState> {
        // Failures count while their window or their lock lasts, as `reserve_attempt`
        // sees them: a lifted lock or an old window is a count of zero.
        let row = sqlx::query(&q("SELECT CAST(COALESCE(SUM(CASE \
               WHEN locked_until > ?3 THEN failures \
               WHEN locked_until IS NULL AND window_start > ?3 - ?4 THEN failures \
               ELSE 0 END), 0) AS BIGINT) AS failures, MAX(locked_until) AS locked_until \
             FROM login_attempts WHERE key = ?1 OR key LIKE ?2 ESCAPE '\\'"))
        .bind(prefix)
        .bind(format!("{}|%", like_escape(prefix)))
        .bind(ms(now))
        .bind(window.num_milliseconds())
        .fetch_one(&self.read)
        .await
        .map_err(map_err)?;
        let failures: i64 = row.try_get("failures").map_err(map_err)?;
        let locked: Option<i64> = row.try_get("locked_until").map_err(map_err)?;
        Ok(LockoutState {
            failed_login_count: failures as u32,
            locked_until: locked.map(from_ms).filter(|t| *t > now),
        })
    }

    async fn insert_event(&self, e: &AuditEvent) -> StoreResult<()> {
        sqlx::query(&q("INSERT INTO audit_events (id, type, at, user_id, actor_id, ip, user_agent, details) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(e.id.to_string())
        .bind(&e.kind)
        .bind(ms(e.at))
        .bind(e.user_id.map(|u| u.0.to_string()))
        .bind(e.actor_id.map(|u| u.0.to_string()))
        .bind(&e.ip)
        .bind(&e.user_agent)
        .bind(e.details.to_string())
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_events(&self, query: &AuditQuery, page: Page) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(&q("SELECT id, type, at, user_id, actor_id, ip, user_agent, details FROM audit_events \
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR type = ?2) \
             AND (?3 IS NULL OR at >= ?3) AND (?4 IS NULL OR id < ?4) \
             ORDER BY id DESC LIMIT ?5"))
        .bind(query.user_id.map(|u| u.0.to_string()))
        .bind(&query.kind)
        .bind(query.since.map(ms))
        .bind(page.after.map(|u| u.to_string()))
        .bind(page.limit as i64)
        .fetch_all(&self.read)
        .await
        .map_err(map_err)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn insert_api_key(&self, k: &ApiKeyRecord) -> StoreResult<()> {
        sqlx::query(&q("INSERT INTO api_keys (id, user_id, public_id, secret_hash, name, tier, created_at, \
             expires_at, allowed_ips) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))
        .bind(k.id.to_string())
        .bind(k.user_id.0.to_string())
        .bind(&k.public_id)
        .bind(&k.secret_hash)
        .bind(&k.name)
        .bind(k.tier.get() as i64)
        .bind(ms(k.created_at))
        .bind(k.expires_at.map(ms))
        .bind(serde_json::to_string(&k.allowed_ips).unwrap_or_else(|_| "[]".into()))
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn api_key_with_owner(
        &self,
        public_id: &str,
    ) -> StoreResult<Option<(ApiKeyRecord, User)>> {
        let user_cols: String = USER_COLS
            .split(", ")
            .map(|c| format!("u.{c} AS u_{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {KEY_COLS}, {user_cols} FROM api_keys k JOIN users u ON u.id = k.user_id \
             WHERE k.public_id = ?"
        );
        let Some(row) = sqlx::query(&q(&sql))
            .bind(public_id)
            .fetch_optional(&self.read)
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let key = api_key_from_row(&row)?;
        let tier: i64 = row.try_get("u_tier").map_err(map_err)?;
        let full_name: Option<String> = row.try_get("u_full_name").map_err(map_err)?;
        let last: Option<i64> = row.try_get("u_last_login_at").map_err(map_err)?;
        let id: String = row.try_get("u_id").map_err(map_err)?;
        let owner = User {
            id: UserId(Uuid::parse_str(&id).map_err(|e| StoreError::Other(e.to_string()))?),
            email: Email::from_trusted(row.try_get("u_email").map_err(map_err)?),
            username: Username::from_trusted(row.try_get("u_username").map_err(map_err)?),
            full_name: full_name.map(FullName::from_trusted),
            tier: Tier::new(tier).map_err(|e| StoreError::Other(e.to_string()))?,
            is_active: row.try_get("u_is_active").map_err(map_err)?,
            is_verified: row.try_get("u_is_verified").map_err(map_err)?,
            mfa_enabled: row.try_get("u_mfa_enabled").map_err(map_err)?,
            is_bootstrap: row.try_get("u_is_bootstrap").map_err(map_err)?,
            created_at: from_ms(row.try_get("u_created_at").map_err(map_err)?),
            last_login_at: last.map(from_ms),
        };
        Ok(Some((key, owner)))
    }

    async fn list_api_keys(&self, user: UserId, page: Page) -> StoreResult<Vec<ApiKeyRecord>> {
        let sql = format!(
            "SELECT {KEY_COLS} FROM api_keys k WHERE k.user_id = ?1 AND k.revoked_at IS NULL \
             AND (?2 IS NULL OR k.id < ?2) ORDER BY k.id DESC LIMIT ?3"
        );
        let rows = sqlx::query(&q(&sql))
            .bind(user.0.to_string())
            .bind(page.after.map(|u| u.to_string()))
            .bind(page.limit as i64)
            .fetch_all(&self.read)
            .await
            .map_err(map_err)?;
        rows.iter().map(api_key_from_row).collect()
    }

    async fn revoke_api_key(
        &self,
        user: UserId,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&q("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL"))
        .bind(ms(now))
        .bind(id.to_string())
        .bind(user.0.to_string())
        .execute(&self.write)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn touch_api_key(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
        older_than: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(&q("UPDATE api_keys SET last_used_at = ?1 WHERE id = ?2 \
             AND (last_used_at IS NULL OR last_used_at < ?3)"))
        .bind(ms(now))
        .bind(id.to_string())
        .bind(ms(older_than))
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn insert_mail_token(
        &self,
        hash: &[u8],
        user: UserId,
        purpose: MailPurpose,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(&q("INSERT INTO mail_tokens (token_hash, user_id, purpose, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)"))
        .bind(hash)
        .bind(user.0.to_string())
        .bind(purpose.as_str())
        .bind(ms(now))
        .bind(ms(expires_at))
        .execute(&self.write)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn peek_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>> {
        let id: Option<String> = sqlx::query_scalar(&q("SELECT user_id FROM mail_tokens WHERE token_hash = ? AND purpose = ? \
             AND used_at IS NULL AND expires_at > ?"))
        .bind(hash)
        .bind(purpose.as_str())
        .bind(ms(now))
        .fetch_optional(&self.write)
        .await
        .map_err(map_err)?;
        Ok(id.and_then(|s| Uuid::parse_str(&s).ok()).map(UserId))
    }

    async fn consume_mail_token(
        &self,
        hash: &[u8],
        purpose: MailPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<UserId>> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let id: Option<String> = sqlx::query_scalar(&q("UPDATE mail_tokens SET used_at = ?1 WHERE token_hash = ?2 AND purpose = ?3 \
             AND used_at IS NULL AND expires_at > ?1 RETURNING user_id"))
        .bind(ms(now))
        .bind(hash)
        .bind(purpose.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(user) = &id {
            sqlx::query(&q("UPDATE mail_tokens SET used_at = ?1 WHERE user_id = ?2 AND purpose = ?3 \
                 AND used_at IS NULL"))
            .bind(ms(now))
            .bind(user)
            .bind(purpose.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(id.and_then(|s| Uuid::parse_str(&s).ok()).map(UserId))
    }

    async fn mfa_state(&self, user: UserId) -> StoreResult<MfaState> {
        let row = sqlx::query(&q("SELECT mfa_enabled, mfa_secret, mfa_pending_secret, mfa_last_step FROM users WHERE id = ?"))
        .bind(user.0.to_string())
        .fetch_optional(&self.write)
        .await
        .map_err(map_err)?;
        let Some(row) = row else {
            return Ok(MfaState::default());
        };
        Ok(MfaState {
            enabled: row.try_get("mfa_enabled").map_err(map_err)?,
            secret: row.try_get("mfa_secret").map_err(map_err)?,
            pending: row.try_get("mfa_pending_secret").map_err(map_err)?,
            last_step: row.try_get("mfa_last_step").map_err(map_err)?,
        })
    }

    async fn set_mfa_pending(&self, user: UserId, secret: &[u8]) -> StoreResult<()> {
        sqlx::query(&q("UPDATE users SET mfa_pending_secret = ? WHERE id = ?"))
            .bind(secret)
            .bind(user.0.to_string())
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn enable_mfa(
        &self,
        user: UserId,
        step: i64,
        recovery_hashes: &[Vec<u8>],
    ) -> StoreResult<bool> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let uid = user.0.to_string();
        let n = sqlx::query(&q("UPDATE users SET mfa_enabled = TRUE, mfa_secret = mfa_pending_secret, \
             mfa_pending_secret = NULL, mfa_last_step = ? \
             WHERE id = ? AND mfa_enabled = FALSE AND mfa_pending_secret IS NOT NULL"))
        .bind(step)
        .bind(&uid)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(&q("DELETE FROM recovery_codes WHERE user_id = ?"))
            .bind(&uid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for h in recovery_hashes {
            sqlx::query(&q("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)"))
                .bind(&uid)
                .bind(h)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn disable_mfa(&self, user: UserId) -> StoreResult<()> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        let uid = user.0.to_string();
        sqlx::query(&q("UPDATE users SET mfa_enabled = FALSE, mfa_secret = NULL, mfa_pending_secret = NULL, \
             mfa_last_step = 0 WHERE id = ?"))
        .bind(&uid)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM recovery_codes WHERE user_id = ?"))
            .bind(&uid)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn use_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let n =
            sqlx::query(&q("UPDATE users SET mfa_last_step = ?1 WHERE id = ?2 AND mfa_last_step < ?1"))
                .bind(step)
                .bind(user.0.to_string())
                .execute(&self.write)
                .await
                .map_err(map_err)?
                .rows_affected();
        Ok(n == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let n = sqlx::query(&q("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL"))
        .bind(ms(now))
        .bind(user.0.to_string())
        .bind(hash)
        .execute(&self.write)
        .await
        .map_err(map_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn idempotency_begin(
        &self,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<IdempotencyState> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        // A replay lives 24 h; a claim still in flight after a minute belongs to a request
        // that will never finish (its instance stopped or died): the key is free again.
        sqlx::query(&q("DELETE FROM idempotency_keys WHERE key = ?1 \
             AND (created_at < ?2 OR (status = 0 AND created_at < ?3))"))
            .bind(key)
            .bind(ms(now - chrono::Duration::hours(24)))
            .bind(ms(now - chrono::Duration::minutes(1)))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let claimed = sqlx::query(&q("INSERT INTO idempotency_keys (key, request_hash, status, body, created_at) \
             VALUES (?, ?, 0, '', ?) ON CONFLICT (key) DO NOTHING"))
        .bind(key)
        .bind(request_hash)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            == 1;
        let state = if claimed {
            IdempotencyState::Claimed
        } else {
            let row = sqlx::query(&q("SELECT request_hash, status, body FROM idempotency_keys WHERE key = ?"))
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
            let request_hash: String = row.try_get("request_hash").map_err(map_err)?;
            let status: i64 = row.try_get("status").map_err(map_err)?;
            if status == 0 {
                IdempotencyState::InFlight { request_hash }
            } else {
                IdempotencyState::Done {
                    request_hash,
                    status: status as u16,
                    body: row.try_get("body").map_err(map_err)?,
                }
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(state)
    }

    async fn idempotency_finish(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        sqlx::query(&q("UPDATE idempotency_keys SET status = ?, body = ? WHERE key = ?"))
            .bind(status as i64)
            .bind(body)
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn idempotency_abandon(&self, key: &str) -> StoreResult<()> {
        sqlx::query(&q("DELETE FROM idempotency_keys WHERE key = ? AND status = 0"))
            .bind(key)
            .execute(&self.write)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn prune(&self, now: DateTime<Utc>, audit_before: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.write.begin().await.map_err(map_err)?;
        sqlx::query(&q("DELETE FROM revocations WHERE expires_at <= ?"))
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM sessions WHERE absolute_expires_at <= ?1 OR refresh_expires_at <= ?1"))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM audit_events WHERE at < ?"))
            .bind(ms(audit_before))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM login_attempts WHERE (locked_until IS NULL OR locked_until < ?1) \
             AND window_start < ?1 - 86400000"))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(&q("DELETE FROM idempotency_keys WHERE created_at < ?"))
            .bind(ms(now - chrono::Duration::hours(24)))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }
}

    };
}

pub(crate) use impl_sql_store;
