-- Single-use mail tokens (verification, reset), kept as SHA-256; TOTP state and
-- recovery codes (hashed).
ALTER TABLE users ADD COLUMN mfa_secret BYTEA;
ALTER TABLE users ADD COLUMN mfa_pending_secret BYTEA;
ALTER TABLE users ADD COLUMN mfa_last_step BIGINT NOT NULL DEFAULT 0;

CREATE TABLE mail_tokens (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify', 'reset')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX mail_tokens_by_user ON mail_tokens (user_id, purpose);

CREATE TABLE recovery_codes (
    user_id   TEXT COLLATE "C" NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
