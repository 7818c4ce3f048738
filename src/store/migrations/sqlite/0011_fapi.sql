-- Finance-grade OAuth (API.md "Beyond the baseline"): client authentication methods
-- (private_key_jwt with a registered JWK set or jwks_uri), pushed authorization requests
-- (RFC 9126) and DPoP-bound sessions (RFC 9449).

ALTER TABLE oauth_clients ADD COLUMN token_endpoint_auth_method TEXT NOT NULL DEFAULT 'client_secret_basic'
    CHECK (token_endpoint_auth_method IN ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'));
ALTER TABLE oauth_clients ADD COLUMN jwks TEXT;
ALTER TABLE oauth_clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE oauth_clients ADD COLUMN require_pushed_authorization_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE oauth_clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0;
UPDATE oauth_clients SET token_endpoint_auth_method = 'none' WHERE client_type = 'public';

-- A pushed authorization request: by the hash of its request_uri, single use, 60 s.
CREATE TABLE oauth_par_requests (
    hash       BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES oauth_clients(client_id) ON DELETE CASCADE,
    params     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX oauth_par_requests_by_expiry ON oauth_par_requests (expires_at);

-- The JWK thumbprint (RFC 7638) an OAuth session's tokens are bound to: its refresh token
-- needs a proof with that key.
ALTER TABLE oauth_sessions ADD COLUMN dpop_jkt TEXT;

-- The key a code is bound to (`dpop_jkt` at PAR or authorize, RFC 9449 §10): its
-- exchange needs a proof by that key.
ALTER TABLE oauth_codes ADD COLUMN dpop_jkt TEXT;
