-- tradeauth schema, SQLite. Times are epoch milliseconds (INTEGER), ids UUID text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    username      TEXT NOT NULL UNIQUE,
    full_name     TEXT,
    password_hash TEXT NOT NULL,
    tier          INTEGER NOT NULL CHECK (tier BETWEEN 1 AND 4),
    is_active     INTEGER NOT NULL DEFAULT 1,
    is_verified   INTEGER NOT NULL DEFAULT 0,
    mfa_enabled   INTEGER NOT NULL DEFAULT 0,
    is_bootstrap  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

CREATE TABLE sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation          INTEGER NOT NULL DEFAULT 0,
    remember_me         INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    last_used_at        INTEGER NOT NULL,
    rotated_at          INTEGER,
    refresh_expires_at  INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    revoked_at          INTEGER,
    ip                  TEXT,
    user_agent          TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, id);

CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    value      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_der BLOB NOT NULL,
    public_jwk  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'standby', 'retired')),
    created_at  INTEGER NOT NULL,
    retire_at   INTEGER
);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE login_attempts (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    window_start INTEGER NOT NULL,
    locked_until INTEGER
);

CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    user_id    TEXT,
    actor_id   TEXT,
    ip         TEXT,
    user_agent TEXT,
    details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_user ON audit_events (user_id, id);
CREATE INDEX audit_by_type ON audit_events (type, id);
CREATE INDEX audit_by_time ON audit_events (at);

CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       INTEGER NOT NULL,
    body         TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
