-- API keys: looked up by public id; the secret is kept only as its SHA-256.
CREATE TABLE api_keys (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    public_id    TEXT NOT NULL UNIQUE,
    secret_hash  BYTEA NOT NULL,
    name         TEXT NOT NULL,
    tier         BIGINT NOT NULL CHECK (tier BETWEEN 1 AND 4),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    allowed_ips  TEXT NOT NULL DEFAULT '[]',
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id, id);
