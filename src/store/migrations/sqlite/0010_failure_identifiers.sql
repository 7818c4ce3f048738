-- The identifiers (lower-cased) used in an account's counted login failures, so a lock
-- answers 423 only to them: another identifier of the account learns nothing about the
-- lock (API.md, Login rules). A row counts while `at` is inside its counter's window.
CREATE TABLE login_failure_identifiers (
    key        TEXT NOT NULL,
    identifier TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (key, identifier)
);
