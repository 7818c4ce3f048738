//! The durable mail outbox: a mail answered with 202 survives its instance (crashed or
//! stopped), the per-recipient quota counts only mails sent, and sent rows are pruned
//! after a day, their bodies (the links) erased at once.

use crate::helpers::*;
use crate::mail::{link_token, mails, wait_for_mail};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const PUBLIC: &str = "https://auth.example.test";
/// Nothing listens there: every send fails (connection refused).
const REFUSING: &str = "smtp://127.0.0.1:9";

/// A database the instances share (it outlives each of them).
#[derive(Clone)]
struct Db {
    dir: Arc<tempfile::TempDir>,
    url: String,
}

impl Db {
    fn of(app: &TestApp) -> Self {
        Self {
            dir: app.dir.clone(),
            url: app.db_url.clone(),
        }
    }

    /// `SELECT COUNT(*) FROM mail_outbox WHERE {filter}`.
    async fn count(&self, filter: &str) -> i64 {
        let q = format!("SELECT COUNT(*) FROM mail_outbox WHERE {filter}");
        if self.url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            sqlx::query_scalar(&q).fetch_one(&pool).await.unwrap()
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            sqlx::query_scalar(&q).fetch_one(&pool).await.unwrap()
        }
    }

    async fn exec(&self, statement: &str) {
        if self.url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        } else {
            let pool = sqlx::SqlitePool::connect(&self.url).await.unwrap();
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
    }

    /// Waits until `count(filter)` is `n`.
    async fn wait_count(&self, filter: &str, n: i64) {
        for _ in 0..100 {
            if self.count(filter).await == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "never {n} rows where {filter} (now {})",
            self.count(filter).await
        );
    }

    /// An instance on this database, mailing with `mailer`.
    async fn instance(
        &self,
        mailer: &str,
        extra: impl FnOnce(tradeauth::config::Sources) -> tradeauth::config::Sources,
    ) -> TestApp {
        let mailer = mailer.to_string();
        spawn_on(self.dir.clone(), self.url.clone(), move |s| {
            extra(s.set("mailer", mailer).set("public_url", PUBLIC))
        })
        .await
    }

    /// An instance on this database, mailing into a fresh directory.
    async fn filing_instance(
        &self,
        extra: impl FnOnce(tradeauth::config::Sources) -> tradeauth::config::Sources,
    ) -> (TestApp, PathBuf) {
        let dir = tempfile::tempdir().unwrap().keep();
        let app = self
            .instance(&format!("file:{}", dir.display()), extra)
            .await;
        (app, dir)
    }
}

#[tokio::test]
async fn mails_left_by_a_crashed_or_stopped_instance_are_sent_by_the_next_one() {
    let first = spawn_with(|s| s.set("mailer", REFUSING).set("public_url", PUBLIC)).await;
    let db = Db::of(&first);
    first
        .register("crashed.send@example.com", PASSWORD)
        .await
        .assert(201, None);
    first
        .register("stopped.send@example.com", PASSWORD)
        .await
        .assert(201, None);
    // Both answered, both tried and failed (the SMTP server refuses), both waiting.
    db.wait_count("sent_at IS NULL AND attempts >= 1", 2).await;
    // One as if its instance had crashed in the middle of sending it: claimed for 3 s more.
    let until = chrono::Utc::now().timestamp_millis() + 3000;
    db.exec(&format!(
        "UPDATE mail_outbox SET claimed_by = 'crashed', claim_until = {until}, next_at = 0 \
         WHERE recipient = 'crashed.send@example.com'"
    ))
    .await;
    // The other's instance stops gracefully: its claims are released, the mail stays.
    first.stop().await;
    assert_eq!(
        db.count("claimed_by IS NOT NULL AND claimed_by <> 'crashed'")
            .await,
        0,
        "a graceful stop releases its claims"
    );
    assert_eq!(db.count("sent_at IS NULL").await, 2);
    // Its retry is due (sooner than its backoff would make it, for the test's sake).
    db.exec("UPDATE mail_outbox SET next_at = 0 WHERE recipient = 'stopped.send@example.com'")
        .await;

    let (next, outbox) = db.filing_instance(|s| s).await;
    let mail = wait_for_mail(&outbox, 1).await;
    assert!(mail.contains("To: stopped.send@example.com"), "{mail}");
    // The crashed instance's claim holds until it lapses; then the mail goes out.
    let mut crashed = None;
    for _ in 0..100 {
        if let Some(m) = mails(&outbox)
            .into_iter()
            .find(|m| m.contains("To: crashed.send@example.com"))
        {
            crashed = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let crashed = crashed.expect("the crashed instance's mail is sent once its claim lapses");
    assert_eq!(
        db.count(&format!(
            "recipient = 'crashed.send@example.com' AND sent_at >= {until}"
        ))
        .await,
        1,
        "not sent under another instance's lease"
    );
    // The links work: the tokens were written with the mails.
    for (mail, email) in [
        (mail, "stopped.send@example.com"),
        (crashed, "crashed.send@example.com"),
    ] {
        let token = link_token(&mail, PUBLIC, "verify-email");
        let r = next
            .post("/api/v1/auth/verify-email", json!({"token": token}))
            .await;
        r.assert(200, None);
        assert_eq!(r.body["email"], email);
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(mails(&outbox).len(), 2, "each mail is sent once");
    assert_eq!(db.count("sent_at IS NULL").await, 0);
}

#[tokio::test]
async fn the_quota_counts_only_mails_actually_sent() {
    let quota =
        |s: tradeauth::config::Sources| s.set("rate_limit", "on").set("rate_limit_mail", "1/hour");
    let first = spawn_with(move |s| quota(s.set("mailer", REFUSING))).await;
    let db = Db::of(&first);
    first
        .register("quota.user@example.com", PASSWORD)
        .await
        .assert(201, None);
    db.wait_count("attempts >= 1", 1).await;
    // Its last attempt: it fails too, and the mail is given up (never sent).
    db.exec("UPDATE mail_outbox SET attempts = 11, next_at = 0")
        .await;
    db.wait_count("1 = 1", 0).await;
    first.stop().await;

    // The failed mail spent nothing: the next one (a reset link) goes out...
    let (next, outbox) = db.filing_instance(quota).await;
    next.post(
        "/api/v1/auth/password-reset",
        json!({"email": "quota.user@example.com"}),
    )
    .await
    .assert(202, None);
    let mail = wait_for_mail(&outbox, 1).await;
    link_token(&mail, PUBLIC, "reset-password");
    // ...and spent the hour's one: the next is held back, and dropped from the outbox.
    next.post(
        "/api/v1/auth/password-reset",
        json!({"email": "quota.user@example.com"}),
    )
    .await
    .assert(202, None);
    db.wait_count("sent_at IS NULL", 0).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mails(&outbox).len(), 1, "one mail an hour");
    assert_eq!(db.count("sent_at IS NOT NULL").await, 1);
}

#[tokio::test]
async fn sent_mails_lose_their_body_at_once_and_their_row_after_a_day() {
    let dir = tempfile::tempdir().unwrap().keep();
    let app = spawn_with(|s| s.set("mailer", format!("file:{}", dir.display()))).await;
    let db = Db::of(&app);
    app.new_user().await;
    app.new_user().await;
    wait_for_mail(&dir, 2).await;
    db.wait_count("sent_at IS NOT NULL", 2).await;
    // The links are gone from the database once the mails are out.
    assert_eq!(db.count("body <> ''").await, 0);
    // One was sent 25 hours ago.
    let day_ago = chrono::Utc::now().timestamp_millis() - 25 * 3600 * 1000;
    db.exec(&format!(
        "UPDATE mail_outbox SET sent_at = {day_ago} WHERE id IN \
         (SELECT id FROM mail_outbox ORDER BY created_at LIMIT 1)"
    ))
    .await;
    let now = chrono::Utc::now();
    app.service
        .store
        .prune(now, now - chrono::TimeDelta::days(90))
        .await
        .unwrap();
    assert_eq!(db.count("1 = 1").await, 1, "the day-old row is pruned");
    assert_eq!(db.count(&format!("sent_at > {day_ago}")).await, 1);
}

/// An SMTP server on loopback that takes its time over each mail: it answers the end of
/// the data only `delay` after it came. Counts the mails it began and accepted.
struct SlowSmtp {
    port: u16,
    began: Arc<std::sync::atomic::AtomicUsize>,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

async fn slow_smtp(delay: Duration) -> SlowSmtp {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let began = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (b, a) = (began.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (b, a) = (b.clone(), a.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 slow.test ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer: &[u8] = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        tokio::time::sleep(delay).await;
                        a.fetch_add(1, Ordering::SeqCst);
                        b"250 accepted\r\n"
                    } else {
                        match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                            "DATA" => {
                                in_data = true;
                                b.fetch_add(1, Ordering::SeqCst);
                                b"354 go on\r\n"
                            }
                            "QUIT" => b"221 bye\r\n",
                            _ => b"250 ok\r\n",
                        }
                    };
                    if write.write_all(answer).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    SlowSmtp {
        port,
        began,
        accepted,
    }
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_send_under_way_and_it_is_not_sent_again() {
    use std::sync::atomic::Ordering;
    let smtp = slow_smtp(Duration::from_millis(1500)).await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let first = spawn_with(|s| s.set("mailer", url).set("public_url", PUBLIC)).await;
    let db = Db::of(&first);
    first
        .register("mid.send@example.com", PASSWORD)
        .await
        .assert(201, None);
    for _ in 0..100 {
        if smtp.began.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(smtp.began.load(Ordering::SeqCst), 1, "the send began");
    assert_eq!(smtp.accepted.load(Ordering::SeqCst), 0);
    // Stopped while the server still holds the mail's data.
    first.stop().await;
    assert_eq!(
        smtp.accepted.load(Ordering::SeqCst),
        1,
        "the stop waited for the send"
    );
    assert_eq!(db.count("sent_at IS NOT NULL").await, 1, "recorded as sent");
    // The next instance has nothing to send.
    let (_next, outbox) = db.filing_instance(|s| s).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(mails(&outbox).is_empty(), "sent twice");
    assert_eq!(smtp.began.load(Ordering::SeqCst), 1);
}
