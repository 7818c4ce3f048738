-- API keys: looked up by public id; the secret is kept only as its SHA-256.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    public_id    TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,
    name         TEXT NOT NULL,
    tier         INTEGER NOT NULL CHECK (tier BETWEEN 1 AND 4),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    allowed_ips  TEXT NOT NULL DEFAULT '[]',
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, id);
