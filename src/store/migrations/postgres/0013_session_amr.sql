-- How the session's sign-in proved the user (the ID token's amr, RFC 8176): a JSON list,
-- e.g. ["pwd"], ["pwd","otp","mfa"] or ["hwk","user"] for a passkey. NULL for sessions
-- from before it was recorded.
ALTER TABLE sessions ADD COLUMN amr TEXT;
