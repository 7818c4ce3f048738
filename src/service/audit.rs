//! Security events: what a use case writes ([`Audit`]), stored as the audit log, sent to
//! this instance's live feeds and published to the other instances' WebSockets.

use super::{RequestContext, Service};
use crate::domain::{AuditKind, UserId};
use crate::store::AuditEvent;
use chrono::Utc;
use uuid::Uuid;

/// A security event to write ([`Service::audit`]): its kind, then whom it is about, who
/// acted and from where, as far as they are known.
/// `Audit::new(AuditKind::LoginFailed).user(id).ctx(ctx).details(json!({...}))`.
#[must_use]
pub struct Audit<'a> {
    kind: AuditKind,
    user: Option<UserId>,
    actor: Option<UserId>,
    ctx: Option<&'a RequestContext>,
    details: serde_json::Value,
}

impl<'a> Audit<'a> {
    pub fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            user: None,
            actor: None,
            ctx: None,
            details: serde_json::json!({}),
        }
    }

    /// The account the event is about.
    pub fn user(mut self, user: impl Into<Option<UserId>>) -> Self {
        self.user = user.into();
        self
    }

    /// Who acted (the user themselves, an admin), when known.
    pub fn actor(mut self, actor: impl Into<Option<UserId>>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The request it came from (none for the CLI and background work).
    pub fn ctx(mut self, ctx: impl Into<Option<&'a RequestContext>>) -> Self {
        self.ctx = ctx.into();
        self
    }

    /// What the events list shows besides the kind (`{}` when not given).
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A security event published for the other instances' WebSockets.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct RemoteEvent {
    pub(super) origin: Uuid,
    pub(super) event: AuditEvent,
}

impl Service {
    /// Writes a security event; a failure to write is logged, never shown to the caller.
    pub async fn audit(&self, entry: Audit<'_>) {
        let Audit {
            kind,
            user,
            actor,
            ctx,
            details,
        } = entry;
        let event = AuditEvent {
            id: Uuid::now_v7(),
            kind: kind.as_str().to_string(),
            at: Utc::now(),
            user_id: user,
            actor_id: actor,
            ip: ctx.map(|c| c.ip.to_string()),
            user_agent: ctx.and_then(|c| c.user_agent.clone()),
            details,
        };
        if let Err(e) = self.store.insert_event(&event).await {
            tracing::error!(error = %e, kind = kind.as_str(), "could not write audit event");
        }
        if let Some(bus) = &self.bus {
            let remote = RemoteEvent {
                origin: self.instance,
                event: event.clone(),
            };
            if let Ok(json) = serde_json::to_string(&remote) {
                if !bus.publish_event(json) {
                    self.fanout_dropped("events");
                }
            }
        }
        let _ = self.events.send(event);
    }
}
