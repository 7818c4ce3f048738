//! Outgoing mail: a [`Mailer`] per `TRADEAUTH_MAILER` (`log`, `file:DIR`, `smtp://`,
//! `smtps://`) and an outbox that sends off the request path, with retries and backoff.
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
use tokio::sync::mpsc;

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

/// Mails waiting to be sent by the background sender.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Mail>,
    /// Mails queued or being delivered, for [`Outbox::drain`] at shutdown.
    pending: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Outbox {
    /// Starts the sender: each mail is tried up to 4 times, 1 s, 2 s and 4 s apart.
    pub fn start(mailer: Arc<dyn Mailer>) -> Self {
        let (tx, mut rx) = mpsc::channel::<Mail>(1024);
        let pending = Arc::new(tokio::sync::watch::Sender::new(0usize));
        let done = pending.clone();
        tokio::spawn(async move {
            while let Some(mail) = rx.recv().await {
                let (mailer, done) = (mailer.clone(), done.clone());
                tokio::spawn(async move {
                    deliver(mailer.as_ref(), &mail).await;
                    done.send_modify(|n| *n = n.saturating_sub(1));
                });
            }
        });
        Self { tx, pending }
    }

    /// Queues a mail; a full queue drops it (logged), it never blocks a request.
    pub fn send(&self, mail: Mail) {
        self.pending.send_modify(|n| *n += 1);
        if let Err(e) = self.tx.try_send(mail) {
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
            tracing::error!(error = %e, "mail queue full or closed; mail dropped");
        }
    }

    /// Waits, for at most `limit`, until every queued mail was delivered or given up on
    /// (a stopping instance, so a request answered just before SIGTERM still gets its
    /// mail). Returns how many were still pending.
    pub async fn drain(&self, limit: Duration) -> usize {
        let mut rx = self.pending.subscribe();
        let _ = tokio::time::timeout(limit, rx.wait_for(|n| *n == 0)).await;
        let left = *self.pending.borrow();
        left
    }
}

async fn deliver(mailer: &dyn Mailer, mail: &Mail) {
    let domain = mail.to.rsplit_once('@').map(|(_, d)| d).unwrap_or("?");
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=4 {
        match mailer.send(mail).await {
            Ok(()) => return,
            Err(e) if attempt < 4 => {
                tracing::warn!(error = %format!("{e:#}"), attempt, recipient_domain = domain, "mail send failed; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), recipient_domain = domain, "mail not sent after 4 attempts");
            }
        }
    }
}
