-- The OAuth 2.1 / OpenID Connect provider: registered clients, authorization codes
-- (hashed, single use), the sessions an authorization became, and remembered consent.
-- PostgreSQL. Times are epoch milliseconds, ids text, lists JSON arrays as text.

CREATE TABLE oauth_clients (
    client_id                 TEXT COLLATE "C" PRIMARY KEY,
    name                      TEXT NOT NULL,
    secret_hash               BYTEA,
    client_type               TEXT NOT NULL CHECK (client_type IN ('confidential', 'public')),
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    grant_types               TEXT NOT NULL,
    scopes                    TEXT NOT NULL,
    max_tier                  BIGINT NOT NULL CHECK (max_tier BETWEEN 1 AND 4),
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    id_token_alg              TEXT NOT NULL,
    created_at                BIGINT NOT NULL,
    updated_at                BIGINT NOT NULL
);

-- A code is kept (used) until it expires, so a second use is recognised and revokes the
-- session the first one started (`issued_sid`).
CREATE TABLE oauth_codes (
    hash           BYTEA PRIMARY KEY,
    client_id      TEXT COLLATE "C" NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    user_id        TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT NOT NULL,
    auth_time      BIGINT NOT NULL,
    amr            TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    issued_sid     TEXT COLLATE "C"
);
CREATE INDEX oauth_codes_by_expiry ON oauth_codes (expires_at);

-- A session that an authorization started: its client and what was granted.
CREATE TABLE oauth_sessions (
    session_id TEXT COLLATE "C" PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    amr        TEXT NOT NULL
);
CREATE INDEX oauth_sessions_by_client ON oauth_sessions (client_id);

CREATE TABLE oauth_consents (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT COLLATE "C" NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
