-- Mails to send (verification and reset links), written in the transaction that creates
-- their token, so a mail answered with 202 survives a crash. Every instance claims due
-- rows under a lease (claimed_by, claim_until) and sends them; a failure is retried at
-- next_at. The body is sealed with the server's page key (it holds a link token) and
-- erased once sent; a sent row keeps recipient and sent_at for a day, for the
-- per-recipient quota, which counts mails actually sent.
CREATE TABLE mail_outbox (
    id          TEXT PRIMARY KEY,
    recipient   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    claimed_by  TEXT,
    claim_until INTEGER,
    created_at  INTEGER NOT NULL,
    sent_at     INTEGER
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_at) WHERE sent_at IS NULL;
CREATE INDEX mail_outbox_sent ON mail_outbox (recipient, sent_at);
