-- Passkeys (WebAuthn). A ceremony's state lives in `webauthn_challenges` between start and
-- finish, so the two may reach different instances; finishing deletes the row (single use).
-- `passkeys.credential_id` is unique across all accounts (passkey_exists).
-- `sessions.authenticated_at`: when the session last proved a password or passkey (NULL in
-- sessions from before this version: their creation, which was a login, counts).
CREATE TABLE webauthn_challenges (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login')),
    user_id    TEXT REFERENCES users(id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX webauthn_challenges_by_expiry ON webauthn_challenges (expires_at);

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    credential_id   BLOB NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    credential      TEXT NOT NULL,
    counter         INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    backup_eligible INTEGER NOT NULL DEFAULT 0,
    backed_up       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_by_user ON passkeys (user_id, id);

ALTER TABLE sessions ADD COLUMN authenticated_at INTEGER;
