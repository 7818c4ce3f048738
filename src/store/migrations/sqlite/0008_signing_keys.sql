-- Signing keys (API.md "Signed requests"): an API key is a bearer key (`algorithm` =
-- 'bearer', as every key before this migration) or a signing key. A signing key keeps its
-- public key (Ed25519: 32 bytes; P-256: the 65-byte uncompressed point) or, for
-- hmac-sha256, its secret sealed with AES-256-GCM under TRADEAUTH_SECRET_KEY; its
-- secret_hash is empty, so no bearer secret can ever match it.
ALTER TABLE api_keys ADD COLUMN algorithm TEXT NOT NULL DEFAULT 'bearer';
ALTER TABLE api_keys ADD COLUMN public_key BLOB;
ALTER TABLE api_keys ADD COLUMN sealed_secret BLOB;
