//! `TRADEAUTH_MAILER` and `TRADEAUTH_MAIL_FROM`, parsed and checked with the rest of the
//! config so `config check` catches what `serve` would refuse. The mail module builds
//! its transport from a [`MailerSpec`]; nothing here sends.

use super::parse::{Invalid::Message, Parsed};
use secrecy::SecretString;
use std::path::PathBuf;

/// How mails go out (`TRADEAUTH_MAILER`).
#[derive(Debug, Clone)]
pub enum MailerSpec {
    /// Into the log, links included (development).
    Log,
    /// One `.eml` file per mail in this directory.
    File(PathBuf),
    /// To an SMTP server.
    Smtp(SmtpSpec),
}

/// What an SMTP URL says, checked with the rest of the config, so `config check` catches
/// what `serve` would refuse. Building the transport is the mailer's job.
#[derive(Debug, Clone)]
pub struct SmtpSpec {
    /// The server's name or address.
    pub host: String,
    /// The port written; unset, the mailer picks 465, 587 or 25 by the TLS mode.
    pub port: Option<u16>,
    /// `smtps://`: TLS from the start.
    pub implicit_tls: bool,
    /// `smtp://...?tls=required`: STARTTLS.
    pub starttls: bool,
    /// The URL's user and password, percent-decoded.
    pub credentials: Option<SmtpCredentials>,
}

#[derive(Debug, Clone)]
pub struct SmtpCredentials {
    /// The login.
    pub user: String,
    /// The password, kept out of `Debug`.
    pub password: SecretString,
}

impl SmtpSpec {
    /// Parses `smtp://[user:pass@]host[:port][?tls=required]` or `smtps://...`.
    pub fn parse(url: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL: {e}"))?;
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("an SMTP URL needs a host")?
            .to_string();
        let implicit_tls = match parsed.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => return Err(format!("unknown scheme {other}")),
        };
        let starttls = parsed
            .query_pairs()
            .any(|(k, v)| k == "tls" && v == "required");
        let credentials = if parsed.username().is_empty() {
            None
        } else {
            let decode = |s: &str| {
                urlencoding::decode(s)
                    .map(|d| d.into_owned())
                    .map_err(|e| e.to_string())
            };
            Some(SmtpCredentials {
                user: decode(parsed.username())?,
                password: SecretString::from(decode(parsed.password().unwrap_or_default())?),
            })
        };
        Ok(Self {
            host,
            port: parsed.port(),
            implicit_tls,
            starttls,
            credentials,
        })
    }
}

pub(super) fn mailer(s: &str) -> Parsed<MailerSpec> {
    if s == "log" {
        Ok(MailerSpec::Log)
    } else if let Some(dir) = s.strip_prefix("file:") {
        Ok(MailerSpec::File(PathBuf::from(dir)))
    } else if s.starts_with("smtp://") || s.starts_with("smtps://") {
        SmtpSpec::parse(s).map(MailerSpec::Smtp).map_err(Message)
    } else {
        Err(Message(
            "expected log, file:DIR, smtp://[user:pass@]host:port or smtps://...".into(),
        ))
    }
}

/// A mailbox, `name <address@domain>` or `address@domain`.
pub(super) fn mailbox(s: &str) -> Parsed<lettre::message::Mailbox> {
    s.parse()
        .map_err(|_| Message(format!("{s:?} is not a mailbox (name <address@domain>)")))
}
