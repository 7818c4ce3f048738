//! `/admin/audit`: the audit log with filters (user, type, since), pages, and the CSV export
//! of what the filters select.

use super::{admin, message, when};
use crate::domain::UserId;
use crate::http::extract::Ctx;
use crate::http::pages::session::status_of;
use crate::http::pages::{html, Layout};
use crate::http::state::AppState;
use crate::service::{AuditEvent, AuditQuery, Error, PageRequest};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use uuid::Uuid;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(audit_page))
        .route("/admin/audit.csv", get(audit_csv))
}

/// The most events one CSV export holds (newest first); the filters narrow it.
const CSV_MAX_EVENTS: usize = 10_000;

#[derive(Deserialize, Default)]
struct AuditFilters {
    user_id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    /// A date (`YYYY-MM-DD`, from the date input) or an RFC 3339 time.
    since: Option<String>,
    cursor: Option<String>,
}

impl AuditFilters {
    fn query(&self) -> Result<AuditQuery, Error> {
        let user_id = match self
            .user_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(UserId(Uuid::parse_str(s).map_err(|_| {
                Error::field("user_id", "user_id must be a user's id (a UUID)")
            })?)),
        };
        let since = match self
            .since
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            Some(s) => Some(parse_since(s).ok_or_else(|| {
                Error::field(
                    "since",
                    "since must be a date (YYYY-MM-DD) or an RFC 3339 time",
                )
            })?),
        };
        Ok(AuditQuery {
            user_id,
            kind: self
                .kind
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            since,
        })
    }

    /// The filters as a query string (without the cursor).
    fn encoded(&self) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, val) in [
            ("user_id", &self.user_id),
            ("type", &self.kind),
            ("since", &self.since),
        ] {
            if let Some(val) = val.as_deref().filter(|s| !s.is_empty()) {
                url.append_pair(k, val);
            }
        }
        url.finish()
    }
}

fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

struct EventRow {
    at: String,
    kind: String,
    user_id: String,
    actor_id: String,
    ip: String,
    details: String,
}

impl From<&AuditEvent> for EventRow {
    fn from(e: &AuditEvent) -> Self {
        let id = |u: Option<UserId>| u.map(|u| u.0.to_string()).unwrap_or_default();
        Self {
            at: when(e.at),
            kind: e.kind.clone(),
            user_id: id(e.user_id),
            actor_id: id(e.actor_id),
            ip: e.ip.clone().unwrap_or_default(),
            details: if e.details.is_null() {
                String::new()
            } else {
                e.details.to_string()
            },
        }
    }
}

#[derive(Template)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    error: Option<String>,
    status: Option<String>,
    user_id: String,
    kind: String,
    since: String,
    events: Vec<EventRow>,
    csv_url: String,
    next_page: Option<String>,
}

async fn audit_page(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(f): Query<AuditFilters>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin/audit").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let mut code = StatusCode::OK;
    let mut error = None;
    let mut events = Vec::new();
    let mut next_page = None;
    let listed = match (f.query(), PageRequest::parse(f.cursor.as_deref(), Some(50))) {
        (Ok(q), Ok(page)) => state.service.admin_audit(q, page).await,
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    match listed {
        Ok(paged) => {
            events = paged.items.iter().map(EventRow::from).collect();
            next_page = paged.next_cursor.map(|c| {
                let filters = f.encoded();
                let sep = if filters.is_empty() { "" } else { "&" };
                format!(
                    "/admin/audit?{filters}{sep}cursor={}",
                    urlencoding::encode(&c)
                )
            });
        }
        Err(e) => {
            code = status_of(&e);
            error = Some(e.message());
        }
    }
    let filters = f.encoded();
    let page = AuditPage {
        layout: Layout::new("Audit log").visitor(&v),
        error,
        status: None,
        csv_url: if filters.is_empty() {
            "/admin/audit.csv".to_string()
        } else {
            format!("/admin/audit.csv?{filters}")
        },
        user_id: f.user_id.unwrap_or_default(),
        kind: f.kind.unwrap_or_default(),
        since: f.since.unwrap_or_default(),
        events,
        next_page,
    };
    v.finish(&state, html(code, &page))
}

/// A CSV field: quoted when it holds a separator, a quote or a line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet does not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn audit_csv(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(f): Query<AuditFilters>,
) -> Response {
    let v = match admin(&state, &headers, &ctx, "/admin/audit").await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let q = match f.query() {
        Ok(q) => q,
        Err(e) => return message(&state, &v, e),
    };
    let mut out = String::from("id,type,at,user_id,actor_id,ip,user_agent,details\r\n");
    let mut after = None;
    let mut written = 0;
    loop {
        let page = PageRequest {
            after,
            limit: PageRequest::MAX,
        };
        let paged = match state.service.admin_audit(q.clone(), page).await {
            Ok(p) => p,
            Err(e) => return message(&state, &v, e),
        };
        for e in &paged.items {
            let id = |u: Option<UserId>| u.map(|u| u.0.to_string()).unwrap_or_default();
            let fields = [
                e.id.to_string(),
                e.kind.clone(),
                e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                id(e.user_id),
                id(e.actor_id),
                e.ip.clone().unwrap_or_default(),
                e.user_agent.clone().unwrap_or_default(),
                if e.details.is_null() {
                    String::new()
                } else {
                    e.details.to_string()
                },
            ];
            let line: Vec<String> = fields.iter().map(|s| csv_field(s)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
            written += 1;
        }
        after = paged.items.last().map(|e| e.id);
        if paged.next_cursor.is_none() || written >= CSV_MAX_EVENTS {
            break;
        }
    }
    let name = format!("tradeauth-audit-{}.csv", Utc::now().format("%Y%m%d-%H%M%S"));
    let res = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        out,
    )
        .into_response();
    v.finish(&state, res)
}

#[cfg(test)]
mod tests {
    use super::{csv_field, parse_since};

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("login.failed"), "login.failed");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("@SUM(1)"), "'@SUM(1)");
        assert_eq!(csv_field("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn since_takes_a_date_or_a_time() {
        let d = parse_since("2026-12-01").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        let t = parse_since("2026-12-01T10:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T08:00:00+00:00");
        assert!(parse_since("yesterday").is_none());
    }
}
