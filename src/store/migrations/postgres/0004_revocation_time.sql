-- When each revocation was recorded, to measure how long it takes to reach an instance.
ALTER TABLE revocations ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
