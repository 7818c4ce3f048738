-- PostgreSQL. The device authorization grant (RFC 8628), and back-channel logout (OpenID Connect
-- Back-Channel Logout 1.0): a client's logout endpoint, and the durable outbox of logout
-- tokens still to deliver. Times are epoch milliseconds, ids text.

ALTER TABLE oauth_clients ADD COLUMN backchannel_logout_uri TEXT;

-- A device's request, by the hash of its device_code (single use). The user_code is
-- what the user types (normalised: 8 letters, no dash); it is unique among live rows.
-- `status`: pending, approved, denied, used. The approval records who approved, what was
-- granted and how they signed in.
CREATE TABLE oauth_device_codes (
    device_hash   BYTEA PRIMARY KEY,
    user_code     TEXT COLLATE "C" NOT NULL UNIQUE,
    client_id     TEXT COLLATE "C" NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    scope         TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'used')),
    interval_secs BIGINT NOT NULL,
    last_poll_at  BIGINT,
    user_id       TEXT COLLATE "C" REFERENCES users(id) ON DELETE CASCADE,
    granted_scope TEXT,
    auth_time     BIGINT,
    amr           TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX oauth_device_codes_by_expiry ON oauth_device_codes (expires_at);

-- One logout token to deliver per ended session of a client with a back-channel logout
-- URI, written in the transaction that ends the session. Any instance claims due rows
-- with a lease (`claimed_by`, `claim_until`); a stopping instance releases its claims, a
-- crashed one's lapse.
CREATE TABLE oauth_backchannel_outbox (
    session_id   TEXT COLLATE "C" PRIMARY KEY,
    client_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    uri          TEXT NOT NULL,
    id_token_alg TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    next_at      BIGINT NOT NULL,
    claimed_by   TEXT,
    claim_until  BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX oauth_backchannel_outbox_due ON oauth_backchannel_outbox (next_at);
