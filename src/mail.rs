//! Outgoing mail: a [`Mailer`] per `TRADEAUTH_MAILER` (`log`, `file:DIR`, `smtp://`,
//! `smtps://`), and this instance's side of the durable outbox ([`Outbox`]; the mails
//! themselves wait in the database, and `service::mail_sender` sends them).
//!
//! The mailer is built from its spec, parsed and checked with the rest of the config
//! ([`MailerSpec`]); this module only sends.
//!
//! A failed send is logged (recipient domain and error, never the body, which holds a
//! token) and never reaches the caller: the endpoints that mail answer the same whether
//! or not a mail went out, so nothing here may hint at whether an account exists.

use crate::config::{MailerSpec, SmtpSpec};
use anyhow::Context;
use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A plain-text mail.
#[derive(Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()>;
}

fn message(from: &Mailbox, mail: &Mail) -> anyhow::Result<Message> {
    Ok(Message::builder()
        .from(from.clone())
        .to(mail.to.parse().context("recipient address")?)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body(&mail.body))?)
}

/// The body, as 7bit when it can be (ASCII, lines within SMTP's 998 octets), so a link
/// in it stays whole in the raw mail. Left to choose, lettre takes quoted-printable for
/// any line of 76 characters or more, which wraps the link and writes its `=` as `=3D`:
/// a reader that searches the raw mail, or a client that shows it, would not find it.
fn body(text: &str) -> Body {
    let crlf = text.replace('\r', "").replace('\n', "\r\n");
    if crlf.is_ascii() && !crlf.contains('\0') && crlf.split("\r\n").all(|l| l.len() <= 998) {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text.to_string())
    }
}

/// Development: the whole mail, link included, goes to the log (the one deliberate
/// exception to "no token in the log"; the server warns about it at start).
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        tracing::info!(target: "tradeauth::mail", to = %mail.to, subject = %mail.subject, body = %mail.body, "mail (log mailer)");
        Ok(())
    }
}

/// One `.eml` file per mail in a directory.
pub struct FileMailer {
    dir: PathBuf,
    from: Mailbox,
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        let raw = message(&self.from, mail)?.formatted();
        tokio::fs::create_dir_all(&self.dir).await?;
        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f"),
            uuid::Uuid::new_v4().simple()
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, raw).await?;
        // Rename into place so a reader never sees half a mail.
        tokio::fs::rename(&tmp, self.dir.join(name)).await?;
        Ok(())
    }
}

/// SMTP: `smtp://[user:pass@]host:port` (plain, or STARTTLS with `?tls=required`),
/// `smtps://...` (implicit TLS).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// Needs a running tokio runtime (the transport's connection pool).
    pub fn new(spec: &SmtpSpec, from: Mailbox) -> anyhow::Result<Self> {
        let mut builder = if spec.implicit_tls {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&spec.host)?.port(spec.port.unwrap_or(465))
        } else if spec.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&spec.host)?
                .port(spec.port.unwrap_or(587))
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&spec.host)
                .port(spec.port.unwrap_or(25))
        };
        if let Some(c) = &spec.credentials {
            let password = c.password.expose_secret().to_string();
            builder = builder.credentials(Credentials::new(c.user.clone(), password));
        }
        let transport = builder.timeout(Some(Duration::from_secs(15))).build();
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> anyhow::Result<()> {
        self.transport.send(message(&self.from, mail)?).await?;
        Ok(())
    }
}

/// The mailer a spec names (`TRADEAUTH_MAILER`), sending as `from` (`TRADEAUTH_MAIL_FROM`).
pub fn from_config(spec: &MailerSpec, from: &Mailbox) -> anyhow::Result<Arc<dyn Mailer>> {
    Ok(match spec {
        MailerSpec::Log => Arc::new(LogMailer),
        MailerSpec::File(dir) => Arc::new(FileMailer {
            dir: dir.clone(),
            from: from.clone(),
        }),
        MailerSpec::Smtp(smtp) => Arc::new(SmtpMailer::new(smtp, from.clone())?),
    })
}

/// Where a stopping instance's sender stands (see `service::mail_sender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderState {
    /// Sends what is due, on every tick and whenever a mail is queued here.
    Running,
    /// A graceful stop: sends what is due now, then ends.
    Draining,
    /// The drain's time is up: finishes the sends under way, claims nothing more.
    Halted,
}

/// This instance's side of the durable outbox (the `mail_outbox` table): the mailer, a
/// wake-up for the sender when a mail is queued here, the count of mail jobs still
/// running after their request was answered, and the sender's stop signal.
pub struct Outbox {
    pub mailer: Arc<dyn Mailer>,
    wake: tokio::sync::Notify,
    jobs: Arc<watch::Sender<usize>>,
    state: watch::Sender<SenderState>,
}

/// A mail job under way (a resend or reset request answered before its lookup): a
/// graceful stop waits for it to queue its mail. Ends when dropped.
pub struct MailJob(Arc<watch::Sender<usize>>);

impl Drop for MailJob {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl Outbox {
    pub fn new(mailer: Arc<dyn Mailer>) -> Self {
        Self {
            mailer,
            wake: tokio::sync::Notify::new(),
            jobs: Arc::new(watch::Sender::new(0)),
            state: watch::Sender::new(SenderState::Running),
        }
    }

    /// A mail was queued here: the sender looks at once rather than at its next tick.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`Outbox::wake`] was called (now or since the last time).
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Counts a mail job until the returned guard is dropped.
    pub fn job(&self) -> MailJob {
        self.jobs.send_modify(|n| *n += 1);
        MailJob(self.jobs.clone())
    }

    /// Waits, at most until `deadline`, for the mail jobs under way to finish.
    pub async fn jobs_done(&self, deadline: tokio::time::Instant) {
        let mut rx = self.jobs.subscribe();
        let _ = tokio::time::timeout_at(deadline, rx.wait_for(|n| *n == 0)).await;
    }

    pub fn set_state(&self, state: SenderState) {
        self.state.send_replace(state);
    }

    pub fn state(&self) -> watch::Receiver<SenderState> {
        self.state.subscribe()
    }
}

/// The domain of an address, the one part of it the logs name.
pub fn recipient_domain(to: &str) -> &str {
    to.rsplit_once('@').map(|(_, d)| d).unwrap_or("?")
}
