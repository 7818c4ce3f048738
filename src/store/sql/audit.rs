//! Security events: the `audit_events` table ([`AuditStore`]).

use super::backend::{Backend, Col, QueryExt};
use super::{uuid_col, SqlStore};
use crate::domain::UserId;
use crate::store::{from_ms, ms, AuditEvent, AuditQuery, AuditStore, Page, StoreResult};
use async_trait::async_trait;
use uuid::Uuid;

/// An event from a row of `audit_events`.
fn event_from_row<DB: Backend>(row: &DB::Row) -> StoreResult<AuditEvent> {
    let opt_user = |c: &str| -> StoreResult<Option<UserId>> {
        let v: Option<String> = row.col(c)?;
        Ok(v.and_then(|s| Uuid::parse_str(&s).ok()).map(UserId))
    };
    let details: String = row.col("details")?;
    Ok(AuditEvent {
        id: uuid_col::<DB>(row, "id")?,
        kind: row.col("type")?,
        at: from_ms(row.col("at")?),
        user_id: opt_user("user_id")?,
        actor_id: opt_user("actor_id")?,
        ip: row.col("ip")?,
        user_agent: row.col("user_agent")?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
    })
}

#[async_trait]
impl<DB: Backend> AuditStore for SqlStore<DB> {
    async fn insert_event(&self, e: &AuditEvent) -> StoreResult<()> {
        sqlx::query::<DB>(
            "INSERT INTO audit_events (id, type, at, user_id, actor_id, ip, user_agent, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .arg(e.id.to_string())
        .arg(e.kind.as_str())
        .arg(ms(e.at))
        .arg(e.user_id.map(|u| u.0.to_string()))
        .arg(e.actor_id.map(|u| u.0.to_string()))
        .arg(e.ip.as_deref())
        .arg(e.user_agent.as_deref())
        .arg(e.details.to_string())
        .run(&mut *self.writer().await?)
        .await?;
        Ok(())
    }

    async fn list_events(&self, query: &AuditQuery, page: Page) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query::<DB>(
            "SELECT id, type, at, user_id, actor_id, ip, user_agent, details FROM audit_events \
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR type = $2) \
             AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .arg(query.user_id.map(|u| u.0.to_string()))
        .arg(query.kind.as_deref())
        .arg(query.since.map(ms))
        .arg(page.after.map(|u| u.to_string()))
        .arg(page.limit as i64)
        .all(&mut *self.reader().await?)
        .await?;
        rows.iter().map(event_from_row::<DB>).collect()
    }
}
