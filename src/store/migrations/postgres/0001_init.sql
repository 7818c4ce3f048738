-- tradeauth schema, PostgreSQL. Times are epoch milliseconds (BIGINT), ids UUID text in
-- the C collation (so keyset pagination orders them byte-wise, as SQLite does).

CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    username      TEXT NOT NULL UNIQUE,
    full_name     TEXT,
    password_hash TEXT NOT NULL,
    tier          BIGINT NOT NULL CHECK (tier BETWEEN 1 AND 4),
    is_active     BOOLEAN NOT NULL DEFAULT TRUE,
    is_verified   BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    is_bootstrap  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE sessions (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    user_id             TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    generation          BIGINT NOT NULL DEFAULT 0,
    remember_me         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at          BIGINT NOT NULL,
    last_used_at        BIGINT NOT NULL,
    rotated_at          BIGINT,
    refresh_expires_at  BIGINT NOT NULL,
    absolute_expires_at BIGINT NOT NULL,
    revoked_at          BIGINT,
    ip                  TEXT,
    user_agent          TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id, id);

CREATE TABLE revocations (
    seq        BIGSERIAL PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('jti', 'sid')),
    value      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_der BYTEA NOT NULL,
    public_jwk  TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('active', 'standby', 'retired')),
    created_at  BIGINT NOT NULL,
    retire_at   BIGINT
);

CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE login_attempts (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);

CREATE TABLE audit_events (
    id         TEXT COLLATE "C" PRIMARY KEY,
    type       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    user_id    TEXT COLLATE "C",
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
    status       BIGINT NOT NULL,
    body         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
