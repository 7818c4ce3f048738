-- Login attempts in flight, apart from the failures counted: an attempt is reserved before
-- its password is evaluated, and at most as many are in flight as failures are still
-- allowed (see domain::lockout). `reservation` holds the token of the last attempt that
-- reserved, so the reserving statement can tell whether it did.
ALTER TABLE login_attempts ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_attempts ADD COLUMN pending_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_attempts ADD COLUMN reservation TEXT;
